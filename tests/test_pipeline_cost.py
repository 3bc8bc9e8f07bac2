"""The definition's cost and MLflow parts: MaxTrainingCost reaches the preparation step with the
estimate's inputs, the package records the estimate beside the billable seconds, and
--mlflow-tracking-arn adds MLflow to the jobs and the scoring step, and nothing when unset."""
from __future__ import annotations

import dataclasses
import json

import botocore.session
import pytest

from pipeline.checks import definition_problems
from pipeline.settings import Settings, SettingsError
from steps.estimate import REGISTRY_FIELDS
from tests.test_pipeline import EXAMPLE, steps_by_name

ARN = "arn:aws:sagemaker:us-east-1:111122223333:mlflow-tracking-server/nova-team"
NOVA_JOBS = ("FineTune", "GenerateFineTunedAnswers", "GenerateBaseModelAnswers")


@pytest.fixture(scope="module")
def definitions():
    from pipeline.definition import build_pipeline

    return {arn: json.loads(build_pipeline(dataclasses.replace(EXAMPLE, mlflow_tracking_arn=arn)).definition)
            for arn in ("", ARN)}


def container_arguments(definition, step: str) -> list:
    return steps_by_name(definition)[step]["Arguments"]["AppSpecification"]["ContainerArguments"]


def flag_values(arguments: list) -> dict:
    return {arguments[i]: arguments[i + 1] for i in range(len(arguments) - 1)
            if isinstance(arguments[i], str) and arguments[i].startswith("--")}


def test_prepare_gets_the_budget_and_what_the_estimate_needs(definitions):
    flags = flag_values(container_arguments(definitions[""], "PrepareFinQAData"))
    assert flags["--max-training-cost"] == {"Get": "Parameters.MaxTrainingCost"}
    assert flags["--training-instance-type"] == {"Get": "Parameters.TrainingInstanceType"}
    assert flags["--evaluation-instance-type"] == {"Get": "Parameters.EvaluationInstanceType"}
    assert flags["--region"] == "us-east-1"


def test_the_package_records_the_estimate_beside_what_was_billed(definitions):
    metadata = steps_by_name(definitions[""])["RegisterModel"]["Arguments"]["CustomerMetadataProperties"]
    for key in REGISTRY_FIELDS:
        assert metadata[key] == {"Std:JsonGet": {
            "PropertyFile": {"Get": "Steps.PrepareFinQAData.PropertyFiles.DataReport"},
                                                 "Path": f"estimate.registry.{key}"}}
    assert "Steps.FineTune.BillableTimeInSeconds" in json.dumps(metadata["training_billable_seconds"])
    assert "Steps.FineTune.ResourceConfig.InstanceCount" in json.dumps(metadata["training_instance_count"])
    assert metadata["pipeline_execution_arn"] == {"Get": "Execution.PipelineExecutionArn"}
    limit = botocore.session.get_session().get_service_model("sagemaker").shape_for(
        "CustomerMetadataMap").metadata["max"]
    from steps import package_metadata

    added = {value for name, value in vars(package_metadata).items()
             if name.isupper() and isinstance(value, str) and value not in metadata}
    assert len(metadata) + len(added) <= limit  # room for what the Bedrock import writes


def test_without_an_mlflow_arn_the_definition_has_no_mlflow(definitions):
    text = json.dumps(definitions[""])
    assert definitions[""]["MlflowConfig"] is None  # the SDK's own pipeline-level field, always written
    assert text.lower().count("mlflow") == 1
    assert ("--data-report", "--billable-seconds") not in container_arguments(definitions[""], "ScoreAnswers")


def test_with_an_mlflow_arn_the_jobs_log_to_the_executions_run(definitions):
    steps = steps_by_name(definitions[ARN])
    for name in NOVA_JOBS:
        assert steps[name]["Arguments"]["MlflowConfig"] == {
            "MlflowResourceArn": ARN, "MlflowExperimentName": "nova-finqa-sft",
            "MlflowRunName": {"Get": "Execution.PipelineExecutionId"}}
    prepare = flag_values(container_arguments(definitions[ARN], "PrepareFinQAData"))
    assert (prepare["--mlflow-tracking-uri"], prepare["--mlflow-experiment"]) == (ARN, "nova-finqa-sft")
    recipe_key = json.dumps([o for o in steps["PrepareFinQAData"]["Arguments"]["ProcessingOutputConfig"]["Outputs"]
                             if o["OutputName"] == "recipe"])
    assert '"mlflow", "nova-team", "nova-finqa-sft"' in recipe_key
    score = container_arguments(definitions[ARN], "ScoreAnswers")
    flags = flag_values(score)
    assert flags["--mlflow-tracking-uri"] == ARN
    assert flags["--mlflow-run-name"] == {"Get": "Execution.PipelineExecutionId"}
    assert flags["--data-report"] == "/opt/ml/processing/input/report/data_report.json"
    billed = [json.dumps(score[i + 1]) for i, part in enumerate(score) if part == "--billable-seconds"]
    assert [f"Steps.{name}.BillableTimeInSeconds" in text for name, text in zip(NOVA_JOBS, billed)] == [True] * 3
    inputs = {i["InputName"]: i for i in steps["ScoreAnswers"]["Arguments"]["ProcessingInputs"]}
    assert "Outputs['report']" in json.dumps(inputs["report"]["S3Input"]["S3Uri"])
    assert definition_problems(json.dumps(definitions[ARN])) == []  # MlflowConfig checked against botocore's model


def test_mlflow_changes_the_definition_only_where_it_logs(definitions):
    """Take the MLflow parts out of the definition built with an ARN: what is left is the one built without."""
    with_mlflow = json.loads(json.dumps(definitions[ARN]))
    steps = steps_by_name(with_mlflow)
    for name in NOVA_JOBS:
        del steps[name]["Arguments"]["MlflowConfig"]
    prepare = steps["PrepareFinQAData"]["Arguments"]
    prepare["AppSpecification"]["ContainerArguments"] = prepare["AppSpecification"]["ContainerArguments"][:-4]
    recipe = next(o for o in prepare["ProcessingOutputConfig"]["Outputs"] if o["OutputName"] == "recipe")
    recipe["S3Output"]["S3Uri"]["Std:Join"]["Values"] = recipe["S3Output"]["S3Uri"]["Std:Join"]["Values"][:-3]
    score = steps["ScoreAnswers"]["Arguments"]
    arguments = score["AppSpecification"]["ContainerArguments"]
    score["AppSpecification"]["ContainerArguments"] = arguments[:arguments.index("--mlflow-tracking-uri")]
    score["ProcessingInputs"] = [i for i in score["ProcessingInputs"] if i["InputName"] != "report"]
    assert with_mlflow == definitions[""]


@pytest.mark.parametrize("value", ["nova-team", "arn:aws:sagemaker:us-east-1:111122223333:mlflow-notebook/x",
                                   "arn:aws:iam::111122223333:role/x"])
def test_a_value_that_is_no_mlflow_arn_is_refused_naming_the_setting(value):
    with pytest.raises(SettingsError, match="--mlflow-tracking-arn .* is not a SageMaker MLflow tracking server"):
        Settings.resolve(None, {"AWS_REGION": "us-east-1", "NOVA_ROLE_ARN": EXAMPLE.role_arn,
                                "NOVA_BUCKET": EXAMPLE.bucket, "NOVA_MLFLOW_TRACKING_ARN": value})


def test_the_mlflow_arn_comes_from_its_environment_variable():
    settings = Settings.resolve(None, {"AWS_REGION": "us-east-1", "NOVA_ROLE_ARN": EXAMPLE.role_arn,
                                       "NOVA_BUCKET": EXAMPLE.bucket, "NOVA_MLFLOW_TRACKING_ARN": ARN})
    assert settings.mlflow_tracking_arn == ARN
