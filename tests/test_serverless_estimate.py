"""The estimate of a serverless pipeline: the tokens the jobs will process, and no invented price."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT

# Each test prepares or scores real FinQA records in a process of its own.
pytestmark = pytest.mark.integration


def _prepare(sample_finqa, output, *flags):
    return subprocess.run([sys.executable, "-m", "steps.prepare", "--input-dir", str(sample_finqa), "--output-dir",
                           str(output), "--recipe", "nova_lite_2_0_p5_gpu_lora_sft", "--training-instance-type",
                           "serverless", "--region", "us-east-1", *flags],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)


def test_serverless_cost_is_unknown_with_the_reason_and_the_tokens_counted(sample_finqa, tmp_path):
    result = _prepare(sample_finqa, tmp_path)
    assert result.returncode == 0, result.stderr
    estimate = json.loads((tmp_path / "report" / "data_report.json").read_text())["estimate"]
    assert estimate["instance_type"] == "serverless"
    assert estimate["training_cost_usd"] is None and estimate["evaluation_cost_usd"] is None
    assert "no sourced price for serverless model customization" in estimate["price_source"]
    assert estimate["training_tokens_processed"] > 0 and estimate["evaluation_tokens"] > 0
    assert estimate["registry"]["estimated_training_cost_usd"] == "unknown"
    assert estimate["summary"].endswith("cost unknown (no sourced price for serverless model customization)")


def test_a_budget_cannot_be_checked_so_it_stops_the_run_before_any_job(sample_finqa, tmp_path):
    result = _prepare(sample_finqa, tmp_path, "--max-training-cost", "50")
    assert result.returncode == 1
    assert "cannot be priced: no sourced price for serverless model customization" in result.stderr
    assert not (tmp_path / "train").exists()
