"""Approval -> Bedrock for an open-weights model (Llama, Qwen, GPT-OSS): Custom Model Import from
the package's model data, as AWS's SDK (BedrockModelBuilder) does it, with the FinQA smoke test and
the same idempotency as Nova's path. SageMaker and S3 under moto, Bedrock under botocore's Stubber
(moto has no model import jobs, Converse or InvokeModel)."""
from __future__ import annotations

import io
import json

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from moto import mock_aws

from scripts import import_to_bedrock as imp
from tests import test_import_to_bedrock as nova_import
from tests.aws_fixtures import ACCOUNT
from tests.test_import_to_bedrock import (
    EVAL_URI,
    GROUP,
    REGION,
    _aws,
    _Clients,
    _event,
    _metadata,
    _not_found,
    _settings,
    _stub_smoke_test,
)

# The Nova import tests' moto UpdateModelPackage, made to keep what SageMaker keeps.
sagemaker_update_keeps_what_it_is_not_given = nova_import.sagemaker_update_keeps_what_it_is_not_given


LLAMA = "meta-textgeneration-llama-3-2-1b-instruct"
GPT_OSS = "openai-reasoning-gpt-oss-20b"
MODEL_DATA = "s3://example-bucket/nova-finqa/exec-1/train/output/model/"
MERGED = MODEL_DATA + "checkpoints/hf_merged/"
IMPORTED_ARN = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:imported-model/abcdef123456"
JOB_ARN = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:model-import-job/abcdef123456"
NAME = "nova-finqa-v1"


@pytest.fixture
def aws(finqa_question):
    with mock_aws():
        sagemaker, s3 = _aws(REGION, finqa_question)
        # what a serverless open-weights job leaves: merged Hugging Face weights under checkpoints/
        s3.put_object(Bucket="example-bucket", Body=b"{}",
                      Key="nova-finqa/exec-1/train/output/model/checkpoints/hf_merged/config.json")
        yield sagemaker, s3


def _package(sagemaker, base_model: str) -> str:
    return sagemaker.create_model_package(
        ModelPackageGroupName=GROUP, ModelApprovalStatus="Approved",
        CustomerMetadataProperties={"base_model": base_model, "training_job": "finqa-llama-1",
                                    "eval_data_s3_uri": EVAL_URI, "train_records": "100"},
        InferenceSpecification={"Containers": [{
            "Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/open-weights:latest",
            "ModelDataSource": {"S3DataSource": {"S3Uri": MODEL_DATA, "S3DataType": "S3Prefix",
                                                 "CompressionType": "None"}}}],
            "SupportedContentTypes": ["application/json"], "SupportedResponseMIMETypes": ["application/json"]},
    )["ModelPackageArn"]


def _job(status: str) -> dict:
    return {"jobArn": JOB_ARN, "jobName": NAME, "importedModelName": NAME, "importedModelArn": IMPORTED_ARN,
            "roleArn": f"arn:aws:iam::{ACCOUNT}:role/nova-finqa-bedrock-import",
            "modelDataSource": {"s3DataSource": {"s3Uri": MERGED}}, "status": status,
            "creationTime": "2026-01-01T00:00:00Z"}


def _stub_import(bedrock: Stubber, package_arn: str, role: str) -> None:
    _not_found(bedrock, "get_imported_model", {"modelIdentifier": NAME})
    _not_found(bedrock, "get_model_import_job", {"jobIdentifier": NAME})
    bedrock.add_response("create_model_import_job", {"jobArn": JOB_ARN}, {
        "jobName": NAME, "importedModelName": NAME, "roleArn": role,
        "modelDataSource": {"s3DataSource": {"s3Uri": MERGED}},
        "clientRequestToken": imp.request_token(package_arn, "model-import-job")})
    for status in ("InProgress", "Completed", "Completed"):
        bedrock.add_response("get_model_import_job", _job(status), {"jobIdentifier": JOB_ARN})


def test_an_approved_llama_package_is_imported_from_its_merged_weights_and_answers(aws, finqa_question):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker, LLAMA)
    clients = _Clients(sagemaker, s3)
    importer = clients.importer()
    with Stubber(clients.bedrock) as bedrock, Stubber(clients.runtime) as runtime:
        _stub_import(bedrock, package_arn, importer.bedrock_role_arn)
        _stub_smoke_test(runtime, IMPORTED_ARN, finqa_question)
        result = imp.handle_event(_event(package_arn), 900, _settings(), importer)
        bedrock.assert_no_pending_responses()
        runtime.assert_no_pending_responses()
    assert (result["status"], result["source"], result["model_arn"]) == (imp.DEPLOYED, "s3-import-job", IMPORTED_ARN)
    metadata = _metadata(sagemaker, package_arn)
    assert (metadata["bedrock_import_status"], metadata["bedrock_model_arn"], metadata["bedrock_import_source"]) == (
        "Deployed", IMPORTED_ARN, "s3-import-job")
    assert metadata["bedrock_smoke_test"].startswith("answered: Program: divide 1 2")
    assert "bedrock_deployment_arn" not in metadata  # an imported model answers by its own ARN

    # the same approval again: nothing to do, no Bedrock call
    with Stubber(clients.bedrock) as bedrock, Stubber(clients.runtime):
        assert imp.handle_event(_event(package_arn), 900, _settings(), importer)["detail"] == "already deployed"
        bedrock.assert_no_pending_responses()


def test_a_rerun_after_the_job_started_finds_it_and_creates_nothing(aws, finqa_question):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker, LLAMA)
    clients = _Clients(sagemaker, s3)
    with Stubber(clients.bedrock) as bedrock, Stubber(clients.runtime) as runtime:
        _not_found(bedrock, "get_imported_model", {"modelIdentifier": NAME})
        bedrock.add_response("get_model_import_job", _job("InProgress"), {"jobIdentifier": NAME})
        for status in ("Completed", "Completed"):
            bedrock.add_response("get_model_import_job", _job(status), {"jobIdentifier": JOB_ARN})
        _stub_smoke_test(runtime, IMPORTED_ARN, finqa_question)
        assert clients.importer().run(package_arn).status == imp.DEPLOYED
        bedrock.assert_no_pending_responses()
    # and once the model exists, it is used as it is
    sagemaker.update_model_package(ModelPackageArn=package_arn, CustomerMetadataProperties={
        **_metadata(sagemaker, package_arn), "bedrock_import_status": "Failed"})
    with Stubber(clients.bedrock) as bedrock, Stubber(clients.runtime) as runtime:
        bedrock.add_response("get_imported_model", {
            "modelArn": IMPORTED_ARN, "modelName": NAME}, {"modelIdentifier": NAME})
        _stub_smoke_test(runtime, IMPORTED_ARN, finqa_question)
        assert clients.importer().run(package_arn).status == imp.DEPLOYED
        bedrock.assert_no_pending_responses()


def test_an_import_past_the_deadline_is_recorded_as_importing(aws):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker, LLAMA)
    clients = _Clients(sagemaker, s3)
    importer = clients.importer(clock=lambda: 1000.0)
    with Stubber(clients.bedrock) as bedrock:
        _stub_import(bedrock, package_arn, importer.bedrock_role_arn)
        outcome = importer.run(package_arn, deadline=1000.0)
    assert outcome.status == imp.IMPORTING
    assert _metadata(sagemaker, package_arn)["bedrock_import_status"] == "ModelImporting"


@pytest.mark.parametrize("base_model", [GPT_OSS, "huggingface-reasoning-qwen3-1-7b",
                                        "huggingface-llm-qwen2-5-7b-instruct"])
def test_gpt_oss_and_qwen_are_asked_through_invoke_model_in_openais_chat_schema(aws, finqa_question, base_model):
    """Bedrock's "Invoke your imported model": no Converse for Qwen2.5 and GPT-OSS imports, nor for Qwen3 ("Import a
    customized model"); imports since 2025-11-11 take OpenAI's chat-completion body through InvokeModel."""
    sagemaker, s3 = aws
    package_arn = _package(sagemaker, base_model)
    clients = _Clients(sagemaker, s3)
    importer = clients.importer()
    answer = json.dumps({"choices": [{"message": {"role": "assistant",
                                                  "content": "Program: divide(1, 2)\nAnswer: 50%"}}]}).encode()
    with Stubber(clients.bedrock) as bedrock, Stubber(clients.runtime) as runtime:
        _stub_import(bedrock, package_arn, importer.bedrock_role_arn)
        runtime.add_response("invoke_model", {
            "body": StreamingBody(io.BytesIO(answer), len(answer)), "contentType": "application/json"}, {
            "modelId": IMPORTED_ARN, "contentType": "application/json", "accept": "application/json",
            "body": json.dumps({"messages": [{"role": "system", "content": finqa_question["system"]},
                                             {"role": "user", "content": finqa_question["query"]}],
                                "max_tokens": 512, "temperature": 0.0})})
        outcome = importer.run(package_arn)
        runtime.assert_no_pending_responses()
    assert outcome.status == imp.DEPLOYED and outcome.detail == "answered: Program: divide(1, 2)\nAnswer: 50%"


def test_provisioned_throughput_for_an_open_weights_model_is_refused(aws):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker, LLAMA)
    clients = _Clients(sagemaker, s3)
    with Stubber(clients.bedrock), pytest.raises(imp.ImportFailed, match="or on its SageMaker endpoint"):
        clients.importer(model_units=1).run(package_arn)
