"""Rendered recipes: AWS's recipe file with only our values changed; YAML a YAML 1.1 parser reads
back; bad values refused naming the pipeline parameter; Nova 2's max_steps from the records."""
from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
import yaml

from steps import catalog
from steps.catalog import RecipeError, recipe
from steps.recipes import RUN_NAME, evaluation_recipe, recipe_yaml, training_recipe, write_recipe
from tests.conftest import PROJECT_ROOT
from tests.test_catalog import MIRROR, SFT_RECIPES

COMMIT = catalog.SOURCE["commit"]


def _aws_file(path: str):
    """AWS's recipe file at the catalog's commit, read as the Nova containers read it."""
    from scripts.build_catalog import RECIPES_SRC, Repo, load_recipe

    repo = Repo(MIRROR, COMMIT)
    try:
        return load_recipe(repo.read(f"{RECIPES_SRC}/{path}"))
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"no clone of aws/sagemaker-hyperpod-recipes holding {COMMIT} at {MIRROR}")


def _values_for(chosen) -> dict:
    """Values other than AWS's defaults wherever the recipe allows another, so each one shows."""
    def other(field):
        if field.enum is not None:
            return next((v for v in field.enum if v != field.default), field.default)
        if field.type == "float":
            return field.default / 2 if field.default else 0.5
        return field.default + 1
    values = {name: other(chosen.fields[name]) for name in ("learning_rate", "lora_alpha", "max_length",
                                                            "global_batch_size", "replicas") if name in chosen.fields}
    return values


def _changed(before, after, path=()):
    if isinstance(before, dict) and isinstance(after, dict):
        keys = set(before) | set(after)
        return {p for key in keys for p in _changed(before.get(key), after.get(key), (*path, key))}
    return set() if before == after else {path}


@pytest.mark.parametrize("recipe_id", sorted(SFT_RECIPES))
@pytest.mark.integration
def test_rendered_training_recipe_is_aws_file_with_only_our_values_changed(recipe_id):
    chosen = recipe(recipe_id)
    values = _values_for(chosen)
    rendered, summary = training_recipe(recipe_id, epochs=3, train_records=6251, **values)
    ours = {path for name in (*values, "max_epochs", "max_steps", "reasoning_enabled", "replicas")
            if name in chosen.fields for path in chosen.fields[name].paths} | {("run", "name")}
    aws = _aws_file(chosen.file)
    # Resolved as AWS's launcher resolves `${oc.select:...}`; AWS's placeholder buckets emptied.
    resolved = {("training_config", "save_steps")} if "save_steps" in aws.get("training_config", {}) else set()
    emptied = {("run", key) for key in ("data_s3_path", "output_s3_path")
               if aws["run"].get(key, "").startswith("s3://")}
    assert _changed(aws, rendered) <= ours | resolved | emptied
    assert all(rendered["run"][key] == "" for _, key in emptied)
    if resolved:
        assert rendered["training_config"]["save_steps"] == rendered["training_config"]["max_steps"]
    for name, value in values.items():
        for path in chosen.fields[name].paths:
            node = rendered
            for key in path:
                node = node[key]
            assert node == value
    assert rendered["run"]["name"] == RUN_NAME
    if chosen.step_based:
        batch = values["global_batch_size"]
        assert summary["max_steps"] == -(-6251 // batch) * 3
        assert rendered["training_config"]["max_steps"] == summary["max_steps"]
        assert rendered["training_config"]["reasoning_enabled"] is False
    else:
        assert rendered["training_config"]["trainer"]["max_epochs"] == 3


@pytest.mark.parametrize("recipe_id", sorted({recipe(r).evaluation.id for r in SFT_RECIPES}))
@pytest.mark.integration
def test_rendered_evaluation_recipe_is_aws_file_with_only_our_values_changed(recipe_id):
    evaluation = catalog.EVALUATION_RECIPES[recipe_id]
    training_id = next(r for r in SFT_RECIPES if recipe(r).evaluation.id == recipe_id)
    rendered = evaluation_recipe(training_id, "s3://customer-escrow-111122223333-smtj-abc/run/step_5")
    assert _changed(_aws_file(evaluation.file), rendered) == {
        ("run", "name"), ("run", "model_name_or_path"), ("inference", "max_new_tokens")}
    assert rendered["inference"]["max_new_tokens"] == 1024


def test_default_recipe_renders_as_the_workshop_ran_it():
    rendered, _ = training_recipe()
    assert rendered["run"]["model_type"] == "amazon.nova-lite-v1:0:300k"
    config = rendered["training_config"]
    assert (config["max_length"], config["global_batch_size"], config["trainer"]["max_epochs"]) == (8192, 64, 2)
    assert config["model"]["optim"]["lr"] == 1e-5
    assert config["model"]["peft"] == {
        "peft_scheme": "lora", "lora_tuning": {"loraplus_lr_ratio": 16.0, "alpha": 128, "adapter_dropout": 0.01}}


def test_nova_2_max_steps_from_real_finqa_record_counts(shared_finqa):
    train = json.loads((shared_finqa / "train_100.json").read_text())
    _, summary = training_recipe("nova_lite_2_0_p5_gpu_lora_sft", epochs=2, train_records=len(train),
                                 global_batch_size=32)
    assert (summary["steps_per_epoch"], summary["max_steps"], summary["raised_to_minimum"]) == (4, 8, False)
    # FinQA's full training split, 6,251 records, two epochs of 64.
    _, summary = training_recipe("nova_lite_2_0_p5_gpu_lora_sft", epochs=2, train_records=6251, global_batch_size=64)
    assert summary["max_steps"] == 196
    # Too few records for the recipe's minimum of 4 steps: raised to it, and said so.
    _, summary = training_recipe("nova_lite_2_0_p5_gpu_sft", epochs=1, train_records=20, global_batch_size=128)
    assert (summary["max_steps"], summary["raised_to_minimum"]) == (4, True)


def test_yaml_reads_back_with_floats_as_floats():
    rendered, _ = training_recipe(epochs=3, learning_rate=2e-5, lora_alpha=64, max_length=4096, global_batch_size=32)
    text = recipe_yaml(rendered)
    assert "lr: 2.0e-05" in text
    parsed = yaml.safe_load(text)  # PyYAML resolves YAML 1.1: `1e-05` would come back a string
    assert parsed == rendered
    assert isinstance(parsed["training_config"]["model"]["optim"]["lr"], float)
    nova_2, _ = training_recipe("nova_lite_2_0_p5_gpu_sft", epochs=1, train_records=100)
    assert yaml.safe_load(recipe_yaml(nova_2)) == nova_2  # null, {} and the ${...} interpolation survive


@pytest.mark.parametrize("values, parameter", [
    ({"epochs": 0}, "Epochs"),
    ({"learning_rate": -1e-5}, "LearningRate"),
    ({"learning_rate": float("nan")}, "LearningRate"),
    ({"lora_alpha": 100}, "LoraAlpha"),
    ({"max_length": 1000}, "MaxLength"),
    ({"max_length": 9216}, "MaxLength"),
    ({"global_batch_size": 8}, "GlobalBatchSize"),
    ({"replicas": 2}, "Replicas"),
])
def test_bad_values_are_refused_naming_the_pipeline_parameter(values, parameter):
    with pytest.raises(RecipeError, match=parameter):
        training_recipe(**values)


def test_a_field_the_recipe_does_not_have_is_refused():
    with pytest.raises(RecipeError, match="has no field 'lora_alpha'"):
        training_recipe("nova_lite_1_0_p5_p4d_gpu_sft", lora_alpha=64)


def test_evaluation_recipe_for_base_model_and_checkpoint():
    base = evaluation_recipe()
    assert base["run"]["model_name_or_path"] == "nova-lite/prod"
    assert evaluation_recipe("nova_lite_2_0_p5_gpu_lora_sft")["run"]["model_name_or_path"] == "nova-lite-2/prod"
    with pytest.raises(RecipeError, match="s3://"):
        evaluation_recipe(catalog.DEFAULT_RECIPE, "/local/checkpoint")


def test_write_recipe_writes_recipe_yaml(tmp_path):
    path = write_recipe(evaluation_recipe(), tmp_path)
    assert path == tmp_path / "recipe" / "recipe.yaml"
    assert yaml.safe_load(path.read_text()) == evaluation_recipe()


def test_rendering_leaves_the_catalog_untouched():
    before = copy.deepcopy(catalog.CATALOG)
    training_recipe("nova_lite_2_0_p5_gpu_lora_sft", epochs=2, train_records=100, lora_alpha=32)
    assert catalog.CATALOG == before


def _prepare(tmp_path, finqa, *extra):
    return subprocess.run(
        [sys.executable, "-m", "steps.prepare", "--input-dir", str(finqa), "--output-dir", str(tmp_path),
         *extra], cwd=PROJECT_ROOT, capture_output=True, text=True)


@pytest.mark.integration
def test_prepare_renders_the_training_recipe_from_its_flags(tmp_path, sample_finqa):
    result = _prepare(tmp_path, sample_finqa, "--epochs", "3", "--learning-rate", "1.0E-4", "--lora-alpha", "64",
                      "--global-batch-size", "32", "--max-length", "4096")
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load((tmp_path / "recipe" / "recipe.yaml").read_text())
    assert rendered == training_recipe(epochs=3, learning_rate=1e-4, lora_alpha=64, max_length=4096,
                                       global_batch_size=32)[0]
    report = json.loads((tmp_path / "report" / "data_report.json").read_text())
    assert report["settings"]["max_length"] == 4096
    assert report["recipe"]["id"] == catalog.DEFAULT_RECIPE


@pytest.mark.integration
def test_prepare_computes_nova_2_max_steps_from_the_records_it_wrote(tmp_path, shared_finqa):
    result = _prepare(tmp_path, shared_finqa, "--recipe", "nova_lite_2_0_p5_gpu_lora_sft", "--epochs", "3",
                      "--global-batch-size", "32", "--max-length", "8192", "--replicas", "4",
                      "--max-train-records", "50")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "report" / "data_report.json").read_text())
    assert report["splits"]["train"]["written"] == 50
    assert report["recipe"]["max_steps"] == 6  # ceil(50 / 32) = 2 steps an epoch, 3 epochs
    rendered = yaml.safe_load((tmp_path / "recipe" / "recipe.yaml").read_text())
    assert rendered["training_config"]["max_steps"] == 6
    assert rendered["run"]["replicas"] == 4


@pytest.mark.integration
def test_prepare_refuses_bad_recipe_values_before_reading_data(tmp_path, sample_finqa):
    result = _prepare(tmp_path, sample_finqa, "--lora-alpha", "100")
    assert result.returncode == 1
    assert "LoraAlpha" in result.stderr
    assert not any(tmp_path.iterdir()), "nothing is written when the recipe is refused"
    result = _prepare(tmp_path, sample_finqa, "--epochs", "two")
    assert result.returncode == 2 and "Epochs" in result.stderr
    result = _prepare(tmp_path, sample_finqa, "--recipe", "nova_lite_lora")
    assert result.returncode == 2 and "known: " in result.stderr
