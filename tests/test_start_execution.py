"""`python -m scripts.start_execution`: checked overrides, watching steps, Ctrl-C."""
from __future__ import annotations

import io
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from scripts import start_execution
from tests.aws_fixtures import ACCOUNT, pipeline_definition, run_cli

PIPELINE = "nova-finqa-sft"
EXECUTION_ARN = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:pipeline/{PIPELINE}/execution/abc123def456"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _create_pipeline(sagemaker) -> None:
    sagemaker.create_pipeline(PipelineName=PIPELINE, PipelineDefinition=pipeline_definition(),
                              RoleArn=f"arn:aws:iam::{ACCOUNT}:role/pipeline")


@pytest.fixture
def sagemaker():
    with mock_aws():
        client = boto3.client("sagemaker", region_name="us-east-1")
        _create_pipeline(client)
        yield client


def test_overrides_are_checked_and_sent(sagemaker):
    out, err = io.StringIO(), io.StringIO()
    code = start_execution.main(
        ["--param", "TrainingRecords=100", "--param", "LearningRate=2e-5", "--param", "CacheSteps=False",
         "--display-name", "records-100"], out=out, err=err)
    assert code == 0, err.getvalue()
    [summary] = sagemaker.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
    assert summary["PipelineExecutionDisplayName"] == "records-100"
    sent = sagemaker.list_pipeline_parameters_for_execution(
        PipelineExecutionArn=summary["PipelineExecutionArn"])["PipelineParameters"]
    assert {p["Name"]: p["Value"] for p in sent} == {
        "TrainingRecords": "100", "LearningRate": "2e-5", "CacheSteps": "false"}
    assert summary["PipelineExecutionArn"] in out.getvalue()


@pytest.mark.parametrize("param, message", [
    ("TrainingRecord=100", "did you mean TrainingRecords"),
    ("TrainingRecords=1e2", "declared Integer"),
    ("LearningRate=fast", "declared Float"),
    ("CacheSteps=yes", "use true or false"),
    ("Epochs", "not Name=Value"),
])
def test_bad_override_starts_nothing(sagemaker, param, message):
    err = io.StringIO()
    code = start_execution.main(["--param", param], out=io.StringIO(), err=err)
    assert code == start_execution.EXIT_USAGE
    assert message in err.getvalue()
    assert sagemaker.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"] == []


def test_missing_pipeline_names_the_setting():
    with mock_aws():
        err = io.StringIO()
        code = start_execution.main(["--pipeline-name", "not-deployed"], out=io.StringIO(), err=err)
    assert code == start_execution.EXIT_USAGE
    assert "not-deployed" in err.getvalue() and "pipeline.upsert" in err.getvalue()


def test_missing_pipeline_names_the_region_it_was_looked_for_in():
    with mock_aws():
        err = io.StringIO()
        code = start_execution.main(["--region", "eu-west-1"], out=io.StringIO(), err=err)
    assert code == start_execution.EXIT_USAGE
    message = err.getvalue()
    assert "pipeline 'nova-finqa-sft' cannot be read in eu-west-1" in message
    assert "pass the --region (AWS_REGION) and --pipeline-name (NOVA_PIPELINE_NAME) it was deployed with" in message


@pytest.mark.parametrize("arn, message", [
    ("not-an-arn", "--watch 'not-an-arn' is not a pipeline execution ARN"),
    (f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:pipeline/{PIPELINE}", "is not a pipeline execution ARN"),
    (EXECUTION_ARN.replace("us-east-1", "eu-west-1"),
     "is an execution in eu-west-1, and --region (AWS_REGION) is us-east-1: pass --region eu-west-1"),
], ids=["not-an-arn", "the-pipeline-arn", "another-region"])
def test_watch_refuses_what_it_cannot_follow_before_any_call(arn, message):
    client = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(client) as stubber:  # no response queued: any call would fail the test
        err = io.StringIO()
        code = start_execution.main(["--region", "us-east-1", "--watch", arn], sagemaker=client,
                                    out=io.StringIO(), err=err)
        stubber.assert_no_pending_responses()
    assert code == start_execution.EXIT_USAGE
    assert message in err.getvalue() and "did start" not in err.getvalue()


def _step(name: str, status: str, reason: str | None = None) -> dict:
    step = {"StepName": name, "StepStatus": status, "StartTime": T0}
    if reason:
        step["FailureReason"] = reason
    return step


def _stub_poll(stubber: Stubber, steps: list[dict], status: str, reason: str | None = None) -> None:
    stubber.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": steps},
                         {"PipelineExecutionArn": EXECUTION_ARN, "SortOrder": "Ascending"})
    execution = {"PipelineExecutionArn": EXECUTION_ARN, "PipelineExecutionStatus": status}
    if reason:
        execution["FailureReason"] = reason
    stubber.add_response("describe_pipeline_execution", execution, {"PipelineExecutionArn": EXECUTION_ARN})


def _stubbed_start(stubber: Stubber) -> None:
    stubber.add_response("describe_pipeline", {"PipelineDefinition": pipeline_definition()},
                         {"PipelineName": PIPELINE})
    stubber.add_response("start_pipeline_execution", {"PipelineExecutionArn": EXECUTION_ARN},
                         {"PipelineName": PIPELINE, "ClientRequestToken": ANY,
                          "PipelineParameters": [{"Name": "Epochs", "Value": "1"}]})


def test_wait_prints_changes_only_and_fails_with_the_step_reason():
    client = boto3.client("sagemaker", region_name="us-east-1")
    reason = "Accuracy below threshold: evaluation.json metrics.accuracy.value"
    with Stubber(client) as stubber:
        _stubbed_start(stubber)
        _stub_poll(stubber, [_step("PrepareFinQA", "Executing")], "Executing")
        _stub_poll(stubber, [_step("PrepareFinQA", "Executing")], "Executing")
        _stub_poll(stubber, [_step("PrepareFinQA", "Succeeded"), _step("TrainNovaLite", "Executing")], "Executing")
        _stub_poll(stubber, [_step("PrepareFinQA", "Succeeded"), _step("TrainNovaLite", "Succeeded"),
                             _step("AccuracyGate", "Failed", reason)], "Failed", "Step failure")
        out, err = io.StringIO(), io.StringIO()
        code = start_execution.main(["--param", "Epochs=1", "--wait"], sagemaker=client, out=out,
                                    err=err, sleep=lambda seconds: None)
        stubber.assert_no_pending_responses()
    assert code == start_execution.EXIT_FAILED
    lines = out.getvalue().splitlines()[2:]
    assert [line.split()[1:3] for line in lines] == [
        ["PrepareFinQA", "Executing"], ["PrepareFinQA", "Succeeded"], ["TrainNovaLite", "Executing"],
        ["TrainNovaLite", "Succeeded"], ["AccuracyGate", "Failed:"]]
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue()
    assert f"step AccuracyGate: {reason}" in err.getvalue()


def test_wait_on_a_terminal_redraws_one_line_per_step():
    client = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(client) as stubber:
        _stub_poll(stubber, [_step("PrepareFinQA", "Executing")], "Executing")
        _stub_poll(stubber, [_step("PrepareFinQA", "Succeeded"), _step("TrainNovaLite", "Succeeded")], "Succeeded")
        out = _Terminal()
        code = start_execution.main(["--watch", EXECUTION_ARN], sagemaker=client, out=out,
                                    err=io.StringIO(), sleep=lambda seconds: None)
    assert code == 0
    first, second = out.getvalue().split("\x1b[F\x1b[2K")
    assert first.strip().split() == ["PrepareFinQA", "Executing"]
    assert [line.split() for line in second.splitlines()[:2]] == [
        ["PrepareFinQA", "Succeeded"], ["TrainNovaLite", "Succeeded"]]


class _Clock:
    """Time that passes only when the watcher sleeps."""

    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_timeout_stops_watching_not_the_execution():
    client = boto3.client("sagemaker", region_name="us-east-1")
    clock = _Clock()
    with Stubber(client) as stubber:
        for _ in range(3):
            _stub_poll(stubber, [_step("TrainNovaLite", "Executing")], "Executing")
        err = io.StringIO()
        code = start_execution.main(["--watch", EXECUTION_ARN, "--timeout", "45"], sagemaker=client,
                                    out=io.StringIO(), err=err, sleep=clock.sleep, clock=lambda: clock.now)
        stubber.assert_no_pending_responses()
    assert code == start_execution.EXIT_NOT_WATCHED
    assert clock.sleeps == [30, 15], "the last wait is cut to the time left"
    assert f"stopped watching after 45 s (--timeout); the execution goes on: {EXECUTION_ARN}" in err.getvalue()


def test_timeout_without_watching_is_refused(sagemaker):
    err = io.StringIO()
    code = start_execution.main(["--timeout", "60"], out=io.StringIO(), err=err)
    assert code == start_execution.EXIT_USAGE and "use it with --wait or --watch" in err.getvalue()
    assert sagemaker.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"] == []


@pytest.mark.parametrize("value, message", [("0", "above 0"), ("soon", "not a number of seconds")])
def test_timeout_is_seconds_above_zero(capsys, value, message):
    with pytest.raises(SystemExit) as exited:
        start_execution.main(["--wait", "--timeout", value])
    assert exited.value.code == start_execution.EXIT_USAGE and message in capsys.readouterr().err


def test_watching_an_execution_that_cannot_be_read_does_not_claim_it_started():
    client = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(client) as stubber:
        stubber.add_client_error("list_pipeline_execution_steps", service_error_code="ResourceNotFound",
                                 service_message="Pipeline execution not found", http_status_code=404)
        err = io.StringIO()
        code = start_execution.main(["--region", "us-east-1", "--watch", EXECUTION_ARN], sagemaker=client,
                                    out=io.StringIO(), err=err, sleep=lambda seconds: None)
    assert code == start_execution.EXIT_NOT_WATCHED
    said = err.getvalue()
    assert f"error: cannot watch {EXECUTION_ARN}: ListPipelineExecutionSteps failed: ResourceNotFound" in said
    assert "did start" not in said and "list-pipeline-executions" in said


def test_an_endpoint_without_the_steps_api_is_named_and_the_started_execution_reported():
    client = boto3.client("sagemaker", region_name="us-east-1", endpoint_url="http://127.0.0.1:5000")
    with Stubber(client) as stubber:
        _stubbed_start(stubber)
        # What moto_server answers for an operation it has not got: a web server's error page.
        stubber.add_client_error("list_pipeline_execution_steps", service_error_code="500", http_status_code=500,
                                 service_message="<!doctype html>\n<title>500 Internal Server Error</title>")
        out, err = io.StringIO(), io.StringIO()
        code = start_execution.main(["--param", "Epochs=1", "--wait"], sagemaker=client, out=out, err=err,
                                    sleep=lambda seconds: None)
        stubber.assert_no_pending_responses()
    assert code == start_execution.EXIT_NOT_WATCHED
    lines = err.getvalue().splitlines()
    assert lines[0] == ("error: cannot watch the execution: http://127.0.0.1:5000 has no ListPipelineExecutionSteps "
                        "(it answered HTTP 500 with an error page, not an AWS error)")
    assert lines[1] == f"The execution did start and goes on: {EXECUTION_ARN}"
    assert "<title>" not in err.getvalue() and f"started {EXECUTION_ARN}" in out.getvalue()


def test_an_aws_error_while_watching_is_shown_with_its_code():
    client = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(client) as stubber:
        stubber.add_client_error("list_pipeline_execution_steps", service_error_code="AccessDeniedException",
                                 service_message="not authorized to perform: sagemaker:ListPipelineExecutionSteps",
                                 http_status_code=400)
        err = io.StringIO()
        code = start_execution.main(["--watch", EXECUTION_ARN], sagemaker=client, out=io.StringIO(), err=err)
    assert code == start_execution.EXIT_NOT_WATCHED
    assert err.getvalue().startswith(f"error: cannot watch {EXECUTION_ARN}: ListPipelineExecutionSteps failed: "
                                     "AccessDeniedException: not authorized")


def test_ctrl_c_stops_watching_not_the_execution():
    client = boto3.client("sagemaker", region_name="us-east-1")

    def interrupted(seconds):
        raise KeyboardInterrupt

    with Stubber(client) as stubber:
        _stub_poll(stubber, [_step("TrainNovaLite", "Executing")], "Executing")
        err = io.StringIO()
        # A stop_pipeline_execution call would fail here: nothing is stubbed for it.
        code = start_execution.main(["--watch", EXECUTION_ARN], sagemaker=client, out=io.StringIO(),
                                    err=err, sleep=interrupted)
        stubber.assert_no_pending_responses()
    assert code == start_execution.EXIT_INTERRUPTED
    assert "the execution goes on" in err.getvalue() and EXECUTION_ARN in err.getvalue()


# The overrides issue 11 found accepted (TrainingRecords=abc is tried as EvaluationRecords=abc, the
# same rule: a parameter given twice is refused for that alone), and two the parameters refuse.
REFUSED = (("TrainingRecords=-5", "must be at least 8"), ("EvaluationRecords=abc", "not a whole number"),
           ("Epochs=0", "at least 1"), ("AccuracyThreshold=5", "not a fraction from 0 to 1"),
           ("ModelApprovalStatus=Approved", "does not decide whether its model is approved"),
           ("TrainingInstanceType=ml.t2.medium", "one of ml.g5.12xlarge, ml.g6.12xlarge"),
           ("Epoch=1", "did you mean Epochs"), ("LearningRate=fast", "declared Float"))
REFUSED_PARAMS = [item for param, _ in REFUSED for item in ("--param", param)]


def test_end_to_end_against_moto_server_on_the_upserted_pipeline(moto_server):
    """pipeline.upsert deploys the real definition; start_execution checks against its parameters."""
    boto3.client("s3", region_name="us-east-1", endpoint_url=moto_server).create_bucket(Bucket="amzn-s3-demo-bucket")
    settings = ["--region", "us-east-1", "--role-arn", f"arn:aws:iam::{ACCOUNT}:role/NovaFinQAPipelineRole",
                "--bucket", "amzn-s3-demo-bucket", "--pipeline-name", PIPELINE]
    upserted = run_cli("pipeline.upsert", settings, moto_server)
    assert upserted.returncode == 0, upserted.stderr

    client = boto3.client("sagemaker", region_name="us-east-1", endpoint_url=moto_server)
    result = run_cli("scripts.start_execution",
                     [*settings, "--param", "TrainingRecords=100", "--param", "Epochs=3", "--display-name", "e2e"],
                     moto_server)
    assert result.returncode == 0, result.stderr
    [summary] = client.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
    assert summary["PipelineExecutionArn"] in result.stdout
    sent = client.list_pipeline_parameters_for_execution(
        PipelineExecutionArn=summary["PipelineExecutionArn"])["PipelineParameters"]
    assert sorted(sent, key=lambda p: p["Name"]) == [{"Name": "Epochs", "Value": "3"},
                                                      {"Name": "TrainingRecords", "Value": "100"}]

    refused = run_cli("scripts.start_execution", [*settings, *REFUSED_PARAMS], moto_server)
    assert refused.returncode == start_execution.EXIT_USAGE
    for param, message in REFUSED:
        assert f"--param {param}" in refused.stderr and message in refused.stderr, param
    assert len(client.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]) == 1

    # moto_server has no ListPipelineExecutionSteps: --wait says so, and that the execution started.
    waited = run_cli("scripts.start_execution", [*settings, "--wait", "--timeout", "60"], moto_server)
    assert waited.returncode == start_execution.EXIT_NOT_WATCHED, waited.stderr
    assert f"{moto_server} has no ListPipelineExecutionSteps" in waited.stderr
    assert "The execution did start and goes on" in waited.stderr and "<!doctype" not in waited.stderr
    assert len(client.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]) == 2
