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
from steps.serverless_models import HUB_MODELS, hub_model, offered
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
    ("huggingface-reasoning-qwen3-1-7b", "rlvr", "full", "ap-northeast-1"),
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


def test_deployment_follows_bedrocks_list_of_architectures():
    assert models.deployment("meta-textgeneration-llama-3-2-1b-instruct") == models.BEDROCK_CONVERSE
    assert models.deployment("huggingface-reasoning-qwen3-1-7b") == models.BEDROCK_CONVERSE
    assert models.deployment("openai-reasoning-gpt-oss-20b") == models.BEDROCK_INVOKE
    gemma = dataclasses.replace(hub_model("huggingface-reasoning-qwen3-1-7b"), family="gemma")
    assert models.DEPLOYMENT_BY_FAMILY.get(gemma.family, models.SAGEMAKER_ENDPOINT) == models.SAGEMAKER_ENDPOINT


def test_the_docs_table_lists_every_open_weights_model_with_its_source():
    rows = models.table_rows()
    assert [row[0] for row in rows] == [f"`{m.model_id}`" for m in models.open_weights_models()]
    llama = next(row for row in rows if "llama" in row[0])
    assert llama[2:5] == ["lora", "lora", "lora"] and llama[-1] == "facts file: re-read the page; SDK tests"
    qwen = next(row for row in rows if "qwen3-1-7b" in row[0])
    assert qwen[2:5] == ["lora, full"] * 3 and qwen[-1] == "page; SDK tests"


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
