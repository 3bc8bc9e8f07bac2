"""What SageMaker bounds and botocore does not check on our side: no length can fail a step after
the GPU jobs. What is fixed when the pipeline is built is checked then (pipeline.upsert, dry run
included); what depends on parameters, by the preparation step, before any GPU job."""
from __future__ import annotations

import dataclasses
import json

import botocore.session
import pytest

from pipeline.checks import length_problems
from pipeline.definition import PREPARE, REGISTER, build_pipeline
from pipeline.settings import Settings
from steps import prepare as prepare_step
from steps.package_metadata import EVAL_DATA_S3_URI as EVAL_DATA_KEY
from tests.test_oracle import _evaluate

BUCKET_63 = "nova-finqa-" + "b" * 52
SETTINGS = Settings(region="us-east-1", role_arn="arn:aws:iam::111122223333:role/NovaFinQAPipelineRole",
                    bucket=BUCKET_63, prefix="teams/quantitative-research/fine-tuning/nova")
ENVIRONMENT = {"AWS_REGION": "us-east-1", "NOVA_ROLE_ARN": SETTINGS.role_arn, "NOVA_BUCKET": BUCKET_63}
LONG_DATA_LOCATION = f"s3://{BUCKET_63}/" + "/".join(["finqa-datasets-curated-by-the-research-team"] * 3) + "/"


def _definition(settings: Settings) -> dict:
    return json.loads(build_pipeline(settings).definition)


def test_the_limit_prepare_checks_is_botocores():
    model = botocore.session.get_session().get_service_model("sagemaker")
    assert prepare_step.METADATA_VALUE_MAX == model.shape_for("CustomerMetadataValue").metadata["max"] == 256


def test_a_prefix_no_metadata_value_fits_is_refused_when_the_pipeline_is_built():
    long_prefix = "/".join(["quantitative-research-fine-tuning-experiments"] * 4)
    definition = _definition(dataclasses.replace(SETTINGS, prefix=long_prefix))
    problems = length_problems(definition)
    assert any(f"step {REGISTER}: CreateModelPackage.CustomerMetadataProperties.{EVAL_DATA_KEY} is at least" in p
               and "over the 256" in p and "--prefix" in p for p in problems), problems
    assert length_problems(_definition(SETTINGS)) == []


def _prepare_arguments(definition: dict, data_location: str, finqa, output) -> list[str]:
    parameters = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]} | {"DataLocation": data_location}
    steps = {step["Name"]: step for step in definition["Steps"]}
    arguments = _evaluate(steps[PREPARE]["Arguments"]["AppSpecification"]["ContainerArguments"],
                          {"parameters": parameters})
    local = {"/opt/ml/processing/input/finqa": str(finqa), "/opt/ml/processing/output": str(output)}
    return [local.get(argument, argument) for argument in arguments[1:]], parameters, steps


def test_a_data_location_too_long_for_the_package_metadata_is_refused_before_any_gpu_job(sample_finqa, tmp_path,
                                                                                         capsys):
    definition = _definition(SETTINGS)
    arguments, _, _ = _prepare_arguments(definition, LONG_DATA_LOCATION, sample_finqa, tmp_path)
    assert prepare_step.main(arguments) == 1
    error = capsys.readouterr().err
    assert f"--metadata-value {EVAL_DATA_KEY}: the model package's metadata value would be" in error
    assert "shorten the DataLocation parameter" in error
    assert not any(tmp_path.iterdir()), "nothing is written"


def test_with_a_63_character_bucket_every_metadata_value_registered_fits(sample_finqa, tmp_path, capsys):
    definition = _definition(dataclasses.replace(SETTINGS, prefix="nova"))
    data_location = f"s3://{BUCKET_63}/finqa/"
    arguments, parameters, steps = _prepare_arguments(definition, data_location, sample_finqa, tmp_path)
    assert prepare_step.main(arguments) == 0
    capsys.readouterr()
    # The value RegisterModel sends, from the preparation step's eval output as configured.
    outputs = {o["OutputName"]: o["S3Output"]["S3Uri"] for o in steps[PREPARE]["Arguments"]["ProcessingOutputConfig"]
               ["Outputs"]}
    context = {"parameters": parameters,
               f"Steps.{PREPARE}.ProcessingOutputConfig.Outputs['eval'].S3Output.S3Uri":
                   _evaluate(outputs["eval"], {"parameters": parameters})}
    register = next(s for s in definition["Steps"] if s["Type"] == "Condition")["Arguments"]["IfSteps"][0]
    value = _evaluate(register["Arguments"]["CustomerMetadataProperties"][EVAL_DATA_KEY], context)
    index = arguments.index("--metadata-value")
    assert arguments[index + 1:index + 3] == [EVAL_DATA_KEY, value] and len(value) <= 256


def test_start_execution_refuses_a_data_location_that_would_fail_registration_and_starts_nothing():
    import io

    import boto3
    from moto import mock_aws

    from scripts import start_execution

    settings = dataclasses.replace(SETTINGS, prefix="nova")
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name=settings.region)
        sagemaker.create_pipeline(PipelineName=settings.pipeline_name, RoleArn=settings.role_arn,
                                  PipelineDefinition=build_pipeline(settings).definition)
        out, err = io.StringIO(), io.StringIO()
        code = start_execution.main(["--region", settings.region, "--param", f"DataLocation={LONG_DATA_LOCATION}"],
                                    out=out, err=err)
        assert code == start_execution.EXIT_USAGE
        message = err.getvalue()
        assert f"step {REGISTER}: CreateModelPackage.CustomerMetadataProperties.{EVAL_DATA_KEY} is at least" in message
        assert "shorten the parameter DataLocation" in message and "nothing was started" in message
        assert sagemaker.list_pipeline_executions(PipelineName=settings.pipeline_name)[
            "PipelineExecutionSummaries"] == []
        assert start_execution.main(["--region", settings.region, "--param", f"DataLocation=s3://{BUCKET_63}/finqa/"],
                                    out=out, err=err) == 0, err.getvalue()


def test_a_tag_longer_than_sagemaker_takes_is_refused_with_the_limits_botocore_states():
    from pipeline.settings import SettingsError

    model = botocore.session.get_session().get_service_model("sagemaker")
    assert (model.shape_for("TagKey").metadata["max"], model.shape_for("TagValue").metadata["max"]) == (128, 256)
    with pytest.raises(SettingsError, match="tag keys of at most 128 characters and values of at most 256"):
        Settings.resolve(None, {**ENVIRONMENT, "NOVA_TAGS": "team=" + "q" * 257})
    assert Settings.resolve(None, {**ENVIRONMENT, "NOVA_TAGS": "k" * 128 + "=" + "v" * 256}).tags
