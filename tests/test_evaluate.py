"""The scoring step end to end: the real preparation step writes gen_qa.jsonl from the real
FinQA test records, predictions are written the way a Nova evaluation job writes them, and
`python -m steps.evaluate` runs as the processing job runs it."""
from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from steps.evaluate import EvalRecord, read_predictions
from tests.conftest import PROJECT_ROOT
from tests.nova_output import jsonl, nova_line

# Every test here starts a process or a server, or reads a fixture that does.
pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def eval_dir(tmp_path_factory, shared_finqa) -> Path:
    """The preparation step's eval output for ../shared/finqa (100 test records)."""
    output = tmp_path_factory.mktemp("prepared")
    subprocess.run([sys.executable, "-m", "steps.prepare", "--input-dir", str(shared_finqa),
                    "--output-dir", str(output)],
                   cwd=PROJECT_ROOT, check=True, capture_output=True, text=True)
    return output / "eval"


@pytest.fixture(scope="session")
def gen_qa(eval_dir) -> list[dict]:
    return [json.loads(line) for line in (eval_dir / "gen_qa.jsonl").read_text(encoding="utf-8").splitlines()]


def write_predictions(path: Path, lines) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(jsonl(lines), encoding="utf-8")
    return path


def nova_archive(path: Path, predictions_text: str,
                 member: str = "run_name/eval_results/inference_output.jsonl") -> Path:
    """An output.tar.gz laid out like a Nova evaluation job's."""
    with tarfile.open(path, "w:gz") as archive:
        for name, text in ((member, predictions_text),
                           ("run_name/eval_results/eval-result/results_2026.json",
                            '{"results": {"all": {"rouge1": 0.1}}}')):
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def run_evaluate(predictions: Path, eval_dir: Path, output: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "steps.evaluate", "--predictions", str(predictions), "--eval-data", str(eval_dir),
         "--output-dir", str(output), *extra],
        cwd=PROJECT_ROOT, capture_output=True, text=True)


def scored(predictions: Path, eval_dir: Path, output: Path, *extra: str) -> tuple[dict, list[dict]]:
    result = run_evaluate(predictions, eval_dir, output, *extra)
    assert result.returncode == 0, result.stderr
    evaluation = json.loads((output / "evaluation.json").read_text())
    per_record = [json.loads(line) for line in (output / "per_record.jsonl").read_text().splitlines()]
    return evaluation, per_record


def test_gold_programs_and_answers_score_100_percent(tmp_path, eval_dir, gen_qa):
    predictions = write_predictions(tmp_path / "inference_output.jsonl", [nova_line(e, e["response"]) for e in gen_qa])
    evaluation, per_record = scored(predictions, eval_dir, tmp_path / "out")
    metrics = evaluation["metrics"]
    assert metrics["accuracy"] == {"value": 1.0, "metric": "execution_accuracy"}
    for name in ("execution_accuracy", "lenient_execution_accuracy", "answer_accuracy"):
        assert metrics[name] == {"value": 1.0, "correct": 100, "wrong": 0, "unparseable": 0, "missing": 0,
                                 "scored": 100, "total": 100}
    assert evaluation["counts"]["eval_records"] == evaluation["counts"]["matched_by_metadata"] == 100
    assert [r["id"] for r in per_record] == [json.loads(e["metadata"])["id"] for e in gen_qa]
    assert all(r["execution_accuracy"]["verdict"] == r["lenient_execution_accuracy"]["verdict"]
               == r["answer_accuracy"]["verdict"] == "correct" for r in per_record)
    first = per_record[0]
    assert first["prediction"]["program"] == first["gold"]["program"]
    assert first["prediction"]["generation"] == gen_qa[0]["response"]
    assert first["execution_accuracy"]["value"] == pytest.approx(first["gold"]["exe_ans"], abs=5e-6)
    assert evaluation["tolerance"]["answer_relative"] == 0.01
    assert evaluation["baseline"] is None and evaluation["improvement"] is None


def test_the_project_sample_scores_100_percent_from_an_archive(tmp_path, sample_finqa):
    subprocess.run([sys.executable, "-m", "steps.prepare", "--input-dir", str(sample_finqa), "--output-dir",
                    str(tmp_path / "prepared")], cwd=PROJECT_ROOT, check=True, capture_output=True)
    examples = [json.loads(line) for line in (tmp_path / "prepared" / "eval" / "gen_qa.jsonl").read_text().splitlines()]
    archive = nova_archive(tmp_path / "output.tar.gz", jsonl(nova_line(e, e["response"]) for e in examples))
    evaluation, _ = scored(archive, tmp_path / "prepared" / "eval", tmp_path / "out")
    assert evaluation["counts"]["eval_records"] == len(examples) == 10
    metrics = evaluation["metrics"]
    assert metrics["execution_accuracy"]["value"] == metrics["lenient_execution_accuracy"]["value"] == 1.0
    assert metrics["answer_accuracy"]["value"] == 1.0


def test_metrics_are_numbers_under_metrics_name_value(tmp_path, eval_dir, gen_qa):
    predictions = write_predictions(tmp_path / "p.jsonl", [nova_line(e, e["response"]) for e in gen_qa[:10]])
    evaluation, _ = scored(predictions, eval_dir, tmp_path / "out")
    for name, metric in evaluation["metrics"].items():
        assert isinstance(metric["value"], float), name
    assert evaluation["metrics"]["accuracy"]["value"] == 0.1  # 10 of 100 records answered


@pytest.mark.parametrize("layout", ["archive", "folder_with_archive", "unpacked_folder"])
def test_reads_the_nova_job_output_as_archive_or_folder(tmp_path, eval_dir, gen_qa, layout):
    text = jsonl(nova_line(e, e["response"]) for e in gen_qa)
    if layout == "archive":
        predictions = nova_archive(tmp_path / "output.tar.gz", text)
    elif layout == "folder_with_archive":
        (tmp_path / "job" / "output").mkdir(parents=True)
        nova_archive(tmp_path / "job" / "output" / "output.tar.gz", text)
        predictions = tmp_path / "job"
    else:
        unpacked = tmp_path / "job" / "run_name" / "eval_results" / "inference_output.jsonl"
        unpacked.parent.mkdir(parents=True)
        unpacked.write_text(text)
        predictions = tmp_path / "job"
    evaluation, _ = scored(predictions, eval_dir, tmp_path / "out")
    assert evaluation["metrics"]["accuracy"]["value"] == 1.0
    assert "inference_output.jsonl" in evaluation["counts"]["predictions_source"]


def test_archive_member_names_cannot_write_outside(tmp_path, eval_dir, gen_qa):
    text = jsonl(nova_line(e, e["response"]) for e in gen_qa)
    (tmp_path / "work").mkdir()
    predictions = nova_archive(tmp_path / "work" / "output.tar.gz", text, member="../../escaped/inference_output.jsonl")
    evaluation, _ = scored(predictions, eval_dir, tmp_path / "work" / "out")
    assert evaluation["metrics"]["accuracy"]["value"] == 1.0
    assert not (tmp_path / "escaped").exists() and not (tmp_path.parent / "escaped").exists()


def test_a_record_without_prediction_counts_as_wrong(tmp_path, eval_dir, gen_qa):
    lines = [nova_line(e, e["response"]) for e in gen_qa[:60]]
    evaluation, per_record = scored(write_predictions(tmp_path / "p.jsonl", lines), eval_dir, tmp_path / "out")
    execution = evaluation["metrics"]["execution_accuracy"]
    assert (execution["value"], execution["correct"], execution["missing"], execution["scored"]) == (0.6, 60, 40, 60)
    assert evaluation["counts"]["records_without_prediction"] == 40
    assert sum(r["prediction"] is None for r in per_record) == 40


def test_duplicates_unmatched_and_unreadable_lines_are_counted_and_the_first_prediction_counts(
        tmp_path, eval_dir, gen_qa):
    first, second = gen_qa[0], gen_qa[1]
    foreign = dict(first, metadata=json.dumps({"id": "NOT/A/TEST/RECORD-1"}))
    lines = [jsonl([nova_line(first, "Program: add(1, 1)\nAnswer: 2")]),
             jsonl([nova_line(first, first["response"])]),  # a duplicate, right, but the first counts
             jsonl([nova_line(second, second["response"])]),
             jsonl([nova_line(foreign, first["response"])]),
             "{not json\n",
             '{"prompt": "no inference field"}\n']
    predictions = tmp_path / "p.jsonl"
    predictions.write_text("".join(lines))
    evaluation, per_record = scored(predictions, eval_dir, tmp_path / "out")
    counts = evaluation["counts"]
    assert (counts["prediction_lines"], counts["matched"], counts["duplicate_predictions"],
            counts["unmatched_predictions"], counts["unreadable_prediction_lines"]) == (6, 2, 1, 1, 2)
    assert per_record[0]["execution_accuracy"]["verdict"] == "wrong"
    assert per_record[1]["execution_accuracy"]["verdict"] == "correct"
    assert any("NOT/A/TEST/RECORD-1" in problem for problem in evaluation["problems"])


def test_without_metadata_predictions_are_matched_by_their_prompt(tmp_path, eval_dir, gen_qa):
    lines = [nova_line(e, e["response"], metadata=False) for e in gen_qa]
    evaluation, _ = scored(write_predictions(tmp_path / "p.jsonl", lines), eval_dir, tmp_path / "out")
    assert evaluation["counts"]["matched_by_prompt"] == 100
    assert evaluation["metrics"]["accuracy"]["value"] == 1.0


def test_matching_by_prompt_wherever_the_query_sits_and_never_guessing_between_equal_queries(tmp_path):
    records = [EvalRecord(id=f"r{i}", exe_ans=1.0, answer="1", program="add(0, 1)", table=(), query=query)
               for i, query in enumerate(["What was the change in revenue?\nTable: | a | 1 |",
                                          "What was the change in revenue?\nTable: | a | 1 | b |",
                                          "Same question twice?", "Same question twice?"])]
    lines = [
        {"prompt": "system: be brief\nuser: What was the change in REVENUE? Table: | a | 1 | b | \nassistant:",
         "inference": "Answer: 1"},
        {"prompt": str([{"role": "user", "content": records[0].query}]), "inference": "Answer: 1"},
        {"prompt": "Same question twice?", "inference": "Answer: 1"},
        {"prompt": "An unrelated question", "inference": "Answer: 1"},
        {"inference": "Answer: 1", "metadata": {"id": "r3"}},
    ]
    predictions = read_predictions(write_predictions(tmp_path / "p.jsonl", lines), records)
    assert predictions.by_id == {"r1": "Answer: 1", "r0": "Answer: 1", "r3": "Answer: 1"}
    assert (predictions.matched_by_prompt, predictions.matched_by_metadata, predictions.unmatched) == (2, 1, 2)
    assert any("the query of 2 eval records" in problem for problem in predictions.problems)


def test_inference_as_a_list_or_a_list_literal_and_metadata_in_any_echo(tmp_path, eval_dir, gen_qa):
    lines = [nova_line(e, [e["response"]] if i % 2 else str([e["response"]])) for i, e in enumerate(gen_qa)]
    echoes = (lambda m: json.loads(m), lambda m: json.dumps(m), lambda m: str(json.loads(m)), lambda m: m)
    for i, line in enumerate(lines):
        line["metadata"] = echoes[i % len(echoes)](line["metadata"])
    evaluation, _ = scored(write_predictions(tmp_path / "p.jsonl", lines), eval_dir, tmp_path / "out")
    assert evaluation["metrics"]["accuracy"]["value"] == 1.0
    assert evaluation["counts"]["matched_by_metadata"] == 100


HOSTILE_GENERATIONS = [
    "",
    "   \n\n",
    "Program: divide(114400, 3295",  # truncated
    "Program: divide(1, 0)\nAnswer: infinity",
    "Program: add(#7, 1)\nAnswer: 7",
    "Program: exp(10, 99999999999)\nAnswer: 1e99999999999",
    "Program: exp(-8, 0.5)\nAnswer: " + "9" * 500,
    "Program: " + "add(1, 2), " * 5000 + "add(1, 2)\nAnswer: 3",
    "Program: " + "add(" * 500 + "1, 2" + ")" * 500,
    "In 2019 revenue was 1. In 2018 it was 2. In 2017 it was 3. In 2016 it was 4. Growth was 5%.",
    "<think>" + "the answer is 34.7% " * 2000,
    "\x00\x01\ufffd garbage \u202e" * 100,
    "Answer: (((((((((((((((((((((((((((((((",
    "Program: table_sum(no such row, none)\nAnswer: yes",
    "Program: greater(1, 2), add(#0, 1)\nAnswer: no",
]


def test_hostile_generations_are_scored_wrong_without_crashing(tmp_path, eval_dir, gen_qa):
    lines = [nova_line(e, HOSTILE_GENERATIONS[i % len(HOSTILE_GENERATIONS)]) for i, e in enumerate(gen_qa)]
    evaluation, per_record = scored(write_predictions(tmp_path / "p.jsonl", lines), eval_dir, tmp_path / "out")
    execution = evaluation["metrics"]["execution_accuracy"]
    assert execution["correct"] == 0 and execution["missing"] == 0
    assert execution["unparseable"] + execution["wrong"] == 100
    reasons = evaluation["verdict_reasons"]
    for reason in ("no Program: line", "no_result", "structure", "division_by_zero", "bad_reference", "overflow",
                   "no_such_row", "not_a_number"):
        assert reasons["execution_accuracy"].get(reason, 0) > 0, reason
    for reason in ("no Program: line", "syntax", "division_by_zero", "bad_reference", "overflow", "not_real",
                   "too_long", "no_such_row", "not_a_number"):
        assert reasons["lenient_execution_accuracy"].get(reason, 0) > 0, reason
    assert evaluation["metrics"]["lenient_execution_accuracy"]["correct"] == 0
    assert evaluation["metrics"]["answer_accuracy"]["correct"] == 0
    assert {r["answer_accuracy"]["verdict"] for r in per_record} == {"wrong", "unparseable"}


def test_baseline_metrics_and_improvement(tmp_path, eval_dir, gen_qa):
    model = write_predictions(tmp_path / "model.jsonl", [nova_line(e, e["response"]) for e in gen_qa])
    # a base model: free text, the right final answer for the first 30 records, no program
    baseline_lines = []
    for i, example in enumerate(gen_qa):
        answer = example["response"].split("Answer:")[1].strip() if i < 30 else "I am not sure, maybe 123456789."
        baseline_lines.append(nova_line(example, f"Let me think about the table. So the answer is {answer}"))
    baseline = write_predictions(tmp_path / "base.jsonl", baseline_lines)
    evaluation, _ = scored(model, eval_dir, tmp_path / "out", "--baseline-predictions", str(baseline))
    assert evaluation["baseline"]["metrics"]["answer_accuracy"]["value"] == 0.3
    assert evaluation["baseline"]["metrics"]["execution_accuracy"]["unparseable"] == 100
    assert evaluation["improvement"]["answer_accuracy"]["value"] == pytest.approx(0.7)
    assert evaluation["improvement"]["execution_accuracy"] == {"value": 1.0, "model": 1.0, "baseline": 0.0}
    assert evaluation["improvement"]["lenient_execution_accuracy"] == {"value": 1.0, "model": 1.0, "baseline": 0.0}
    assert evaluation["baseline"]["metrics"]["execution_accuracy"]["value"] == 0.0
    assert evaluation["metrics"]["accuracy_improvement"]["value"] == 1.0


def test_primary_metric_and_tolerance_options(tmp_path, eval_dir, gen_qa):
    lines = [nova_line(e, "The answer is " + e["response"].split("Answer:")[1].strip()) for e in gen_qa]
    predictions = write_predictions(tmp_path / "p.jsonl", lines)
    evaluation, _ = scored(predictions, eval_dir, tmp_path / "out", "--primary-metric", "answer_accuracy",
                           "--tolerance", "0.001")
    assert evaluation["metrics"]["accuracy"] == {"value": 1.0, "metric": "answer_accuracy"}
    assert evaluation["metrics"]["execution_accuracy"]["value"] == 0.0
    assert evaluation["tolerance"]["answer_relative"] == 0.001


PROGRAM_SHAPES = [
    lambda program: program,
    lambda program: re.sub(r"\b([a-z_]+)\(", lambda call: call.group(1).capitalize() + "(", program),
    lambda program: program.replace(", ", ","),
    lambda program: program + ".",
    lambda program: f"`{program}`",
]


def test_programs_finqa_refuses_count_for_the_lenient_metric_only(tmp_path, eval_dir, gen_qa):
    lines = []
    for index, example in enumerate(gen_qa):
        gold = json.loads(example["metadata"])
        program = PROGRAM_SHAPES[index % len(PROGRAM_SHAPES)](gold["program"])
        lines.append(nova_line(example, f"Program: {program}\nAnswer: {gold['answer']}"))
    evaluation, per_record = scored(write_predictions(tmp_path / "p.jsonl", lines), eval_dir, tmp_path / "out",
                                    "--primary-metric", "lenient_execution_accuracy")
    metrics = evaluation["metrics"]
    assert (metrics["execution_accuracy"]["correct"], metrics["execution_accuracy"]["unparseable"]) == (20, 80)
    # without spaces a one-step program has a single argument; a longer one also loses its step boundaries
    assert evaluation["verdict_reasons"]["execution_accuracy"] == {"structure": 70, "missing_argument": 10}
    assert metrics["lenient_execution_accuracy"]["correct"] == 100
    assert metrics["accuracy"] == {"value": 1.0, "metric": "lenient_execution_accuracy"}
    capitalised = per_record[1]
    assert capitalised["prediction"]["program"].startswith(capitalised["gold"]["program"][:1].upper())
    assert capitalised["execution_accuracy"]["reason"] == "structure"
    assert capitalised["lenient_execution_accuracy"]["verdict"] == "correct"


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.jsonl", "no such file"),
    (lambda d: _write(d / "empty.jsonl", b""), "has no predictions"),
    (lambda d: _write(d / "blank.jsonl", b"\n\n  \n"), "has no predictions"),
    (lambda d: _write(d / "binary.jsonl", b"\xff\xfe\x00garbage"), "not UTF-8"),
    (lambda d: _write(d / "output.tar.gz", b"\x1f\x8b\x08not really gzip"), "not a readable tar archive"),
    (lambda d: _write(d / "notes.jsonl", b'{"inference": "Answer: 5"}\n{"oops": 1}\n'), "matches an eval record"),
    (lambda d: _write(d / "wrong.jsonl", jsonl([{"inference": "x", "metadata": '{"id": "OTHER/1"}'}]).encode()),
     "matches an eval record"),
    (lambda d: nova_archive(d / "output.tar.gz", "", member="run_name/other.jsonl"), "has no inference_output.jsonl"),
    (lambda d: (d / "empty_folder").mkdir() or d / "empty_folder", "no inference_output.jsonl"),
    (lambda d: _two_prediction_files(d / "two"), "2 inference_output.jsonl files"),
    (lambda d: (d / "odd" / "inference_output.jsonl").mkdir(parents=True) or d / "odd", "cannot be read"),
])
def test_unusable_predictions_are_a_clear_error(tmp_path, eval_dir, make, message):
    predictions = make(tmp_path)
    result = run_evaluate(predictions, eval_dir, tmp_path / "out")
    assert result.returncode == 2
    assert message in result.stderr and "--predictions" in result.stderr, result.stderr
    assert str(predictions) in result.stderr
    assert not (tmp_path / "out" / "evaluation.json").exists()


def test_unusable_eval_data_and_options_are_a_clear_error(tmp_path, eval_dir, gen_qa):
    predictions = write_predictions(tmp_path / "p.jsonl", [nova_line(e, e["response"]) for e in gen_qa])
    no_metadata = tmp_path / "no_metadata"
    _write(no_metadata / "gen_qa.jsonl", jsonl([{"query": "q", "response": "r"}]).encode())
    (tmp_path / "empty").mkdir()
    for eval_data, message in ((tmp_path / "nowhere", "no such file or folder"),
                               (tmp_path / "empty", "no gen_qa.jsonl files"),
                               (no_metadata, "no 'metadata' JSON object")):
        result = run_evaluate(predictions, eval_data, tmp_path / "out")
        assert result.returncode == 2 and message in result.stderr, result.stderr
    result = run_evaluate(predictions, eval_dir, tmp_path / "out", "--tolerance", "1.5")
    assert result.returncode == 2 and "--tolerance" in result.stderr


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _two_prediction_files(folder: Path) -> Path:
    for run in ("base", "tuned"):
        _write(folder / run / "eval_results" / "inference_output.jsonl", b"{}\n")
    return folder
