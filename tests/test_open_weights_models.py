"""Open-weights models in the serverless model table: what AWS's SDK names and allows is taken,
anything else is refused with the list; the reward is deployed in their contract."""
from __future__ import annotations

import argparse
import dataclasses

import boto3
import pytest
from moto import mock_aws

from pipeline import reward_function
from pipeline.settings import Settings, SettingsError, add_settings_arguments
from steps import open_weights_models as models
from steps.serverless_models import HUB_MODELS, offered
from tests.aws_fixtures import ACCOUNT, PROJECT_ROOT

ROLE = f"arn:aws:iam::{ACCOUNT}:role/NovaFinQAPipelineRole"
SDK_TEST_NAMES = ("meta-textgeneration-llama-3-2-1b-instruct", "huggingface-reasoning-qwen3-1-7b",
                  "openai-reasoning-gpt-oss-20b")


def _resolve(*argv: str) -> Settings:
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser)
    return Settings.resolve(parser.parse_args(["--role-arn", ROLE, "--bucket", "amzn-s3-demo-bucket", *argv]),
                            environ={})


def test_the_models_awss_sdk_names_are_in_the_table_with_the_sdks_regions():
    from sagemaker.train.common_utils.finetune_utils import OPEN_WEIGHTS_REGIONS
    from sagemaker.train.common_utils.model_aliases import normalize_model_name

    names = {model.model_id for model in models.open_weights_models()}
    assert set(SDK_TEST_NAMES) <= names
    for model in models.open_weights_models():
        assert set(model.regions) == set(OPEN_WEIGHTS_REGIONS), model.model_id
        # the SDK passes a hub name it has no alias for through unchanged: the id is the hub name
        assert normalize_model_name(model.model_id) == model.model_id == model.hub_content_name
        assert model.source and model.read == "2026-12-06"
    assert not any(models.is_open_weights(model.model_id) for model in HUB_MODELS if model.is_nova)


@pytest.mark.parametrize("model_id, technique, training_type, region", [
    ("meta-textgeneration-llama-3-2-1b-instruct", "sft", "lora", "us-east-1"),
    ("meta-textgeneration-llama-3-2-1b-instruct", "rlvr", "lora", "eu-west-1"),
    ("huggingface-reasoning-qwen3-1-7b", "rlvr", "lora", "ap-northeast-1"),
    ("huggingface-vlm-gemma-4-e4b-it", "sft", "full", "eu-west-1"),
    ("openai-reasoning-gpt-oss-20b", "dpo", "full", "us-west-2"),
])
def test_open_weights_combinations_resolve_to_the_version_less_hub_arn(model_id, technique, training_type, region):
    settings = _resolve("--region", region, "--platform", "serverless", "--base-model", model_id,
                        "--technique", technique, "--training-type", training_type)
    assert settings.hub_model.base_model_arn(region) == (
        f"arn:aws:sagemaker:{region}:aws:hub-content/SageMakerPublicHub/Model/{model_id}")


@pytest.mark.parametrize("argv, says", [
    # Llama 3.2 1B: LoRA only on AWS's page
    (["--base-model", "meta-textgeneration-llama-3-2-1b-instruct", "--training-type", "full"],
     "--technique dpo --training-type lora, --technique rlvr --training-type lora, "
     "--technique sft --training-type lora"),
    (["--base-model", "meta-textgeneration-llama-3-2-70b-instruct"], "meta-textgeneration-llama-3-2-1b-instruct"),
    # Qwen3 1.7B: the page leaves RLVR full rank blank
    (["--base-model", "huggingface-reasoning-qwen3-1-7b", "--technique", "rlvr", "--training-type", "full"],
     "AWS does not offer serverless RLVR full of huggingface-reasoning-qwen3-1-7b in us-east-1"),
    # Nemotron: no DPO on the page
    (["--base-model", "huggingface-reasoning-nvidia-nemotron-3-nano-30b-a3b-bf16", "--technique", "dpo"],
     "--technique rlvr --training-type full"),
])
def test_what_aws_does_not_offer_is_refused_with_the_list(argv, says):
    with pytest.raises(SettingsError) as refused:
        _resolve("--region", "us-east-1", "--platform", "serverless", *argv)
    assert says in str(refused.value)


def test_a_region_outside_the_sdks_list_is_refused_naming_the_regions():
    with pytest.raises(SettingsError) as refused:
        _resolve("--region", "eu-central-1", "--platform", "serverless",
                 "--base-model", "huggingface-reasoning-qwen3-1-7b")
    assert "us-east-1, us-west-2, ap-northeast-1, eu-west-1" in str(refused.value)


@pytest.mark.parametrize("model_id, region, serving, way", [
    # Bedrock's "Invoke your imported model": Converse for Llama; InvokeModel (OpenAI chat) for Qwen and GPT-OSS
    ("meta-textgeneration-llama-3-2-1b-instruct", "us-east-1", "auto", models.BEDROCK_CONVERSE),
    ("deepseek-llm-r1-distill-llama-8b", "us-west-2", "auto", models.BEDROCK_CONVERSE),
    ("huggingface-reasoning-qwen3-1-7b", "us-west-2", "auto", models.BEDROCK_INVOKE),
    ("deepseek-llm-r1-distill-qwen-7b", "us-east-1", "auto", models.BEDROCK_INVOKE),
    ("openai-reasoning-gpt-oss-20b", "us-east-1", "auto", models.BEDROCK_INVOKE),
    # GPT-OSS imports in us-east-1 only
    ("openai-reasoning-gpt-oss-20b", "us-west-2", "auto", models.SAGEMAKER_ENDPOINT),
    # no Custom Model Import in Tokyo or Ireland, where serverless customization runs too
    ("meta-textgeneration-llama-3-2-1b-instruct", "eu-west-1", "auto", models.SAGEMAKER_ENDPOINT),
    ("huggingface-reasoning-qwen3-8b", "ap-northeast-1", "auto", models.SAGEMAKER_ENDPOINT),
    # architectures Bedrock does not list
    ("huggingface-vlm-gemma-4-e4b-it", "us-east-1", "auto", models.SAGEMAKER_ENDPOINT),
    ("huggingface-reasoning-nvidia-nemotron-3-nano-30b-a3b-bf16", "us-east-1", "auto", models.SAGEMAKER_ENDPOINT),
    ("huggingface-vlm-qwen3-5-9b", "us-west-2", "auto", models.SAGEMAKER_ENDPOINT),
    # the operator's choice
    ("meta-textgeneration-llama-3-2-1b-instruct", "us-east-1", "sagemaker-endpoint", models.SAGEMAKER_ENDPOINT),
    ("meta-textgeneration-llama-3-2-1b-instruct", "us-east-1", "bedrock", models.BEDROCK_CONVERSE),
])
def test_serving_follows_bedrocks_architectures_and_regions(model_id, region, serving, way):
    assert models.deployment(model_id, region, serving) == way
    assert models.deployment_problem(model_id, region, serving) == ""


@pytest.mark.parametrize("model_id, region, says", [
    ("huggingface-vlm-gemma-4-e4b-it", "us-east-1", "does not take the gemma4 architecture"),
    ("openai-reasoning-gpt-oss-20b", "us-west-2", "Bedrock imports gpt-oss models in us-east-1 only"),
    ("huggingface-reasoning-qwen3-8b", "eu-west-1", "us-east-1, us-east-2, us-west-2, eu-central-1 only"),
])
def test_bedrock_asked_where_it_cannot_import_is_refused_with_the_way_out(model_id, region, says):
    problem = models.deployment_problem(model_id, region, "bedrock")
    assert says in problem and "--open-weights-serving auto or sagemaker-endpoint" in problem


def test_the_docs_table_lists_every_open_weights_model_with_its_source():
    rows = models.table_rows()
    assert [row[0] for row in rows] == [f"`{m.model_id}`" for m in models.open_weights_models()]
    assert len(rows) == 31  # the page's rows
    llama = next(row for row in rows if "llama-3-2-1b" in row[0])
    assert llama[2:5] == ["lora", "lora", "lora"] and llama[-1] == "page; SDK tests"
    assert llama[6] == "Bedrock import: us-east-1, us-west-2; SageMaker endpoint: ap-northeast-1, eu-west-1"
    qwen = next(row for row in rows if "qwen3-1-7b" in row[0])
    assert qwen[2:5] == ["lora, full", "lora, full", "lora"] and qwen[-1] == "page; SDK tests"
    gemma = next(row for row in rows if "gemma-4-e4b" in row[0])
    assert gemma[6] == "SageMaker endpoint: us-east-1, us-west-2, ap-northeast-1, eu-west-1"


def test_the_docs_page_holds_the_table_as_the_data_gives_it():
    page = (PROJECT_ROOT / "docs" / "open-weights.md").read_text(encoding="utf-8")
    assert models.markdown_table() in page, "regenerate the table: python -c 'from steps.open_weights_models " \
                                            "import markdown_table; print(markdown_table())'"


def test_the_reward_is_deployed_in_the_open_weights_contract_for_an_open_weights_pipeline():
    nova = Settings(region="us-east-1", role_arn=ROLE, bucket="b")
    llama = dataclasses.replace(nova, platform="serverless", base_model="meta-textgeneration-llama-3-2-1b-instruct",
                                technique="rlvr")
    assert reward_function.reward_contract(nova) == "nova"
    assert reward_function.reward_contract(dataclasses.replace(nova, platform="serverless",
                                                               technique="rlvr")) == "nova"
    assert reward_function.reward_contract(llama) == "open-weights"
    assert offered(llama.base_model, "rlvr", "lora", "us-east-1")
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        name = reward_function.function_name(llama)
        reward_function.deploy(session, nova)
        lambda_ = session.client("lambda")
        assert lambda_.get_function_configuration(FunctionName=name)["Environment"]["Variables"] == {
            "REWARD_CONTRACT": "nova"}
        reward_function.deploy(session, llama)  # the same function, now for an open-weights pipeline
        assert lambda_.get_function_configuration(FunctionName=name)["Environment"]["Variables"] == {
            "REWARD_CONTRACT": "open-weights"}
