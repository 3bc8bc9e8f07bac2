"""The pipeline for a reinforcement fine-tuning recipe: the RFT training step in the same graph,
its parameters with AWS's allowed values, the reward Lambda named in its recipe, and the
definition checked against botocore's model of every job's API call."""
from __future__ import annotations

import dataclasses
import json

import pytest

from pipeline.checks import definition_problems
from pipeline.reward_function import function_arn
from steps import catalog
from tests.test_pipeline import EXAMPLE, REGIONS, steps_by_name

RFT_RECIPES = sorted(r for r, entry in catalog.TRAINING_RECIPES.items() if entry.method == "rft")
REWARD_ARN = "arn:aws:lambda:us-east-1:111122223333:function:SageMaker-nova-finqa-reward"


@pytest.fixture(scope="module")
def definitions():
    """A definition per RFT recipe and Nova region, and the default SFT one, built once."""
    from pipeline.definition import build_pipeline

    built = {(recipe_id, region): json.loads(build_pipeline(dataclasses.replace(
        EXAMPLE, region=region, recipe=recipe_id)).definition) for recipe_id in RFT_RECIPES for region in REGIONS}
    built["sft"] = json.loads(build_pipeline(EXAMPLE).definition)
    return built


def test_both_rft_recipes_of_awss_catalog_are_built():
    assert RFT_RECIPES == ["nova_lite_v2_smtj_p5_p5en_gpu_lora_rft", "nova_lite_v2_smtj_p5_p5en_gpu_rft"]


@pytest.mark.parametrize("recipe_id", RFT_RECIPES)
def test_the_rft_definition_validates_against_botocore_with_the_catalogs_image(definitions, recipe_id):
    chosen = catalog.recipe(recipe_id)
    for region, account in REGIONS.items():
        definition = definitions[(recipe_id, region)]
        assert definition_problems(json.dumps(definition)) == []  # botocore's model of each job's API call
        train = steps_by_name(definition)["FineTune"]["Arguments"]
        assert train["AlgorithmSpecification"]["TrainingImage"] == chosen.image(region) == \
            f"{account}.dkr.ecr.{region}.amazonaws.com/nova-fine-tune-repo:SM-TJ-RFT-V2-latest"
        assert not any(other in json.dumps(definition) for other in set(REGIONS) - {region})


@pytest.mark.parametrize("recipe_id", RFT_RECIPES)
def test_the_rft_training_step(definitions, recipe_id):
    chosen = catalog.recipe(recipe_id)
    steps = steps_by_name(definitions[(recipe_id, "us-east-1")])
    train = steps["FineTune"]
    arguments = train["Arguments"]
    assert train["DisplayName"] == f"Fine-tune Nova 2 Lite ({'LoRA' if chosen.peft == 'lora' else 'full-rank'} RFT)"
    assert "SageMaker-nova-finqa-reward" in train["Description"]
    # AWS's recipe runs on 4 instances (run.replicas); no other count is stated for training jobs
    assert arguments["ResourceConfig"]["InstanceCount"] == chosen.template["run"]["replicas"] == 4
    # reward_lambda_arn: as AWS's launcher copies run.reward_lambda_arn (tests/test_oracle.py)
    assert arguments["HyperParameters"] == {"base_model": "nova-lite-2/prod", "reward_lambda_arn": REWARD_ARN,
                                            "sagemaker_recipe_local_path": "/opt/ml/input/data/recipe/recipe.yaml"}
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"] for c in arguments["InputDataConfig"]}
    # RFT data goes to training jobs as an S3Prefix channel (AWS's SDK); there is no validation channel
    assert set(channels) == {"train", "recipe"}
    assert channels["train"]["S3DataType"] == "S3Prefix"
    assert channels["train"]["S3Uri"] == {"Std:Join": {"On": "/", "Values": [
        {"Get": "Steps.PrepareFinQAData.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"}, "train.jsonl"]}}

    prepare = steps["PrepareFinQAData"]["Arguments"]
    container = prepare["AppSpecification"]["ContainerArguments"]
    assert container[container.index("--recipe") + 1] == recipe_id
    assert container[container.index("--reward-lambda-arn") + 1] == REWARD_ARN == function_arn(EXAMPLE)
    # the recipe's data_s3_path is the object the train channel reads
    train_output = next(o for o in prepare["ProcessingOutputConfig"]["Outputs"] if o["OutputName"] == "train")
    data_path = container[container.index("--data-s3-path") + 1]["Std:Join"]
    assert data_path["Values"] == [*train_output["S3Output"]["S3Uri"]["Std:Join"]["Values"], "train.jsonl"]
    recipe_key = json.dumps(next(o for o in prepare["ProcessingOutputConfig"]["Outputs"]
                                 if o["OutputName"] == "recipe")["S3Output"]["S3Uri"])
    assert "SageMaker-nova-finqa-reward" in recipe_key  # another reward function, another recipe


@pytest.mark.parametrize("recipe_id", RFT_RECIPES)
def test_the_rft_parameters_have_awss_defaults_and_allowed_values(definitions, recipe_id):
    chosen = catalog.recipe(recipe_id)
    definition = definitions[(recipe_id, "us-east-1")]
    parameters = {p["Name"]: p for p in definition["Parameters"]}
    assert "Epochs" not in parameters and "Replicas" not in parameters
    assert {name: parameters[name]["DefaultValue"] for name in ("MaxSteps", "NumberGeneration", "ReasoningEffort",
                                                               "LearningRate", "MaxLength", "GlobalBatchSize")} == {
        "MaxSteps": 5, "NumberGeneration": 2, "ReasoningEffort": "high", "LearningRate": 1e-4, "MaxLength": 8192,
        "GlobalBatchSize": 64}
    assert parameters["ReasoningEffort"]["EnumValues"] == ["high", "low", "none"]
    assert parameters["TrainingInstanceType"]["EnumValues"] == list(chosen.instance_types)
    assert ("LoraAlpha" in parameters) is (chosen.peft == "lora")
    if chosen.peft == "lora":
        assert parameters["LoraAlpha"]["DefaultValue"] == 32
    container = steps_by_name(definition)["PrepareFinQAData"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    flags = {container[i]: json.dumps(container[i + 1]) for i in range(1, len(container) - 1)
             if isinstance(container[i], str) and container[i].startswith("--")}
    for flag, parameter in [("--max-steps", "MaxSteps"), ("--number-generation", "NumberGeneration"),
                            ("--reasoning-effort", "ReasoningEffort"), ("--learning-rate", "LearningRate")]:
        assert f"Parameters.{parameter}" in flags[flag]
    metadata = steps_by_name(definition)["RegisterModel"]["Arguments"]["CustomerMetadataProperties"]
    assert metadata["reward_lambda_arn"] == REWARD_ARN
    assert {"max_steps", "number_generation", "reasoning_effort", "recipe"} <= set(metadata)


@pytest.mark.parametrize("recipe_id", RFT_RECIPES)
def test_evaluation_gate_and_registry_are_those_of_the_sft_pipeline(definitions, recipe_id):
    rft, sft = steps_by_name(definitions[(recipe_id, "us-east-1")]), steps_by_name(definitions["sft"])
    assert {name: step["Type"] for name, step in rft.items()} == {name: step["Type"] for name, step in sft.items()}
    for name in ("GenerateFineTunedAnswers", "GenerateBaseModelAnswers"):
        job = rft[name]["Arguments"]
        assert job["AlgorithmSpecification"]["TrainingImage"] == \
            "708977205387.dkr.ecr.us-east-1.amazonaws.com/nova-evaluation-repo:SM-TJ-Eval-V2-latest"
    assert rft["ScoreAnswers"]["Arguments"]["AppSpecification"]["ContainerArguments"] == \
        sft["ScoreAnswers"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert rft["CheckAccuracy"]["Arguments"]["Conditions"] == sft["CheckAccuracy"]["Arguments"]["Conditions"]
    assert rft["RegisterModel"]["Arguments"]["ModelPackageGroupName"] == "nova-finqa"


@pytest.mark.parametrize("recipe_id", RFT_RECIPES)
@pytest.mark.parametrize("mode", ["high", "low", "none"])
def test_both_models_are_evaluated_in_the_reasoning_mode_the_model_trained_in(definitions, recipe_id, mode, tmp_path):
    """AWS's "Reasoning model evaluation" page: reasoning_effort in the inference section,
    max_new_tokens 32768 with reasoning. The mode is the ReasoningEffort the training recipe gets."""
    import yaml

    from pipeline.artifacts import base_model_recipe_artifacts
    from steps import checkpoint

    steps = steps_by_name(definitions[(recipe_id, "us-east-1")])
    parameter = {"Get": "Parameters.ReasoningEffort"}
    prepare = steps["PrepareFinQAData"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert prepare[prepare.index("--reasoning-effort") + 1] == parameter
    arguments = steps["FindCheckpoint"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--reasoning-effort") + 1] == parameter
    (tmp_path / "training").mkdir()
    # A checkpoint in the escrow bucket of the example role's account, which the step checks it against.
    (tmp_path / "training" / "manifest.json").write_text(
        '{"checkpoint_s3_bucket": "s3://customer-escrow-111122223333-smtj-a1b2c3/run/step_5"}')
    assert checkpoint.main(["--training-output", str(tmp_path / "training"), "--output-dir", str(tmp_path / "out"),
                            "--recipe", recipe_id, "--reasoning-effort", mode, "--account", "111122223333"]) == 0
    tuned = yaml.safe_load((tmp_path / "out" / "recipe" / "recipe.yaml").read_text())["inference"]

    base_channel = next(c for c in steps["GenerateBaseModelAnswers"]["Arguments"]["InputDataConfig"]
                        if c["ChannelName"] == "recipe")["DataSource"]["S3DataSource"]["S3Uri"]["Std:Join"]
    assert base_channel["Values"][1:] == [parameter, ""]
    artifact = next(a for a in base_model_recipe_artifacts(EXAMPLE.prefix, recipe_id)
                    if f"s3://{EXAMPLE.bucket}/{a.key}" == f"{base_channel['Values'][0]}/{mode}/recipe.yaml")
    base = yaml.safe_load(artifact.data)["inference"]
    expected = (None, 1024) if mode == "none" else (mode, 32768)
    assert (tuned["reasoning_effort"], tuned["max_new_tokens"]) == (base["reasoning_effort"], base["max_new_tokens"]) \
        == expected
