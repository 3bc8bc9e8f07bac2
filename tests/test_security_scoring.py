"""Security review finding 6: no model answer can end ScoreAnswers. A Nova evaluation job's
output is whatever the model wrote; one line that Python's literal reader or the JSON reader
cannot take (TypeError, RecursionError, ValueError past the integer digit limit...) is an
unparseable answer or an unreadable line, counted, and the step goes on scoring the rest."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.nova_output import nova_line

# Every test here runs steps.prepare and steps.evaluate as processes, as the containers do.
pytestmark = pytest.mark.integration
DEEP = 100_000


@pytest.fixture(scope="module")
def prepared(sample_finqa, tmp_path_factory) -> tuple[Path, list[dict]]:
    """The preparation step's gen_qa.jsonl for the project's real FinQA sample (10 test records)."""
    output = tmp_path_factory.mktemp("prepared")
    subprocess.run([sys.executable, "-m", "steps.prepare", "--input-dir", str(sample_finqa),
                    "--output-dir", str(output)], cwd=PROJECT_ROOT, check=True, capture_output=True, timeout=120)
    eval_dir = output / "eval"
    return eval_dir, [json.loads(line) for line in (eval_dir / "gen_qa.jsonl").read_text().splitlines()]


# Answers (the `inference` field) a model could write; each must be scored as an unparseable answer.
HOSTILE_ANSWERS = [
    "[{[1]: 2}]",                          # a dict keyed by a list: TypeError in ast.literal_eval
    "[{{1: 2}: 3}]",                       # the same with a dict key
    "[" * DEEP + "]" * DEEP,               # nesting past any recursion limit
    "[" + "{" * 300 + "}" * 300 + "]",
    "[" + "9" * 5000 + "]",                # an integer past Python's digit limit
    "[b'bytes', 'text']",
    "['\\ud800']",                         # a lone surrogate
    "[1e999999, -1e999999]",
    "[" + "-" * DEEP + "1]",
]


def _score(eval_dir: Path, lines: list[str], output: Path) -> subprocess.CompletedProcess:
    predictions = output.parent / f"{output.name}.jsonl"
    predictions.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "steps.evaluate", "--predictions", str(predictions),
                           "--eval-data", str(eval_dir), "--output-dir", str(output)],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("answer", HOSTILE_ANSWERS, ids=lambda a: a[:12])
def test_a_hostile_answer_is_counted_as_unparseable_and_the_rest_is_scored(prepared, tmp_path, answer):
    eval_dir, records = prepared
    # The first record gets the hostile answer, every other one its gold response.
    lines = [json.dumps(nova_line(r, answer if i == 0 else r["response"])) for i, r in enumerate(records)]
    result = _score(eval_dir, lines, tmp_path / "out")
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / "out" / "evaluation.json").read_text())["metrics"]["execution_accuracy"]
    assert metrics["correct"] == len(records) - 1
    assert metrics["unparseable"] + metrics["wrong"] == 1


# Whole lines a damaged or hostile output file could hold: counted as unreadable or unmatched.
HOSTILE_LINES = [
    '{"inference": "x", "metadata": ' + "[" * DEEP + "]" * DEEP + "}",     # RecursionError in json.loads
    '{"inference": "x", "metadata": "' + "[" * DEEP + "]" * DEEP + '"}',   # the same, inside the metadata text
    '{"inference": "x", "metadata": "' + "9" * 5000 + '"}',                # ValueError, not JSONDecodeError
    "[" * DEEP,
    '{"inference": ' + "[" * 900 + '"x"' + "]" * 900 + ', "metadata": {"id": "no such record"}}',
    '{"inference": "x", "metadata": {"id": ' + "9" * 5000 + "}}",
]


def test_hostile_lines_are_counted_and_the_rest_is_scored(prepared, tmp_path):
    eval_dir, records = prepared
    lines = [*HOSTILE_LINES, *(json.dumps(nova_line(r, r["response"])) for r in records)]
    result = _score(eval_dir, lines, tmp_path / "out")
    assert result.returncode == 0, result.stderr[-2000:]
    evaluation = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert evaluation["metrics"]["execution_accuracy"]["correct"] == len(records)
    counts = evaluation["counts"]
    assert counts["unreadable_prediction_lines"] + counts["unmatched_predictions"] == len(HOSTILE_LINES), counts
