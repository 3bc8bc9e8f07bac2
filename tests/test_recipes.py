"""The Nova recipes: values as upstream, YAML a YAML 1.1 parser reads back, bad values refused by name."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from steps.recipes import (
    BASE_MODEL,
    RecipeError,
    evaluation_recipe,
    recipe_yaml,
    training_recipe,
    write_recipe,
)
from tests.conftest import PROJECT_ROOT


def test_training_recipe_defaults_are_the_upstream_g5_g6_lora_recipe():
    recipe = training_recipe()
    assert recipe["run"]["model_type"] == "amazon.nova-lite-v1:0:300k"
    assert recipe["run"]["model_name_or_path"] == "nova-lite/prod"
    assert recipe["run"]["replicas"] == 1
    config = recipe["training_config"]
    assert (config["max_length"], config["global_batch_size"], config["trainer"]["max_epochs"]) == (8192, 64, 2)
    assert config["model"]["optim"]["lr"] == 1e-5
    assert config["model"]["optim"]["sched"] == {"warmup_steps": 10, "constant_steps": 0, "min_lr": 1e-6}
    assert config["model"]["peft"] == {
        "peft_scheme": "lora",
        "lora_tuning": {"loraplus_lr_ratio": 16.0, "alpha": 128, "adapter_dropout": 0.01}}


def test_yaml_reads_back_with_floats_as_floats():
    recipe = training_recipe(epochs=3, learning_rate=2e-5, lora_alpha=64, max_length=4096, global_batch_size=32)
    text = recipe_yaml(recipe)
    assert "lr: 2.0e-05" in text
    parsed = yaml.safe_load(text)  # PyYAML resolves YAML 1.1: `1e-05` would come back a string
    assert parsed == recipe
    assert isinstance(parsed["training_config"]["model"]["optim"]["lr"], float)
    assert isinstance(parsed["training_config"]["model"]["optim"]["eps"], float)


def test_values_land_where_the_recipe_reads_them():
    recipe = training_recipe(epochs=5, learning_rate=3e-4, lora_alpha=192, max_length=2048, global_batch_size=16)
    config = recipe["training_config"]
    assert config["trainer"]["max_epochs"] == 5
    assert config["model"]["optim"]["lr"] == 3e-4
    assert config["model"]["peft"]["lora_tuning"]["alpha"] == 192
    assert (config["max_length"], config["global_batch_size"]) == (2048, 16)


@pytest.mark.parametrize("values, parameter", [
    ({"epochs": 0}, "Epochs"),
    ({"learning_rate": 0.0}, "LearningRate"),
    ({"learning_rate": float("nan")}, "LearningRate"),
    ({"lora_alpha": 100}, "LoraAlpha"),
    ({"max_length": 1000}, "MaxLength"),
    ({"max_length": 9216}, "MaxLength"),
    ({"global_batch_size": 8}, "GlobalBatchSize"),
])
def test_bad_values_are_refused_naming_the_pipeline_parameter(values, parameter):
    with pytest.raises(RecipeError, match=parameter):
        training_recipe(**values)


def test_evaluation_recipe_for_base_model_and_checkpoint():
    base = evaluation_recipe()
    assert base["run"]["model_name_or_path"] == BASE_MODEL
    assert base["evaluation"] == {"task": "gen_qa", "strategy": "gen_qa", "metric": "all"}
    assert base["inference"]["temperature"] == 0 and base["inference"]["top_k"] == -1
    tuned = evaluation_recipe("s3://customer-escrow-111122223333-smtj-abc/nova-finqa/step_5")
    assert tuned["run"]["model_name_or_path"] == "s3://customer-escrow-111122223333-smtj-abc/nova-finqa/step_5"
    assert yaml.safe_load(recipe_yaml(tuned)) == tuned
    with pytest.raises(RecipeError, match="s3://"):
        evaluation_recipe("/local/checkpoint")


def test_write_recipe_writes_recipe_yaml(tmp_path):
    path = write_recipe(evaluation_recipe(), tmp_path)
    assert path == tmp_path / "recipe" / "recipe.yaml"
    assert yaml.safe_load(path.read_text()) == evaluation_recipe()


def _prepare(tmp_path, sample_finqa, *extra):
    return subprocess.run(
        [sys.executable, "-m", "steps.prepare", "--input-dir", str(sample_finqa), "--output-dir", str(tmp_path),
         *extra], cwd=PROJECT_ROOT, capture_output=True, text=True)


def test_prepare_renders_the_training_recipe_from_its_flags(tmp_path, sample_finqa):
    result = _prepare(tmp_path, sample_finqa, "--epochs", "3", "--learning-rate", "1.0E-4", "--lora-alpha", "64",
                      "--global-batch-size", "32", "--max-length", "4096")
    assert result.returncode == 0, result.stderr
    recipe = yaml.safe_load((tmp_path / "recipe" / "recipe.yaml").read_text())
    assert recipe == training_recipe(epochs=3, learning_rate=1e-4, lora_alpha=64, max_length=4096,
                                     global_batch_size=32)
    report = json.loads((tmp_path / "report" / "data_report.json").read_text())
    assert report["settings"]["max_length"] == 4096


def test_prepare_refuses_bad_recipe_values_before_reading_data(tmp_path, sample_finqa):
    result = _prepare(tmp_path, sample_finqa, "--lora-alpha", "100")
    assert result.returncode == 1
    assert "LoraAlpha" in result.stderr
    assert not any(tmp_path.iterdir()), "nothing is written when the recipe is refused"
    result = _prepare(tmp_path, sample_finqa, "--epochs", "two")
    assert result.returncode == 2 and "Epochs" in result.stderr
