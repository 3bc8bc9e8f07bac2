"""Turn a model's answers to FinQA training questions into Nova DPO preference pairs.

    python -m steps.preferences --predictions PATH --prompts DIR --output-dir DIR [--max-length TOKENS]
        [--layout nova|open-weights]

- `--predictions`: the Nova evaluation job's output for the training prompts (its
  `output.tar.gz`, a folder holding it or `inference_output.jsonl`, or the jsonl itself), read
  exactly as `steps.evaluate` reads the test answers.
- `--prompts`: the folder with the `gen_qa.jsonl` of training records the preparation step
  wrote for DPO (or the file): each line's prompt, gold reply and scoring metadata.

Each answer gets FinQA's official verdict (execution accuracy, `steps.evaluate.score_record`).
Where it is wrong, the record becomes a pair (steps/finqa/preferences.py): the gold
`Program:` / `Answer:` reply preferred, the model's reply not. Writes OUT/train/train.jsonl (the
DPO training data, checked against AWS's DPO rules) and OUT/report/preferences.json: pairs made,
records the model got right (no pair), records dropped by reason. Fewer pairs than AWS's minimum
(8 for Nova 1.0) fails here, with the numbers, before the DPO job starts; nothing is written.
With `--layout open-weights` the same pairs are written in AWS's DPO layout for open-weights models
(steps/finqa/open_weights.py); AWS's pages give those no bounds, so only none fails.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from steps.evaluate import (
    ANSWER,
    CORRECT,
    EXECUTION,
    EvaluationInputError,
    load_eval_records,
    read_predictions,
    score_record,
)
from steps.finqa import open_weights
from steps.finqa.answers import DEFAULT_TOLERANCE
from steps.finqa.preferences import (
    MAX_PAIRS,
    MIN_PAIRS,
    Attempt,
    PreferenceError,
    build_pairs,
    check_preference_lines,
)
from steps.prepare import write_all

DEFAULT_PREDICTIONS = "/opt/ml/processing/input/predictions"
DEFAULT_PROMPTS = "/opt/ml/processing/input/prompts"
DEFAULT_OUTPUT_DIR = "/opt/ml/processing/output"
DEFAULT_MAX_LENGTH = 4096
"""The smallest max_length of AWS's Nova DPO recipes (Micro's g5/g6 ones); pass the recipe's."""
TRAIN_FILE = Path("train") / "train.jsonl"
NOVA, OPEN_WEIGHTS = "nova", "open-weights"
LAYOUTS = (NOVA, OPEN_WEIGHTS)
REPORT_FILE = Path("report") / "preferences.json"


def make_preferences(predictions: Path, prompts: Path, output_dir: Path, *,
                     max_length: int = DEFAULT_MAX_LENGTH, layout: str = NOVA) -> dict[str, Any]:
    """Score the answers, write the pairs and the report (all or nothing); return the report.

    Raises EvaluationInputError for unusable inputs and PreferenceError when the pairs are too
    few (or too many) for Nova DPO.
    """
    for relative in (TRAIN_FILE, REPORT_FILE):
        (output_dir / relative).unlink(missing_ok=True)
    records = load_eval_records(prompts)
    answers = read_predictions(predictions, records)
    attempts = []
    for record in records:
        if not record.response.strip() or not record.system.strip():
            raise EvaluationInputError(
                f"--prompts {prompts}: record {record.id!r} has no gold reply or system prompt; pass the "
                "preparation step's DPO prompts (gen_qa.jsonl with system, query and response)")
        verdicts = score_record(record, answers.by_id.get(record.id), DEFAULT_TOLERANCE)
        attempts.append(Attempt(id=record.id, system=record.system, user=record.query,
                                gold_reply=record.response, reply=answers.by_id.get(record.id),
                                correct=verdicts[EXECUTION]["verdict"] == CORRECT,
                                answer_correct=verdicts[ANSWER]["verdict"] == CORRECT))
    pairs = build_pairs(attempts, max_length)
    report = {
        **pairs.report(),
        "verdict": f"{EXECUTION}: FinQA's own verdict on the reply's Program: line (steps/evaluate.py)",
        "max_length": max_length,
        "predictions": {"source": answers.source, "lines": answers.lines, "matched": len(answers.by_id),
                        "unmatched": answers.unmatched, "duplicates": answers.duplicates,
                        "unreadable": answers.unreadable, "problems": answers.problems},
    }
    if layout == OPEN_WEIGHTS:
        if not pairs.made:
            raise PreferenceError(
                f"no preference pairs from {pairs.attempts} training records: the model got {pairs.base_correct} "
                f"right and {report['dropped_total']} were dropped. Raise TrainingRecords or train with SFT.")
        lines = [open_weights.dpo_line_from_pair(json.loads(line)) for line in pairs.lines]
        open_weights.check_lines(lines, "dpo", str(TRAIN_FILE))
        report["layout"] = OPEN_WEIGHTS
        write_all(output_dir, {TRAIN_FILE: lines,
                               REPORT_FILE: [json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"]})
        return report
    if not MIN_PAIRS <= pairs.made <= MAX_PAIRS:
        dropped = ", ".join(f"{reason} {count}" for reason, count in report["dropped"].items()) or "none"
        raise PreferenceError(
            f"{pairs.made} preference pairs from {pairs.attempts} training records: the model got "
            f"{pairs.base_correct} right (no pair) and {report['dropped_total']} were dropped ({dropped}); "
            f"Nova 1.0 DPO takes {MIN_PAIRS} to {MAX_PAIRS:,} pairs. Raise TrainingRecords (more questions "
            "to get wrong) or train with SFT.")
    check_preference_lines(pairs.lines, str(TRAIN_FILE))
    write_all(output_dir, {TRAIN_FILE: pairs.lines,
                           REPORT_FILE: [json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"]})
    return report



def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number of tokens, at least 1 (the recipe's max_length)")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m steps.preferences", description=__doc__.split("\n\n")[0])
    parser.add_argument("--predictions", type=Path, default=Path(DEFAULT_PREDICTIONS),
                        help="the evaluation job's output on the training prompts (default: %(default)s)")
    parser.add_argument("--prompts", type=Path, default=Path(DEFAULT_PROMPTS),
                        help="the folder with the preparation step's DPO gen_qa.jsonl (default: %(default)s)")
    parser.add_argument("--output-dir", type=Path, default=Path(DEFAULT_OUTPUT_DIR),
                        help="folder to write train/ and report/ into (default: %(default)s)")
    parser.add_argument("--max-length", type=_positive, default=DEFAULT_MAX_LENGTH, metavar="TOKENS",
                        help="the DPO recipe's max_length; longer pairs are dropped and counted (default: %(default)s)")
    parser.add_argument("--layout", choices=LAYOUTS, default=NOVA,
                        help="Nova's DPO layout, or AWS's for open-weights models (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        report = make_preferences(args.predictions, args.prompts, args.output_dir, max_length=args.max_length,
                                  layout=args.layout)
    except (EvaluationInputError, PreferenceError, open_weights.OpenWeightsDataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    dropped = ", ".join(f"{reason} {count}" for reason, count in report["dropped"].items()) or "none"
    print(f"{report['pairs']} preference pairs from {report['attempts']} training records written to "
          f"{args.output_dir / TRAIN_FILE}; the model got {report['base_correct']} right (no pair); "
          f"dropped {report['dropped_total']} ({dropped})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
