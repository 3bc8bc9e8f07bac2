"""Security review findings 3 and 8: a checkpoint must come from this account's escrow bucket (or
the one bucket named at upsert), checked in the checkpoint step and again before the Bedrock
import; a model package of another account is refused before any Bedrock call."""
from __future__ import annotations

import json

import pytest
from botocore.stub import Stubber

from scripts import import_to_bedrock as imp
from steps.escrow import checkpoint_location_problem
from tests import test_import_to_bedrock as bedrock_tests
from tests.aws_fixtures import ACCOUNT
from tests.test_import_to_bedrock import GROUP, REGION, _Clients, _event, _metadata, _package, _settings
from tests.test_pipeline_local_run import LocalPipeline, _nova_job_output

EXAMPLE_ACCOUNT = "111122223333"  # the account of the committed definition's role
FOREIGN = "s3://attacker-bucket/x"

# The Bedrock import tests' fixtures: moto's SageMaker and S3, the real first FinQA question.
aws = bedrock_tests.aws
sagemaker_update_keeps_what_it_is_not_given = bedrock_tests.sagemaker_update_keeps_what_it_is_not_given



@pytest.mark.parametrize("checkpoint", [FOREIGN, "s3://customer-escrow-999999999999-smtj-a1b2c3/run/step_12",
                                        "s3://customer-escrow-111122223333/run", "s3://Customer-Escrow-1/x"])
@pytest.mark.integration
def test_the_checkpoint_step_refuses_a_checkpoint_outside_the_accounts_escrow(tmp_path, sample_finqa, checkpoint):
    """The committed definition's FindCheckpoint step, run as its container runs it."""
    local = LocalPipeline(tmp_path, sample_finqa)
    local.job_outputs["FineTune"] = _nova_job_output(
        tmp_path / "jobs", {"manifest.json": json.dumps({"checkpoint_s3_bucket": checkpoint}).encode()})
    result = local.run("FindCheckpoint")
    assert result.returncode == 1, result.stdout + result.stderr
    assert checkpoint in result.stderr and f"customer-escrow-{EXAMPLE_ACCOUNT}-" in result.stderr, result.stderr
    assert "--checkpoint-bucket" in result.stderr
    assert not (local.outputs[("FindCheckpoint", "checkpoint")] / "checkpoint.json").exists()


def test_the_rule_takes_the_accounts_escrow_or_the_named_bucket_only():
    escrow = f"s3://customer-escrow-{ACCOUNT}-smtj-a1b2c3/nova-finqa-train-1/step_100/"
    assert checkpoint_location_problem(escrow, ACCOUNT) is None
    assert checkpoint_location_problem("s3://team-checkpoints/run-1/", ACCOUNT, "team-checkpoints") is None
    assert "team-checkpoints" in checkpoint_location_problem(escrow, ACCOUNT, "team-checkpoints")
    for bad in (FOREIGN, "s3://", "https://customer-escrow-1/x", f"s3://customer-escrow-{ACCOUNT}x-smtj/x",
                "s3://team-checkpoints.evil/x"):
        assert checkpoint_location_problem(bad, ACCOUNT, "team-checkpoints"), bad


@pytest.mark.integration
def test_the_hook_refuses_a_package_whose_checkpoint_is_foreign_before_any_bedrock_call(aws):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker, checkpoint_s3_uri=FOREIGN)
    clients = _Clients(sagemaker, s3)
    with Stubber(clients.bedrock), Stubber(clients.runtime):  # nothing stubbed: any Bedrock call raises
        with pytest.raises(imp.ImportFailed, match="attacker-bucket"):
            imp.handle_event(_event(package_arn), 900, _settings(), clients.importer(), request_id="req-1")
    metadata = _metadata(sagemaker, package_arn)
    assert metadata["bedrock_import_status"] == "Failed"
    assert "attacker-bucket" in metadata["bedrock_import_error"]


@pytest.mark.integration
def test_the_command_refuses_a_foreign_checkpoint_too(aws, capsys):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker, checkpoint_s3_uri=FOREIGN)
    clients = _Clients(sagemaker, s3)
    with Stubber(clients.bedrock), Stubber(clients.runtime):
        code = imp.main(["--model-package-arn", package_arn, "--region", REGION, "--bedrock-role-arn",
                         f"arn:aws:iam::{ACCOUNT}:role/nova-finqa-bedrock-import"], session=clients)
    assert code == 1
    err = capsys.readouterr().err
    assert FOREIGN in err and f"customer-escrow-{ACCOUNT}-" in err and "--checkpoint-bucket" in err


@pytest.mark.integration
def test_a_package_arn_of_another_account_is_refused_before_any_bedrock_call(aws, capsys):
    sagemaker, s3 = aws
    clients = _Clients(sagemaker, s3)
    foreign = f"arn:aws:sagemaker:{REGION}:999999999999:model-package/{GROUP}/1"
    with Stubber(clients.bedrock), Stubber(clients.runtime):
        code = imp.main(["--model-package-arn", foreign, "--region", REGION], session=clients)
    assert code == 2
    err = capsys.readouterr().err
    assert "999999999999" in err and ACCOUNT in err and "account" in err, err
