"""Security review finding 4: the code the jobs run is the code the definition was built with.
Upsert compares the SHA-256 of what is at a content-addressed key with the artifact's and
re-uploads on a mismatch; each processing job checks the archive's SHA-256 before unpacking it."""
from __future__ import annotations

import hashlib
import json
import shutil
from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws

from pipeline.artifacts import code_archive_bytes, code_artifact
from pipeline.settings import Settings
from pipeline.upsert import deploy
from tests.conftest import PROJECT_ROOT
from tests.test_pipeline_local_run import LocalPipeline, _nova_job_output

BUCKET = "amzn-s3-demo-bucket"
PLANTED = b"planted: not the project's code"


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield s3


def _deploy(capsys) -> tuple[str, str]:
    settings = Settings(region="us-east-1", role_arn="arn:aws:iam::123456789012:role/NovaFinQAPipelineRole",
                        bucket=BUCKET)
    built = SimpleNamespace(uploads=(code_artifact(settings.prefix),),
                            definition=json.dumps({"Version": "2020-12-01", "Parameters": [], "Steps": []}))
    deploy(settings, built)
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_a_planted_archive_at_the_content_addressed_key_is_detected_and_replaced(aws, capsys):
    artifact = code_artifact("nova-finqa")
    aws.put_object(Bucket=BUCKET, Key=artifact.key, Body=PLANTED)
    out, err = _deploy(capsys)
    assert "already in S3" not in out
    assert f"s3://{BUCKET}/{artifact.key}" in err and "SHA-256" in err and hashlib.sha256(PLANTED).hexdigest() in err
    assert aws.get_object(Bucket=BUCKET, Key=artifact.key)["Body"].read() == artifact.data


def test_the_right_archive_is_kept_and_said_to_be_checked(aws, capsys):
    artifact = code_artifact("nova-finqa")
    first, _ = _deploy(capsys)
    assert f"uploaded: s3://{BUCKET}/{artifact.key}" in first
    second, err = _deploy(capsys)
    assert f"already in S3 (SHA-256 checked): s3://{BUCKET}/{artifact.key}" in second and err == ""


@pytest.mark.integration
def test_the_job_refuses_an_archive_that_is_not_the_built_one(tmp_path, sample_finqa):
    """The committed definition's FindCheckpoint step, run as its container runs it, on an archive
    in which steps/checkpoint.py was replaced."""
    copy = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT / "steps", copy / "steps", ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "steps" / "checkpoint.py").write_text("print('PLANTED CODE RAN')\n", encoding="utf-8")
    tampered = code_archive_bytes(copy)

    class Tampered(LocalPipeline):
        def source(self, uri):
            folder = super().source(uri)
            if isinstance(uri, str) and "/code/" in uri:
                (folder / "steps.tar.gz").write_bytes(tampered)
            return folder

    (tmp_path / "run").mkdir()
    local = Tampered(tmp_path / "run", sample_finqa)
    local.job_outputs["FineTune"] = _nova_job_output(tmp_path / "jobs", {"manifest.json": json.dumps(
        {"checkpoint_s3_bucket": "s3://customer-escrow-111122223333-smtj-a1b2c3/run/step_12"}).encode()})
    result = local.run("FindCheckpoint")
    assert "PLANTED CODE RAN" not in result.stdout
    assert result.returncode != 0
    assert "steps.tar.gz" in result.stderr and "SHA-256" in result.stderr, result.stderr
