"""Security review finding 2: approval is a person's act. No runtime (Studio) parameter can make the
pipeline register an approved package; automatic approval is an upsert-time setting that the
definition shows; and the approval hook refuses a package whose gate figures are missing."""
from __future__ import annotations

import dataclasses
import io
import json

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from pipeline.checks import all_steps
from pipeline.settings import Settings
from scripts import import_to_bedrock as imp
from scripts import start_execution
from tests import test_import_to_bedrock as bedrock_tests
from tests.aws_fixtures import ACCOUNT, pipeline_definition
from tests.test_import_to_bedrock import _Clients, _event, _metadata, _package, _settings
from tests.test_pipeline import EXAMPLE

# The Bedrock import tests' fixtures: moto's SageMaker and S3, the real first FinQA question.
aws = bedrock_tests.aws
sagemaker_update_keeps_what_it_is_not_given = bedrock_tests.sagemaker_update_keeps_what_it_is_not_given



def _register(definition: dict) -> dict:
    [step] = [s for s in all_steps(definition["Steps"]) if s["Name"] == "RegisterModel"]
    return step["Arguments"]


@pytest.fixture(scope="module")
def definitions() -> dict[bool, dict]:
    from pipeline.definition import build_pipeline

    return {auto: json.loads(build_pipeline(dataclasses.replace(EXAMPLE, auto_approve="true" if auto else "")
                                            ).definition) for auto in (False, True)}


def test_no_studio_parameter_decides_the_approval_status(definitions):
    definition = definitions[False]
    assert "ModelApprovalStatus" not in {p["Name"] for p in definition["Parameters"]}
    register = _register(definition)
    assert register["ModelApprovalStatus"] == "PendingManualApproval"
    assert "Parameters." not in json.dumps(register["ModelApprovalStatus"])


def test_automatic_approval_is_an_upsert_setting_the_definition_shows(definitions):
    assert _register(definitions[True])["ModelApprovalStatus"] == "Approved"
    assert "ModelApprovalStatus" not in {p["Name"] for p in definitions[True]["Parameters"]}
    assert Settings.resolve(None, {"AWS_REGION": "us-east-1", "NOVA_AUTO_APPROVE": "true"},
                            required=("region",)).approves_automatically
    assert not Settings.resolve(None, {"AWS_REGION": "us-east-1"}, required=("region",)).approves_automatically
    from pipeline.upsert import build_parser

    args = build_parser().parse_args(["--auto-approve"])
    assert Settings.resolve(args, {"AWS_REGION": "us-east-1"}, required=("region",)).approves_automatically


def test_the_package_carries_the_gate_figures_the_hook_checks(definitions):
    metadata = _register(definitions[False])["CustomerMetadataProperties"]
    assert {"accuracy", "baseline_accuracy", "accuracy_threshold"} <= set(metadata)


def test_an_approval_override_is_refused_even_where_an_older_pipeline_declares_the_parameter():
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name="us-east-1")
        sagemaker.create_pipeline(PipelineName="older", RoleArn=f"arn:aws:iam::{ACCOUNT}:role/pipeline",
                                  PipelineDefinition=pipeline_definition())
        err = io.StringIO()
        code = start_execution.main(["--pipeline-name", "older", "--param", "ModelApprovalStatus=Approved"],
                                    sagemaker=sagemaker, out=io.StringIO(), err=err)
        assert code == start_execution.EXIT_USAGE
        assert "ModelApprovalStatus" in err.getvalue() and "--auto-approve" in err.getvalue(), err.getvalue()
        assert sagemaker.list_pipeline_executions(PipelineName="older")["PipelineExecutionSummaries"] == []


@pytest.mark.parametrize("missing", [{"accuracy": ""}, {"baseline_accuracy": ""}, {"accuracy_threshold": ""},
                                     {"accuracy": "not a number"}])
@pytest.mark.integration
def test_the_hook_refuses_a_package_without_its_gate_figures(aws, missing):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker, **missing)
    clients = _Clients(sagemaker, s3)
    with Stubber(clients.bedrock), Stubber(clients.runtime):  # nothing stubbed: any Bedrock call raises
        with pytest.raises(imp.ImportFailed, match="gate"):
            imp.handle_event(_event(package_arn), 900, _settings(), clients.importer(), request_id="req-1")
    metadata = _metadata(sagemaker, package_arn)
    assert metadata["bedrock_import_status"] == "Failed"
    assert next(iter(missing)) in metadata["bedrock_import_error"]


def test_an_auto_approving_upsert_says_what_it_hands_over(capsys, monkeypatch, tmp_path):
    from pipeline.upsert import main

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("NOVA_AUTO_APPROVE", raising=False)
    flags = ["--dry-run", "--region", EXAMPLE.region, "--role-arn", EXAMPLE.role_arn, "--bucket", EXAMPLE.bucket]
    assert main([*flags, "--definition-out", str(tmp_path / "manual.json")]) == 0
    assert "--auto-approve" not in capsys.readouterr().err
    assert main([*flags, "--auto-approve", "--definition-out", str(tmp_path / "auto.json")]) == 0
    assert "warning: --auto-approve" in capsys.readouterr().err
    assert _register(json.loads((tmp_path / "auto.json").read_text()))["ModelApprovalStatus"] == "Approved"
