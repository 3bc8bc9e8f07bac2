"""Dry-run definitions of the pipeline for open-weights models (`--platform serverless --base-model
<hub model>`): valid against botocore's model of every job's API call, the open-weights data and
evaluation set, and no Nova image or recipe anywhere."""
from __future__ import annotations

import dataclasses
import json

import pytest

from pipeline.checks import definition_problems
from pipeline.settings import Settings
from tests.test_pipeline import steps_by_name

ROLE = "arn:aws:iam::111122223333:role/NovaFinQAPipelineRole"
BASE = Settings(region="us-east-1", role_arn=ROLE, bucket="amzn-s3-demo-bucket", platform="serverless")
CASES = {
    "llama-sft": ("meta-textgeneration-llama-3-2-1b-instruct", "sft", "lora", "us-east-1"),
    "qwen-rlvr": ("huggingface-reasoning-qwen3-1-7b", "rlvr", "lora", "eu-west-1"),
    "gpt-oss-rlvr": ("openai-reasoning-gpt-oss-20b", "rlvr", "full", "us-west-2"),
}


@pytest.fixture(scope="module")
def definitions():
    from pipeline.definition import build_pipeline

    return {case: json.loads(build_pipeline(dataclasses.replace(
        BASE, base_model=model, technique=technique, training_type=kind, region=region)).definition)
        for case, (model, technique, kind, region) in CASES.items()}


@pytest.mark.parametrize("case", list(CASES))
def test_the_definition_validates_against_botocore(definitions, case):
    assert definition_problems(json.dumps(definitions[case])) == []


@pytest.mark.parametrize("case", list(CASES))
def test_the_graph_is_the_serverless_one_on_the_open_weights_data(definitions, case):
    model, technique, kind, region = CASES[case]
    definition = definitions[case]
    steps = steps_by_name(definition)
    assert {"PrepareFinQAData", "FineTune", "GenerateFineTunedAnswers", "GenerateBaseModelAnswers",
            "ScoreAnswers", "CheckAccuracy"} <= set(steps)
    # only what the preparation step uses stays on the Studio form
    assert [p["Name"] for p in definition["Parameters"]] == [
        "DataLocation", "TrainingRecords", "EvaluationRecords", "MaxLength", "MaxTrainingCost",
        "AccuracyThreshold"]
    prepare = steps["PrepareFinQAData"]["Arguments"]
    arguments = prepare["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--open-weights-technique") + 1] == technique
    assert "--reward-lambda-arn" not in arguments  # no Nova recipe is rendered
    outputs = {o["OutputName"]: o for o in prepare["ProcessingOutputConfig"]["Outputs"]}
    assert outputs["eval_open_weights"]["S3Output"]["LocalPath"] == "/opt/ml/processing/output/eval_open_weights"

    fine_tune = steps["FineTune"]["Arguments"]
    job = fine_tune["ServerlessJobConfig"]
    assert job["BaseModelArn"] == f"arn:aws:sagemaker:{region}:aws:hub-content/SageMakerPublicHub/Model/{model}"
    assert job["CustomizationTechnique"] == technique.upper() and ("Peft" in job) == (kind == "lora")
    assert ("EvaluatorArn" in job) == (technique == "rlvr")
    assert fine_tune["HyperParameters"] == {}
    assert fine_tune["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataType"] == "S3Prefix"

    for name in ("GenerateFineTunedAnswers", "GenerateBaseModelAnswers"):
        generation = steps[name]["Arguments"]
        assert generation["HyperParameters"]["evaluation_metric"] == "all"
        assert "metric" not in generation["HyperParameters"] and "lambda_type" not in generation["HyperParameters"]
        data = generation["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]["Std:Join"]["Values"]
        assert data == [{"Get": "Steps.PrepareFinQAData.ProcessingOutputConfig.Outputs['eval_open_weights']"
                                ".S3Output.S3Uri"}, "eval.jsonl"]
    score = steps["ScoreAnswers"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert score[score.index("--base-model") + 1] == model

    text = json.dumps(definition)
    assert "nova-fine-tune-repo" not in text and "nova-evaluation-repo" not in text


def test_the_package_records_its_base_model_and_no_nova_recipe(definitions):
    steps = steps_by_name(definitions["llama-sft"])
    keep = steps["CheckAccuracy"]["Arguments"]["IfSteps"][0]
    metadata = [arg for arg in keep["Arguments"]["AppSpecification"]["ContainerArguments"]
                if isinstance(arg, dict) and "Std:Join" in arg]
    keys = [arg["Std:Join"]["Values"][0] for arg in metadata]
    assert "base_model" in keys and "recipe" not in keys
    base = next(arg for arg in metadata if arg["Std:Join"]["Values"][0] == "base_model")
    assert base["Std:Join"]["Values"][1] == "meta-textgeneration-llama-3-2-1b-instruct"


def test_open_weights_dpo_asks_the_questions_in_its_layout_and_writes_its_pairs():
    from pipeline.definition import build_pipeline

    definition = json.loads(build_pipeline(dataclasses.replace(
        BASE, base_model="huggingface-reasoning-qwen3-1-7b", technique="dpo")).definition)
    assert definition_problems(json.dumps(definition)) == []
    steps = steps_by_name(definition)
    asked = steps["GenerateTrainingAnswers"]["Arguments"]["InputDataConfig"][0]["DataSource"]["S3DataSource"]
    assert asked["S3Uri"]["Std:Join"]["Values"] == [
        {"Get": "Steps.PrepareFinQAData.ProcessingOutputConfig.Outputs['prompts_open_weights'].S3Output.S3Uri"},
        "prompts.jsonl"]
    pairs = steps["MakePreferencePairs"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert pairs[pairs.index("--layout") + 1] == "open-weights"
    assert [p["Name"] for p in definition["Parameters"]] == [
        "DataLocation", "TrainingRecords", "EvaluationRecords", "MaxLength", "MaxTrainingCost",
        "AccuracyThreshold"]  # no Nova DPO Beta either
    fine_tune = steps["FineTune"]["Arguments"]
    assert fine_tune["ServerlessJobConfig"]["CustomizationTechnique"] == "DPO"
    assert fine_tune["HyperParameters"] == {}
    assert "MakePreferencePairs" in json.dumps(fine_tune["InputDataConfig"])
    prepare = steps["PrepareFinQAData"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert prepare[prepare.index("--open-weights-technique") + 1] == "dpo"


def test_upsert_warns_by_the_open_weights_deployment_rule_not_novas(capsys):
    # The preparation recipe of RLVR is Nova 2 Lite's, which Bedrock serves on demand nowhere; an
    # imported GPT-OSS model answers on demand: no warning. Provisioned Throughput is Nova's path here.
    from pipeline.upsert import main

    flags = ["--dry-run", "--region", "us-east-1", "--role-arn", ROLE, "--bucket", "amzn-s3-demo-bucket",
             "--platform", "serverless", "--base-model", "openai-reasoning-gpt-oss-20b", "--technique", "rlvr",
             "--definition-out", "/dev/null"]
    assert main(flags) == 0
    assert "warning" not in capsys.readouterr().err
    assert main([*flags, "--provisioned-model-units", "1"]) == 0
    assert "Provisioned Throughput (--provisioned-model-units) is for Nova models here" in capsys.readouterr().err


def test_upsert_says_where_an_approved_open_model_will_be_served_and_that_an_endpoint_bills_by_the_hour(
        capsys, monkeypatch):
    from pipeline.upsert import main

    # upsert sets the region for the SDK in the environment: restored after the test
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    def upsert(region: str, *extra: str) -> str:
        assert main(["--dry-run", "--region", region, "--role-arn", ROLE, "--bucket", "amzn-s3-demo-bucket",
                     "--platform", "serverless", "--base-model", "meta-textgeneration-llama-3-2-1b-instruct",
                     "--definition-out", "/dev/null", *extra]) == 0
        return capsys.readouterr().err

    assert "SageMaker endpoint" not in upsert("us-east-1")  # Bedrock imports Llama there
    said = upsert("eu-west-1")  # no Custom Model Import in Ireland
    assert "on a SageMaker endpoint" in said and "billed by the instance-hour until deleted" in said
    assert "warning" not in said
    assert "on a SageMaker endpoint" in upsert("us-east-1", "--open-weights-serving", "sagemaker-endpoint")
    refused = upsert("eu-west-1", "--open-weights-serving", "bedrock")
    assert "warning: the approval hook could not serve" in refused and "Bedrock imports llama models in" in refused
