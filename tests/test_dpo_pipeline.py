"""The pipeline for AWS's Nova DPO recipes: the model answers the training questions, its wrong
answers become preference pairs, DPO trains on them, then the SFT pipeline's evaluation, gate and
registry; the definitions checked against botocore's model of every job's API call, with the
catalog's images and instance types; and the DPO recipes rendered as AWS's files but for our values."""
from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys

import pytest

from pipeline.checks import definition_problems
from steps import catalog
from steps.catalog import RecipeError, recipe
from steps.recipes import training_recipe
from tests.conftest import PROJECT_ROOT
from tests.test_pipeline import EXAMPLE, REGIONS, steps_by_name
from tests.test_recipes import _aws_file, _changed

DPO_RECIPES = sorted(r for r, entry in catalog.TRAINING_RECIPES.items() if entry.method == "dpo")
G5_RECIPE = "nova_micro_1_0_g5_g6_12x_gpu_lora_dpo"
P5_RECIPE = "nova_lite_1_0_p5_p4d_gpu_dpo"
STEPS = ("PrepareFinQAData", "GenerateTrainingAnswers", "MakePreferencePairs", "FineTune", "FindCheckpoint",
         "GenerateFineTunedAnswers", "GenerateBaseModelAnswers", "ScoreAnswers")


def test_every_nova_dpo_recipe_for_training_jobs_is_in_the_catalog():
    assert DPO_RECIPES == [
        "nova_lite_1_0_g5_g6_48x_gpu_lora_dpo", "nova_lite_1_0_p5_p4d_gpu_dpo", "nova_lite_1_0_p5_p4d_gpu_lora_dpo",
        "nova_micro_1_0_g5_g6_12x_gpu_lora_dpo", "nova_micro_1_0_g5_g6_48x_gpu_lora_dpo",
        "nova_micro_1_0_p5_p4d_gpu_dpo", "nova_micro_1_0_p5_p4d_gpu_lora_dpo", "nova_pro_1_0_p4d_gpu_dpo",
        "nova_pro_1_0_p5_gpu_dpo", "nova_pro_1_0_p5_p4d_gpu_lora_dpo"]
    for recipe_id in DPO_RECIPES:
        chosen = recipe(recipe_id)
        assert chosen.peft == ("lora" if "_lora_" in recipe_id else "full-rank")
        assert set(chosen.images) == set(REGIONS)
        assert all(image.endswith("/nova-fine-tune-repo:SM-TJ-DPO-latest") for image in chosen.images.values())
        # beta: AWS's schema says 0.001 to 0.1, the recipe file's comment 0.001 to 0.5; both must allow it
        beta = chosen.fields["adam_beta"]
        assert (beta.min, beta.max, beta.default, beta.paths) == (
            0.001, 0.1, 0.1, (("training_config", "model", "dpo_cfg", "beta"),))
    micro = recipe(G5_RECIPE)
    assert micro.instance_types == ("ml.g5.12xlarge", "ml.g6.12xlarge")
    assert micro.fields["max_length"].enum == (1024, 2048, 3072, 4096)
    assert micro.fields["global_batch_size"].enum == (16, 32, 64)
    assert micro.fields["replicas"].enum == (1,)
    # full-rank: the schema's 16-128, within the file's comment's 16-256
    assert recipe(P5_RECIPE).fields["global_batch_size"].enum == (16, 32, 64, 128)
    assert recipe(P5_RECIPE).fields["replicas"].enum == (4, 8, 16)
    assert recipe("nova_pro_1_0_p4d_gpu_dpo").fields["replicas"].enum == (12, 24)


@pytest.mark.integration  # reads the recipe file from a clone of AWS's catalog with git
@pytest.mark.parametrize("recipe_id", DPO_RECIPES)
def test_rendered_dpo_recipe_is_aws_file_with_only_our_values_changed(recipe_id):
    chosen = recipe(recipe_id)
    values = {"adam_beta": 0.05, "learning_rate": 2e-5,
              **{name: next(v for v in chosen.fields[name].enum if v != chosen.fields[name].default)
                 for name in ("lora_alpha", "max_length", "global_batch_size") if name in chosen.fields}}
    rendered, _ = training_recipe(recipe_id, epochs=chosen.default("max_epochs") + 1, **values)
    ours = {path for name in (*values, "max_epochs") for path in chosen.fields[name].paths} | {("run", "name")}
    changed = _changed(_aws_file(chosen.file), rendered)
    assert changed == ours
    assert rendered["training_config"]["model"]["dpo_cfg"]["beta"] == 0.05


def test_beta_outside_awss_bounds_is_refused_naming_the_parameter():
    with pytest.raises(RecipeError, match=r"adam_beta \(parameter Beta\) 0.2 is above 0.1"):
        training_recipe(G5_RECIPE, adam_beta=0.2)


@pytest.fixture(scope="module")
def definitions():
    from pipeline.definition import build_pipeline

    return {(recipe_id, region): json.loads(build_pipeline(dataclasses.replace(
        EXAMPLE, region=region, recipe=recipe_id)).definition)
        for recipe_id in (G5_RECIPE, P5_RECIPE) for region in REGIONS}


@pytest.mark.parametrize("recipe_id", [G5_RECIPE, P5_RECIPE])
def test_dpo_definition_validates_against_botocore_with_the_catalogs_images(definitions, recipe_id):
    chosen = recipe(recipe_id)
    for region, account in REGIONS.items():
        definition = definitions[(recipe_id, region)]
        assert definition_problems(json.dumps(definition)) == []  # botocore's model of each job's API call
        steps = steps_by_name(definition)
        assert steps["FineTune"]["Arguments"]["AlgorithmSpecification"]["TrainingImage"] == chosen.image(region) == \
            f"{account}.dkr.ecr.{region}.amazonaws.com/nova-fine-tune-repo:SM-TJ-DPO-latest"
        for name in ("GenerateTrainingAnswers", "GenerateFineTunedAnswers", "GenerateBaseModelAnswers"):
            assert steps[name]["Arguments"]["AlgorithmSpecification"]["TrainingImage"] == \
                chosen.evaluation.image(region)
        assert not any(other in json.dumps(definition) for other in set(REGIONS) - {region})
    parameters = {p["Name"]: p for p in definitions[(recipe_id, "us-east-1")]["Parameters"]}
    assert parameters["TrainingInstanceType"]["EnumValues"] == list(chosen.instance_types)
    assert parameters["EvaluationInstanceType"]["EnumValues"] == list(chosen.evaluation.instance_types)
    assert parameters["Beta"] == {"Name": "Beta", "Type": "Float", "DefaultValue": 0.1}
    assert ("LoraAlpha" in parameters) is (chosen.peft == "lora")
    assert ("Replicas" in parameters) is (len(chosen.fields["replicas"].enum) > 1)


def referenced(step) -> set[str]:
    return set(re.findall(r"Steps\.(\w+)\.", json.dumps(step["Arguments"]))) - {step["Name"]}


@pytest.mark.parametrize("recipe_id", [G5_RECIPE, P5_RECIPE])
def test_the_dpo_graph(definitions, recipe_id):
    chosen = recipe(recipe_id)
    steps = steps_by_name(definitions[(recipe_id, "us-east-1")])
    assert set(STEPS) <= set(steps)
    assert referenced(steps["GenerateTrainingAnswers"]) == {"PrepareFinQAData"}
    assert referenced(steps["MakePreferencePairs"]) == {"GenerateTrainingAnswers", "PrepareFinQAData"}
    assert referenced(steps["FineTune"]) == {"MakePreferencePairs", "PrepareFinQAData"}
    # the base model answers the training questions with the same image and recipe as its test answers
    training_answers, base = (steps[name]["Arguments"]
                              for name in ("GenerateTrainingAnswers", "GenerateBaseModelAnswers"))
    channels = {name: {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]}
                for name, job in (("train", training_answers), ("base", base))}
    assert channels["train"]["recipe"] == channels["base"]["recipe"]
    assert training_answers["HyperParameters"] == base["HyperParameters"] == {
        "base_model": chosen.base_model, "sagemaker_recipe_local_path": "/opt/ml/input/data/recipe/recipe.yaml"}
    assert channels["train"]["train"] == {
        "Get": "Steps.PrepareFinQAData.ProcessingOutputConfig.Outputs['prompts'].S3Output.S3Uri"}
    # its inputs do not change between executions: a cache hit after the first
    prompts = next(o for o in steps["PrepareFinQAData"]["Arguments"]["ProcessingOutputConfig"]["Outputs"]
                   if o["OutputName"] == "prompts")
    key = json.dumps(prompts["S3Output"]["S3Uri"])
    assert "Execution" not in key and set(re.findall(r"Parameters\.(\w+)", key)) == {
        "TrainingRecords", "MaxLength", "DataLocation"}
    assert set(re.findall(r"Parameters\.(\w+)", json.dumps(training_answers))) == {"EvaluationInstanceType"}
    assert steps["GenerateTrainingAnswers"]["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P90D"}
    # the pairs: FinQA's verdict on the answers, the recipe's max_length
    pairs = steps["MakePreferencePairs"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert pairs[:2] == ["steps.preferences", "--predictions"]
    assert pairs[pairs.index("--max-length") + 1] == {
        "Std:Join": {"On": "", "Values": [{"Get": "Parameters.MaxLength"}]}}
    # DPO trains on the pairs only, as Converse records (AWS's DPO format)
    train = steps["FineTune"]["Arguments"]
    data = {c["ChannelName"]: c["DataSource"]["S3DataSource"] for c in train["InputDataConfig"]}
    assert set(data) == {"train", "recipe"} and data["train"]["S3DataType"] == "Converse"
    assert "Steps.MakePreferencePairs.ProcessingOutputConfig.Outputs['train']" in json.dumps(data["train"]["S3Uri"])
    assert train["ResourceConfig"]["InstanceType"] == {"Get": "Parameters.TrainingInstanceType"}
    # then the SFT pipeline's evaluation, gate and registry
    assert [s["Name"] for s in steps["CheckAccuracy"]["Arguments"]["IfSteps"]] == ["RegisterModel"]
    metadata = steps["RegisterModel"]["Arguments"]["CustomerMetadataProperties"]
    assert metadata["technique"] == "DPO"
    assert metadata["beta"] == {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.Beta"}]}}
    assert "Steps.MakePreferencePairs.PropertyFiles.Preferences" in json.dumps(metadata["train_records"])
    assert '"pairs"' in json.dumps(metadata["train_records"])
    assert "splits.train.written" in json.dumps(metadata["training_questions"])


def test_the_committed_dpo_example_is_regenerated_by_its_command():
    from tests.test_pipeline import COMMITTED

    assert G5_RECIPE in COMMITTED and COMMITTED[G5_RECIPE].exists()


@pytest.mark.integration
def test_the_preparation_step_writes_the_dpo_prompts_and_estimate(tmp_path, shared_finqa):
    """The preparation step the DPO pipeline runs, with its arguments for the default DPO recipe."""
    result = subprocess.run([sys.executable, "-m", "steps.prepare", "--input-dir", str(shared_finqa), "--output-dir",
                             str(tmp_path), "--recipe", G5_RECIPE, "--beta", "0.05", "--max-length", "4096",
                             "--region", "us-east-1"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "report" / "data_report.json").read_text())
    assert report["splits"]["train"]["output_file"] == "prompts/gen_qa.jsonl"
    assert not (tmp_path / "train").exists()
    estimate = report["estimate"]
    assert estimate["evaluation_jobs"] == 3 and "DPO taken as 3/4 of SFT" in estimate["throughput_source"]
    assert "answering the training questions" in estimate["summary"]


@pytest.mark.parametrize("param, refused", [("Beta=0.5", "adam_beta (parameter Beta) 0.5 is above 0.1"),
                                            ("Beta=0.0001", "below 0.001"), ("Beta=0.05", None),
                                            ("MaxLength=8192", "is not allowed"), ("MaxLength=2048", None)])
def test_start_execution_checks_dpo_values_against_the_recipe(param, refused):
    """`python -m scripts.start_execution` on the committed DPO definition: AWS's bounds, before anything starts."""
    import io

    import boto3
    from moto import mock_aws

    from scripts import start_execution
    from tests.test_pipeline import COMMITTED

    with mock_aws():
        client = boto3.client("sagemaker", region_name="us-east-1")
        client.create_pipeline(PipelineName="nova-finqa-dpo", RoleArn="arn:aws:iam::111122223333:role/pipeline",
                               PipelineDefinition=COMMITTED[G5_RECIPE].read_text())
        err = io.StringIO()
        code = start_execution.main(["--pipeline-name", "nova-finqa-dpo", "--param", param], sagemaker=client,
                                    out=io.StringIO(), err=err)
        started = client.list_pipeline_executions(PipelineName="nova-finqa-dpo")["PipelineExecutionSummaries"]
    if refused:
        assert code == start_execution.EXIT_USAGE and refused in err.getvalue() and not started
    else:
        assert code == 0, err.getvalue()
        assert len(started) == 1


def test_with_mlflow_the_training_answers_job_is_billed_to_the_run_too():
    from pipeline.definition import build_pipeline

    arn = "arn:aws:sagemaker:us-east-1:111122223333:mlflow-tracking-server/finqa"
    definition = json.loads(build_pipeline(dataclasses.replace(EXAMPLE, recipe=G5_RECIPE,
                                                               mlflow_tracking_arn=arn)).definition)
    assert definition_problems(json.dumps(definition)) == []
    score = steps_by_name(definition)["ScoreAnswers"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    billed = [score[i + 1]["Std:Join"]["Values"] for i, arg in enumerate(score) if arg == "--billable-seconds"]
    assert [values[0] for values in billed] == ["training", "fine_tuned_evaluation", "base_evaluation",
                                                "training_answers"]
    assert billed[-1][1] == {"Get": "Steps.GenerateTrainingAnswers.BillableTimeInSeconds"}
