"""SFT -> DPO: training from an approved package's checkpoint. The package is read with
DescribeModelPackage (botocore's Stubber checks each request and response against SageMaker's
API model), checked, and the definition built from it starts every job from its checkpoint."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from pipeline.checks import definition_problems
from pipeline.settings import Settings, SettingsError
from pipeline.source_model import SourceModelError, describe_source_model
from steps.catalog import recipe
from tests.conftest import PROJECT_ROOT
from tests.test_pipeline import EXAMPLE, EXAMPLE_FLAGS, steps_by_name

DPO_RECIPE = "nova_micro_1_0_g5_g6_12x_gpu_lora_dpo"
SFT_RECIPE = "nova_micro_1_0_g5_g6_12x_gpu_lora_sft"
PACKAGE = "arn:aws:sagemaker:us-east-1:111122223333:model-package/nova-finqa/3"
CHECKPOINT = "s3://customer-escrow-111122223333-smtj-a1b2c3/nova-finqa-sft-2026-12-01-10-00-00-000/step_50"


def package(**changes) -> dict:
    """DescribeModelPackage's answer for a package the pipeline registered after a Nova Micro LoRA SFT run."""
    metadata = {"recipe": SFT_RECIPE, "base_model": "nova-micro/prod", "checkpoint_s3_uri": CHECKPOINT,
                "technique": "SFT", "accuracy": "0.61"}
    metadata.update(changes.pop("metadata", {}))
    metadata = {key: value for key, value in metadata.items() if value is not None}
    answer = {"ModelPackageName": "nova-finqa", "ModelPackageGroupName": "nova-finqa", "ModelPackageVersion": 3,
              "ModelPackageArn": PACKAGE, "CreationTime": "2026-12-01T12:00:00Z", "ModelPackageStatus": "Completed",
              "ModelPackageStatusDetails": {"ValidationStatuses": []},
              "ModelApprovalStatus": "Approved", "CustomerMetadataProperties": metadata}
    answer.update(changes)
    return answer


def described(answer: dict, recipe_id: str = DPO_RECIPE):
    client = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(client) as stubber:
        stubber.add_response("describe_model_package", answer, {"ModelPackageName": PACKAGE})
        source = describe_source_model(client, PACKAGE, "nova-finqa", recipe(recipe_id))
        stubber.assert_no_pending_responses()
    return source


def test_an_approved_package_of_the_group_gives_its_checkpoint():
    source = described(package())
    assert (source.package_arn, source.checkpoint, source.technique) == (PACKAGE, CHECKPOINT, "SFT")
    assert source.technique_after(recipe(DPO_RECIPE)) == "SFT then DPO"


@pytest.mark.parametrize("answer, message", [
    (package(ModelApprovalStatus="PendingManualApproval"), "approval status is PendingManualApproval"),
    (package(ModelApprovalStatus="Rejected"), "only an Approved package"),
    (package(ModelPackageGroupName="other-group"), "belongs to the group 'other-group'"),
    (package(metadata={"checkpoint_s3_uri": None}), "no checkpoint_s3_uri"),
    (package(metadata={"base_model": "nova-lite/prod", "recipe": "nova_lite_1_0_g5_g6_12x_gpu_lora_sft"}),
     "keeps the model type"),
    (package(metadata={"recipe": "nova_micro_1_0_g5_g6_48x_gpu_sft"}), "keeps the training technique"),
])
def test_a_package_that_cannot_be_trained_from_is_refused_saying_why(answer, message):
    with pytest.raises(SourceModelError, match=message):
        described(answer)


def test_rft_recipes_do_not_start_from_a_package():
    client = boto3.client("sagemaker", region_name="us-east-1")
    with pytest.raises(SourceModelError, match="RFT recipe"):
        describe_source_model(client, PACKAGE, "nova-finqa", recipe("nova_lite_v2_smtj_p5_p5en_gpu_lora_rft"))


@pytest.mark.parametrize("arn, message", [
    ("arn:aws:sagemaker:us-east-1:111122223333:model-package/nova-finqa", "versioned model package ARN"),
    ("arn:aws:sagemaker:us-east-1:111122223333:model-package/other/2", "not of --model-package-group"),
    ("arn:aws:sagemaker:us-west-2:111122223333:model-package/nova-finqa/2", "not in --region us-east-1"),
])
def test_the_setting_is_checked_before_any_call(arn, message):
    with pytest.raises(SettingsError, match=message):
        Settings.resolve(environ={"AWS_REGION": "us-east-1", "NOVA_ROLE_ARN": EXAMPLE.role_arn,
                                  "NOVA_BUCKET": EXAMPLE.bucket, "NOVA_SOURCE_MODEL_PACKAGE": arn})


@pytest.fixture(scope="module")
def from_package():
    from pipeline.definition import build_pipeline

    settings = dataclasses.replace(EXAMPLE, recipe=DPO_RECIPE, source_model_package=PACKAGE)
    return build_pipeline(settings, described(package()))


def test_the_sft_to_dpo_definition_starts_every_job_from_the_packages_checkpoint(from_package):
    definition = json.loads(from_package.definition)
    assert definition_problems(from_package.definition) == []  # botocore's model of each job's API call
    steps = steps_by_name(definition)
    # AWS's launcher turns an s3:// model_name_or_path into base_model_location, in place of base_model
    for name in ("FineTune", "GenerateTrainingAnswers"):
        hyperparameters = steps[name]["Arguments"]["HyperParameters"]
        assert hyperparameters["base_model_location"] == CHECKPOINT and "base_model" not in hyperparameters
    assert steps["FineTune"]["DisplayName"] == "Fine-tune Nova Micro (LoRA SFT then DPO)"
    # the training recipe is rendered with the checkpoint as its model
    prepare = steps["PrepareFinQAData"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert prepare[prepare.index("--model-name-or-path") + 1] == CHECKPOINT
    # the training answers come from the source model: its own evaluation recipe, uploaded beside the code
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
                for c in steps["GenerateTrainingAnswers"]["Arguments"]["InputDataConfig"]}
    [source_recipe] = [a for a in from_package.uploads if channels["recipe"].endswith(a.key.rsplit("/", 1)[0] + "/")]
    assert yaml.safe_load(source_recipe.data)["run"]["model_name_or_path"] == CHECKPOINT
    # the test-set baseline stays the base model: the gate and the report compare with it
    assert steps["GenerateBaseModelAnswers"]["Arguments"]["HyperParameters"]["base_model"] == "nova-micro/prod"
    metadata = steps["RegisterModel"]["Arguments"]["CustomerMetadataProperties"]
    assert metadata["source_model_package_arn"] == PACKAGE
    assert metadata["technique"] == "SFT then DPO"


def test_sft_can_start_from_a_package_too():
    from pipeline.definition import build_pipeline

    settings = dataclasses.replace(EXAMPLE, recipe=SFT_RECIPE, source_model_package=PACKAGE)
    built = build_pipeline(settings, described(package(), SFT_RECIPE))
    steps = steps_by_name(json.loads(built.definition))
    assert steps["FineTune"]["Arguments"]["HyperParameters"]["base_model_location"] == CHECKPOINT
    assert steps["RegisterModel"]["Arguments"]["CustomerMetadataProperties"]["technique"] == "SFT then SFT"


def test_upsert_reads_the_package_and_refuses_one_pending_approval(monkeypatch, capsys):
    from pipeline import upsert

    client = boto3.client("sagemaker", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_response("describe_model_package", package(ModelApprovalStatus="PendingManualApproval"),
                         {"ModelPackageName": PACKAGE})
    monkeypatch.setattr(upsert, "sagemaker_client", lambda settings: client)
    with stubber:
        code = upsert.main(["--dry-run", *EXAMPLE_FLAGS, "--recipe", DPO_RECIPE, "--source-model-package", PACKAGE])
    assert code == 2
    assert "approval status is PendingManualApproval" in capsys.readouterr().err


@pytest.mark.integration
def test_prepare_renders_the_training_recipe_from_the_checkpoint(tmp_path, sample_finqa):
    command = [sys.executable, "-m", "steps.prepare", "--input-dir", str(sample_finqa), "--recipe", DPO_RECIPE]
    for name, extra in (("base", []), ("source", ["--model-name-or-path", CHECKPOINT])):
        subprocess.run([*command, "--output-dir", str(tmp_path / name), *extra], cwd=PROJECT_ROOT, check=True,
                       capture_output=True, text=True)
    base, source = (yaml.safe_load((tmp_path / name / "recipe" / "recipe.yaml").read_text())
                    for name in ("base", "source"))
    assert base["run"]["model_name_or_path"] == "nova-micro/prod"
    assert source["run"]["model_name_or_path"] == CHECKPOINT
    source["run"]["model_name_or_path"] = "nova-micro/prod"
    assert source == base
    refused = subprocess.run([*command, "--output-dir", str(tmp_path / "x"), "--model-name-or-path", "nova-micro/prod"],
                             cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert refused.returncode == 2 and "not the s3:// path of a Nova checkpoint" in refused.stderr
