"""pipeline.settings: S3's bucket naming rules, each one named when it is broken."""
from __future__ import annotations

import pytest

from pipeline.settings import Settings, SettingsError
from pipeline.upsert import main as upsert


def resolve_bucket(name: str) -> Settings:
    return Settings.resolve(environ={"NOVA_BUCKET": name}, required=("bucket",))


@pytest.mark.parametrize("name, broken", [
    ("bucket..name", "it must not have two periods next to each other"),
    ("My_Bucket", "only lowercase letters, digits, '.' and '-' may be used, not 'B', 'M', '_'"),
    ("ab", "it must be 3 to 63 characters long, not 2"),
    ("a" * 64, "it must be 3 to 63 characters long, not 64"),
    ("-bucket", "it must begin and end with a letter or digit"),
    ("bucket.", "it must begin and end with a letter or digit"),
    ("192.168.5.4", "it must not be formatted as an IP address"),
    ("xn--bucket", "it must not start with 'xn--' (reserved by S3)"),
    ("sthree-configurator-data", "it must not start with 'sthree-' (reserved by S3)"),
    ("data-s3alias", "it must not end with '-s3alias' (reserved by S3)"),
    ("data--ol-s3", "it must not end with '--ol-s3' (reserved by S3)"),
    ("data.mrap", "it must not end with '.mrap' (reserved by S3)"),
    ("data--use1-az4--x-s3", "it must not end with '--x-s3' (reserved by S3)"),
    ("data--table-s3", "it must not end with '--table-s3' (reserved by S3)"),
])
def test_a_bucket_name_breaking_a_rule_is_refused_with_that_rule(name, broken):
    with pytest.raises(SettingsError) as refused:
        resolve_bucket(name)
    assert str(refused.value) == f"--bucket {name!r} breaks S3's bucket naming rules: {broken}"


def test_every_broken_rule_is_named():
    with pytest.raises(SettingsError) as refused:
        resolve_bucket("-Data..Bucket")
    message = str(refused.value)
    assert "not 'B', 'D'" in message and "begin and end" in message and "two periods" in message


@pytest.mark.parametrize("name", ["s3://my-bucket", "my-bucket/nova-finqa"])
def test_a_uri_or_a_key_is_not_a_bucket_name(name):
    with pytest.raises(SettingsError, match="without s3:// or a key"):
        resolve_bucket(name)


@pytest.mark.parametrize("name", ["abc", "a" * 63, "my.bucket-1", "nova-finqa-111122223333", "amzn-s3-demo-bucket"])
def test_valid_bucket_names_are_kept(name):
    assert resolve_bucket(name).bucket == name


def test_upsert_refuses_a_bad_bucket_before_building(capsys):
    code = upsert(["--dry-run", "--region", "us-east-1", "--role-arn", "arn:aws:iam::111122223333:role/R",
                   "--bucket", "bucket..name"])
    assert code == 2
    assert ("--bucket 'bucket..name' breaks S3's bucket naming rules: it must not have two periods"
            in capsys.readouterr().err)


def test_docs_settings_table_is_the_one_the_declarations_make():
    from scripts import settings_table

    page = settings_table.PAGE.read_text(encoding="utf-8")
    assert settings_table.replaced(page) == page, \
        "docs/settings.md is stale: `python -m scripts.settings_table --write`"


def test_every_setting_is_a_flag_a_variable_and_a_row(monkeypatch):
    """Each declaration makes its flag, its variable and its row: set through either, it reaches Settings."""
    import argparse
    from dataclasses import fields

    from pipeline.settings import SETTINGS, add_settings_arguments
    from scripts.settings_table import table

    parser = argparse.ArgumentParser()
    add_settings_arguments(parser)
    assert [spec.name for spec in SETTINGS] == [f.name for f in fields(Settings)]
    example = {"region": "eu-west-1", "role_arn": "arn:aws:iam::111122223333:role/R", "bucket": "my-bucket",
               "prefix": "p", "pipeline_name": "p-1", "model_package_group": "g-1",
               "recipe": "nova_lite_2_0_p5_gpu_lora_sft", "bedrock_role_arn": "arn:aws:iam::111122223333:role/B",
               "provisioned_model_units": "2",
               "mlflow_tracking_arn": "arn:aws:sagemaker:us-east-1:111122223333:mlflow-tracking-server/t",
               "source_model_package": "arn:aws:sagemaker:eu-west-1:111122223333:model-package/g-1/3",
               "platform": "training-jobs", "base_model": "amazon.nova-micro-v1", "technique": "dpo",
               "training_type": "full", "open_weights_serving": "sagemaker-endpoint",
               "endpoint_role_arn": "arn:aws:iam::111122223333:role/E", "endpoint_instance_type": "ml.g6.2xlarge",
               "checkpoint_bucket": "team-checkpoints", "auto_approve": "true", "tags": "k=v"}
    assert set(example) == {spec.name for spec in SETTINGS}
    expected = {name: (("k", "v"),) if name == "tags" else value for name, value in example.items()}
    # A switch is its flag alone.
    from_flags = Settings.resolve(parser.parse_args([part for spec in SETTINGS for part in (
        (spec.flag,) if spec.switch else (spec.flag, example[spec.name]))]), environ={})
    from_environment = Settings.resolve(environ={spec.env[0]: example[spec.name] for spec in SETTINGS})
    assert {name: getattr(from_flags, name) for name in example} == expected
    assert {name: getattr(from_environment, name) for name in example} == expected
    rows = table().splitlines()[2:]
    assert [row.split(" | ")[0].split("`")[1].split()[0] for row in rows] == [spec.flag for spec in SETTINGS]


def test_a_broken_rule_names_the_flag_and_the_value():
    with pytest.raises(SettingsError) as refused:
        Settings.resolve(environ={"AWS_REGION": "Mars", "NOVA_PREFIX": "/p/", "NOVA_PROVISIONED_MODEL_UNITS": "0"},
                         required=())
    assert str(refused.value) == ("--region 'Mars' is not an AWS region name (e.g. us-east-1); "
                                  "--prefix '/p/' must not start or end with '/'; "
                                  "--provisioned-model-units '0' must be a whole number of model units, 1 or more")
