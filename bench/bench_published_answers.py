"""How often answer_accuracy agrees with the correctness flags a published FinQA run carries.

    python bench/bench_published_answers.py --published PATH [--gold FILE ...]

PATH is the JSON-lines results file of SS-Awan/finqa-llm-evaluation-lab
(data/results/finqa_test_96_results.jsonl, commit 55840c7978a9bd94505f0cf3899fd4aa53db687c):
a model's answers to FinQA test questions, one line per question and prompting strategy,
with `record_id`, `final_answer` and the authors' own `answer_correct`. Each answer is
scored by the scoring step's `score_record`, as the model's `Answer:` line, against the
gold of the same record in the FinQA files given with --gold (default: ../shared/finqa,
which holds 100 of FinQA's 1,147 test records; lines for other records are counted and
left out). Printed: the agreement, and every disagreement with the gold beside it.

The authors' rule differs from ours by design (their scoring.py: the human answer only,
within 0.1% or 0.01, and a percentage only for a percentage; ours: exe_ans or the human
answer, within 1%, fractions and percentages alike, scale words as units), so a
disagreement is read, not counted as an error of either side.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from steps.evaluate import ANSWER, CORRECT, EvalRecord, score_record  # noqa: E402
from steps.finqa.answers import DEFAULT_TOLERANCE  # noqa: E402
from steps.finqa.records import load_records  # noqa: E402

SHARED = ROOT.parent / "shared" / "finqa"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--published", type=Path, required=True, help="the published results, JSON lines")
    parser.add_argument("--gold", type=Path, nargs="+", default=sorted(SHARED.glob("*.json")),
                        help="FinQA JSON files with the gold records (default: ../shared/finqa)")
    args = parser.parse_args()
    records = {record.id: record for record in load_records(args.gold).records}
    lines = [json.loads(line) for line in args.published.read_text(encoding="utf-8").splitlines() if line.strip()]
    agreed, disagreements, without_gold = 0, [], 0
    for line in lines:
        record = records.get(line["record_id"])
        if record is None:
            without_gold += 1
            continue
        scored = score_record(EvalRecord(record.id, record.exe_ans, record.answer, record.program, record.table, ""),
                              f"Answer: {line['final_answer']}", DEFAULT_TOLERANCE)
        ours = scored[ANSWER]["verdict"] == CORRECT
        if ours is bool(line["answer_correct"]):
            agreed += 1
        else:
            disagreements.append((line, record, scored[ANSWER]))
    compared = agreed + len(disagreements)
    print(f"{len(lines)} published answers; {compared} for records with a gold here, {without_gold} without")
    print(f"answer_accuracy agrees with the published flags on {agreed} of {compared}")
    for line, record, verdict in disagreements:
        print(f"- {record.id} ({line['strategy']}): answer {line['final_answer']!r}, published "
              f"{'right' if line['answer_correct'] else 'wrong'}, ours {verdict['verdict']} "
              f"(read {verdict.get('parsed')!r}); gold exe_ans {record.exe_ans!r}, human answer {record.answer!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
