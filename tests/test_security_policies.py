"""Security review finding 1: no setting can write a statement into the approval hook's policies.

Each value is checked against the rule of what it names (S3's bucket naming rules, the
characters a prefix may hold) and filled into the parsed policy document, never into its
JSON text, so that even a value that got past the rules stays one string in one place.
"""
from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from scripts import deploy_approval_hook as hook
from tests.aws_fixtures import ACCOUNT

REGION = "us-east-1"
INJECTION = '{"Action": "s3:*", "Resource": "*", "Effect": "Allow"}'
# A prefix that closes the statement it lands in and opens one of its own (slashes only inside).
CRAFTED_PREFIX = ('x*"}, {"Sid": "Injected", "Effect": "Allow", "Action": "s3:*", "Resource": "*"}, '
                  '{"Sid": "Tail", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/x')


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("NOVA_BUCKET", "example-bucket")
    for name in ("NOVA_PREFIX", "NOVA_TAGS", "NOVA_CHECKPOINT_BUCKET"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)


def _roles(session) -> list[str]:
    return sorted(role["RoleName"] for role in session.client("iam").list_roles()["Roles"])


def _statements(session) -> list[dict]:
    iam = session.client("iam")
    return [statement for name in _roles(session)
            for statement in iam.get_role_policy(RoleName=name, PolicyName="permissions")
            ["PolicyDocument"]["Statement"]]


def test_a_wildcard_checkpoint_bucket_is_refused_before_any_role_is_made(aws, capsys):
    code = hook.main(["--checkpoint-bucket", "*"], session=aws, sleep=lambda s: None)
    assert code == 2
    err = capsys.readouterr().err
    assert "--checkpoint-bucket '*'" in err and "bucket naming rules" in err, err
    assert _roles(aws) == []


def test_a_crafted_prefix_is_refused_before_any_role_is_made(aws, monkeypatch, capsys):
    monkeypatch.setenv("NOVA_PREFIX", CRAFTED_PREFIX)
    code = hook.main([], session=aws, sleep=lambda s: None)
    assert code == 2
    err = capsys.readouterr().err
    assert "--prefix" in err and "may hold only" in err, err
    assert _roles(aws) == []
    assert not any(statement.get("Sid") == "Injected" for statement in _statements(aws))


def test_the_import_role_reads_only_the_accounts_escrow_buckets_or_the_named_one(aws):
    assert hook.main([], session=aws, sleep=lambda s: None) == 0
    by_sid = {s["Sid"]: s for s in _statements(aws)}
    assert by_sid["ReadTheNovaTrainingCheckpoints"]["Resource"] == [
        f"arn:aws:s3:::customer-escrow-{ACCOUNT}-*", f"arn:aws:s3:::customer-escrow-{ACCOUNT}-*/*"]
    assert hook.main(["--checkpoint-bucket", "team-checkpoints"], session=aws, sleep=lambda s: None) == 0
    by_sid = {s["Sid"]: s for s in _statements(aws)}
    assert by_sid["ReadTheNovaTrainingCheckpoints"]["Resource"] == [
        "arn:aws:s3:::team-checkpoints", "arn:aws:s3:::team-checkpoints/*"]


@pytest.mark.parametrize("path", sorted(hook.POLICIES.glob("*.json")), ids=lambda p: p.name)
def test_a_value_is_filled_into_the_parsed_document_and_stays_one_string(path):
    """Even a value no rule checked (here every one of them) cannot change a document's shape."""
    template = json.loads(path.read_text(encoding="utf-8"))
    values = {name: INJECTION for name in ("Partition", "Region", "AccountId", "ModelPackageGroup", "FunctionName",
                                           "BedrockRoleArn", "Bucket", "PrefixPath", "CheckpointBucketPattern",
                                           "EndpointRoleArn")}
    policy = hook.render_policy(path.name, values)

    def shape(node):
        if isinstance(node, dict):
            return {key: shape(value) for key, value in node.items()}
        if isinstance(node, list):
            return [shape(item) for item in node]
        return type(node).__name__

    assert shape(policy) == shape(template)

    def strings(node):
        if isinstance(node, dict):
            return [text for value in node.values() for text in strings(value)]
        if isinstance(node, list):
            return [text for item in node for text in strings(item)]
        return [node] if isinstance(node, str) else []

    assert any(INJECTION in text for text in strings(policy)), "the value lands inside a string"


@pytest.mark.parametrize("prefix", ["a/../b", "a//b", "nova finqa", "nova$", "nova*", "nova?x", 'a"b', "a{b}"])
def test_prefix_characters_follow_s3s_safe_set(prefix, capsys):
    from pipeline.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="--prefix"):
        Settings.resolve(None, {"AWS_REGION": REGION, "NOVA_BUCKET": "example-bucket", "NOVA_PREFIX": prefix},
                         required=("region", "bucket"))


def test_the_hook_may_write_its_claims_and_nothing_else_in_the_bucket(aws):
    from fnmatch import fnmatchcase

    from scripts.import_to_bedrock import claim_key

    assert hook.main([], session=aws, sleep=lambda s: None) == 0
    by_sid = {s["Sid"]: s for s in _statements(aws)}
    claims = by_sid["ClaimAPackageForOneInvocation"]
    assert sorted(claims["Action"]) == ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
    key = claim_key("nova-finqa", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/nova-finqa/7")
    assert fnmatchcase(f"arn:aws:s3:::example-bucket/{key}", claims["Resource"])
    assert not fnmatchcase("arn:aws:s3:::example-bucket/nova-finqa/code/x/steps.tar.gz", claims["Resource"])
    writes = [s for s in by_sid.values() if any(a in ("s3:PutObject", "s3:DeleteObject") for a in s["Action"])]
    assert writes == [claims]
