"""The reward Lambda as a SageMaker AI evaluator, which serverless RLVR training and evaluation name.

A serverless job does not take a Lambda ARN: `ServerlessJobConfig.EvaluatorArn` is a hub content
ARN (`hub-content/<hub>/JsonDoc/<name>/<version>`, botocore's shape and AWS's SDK
`_validate_evaluator_arn`). AWS's SDK makes one from a Lambda ARN with `Evaluator.create`
(sagemaker.ai_registry.evaluator, as RLVRTrainer does): a JsonDoc in the account's AI Registry
hub, whose document references the Lambda. This module writes the same document, the same
search keywords and the same hub, with two differences, both so that a dry run can name the ARN
without an AWS call:
- the hub name is computed as the SDK computes it (base32hex of SHA-256 of
  `AiRegistry-<region>-<account>`, `air_hub.AIRHub._generate_hub_names`), from the pipeline
  role's account, not from STS;
- the version is fixed (EVALUATOR_VERSION, the SDK's first version) instead of one more than
  the latest: the document depends only on the Lambda's ARN, which is fixed by the settings, so
  an evaluator already there is the right one and is left alone.
"""
from __future__ import annotations

import base64
import hashlib
import json

from pipeline.reward_function import function_arn, function_name
from pipeline.settings import Settings

EVALUATOR_VERSION = "1.0.0"
# sagemaker.ai_registry.air_constants: EVALUATOR_HUB_CONTENT_TYPE, _SUBTYPE, _DOCUMENT_SCHEMA_VERSION,
# REWARD_FUNCTION, EVALUATOR_BYOLAMBDA; EvaluatorMethod.LAMBDA.
HUB_CONTENT_TYPE = "JsonDoc"
SUBTYPE = "AWS/Evaluator"
DOCUMENT_SCHEMA_VERSION = "2.0.0"
EVALUATOR_TYPE = "RewardFunction"


def _account(settings: Settings) -> tuple[str, str]:
    _, partition, _, _, account, _ = settings.role_arn.split(":", 5)
    return partition, account


def hub_name(settings: Settings) -> str:
    _, account = _account(settings)
    digest = hashlib.sha256(f"AiRegistry-{settings.region}-{account}".encode()).digest()
    return base64.b32hexencode(digest).decode().rstrip("=")


def hub_display_name(settings: Settings) -> str:
    return f"AiRegistry-{settings.region}-{_account(settings)[1]}"


def evaluator_name(settings: Settings) -> str:
    # Hub content names take letters, digits and hyphens: the Lambda's name is made of them.
    return function_name(settings)


def evaluator_arn(settings: Settings) -> str:
    partition, account = _account(settings)
    return (f"arn:{partition}:sagemaker:{settings.region}:{account}:hub-content/{hub_name(settings)}/"
            f"{HUB_CONTENT_TYPE}/{evaluator_name(settings)}/{EVALUATOR_VERSION}")


def document(settings: Settings) -> str:
    """The hub content document AWS's Evaluator.create writes for a Lambda reward function."""
    content = {"Reference": function_arn(settings), "EvaluatorType": EVALUATOR_TYPE}
    return json.dumps({"SubType": SUBTYPE, "JsonContent": json.dumps(content)})


def search_keywords() -> list[str]:
    return ["method:lambda", "@subtype:aws/evaluator", "@evaluatortype:rewardfunction", "@contenttype:byolambda"]


def hub_client(session):
    """The SageMaker client the hub calls go through (its own, so that tests can stand in for the
    hub APIs moto does not implement)."""
    return session.client("sagemaker")


def deploy(sagemaker, settings: Settings) -> str:
    """Create the AI Registry hub and the evaluator where missing; the evaluator's ARN.

    An evaluator of this name and version that references another function is an error: the
    pipeline would score with a reward it did not deploy.
    """
    from botocore.exceptions import ClientError

    name = hub_name(settings)
    try:
        sagemaker.describe_hub(HubName=name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceNotFound":
            raise
        sagemaker.create_hub(HubName=name, HubDisplayName=hub_display_name(settings),
                             HubDescription="AI Registry Hub")
    try:
        existing = sagemaker.describe_hub_content(HubName=name, HubContentType=HUB_CONTENT_TYPE,
                                                  HubContentName=evaluator_name(settings),
                                                  HubContentVersion=EVALUATOR_VERSION)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceNotFound":
            raise
        sagemaker.import_hub_content(
            HubName=name, HubContentType=HUB_CONTENT_TYPE, HubContentName=evaluator_name(settings),
            HubContentVersion=EVALUATOR_VERSION, DocumentSchemaVersion=DOCUMENT_SCHEMA_VERSION,
            HubContentDocument=document(settings), HubContentSearchKeywords=search_keywords())
        return evaluator_arn(settings)
    reference = json.loads(json.loads(existing["HubContentDocument"]).get("JsonContent", "{}")).get("Reference")
    if reference != function_arn(settings):
        raise EvaluatorError(
            f"the evaluator {evaluator_name(settings)} {EVALUATOR_VERSION} in hub {name} references {reference}, "
            f"not this pipeline's reward function {function_arn(settings)}: delete it (DeleteHubContent) or choose "
            "another --model-package-group")
    return evaluator_arn(settings)


class EvaluatorError(RuntimeError):
    """The evaluator exists but references another reward function."""
