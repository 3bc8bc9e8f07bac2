"""`python -m pipeline.upsert`: settings errors, create-then-update under moto, and a run against moto_server."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
import pytest
from moto import mock_aws

from pipeline.upsert import change_summary, main
from tests.conftest import PROJECT_ROOT

COMMITTED_DEFINITION = PROJECT_ROOT / "pipeline" / "definition.json"
ROLE = "arn:aws:iam::111122223333:role/NovaFinQAPipelineRole"
BUCKET = "amzn-s3-demo-bucket"
FLAGS = ["--region", "us-east-1", "--role-arn", ROLE, "--bucket", BUCKET]
SETTINGS_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION", "NOVA_ROLE_ARN", "NOVA_BUCKET", "NOVA_PREFIX",
                      "NOVA_PIPELINE_NAME", "NOVA_MODEL_PACKAGE_GROUP", "NOVA_TAGS")


@pytest.fixture(autouse=True)
def region_restored(monkeypatch):
    """main() sets AWS_DEFAULT_REGION to the settings' region; the next test gets it back as it was."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))


@pytest.fixture
def no_settings_in_environment(monkeypatch):
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_missing_settings_name_flag_and_variable(no_settings_in_environment, capsys):
    assert main(["--dry-run"]) == 2
    error = capsys.readouterr().err
    for expected in ("--region (or the environment variable AWS_REGION / AWS_DEFAULT_REGION)",
                     "--role-arn (or the environment variable NOVA_ROLE_ARN)",
                     "--bucket (or the environment variable NOVA_BUCKET)"):
        assert expected in error


def test_settings_come_from_the_environment_when_no_flag(no_settings_in_environment, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("NOVA_ROLE_ARN", ROLE)
    monkeypatch.setenv("NOVA_BUCKET", "other-bucket")
    out = tmp_path / "definition.json"
    assert main(["--dry-run", "--bucket", BUCKET, "--definition-out", str(out)]) == 0
    assert out.read_text() == COMMITTED_DEFINITION.read_text(), "the flag wins over NOVA_BUCKET"


def test_malformed_setting_is_refused(capsys):
    assert main(["--dry-run", *FLAGS[:2], "--role-arn", "NovaFinQAPipelineRole", "--bucket", BUCKET]) == 2
    assert "--role-arn 'NovaFinQAPipelineRole' is not an IAM role ARN" in capsys.readouterr().err


@pytest.mark.parametrize("region, recipe, units, warned", [
    ("us-east-1", "nova_lite_1_0_g5_g6_12x_gpu_lora_sft", None, ""),
    ("ap-northeast-1", "nova_lite_1_0_g5_g6_12x_gpu_lora_sft", None, "on demand in us-east-1, us-west-2 only"),
    ("us-east-1", "nova_lite_1_0_p5_p4d_gpu_sft", None, "full-rank Nova Lite model"),
    ("us-west-2", "nova_lite_1_0_g5_g6_12x_gpu_lora_sft", "2",
     "Provisioned Throughput for Nova Lite in us-east-1 only"),
], ids=["on-demand-offered", "no-on-demand-in-region", "full-rank", "no-provisioned-throughput-in-region"])
def test_a_region_or_recipe_whose_models_cannot_be_served_is_warned_about(monkeypatch, capsys, region, recipe,
                                                                         units, warned):
    monkeypatch.delenv("NOVA_RECIPE", raising=False)
    if units:
        monkeypatch.setenv("NOVA_PROVISIONED_MODEL_UNITS", units)
    assert main(["--dry-run", "--region", region, "--role-arn", ROLE, "--bucket", BUCKET, "--recipe", recipe,
                 "--definition-out", os.devnull]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warned in " ".join(warnings) if warned else warnings == []


def test_create_then_update_with_tag_merge(capsys):
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        sagemaker = boto3.client("sagemaker", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)

        assert main([*FLAGS, "--tag", "team=ml", "--tag", "cost-center=42"]) == 0
        first = capsys.readouterr().out
        described = sagemaker.describe_pipeline(PipelineName="nova-finqa-sft")
        assert described["PipelineDefinition"] == COMMITTED_DEFINITION.read_text()
        assert described["RoleArn"] == ROLE
        arn = described["PipelineArn"]
        assert arn in first and "created (no pipeline of this name was deployed)" in first
        assert "created model package group nova-finqa" in first
        sagemaker.describe_model_package_group(ModelPackageGroupName="nova-finqa")
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
        assert len(keys) == 2 and keys[0].startswith("nova-finqa/code/") and keys[1].startswith("nova-finqa/recipes/")
        assert first.count("uploaded: ") == 2

        assert main([*FLAGS, "--tag", "team=finance", "--tag", "owner=ana"]) == 0
        second = capsys.readouterr().out
        assert "definition unchanged" in second and second.count("already in S3 (SHA-256 checked): ") == 2
        assert "created model package group" not in second
        tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=arn)["Tags"]}
        assert tags == {"team": "finance", "cost-center": "42", "owner": "ana"}
        assert len(sagemaker.list_tags(ResourceArn=arn)["Tags"]) == 3


def test_change_summary_names_what_changed():
    before = COMMITTED_DEFINITION.read_text()
    after = json.loads(before)
    after["Parameters"][3]["DefaultValue"] = 3
    after["Parameters"].append({"Name": "Seed", "Type": "Integer", "DefaultValue": 1})
    after["Steps"][1]["Arguments"]["StoppingCondition"]["MaxRuntimeInSeconds"] = 500_000
    after["Steps"][-1]["Arguments"]["ElseSteps"][0]["Arguments"]["ErrorMessage"] = "too low"
    assert change_summary(before, json.dumps(after)) == [
        "parameter added: Seed", "parameter changed: Epochs", "step changed: FineTune",
        "step changed: AccuracyTooLow"]


def test_upsert_against_moto_server(moto_server):
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_server)
    s3.create_bucket(Bucket=BUCKET)
    env = {**os.environ, "AWS_ENDPOINT_URL": moto_server, "NOVA_PIPELINE_NAME": "nova-finqa-ci",
           "NOVA_TAGS": "team=ml"}
    result = subprocess.run([sys.executable, "-m", "pipeline.upsert", *FLAGS], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    sagemaker = boto3.client("sagemaker", region_name="us-east-1", endpoint_url=moto_server)
    described = sagemaker.describe_pipeline(PipelineName="nova-finqa-ci")
    assert described["PipelineArn"] in result.stdout
    assert json.loads(described["PipelineDefinition"]) == json.loads(COMMITTED_DEFINITION.read_text())
    assert sagemaker.list_tags(ResourceArn=described["PipelineArn"])["Tags"] == [{"Key": "team", "Value": "ml"}]
    code_key = next(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="nova-finqa/code/")["Contents"])
    assert f"s3://{BUCKET}/{code_key}" in described["PipelineDefinition"]
