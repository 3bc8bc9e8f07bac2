"""Score a Nova evaluation job's generations on FinQA: the project's accuracy figure.

    python -m steps.evaluate --predictions out/output.tar.gz --eval-data out/prepared/eval --output-dir out/scores

Every flag, with its default, is in `python -m steps.evaluate --help`.

- `--predictions`: the Nova evaluation job's output: its `output.tar.gz`, a folder that
  holds it (or holds `inference_output.jsonl`, at any depth), or the jsonl file itself.
  The archive's member is read in memory; nothing is extracted.
- `--eval-data`: the folder with the `gen_qa.jsonl` the preparation step wrote (or the
  file). Each line's `metadata` (JSON text) carries the record's id, gold program,
  exe_ans, answer and table.

Writes OUT/evaluation.json and OUT/per_record.jsonl (each record's verdicts, and with
--baseline-predictions the base model's under `baseline`); with the MLflow flags, logs the scores,
the data report's estimate and the jobs' cost to the execution's run (steps/tracking.py).

Metrics (all always reported; the denominator is every eval record, so a record with no
prediction counts as wrong, never as skipped):
- execution_accuracy: FinQA's verdict on the `Program:` line, exactly as FinQA's own
  evaluate.py gives it (steps/finqa/program.py, `execute_as_finqa`). The default primary
  metric: it is FinQA's official measure and leaves nothing to interpretation.
- lenient_execution_accuracy: correct where execution_accuracy is, and also where the
  program is right once read with the extensions listed in steps/finqa/program.py (case,
  spacing, nesting, markdown and a trailing full stop, retyped row names).
- answer_accuracy: the `Answer:` line, or the final answer of free text, compared with
  the gold within a relative tolerance (steps/finqa/answers.py).
`metrics.accuracy.value` repeats the primary metric: the pipeline's gate reads that path.
Each metric counts every record as one of: correct; wrong (a value or answer that is not
the gold); unparseable (no usable program or answer: none written, malformed, or a program
that fails to execute, such as a division by zero; `verdict_reasons` counts why); missing
(no prediction). `scored` is every record with a prediction.

Matching predictions to eval records: by the id in the echoed `metadata`; a line without
usable metadata is matched by finding exactly one eval record whose `query` text occurs
in its `prompt`. When several lines match one record the first counts and the others are
counted as duplicates. Lines matching no record are counted and reported, and a file in
which no line matches is an error, as is an empty or unreadable one.
"""
from __future__ import annotations

import argparse
import ast
import json
import math
import re
import sys
import tarfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from steps.archives import ArchiveError, members_named
from steps.finqa.answers import DEFAULT_TOLERANCE, Gold, Number, answer_matches, extract_answer, read_generation
from steps.finqa.program import (
    EXE_ANS_DECIMALS,
    MAX_MAGNITUDE,
    MAX_PROGRAM_CHARS,
    MAX_STEPS,
    MAX_TEXT_RESULT,
    ProgramError,
    Value,
    execute_as_finqa,
    execute_leniently,
    matches_exe_ans,
)
from steps.finqa.records import RecordError, parse_exe_ans
from steps.tracking import TrackingError, add_tracking_arguments, log_from_args, server_from_args

PREDICTIONS_FILE = "inference_output.jsonl"
EVAL_FILE = "gen_qa.jsonl"
EXECUTION = "execution_accuracy"
LENIENT_EXECUTION = "lenient_execution_accuracy"
ANSWER = "answer_accuracy"
METRICS = (EXECUTION, LENIENT_EXECUTION, ANSWER)
MAX_MEMBER_BYTES = 1 << 30
"""An inference_output.jsonl for FinQA's 1,147 test records is a few MB."""
MAX_REPORTED_PROBLEMS = 20

CORRECT = "correct"
WRONG = "wrong"
UNPARSEABLE = "unparseable"
MISSING = "missing"


VERDICTS = {
    CORRECT: "the program's value matches exe_ans / the answer matches the gold",
    WRONG: "a value or answer was read, and it is not the gold",
    UNPARSEABLE: "no usable program or answer: none written, malformed, or failing to execute",
    MISSING: "no prediction for the record; counted as not correct",
}


class EvaluationInputError(ValueError):
    """An input cannot be used; the message names it and says what to do."""


@dataclass(frozen=True)
class EvalRecord:
    id: str
    exe_ans: Value
    answer: str
    program: str
    table: tuple
    query: str
    system: str = ""
    response: str = ""
    """The gold reply the preparation step rendered (what SFT trains on, DPO prefers)."""


@dataclass
class PredictionSet:
    source: str
    by_id: dict
    """eval record id -> the generation text that counts for it."""
    lines: int = 0
    matched_by_metadata: int = 0
    matched_by_prompt: int = 0
    duplicates: int = 0
    unmatched: int = 0
    unreadable: int = 0
    problems: list = field(default_factory=list)

    def note(self, problem: str) -> None:
        if len(self.problems) < MAX_REPORTED_PROBLEMS:
            self.problems.append(_writable(problem))


# ---------------------------------------------------------------- eval records

def load_eval_records(eval_data: Path) -> list[EvalRecord]:
    """The scored records, from the preparation step's gen_qa.jsonl."""
    path = _find_eval_file(Path(eval_data))
    records: list[EvalRecord] = []
    seen: set[str] = set()
    try:
        with path.open(encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                record = _eval_record(line, f"{path} line {number}")
                if record.id in seen:
                    raise EvaluationInputError(
                        f"{path} line {number}: id {record.id!r} appears twice; rerun the preparation step")
                seen.add(record.id)
                records.append(record)
    except (OSError, UnicodeDecodeError) as error:
        raise EvaluationInputError(f"{path}: cannot be read ({error})") from None
    if not records:
        raise EvaluationInputError(
            f"{path}: no eval records; the preparation step writes one JSON line per test record")
    return records


def _find_eval_file(eval_data: Path) -> Path:
    if eval_data.is_file():
        return eval_data
    if not eval_data.is_dir():
        raise EvaluationInputError(
            f"--eval-data {eval_data}: no such file or folder; pass the preparation step's eval output folder")
    found = sorted(eval_data.rglob(EVAL_FILE))
    if len(found) != 1:
        what = "no" if not found else f"{len(found)} ({', '.join(map(str, found))})"
        raise EvaluationInputError(
            f"--eval-data {eval_data}: {what} {EVAL_FILE} files; pass the folder holding exactly one")
    return found[0]


def _eval_record(line: str, where: str) -> EvalRecord:
    try:
        row = json.loads(line)
        metadata = _metadata_object(row.get("metadata")) if isinstance(row, dict) else None
    except UNREADABLE_JSON as error:
        raise EvaluationInputError(f"{where}: not valid JSON ({error})") from None
    if metadata is None or not str(metadata.get("id", "")).strip():
        raise EvaluationInputError(
            f"{where}: no 'metadata' JSON object with an 'id'; the scorer needs the preparation step's "
            "metadata (id, program, exe_ans, answer, table)")
    record_id = str(metadata["id"]).strip()
    try:
        exe_ans = parse_exe_ans(metadata.get("exe_ans"), where)
    except RecordError as error:
        raise EvaluationInputError(str(error)) from None
    if exe_ans is None:
        raise EvaluationInputError(f"{where} (id {record_id!r}): metadata has no exe_ans; this record cannot be scored")
    table = metadata.get("table") or []
    if not isinstance(table, list) or not all(isinstance(row, list) for row in table):
        raise EvaluationInputError(f"{where} (id {record_id!r}): metadata 'table' must be a list of rows of cells")
    return EvalRecord(
        id=record_id,
        exe_ans=exe_ans,
        answer=str(metadata.get("answer") or ""),
        program=str(metadata.get("program") or ""),
        table=tuple(tuple(map(str, row)) for row in table),
        query=str(row.get("query") or ""),
        system=str(row.get("system") or ""),
        response=str(row.get("response") or ""),
    )


def _metadata_object(metadata: Any, encodings: int = 2) -> dict | None:
    """gen_qa metadata is JSON text; an echo may come back as an object, a Python repr, or
    JSON text encoded once more."""
    if isinstance(metadata, dict):
        return metadata
    if not isinstance(metadata, str) or not metadata.strip() or encodings == 0:
        return None
    try:
        parsed = json.loads(metadata)
    except UNREADABLE_JSON:
        parsed = _literal(metadata.strip())
    return _metadata_object(parsed, encodings - 1) if isinstance(parsed, str) else (
        parsed if isinstance(parsed, dict) else None)


# ---------------------------------------------------------------- predictions

def read_predictions(path: Path, records: Sequence[EvalRecord], option: str = "--predictions") -> PredictionSet:
    """The generations of a Nova evaluation job, matched to the eval records."""
    path = Path(path)
    source, lines = _prediction_lines(path, option)
    predictions = PredictionSet(source=source, by_id={})
    ids = {record.id for record in records}
    prompt_index = _PromptIndex(records)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        predictions.lines += 1
        where = f"{source} line {number}"
        try:
            row = json.loads(line)
        except UNREADABLE_JSON as error:
            predictions.unreadable += 1
            predictions.note(f"{where}: not valid JSON ({error})")
            continue
        if not isinstance(row, dict) or "inference" not in row:
            predictions.unreadable += 1
            predictions.note(f"{where}: not an object with an 'inference' field")
            continue
        record_id, how = _match(row, ids, prompt_index)
        if record_id is None:
            predictions.unmatched += 1
            predictions.note(f"{where}: {how}")
            continue
        if record_id in predictions.by_id:
            predictions.duplicates += 1
            predictions.note(f"{where}: a second prediction for id {record_id!r}; the first one counts")
            continue
        predictions.by_id[record_id] = _writable(generation_text(row["inference"]))
        if how == "metadata":
            predictions.matched_by_metadata += 1
        else:
            predictions.matched_by_prompt += 1
    if predictions.lines == 0:
        raise EvaluationInputError(
            f"{option} {source}: the file has no predictions; check that the evaluation job finished")
    if not predictions.by_id:
        detail = "; ".join(predictions.problems[:3])
        raise EvaluationInputError(
            f"{option} {source}: none of its {predictions.lines} lines matches an eval record ({detail}); "
            "pass the output of the evaluation job that ran on this --eval-data")
    return predictions


def generation_text(inference: Any) -> str:
    """The model's text from an `inference` field: a string, a list of strings (the first
    is the answer), or such a list written as a Python literal. Anything else the model wrote
    is its text as it stands, to be scored (as unparseable, most likely), never an error."""
    while isinstance(inference, list):
        inference = inference[0] if inference else ""
    if not isinstance(inference, str):
        return "" if inference is None else str(inference)
    stripped = inference.strip()
    if stripped.startswith("[") and stripped.endswith("]"):
        parsed = _literal(stripped)
        if isinstance(parsed, list) and all(isinstance(item, str) for item in parsed):
            return parsed[0] if parsed else ""
    return inference


# What json.loads raises on text it cannot take: a JSONDecodeError, a plain ValueError for an
# integer past Python's digit limit, a RecursionError for nesting deeper than the interpreter's.
UNREADABLE_JSON = (ValueError, RecursionError)


def _literal(text: str) -> Any:
    """Python's literal reader on text a model wrote, or None where it cannot read it.

    ast.literal_eval raises more than its documented ValueError on hostile input: TypeError
    (`[{[1]: 2}]`, an unhashable key), SyntaxError, MemoryError and RecursionError (deep
    nesting), ValueError past the integer digit limit. Whatever it raises, the text is not
    a literal; one answer must not end the scoring of all the others."""
    try:
        return ast.literal_eval(text)
    except Exception:  # noqa: BLE001 - see the docstring: any failure means "not a literal"
        return None


def _writable(text: str) -> str:
    """The text with what UTF-8 cannot encode (a lone surrogate a model escaped) replaced."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _match(row: dict, ids: set, prompt_index: _PromptIndex) -> tuple[str | None, str]:
    metadata = _metadata_object(row.get("metadata"))
    if metadata is not None and str(metadata.get("id", "")).strip():
        record_id = str(metadata["id"]).strip()
        if record_id in ids:
            return record_id, "metadata"
        return None, f"metadata id {record_id!r} is not an eval record"
    prompt = row.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return None, "neither metadata with an id nor a prompt to match"
    matches = prompt_index.find(prompt)
    if len(matches) == 1:
        return matches[0], "prompt"
    if not matches:
        return None, "no metadata id, and its prompt contains no eval record's query"
    return None, f"no metadata id, and its prompt contains the query of {len(matches)} eval records"


class _PromptIndex:
    """Finds the eval records whose query text occurs in a prompt.

    Text is compared after folding case, the escapes a stringified message list adds
    (`\\n`, `\\'`) and every run of non-alphanumeric characters, so that the job's
    rendering of the conversation does not matter. Built on first use: files with
    metadata never pay for it. A prompt that ends with its query (the usual rendering) is
    found through the queries' last characters; any other is compared with every query.
    """

    _ESCAPES = re.compile(r"\\[nrt'\"\\]")
    _SEPARATORS = re.compile(r"[\W_]+")
    _TAIL = 64

    def __init__(self, records: Sequence[EvalRecord]):
        self.records = records
        self.queries: list | None = None
        self.by_tail: dict = {}

    @classmethod
    def fold(cls, text: str) -> str:
        return cls._SEPARATORS.sub(" ", cls._ESCAPES.sub(" ", text)).strip().lower()

    def find(self, prompt: str) -> list[str]:
        if self.queries is None:
            self.queries = [(record.id, self.fold(record.query)) for record in self.records if record.query.strip()]
            for record_id, query in self.queries:
                self.by_tail.setdefault(query[-self._TAIL:], []).append((record_id, query))
        folded = self.fold(prompt)
        found = [(record_id, query) for record_id, query in self.by_tail.get(folded[-self._TAIL:], ())
                 if query in folded]
        if not found:
            found = [(record_id, query) for record_id, query in self.queries if query and query in folded]
        # a query that is part of a longer matching query is not a second match
        return [record_id for record_id, query in found
                if not any(len(other) > len(query) and query in other for _, other in found)]


def _prediction_lines(path: Path, option: str) -> tuple[str, list[str]]:
    if path.is_dir():
        found = sorted(path.rglob(PREDICTIONS_FILE))
        if len(found) > 1:
            raise EvaluationInputError(
                f"{option} {path}: {len(found)} {PREDICTIONS_FILE} files ({', '.join(map(str, found))}); "
                "pass one of them")
        if found:
            return str(found[0]), _text_lines(_read_bytes(found[0], option), str(found[0]), option)
        archives = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith((".tar.gz", ".tgz", ".tar")))
        if len(archives) != 1:
            what = "no" if not archives else f"{len(archives)}"
            raise EvaluationInputError(
                f"{option} {path}: {what} {PREDICTIONS_FILE} and {what} output archives in it; pass the Nova "
                f"evaluation job's output.tar.gz, its folder, or its {PREDICTIONS_FILE}")
        path = archives[0]
    if not path.exists():
        raise EvaluationInputError(f"{option} {path}: no such file or folder")
    if path.name.endswith((".tar.gz", ".tgz", ".tar")) or _is_tar(path):
        return _lines_from_archive(path, option)
    return str(path), _text_lines(_read_bytes(path, option), str(path), option)


def _read_bytes(path: Path, option: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise EvaluationInputError(f"{option} {path}: cannot be read ({error.strerror or error})") from None


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def _lines_from_archive(path: Path, option: str) -> tuple[str, list[str]]:
    try:
        members = members_named(path, PREDICTIONS_FILE, MAX_MEMBER_BYTES)
    except ArchiveError as error:
        raise EvaluationInputError(f"{option} {error}") from None
    if len(members) != 1:
        what = "no" if not members else f"{len(members)} ({', '.join(name for name, _ in members)})"
        raise EvaluationInputError(
            f"{option} {path}: the archive has {what} {PREDICTIONS_FILE}; pass the Nova evaluation "
            "job's output.tar.gz, or the jsonl file itself")
    member, data = members[0]
    source = f"{path}!{member}"
    return source, _text_lines(data, source, option)


def _text_lines(data: bytes, source: str, option: str) -> list[str]:
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as error:
        raise EvaluationInputError(f"{option} {source}: not UTF-8 JSON lines ({error})") from None


# ---------------------------------------------------------------- scoring

def score_record(record: EvalRecord, generation: str | None, tolerance: float) -> dict:
    """One record's verdicts: execution and answer, each correct / wrong / unparseable / missing."""
    gold = Gold.of(record.exe_ans, record.answer)
    result: dict[str, Any] = {
        "id": record.id,
        "gold": {"exe_ans": record.exe_ans, "answer": record.answer, "program": record.program},
    }
    if generation is None:
        result["prediction"] = None
        for name in METRICS:
            result[name] = {"verdict": MISSING}
        return result
    parsed = read_generation(generation)
    result["prediction"] = {"program": parsed.program, "answer_source": parsed.answer_source, "generation": generation}
    result[EXECUTION] = _execution_verdict(parsed.program, record, execute_as_finqa)
    result[LENIENT_EXECUTION] = (result[EXECUTION] if result[EXECUTION]["verdict"] == CORRECT
                                 else _execution_verdict(parsed.program, record, execute_leniently))
    answer = extract_answer(parsed, gold.exe_ans)
    if answer is None:
        reason = "no number" if not isinstance(gold.exe_ans, str) else "no yes/no"
        result[ANSWER] = {"verdict": UNPARSEABLE, "reason": reason}
    else:
        shown = answer.value if isinstance(answer, Number) else answer
        verdict = CORRECT if answer_matches(answer, gold, tolerance) else WRONG
        result[ANSWER] = {"verdict": verdict, "parsed": shown,
                          "percent": answer.percent if isinstance(answer, Number) else None}
    return result


def _execution_verdict(program: str | None, record: EvalRecord, execute: Callable[..., Value]) -> dict:
    if not program:
        return {"verdict": UNPARSEABLE, "reason": "no Program: line"}
    try:
        value = execute(program, record.table)
    except ProgramError as error:
        return {"verdict": UNPARSEABLE, "reason": error.reason, "detail": str(error)}
    verdict = CORRECT if matches_exe_ans(value, record.exe_ans) else WRONG
    # FinQA's arithmetic can end in inf or nan, which JSON cannot hold as numbers
    shown = value if isinstance(value, str) or math.isfinite(value) else str(value)
    return {"verdict": verdict, "value": shown}


def score_predictions(records: Sequence[EvalRecord], predictions: PredictionSet, tolerance: float) -> tuple[list, dict]:
    """Every record's verdicts, and the metrics over all records."""
    per_record = [score_record(record, predictions.by_id.get(record.id), tolerance) for record in records]
    metrics = {name: _metric(per_record, name) for name in METRICS}
    return per_record, metrics


def _metric(per_record: Sequence[dict], name: str) -> dict:
    counts = {CORRECT: 0, WRONG: 0, UNPARSEABLE: 0, MISSING: 0}
    for result in per_record:
        counts[result[name]["verdict"]] += 1
    total = len(per_record)
    return {
        "value": counts[CORRECT] / total,
        "correct": counts[CORRECT],
        "wrong": counts[WRONG],
        "unparseable": counts[UNPARSEABLE],
        "missing": counts[MISSING],
        "scored": total - counts[MISSING],
        "total": total,
    }


def evaluate(predictions_path: Path, eval_data: Path, *, baseline_path: Path | None = None,
             primary_metric: str = EXECUTION, tolerance: float = DEFAULT_TOLERANCE,
             model: str | None = None) -> tuple[dict, list]:
    """evaluation.json's content and the per-record verdicts; `model` names the base model
    (written as `model`, which scripts.report uses to put models side by side)."""
    if primary_metric not in METRICS:
        raise EvaluationInputError(f"--primary-metric {primary_metric!r}: choose one of {', '.join(METRICS)}")
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not (
            math.isfinite(tolerance) and 0 <= tolerance < 1):
        raise EvaluationInputError(f"--tolerance {tolerance!r}: a relative tolerance from 0 to below 1, such as 0.01")
    records = load_eval_records(eval_data)
    predictions = read_predictions(predictions_path, records)
    per_record, metrics = score_predictions(records, predictions, tolerance)
    evaluation: dict[str, Any] = {
        "metrics": {"accuracy": {"value": metrics[primary_metric]["value"], "metric": primary_metric}, **metrics},
        "primary_metric": primary_metric,
        "counts": _counts(records, predictions),
        "tolerance": tolerance_rules(tolerance),
        "verdicts": VERDICTS,
        "verdict_reasons": _reasons(per_record),
        "problems": predictions.problems,
        "baseline": None,
        "improvement": None,
    }
    if model:
        evaluation["model"] = model
    if baseline_path is not None:
        baseline_predictions = read_predictions(baseline_path, records, option="--baseline-predictions")
        baseline_per_record, baseline_metrics = score_predictions(records, baseline_predictions, tolerance)
        # The base model's verdict beside the model's on each record: a paired test
        # (scripts/report.py, McNemar's) compares the two on the same records.
        for result, baseline_result in zip(per_record, baseline_per_record):
            result["baseline"] = {name: baseline_result[name]["verdict"] for name in METRICS}
        evaluation["baseline"] = {
            "metrics": baseline_metrics,
            "counts": _counts(records, baseline_predictions),
            "problems": baseline_predictions.problems,
        }
        evaluation["improvement"] = {
            name: {"value": metrics[name]["value"] - baseline_metrics[name]["value"],
                   "model": metrics[name]["value"], "baseline": baseline_metrics[name]["value"]}
            for name in METRICS
        }
        evaluation["metrics"]["accuracy_improvement"] = {
            "value": evaluation["improvement"][primary_metric]["value"], "metric": primary_metric}
    return evaluation, per_record


def _counts(records: Sequence[EvalRecord], predictions: PredictionSet) -> dict:
    return {
        "eval_records": len(records),
        "prediction_lines": predictions.lines,
        "matched": len(predictions.by_id),
        "matched_by_metadata": predictions.matched_by_metadata,
        "matched_by_prompt": predictions.matched_by_prompt,
        "duplicate_predictions": predictions.duplicates,
        "unmatched_predictions": predictions.unmatched,
        "unreadable_prediction_lines": predictions.unreadable,
        "records_without_prediction": len(records) - len(predictions.by_id),
        "predictions_source": predictions.source,
    }


def _reasons(per_record: Sequence[dict]) -> dict:
    reasons: dict[str, dict[str, int]] = {name: {} for name in METRICS}
    for result in per_record:
        for name in METRICS:
            verdict = result[name]
            if verdict["verdict"] in (UNPARSEABLE, MISSING):
                key = verdict.get("reason", verdict["verdict"])
                reasons[name][key] = reasons[name].get(key, 0) + 1
    return reasons


def tolerance_rules(tolerance: float) -> dict:
    """How a verdict was reached, written beside the figures it produced."""
    return {
        "answer_relative": tolerance,
        "answer_rule": (
            "right when some reading of the answer (its value; also value/100 and value*100, as FinQA "
            "mixes fractions and percentages; also multiplied out by a scale word after it, such as "
            "million) is within answer_relative of exe_ans or of the human answer's number (also /100 "
            "when it is a percentage, multiplied out by its scale word), in exact decimal arithmetic; "
            "the sign counts; a yes/no answer must be the word of exe_ans or of the human answer"),
        "execution_decimals": EXE_ANS_DECIMALS,
        "execution_rule": (
            "FinQA's verdict exactly (its evaluate.py: program_tokenization, eval_program, str_to_num, "
            "process_row): the Program: line is tokenized on ', ', must be a list of op(arg1, arg2) steps "
            "with FinQA's ten operation names, and its result rounded to execution_decimals places must "
            "equal exe_ans; greater() gives yes/no, compared as words"),
        "execution_max_text_result": MAX_TEXT_RESULT,
        "lenient_execution_rule": (
            "correct when execution_rule says so; otherwise the program is read leniently (markdown and a "
            "trailing full stop dropped, operation names in any case, any spacing, nested calls, row names "
            "matched ignoring case and repeated spaces, row names with commas or parentheses; "
            "steps/finqa/program.py lists each) and compared as FinQA compares"),
        "lenient_program_limits": {"max_characters": MAX_PROGRAM_CHARS, "max_steps": MAX_STEPS,
                                   "max_magnitude": MAX_MAGNITUDE},
    }


def write_outputs(output_dir: Path, evaluation: dict, per_record: Sequence[dict]) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    with (output_dir / "per_record.jsonl").open("w", encoding="utf-8") as handle:
        for result in per_record:
            handle.write(json.dumps(result, ensure_ascii=False) + "\n")
    (output_dir / "evaluation.json").write_text(json.dumps(evaluation, indent=2, ensure_ascii=False) + "\n",
                                                encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m steps.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--predictions", type=Path, default=Path("/opt/ml/processing/input/predictions"),
                        help="the Nova evaluation job's output.tar.gz, its folder, or inference_output.jsonl")
    parser.add_argument("--eval-data", type=Path, default=Path("/opt/ml/processing/input/eval"),
                        help=f"the folder with the preparation step's {EVAL_FILE}")
    parser.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/output"))
    parser.add_argument("--baseline-predictions", type=Path, default=None,
                        help="the base model's evaluation output on the same records, for comparison")
    parser.add_argument("--primary-metric", default=EXECUTION, choices=METRICS,
                        help="the metric written to metrics.accuracy (default: %(default)s)")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                        help="relative tolerance of answer_accuracy (default: %(default)s)")
    parser.add_argument("--base-model", default=None, metavar="MODEL",
                        help="the base model the predictions' model was fine-tuned from, as --base-model names it "
                             "(written to evaluation.json as `model`; default: none, read as Nova Lite)")
    add_tracking_arguments(parser)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        mlflow = server_from_args(args)
    except TrackingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        evaluation, per_record = evaluate(
            args.predictions, args.eval_data, baseline_path=args.baseline_predictions,
            primary_metric=args.primary_metric, tolerance=args.tolerance, model=args.base_model)
    except EvaluationInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    write_outputs(args.output_dir, evaluation, per_record)
    print(_summary(evaluation, time.perf_counter() - started))
    if mlflow is not None:
        try:
            run_id = log_from_args(mlflow, args, evaluation)
        except TrackingError as error:
            print(f"error: {error} (the scores are in {args.output_dir / 'evaluation.json'})", file=sys.stderr)
            return 3
        print(f"MLflow: logged to run {run_id} ({args.mlflow_experiment} / {args.mlflow_run_name})")
    return 0


def _summary(evaluation: dict, seconds: float) -> str:
    metrics = evaluation["metrics"]
    counts = evaluation["counts"]
    lines = [f"{counts['eval_records']} eval records, {counts['matched']} with a prediction "
             f"({counts['unmatched_predictions']} unmatched, {counts['duplicate_predictions']} duplicate, "
             f"{counts['unreadable_prediction_lines']} unreadable prediction lines)"]
    for name in METRICS:
        metric = metrics[name]
        line = (f"{name}: {metric['value']:.4f} ({metric['correct']}/{metric['total']}; "
                f"{metric['unparseable']} unparseable, {metric['missing']} missing)")
        if evaluation["improvement"]:
            line += f"; baseline {evaluation['improvement'][name]['baseline']:.4f}"
        lines.append(line)
    lines.append(f"primary ({evaluation['primary_metric']}): {metrics['accuracy']['value']:.4f}; "
                 f"scored in {seconds:.2f} s")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
