"""Approval -> Bedrock: SageMaker and S3 under moto, Bedrock under botocore's Stubber
(moto has no CreateCustomModel / CustomModelDeployment / ProvisionedModelThroughput / Converse;
the Stubber checks each request against the real API model)."""
from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.sagemaker.models import ModelPackage, SageMakerModelBackend

from pipeline.settings import Settings
from scripts import import_to_bedrock as imp
from steps.catalog import DEFAULT_RECIPE
from tests.aws_fixtures import ACCOUNT, run_cli

REGION = "us-east-1"
GROUP = "nova-finqa"
FULL_RANK_RECIPE = "nova_lite_1_0_p5_p4d_gpu_sft"
BEDROCK_ROLE = f"arn:aws:iam::{ACCOUNT}:role/nova-finqa-bedrock-import"
CHECKPOINT = f"s3://customer-escrow-{ACCOUNT}-smtj-abcd1234/nova-finqa-train-1/step_100/"
MODEL_ARN = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model/imported/abcdef123456"
DEPLOYMENT_ARN = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model-deployment/abcdef654321"
PROVISIONED_ARN = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:provisioned-model/abcdef987654"
EVAL_URI = "s3://example-bucket/nova-finqa/exec-1/eval/gen_qa.jsonl"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


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


@pytest.fixture
def restricted(monkeypatch) -> set:
    """ARNs of packages SageMaker describes as restricted (`ManagedStorageType: Restricted`):
    only SageMaker's own training platform registers those, and moto does not know the field."""
    arns: set = set()
    original = ModelPackage.gen_response_object

    def describe(self):
        response = original(self)
        if self.arn in arns:
            response["ManagedStorageType"] = "Restricted"
        return response

    monkeypatch.setattr(ModelPackage, "gen_response_object", describe)
    return arns


def _aws(region: str, finqa_question: dict):
    sagemaker = boto3.client("sagemaker", region_name=region)
    s3 = boto3.client("s3", region_name=region)
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    s3.create_bucket(Bucket="example-bucket", **({} if region == "us-east-1" else
                                                 {"CreateBucketConfiguration": {"LocationConstraint": region}}))
    s3.put_object(Bucket="example-bucket", Key="nova-finqa/exec-1/eval/gen_qa.jsonl",
                  Body=(json.dumps(finqa_question) + "\n" + json.dumps(finqa_question) + "\n").encode())
    return sagemaker, s3


@pytest.fixture
def aws(finqa_question):
    with mock_aws():
        yield _aws(REGION, finqa_question)


def _package(sagemaker, status: str = "Approved", container: dict | None = None, **metadata: str) -> str:
    properties = {"checkpoint_s3_uri": CHECKPOINT, "training_job": "nova-finqa-train-1", "recipe": DEFAULT_RECIPE,
                  "train_records": "100", "eval_data_s3_uri": EVAL_URI, "epochs": "2",
                  # The accuracy gate's figures, which the approval hook checks.
                  "accuracy": "0.62", "baseline_accuracy": "0.41", "accuracy_threshold": "0.5"}
    properties.update(metadata)
    properties = {k: v for k, v in properties.items() if v}
    region = sagemaker.meta.region_name
    return sagemaker.create_model_package(
        ModelPackageGroupName=GROUP, ModelApprovalStatus=status,
        CustomerMetadataProperties=properties,
        InferenceSpecification={"Containers": [container or {
                                    "Image": f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com/nova:latest"}],
                                "SupportedContentTypes": ["application/json"],
                                "SupportedResponseMIMETypes": ["application/json"]},
    )["ModelPackageArn"]


def _metadata(sagemaker, arn: str) -> dict:
    return sagemaker.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"]


def _not_found(stubber: Stubber, method: str, expected: dict) -> None:
    stubber.add_client_error(method, "ResourceNotFoundException", "not found", 404, expected_params=expected)


def _model(status: str) -> dict:
    return {"modelArn": MODEL_ARN, "modelName": "nova-finqa-v1", "creationTime": NOW, "modelStatus": status}


def _stub_model_import(bedrock: Stubber, package_arn: str, source: dict,
                       model_polls: tuple[str, ...] = ("Creating", "Active")) -> None:
    _not_found(bedrock, "get_custom_model", {"modelIdentifier": "nova-finqa-v1"})
    bedrock.add_response("create_custom_model", {"modelArn": MODEL_ARN}, {
        "modelName": "nova-finqa-v1", **source,
        "clientRequestToken": imp.request_token(package_arn, "custom-model")})
    for status in model_polls:
        bedrock.add_response("get_custom_model", _model(status), {"modelIdentifier": MODEL_ARN})


ESCROW_SOURCE = {"modelSourceConfig": {"s3DataSource": {"s3Uri": CHECKPOINT}}, "roleArn": BEDROCK_ROLE}


def _stub_smoke_test(runtime: Stubber, model_id: str, finqa_question: dict) -> None:
    runtime.add_response("converse", {
        "output": {"message": {"role": "assistant", "content": [{"text": "Program: divide(1, 2)\nAnswer: 50%"}]}},
        "stopReason": "end_turn", "usage": {"inputTokens": 900, "outputTokens": 12, "totalTokens": 912},
        "metrics": {"latencyMs": 800}}, {
        "modelId": model_id, "system": [{"text": finqa_question["system"]}],
        "messages": [{"role": "user", "content": [{"text": finqa_question["query"]}]}],
        "inferenceConfig": {"maxTokens": 512, "temperature": 0.0}})


def _stub_fresh_import(bedrock: Stubber, runtime: Stubber, package_arn: str, finqa_question: dict,
                       source: dict = ESCROW_SOURCE) -> None:
    _stub_model_import(bedrock, package_arn, source)
    _not_found(bedrock, "get_custom_model_deployment", {"customModelDeploymentIdentifier": "nova-finqa-v1-ondemand"})
    bedrock.add_response("create_custom_model_deployment", {"customModelDeploymentArn": DEPLOYMENT_ARN}, {
        "modelDeploymentName": "nova-finqa-v1-ondemand", "modelArn": MODEL_ARN,
        "description": f"On-demand deployment of {package_arn}",
        "clientRequestToken": imp.request_token(package_arn, "custom-model-deployment")})
    for status in ("Creating", "Active"):
        bedrock.add_response("get_custom_model_deployment", _deployment(status),
                             {"customModelDeploymentIdentifier": DEPLOYMENT_ARN})
    _stub_smoke_test(runtime, DEPLOYMENT_ARN, finqa_question)


def _deployment(status: str, model_arn: str = MODEL_ARN) -> dict:
    return {"customModelDeploymentArn": DEPLOYMENT_ARN, "modelDeploymentName": "nova-finqa-v1-ondemand",
            "modelArn": model_arn, "createdAt": NOW, "status": status}


def _provisioned(status: str, units: int = 2) -> dict:
    return {"modelUnits": units, "desiredModelUnits": units, "provisionedModelName": "nova-finqa-v1-provisioned",
            "provisionedModelArn": PROVISIONED_ARN, "modelArn": MODEL_ARN, "desiredModelArn": MODEL_ARN,
            "foundationModelArn": f"arn:aws:bedrock:{REGION}::foundation-model/amazon.nova-lite-v1:0:300k",
            "status": status, "creationTime": NOW, "lastModifiedTime": NOW}


class _Clients:
    """A session's clients: moto's SageMaker and S3, Stubber-wrapped Bedrock ones."""

    def __init__(self, sagemaker, s3):
        region = sagemaker.meta.region_name
        self.bedrock = boto3.client("bedrock", region_name=region)
        self.runtime = boto3.client("bedrock-runtime", region_name=region)
        self.lambda_ = boto3.client("lambda", region_name=region)
        self.sts = boto3.client("sts", region_name=region)
        self.sagemaker, self.s3 = sagemaker, s3
        self.sleeps: list[float] = []

    def importer(self, clock=lambda: 0.0, role: str = BEDROCK_ROLE, model_units: int | None = None
                 ) -> imp.BedrockImport:
        return imp.BedrockImport(self.sagemaker, self.bedrock, self.runtime, self.s3, role,
                                 model_units=model_units, sleep=self.sleeps.append, clock=clock, poll_seconds=60,
                                 account=ACCOUNT, claims=imp.Claims(self.s3, "example-bucket", "nova-finqa"))

    def client(self, name: str):
        return {"sagemaker": self.sagemaker, "s3": self.s3, "bedrock": self.bedrock,
                "bedrock-runtime": self.runtime, "lambda": self.lambda_, "sts": self.sts}[name]


class _NoAwsCall:
    """A session for a command that must refuse before it makes any AWS client."""

    def client(self, name: str):
        raise AssertionError(f"a {name} client was made")


def _settings(region: str = REGION) -> Settings:
    return Settings.resolve(None, {"AWS_REGION": region, "NOVA_BEDROCK_ROLE_ARN": BEDROCK_ROLE},
                            required=("region", "bedrock_role_arn"))


def _event(package_arn: str, status: str = "Approved", region: str = REGION) -> dict:
    return {"version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": "SageMaker Model Package State Change", "source": "aws.sagemaker",
            "account": ACCOUNT, "region": region, "resources": [package_arn],
            "detail": {"ModelPackageGroupName": GROUP, "ModelPackageVersion": 1,
                       "ModelPackageArn": package_arn, "ModelApprovalStatus": status}}


@pytest.mark.integration
def test_approved_package_is_imported_from_escrow_deployed_tested_and_written_back(aws, finqa_question):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker, status="PendingManualApproval")
    sagemaker.update_model_package(ModelPackageArn=package_arn, ModelApprovalStatus="Approved",
                                   ApprovalDescription="accuracy reviewed")
    clients = _Clients(sagemaker, s3)
    with Stubber(clients.bedrock) as bedrock, Stubber(clients.runtime) as runtime, \
            Stubber(clients.lambda_) as lambda_:
        _stub_fresh_import(bedrock, runtime, package_arn, finqa_question)
        result = imp.handle_event(_event(package_arn), 900, _settings(), clients.importer(),
                                  clients.lambda_, "arn:aws:lambda:us-east-1:123456789012:function:hook", "req-1")
        bedrock.assert_no_pending_responses()
        runtime.assert_no_pending_responses()
        lambda_.assert_no_pending_responses()
    assert (result["status"], result["source"]) == (imp.DEPLOYED, "s3-escrow")
    metadata = _metadata(sagemaker, package_arn)
    assert metadata["bedrock_model_arn"] == MODEL_ARN
    assert metadata["bedrock_deployment_arn"] == DEPLOYMENT_ARN
    assert metadata["bedrock_import_status"] == "Deployed"
    assert metadata["bedrock_import_source"] == "s3-escrow"
    assert metadata["bedrock_smoke_test"] == "answered: Program: divide 1 2 Answer: 50"
    assert metadata["checkpoint_s3_uri"] == CHECKPOINT and metadata["train_records"] == "100"
    assert "bedrock_import_claim" not in metadata, "a finished import releases its claim"
    assert sagemaker.describe_model_package(ModelPackageName=package_arn)["ModelApprovalStatus"] == "Approved"
    assert clients.sleeps == [60, 60]


@pytest.mark.integration
def test_a_restricted_package_is_imported_by_its_arn_with_the_import_role(aws, restricted, finqa_question,
                                                                          capsys, caplog, monkeypatch):
    sagemaker, s3 = aws
    monkeypatch.setenv("NOVA_BEDROCK_ROLE_ARN", BEDROCK_ROLE)
    # As SageMaker's platform registers it: no checkpoint path of ours, the recipe in AWS's own field.
    package_arn = _package(sagemaker, checkpoint_s3_uri="", recipe="", container={
        "Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/nova:latest", "BaseModel": {"RecipeName": DEFAULT_RECIPE}})
    restricted.add(package_arn)
    clients = _Clients(sagemaker, s3)
    with Stubber(clients.bedrock) as bedrock, Stubber(clients.runtime) as runtime:
        _stub_fresh_import(bedrock, runtime, package_arn, finqa_question, source={
            # roleArn in this branch too, as AWS's BedrockModelBuilder sends it.
            "customModelDataSource": {"modelPackageArnDataSource": {"modelPackageArn": package_arn}},
            "roleArn": BEDROCK_ROLE})
        code = imp.main(["--model-package-arn", package_arn, "--wait", "--region", REGION],
                        session=clients, sleep=clients.sleeps.append)
        bedrock.assert_no_pending_responses()
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["source"] == "model-package"
    assert "from the model package" in caplog.text and "imported by ARN" in caplog.text
    assert _metadata(sagemaker, package_arn)["bedrock_import_source"] == "model-package"


@pytest.mark.integration
def test_the_same_event_twice_creates_nothing_new(aws, finqa_question):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker)
    clients = _Clients(sagemaker, s3)
    with Stubber(clients.bedrock) as bedrock, Stubber(clients.runtime) as runtime:
        _stub_fresh_import(bedrock, runtime, package_arn, finqa_question)
        imp.handle_event(_event(package_arn), 900, _settings(), clients.importer(), request_id="req-1")
        written = _metadata(sagemaker, package_arn)
        # No response is stubbed any more: a second Bedrock call would raise here.
        again = imp.handle_event(_event(package_arn), 900, _settings(), clients.importer(), request_id="req-2")
    assert again["status"] == imp.DEPLOYED and again["detail"] == "already deployed"
    assert _metadata(sagemaker, package_arn) == written


@pytest.mark.integration
def test_a_duplicate_event_during_an_import_starts_nothing(aws, finqa_question):
    """EventBridge delivers at least once: the second delivery of an approval runs while the
    first is importing (after its claim, before its first Bedrock call) and must leave it alone."""
    sagemaker, s3 = aws
    package_arn = _package(sagemaker)
    first, second = _Clients(sagemaker, s3), _Clients(sagemaker, s3)
    duplicates = []

    def duplicate_arrives(**kwargs):
        if not duplicates:
            # The duplicate's Bedrock clients have nothing stubbed: any call it made would raise.
            duplicates.append(imp.handle_event(_event(package_arn), 900, _settings(), second.importer(),
                                               request_id="req-duplicate"))

    first.bedrock.meta.events.register("before-parameter-build.bedrock.GetCustomModel", duplicate_arrives)
    with Stubber(first.bedrock) as bedrock, Stubber(first.runtime) as runtime, \
            Stubber(second.bedrock), Stubber(second.runtime):
        _stub_fresh_import(bedrock, runtime, package_arn, finqa_question)
        result = imp.handle_event(_event(package_arn), 900, _settings(), first.importer(), request_id="req-first")
        bedrock.assert_no_pending_responses()
    [duplicate] = duplicates
    assert duplicate["status"] == imp.SKIPPED and "under way by approval hook invocation req-first" in \
        duplicate["detail"]
    assert result["status"] == imp.DEPLOYED
    assert _metadata(sagemaker, package_arn)["bedrock_import_status"] == "Deployed"


@pytest.mark.integration
def test_a_handed_over_import_keeps_its_claim_and_a_duplicate_is_left_out(aws, finqa_question):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker)
    clients = _Clients(sagemaker, s3)
    event = _event(package_arn)
    function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:nova-finqa-bedrock-import"
    with Stubber(clients.bedrock) as bedrock, Stubber(clients.lambda_) as lambda_, Stubber(clients.runtime) as runtime:
        _stub_model_import(bedrock, package_arn, ESCROW_SOURCE, model_polls=("Creating",))
        handed_over = {**event, "resume": 1, "claim": "req-first"}
        lambda_.add_response("invoke", {"StatusCode": 202}, {
            "FunctionName": function_arn, "InvocationType": "Event", "Payload": json.dumps(handed_over).encode()})
        # 100 s left in this invocation: less than the safety margin plus one poll.
        result = imp.handle_event(event, 100, _settings(), clients.importer(), clients.lambda_, function_arn,
                                  "req-first")
        lambda_.assert_no_pending_responses()
        assert result["status"] == imp.IMPORTING
        metadata = _metadata(sagemaker, package_arn)
        assert metadata["bedrock_import_claim"] == "req-first"
        assert metadata["bedrock_import_status"] == "ModelImporting"
        assert metadata["bedrock_model_arn"] == MODEL_ARN and "bedrock_deployment_arn" not in metadata

        # Another delivery of the approval, between the two invocations: nothing stubbed, nothing called.
        duplicate = imp.handle_event(event, 900, _settings(), clients.importer(), request_id="req-other")
        assert duplicate["status"] == imp.SKIPPED

        # The hand-over carries the claim and finishes the import.
        bedrock.add_response("get_custom_model", _model("Active"), {"modelIdentifier": "nova-finqa-v1"})
        bedrock.add_response("get_custom_model", _model("Active"), {"modelIdentifier": MODEL_ARN})
        _not_found(bedrock, "get_custom_model_deployment",
                   {"customModelDeploymentIdentifier": "nova-finqa-v1-ondemand"})
        bedrock.add_response("create_custom_model_deployment", {"customModelDeploymentArn": DEPLOYMENT_ARN})
        bedrock.add_response("get_custom_model_deployment", _deployment("Active"))
        _stub_smoke_test(runtime, DEPLOYMENT_ARN, finqa_question)
        finished = imp.handle_event(handed_over, 900, _settings(), clients.importer(), request_id="req-resumed")
        bedrock.assert_no_pending_responses()
    assert finished["status"] == imp.DEPLOYED
    assert "bedrock_import_claim" not in _metadata(sagemaker, package_arn)


@pytest.mark.integration
def test_a_rerun_after_a_lost_write_finds_the_existing_model_and_deployment(aws, finqa_question):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker)
    clients = _Clients(sagemaker, s3)
    with Stubber(clients.bedrock) as bedrock, Stubber(clients.runtime) as runtime:
        bedrock.add_response("get_custom_model", _model("Active"), {"modelIdentifier": "nova-finqa-v1"})
        bedrock.add_response("get_custom_model", _model("Active"), {"modelIdentifier": MODEL_ARN})
        bedrock.add_response("get_custom_model_deployment", _deployment("Active"),
                             {"customModelDeploymentIdentifier": "nova-finqa-v1-ondemand"})
        bedrock.add_response("get_custom_model_deployment", _deployment("Active"),
                             {"customModelDeploymentIdentifier": DEPLOYMENT_ARN})
        _stub_smoke_test(runtime, DEPLOYMENT_ARN, finqa_question)
        outcome = clients.importer().run(package_arn)
        bedrock.assert_no_pending_responses()
    assert (outcome.status, outcome.model_arn, outcome.deployment_arn) == (imp.DEPLOYED, MODEL_ARN, DEPLOYMENT_ARN)


@pytest.mark.integration
def test_provisioned_throughput_is_bought_once_and_then_reused(aws, finqa_question):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker, recipe=FULL_RANK_RECIPE)
    clients = _Clients(sagemaker, s3)
    with Stubber(clients.bedrock) as bedrock, Stubber(clients.runtime) as runtime:
        _stub_model_import(bedrock, package_arn, ESCROW_SOURCE)
        _not_found(bedrock, "get_provisioned_model_throughput", {"provisionedModelId": "nova-finqa-v1-provisioned"})
        bedrock.add_response("create_provisioned_model_throughput", {"provisionedModelArn": PROVISIONED_ARN}, {
            "provisionedModelName": "nova-finqa-v1-provisioned", "modelId": MODEL_ARN, "modelUnits": 2,
            "clientRequestToken": imp.request_token(package_arn, "provisioned-model-throughput")})
        for status in ("Creating", "InService"):
            bedrock.add_response("get_provisioned_model_throughput", _provisioned(status),
                                 {"provisionedModelId": PROVISIONED_ARN})
        _stub_smoke_test(runtime, PROVISIONED_ARN, finqa_question)
        bought = clients.importer(model_units=2).run(package_arn)
        bedrock.assert_no_pending_responses()
        metadata = _metadata(sagemaker, package_arn)
        assert (bought.status, bought.provisioned_model_arn, bought.deployment_arn) == (
            imp.DEPLOYED, PROVISIONED_ARN, "")
        assert metadata["bedrock_provisioned_model_arn"] == PROVISIONED_ARN
        assert "bedrock_deployment_arn" not in metadata

        # The package's record is lost (say, the write failed): the next run finds what it bought.
        sagemaker.update_model_package(ModelPackageArn=package_arn, CustomerMetadataProperties={
            k: v for k, v in metadata.items() if not k.startswith("bedrock_")},
            CustomerMetadataPropertiesToRemove=[k for k in metadata if k.startswith("bedrock_")])
        bedrock.add_response("get_custom_model", _model("Active"), {"modelIdentifier": "nova-finqa-v1"})
        bedrock.add_response("get_custom_model", _model("Active"), {"modelIdentifier": MODEL_ARN})
        bedrock.add_response("get_provisioned_model_throughput", _provisioned("InService"),
                             {"provisionedModelId": "nova-finqa-v1-provisioned"})
        bedrock.add_response("get_provisioned_model_throughput", _provisioned("InService"),
                             {"provisionedModelId": PROVISIONED_ARN})
        _stub_smoke_test(runtime, PROVISIONED_ARN, finqa_question)
        reused = clients.importer(model_units=2).run(package_arn)
        bedrock.assert_no_pending_responses()
        # And once recorded, a run makes no Bedrock call at all.
        again = clients.importer(model_units=2).run(package_arn)
    assert reused.provisioned_model_arn == PROVISIONED_ARN
    assert (again.status, again.detail) == (imp.DEPLOYED, "already deployed")


@pytest.mark.integration
def test_a_full_rank_recipe_without_provisioned_throughput_is_refused_before_any_bedrock_call(aws):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker, recipe=FULL_RANK_RECIPE)
    clients = _Clients(sagemaker, s3)
    with Stubber(clients.bedrock), Stubber(clients.runtime):
        with pytest.raises(imp.ImportFailed, match="full-rank Nova Lite model.*only with Provisioned Throughput") \
                as refused:
            clients.importer().run(package_arn)
    assert "--provisioned-model-units N" in str(refused.value)
    metadata = _metadata(sagemaker, package_arn)
    assert metadata["bedrock_import_status"] == "Failed" and "full-rank" in metadata["bedrock_import_error"]


def test_a_region_without_on_demand_is_refused_before_any_call(capsys):
    # eu-west-2: no on-demand Nova, and no open-weights customization either (ap-northeast-1 has the
    # latter, served on a SageMaker endpoint, so there the package is read first)
    code = imp.main(["--model-package-arn", f"arn:aws:sagemaker:eu-west-2:{ACCOUNT}:model-package/{GROUP}/1",
                     "--region", "eu-west-2", "--bedrock-role-arn", BEDROCK_ROLE], session=_NoAwsCall())
    assert code == 2
    error = capsys.readouterr().err
    assert "on demand in us-east-1, us-west-2 only" in error and "not in --region eu-west-2" in error
    assert "deploy-custom-model-on-demand" in error


@pytest.mark.integration
def test_the_approval_hook_in_a_region_without_on_demand_records_why(finqa_question):
    with mock_aws():
        sagemaker, s3 = _aws("ap-northeast-1", finqa_question)
        package_arn = _package(sagemaker)
        clients = _Clients(sagemaker, s3)
        with Stubber(clients.bedrock), Stubber(clients.runtime):
            with pytest.raises(imp.ImportFailed, match="not in --region ap-northeast-1"):
                imp.handle_event(_event(package_arn, region="ap-northeast-1"), 900, _settings("ap-northeast-1"),
                                 clients.importer(), request_id="req-1")
        error = _metadata(sagemaker, package_arn)["bedrock_import_error"]
    assert "on demand in us-east-1 us-west-2 only" in error and "not in --region ap-northeast-1" in error


@pytest.mark.integration
def test_provisioned_throughput_where_bedrock_does_not_sell_it_is_refused(finqa_question):
    with mock_aws():
        sagemaker, s3 = _aws("us-west-2", finqa_question)
        package_arn = _package(sagemaker, recipe=FULL_RANK_RECIPE)
        clients = _Clients(sagemaker, s3)
        with Stubber(clients.bedrock), Stubber(clients.runtime):
            with pytest.raises(imp.ImportFailed, match="Provisioned Throughput for Nova Lite in us-east-1 only"):
                clients.importer(model_units=1).run(package_arn)


@pytest.mark.parametrize("arn, expected", [
    ("not-an-arn", "is not a model package version ARN"),
    (f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/{GROUP}", "is the ARN of a model package group"),
    (f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}", "is not a model package version ARN"),
    (f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/other-group/3", "is a version of group other-group"),
    (f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model-package/{GROUP}/3", "run with --region eu-west-1"),
], ids=["not-an-arn", "group-arn", "no-version", "other-group", "other-region"])
def test_a_malformed_or_foreign_arn_is_refused_without_any_aws_call(capsys, arn, expected):
    code = imp.main(["--model-package-arn", arn, "--region", REGION, "--bedrock-role-arn", BEDROCK_ROLE],
                    session=_NoAwsCall())
    assert code == 2
    assert expected in capsys.readouterr().err


@pytest.mark.integration
def test_the_hook_ignores_an_event_for_a_package_of_another_group(aws):
    sagemaker, s3 = aws
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/other-group/1"
    event = {**_event(arn), "detail": {"ModelPackageArn": arn, "ModelApprovalStatus": "Approved"}}
    clients = _Clients(sagemaker, s3)
    with Stubber(clients.sagemaker), Stubber(clients.bedrock):
        result = imp.handle_event(event, 900, _settings(), clients.importer(), request_id="req-1")
    assert result["status"] == imp.SKIPPED and "other-group" in result["detail"]


@pytest.mark.parametrize("status", ["Rejected", "PendingManualApproval"])
@pytest.mark.integration
def test_a_package_not_approved_is_left_alone(aws, status):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker, status=status)
    before = _metadata(sagemaker, package_arn)
    clients = _Clients(sagemaker, s3)
    with Stubber(clients.bedrock), Stubber(clients.runtime):
        outcome = clients.importer().run(package_arn)
    assert outcome.status == imp.SKIPPED and status in outcome.detail
    assert _metadata(sagemaker, package_arn) == before


@pytest.mark.integration
def test_a_bedrock_failure_is_written_on_the_package_and_raised(aws, caplog):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker)
    clients = _Clients(sagemaker, s3)
    with Stubber(clients.bedrock) as bedrock, Stubber(clients.runtime):
        _not_found(bedrock, "get_custom_model", {"modelIdentifier": "nova-finqa-v1"})
        bedrock.add_response("create_custom_model", {"modelArn": MODEL_ARN})
        bedrock.add_response("get_custom_model", {
            **_model("Failed"),
            "failureMessage": "Model artifacts in s3://customer-escrow-x/ are not a supported (full-rank) model."})
        with pytest.raises(imp.ImportFailed, match="full-rank"):
            imp.handle_event(_event(package_arn), 900, _settings(), clients.importer(), request_id="req-1")
    assert any(r.levelname == "ERROR" and "full-rank" in r.getMessage() and package_arn in r.getMessage()
               for r in caplog.records)
    metadata = _metadata(sagemaker, package_arn)
    assert metadata["bedrock_import_status"] == "Failed"
    assert metadata["bedrock_model_arn"] == MODEL_ARN
    assert "bedrock_import_claim" not in metadata, "a failed import releases its claim"
    error = metadata["bedrock_import_error"]
    assert "nova-finqa-v1 failed" in error and "full-rank" in error and len(error) <= 256
    assert "(" not in error and "," not in error

    # The write fires another state-change event; it must not retry on its own.
    with Stubber(clients.bedrock), Stubber(clients.runtime):
        again = imp.handle_event(_event(package_arn), 900, _settings(), clients.importer(), request_id="req-2")
    assert again["status"] == imp.SKIPPED and "earlier import failed" in again["detail"]
    assert _metadata(sagemaker, package_arn) == metadata


@pytest.mark.integration
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


@pytest.mark.parametrize("metadata, expected", [
    ({"checkpoint_s3_uri": ""}, "checkpoint_s3_uri"),
    ({"recipe": ""}, "names no training recipe"),
    ({"recipe": "nova_lite_lora"}, "is not a Nova recipe this pipeline runs"),
], ids=["no-checkpoint", "no-recipe", "unknown-recipe"])
@pytest.mark.integration
def test_a_package_missing_what_the_import_needs_fails_before_any_bedrock_call(aws, metadata, expected):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker, **metadata)
    clients = _Clients(sagemaker, s3)
    with Stubber(clients.bedrock), Stubber(clients.runtime):
        with pytest.raises(imp.ImportFailed, match=expected):
            clients.importer().run(package_arn)
    written = _metadata(sagemaker, package_arn)
    assert written["bedrock_import_status"] == "Failed"
    assert expected.split()[0] in written["bedrock_import_error"]


@pytest.mark.integration
def test_cli_reports_failure_with_a_non_zero_exit(aws, capsys, monkeypatch):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker, checkpoint_s3_uri="")
    clients = _Clients(sagemaker, s3)
    monkeypatch.setenv("NOVA_BEDROCK_ROLE_ARN", BEDROCK_ROLE)
    with Stubber(clients.bedrock), Stubber(clients.runtime):
        code = imp.main(["--model-package-arn", package_arn, "--wait"], session=clients)
    assert code == 1
    assert "checkpoint_s3_uri" in capsys.readouterr().err


def test_cli_names_the_region_and_account_of_an_aws_error(aws, capsys, monkeypatch):
    sagemaker, s3 = aws
    missing = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/99"
    monkeypatch.setenv("NOVA_BEDROCK_ROLE_ARN", BEDROCK_ROLE)
    code = imp.main(["--model-package-arn", missing], session=_Clients(sagemaker, s3))
    assert code == 1
    said = capsys.readouterr().err
    assert "DescribeModelPackage" in said and f"(in {REGION}, account {ACCOUNT}: check --region" in said


@pytest.mark.integration
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


@pytest.mark.integration
def test_cli_needs_the_bedrock_role_for_an_escrow_import(aws, capsys, monkeypatch):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker)
    clients = _Clients(sagemaker, s3)
    monkeypatch.delenv("NOVA_BEDROCK_ROLE_ARN", raising=False)
    with Stubber(clients.bedrock), Stubber(clients.runtime):
        code = imp.main(["--model-package-arn", package_arn, "--wait"], session=clients)
    assert code == 1
    error = capsys.readouterr().err
    assert "--bedrock-role-arn or NOVA_BEDROCK_ROLE_ARN" in error and "deploy_approval_hook" in error


def test_cli_prints_the_sdks_info_lines_only_with_verbose(moto_server):
    sagemaker = boto3.client("sagemaker", region_name=REGION, endpoint_url=moto_server)
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    package_arn = _package(sagemaker, status="PendingManualApproval")
    quiet = run_cli("scripts.import_to_bedrock", ["--model-package-arn", package_arn], moto_server)
    verbose = run_cli("scripts.import_to_bedrock", ["--model-package-arn", package_arn, "--verbose"], moto_server)
    assert quiet.returncode == verbose.returncode == 0, quiet.stderr + verbose.stderr
    assert json.loads(quiet.stdout)["status"] == imp.SKIPPED
    assert "Found credentials" not in quiet.stderr and "INFO" in quiet.stderr  # the tool's own line stays
    assert "Found credentials" in verbose.stderr


def test_metadata_values_keep_to_what_sagemaker_accepts():
    text = imp.metadata_value("ValidationException: bad (thing), see https://x?y=1 'quoted'\n" + "z" * 400)
    assert len(text) == 256
    assert all(ch.isalnum() or ch in " _.:/=+-@" for ch in text)
    assert text.startswith("ValidationException: bad thing see https://x y=1 quoted z")
