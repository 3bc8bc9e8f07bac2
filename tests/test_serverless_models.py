"""The serverless model table: what AWS offers is accepted, anything else is refused with what exists."""
from __future__ import annotations

import argparse

import pytest

from pipeline.settings import Settings, SettingsError, add_settings_arguments
from steps.serverless_models import HUB_MODELS, ServerlessModelError, combinations, hub_model, offered

ROLE = "arn:aws:iam::111122223333:role/NovaFinQAPipelineRole"


def _resolve(*argv: str, environ: dict | None = None) -> Settings:
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser)
    return Settings.resolve(parser.parse_args(["--role-arn", ROLE, "--bucket", "amzn-s3-demo-bucket", *argv]),
                            environ=environ or {})


def test_the_sdk_ids_name_the_sdks_hub_content():
    from sagemaker.train.common_utils.model_aliases import MODEL_NAME_ALIASES

    nova = {m.model_id: m.hub_content_name for m in HUB_MODELS if m.is_nova}
    assert nova == {k: v for k, v in MODEL_NAME_ALIASES.items() if "nova" in v}


def test_nova_regions_are_those_the_sdk_lets_through():
    from sagemaker.train.common_utils.finetune_utils import NOVA_REGIONS

    for model in HUB_MODELS:
        if model.is_nova:
            assert set(model.regions) <= set(NOVA_REGIONS), model.model_id


@pytest.mark.parametrize("model_id, technique, training_type, region", [
    ("amazon.nova-2-lite-v1", "sft", "lora", "us-east-1"),
    ("amazon.nova-lite-v1", "sft", "lora", "us-west-2"),
    ("amazon.nova-micro-v1", "dpo", "lora", "us-east-1"),
    ("amazon.nova-pro-v1", "dpo", "full", "us-east-1"),
    ("amazon.nova-2-lite-v1", "rlvr", "lora", "us-east-1"),
])
def test_offered_combinations_resolve(model_id, technique, training_type, region):
    settings = _resolve("--region", region, "--platform", "serverless", "--base-model", model_id,
                        "--technique", technique, "--training-type", training_type)
    assert settings.hub_model is hub_model(model_id)
    assert settings.hub_model.base_model_arn(region) == (
        f"arn:aws:sagemaker:{region}:aws:hub-content/SageMakerPublicHub/Model/{hub_model(model_id).hub_content_name}")


@pytest.mark.parametrize("argv, says", [
    (["--base-model", "amazon.nova-2-lite-v1", "--technique", "dpo"],
     "DPO lora in us-east-1 is offered for: amazon.nova-lite-v1, amazon.nova-micro-v1, amazon.nova-pro-v1"),
    (["--base-model", "amazon.nova-micro-v1", "--technique", "rlvr"],
     "RLVR lora in us-east-1 is offered for: amazon.nova-2-lite-v1"),
    (["--base-model", "amazon.nova-premier-v1"], "choose one of amazon.nova-micro-v1"),
    (["--technique", "ppo"], "--technique 'ppo' is not a technique: choose one of sft, dpo, rlvr"),
    (["--training-type", "qlora"], "--training-type 'qlora' is not a training type: choose one of lora, full"),
])
def test_combinations_aws_does_not_offer_are_refused_with_those_that_exist(argv, says):
    with pytest.raises(SettingsError) as refused:
        _resolve("--region", "us-east-1", "--platform", "serverless", *argv)
    assert says in str(refused.value)


def test_a_region_without_serverless_nova_is_refused_naming_the_regions():
    with pytest.raises(SettingsError) as refused:
        _resolve("--region", "eu-west-1", "--platform", "serverless", "--base-model", "amazon.nova-lite-v1")
    assert "SFT lora of it runs in: us-east-1, us-west-2" in str(refused.value)


def test_settings_come_from_the_environment_and_default_to_training_jobs():
    assert _resolve("--region", "us-east-1").platform == "training-jobs"
    settings = _resolve("--region", "us-west-2", environ={
        "NOVA_PLATFORM": "serverless", "NOVA_BASE_MODEL": "amazon.nova-micro-v1", "NOVA_TECHNIQUE": "dpo",
        "NOVA_TRAINING_TYPE": "full"})
    assert (settings.serverless, settings.base_model, settings.technique, settings.training_type) == (
        True, "amazon.nova-micro-v1", "dpo", "full")
    with pytest.raises(SettingsError, match="--platform 'hyperpod' is not a platform"):
        _resolve("--region", "us-east-1", "--platform", "hyperpod")


def test_every_listed_combination_is_offered_and_nothing_else():
    listed = {(c.model.model_id, c.technique, c.training_type, c.region) for c in combinations()}
    for model in HUB_MODELS:
        for technique in ("sft", "dpo", "rlvr"):
            for training_type in ("lora", "full"):
                for region in ("us-east-1", "us-west-2", "eu-west-1"):
                    key = (model.model_id, technique, training_type, region)
                    if key in listed:
                        assert offered(*key) is model
                    else:
                        with pytest.raises(ServerlessModelError):
                            offered(*key)


def test_each_combination_takes_a_catalog_recipe_of_its_technique_and_training_type():
    from steps.catalog import recipe

    for model in HUB_MODELS:
        if not model.is_nova:  # open-weights models take no Nova recipe (steps/open_weights_models.py)
            continue
        for training_type, techniques in model.techniques.items():
            for technique in techniques:
                chosen = recipe(model.recipe_id(technique, training_type))
                assert {"rft": "rlvr"}.get(chosen.method, chosen.method) == technique, chosen.id
                assert (chosen.peft == "lora") == (training_type == "lora"), chosen.id
                assert chosen.model_type.startswith(model.model_id), (chosen.id, chosen.model_type)


def test_docs_table_is_the_one_the_model_table_makes():
    from scripts import serverless_table

    page = serverless_table.PAGE.read_text(encoding="utf-8")
    assert serverless_table.replaced(page) == page, (
        "docs/serverless.md is stale: `python -m scripts.serverless_table --write`")


def _hub(summaries):
    """A session whose ListHubContents answers `summaries` (name -> keywords); any other call fails."""
    import boto3
    from botocore.awsrequest import AWSResponse

    session = boto3.Session(region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")

    def answer(model, **kwargs):
        assert model.name == "ListHubContents", model.name
        return AWSResponse("https://stand-in.invalid", 200, {}, None), {"HubContentSummaries": [
            {"HubContentName": name, "HubContentArn": f"arn:aws:sagemaker:us-east-1:aws:hub-content/SageMakerPublicHub/"
             f"Model/{name}/1.0.0", "HubContentVersion": "1.0.0", "HubContentType": "Model",
             "DocumentSchemaVersion": "2.0.0", "HubContentStatus": "Available", "CreationTime": "2026-12-06T00:00:00Z",
             "HubContentSearchKeywords": keywords} for name, keywords in summaries.items()]}

    session._session.register("before-call", answer)
    return session


def test_the_hub_check_agrees_when_the_hub_lists_what_the_table_offers(monkeypatch, capsys):
    from scripts import check_serverless_models

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    summaries = {m.hub_content_name: [f"@recipe:finetuning_{t}_{k}" for k, ts in m.techniques.items() for t in ts]
                 for m in HUB_MODELS}
    assert check_serverless_models.main(["--region", "us-east-1"], session=_hub(summaries)) == 0


def test_the_hub_check_names_each_disagreement(monkeypatch, capsys):
    from scripts import check_serverless_models

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    summaries = {m.hub_content_name: [f"@recipe:finetuning_{t}_{k}" for k, ts in m.techniques.items() for t in ts]
                 for m in HUB_MODELS}
    summaries["nova-textgeneration-micro"] = ["@recipe:finetuning_sft_lora"]  # no DPO in this hub
    summaries["nova-textgeneration-lite-v2"].append("@recipe:finetuning_dpo_lora")  # DPO the table refuses
    summaries["nova-textgeneration-premier"] = ["@recipe:finetuning_sft_lora"]  # a Nova model not in the table
    assert check_serverless_models.main(["--region", "us-east-1"], session=_hub(summaries)) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == ["nova-textgeneration-premier SFT: listed by the hub in us-east-1, not in the table",
                   "amazon.nova-micro-v1 DPO: in the table for us-east-1, not listed by the hub",
                   "amazon.nova-2-lite-v1 DPO: listed by the hub in us-east-1, refused by the table"]
