"""`python -m scripts.start_execution` refuses, before anything starts, the override values the
pipeline's steps would refuse, with the rule; tried on the committed definition's parameters."""
from __future__ import annotations

import io
import json

import boto3
import pytest
from moto import mock_aws

from scripts import start_execution
from steps.prepare import main as prepare
from steps.rules import PARAMETER_RULES
from tests.aws_fixtures import ACCOUNT
from tests.conftest import PROJECT_ROOT

PIPELINE = "nova-finqa-sft"


@pytest.fixture(scope="module")
def deployed():
    """The pipeline as `pipeline.upsert` deploys it, made once: a SageMaker client costs 0.4 s."""
    with mock_aws():
        client = boto3.client("sagemaker", region_name="us-east-1")
        client.create_pipeline(PipelineName=PIPELINE, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/pipeline",
                               PipelineDefinition=(PROJECT_ROOT / "pipeline" / "definition.json").read_text())
        yield client


def executions(sagemaker) -> list[str]:
    summaries = sagemaker.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
    return [summary["PipelineExecutionArn"] for summary in summaries]


def run(sagemaker, *params: str) -> tuple[int, str]:
    err = io.StringIO()
    argv = [item for param in params for item in ("--param", param)]
    return start_execution.main(argv, sagemaker=sagemaker, out=io.StringIO(), err=err), err.getvalue()


@pytest.mark.parametrize("param, message", [
    ("TrainingRecords=-5", "--param TrainingRecords=-5: -5 must be at least 8, the fewest Nova fine-tuning takes "
                           "(or empty / 'all' for every record)"),
    ("TrainingRecords=abc", "--param TrainingRecords=abc: 'abc' is not a whole number (or empty / 'all' for every record)"),
    ("TrainingRecords=5", "5 must be at least 8, the fewest Nova fine-tuning takes"),
    ("EvaluationRecords=0", "--param EvaluationRecords=0: 0 must be at least 1 (or empty / 'all' for every record)"),
    ("AccuracyThreshold=5", "--param AccuracyThreshold=5: 5 is not a fraction from 0 to 1"),
    ("AccuracyThreshold=50", "for 50% write 0.5"),
    ("AccuracyThreshold=-0.1", "-0.1 is not a fraction from 0 to 1"),
    ("ModelApprovalStatus=Approvd", "--param ModelApprovalStatus=Approvd: 'Approvd' is not allowed: ModelApprovalStatus "
                                    "is one of PendingManualApproval, Approved (did you mean Approved?)"),
    ("DataLocation=finqa/", "'finqa/' is not an s3://bucket/key URI"),
    ("DataLocation=s3://bucket..name/finqa/", "bucket 'bucket..name' breaks S3's bucket naming rules: "
                                              "it must not have two periods next to each other"),
])
def test_a_value_the_pipeline_would_refuse_starts_nothing(deployed, param, message):
    before = executions(deployed)
    code, err = run(deployed, param)
    assert code == start_execution.EXIT_USAGE
    assert message in err and err.rstrip().endswith("nothing was started")
    assert executions(deployed) == before


def test_every_refused_override_is_listed_at_once(deployed):
    before = executions(deployed)
    code, err = run(deployed, "TrainingRecords=abc", "Epochs=2", "AccuracyThreshold=5", "ModelApprovalStatus=Approvd")
    assert code == start_execution.EXIT_USAGE
    refused = [line.removeprefix("error: ") for line in err.splitlines() if "--param" in line]
    assert [line.split("=")[0] for line in refused] == [
        "--param TrainingRecords", "--param AccuracyThreshold", "--param ModelApprovalStatus"]
    assert executions(deployed) == before


@pytest.mark.parametrize("param", ["TrainingRecords=all", "TrainingRecords=8", "EvaluationRecords=1",
                                   "AccuracyThreshold=0", "AccuracyThreshold=1", "ModelApprovalStatus=Approved",
                                   "DataLocation=s3://my-bucket/finqa/v2/"])
def test_a_value_within_the_rules_starts_an_execution(deployed, param):
    before = executions(deployed)
    code, err = run(deployed, param)
    assert code == 0, err
    [started] = set(executions(deployed)) - set(before)
    sent = deployed.list_pipeline_parameters_for_execution(PipelineExecutionArn=started)["PipelineParameters"]
    assert sent == [dict(zip(("Name", "Value"), param.split("=", 1)))]


@pytest.mark.parametrize("flag, value", [("--max-train-records", "-5"), ("--max-train-records", "abc"),
                                         ("--max-eval-records", "0")])
def test_the_preparation_step_refuses_the_same_values_in_the_same_words(deployed, capsys, flag, value):
    parameter = {"--max-train-records": "TrainingRecords", "--max-eval-records": "EvaluationRecords"}[flag]
    _, err = run(deployed, f"{parameter}={value}")
    rule = err.splitlines()[0].split(f"{parameter}={value}: ", 1)[1]
    with pytest.raises(SystemExit):
        prepare([flag, value])
    assert f"argument {flag}: {rule}" in capsys.readouterr().err



def test_every_rule_is_for_a_parameter_the_pipeline_declares():
    definition = json.loads((PROJECT_ROOT / "pipeline" / "definition.json").read_text())
    assert set(PARAMETER_RULES) <= {parameter["Name"] for parameter in definition["Parameters"]}
