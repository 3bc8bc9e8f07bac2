"""Approval -> Bedrock: SageMaker and S3 under moto, Bedrock under botocore's Stubber
(moto has no CreateCustomModel / CustomModelDeployment / Converse; the Stubber checks each
request against the real API model)."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.sagemaker.models import SageMakerModelBackend

from pipeline.settings import Settings
from scripts import import_to_bedrock as imp
from tests.aws_fixtures import ACCOUNT, PROJECT_ROOT

REGION = "us-east-1"
GROUP = "nova-finqa"
BEDROCK_ROLE = f"arn:aws:iam::{ACCOUNT}:role/nova-finqa-bedrock-import"
CHECKPOINT = f"s3://customer-escrow-{ACCOUNT}-smtj-abcd1234/nova-finqa-train-1/step_100/"
MODEL_ARN = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model/imported/abcdef123456"
DEPLOYMENT_ARN = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model-deployment/abcdef654321"
EVAL_URI = "s3://example-bucket/nova-finqa/exec-1/eval/gen_qa.jsonl"
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def sagemaker_update_keeps_what_it_is_not_given(monkeypatch):
    """moto's UpdateModelPackage clears ModelApprovalStatus and CustomerMetadataProperties
    when a request leaves them out; SageMaker keeps them. Without this, approving would wipe
    the checkpoint path, and a second run would be skipped for the wrong reason."""
    original = SageMakerModelBackend.update_model_package

    def update(self, model_package_arn, model_approval_status, approval_description,
               customer_metadata_properties, *args, **kwargs):
        package = self.describe_model_package(model_package_arn)
        return original(self, model_package_arn, model_approval_status or package.model_approval_status,
                        approval_description or package.approval_description,
                        customer_metadata_properties if customer_metadata_properties is not None
                        else dict(package.customer_metadata_properties or {}), *args, **kwargs)

    monkeypatch.setattr(SageMakerModelBackend, "update_model_package", update)


@pytest.fixture(scope="module")
def finqa_question(sample_finqa, tmp_path_factory) -> dict:
    """The first FinQA test question exactly as the pipeline writes it: steps.prepare's
    eval/gen_qa.jsonl made from the project's real FinQA sample."""
    output = tmp_path_factory.mktemp("prepared")
    subprocess.run([sys.executable, "-m", "steps.prepare", "--input-dir", str(sample_finqa),
                    "--output-dir", str(output), "--max-eval-records", "1"],
                   cwd=PROJECT_ROOT, check=True, capture_output=True, timeout=120)
    return json.loads((output / "eval" / "gen_qa.jsonl").read_text(encoding="utf-8").splitlines()[0])


@pytest.fixture
def aws(finqa_question):
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        s3 = boto3.client("s3", region_name=REGION)
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        s3.create_bucket(Bucket="example-bucket")
        s3.put_object(Bucket="example-bucket", Key="nova-finqa/exec-1/eval/gen_qa.jsonl",
                      Body=(json.dumps(finqa_question) + "\n" + json.dumps(finqa_question) + "\n").encode())
        yield sagemaker, s3


def _package(sagemaker, status: str = "Approved", **metadata: str) -> str:
    properties = {"checkpoint_s3_uri": CHECKPOINT, "training_job": "nova-finqa-train-1",
                  "train_records": "100", "eval_data_s3_uri": EVAL_URI, "epochs": "2"}
    properties.update(metadata)
    properties = {k: v for k, v in properties.items() if v}
    return sagemaker.create_model_package(
        ModelPackageGroupName=GROUP, ModelApprovalStatus=status,
        CustomerMetadataProperties=properties,
        InferenceSpecification={"Containers": [{"Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/nova:latest"}],
                                "SupportedContentTypes": ["application/json"],
                                "SupportedResponseMIMETypes": ["application/json"]},
    )["ModelPackageArn"]


def _metadata(sagemaker, arn: str) -> dict:
    return sagemaker.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"]


def _not_found(stubber: Stubber, method: str, expected: dict) -> None:
    stubber.add_client_error(method, "ResourceNotFoundException", "not found", 404, expected_params=expected)


def _stub_fresh_import(bedrock: Stubber, runtime: Stubber, package_arn: str, finqa_question: dict,
                       model_polls: tuple[str, ...] = ("Creating", "Active")) -> None:
    _not_found(bedrock, "get_custom_model", {"modelIdentifier": "nova-finqa-v1"})
    bedrock.add_response("create_custom_model", {"modelArn": MODEL_ARN}, {
        "modelName": "nova-finqa-v1", "modelSourceConfig": {"s3DataSource": {"s3Uri": CHECKPOINT}},
        "roleArn": BEDROCK_ROLE, "clientRequestToken": imp.request_token(package_arn, "custom-model")})
    for status in model_polls:
        bedrock.add_response("get_custom_model", {"modelArn": MODEL_ARN, "modelName": "nova-finqa-v1",
                                                  "creationTime": NOW, "modelStatus": status},
                             {"modelIdentifier": MODEL_ARN})
    _not_found(bedrock, "get_custom_model_deployment", {"customModelDeploymentIdentifier": "nova-finqa-v1-ondemand"})
    bedrock.add_response("create_custom_model_deployment", {"customModelDeploymentArn": DEPLOYMENT_ARN}, {
        "modelDeploymentName": "nova-finqa-v1-ondemand", "modelArn": MODEL_ARN,
        "description": f"On-demand deployment of {package_arn}",
        "clientRequestToken": imp.request_token(package_arn, "custom-model-deployment")})
    for status in ("Creating", "Active"):
        bedrock.add_response("get_custom_model_deployment", _deployment(status),
                             {"customModelDeploymentIdentifier": DEPLOYMENT_ARN})
    runtime.add_response("converse", {
        "output": {"message": {"role": "assistant", "content": [{"text": "Program: divide(1, 2)\nAnswer: 50%"}]}},
        "stopReason": "end_turn", "usage": {"inputTokens": 900, "outputTokens": 12, "totalTokens": 912},
        "metrics": {"latencyMs": 800}}, {
        "modelId": DEPLOYMENT_ARN, "system": [{"text": finqa_question["system"]}],
        "messages": [{"role": "user", "content": [{"text": finqa_question["query"]}]}],
        "inferenceConfig": {"maxTokens": 512, "temperature": 0.0}})


def _deployment(status: str, model_arn: str = MODEL_ARN) -> dict:
    return {"customModelDeploymentArn": DEPLOYMENT_ARN, "modelDeploymentName": "nova-finqa-v1-ondemand",
            "modelArn": model_arn, "createdAt": NOW, "status": status}


class _Clients:
    def __init__(self, sagemaker, s3):
        self.bedrock = boto3.client("bedrock", region_name=REGION)
        self.runtime = boto3.client("bedrock-runtime", region_name=REGION)
        self.lambda_ = boto3.client("lambda", region_name=REGION)
        self.sagemaker, self.s3 = sagemaker, s3
        self.sleeps: list[float] = []

    def importer(self, clock=lambda: 0.0) -> imp.BedrockImport:
        return imp.BedrockImport(self.sagemaker, self.bedrock, self.runtime, self.s3, BEDROCK_ROLE,
                                 sleep=self.sleeps.append, clock=clock, poll_seconds=60)

    def client(self, name: str):
        return {"sagemaker": self.sagemaker, "s3": self.s3, "bedrock": self.bedrock,
                "bedrock-runtime": self.runtime, "lambda": self.lambda_}[name]


def _settings() -> Settings:
    return Settings.resolve(None, {"AWS_REGION": REGION, "NOVA_BEDROCK_ROLE_ARN": BEDROCK_ROLE},
                            required=("region", "bedrock_role_arn"))


def _event(package_arn: str, status: str = "Approved") -> dict:
    return {"version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": "SageMaker Model Package State Change", "source": "aws.sagemaker",
            "account": ACCOUNT, "region": REGION, "resources": [package_arn],
            "detail": {"ModelPackageGroupName": GROUP, "ModelPackageVersion": 1,
                       "ModelPackageArn": package_arn, "ModelApprovalStatus": status}}


def test_approved_package_is_imported_deployed_tested_and_written_back(aws, finqa_question):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker, status="PendingManualApproval")
    sagemaker.update_model_package(ModelPackageArn=package_arn, ModelApprovalStatus="Approved",
                                   ApprovalDescription="accuracy reviewed")
    clients = _Clients(sagemaker, s3)
    with Stubber(clients.bedrock) as bedrock, Stubber(clients.runtime) as runtime, \
            Stubber(clients.lambda_) as lambda_:
        _stub_fresh_import(bedrock, runtime, package_arn, finqa_question)
        result = imp.handle_event(_event(package_arn), 900, _settings(), clients.importer(),
                                  clients.lambda_, "arn:aws:lambda:us-east-1:123456789012:function:hook")
        bedrock.assert_no_pending_responses()
        runtime.assert_no_pending_responses()
        lambda_.assert_no_pending_responses()
    assert result["status"] == imp.DEPLOYED
    metadata = _metadata(sagemaker, package_arn)
    assert metadata["bedrock_model_arn"] == MODEL_ARN
    assert metadata["bedrock_deployment_arn"] == DEPLOYMENT_ARN
    assert metadata["bedrock_import_status"] == "Deployed"
    assert metadata["bedrock_smoke_test"] == "answered: Program: divide 1 2 Answer: 50"
    assert metadata["checkpoint_s3_uri"] == CHECKPOINT and metadata["train_records"] == "100"
    assert sagemaker.describe_model_package(ModelPackageName=package_arn)["ModelApprovalStatus"] == "Approved"
    assert clients.sleeps == [60, 60]


def test_the_same_event_twice_creates_nothing_new(aws, finqa_question):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker)
    clients = _Clients(sagemaker, s3)
    with Stubber(clients.bedrock) as bedrock, Stubber(clients.runtime) as runtime:
        _stub_fresh_import(bedrock, runtime, package_arn, finqa_question)
        imp.handle_event(_event(package_arn), 900, _settings(), clients.importer())
        written = _metadata(sagemaker, package_arn)
        # No response is stubbed any more: a second Bedrock call would raise here.
        again = imp.handle_event(_event(package_arn), 900, _settings(), clients.importer())
    assert again["status"] == imp.DEPLOYED and again["detail"] == "already deployed"
    assert _metadata(sagemaker, package_arn) == written


def test_a_rerun_after_a_lost_write_finds_the_existing_model_and_deployment(aws, finqa_question):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker)
    clients = _Clients(sagemaker, s3)
    with Stubber(clients.bedrock) as bedrock, Stubber(clients.runtime) as runtime:
        bedrock.add_response("get_custom_model", {"modelArn": MODEL_ARN, "modelName": "nova-finqa-v1",
                                                  "creationTime": NOW, "modelStatus": "Active"},
                             {"modelIdentifier": "nova-finqa-v1"})
        bedrock.add_response("get_custom_model", {"modelArn": MODEL_ARN, "modelName": "nova-finqa-v1",
                                                  "creationTime": NOW, "modelStatus": "Active"},
                             {"modelIdentifier": MODEL_ARN})
        bedrock.add_response("get_custom_model_deployment", _deployment("Active"),
                             {"customModelDeploymentIdentifier": "nova-finqa-v1-ondemand"})
        bedrock.add_response("get_custom_model_deployment", _deployment("Active"),
                             {"customModelDeploymentIdentifier": DEPLOYMENT_ARN})
        runtime.add_response("converse", {
            "output": {"message": {"role": "assistant", "content": [{"text": "Answer: 3"}]}},
            "stopReason": "end_turn", "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
            "metrics": {"latencyMs": 1}})
        outcome = clients.importer().run(package_arn)
        bedrock.assert_no_pending_responses()
    assert (outcome.status, outcome.model_arn, outcome.deployment_arn) == (imp.DEPLOYED, MODEL_ARN, DEPLOYMENT_ARN)


@pytest.mark.parametrize("status", ["Rejected", "PendingManualApproval"])
def test_a_package_not_approved_is_left_alone(aws, status):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker, status=status)
    before = _metadata(sagemaker, package_arn)
    clients = _Clients(sagemaker, s3)
    with Stubber(clients.bedrock), Stubber(clients.runtime):
        outcome = clients.importer().run(package_arn)
    assert outcome.status == imp.SKIPPED and status in outcome.detail
    assert _metadata(sagemaker, package_arn) == before


def test_a_bedrock_failure_is_written_on_the_package_and_raised(aws, caplog):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker)
    clients = _Clients(sagemaker, s3)
    with Stubber(clients.bedrock) as bedrock, Stubber(clients.runtime):
        _not_found(bedrock, "get_custom_model", {"modelIdentifier": "nova-finqa-v1"})
        bedrock.add_response("create_custom_model", {"modelArn": MODEL_ARN})
        bedrock.add_response("get_custom_model", {
            "modelArn": MODEL_ARN, "modelName": "nova-finqa-v1", "creationTime": NOW, "modelStatus": "Failed",
            "failureMessage": "Model artifacts in s3://customer-escrow-x/ are not a supported (full-rank) model."})
        with pytest.raises(imp.ImportFailed, match="full-rank"):
            imp.handle_event(_event(package_arn), 900, _settings(), clients.importer())
    assert any(r.levelname == "ERROR" and "full-rank" in r.getMessage() and package_arn in r.getMessage()
               for r in caplog.records)
    metadata = _metadata(sagemaker, package_arn)
    assert metadata["bedrock_import_status"] == "Failed"
    assert metadata["bedrock_model_arn"] == MODEL_ARN
    error = metadata["bedrock_import_error"]
    assert "nova-finqa-v1 failed" in error and "full-rank" in error and len(error) <= 256
    assert "(" not in error and "," not in error

    # The write fires another state-change event; it must not retry on its own.
    with Stubber(clients.bedrock), Stubber(clients.runtime):
        again = imp.handle_event(_event(package_arn), 900, _settings(), clients.importer())
    assert again["status"] == imp.SKIPPED and "earlier import failed" in again["detail"]
    assert _metadata(sagemaker, package_arn) == metadata


def test_an_api_error_from_bedrock_is_recorded_too(aws):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker)
    clients = _Clients(sagemaker, s3)
    with Stubber(clients.bedrock) as bedrock, Stubber(clients.runtime):
        _not_found(bedrock, "get_custom_model", {"modelIdentifier": "nova-finqa-v1"})
        bedrock.add_client_error("create_custom_model", "AccessDeniedException",
                                 "User is not authorized to perform: iam:PassRole", 403)
        with pytest.raises(Exception, match="AccessDeniedException"):
            clients.importer().run(package_arn)
    metadata = _metadata(sagemaker, package_arn)
    assert metadata["bedrock_import_status"] == "Failed"
    assert "iam:PassRole" in metadata["bedrock_import_error"]


def test_a_package_without_checkpoint_fails_before_any_bedrock_call(aws):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker, checkpoint_s3_uri="")
    clients = _Clients(sagemaker, s3)
    with Stubber(clients.bedrock), Stubber(clients.runtime):
        with pytest.raises(imp.ImportFailed, match="checkpoint_s3_uri"):
            clients.importer().run(package_arn)
    metadata = _metadata(sagemaker, package_arn)
    assert metadata["bedrock_import_status"] == "Failed"
    assert "checkpoint_s3_uri" in metadata["bedrock_import_error"]


def test_lambda_hands_an_unfinished_import_over_to_a_new_invocation(aws, finqa_question):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker)
    clients = _Clients(sagemaker, s3)
    event = _event(package_arn)
    function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:nova-finqa-bedrock-import"
    with Stubber(clients.bedrock) as bedrock, Stubber(clients.lambda_) as lambda_:
        _not_found(bedrock, "get_custom_model", {"modelIdentifier": "nova-finqa-v1"})
        bedrock.add_response("create_custom_model", {"modelArn": MODEL_ARN})
        bedrock.add_response("get_custom_model", {"modelArn": MODEL_ARN, "modelName": "nova-finqa-v1",
                                                  "creationTime": NOW, "modelStatus": "Creating"})
        lambda_.add_response("invoke", {"StatusCode": 202}, {
            "FunctionName": function_arn, "InvocationType": "Event",
            "Payload": json.dumps({**event, "resume": 1}).encode()})
        # 100 s left in this invocation: less than the safety margin plus one poll.
        result = imp.handle_event(event, 100, _settings(), clients.importer(), clients.lambda_, function_arn)
        lambda_.assert_no_pending_responses()
    assert result["status"] == imp.IMPORTING
    metadata = _metadata(sagemaker, package_arn)
    assert metadata["bedrock_import_status"] == "ModelImporting"
    assert metadata["bedrock_model_arn"] == MODEL_ARN and "bedrock_deployment_arn" not in metadata


def test_cli_reports_failure_with_a_non_zero_exit(aws, capsys, monkeypatch):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker, checkpoint_s3_uri="")
    clients = _Clients(sagemaker, s3)
    monkeypatch.setenv("NOVA_BEDROCK_ROLE_ARN", BEDROCK_ROLE)
    with Stubber(clients.bedrock), Stubber(clients.runtime):
        code = imp.main(["--model-package-arn", package_arn, "--wait"], session=clients)
    assert code == 1
    assert "checkpoint_s3_uri" in capsys.readouterr().err


def test_cli_takes_a_local_smoke_question(aws, finqa_question, tmp_path, monkeypatch, capsys):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker, eval_data_s3_uri="")
    questions = tmp_path / "gen_qa.jsonl"
    questions.write_text(json.dumps(finqa_question) + "\n", encoding="utf-8")
    clients = _Clients(sagemaker, s3)
    monkeypatch.setenv("NOVA_BEDROCK_ROLE_ARN", BEDROCK_ROLE)
    with Stubber(clients.bedrock) as bedrock, Stubber(clients.runtime) as runtime:
        _stub_fresh_import(bedrock, runtime, package_arn, finqa_question)
        code = imp.main(["--model-package-arn", package_arn, "--wait",
                         "--smoke-question-file", str(questions)], session=clients,
                        sleep=clients.sleeps.append)
        runtime.assert_no_pending_responses()
    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["deployment_arn"] == DEPLOYMENT_ARN


def test_cli_needs_the_bedrock_role(capsys, monkeypatch):
    monkeypatch.delenv("NOVA_BEDROCK_ROLE_ARN", raising=False)
    code = imp.main(["--model-package-arn", "arn:aws:sagemaker:us-east-1:123456789012:model-package/x/1"])
    assert code == 2
    assert "--bedrock-role-arn" in capsys.readouterr().err


def test_metadata_values_keep_to_what_sagemaker_accepts():
    text = imp.metadata_value("ValidationException: bad (thing), see https://x?y=1 'quoted'\n" + "z" * 400)
    assert len(text) == 256
    assert all(ch.isalnum() or ch in " _.:/=+-@" for ch in text)
    assert text.startswith("ValidationException: bad thing see https://x y=1 quoted z")
