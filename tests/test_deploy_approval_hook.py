"""`python -m scripts.deploy_approval_hook` under moto (IAM, Lambda, EventBridge, Logs,
STS), and the Lambda zip it deploys."""
from __future__ import annotations

import base64
import collections
import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from moto.events.models import EventPattern

from scripts import deploy_approval_hook as hook
from scripts.lambda_bundle import build_zip
from tests.aws_fixtures import ACCOUNT, run_cli

REGION = "us-east-1"
GROUP = "nova-finqa"
POLICY_FILES = sorted(hook.POLICIES.glob("*.json"))


@pytest.fixture
def deployed(monkeypatch):
    monkeypatch.setenv("NOVA_BUCKET", "example-bucket")
    monkeypatch.delenv("NOVA_TAGS", raising=False)
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        calls: collections.Counter = collections.Counter()
        session.events.register("before-call.*.*", lambda model, **kw: calls.update([model.name]))
        assert hook.main(["--tag", "project=nova-finqa"], session=session, sleep=lambda s: None) == 0
        yield session, calls


def test_deploy_creates_rule_lambda_and_roles(deployed):
    session, _ = deployed
    iam, lambda_, events = (session.client(n) for n in ("iam", "lambda", "events"))
    bedrock_role = iam.get_role(RoleName="nova-finqa-bedrock-import")["Role"]
    assert bedrock_role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "bedrock.amazonaws.com"}
    lambda_role = iam.get_role(RoleName="nova-finqa-approval-hook")["Role"]
    permissions = iam.get_role_policy(RoleName="nova-finqa-approval-hook", PolicyName="permissions")["PolicyDocument"]
    by_sid = {s["Sid"]: s for s in permissions["Statement"]}
    assert by_sid["ReadAndAnnotateTheGroupsModelPackages"]["Resource"] == \
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/*"
    assert by_sid["PassTheImportRoleToBedrockOnly"]["Resource"] == bedrock_role["Arn"]
    assert by_sid["ReadTheSmokeTestQuestionFromThePipelinesData"]["Resource"] == \
        "arn:aws:s3:::example-bucket/nova-finqa/*"

    function = lambda_.get_function_configuration(FunctionName="nova-finqa-bedrock-import")
    assert function["Role"] == lambda_role["Arn"]
    assert (function["Handler"], function["Runtime"], function["Timeout"]) == (
        "scripts.import_to_bedrock.lambda_handler", "python3.13", 900)
    assert function["Environment"]["Variables"] == {
        "NOVA_MODEL_PACKAGE_GROUP": GROUP, "NOVA_BEDROCK_ROLE_ARN": bedrock_role["Arn"],
        "NOVA_BUCKET": "example-bucket", "NOVA_PREFIX": "nova-finqa"}
    assert function["CodeSha256"] == base64.b64encode(hashlib.sha256(build_zip()).digest()).decode()

    rule = events.describe_rule(Name="nova-finqa-approved")
    assert json.loads(rule["EventPattern"]) == hook.event_pattern(GROUP)
    assert [t["Arn"] for t in events.list_targets_by_rule(Rule="nova-finqa-approved")["Targets"]] == \
        [function["FunctionArn"]]
    [statement] = json.loads(lambda_.get_policy(FunctionName="nova-finqa-bedrock-import")["Policy"])["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"] == rule["Arn"]
    assert session.client("logs").describe_log_groups(
        logGroupNamePrefix="/aws/lambda/nova-finqa-bedrock-import")["logGroups"][0]["retentionInDays"] == 90


def test_the_rule_matches_approved_packages_of_our_group_only(deployed):
    # moto's TestEventPattern is not implemented; its rule matcher is what PutEvents uses.
    rule = deployed[0].client("events").describe_rule(Name="nova-finqa-approved")
    pattern = EventPattern.load(rule["EventPattern"])

    def matches(group: str, status: str) -> bool:
        event = {"id": "1", "source": "aws.sagemaker", "detail-type": "SageMaker Model Package State Change",
                 "account": ACCOUNT, "region": REGION, "time": "2026-01-01T00:00:00Z", "resources": [],
                 "detail": {"ModelPackageGroupName": group, "ModelApprovalStatus": status,
                            "ModelPackageArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{group}/1"}}
        return pattern.matches_event(event)

    assert matches(GROUP, "Approved")
    assert not matches(GROUP, "PendingManualApproval")
    assert not matches(GROUP, "Rejected")
    assert not matches("another-group", "Approved")


def test_running_it_again_changes_nothing(deployed):
    session, calls = deployed
    first = dict(calls)
    calls.clear()
    assert hook.main(["--tag", "project=nova-finqa"], session=session, sleep=lambda s: None) == 0
    changing = {name for name in calls if name.startswith(("Create", "Update", "Add", "Remove"))
                or name == "PutRolePolicy"}
    assert changing == {"CreateLogGroup"}, changing  # answered "already exists"
    assert first["CreateFunction"] == 1 and first["CreateRole"] == 2
    lambda_ = session.client("lambda")
    assert len(json.loads(lambda_.get_policy(FunctionName="nova-finqa-bedrock-import")["Policy"])["Statement"]) == 1
    assert len(session.client("events").list_targets_by_rule(Rule="nova-finqa-approved")["Targets"]) == 1


def test_changed_settings_update_in_place(deployed, monkeypatch):
    session, calls = deployed
    calls.clear()
    monkeypatch.setenv("NOVA_PREFIX", "other-prefix")
    assert hook.main([], session=session, sleep=lambda s: None) == 0
    # the hook's role and the import role both read the pipeline's prefix (the import role: an
    # open-weights model's data there)
    assert calls["UpdateFunctionConfiguration"] == 1 and calls["PutRolePolicy"] == 2
    assert calls["CreateFunction"] == 0 and calls["UpdateFunctionCode"] == 0
    variables = session.client("lambda").get_function_configuration(
        FunctionName="nova-finqa-bedrock-import")["Environment"]["Variables"]
    assert variables["NOVA_PREFIX"] == "other-prefix"


@pytest.mark.parametrize("path", POLICY_FILES, ids=[p.name for p in POLICY_FILES])
def test_policies_are_least_privilege(path):
    values = {name: f"<{name}>" for name in ("Partition", "Region", "AccountId", "ModelPackageGroup",
                                             "FunctionName", "BedrockRoleArn", "Bucket", "PrefixPath",
                                             "CheckpointBucketPattern", "EndpointRoleArn")}
    policy = hook.render_policy(path.name, values)
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in actions), statement
        if actions == ["ec2:DescribeInstanceTypes"]:
            # The Service Authorization Reference lists no resource type for it: only "*" can grant it.
            assert statement["Resource"] == "*"
            continue
        if "Principal" in statement:
            assert statement["Condition"], statement
            continue
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert all(resource != "*" and resource.startswith(("arn:", "<")) for resource in resources), statement


@pytest.mark.integration
def test_the_zip_is_deterministic_and_runs_on_its_own(tmp_path):
    first, second = build_zip(), build_zip()
    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        names = archive.namelist()
        assert names == sorted(names)
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        archive.extractall(tmp_path)
    assert "scripts/import_to_bedrock.py" in names and "pipeline/bedrock_rules.py" in names
    # Of the job code, only the recipe catalog that tells LoRA from full-rank, the package's metadata keys, the
    # checkpoint rule, and the serverless model table that tells an open-weights model and its deployment.
    assert {name for name in names if name.startswith("steps/")} == {
        "steps/__init__.py", "steps/catalog.py", "steps/catalog_data.py", "steps/escrow.py",
        "steps/open_weights_models.py", "steps/package_metadata.py", "steps/serverless_models.py", "steps/tracking.py"}
    assert not any(name.startswith("tests/") or "__pycache__" in name for name in names)
    assert not any(name.startswith("botocore/data/iam/") for name in names)
    # -S: no site-packages, so only what the zip holds (and the standard library) is importable.
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import scripts.import_to_bedrock as handler, boto3, steps.catalog;"
        "assert boto3.__file__.startswith(sys.argv[1]), boto3.__file__;"
        "assert steps.catalog.recipe('nova_lite_1_0_p5_p4d_gpu_sft').peft == 'full-rank';"
        "session = boto3.session.Session(region_name='us-east-1');"
        "assert hasattr(session.client('bedrock'), 'create_custom_model_deployment');"
        "[session.client(name) for name in ('bedrock-runtime', 'sagemaker', 's3', 'lambda', 'sts', 'ec2',"
        " 'sagemaker-runtime')];"
        "print(callable(handler.lambda_handler))"
    )
    result = subprocess.run([sys.executable, "-S", "-c", probe, str(tmp_path)], capture_output=True, text=True,
                            env={"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                                 "AWS_CONFIG_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true"},
                            timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "True", result.stderr
    assert Path(tmp_path, "botocore/data/bedrock").is_dir()


def test_an_sdk_without_the_bedrock_calls_is_refused(monkeypatch):
    import botocore.model

    def without_deployments(self):
        return [name for name in self._service_description["operations"] if name != "CreateCustomModelDeployment"]

    monkeypatch.setattr(botocore.model.ServiceModel, "operation_names", property(without_deployments))
    with pytest.raises(RuntimeError, match="CreateCustomModelDeployment: upgrade boto3"):
        build_zip()


def test_an_sdk_that_cannot_import_by_package_arn_is_refused(monkeypatch):
    import copy

    import botocore.loaders

    load = botocore.loaders.Loader.load_service_model

    def as_botocore_1_43(self, service_name, type_name, api_version=None):
        model = load(self, service_name, type_name, api_version)
        if (service_name, type_name) == ("bedrock", "service-2"):
            model = copy.deepcopy(model)
            del model["shapes"]["CreateCustomModelRequest"]["members"]["customModelDataSource"]
        return model

    monkeypatch.setattr(botocore.loaders.Loader, "load_service_model", as_botocore_1_43)
    with pytest.raises(RuntimeError, match="CreateCustomModel has no customModelDataSource: upgrade boto3"):
        build_zip()


def test_one_import_step_runs_at_a_time(deployed):
    concurrency = deployed[0].client("lambda").get_function_concurrency(FunctionName="nova-finqa-bedrock-import")
    assert concurrency["ReservedConcurrentExecutions"] == 1


def _bedrock_role(iam, name: str = "team-bedrock-import", service: str = "bedrock.amazonaws.com") -> str:
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def test_a_given_bedrock_role_is_used_and_none_created(monkeypatch):
    monkeypatch.setenv("NOVA_BUCKET", "example-bucket")
    monkeypatch.delenv("NOVA_TAGS", raising=False)
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        iam = session.client("iam")
        given = _bedrock_role(iam)
        assert hook.main(["--bedrock-role-arn", given], session=session, sleep=lambda s: None) == 0
        assert sorted(r["RoleName"] for r in iam.list_roles()["Roles"]) == ["nova-finqa-approval-hook",
                                                                           "team-bedrock-import"]
        variables = session.client("lambda").get_function_configuration(
            FunctionName="nova-finqa-bedrock-import")["Environment"]["Variables"]
        assert variables["NOVA_BEDROCK_ROLE_ARN"] == given
        permissions = iam.get_role_policy(RoleName="nova-finqa-approval-hook", PolicyName="permissions")
        by_sid = {s["Sid"]: s for s in permissions["PolicyDocument"]["Statement"]}
        assert by_sid["PassTheImportRoleToBedrockOnly"]["Resource"] == given
        assert iam.list_role_policies(RoleName="team-bedrock-import")["PolicyNames"] == []


@pytest.mark.parametrize("make, expected", [
    (lambda iam: f"arn:aws:iam::{ACCOUNT}:role/no-such-role", "no such role in account"),
    (lambda iam: _bedrock_role(iam, service="lambda.amazonaws.com"), "does not let bedrock.amazonaws.com assume it"),
    (lambda iam: "arn:aws:iam::210987654321:role/elsewhere", "is in account 210987654321, not in"),
], ids=["missing", "not-trusting-bedrock", "other-account"])
def test_an_unusable_bedrock_role_is_refused_before_anything_is_created(monkeypatch, capsys, make, expected):
    monkeypatch.setenv("NOVA_BUCKET", "example-bucket")
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        role = make(session.client("iam"))
        assert hook.main(["--bedrock-role-arn", role], session=session, sleep=lambda s: None) == 2
        assert expected in capsys.readouterr().err
        assert session.client("lambda").list_functions()["Functions"] == []
        assert "nova-finqa-approval-hook" not in [r["RoleName"] for r in session.client("iam").list_roles()["Roles"]]


def test_provisioned_throughput_is_allowed_only_when_asked_for(deployed, monkeypatch):
    session, _ = deployed
    iam, lambda_ = session.client("iam"), session.client("lambda")

    def sids() -> set:
        policy = iam.get_role_policy(RoleName="nova-finqa-approval-hook", PolicyName="permissions")
        return {s["Sid"] for s in policy["PolicyDocument"]["Statement"]}

    def variables() -> dict:
        return lambda_.get_function_configuration(FunctionName="nova-finqa-bedrock-import")["Environment"]["Variables"]

    assert "BuyProvisionedThroughputForTheImportedModel" not in sids()
    assert "NOVA_PROVISIONED_MODEL_UNITS" not in variables()
    assert hook.main(["--provisioned-model-units", "2"], session=session, sleep=lambda s: None) == 0
    assert {"BuyProvisionedThroughputForTheImportedModel", "AskTheProvisionedModelTheSmokeTestQuestion"} <= sids()
    assert variables()["NOVA_PROVISIONED_MODEL_UNITS"] == "2"


def test_serving_on_a_sagemaker_endpoint_is_allowed_only_with_an_endpoint_role(deployed):
    session, _ = deployed
    iam, lambda_ = session.client("iam"), session.client("lambda")
    endpoint_role = f"arn:aws:iam::{ACCOUNT}:role/NovaFinQAPipelineRole"

    def permissions() -> list[dict]:
        return iam.get_role_policy(RoleName="nova-finqa-approval-hook", PolicyName="permissions")["PolicyDocument"][
            "Statement"]

    def variables() -> dict:
        return lambda_.get_function_configuration(FunctionName="nova-finqa-bedrock-import")["Environment"]["Variables"]

    assert "ServeAnOpenWeightsModelOnItsOwnEndpoint" not in {s["Sid"] for s in permissions()}
    assert "NOVA_ENDPOINT_ROLE_ARN" not in variables()
    assert hook.main(["--role-arn", endpoint_role, "--open-weights-serving", "sagemaker-endpoint",
                      "--endpoint-instance-type", "ml.g6.2xlarge"], session=session, sleep=lambda s: None) == 0
    statements = {s["Sid"]: s for s in permissions()}
    assert statements["PassTheEndpointRoleToSageMakerOnly"]["Resource"] == endpoint_role
    assert statements["PassTheEndpointRoleToSageMakerOnly"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/*-ep" in statements[
        "ServeAnOpenWeightsModelOnItsOwnEndpoint"]["Resource"]
    assert {k: variables()[k] for k in ("NOVA_ENDPOINT_ROLE_ARN", "NOVA_OPEN_WEIGHTS_SERVING",
                                         "NOVA_ENDPOINT_INSTANCE_TYPE")} == {
        "NOVA_ENDPOINT_ROLE_ARN": endpoint_role, "NOVA_OPEN_WEIGHTS_SERVING": "sagemaker-endpoint",
        "NOVA_ENDPOINT_INSTANCE_TYPE": "ml.g6.2xlarge"}


def test_deploy_end_to_end_against_moto_server(moto_server):
    result = run_cli("scripts.deploy_approval_hook", ["--bucket", "example-bucket"], moto_server)
    assert result.returncode == 0, result.stderr
    deployed = json.loads(result.stdout[result.stdout.index("{"):])
    lambda_ = boto3.client("lambda", region_name=REGION, endpoint_url=moto_server)
    function = lambda_.get_function_configuration(FunctionName="nova-finqa-bedrock-import")
    assert function["FunctionArn"] == deployed["function_arn"]
    assert function["Environment"]["Variables"]["NOVA_BEDROCK_ROLE_ARN"] == deployed["bedrock_role_arn"]
    events = boto3.client("events", region_name=REGION, endpoint_url=moto_server)
    assert events.describe_rule(Name="nova-finqa-approved")["Arn"] == deployed["rule_arn"]

    again = run_cli("scripts.deploy_approval_hook", ["--bucket", "example-bucket"], moto_server)
    assert again.returncode == 0, again.stderr
    assert "created" not in again.stdout and "updated" not in again.stdout
    assert "INFO" not in result.stderr + again.stderr, "botocore's INFO lines are for --verbose only"


def test_deploy_with_a_given_bedrock_role_against_moto_server(moto_server):
    iam = boto3.client("iam", region_name=REGION, endpoint_url=moto_server)
    given = _bedrock_role(iam)
    result = run_cli("scripts.deploy_approval_hook", ["--bucket", "example-bucket", "--bedrock-role-arn", given],
                     moto_server)
    assert result.returncode == 0, result.stderr
    assert f"using the given Bedrock import role {given}" in result.stdout
    assert "created role nova-finqa-bedrock-import" not in result.stdout
    assert json.loads(result.stdout[result.stdout.index("{"):])["bedrock_role_arn"] == given
    assert sorted(r["RoleName"] for r in iam.list_roles()["Roles"]) == ["nova-finqa-approval-hook",
                                                                       "team-bedrock-import"]
    function = boto3.client("lambda", region_name=REGION, endpoint_url=moto_server).get_function_configuration(
        FunctionName="nova-finqa-bedrock-import")
    assert function["Environment"]["Variables"]["NOVA_BEDROCK_ROLE_ARN"] == given


def test_a_missing_bucket_is_named_with_why_the_hook_needs_it(monkeypatch, capsys):
    monkeypatch.delenv("NOVA_BUCKET", raising=False)
    assert hook.main(["--region", REGION], session=object()) == 2
    error = capsys.readouterr().err
    assert "missing setting: --bucket (or the environment variable NOVA_BUCKET)" in error
    assert "smoke-test question from the pipeline's bucket: give the --bucket the pipeline was deployed with" in error
