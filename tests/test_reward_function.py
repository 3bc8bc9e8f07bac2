"""The RFT reward Lambda's deployment (`pipeline.reward_function.deploy`): under moto, and by
`python -m pipeline.upsert` twice against moto_server; and its zip run on its own."""
from __future__ import annotations

import base64
import collections
import hashlib
import io
import json
import subprocess
import sys
import zipfile

import boto3
import pytest
from moto import mock_aws

from pipeline import reward_function
from pipeline.settings import Settings
from scripts.deploy_approval_hook import render_policy
from scripts.lambda_bundle import reward_zip
from steps.finqa.prompts import SYSTEM_PROMPT, render_question, render_target
from steps.finqa.records import load_records
from steps.finqa.rft import reference_answer, rft_line
from tests.aws_fixtures import ACCOUNT

REGION = "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/NovaFinQAPipelineRole"
SETTINGS = Settings(region=REGION, role_arn=ROLE, bucket="example-bucket", tags=(("project", "nova-finqa"),))
FUNCTION = "SageMaker-nova-finqa-reward"


@pytest.fixture
def in_process():
    """A moto session that counts the API calls it makes."""
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        calls: collections.Counter = collections.Counter()
        session.events.register("before-call.*.*", lambda model, **kw: calls.update([model.name]))
        yield session, calls


def principal(statement: dict) -> str:
    # AWS writes a role principal as {"AWS": arn}; moto keeps it as it was given
    given = statement["Principal"]
    return given["AWS"] if isinstance(given, dict) else given


def changing(calls) -> set[str]:
    return {name for name in calls if name.startswith(("Create", "Update", "Add", "Remove", "Put", "Delete"))}


def test_deploy_twice_creates_the_function_its_role_and_permission_then_changes_nothing(in_process, capsys):
    session, calls = in_process
    arn = reward_function.deploy(session, SETTINGS)
    assert arn == reward_function.function_arn(SETTINGS) == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}"
    assert calls["CreateFunction"] == 1 and calls["CreateRole"] == 1

    iam, lambda_ = session.client("iam"), session.client("lambda")
    values = {"Partition": "aws", "Region": REGION, "AccountId": ACCOUNT, "FunctionName": FUNCTION}
    role = iam.get_role(RoleName="nova-finqa-rft-reward")["Role"]
    assert role["AssumeRolePolicyDocument"] == render_policy("reward_function_trust.json", values)
    permissions = iam.get_role_policy(RoleName="nova-finqa-rft-reward", PolicyName="permissions")["PolicyDocument"]
    assert permissions == render_policy("reward_function_permissions.json", values)
    assert [s["Action"] for s in permissions["Statement"]] == [["logs:CreateLogStream", "logs:PutLogEvents"]]

    function = lambda_.get_function_configuration(FunctionName=FUNCTION)
    assert (function["Role"], function["Handler"], function["Runtime"], function["Timeout"],
            function["MemorySize"]) == (
        role["Arn"], "steps.reward.lambda_handler", "python3.13", 300, 512)
    assert function["CodeSha256"] == base64.b64encode(hashlib.sha256(reward_zip()).digest()).decode()
    assert lambda_.list_tags(Resource=arn)["Tags"] == {"project": "nova-finqa"}
    [statement] = json.loads(lambda_.get_policy(FunctionName=FUNCTION)["Policy"])["Statement"]
    assert principal(statement) == ROLE and statement["Action"] == "lambda:InvokeFunction"
    assert session.client("logs").describe_log_groups(
        logGroupNamePrefix=f"/aws/lambda/{FUNCTION}")["logGroups"][0]["retentionInDays"] == 90
    out = capsys.readouterr().out
    assert f"created Lambda {FUNCTION}" in out and f"allowed {ROLE} to invoke Lambda {FUNCTION}" in out

    calls.clear()
    assert reward_function.deploy(session, SETTINGS) == arn
    assert changing(calls) == {"CreateLogGroup", "PutRetentionPolicy"}, calls  # "already exists"; same retention
    assert capsys.readouterr().out == ""
    again = session.client("lambda").get_function_configuration(FunctionName=FUNCTION)
    assert (again["LastModified"], again["CodeSha256"]) == (function["LastModified"], function["CodeSha256"])


def test_upsert_of_an_rft_pipeline_twice_against_moto_server(moto_server, monkeypatch, capsys):
    # `python -m pipeline.upsert` as CI runs it: the reward function first, then the pipeline
    # whose recipe names it; the second run changes nothing.
    from pipeline.upsert import main

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)  # main() sets it to the settings' region
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="amzn-s3-demo-bucket")
    flags = ["--region", REGION, "--role-arn", ROLE, "--bucket", "amzn-s3-demo-bucket", "--pipeline-name",
             "nova-finqa-rft", "--recipe", "nova_lite_v2_smtj_p5_p5en_gpu_lora_rft"]
    assert main(flags) == 0
    first = capsys.readouterr().out
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}"
    assert f"created Lambda {FUNCTION}" in first and f"reward function: {arn}" in first
    lambda_ = boto3.client("lambda", region_name=REGION)
    function = lambda_.get_function_configuration(FunctionName=FUNCTION)
    definition = json.loads(boto3.client("sagemaker", region_name=REGION)
                            .describe_pipeline(PipelineName="nova-finqa-rft")["PipelineDefinition"])
    prepare = next(step for step in definition["Steps"] if step["Name"] == "PrepareFinQAData")
    arguments = prepare["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--reward-lambda-arn") + 1] == function["FunctionArn"] == arn

    assert main(flags) == 0
    second = capsys.readouterr().out
    assert "definition unchanged" in second and f"reward function: {arn}" in second
    assert not any(word in second for word in ("created", "updated", "set permissions", "allowed ")), second
    again = lambda_.get_function_configuration(FunctionName=FUNCTION)
    assert (again["LastModified"], again["CodeSha256"]) == (function["LastModified"], function["CodeSha256"])


def test_another_pipeline_role_is_added_beside_the_first(in_process):
    session, _ = in_process
    reward_function.deploy(session, SETTINGS)
    other = Settings(region=REGION, role_arn=f"arn:aws:iam::{ACCOUNT}:role/AnotherPipelineRole", bucket="b")
    reward_function.deploy(session, other)
    statements = json.loads(session.client("lambda").get_policy(FunctionName=FUNCTION)["Policy"])["Statement"]
    assert sorted(map(principal, statements)) == sorted([ROLE, other.role_arn])


def test_a_role_of_another_account_is_refused_before_anything_is_made(in_process):
    session, calls = in_process
    foreign = Settings(region=REGION, role_arn="arn:aws:iam::111122223333:role/NovaFinQAPipelineRole", bucket="b")
    with pytest.raises(reward_function.RewardFunctionError, match="is in account 111122223333, but these credentials"):
        reward_function.deploy(session, foreign)
    assert not changing(calls)


@pytest.mark.integration
def test_the_zip_holds_steps_only_and_scores_on_its_own(tmp_path, shared_finqa):
    first, second = reward_zip(), reward_zip()
    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "function")
    assert names == sorted(names) and "steps/reward.py" in names and "steps/finqa/program.py" in names
    assert all(name.startswith("steps/") and name.endswith(".py") for name in names), names
    [record] = load_records([shared_finqa / "test_100.json"]).records[:1]
    line = json.loads(rft_line(record.id, SYSTEM_PROMPT, render_question(record), reference_answer(record)))
    event = [{**line, "id": "a",
              "messages": [*line["messages"], {"role": "assistant", "content": render_target(record)}]}]
    # -I -S: neither the project nor site-packages is importable, only the zip's files
    probe = ("import json, sys; sys.path.insert(0, sys.argv[1]); import steps.reward as handler;"
             "assert handler.__file__.startswith(sys.argv[1]);"
             "print(json.dumps(handler.lambda_handler(json.loads(sys.argv[2]), None)))")
    result = subprocess.run([sys.executable, "-I", "-S", "-c", probe, str(tmp_path / "function"), json.dumps(event)],
                            cwd=tmp_path, capture_output=True, text=True, check=True)
    assert json.loads(result.stdout.splitlines()[-1])[0]["aggregate_reward_score"] == 1.0
