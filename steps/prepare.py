"""Turn FinQA split files into Nova training, validation and evaluation data.

    python -m steps.prepare --input-dir data/finqa_sample --output-dir out/prepared

Every flag, with its default, is in `python -m steps.prepare --help`.

Writes, under the output directory:
- train/train.jsonl, validation/validation.jsonl: Nova `bedrock-conversation-2024` records, or
  for a reinforcement fine-tuning (RFT) recipe AWS's RFT records (`steps/finqa/rft.py`): the
  same prompt, and the reference the reward scores a response against;
  With --open-weights-technique, train/ and validation/ hold the same records in AWS's format
  for serverless customization of open-weights models instead (`steps/finqa/open_weights.py`),
  and eval_open_weights/eval.jsonl the test split as the open model's evaluation dataset;
- eval/gen_qa.jsonl: the test split in Nova's bring-your-own-dataset evaluation format, its
  `metadata` a JSON text with everything the scorer needs (id, gold program, exe_ans, table);
- recipe/recipe.yaml: AWS's training recipe for --recipe with the recipe flags' values (a bad
  value fails the step before any data is read; Nova 2's max_steps comes from the records
  written, --epochs and the global batch size);
- report/data_report.json: per split, records read / written / skipped by reason, sanitised
  replacements, and estimated token length percentiles.

Every file is written under a temporary name and renamed only once all of them passed Nova's
rules, so a failed run leaves no output that looks complete. The same inputs, options and
seed give byte-identical outputs.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from steps.catalog import DEFAULT_RECIPE, RecipeError, recipe
from steps.estimate import (
    BudgetError,
    EstimateError,
    JobPlan,
    add_estimate_arguments,
    plan_from_args,
    serverless_estimate,
)
from steps.finqa import open_weights
from steps.finqa.nova import (
    EVAL_PROMPT_TOKEN_GUIDE,
    MAX_TRAINING_RECORDS,
    MIN_TRAINING_RECORDS,
    NovaDataError,
    RecordTooLongError,
    check_conversation_texts,
    check_gen_qa,
    conversation_line,
    gen_qa_record,
)
from steps.finqa.prompts import SYSTEM_PROMPT, SanitiseCounts, estimate_tokens, render_question, render_target, sanitise
from steps.finqa.records import FinQAFileError, FinQARecord, RecordError, load_records
from steps.finqa.rft import reference_answer, rft_line
from steps.recipes import (
    RECIPE_FILE,
    RUN_NAME,
    add_recipe_arguments,
    recipe_values_from_args,
    recipe_yaml,
    training_values,
)
from steps.rules import accuracy_threshold, as_flag, record_limit, training_record_limit
from steps.tracking import TrackingError, add_recipe_tracking_arguments, recipe_tracking_from_args, set_recipe_fields

DEFAULT_INPUT_DIR = "/opt/ml/processing/input/finqa"
DEFAULT_OUTPUT_DIR = "/opt/ml/processing/output"
DEFAULT_SEED = 42

# Split -> the names a file (or the folder it sits in) may start with; the first word wins.
SPLIT_NAMES = {
    "train": ("train",),
    "validation": ("validation", "valid", "dev", "val"),
    "test": ("test",),
}
DATA_SUFFIXES = (".json", ".jsonl", ".parquet")
OUTPUT_FILES = {
    "train": Path("train") / "train.jsonl",
    "validation": Path("validation") / "validation.jsonl",
    "test": Path("eval") / "gen_qa.jsonl",
}
OPEN_WEIGHTS_EVAL_FILE = Path("eval_open_weights") / "eval.jsonl"
"""The test split for an open model's serverless evaluation: AWS's OpenAI `messages` layout
(SageMaker developer guide, "Supported Dataset Formats for Bring-Your-Own-Dataset (BYOD)
Tasks"), the gold response as the assistant turn. Its own folder: a channel reads a whole
prefix, and eval/ holds gen_qa.jsonl."""
OPEN_WEIGHTS_TECHNIQUES = ("sft", "dpo", "rlvr")
OPEN_WEIGHTS_PROMPTS_FILE = Path("prompts_open_weights") / "prompts.jsonl"
"""For open-weights DPO: the training questions the base model answers (its wrong answers become
the pairs), in the open model's evaluation layout, as OPEN_WEIGHTS_EVAL_FILE is to gen_qa.jsonl."""
# For a DPO recipe the training sample is written as gen_qa prompts instead: the model answers them
# (GenerateTrainingAnswers) and steps.preferences turns its wrong answers into preference pairs.
PREFERENCE_PROMPTS_FILE = Path("prompts") / "gen_qa.jsonl"
REPORT_FILE = Path("report") / "data_report.json"
PROBLEMS_KEPT = 50
TOKEN_ESTIMATE_NOTE = (
    "estimated tokens: one per 4 letters of a word plus 3/4, one per 3 digits of a number plus "
    "2/3, one per other non-space byte; deliberately above what Nova's tokenizer counts")


_SYSTEM_PROMPT_TOKENS = estimate_tokens(SYSTEM_PROMPT)
# Lines in ASCII, non-ASCII characters as \\u escapes (as nova.conversation_line writes them):
# the C encoder's fast path, twice as fast as UTF-8 text, and the same JSON to every reader.
_json_line = json.JSONEncoder(separators=(",", ":")).encode


class PrepareError(Exception):
    """The input or the options cannot give valid Nova data; the message says what to fix."""


@dataclass
class _Candidate:
    record_id: str
    line: str
    """The record as a line of its JSONL file."""
    tokens: int
    sanitised: SanitiseCounts


@dataclass
class SplitResult:
    files: list[str]
    read: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    candidates: list[_Candidate] = field(default_factory=list)
    written: list[_Candidate] = field(default_factory=list)
    requested: int | None = None

    def skip(self, reason: str, message: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        self.problems.append(message)

    def report(self, output_file: Path) -> dict[str, Any]:
        sanitised = SanitiseCounts()
        for candidate in self.written:
            sanitised.add(candidate.sanitised)
        tokens = sorted(candidate.tokens for candidate in self.written)
        return {
            "input_files": self.files,
            "output_file": output_file.as_posix(),
            "read": self.read,
            "skipped": dict(sorted(self.skipped.items())),
            "skipped_total": sum(self.skipped.values()),
            "valid": len(self.candidates),
            "requested": self.requested,
            "sampled_out": len(self.candidates) - len(self.written),
            "written": len(self.written),
            "sanitised_replacements": {"total": sanitised.total,
                                       "by_string": dict(sorted(sanitised.by_string.items()))},
            "estimated_tokens": _percentiles(tokens),
            "problems": self.problems[:PROBLEMS_KEPT],
            "problems_not_listed": max(0, len(self.problems) - PROBLEMS_KEPT),
        }


def _percentiles(values: list[int]) -> dict[str, int]:
    """Nearest-rank percentiles of sorted values."""
    if not values:
        return {}
    def rank(p: float) -> int:
        return values[max(0, -(-len(values) * p // 100) - 1)]
    return {"p50": rank(50), "p90": rank(90), "p95": rank(95), "p99": rank(99), "max": values[-1]}


def find_split_files(input_dir: Path) -> tuple[dict[str, list[Path]], list[str]]:
    """Data files by split, from their names or their folders' names; plus the files ignored.

    `train.json`, `dev.json`, `test.json` (FinQA), `train_100.json`, and the Hugging Face
    parquet conversion's `default/train/0000.parquet` all work.
    """
    if not input_dir.is_dir():
        raise PrepareError(f"--input-dir {input_dir}: no such folder")
    by_split: dict[str, list[Path]] = {split: [] for split in SPLIT_NAMES}
    ignored = []
    for path in sorted(p for p in input_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(input_dir)
        if path.suffix.lower() not in DATA_SUFFIXES or path.name.startswith("."):
            continue
        split = _split_of(relative)
        if split:
            by_split[split].append(path)
        else:
            ignored.append(relative.as_posix())
    missing = [split for split, paths in by_split.items() if not paths]
    if missing:
        expected = "; ".join(f"{split}: a file or folder named {' / '.join(n + '*' for n in SPLIT_NAMES[split])}"
                             for split in missing)
        raise PrepareError(
            f"--input-dir {input_dir}: no data for split(s) {', '.join(missing)} "
            f"(looked for {expected}, ending in {' / '.join(DATA_SUFFIXES)})")
    return by_split, ignored


def _split_of(relative: Path) -> str | None:
    for part in (relative.name, *reversed(relative.parent.parts)):
        lowered = part.lower()
        for split, names in SPLIT_NAMES.items():
            if any(lowered.startswith(name) for name in names):
                return split
    return None


def _render(record: FinQARecord) -> tuple[str, str, SanitiseCounts]:
    counts = SanitiseCounts()
    question, target = sanitise(render_question(record), counts), sanitise(render_target(record), counts)
    for text in (question, target):
        _check_unicode(text, record)
    return question, target, counts


def _check_unicode(text: str, record: FinQARecord) -> None:
    """JSON can carry a lone surrogate ("\\ud800"), which is no character: no UTF-8 file can
    hold it, and Nova's readers would fail on it."""
    if text.isascii():  # constant time: Python keeps this flag on every string
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise RecordError(
            "invalid_text",
            f"record {record.id!r}: {text[error.start]!r} after {text[max(0, error.start - 40):error.start]!r} "
            "is a lone surrogate, not a character (fix or remove it in the input file)") from None


def _training_candidate(record: FinQARecord, max_length: int) -> _Candidate:
    question, target, counts = _render(record)
    tokens = check_conversation_texts([SYSTEM_PROMPT], [question, target], max_length)
    return _Candidate(record.id, conversation_line(SYSTEM_PROMPT, question, target), tokens, counts)


def _rft_candidate(record: FinQARecord, max_length: int) -> _Candidate:
    # The prompt only: the training job generates the responses, and the reward needs no gold
    # response, only exe_ans (a record without a gold program is still usable).
    counts = SanitiseCounts()
    question = sanitise(render_question(record), counts)
    for text in (question, record.answer, record.program):
        _check_unicode(text, record)
    reference = reference_answer(record)
    tokens = check_conversation_texts([SYSTEM_PROMPT], [question], max_length)
    return _Candidate(record.id, rft_line(record.id, SYSTEM_PROMPT, question, reference), tokens, counts)


def _open_weights_sft_candidate(record: FinQARecord, max_length: int) -> _Candidate:
    # The same sanitised texts as Nova's: both models learn from, and are tested on, one prompt.
    question, target, counts = _render(record)
    tokens = check_conversation_texts([SYSTEM_PROMPT], [question, target], max_length)
    return _Candidate(record.id, open_weights.sft_line(SYSTEM_PROMPT, question, target), tokens, counts)


def _open_weights_rlvr_candidate(record: FinQARecord, max_length: int) -> _Candidate:
    candidate = _rft_candidate(record, max_length)  # the RFT rules: same prompt, same reference
    question = sanitise(render_question(record), SanitiseCounts())
    candidate.line = open_weights.rlvr_line(SYSTEM_PROMPT, question, open_weights.ground_truth(record))
    return candidate


OPEN_WEIGHTS_TRAINING = {"sft": _open_weights_sft_candidate, "rlvr": _open_weights_rlvr_candidate}


def _eval_candidate(record: FinQARecord, max_length: int) -> _Candidate:
    question, target, counts = _render(record)
    metadata = {
        "id": record.id,
        "question": record.question,
        "answer": record.answer,
        "exe_ans": record.exe_ans,
        "program": record.program,
        "table": [list(row) for row in record.table],
    }
    data = gen_qa_record(SYSTEM_PROMPT, question, target, metadata)
    check_gen_qa(data)
    return _Candidate(record.id, _json_line(data) + "\n", _SYSTEM_PROMPT_TOKENS + estimate_tokens(question), counts)


def _preference_prompt_candidate(record: FinQARecord, max_length: int) -> _Candidate:
    # A record becomes a pair only if the model's answer can be scored (exe_ans), and the gold
    # reply, preferred in the pair, must fit max_length with the prompt.
    if record.exe_ans is None:
        raise RecordError("missing_exe_ans", f"record {record.id!r}: no exe_ans, so no answer to it can be scored")
    question, target, _ = _render(record)
    tokens = check_conversation_texts([SYSTEM_PROMPT], [question, target], max_length)
    candidate = _eval_candidate(record, max_length)
    candidate.tokens = tokens
    return candidate


def _build_split(files: list[Path], input_dir: Path, make: Callable[[FinQARecord, int], _Candidate],
                 max_length: int, strict: bool) -> SplitResult:
    result = SplitResult(files=[path.relative_to(input_dir).as_posix() for path in files])
    try:
        loaded = load_records(files, strict=strict)
    except FinQAFileError as error:
        raise PrepareError(str(error)) from None
    except RecordError as error:
        raise PrepareError(f"{error} (--strict stops at the first bad record; without it, bad records are "
                           "skipped and counted)") from None
    result.read = loaded.read
    for error in loaded.rejected:
        result.skip(error.reason, str(error))
    for record in loaded.records:
        try:
            result.candidates.append(make(record, max_length))
        except RecordTooLongError as error:
            result.skip("over_max_length",
                        f"record {record.id!r}: {error} (raise --max-length within what the recipe allows)")
        except RecordError as error:
            if strict:
                raise PrepareError(str(error)) from None
            result.skip(error.reason, str(error))
    return result


def _why_so_few(result: SplitResult, input_dir: Path) -> str:
    """What was read from which files, why records were skipped, and what to do about it."""
    files = ", ".join(str(input_dir / name) for name in result.files)
    if not result.read:
        return f"{files} holds no records; give FinQA's JSON array of records (or JSON lines, or parquet) there"
    if not result.skipped:
        return (f"read {result.read} from {files}, all usable: give it more records "
                "(FinQA's train split has 6,251)")
    reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(result.skipped.items()))
    first = f"; the first: {result.problems[0]}" if result.problems else ""
    records = "record" if result.read == 1 else "records"
    return (f"read {result.read} {records} from {files}, skipped {sum(result.skipped.values())} ({reasons}){first}. "
            "Fix those records, or point --input-dir at FinQA's files")


def _sample(result: SplitResult, limit: int | None, seed: int, name: str) -> None:
    result.requested = limit
    if limit is None or limit >= len(result.candidates):
        result.written = list(result.candidates)
        if limit is not None and limit > len(result.candidates):
            print(f"warning: {name}: {limit} records asked for, only {len(result.candidates)} usable; "
                  "writing all of them", file=sys.stderr)
        return
    chosen = sorted(random.Random(seed).sample(range(len(result.candidates)), limit))
    result.written = [result.candidates[index] for index in chosen]


@contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """Parsing and converting FinQA makes millions of small lists, dicts and tuples, none of
    them in a reference cycle; CPython's cycle collector walks the ones kept (the records and
    their tables) again and again and finds nothing: 5% of the step's time (a third of it
    while whole files were parsed at once). Everything is still freed by reference counting."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@_cycle_collector_paused()
def prepare(input_dir: Path, output_dir: Path, *, max_train_records: int | None = None,
            max_eval_records: int | None = None, seed: int = DEFAULT_SEED, strict: bool = False,
            recipe_id: str = DEFAULT_RECIPE, epochs: int | None = None,
            recipe_values: dict[str, Any] | None = None, plan: JobPlan | None = None,
            mlflow: tuple[str, str] | None = None, model_name_or_path: str | None = None,
            open_weights_technique: str | None = None) -> dict[str, Any]:
    """Write the Nova data, the report and the training recipe, all or nothing; return the report.

    With `open_weights_technique` (sft, dpo, rlvr) the training and validation data are in AWS's
    format for open-weights models (for DPO: the training questions, as for Nova DPO, and the same
    in the open model's evaluation layout), and the open model's evaluation dataset is written too.

    The recipe is AWS's `recipe_id` with `recipe_values` (recipe fields) and `epochs`; with
    `epochs` None no recipe is written. With a plan as well, the report holds the jobs' cost
    estimate, and an estimate over the plan's budget writes nothing; `mlflow` (tracking URI,
    experiment) fills the recipe's MLflow fields; `model_name_or_path` (a checkpoint's s3:// path)
    is where training starts instead of the base model. Raises PrepareError,
    NovaDataError, RecipeError or BudgetError.
    """
    chosen = recipe(recipe_id)
    values = {key: value for key, value in (recipe_values or {}).items() if value is not None}
    max_length = values.get("max_length", chosen.default("max_length"))
    # Outputs of an earlier run go first: if this run fails, nothing looks like its result.
    for relative in (*OUTPUT_FILES.values(), OPEN_WEIGHTS_EVAL_FILE, OPEN_WEIGHTS_PROMPTS_FILE,
                     PREFERENCE_PROMPTS_FILE, REPORT_FILE, RECIPE_FILE):
        (output_dir / relative).unlink(missing_ok=True)
    files, ignored = find_split_files(input_dir)
    if open_weights_technique is not None and open_weights_technique not in OPEN_WEIGHTS_TECHNIQUES:
        raise PrepareError(f"--open-weights-technique {open_weights_technique!r}: "
                           f"one of {', '.join(OPEN_WEIGHTS_TECHNIQUES)}")
    training = {"rft": _rft_candidate, "dpo": _preference_prompt_candidate}.get(chosen.method, _training_candidate)
    validation = _rft_candidate if chosen.method == "rft" else _training_candidate
    output_files = {**OUTPUT_FILES, **({"train": PREFERENCE_PROMPTS_FILE} if chosen.method == "dpo" else {})}
    if open_weights_technique == "dpo":
        # As for Nova DPO: the training questions, for the model to answer (steps/preferences.py).
        training, validation = _preference_prompt_candidate, _open_weights_sft_candidate
        output_files = {**OUTPUT_FILES, "train": PREFERENCE_PROMPTS_FILE}
    elif open_weights_technique is not None:
        training = validation = OPEN_WEIGHTS_TRAINING[open_weights_technique]
        output_files = OUTPUT_FILES
    results = {
        "train": _build_split(files["train"], input_dir, training, max_length, strict),
        "validation": _build_split(files["validation"], input_dir, validation, max_length, strict),
        "test": _build_split(files["test"], input_dir, _eval_candidate, max_length, strict),
    }
    _sample(results["train"], max_train_records, seed, "train")
    _sample(results["validation"], None, seed, "validation")
    _sample(results["test"], max_eval_records, seed, "test")

    written = len(results["train"].written)
    # Nova's bounds; AWS's pages for open-weights data state none (an empty file still fails below).
    if open_weights_technique is None:
        if written > MAX_TRAINING_RECORDS:
            raise NovaDataError(
                f"train: {written:,} usable training records; Nova fine-tuning takes {MIN_TRAINING_RECORDS} to "
                f"{MAX_TRAINING_RECORDS:,}: set --max-train-records (TrainingRecords) within that range")
        if written < MIN_TRAINING_RECORDS:
            raise NovaDataError(
                f"train: {written} usable training records, and Nova fine-tuning takes at least "
                f"{MIN_TRAINING_RECORDS}: {_why_so_few(results['train'], input_dir)}")
    for split in ("train", "validation", "test"):
        if not results[split].written:
            raise NovaDataError(f"{split}: no usable records to write: {_why_so_few(results[split], input_dir)}")

    splits = {name: result.report(output_files[name]) for name, result in results.items()}
    splits["test"]["over_prompt_token_guide"] = sum(
        1 for candidate in results["test"].written if candidate.tokens > EVAL_PROMPT_TOKEN_GUIDE)
    report = {
        "settings": {"max_train_records": max_train_records, "max_eval_records": max_eval_records,
                     "seed": seed, "max_length": max_length, "strict": strict, "recipe": recipe_id,
                     "open_weights_technique": open_weights_technique},
        "ignored_files": ignored,
        "splits": splits,
        "token_estimate": TOKEN_ESTIMATE_NOTE,
    }
    outputs = {output_files[name]: [candidate.line for candidate in result.written]
               for name, result in results.items()}
    if open_weights_technique is not None:
        layouts = {"validation": "sft"} if open_weights_technique == "dpo" else dict.fromkeys(
            ("train", "validation"), open_weights_technique)
        for name, layout in layouts.items():
            open_weights.check_lines(outputs[OUTPUT_FILES[name]], layout, OUTPUT_FILES[name].as_posix())
        # The same records, prompts and gold responses as the gen_qa.jsonl files the scorer reads.
        as_messages = {OPEN_WEIGHTS_EVAL_FILE: OUTPUT_FILES["test"], OPEN_WEIGHTS_PROMPTS_FILE: PREFERENCE_PROMPTS_FILE}
        for target, source in as_messages.items():
            if source in outputs:
                outputs[target] = [open_weights.sft_line(row["system"], row["query"], row["response"])
                                   for row in map(json.loads, outputs[source])]
        report["splits"]["test"]["open_weights_eval_file"] = OPEN_WEIGHTS_EVAL_FILE.as_posix()
        # No Nova recipe: a serverless job takes the hub model's own hyperparameters.
        if plan is not None:
            report["estimate"] = serverless_estimate(
                "open-weights model", open_weights_technique, "lora or full", plan.region,
                training_records=written,
                training_tokens=sum(candidate.tokens for candidate in results["train"].written),
                evaluation_records=len(results["test"].written),
                evaluation_tokens=sum(candidate.tokens for candidate in results["test"].written),
                max_training_cost=plan.max_training_cost)
            plan.check_budget(report["estimate"])
    elif epochs is not None:
        fields, report["recipe"] = training_values(chosen, epochs=epochs, train_records=written, **values)
        rendered = chosen.render(fields, name=RUN_NAME)
        if model_name_or_path is not None:
            # AWS's iterative training: the recipe's model is the earlier job's checkpoint
            # (https://docs.aws.amazon.com/nova/latest/userguide/nova-iterative-training.html).
            rendered["run"]["model_name_or_path"] = model_name_or_path
            report["recipe"]["model_name_or_path"] = model_name_or_path
        if mlflow is not None:
            set_recipe_fields(rendered, *mlflow)
        outputs[RECIPE_FILE] = [recipe_yaml(rendered)]
        if plan is not None:
            report["estimate"] = plan.estimate(
                rendered, training_records=written,
                training_tokens=sum(candidate.tokens for candidate in results["train"].written),
                evaluation_records=len(results["test"].written),
                evaluation_tokens=sum(candidate.tokens for candidate in results["test"].written))
            plan.check_budget(report["estimate"])
    outputs[REPORT_FILE] = [json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"]
    write_all(output_dir, outputs)
    return report


def write_all(output_dir: Path, outputs: dict[Path, list[str]]) -> None:
    """Write every file (given as its pieces of text) under a temporary name, then rename them
    all: all or nothing."""
    temporary = {}
    try:
        for relative, pieces in outputs.items():
            target = output_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.partial")
            with partial.open("w", encoding="utf-8", newline="\n") as handle:
                handle.writelines(pieces)
            temporary[partial] = target
        for partial, target in temporary.items():
            os.replace(partial, target)
    finally:
        for partial in temporary:
            partial.unlink(missing_ok=True)


# CreateModelPackage's CustomerMetadataProperties: values of 1 to 256 characters (botocore's
# CustomerMetadataValue shape; tests/test_oracle.py holds this to it).
METADATA_VALUE_MAX = 256


def check_metadata_values(values: list[tuple[str, str]]) -> None:
    """Executions started from Studio skip scripts/start_execution.py's check: this is their backstop."""
    for key, value in values:
        if len(value) > METADATA_VALUE_MAX:
            raise PrepareError(
                f"--metadata-value {key}: the model package's metadata value would be {len(value)} characters "
                f"({value}), over the {METADATA_VALUE_MAX} SageMaker allows, and RegisterModel would fail after "
                "every GPU job: shorten the DataLocation parameter, or the pipeline's --prefix or --bucket")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m steps.prepare", description=__doc__.split("\n")[0])
    parser.add_argument("--input-dir", type=Path, default=Path(DEFAULT_INPUT_DIR),
                        help="folder with the FinQA split files (default: %(default)s)")
    parser.add_argument("--output-dir", type=Path, default=Path(DEFAULT_OUTPUT_DIR),
                        help="folder to write train/, validation/, eval/ and report/ into (default: %(default)s)")
    parser.add_argument("--max-train-records", type=as_flag(training_record_limit), default=None, metavar="N",
                        help="a seeded sample of N training records (default: all)")
    parser.add_argument("--max-eval-records", type=as_flag(record_limit), default=None, metavar="N",
                        help="a seeded sample of N test records to evaluate on (default: all)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="sampling seed (default: %(default)s)")
    # Checked here, before any GPU, though only the gate uses it: a threshold of 5 would
    # otherwise be found out after training, when no model can reach it.
    parser.add_argument("--accuracy-threshold", type=as_flag(accuracy_threshold), default=None, metavar="FRACTION",
                        help="the pipeline's AccuracyThreshold, checked only (0 to 1)")
    parser.add_argument("--strict", action="store_true",
                        help="fail on the first bad record instead of skipping and counting it")
    parser.add_argument("--open-weights-technique", choices=OPEN_WEIGHTS_TECHNIQUES, default=None,
                        help="write the training data in AWS's format for serverless customization of an "
                             "open-weights model with this technique (steps/finqa/open_weights.py) "
                             "(default: Nova's format)")
    parser.add_argument("--metadata-value", action="append", nargs=2, default=[], metavar=("KEY", "VALUE"),
                        help="a model package metadata value the pipeline will register, checked against "
                             f"SageMaker's {METADATA_VALUE_MAX}-character limit before any GPU job (repeatable)")
    add_recipe_arguments(parser)
    add_estimate_arguments(parser)
    add_recipe_tracking_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_metadata_values(args.metadata_value)
        values = recipe_values_from_args(args)
        training_values(recipe(args.recipe), epochs=args.epochs, **values)  # bad values fail before any data is read
        plan = plan_from_args(args)
        report = prepare(args.input_dir, args.output_dir, max_train_records=args.max_train_records,
                         max_eval_records=args.max_eval_records, seed=args.seed, strict=args.strict,
                         recipe_id=args.recipe, epochs=args.epochs, recipe_values=values, plan=plan,
                         mlflow=recipe_tracking_from_args(args), model_name_or_path=args.model_name_or_path,
                         open_weights_technique=args.open_weights_technique)
    except (PrepareError, NovaDataError, RecipeError, EstimateError, BudgetError, TrackingError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for name, split in report["splits"].items():
        skipped = ", ".join(f"{reason} {count}" for reason, count in split["skipped"].items()) or "none"
        print(f"{name}: read {split['read']}, wrote {split['written']} to {split['output_file']}, "
              f"skipped {split['skipped_total']} ({skipped}), sampled out {split['sampled_out']}, "
              f"sanitised {split['sanitised_replacements']['total']}, "
              f"tokens p50 {split['estimated_tokens'].get('p50')} max {split['estimated_tokens'].get('max')}")
        for problem in split["problems"][:10]:
            print(f"  skipped: {problem}", file=sys.stderr)
    estimate = report["estimate"]
    print(f"estimate: {estimate['summary']}\n  throughput: {estimate['throughput_source']}\n"
          f"  price: {estimate['price_source']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
