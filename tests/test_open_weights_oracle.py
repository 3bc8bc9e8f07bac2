"""The open-weights FineTune request against AWS's own SFTTrainer / DPOTrainer / RLVRTrainer, built for the same
inputs under a PipelineSession with exactly their build-time AWS calls answered (the harness of
tests/test_serverless_oracle.py: DescribeHubContent, the hub recipe's override file, the model
package group, STS, the output path's S3 checks; any other call fails).

Differences, each deliberate (pipeline/serverless.py says why):
- BaseModelArn: AWS's trainer pins the version DescribeHubContent returns; ours has none
  (SageMaker takes the latest either way: botocore's ServerlessJobConfig documentation).
- The training data's S3 URI: the preparation (or, for DPO, the preference) step's output in ours,
  a plain URI given to theirs.
- HyperParameters: AWS's trainer sends every default of the hub model's override file; ours sends
  none, so the job takes the hub recipe's own. The file cannot be read offline: with an empty one
  the requests are equal; with one that has defaults, those defaults are the only other difference.
"""
from __future__ import annotations

import json

import boto3
import pytest

from pipeline.settings import Settings
from steps.serverless_models import hub_model
from tests import test_serverless_oracle as oracle

CASES = {
    "llama-3-2-1b-sft-lora": ("meta-textgeneration-llama-3-2-1b-instruct", "sft", "lora"),
    "qwen3-1-7b-rlvr-lora": ("huggingface-reasoning-qwen3-1-7b", "rlvr", "lora"),
    "gpt-oss-20b-rlvr-full": ("openai-reasoning-gpt-oss-20b", "rlvr", "full"),
    "qwen3-1-7b-sft-full": ("huggingface-reasoning-qwen3-1-7b", "sft", "full"),
    "qwen3-1-7b-dpo-lora": ("huggingface-reasoning-qwen3-1-7b", "dpo", "lora"),
}
HUB_DEFAULTS = {"learning_rate": {"type": "float", "default": 0.0001, "min": 1e-7, "max": 1.0},
                "num_epochs": {"type": "integer", "default": 3, "min": 1, "max": 10}}
"""A stand-in for a hub override file with defaults (its real content is the hub's, unreadable offline)."""


def _sdk_request(model, technique: str, training_type: str, spec: dict, evaluator_arn: str, monkeypatch):
    """What AWS's trainer puts in a TrainingStep, accepting the model's EULA when the hub says it is gated."""
    from pipeline.sdk import offline_sdk

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": oracle.REGION, "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
    calls = oracle.AwsCalls(oracle._answers(model, technique, training_type, spec, {}))
    session = boto3.Session(region_name=oracle.REGION)
    calls.install(session)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)
    with offline_sdk():
        from sagemaker.core.workflow.pipeline_context import PipelineSession
        from sagemaker.mlops.workflow import TrainingStep
        from sagemaker.train import DPOTrainer, RLVRTrainer, SFTTrainer
        from sagemaker.train.common import TrainingType

        pipeline_session = PipelineSession(boto_session=session, default_bucket=oracle.BUCKET)
        pipeline_session.sagemaker_config = {}
        trainer_class = {"sft": SFTTrainer, "dpo": DPOTrainer, "rlvr": RLVRTrainer}[technique]
        extra = {"custom_reward_function": evaluator_arn, "skip_reward_validation": True} if technique == "rlvr" else {}
        trainer = trainer_class(
            mlflow_resource_arn=oracle.MLFLOW_ARN, mlflow_experiment_name="nova-finqa-sft",
            mlflow_run_name=oracle.RUN_NAME, is_multimodal=False, model=model.model_id,
            training_type=TrainingType.LORA if training_type == "lora" else TrainingType.FULL,
            model_package_group="nova-finqa", sagemaker_session=pipeline_session, role=oracle.ROLE,
            s3_output_path=f"s3://{oracle.BUCKET}/nova-finqa/training", accept_eula=model.gated, **extra)
        step = TrainingStep(name="FineTune", step_args=trainer.train(training_dataset=oracle.TRAIN_URI, wait=False))
        return json.loads(json.dumps(step.arguments, default=str)), calls


def _compare(case: str, spec: dict, monkeypatch) -> dict:
    """Ours and theirs after the listed differences are put aside; returns those differences."""
    from pipeline.reward_evaluator import evaluator_arn

    model_id, technique, training_type = CASES[case]
    ours, defaults, _ = oracle._ours(model_id, technique, training_type)
    ours = oracle._resolved(ours, defaults, {})
    model = hub_model(model_id)
    settings = Settings(region=oracle.REGION, role_arn=oracle.ROLE, bucket=oracle.BUCKET)
    theirs, calls = _sdk_request(model, technique, training_type, spec, evaluator_arn(settings), monkeypatch)
    assert not calls.unexpected
    assert {"DescribeHubContent", "DescribeModelPackageGroup"} <= {name for name, _ in calls.seen}

    differences = {}
    theirs_arn, ours_arn = theirs["ServerlessJobConfig"]["BaseModelArn"], ours["ServerlessJobConfig"]["BaseModelArn"]
    assert theirs_arn == f"{ours_arn}/{oracle.HUB_VERSION}"
    differences["BaseModelArn"] = (ours_arn, theirs_arn)
    theirs["ServerlessJobConfig"]["BaseModelArn"] = ours_arn
    ours["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = oracle.TRAIN_URI
    if theirs["HyperParameters"] != ours["HyperParameters"]:
        differences["HyperParameters"] = (ours["HyperParameters"], theirs["HyperParameters"])
        theirs["HyperParameters"] = ours["HyperParameters"]
    assert theirs == ours, json.dumps({"ours": ours, "theirs": theirs}, indent=1, sort_keys=True)
    return differences


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_the_open_weights_fine_tune_request_is_what_awss_trainer_builds(case, monkeypatch):
    differences = _compare(case, {}, monkeypatch)
    assert list(differences) == ["BaseModelArn"]


def test_the_hub_files_defaults_are_the_one_other_difference(monkeypatch):
    differences = _compare("llama-3-2-1b-sft-lora", HUB_DEFAULTS, monkeypatch)
    assert differences["HyperParameters"] == ({}, {"learning_rate": "0.0001", "num_epochs": "3"})
    assert list(differences) == ["BaseModelArn", "HyperParameters"]


def test_open_weights_data_goes_as_s3_prefix_and_llama_accepts_its_eula():
    ours, _, _ = oracle._ours("meta-textgeneration-llama-3-2-1b-instruct", "sft", "lora")
    assert ours["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataType"] == "S3Prefix"
    assert ours["ServerlessJobConfig"]["AcceptEula"] is True
    qwen, _, _ = oracle._ours("huggingface-reasoning-qwen3-1-7b", "sft", "lora")
    assert "AcceptEula" not in qwen["ServerlessJobConfig"]
