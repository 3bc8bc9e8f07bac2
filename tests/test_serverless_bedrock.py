"""A package a serverless job registered, once the gate kept it and a person approved it, reaches
Bedrock: by its ARN when restricted, by its container's model data otherwise (SageMaker and S3
under moto, Bedrock under botocore's Stubber, as tests/test_import_to_bedrock.py)."""
from __future__ import annotations

import json

import pytest
from botocore.stub import Stubber

from scripts import import_to_bedrock as imp
from tests.test_import_to_bedrock import (  # noqa: F401  (fixtures)
    ACCOUNT,
    BEDROCK_ROLE,
    REGION,
    _Clients,
    _metadata,
    _package,
    _stub_fresh_import,
    aws,
    restricted,
    sagemaker_update_keeps_what_it_is_not_given,
)

# Each test prepares or scores real FinQA records in a process of its own.
pytestmark = pytest.mark.integration


SERVERLESS_OUTPUT = f"s3://customer-escrow-{ACCOUNT}-serverless-abcd/nova-finqa-sft-1/output/model/"


def _serverless_package(sagemaker, **container) -> str:
    """As RecordEvaluation leaves it: no checkpoint_s3_uri (the pipeline never saw one), the scores
    and the combination's recipe in the metadata; then approved by a person."""
    arn = _package(sagemaker, status="PendingManualApproval", checkpoint_s3_uri="",
                   recipe="nova_lite_1_0_p5_p4d_gpu_lora_sft", platform="serverless", accuracy="0.71",
                   baseline_accuracy="0.52", container={
                       "Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/nova:latest", **container})
    sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved",
                                   ApprovalDescription="reviewed")
    return arn


def _import(clients: _Clients, package_arn: str, question: dict, source: dict) -> dict:
    with Stubber(clients.bedrock) as bedrock, Stubber(clients.runtime) as runtime:
        _stub_fresh_import(bedrock, runtime, package_arn, question, source=source)
        outcome = clients.importer().run(package_arn)
        bedrock.assert_no_pending_responses()
        runtime.assert_no_pending_responses()
    return outcome


def test_a_restricted_serverless_package_is_imported_by_its_arn(aws, restricted, finqa_question):  # noqa: F811
    sagemaker, s3 = aws
    package_arn = _serverless_package(sagemaker)
    restricted.add(package_arn)
    outcome = _import(_Clients(sagemaker, s3), package_arn, finqa_question, {
        "customModelDataSource": {"modelPackageArnDataSource": {"modelPackageArn": package_arn}},
        "roleArn": BEDROCK_ROLE})
    assert (outcome.status, outcome.source) == (imp.DEPLOYED, imp.FROM_MODEL_PACKAGE)
    assert _metadata(sagemaker, package_arn)["accuracy"] == "0.71"


def test_an_unrestricted_serverless_package_is_imported_from_its_model_data(aws, finqa_question):  # noqa: F811 (fixtures)
    sagemaker, s3 = aws
    package_arn = _serverless_package(sagemaker, ModelDataSource={"S3DataSource": {
        "S3Uri": SERVERLESS_OUTPUT, "S3DataType": "S3Prefix", "CompressionType": "None"}})
    outcome = _import(_Clients(sagemaker, s3), package_arn, finqa_question, {
        "modelSourceConfig": {"s3DataSource": {"s3Uri": SERVERLESS_OUTPUT}}, "roleArn": BEDROCK_ROLE})
    assert (outcome.status, outcome.source) == (imp.DEPLOYED, imp.FROM_ESCROW)
    assert json.dumps(_metadata(sagemaker, package_arn)).count("bedrock_model_arn") == 1
