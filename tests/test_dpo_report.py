"""The report across techniques: four runs (SFT, DPO, SFT -> DPO, RFT) scored by steps.evaluate on the
real FinQA test records, each beside its package's DescribeModelPackage answer, read from files; every
interval and paired test checked against scipy.stats on the same counts. Which records each made-up
model gets right is chosen by the test (never a measurement)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
from PIL import Image
from scipy import stats

from scripts import report
from scripts.significance import EXACT_BELOW, mcnemar, mcnemar_counts, wilson_interval
from steps.evaluate import evaluate, write_outputs
from tests.conftest import PROJECT_ROOT
from tests.nova_output import jsonl, nova_line
from tests.test_dpo_preferences import wrong_reply

# technique, recipe, training records, the test records (by position) it gets right
RUNS = {
    "sft": ("SFT", "nova_micro_1_0_g5_g6_12x_gpu_lora_sft", 100, range(0, 55)),
    "dpo": ("DPO", "nova_micro_1_0_g5_g6_12x_gpu_lora_dpo", 57, range(0, 45)),
    "sft-dpo": ("SFT then DPO", "nova_micro_1_0_g5_g6_12x_gpu_lora_dpo", 41, range(0, 70)),
    "rft": ("RFT", "nova_lite_v2_smtj_p5_p5en_gpu_lora_rft", 100, range(10, 52)),
}
BASE_RIGHT = {"Nova Micro": range(0, 40), "Nova 2 Lite": range(0, 30)}


@pytest.mark.parametrize("correct, total", [(0, 100), (1, 100), (40, 100), (55, 100), (99, 100), (100, 100),
                                             (3, 7), (0, 1), (1147 // 2, 1147)])
def test_wilson_interval_is_scipys(correct, total):
    expected = stats.binomtest(correct, total).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson_interval(correct, total) == pytest.approx((expected.low, expected.high), abs=1e-12)


@pytest.mark.parametrize("b, c", [(0, 0), (5, 0), (0, 15), (7, 9), (12, 12), (20, 4), (24, 0), (13, 12),
                                  (30, 0), (18, 10), (40, 35), (100, 60)])
def test_mcnemar_is_scipys_binomial_or_chi_square_on_the_same_counts(b, c):
    test = mcnemar_counts(b, c)
    if b + c < EXACT_BELOW:
        assert test.method == "exact binomial"
        expected = stats.binomtest(min(b, c), b + c, 0.5).pvalue if b + c else 1.0
    else:
        statistic = (abs(b - c) - 1) ** 2 / (b + c)
        assert test.statistic == pytest.approx(statistic)
        expected = stats.chi2.sf(statistic, df=1)
    assert test.p_value == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_mcnemar_counts_the_discordant_records_of_paired_verdicts():
    first = [True, True, False, False, True]
    second = [True, False, True, False, False]
    test = mcnemar(first, second)
    assert (test.first_only, test.second_only, test.both, test.neither) == (2, 1, 1, 1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shared_finqa) -> Path:
    """Four runs as the pipeline leaves them: evaluation.json and per_record.jsonl by steps.evaluate
    on the real test records (the base model's verdicts beside each model's), and model_package.json."""
    root = tmp_path_factory.mktemp("techniques")
    subprocess.run([sys.executable, "-m", "steps.prepare", "--input-dir", str(shared_finqa), "--output-dir",
                    str(root / "prepared")], cwd=PROJECT_ROOT, check=True, capture_output=True, text=True)
    eval_dir = root / "prepared" / "eval"
    examples = [json.loads(line) for line in (eval_dir / "gen_qa.jsonl").read_text().splitlines()]

    def answers(path: Path, right) -> Path:
        right = set(right)
        path.write_text(jsonl(nova_line(e, e["response"] if i in right else wrong_reply(e))
                              for i, e in enumerate(examples)))
        return path

    bases = {model: answers(root / f"base-{model}.jsonl", right) for model, right in BASE_RIGHT.items()}
    for name, (technique, recipe_id, records, right) in RUNS.items():
        run = root / "runs" / name
        base = bases["Nova 2 Lite" if name == "rft" else "Nova Micro"]
        evaluation, per_record = evaluate(answers(root / f"{name}.jsonl", right), eval_dir, baseline_path=base)
        write_outputs(run, evaluation, per_record)
        metadata = {"technique": technique, "recipe": recipe_id, "train_records": str(records),
                    "training_job": f"nova-finqa-{name}", "training_billable_seconds": "3600",
                    "training_instance_count": "4" if name == "rft" else "1",
                    "training_instance_type": "ml.p5.48xlarge" if name == "rft" else "ml.g5.12xlarge",
                    "training_price_per_hour_usd": "113.068" if name == "rft" else "7.09",
                    "eval_records": "100", "accuracy": str(evaluation["metrics"]["accuracy"]["value"])}
        if name == "sft-dpo":
            metadata["source_model_package_arn"] = "arn:aws:sagemaker:us-east-1:111122223333:model-package/nova-finqa/1"
        (run / "model_package.json").write_text(json.dumps({
            "ModelPackageArn": f"arn:aws:sagemaker:us-east-1:111122223333:model-package/nova-finqa/{name}",
            "ModelApprovalStatus": "Approved", "CustomerMetadataProperties": metadata}))
    return root / "runs"


def table_lines(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in text.splitlines()
            if line.startswith("| ") and not line.startswith(("| Model", "| First", "|---"))]


def table_rows(text: str) -> dict[str, list[str]]:
    return {cells[0]: cells for cells in table_lines(text)}


def percent_interval(correct: int, total: int) -> str:
    ci = stats.binomtest(correct, total).proportion_ci(confidence_level=0.95, method="wilson")
    return f"{ci.low * 100:.1f}% to {ci.high * 100:.1f}%"


@pytest.mark.integration
def test_the_report_compares_four_techniques_with_intervals_and_paired_tests(runs, tmp_path):
    paths = [str(runs / name) for name in RUNS]
    assert report.main(["--from-files", *paths, "--output-dir", str(tmp_path)]) == 0
    text = (tmp_path / report.REPORT_NAME).read_text()
    rows = table_rows(text.split("## Paired comparisons")[0])
    # run N is the Nth folder given: sft, dpo, sft-dpo, rft
    expected = {"run 1": ("SFT", 55, "100"), "run 2": ("DPO", 45, "57"), "run 3": ("SFT -> DPO", 70, "41"),
                "run 4": ("RFT", 42, "100"), "Base Nova Micro": ("base model", 40, "0"),
                "Base Nova 2 Lite": ("base model", 30, "0")}
    for label, (technique, correct, records) in expected.items():
        row = rows[label]
        assert (row[1], row[2], row[3], row[5]) == (records, f"{correct}.0%", f"{correct}/100", technique)
        assert row[4] == percent_interval(correct, 100)  # the Wilson interval, as scipy computes it
    assert rows["run 1"][6].startswith("nova_micro_1_0_g5_g6_12x_gpu_lora_sft")
    assert rows["run 4"][7] == "$452.27"  # 1 h x 4 x ml.p5.48xlarge at the package's price
    assert "Wilson score interval" in text

    paired = text.split("## Paired comparisons")[1].split("## Cost")[0]
    words = [line for line in paired.splitlines() if line.startswith("- ")]
    tests = {(row[0], row[1]): row for row in table_lines(paired)}

    def check(first, second, first_only, second_only):
        row = tests[(first, second)]
        assert (row[3], row[4]) == (str(first_only), str(second_only))
        n = first_only + second_only
        if n < EXACT_BELOW:
            p = stats.binomtest(min(first_only, second_only), n, 0.5).pvalue
            assert row[5] == "exact binomial"
        else:
            p = stats.chi2.sf((abs(first_only - second_only) - 1) ** 2 / n, df=1)
            assert row[5] == "chi-square, continuity-corrected"
        assert float(row[6]) == pytest.approx(p, rel=1e-2)
        return next(line for line in words if line.startswith(f"- {first} was right on {first_only} records"))

    base = "Base Nova Micro"
    assert "by more than noise" in check("run 1 (SFT)", base, 15, 0)
    assert "within noise" in check("run 2 (DPO)", base, 5, 0)
    assert "run 3 (SFT -> DPO) is better, by more than noise" in check("run 3 (SFT -> DPO)", base, 30, 0)
    # RFT trains Nova 2 Lite: compared with its own base model (right on 10-51 against 0-29): 42% against 30%,
    # yet 22 against 10 discordant records is p = 0.052
    assert "within noise" in check("run 4 (RFT)", "Base Nova 2 Lite", 22, 10)
    assert "run 3 (SFT -> DPO) is better" in check("run 1 (SFT)", "run 3 (SFT -> DPO)", 0, 15)
    assert "within noise" in check("run 2 (DPO)", "run 4 (RFT)", 10, 7)
    assert len(tests) == 4 + 6  # each against the base model, and every two of the four

    labels = [label.split("\n")[:2] for label, _, _ in report.chart_bars(report.results_from_files(paths))]
    assert labels == [["Base", "Nova Micro"], ["Base", "Nova 2 Lite"], ["SFT -> DPO", "Nova Micro LoRA"],
                      ["DPO", "Nova Micro LoRA"], ["SFT", "Nova Micro LoRA"], ["RFT", "Nova 2 Lite LoRA"]]
    image = numpy.asarray(Image.open(tmp_path / report.CHART_NAME).convert("RGB"), dtype=numpy.int16)
    error_bars = (numpy.abs(image - numpy.array((0x21, 0x21, 0x21))).sum(axis=2) < 6).sum()
    assert error_bars > 100  # six bars' 95% intervals drawn


@pytest.mark.integration
def test_a_run_without_per_record_verdicts_is_left_out_of_the_paired_tests_only(runs, tmp_path):
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    (lonely / "evaluation.json").write_text((runs / "sft" / "evaluation.json").read_text())
    results = report.results_from_files([str(lonely), str(runs / "dpo")])
    assert results[0].verdicts is None and results[0].interval is not None
    comparisons = report.paired_comparisons(results)
    assert [(c.first, c.second) for c in comparisons] == [("run 2", "Base model")]
    assert [(c.first, c.second) for c in report.paired_comparisons(results, report.base_model_results(results))] \
        == [("run 2", "Base Nova Micro")]


def test_registered_technique_labels():
    assert report.technique_label({"technique": "SFT then DPO"}) == "SFT -> DPO"
    assert report.technique_label({"recipe": "nova_lite_1_0_g5_g6_12x_gpu_lora_sft"}) == "SFT"
    assert report.technique_label({"recipe": "nova_micro_1_0_p5_p4d_gpu_dpo"}) == "DPO"
    assert report.technique_label({}) == ""


def test_report_module_needs_no_scipy():
    source = "\n".join((PROJECT_ROOT / "scripts" / name).read_text() for name in ("report.py", "significance.py"))
    assert not re.search(r"^\s*(import|from)\s+(scipy|statsmodels)", source, re.MULTILINE)
