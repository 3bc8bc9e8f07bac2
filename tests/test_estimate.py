"""The cost estimate of the preparation step: its arithmetic on real FinQA records, with the
figures of steps/estimate.py's tables, and the budget that refuses an execution before any GPU."""
from __future__ import annotations

import json
import math

import pytest

from steps import estimate as est
from steps.catalog import recipe
from steps.finqa.prompts import estimate_tokens
from tests.test_prepare import read_jsonl, read_report, run_prepare

G5 = "ml.g5.12xlarge"


def conversation_tokens(line: dict) -> int:
    texts = [part["text"] for part in line["system"]]
    texts += [part["text"] for message in line["messages"] for part in message["content"]]
    return sum(map(estimate_tokens, texts))


def gen_qa_prompt_tokens(line: dict) -> int:
    return estimate_tokens(line["system"]) + estimate_tokens(line["query"])


def repeated_finqa(shared, folder, train_records: int):
    """A FinQA input with this many training records, repeating the real ones with new ids."""
    folder.mkdir()
    records = json.loads((shared / "train_100.json").read_text())
    copies = [{**records[i % len(records)], "id": f"{records[i % len(records)]['id']}#copy{i}"}
              for i in range(train_records)]
    (folder / "train.json").write_text(json.dumps(copies))
    for name in ("dev_200.json", "test_100.json"):
        (folder / name).write_text((shared / name).read_text())
    return folder


@pytest.fixture(scope="module")
def shared_run(shared_finqa, tmp_path_factory):
    output = tmp_path_factory.mktemp("estimate")
    result = run_prepare(shared_finqa, output, "--region", "us-east-1")
    assert result.returncode == 0, result.stderr
    return output, result


@pytest.mark.integration
def test_the_estimate_of_100_real_records_is_the_tables_arithmetic(shared_run):
    output, result = shared_run
    estimate = read_report(output)["estimate"]
    tokens = sum(map(conversation_tokens, read_jsonl(output / "train/train.jsonl")))
    assert tokens == 182_470
    assert estimate["epochs"] == 2 and estimate["instance_count"] == 1 and estimate["instance_type"] == G5
    assert estimate["training_tokens_processed"] == 2 * 182_470
    assert estimate["tokens_per_second_per_instance"] == 1_140
    assert estimate["startup_seconds"] == 1_630
    # 1,630 + 364,940 / 1,140 = 1,950.1 s; at $7.09 an hour
    assert estimate["training_seconds"] == 1_950
    assert estimate["training_hours"] == 0.542
    assert estimate["price_per_hour_usd"] == 7.09
    assert estimate["training_cost_usd"] == 3.84
    assert "pricing_fallback.yml" in estimate["price_source"]
    assert "AIM402" in estimate["throughput_source"]
    eval_tokens = sum(map(gen_qa_prompt_tokens, read_jsonl(output / "eval/gen_qa.jsonl")))
    assert estimate["evaluation_tokens"] == eval_tokens
    seconds = round(1_630 + eval_tokens / 1_140)
    assert estimate["evaluation_seconds_per_job"] == seconds
    assert estimate["evaluation_cost_usd"] == round(2 * seconds / 3600 * 7.09, 2)
    assert f"estimate: {estimate['summary']}" in result.stdout


@pytest.mark.integration
def test_100_records_are_within_a_factor_of_two_of_the_workshops_32_5_minutes(shared_run):
    minutes = read_report(shared_run[0])["estimate"]["training_seconds"] / 60
    assert 32.5 / 2 <= minutes <= 32.5 * 2


@pytest.mark.integration
def test_the_full_training_split_of_6251_records_is_estimated_above_6_hours(shared_finqa, tmp_path):
    source = repeated_finqa(shared_finqa, tmp_path / "finqa", 6_251)
    result = run_prepare(source, tmp_path / "out", "--region", "us-east-1")
    assert result.returncode == 0, result.stderr
    estimate = read_report(tmp_path / "out")["estimate"]
    tokens = sum(map(conversation_tokens, read_jsonl(tmp_path / "out/train/train.jsonl")))
    assert estimate["training_records"] == 6_251
    assert estimate["training_seconds"] == round(1_630 + 2 * tokens / 1_140)
    assert estimate["training_hours"] > 6


def test_the_throughput_table_reproduces_the_workshops_two_figures():
    (small, small_seconds), (full, full_seconds) = est.WORKSHOP_RECORDS_AND_SECONDS
    per_record = est.WORKSHOP_EPOCHS * est.FINQA_MEAN_TRAINING_TOKENS
    rate = (full - small) * per_record / (full_seconds - small_seconds)
    startup = small_seconds - small * per_record / rate
    assert (round(rate, 1), round(startup, 1)) == (1_142.4, 1_630.5)
    anchor = est.ANCHORS[("Nova Lite", "lora")]
    assert (anchor.instance_type, anchor.tokens_per_second, est.STARTUP_SECONDS) == (G5, 1_140, 1_630)


@pytest.mark.integration
def test_the_mean_training_record_of_the_derivation_is_the_shared_records_one(shared_run):
    tokens = [conversation_tokens(line) for line in read_jsonl(shared_run[0] / "train/train.jsonl")]
    assert sum(tokens) / len(tokens) == est.FINQA_MEAN_TRAINING_TOKENS


def test_aws_estimator_figures_become_tokens_per_second_per_instance():
    # Nova Lite full rank: 1,500 samples x 48,000 tokens in 0.5 h on 4 x P5.
    assert est.ANCHORS[("Nova Lite", "full-rank")].tokens_per_second == 1_500 * 48_000 / (0.5 * 3600 * 4) == 10_000
    assert est.ANCHORS[("Nova Micro", "lora")].tokens_per_second == 5_000 * 64_000 / (0.45 * 3600 * 2)


def plan(recipe_id: str, instance_type: str, **overrides) -> est.JobPlan:
    training = recipe(recipe_id)
    evaluation = overrides.pop("evaluation_instance_type", training.evaluation.instance_types[0])
    return est.JobPlan(recipe=training, instance_type=instance_type, evaluation_instance_type=evaluation,
                       region=overrides.pop("region", "us-east-1"), **overrides)


def test_lora_on_p5_is_the_workshops_g5_figure_scaled_by_compute_on_four_instances():
    job = plan("nova_lite_1_0_p5_p4d_gpu_lora_sft", "ml.p5.48xlarge")
    estimate = job.estimate(job.recipe.render({}),
                            training_records=1_000, training_tokens=1_824_700, evaluation_records=100,
                            evaluation_tokens=170_000)
    rate = 1_140 * (8 * 989) / (4 * 125)
    assert estimate["instance_count"] == 4
    assert estimate["tokens_per_second_per_instance"] == round(rate, 1)
    seconds = round(1_630 + 2 * 1_824_700 / (rate * 4))
    assert estimate["training_seconds"] == seconds
    assert estimate["training_cost_usd"] == round(seconds / 3600 * 4 * 113.068, 2)
    assert "GPUs x dense BF16 TFLOPS" in estimate["throughput_source"]


def test_a_step_based_nova_2_recipe_counts_max_steps_global_batches_of_the_mean_record():
    job = plan("nova_lite_2_0_p5_gpu_lora_sft", "ml.p5.48xlarge")
    estimate = job.estimate(job.recipe.render({}),
                            training_records=1_000, training_tokens=1_824_700, evaluation_records=100,
                            evaluation_tokens=170_000)
    assert (estimate["max_steps"], estimate["global_batch_size"]) == (100, 32)
    assert estimate["training_tokens_processed"] == math.ceil(100 * 32 * 1_824.7)
    assert "Nova 2 Lite taken as Nova Lite 1.0" in estimate["throughput_source"]


def test_an_rft_recipe_has_no_figure_and_a_budget_cannot_pass_it():
    job = plan("nova_lite_v2_smtj_p5_p5en_gpu_lora_rft", "ml.p5.48xlarge", max_training_cost=100.0)
    estimate = job.estimate(job.recipe.render({}),
                            training_records=100, training_tokens=182_470, evaluation_records=100,
                            evaluation_tokens=170_000)
    assert estimate["training_hours"] is None and estimate["training_cost_usd"] is None
    with pytest.raises(est.BudgetError, match="cannot be priced: no throughput figure for RFT"):
        job.check_budget(estimate)


def test_a_region_without_a_sourced_price_says_so_and_a_price_can_be_given(tmp_path):
    job = plan("nova_lite_1_0_g5_g6_12x_gpu_lora_sft", G5, evaluation_instance_type=G5, region="us-west-2")
    estimate = job.estimate(job.recipe.render({}),
                            training_records=100, training_tokens=182_470, evaluation_records=100,
                            evaluation_tokens=170_000)
    assert estimate["training_cost_usd"] is None
    assert "no sourced price for ml.g5.12xlarge in us-west-2" in estimate["price_source"]
    table = tmp_path / "prices.json"
    table.write_text(json.dumps({"source": "our negotiated rates, 2026-11", "prices": {"us-west-2": {G5: 5.0}}}))
    job = plan("nova_lite_1_0_g5_g6_12x_gpu_lora_sft", G5, evaluation_instance_type=G5, region="us-west-2",
               prices=est.PriceTable.with_file(table))
    estimate = job.estimate(job.recipe.render({}),
                            training_records=100, training_tokens=182_470, evaluation_records=100,
                            evaluation_tokens=170_000)
    assert estimate["training_cost_usd"] == round(1_950 / 3600 * 5.0, 2)
    assert estimate["price_source"] == f"our negotiated rates, 2026-11 (--price-table {table})"


@pytest.mark.parametrize("content", ['{"prices": {}}',
                                     '{"source": "x", "prices": {"us-east-1": {"ml.g5.12xlarge": -1}}}',
                                     "not json"])
def test_a_bad_price_table_is_refused_naming_the_file(tmp_path, content):
    table = tmp_path / "prices.json"
    table.write_text(content)
    with pytest.raises(est.EstimateError, match=f"--price-table {table}"):
        est.PriceTable.with_file(table)


@pytest.mark.integration
def test_an_estimate_above_max_training_cost_fails_the_step_naming_both_and_writes_nothing(shared_finqa, tmp_path):
    result = run_prepare(shared_finqa, tmp_path, "--region", "us-east-1", "--max-training-cost", "3.50")
    assert result.returncode == 1
    assert ("error: estimated training cost $3.84 is above MaxTrainingCost (--max-training-cost) $3.50: "
            "training 0.54 h on 1 x ml.g5.12xlarge at $7.09/h: $3.84") in result.stderr
    assert not any(path.is_file() for path in tmp_path.rglob("*"))


@pytest.mark.parametrize("limit, recorded", [("0", None), ("", None), ("3.84", 3.84), ("100", 100.0)])
@pytest.mark.integration
def test_an_estimate_within_max_training_cost_or_no_limit_passes(shared_finqa, tmp_path, limit, recorded):
    result = run_prepare(shared_finqa, tmp_path, "--region", "us-east-1", "--max-training-cost", limit)
    assert result.returncode == 0, result.stderr
    assert read_report(tmp_path)["estimate"]["max_training_cost_usd"] == recorded


@pytest.mark.integration
def test_a_budget_without_a_price_fails_saying_what_to_give(shared_finqa, tmp_path):
    result = run_prepare(shared_finqa, tmp_path, "--region", "eu-west-1", "--max-training-cost", "10")
    assert result.returncode == 1
    assert "cannot be priced: no sourced price for ml.g5.12xlarge in eu-west-1" in result.stderr
    result = run_prepare(shared_finqa, tmp_path, "--region", "eu-west-1", "--max-training-cost", "10",
                         "--price-per-hour", "8")
    assert result.returncode == 0, result.stderr
    assert read_report(tmp_path)["estimate"]["price_source"] == "--price-per-hour"


@pytest.mark.parametrize("flag, value, message", [
    ("--max-training-cost", "ten", "'ten' is not an amount in USD"),
    ("--max-training-cost", "-5", "'-5' must be 0 or more USD"),
    ("--price-per-hour", "0", "'0' is not a price in USD per hour above 0"),
])
@pytest.mark.integration
def test_bad_cost_flags_are_usage_errors_naming_the_flag(sample_finqa, tmp_path, flag, value, message):
    result = run_prepare(sample_finqa, tmp_path, flag, value)
    assert result.returncode == 2
    assert f"argument {flag}: {message}" in result.stderr


@pytest.mark.integration
def test_an_instance_type_the_recipe_does_not_run_on_is_refused_before_any_data_is_read(tmp_path):
    result = run_prepare(tmp_path / "no-such-folder", tmp_path / "out", "--training-instance-type", "ml.t2.medium")
    assert result.returncode == 1
    assert ("--training-instance-type ml.t2.medium: nova_lite_1_0_g5_g6_12x_gpu_lora_sft runs on "
            "ml.g5.12xlarge, ml.g6.12xlarge") in result.stderr
