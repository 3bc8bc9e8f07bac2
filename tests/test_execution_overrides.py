"""`python -m scripts.start_execution` refuses, before anything starts, the override values the
pipeline's steps would refuse, with the rule; tried on the committed definition's parameters."""
from __future__ import annotations

import io
import json

import boto3
import pytest
from moto import mock_aws

from scripts import start_execution
from steps.prepare import main as prepare
from steps.rules import PARAMETER_RULES
from tests.aws_fixtures import ACCOUNT
from tests.conftest import PROJECT_ROOT

PIPELINE = "nova-finqa-sft"
NOVA2_PIPELINE = "nova-finqa-nova2"
DEFINITIONS = {PIPELINE: "definition.json", NOVA2_PIPELINE: "definition-nova_lite_2_0_p5_gpu_lora_sft.json"}


@pytest.fixture(scope="module")
def deployed():
    """The committed definitions as `pipeline.upsert` deploys them (the default recipe, and Nova 2
    Lite LoRA), made once: a SageMaker client costs 0.4 s."""
    with mock_aws():
        client = boto3.client("sagemaker", region_name="us-east-1")
        for name, file in DEFINITIONS.items():
            client.create_pipeline(PipelineName=name, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/pipeline",
                                   PipelineDefinition=(PROJECT_ROOT / "pipeline" / file).read_text())
        yield client


def executions(sagemaker, pipeline: str = PIPELINE) -> list[str]:
    summaries = sagemaker.list_pipeline_executions(PipelineName=pipeline)["PipelineExecutionSummaries"]
    return [summary["PipelineExecutionArn"] for summary in summaries]


def run(sagemaker, *params: str, pipeline: str = PIPELINE) -> tuple[int, str]:
    err = io.StringIO()
    argv = ["--pipeline-name", pipeline, *[item for param in params for item in ("--param", param)]]
    return start_execution.main(argv, sagemaker=sagemaker, out=io.StringIO(), err=err), err.getvalue()


@pytest.mark.parametrize("param, message", [
    ("TrainingRecords=-5", "--param TrainingRecords=-5: -5 must be at least 8, the fewest Nova fine-tuning takes "
                           "(or empty / 'all' for every record)"),
    ("TrainingRecords=abc",
     "--param TrainingRecords=abc: 'abc' is not a whole number (or empty / 'all' for every record)"),
    ("TrainingRecords=5", "5 must be at least 8, the fewest Nova fine-tuning takes"),
    ("EvaluationRecords=0", "--param EvaluationRecords=0: 0 must be at least 1 (or empty / 'all' for every record)"),
    ("AccuracyThreshold=5", "--param AccuracyThreshold=5: 5 is not a fraction from 0 to 1"),
    ("AccuracyThreshold=50", "for 50% write 0.5"),
    ("AccuracyThreshold=-0.1", "-0.1 is not a fraction from 0 to 1"),
    ("MaxTrainingCost=ten", "--param MaxTrainingCost=ten: 'ten' is not an amount in USD"),
    ("MaxTrainingCost=-5", "'-5' must be 0 or more USD"),
    ("ModelApprovalStatus=Approved", "--param ModelApprovalStatus=Approved: an execution does not decide whether its "
                                     "model is approved"),
    ("TrainingInstanceType=ml.t2.medium", "--param TrainingInstanceType=ml.t2.medium: 'ml.t2.medium' is not allowed: "
                                          "TrainingInstanceType is one of ml.g5.12xlarge, ml.g6.12xlarge"),
    ("EvaluationInstanceType=ml.g5.2xlarge", "EvaluationInstanceType is one of"),
    ("Epochs=0", "--param Epochs=0: epochs (parameter Epochs) is 0: it must be a whole number, at least 1"),
    ("Epochs=101", "--param Epochs=101: max_epochs (parameter Epochs) 101 is above 100: "
                   "nova_lite_1_0_g5_g6_12x_gpu_lora_sft takes a whole number, at least 1, at most 100"),
    ("LearningRate=2", "learning_rate (parameter LearningRate) 2.0 is above 1"),
    ("LoraAlpha=100", "lora_alpha (parameter LoraAlpha) 100 is not allowed: nova_lite_1_0_g5_g6_12x_gpu_lora_sft "
                      "takes one of 32, 64, 96, 128, 160, 192"),
    ("MaxLength=1000", "max_length (parameter MaxLength) 1000 is not allowed"),
    ("GlobalBatchSize=8", "global_batch_size (parameter GlobalBatchSize) 8 is not allowed"),
    ("DataLocation=finqa/", "'finqa/' is not an s3://bucket/key URI"),
    ("DataLocation=s3://bucket..name/finqa/", "bucket 'bucket..name' breaks S3's bucket naming rules: "
                                              "it must not have two periods next to each other"),
])
def test_a_value_the_pipeline_would_refuse_starts_nothing(deployed, param, message):
    before = executions(deployed)
    code, err = run(deployed, param)
    assert code == start_execution.EXIT_USAGE
    assert message in err and err.rstrip().endswith("nothing was started")
    assert executions(deployed) == before


def test_every_refused_override_is_listed_at_once(deployed):
    before = executions(deployed)
    code, err = run(deployed, "TrainingRecords=abc", "Epochs=2", "AccuracyThreshold=5", "ModelApprovalStatus=Approvd")
    assert code == start_execution.EXIT_USAGE
    refused = [line.removeprefix("error: ") for line in err.splitlines() if "--param" in line]
    assert [line.split("=")[0] for line in refused] == [
        "--param TrainingRecords", "--param AccuracyThreshold", "--param ModelApprovalStatus"]
    assert executions(deployed) == before


def test_a_parameter_given_twice_is_refused_even_when_the_first_value_was(deployed):
    code, err = run(deployed, "TrainingRecords=-5", "TrainingRecords=100")
    assert code == start_execution.EXIT_USAGE
    assert "--param TrainingRecords=100: TrainingRecords is given twice" in err


@pytest.mark.parametrize("param", ["TrainingRecords=all", "TrainingRecords=8", "EvaluationRecords=1",
                                   "AccuracyThreshold=0", "AccuracyThreshold=1",
                                   "DataLocation=s3://my-bucket/finqa/v2/", "TrainingInstanceType=ml.g6.12xlarge",
                                   "Epochs=3", "LearningRate=2e-5", "LoraAlpha=64", "MaxLength=4096",
                                   "GlobalBatchSize=16", "MaxTrainingCost=25", "MaxTrainingCost=0"])
def test_a_value_within_the_rules_starts_an_execution(deployed, param):
    before = executions(deployed)
    code, err = run(deployed, param)
    assert code == 0, err
    [started] = set(executions(deployed)) - set(before)
    sent = deployed.list_pipeline_parameters_for_execution(PipelineExecutionArn=started)["PipelineParameters"]
    assert sent == [dict(zip(("Name", "Value"), param.split("=", 1)))]


@pytest.mark.parametrize("param, allowed", [
    ("MaxLength=4096", False), ("MaxLength=16384", True), ("GlobalBatchSize=16", False), ("GlobalBatchSize=128", True),
    ("Replicas=2", False), ("Replicas=8", True), ("Epochs=500", True),
    ("TrainingInstanceType=ml.g5.12xlarge", False), ("TrainingInstanceType=ml.p4d.24xlarge", True),
])
def test_recipe_values_are_checked_against_the_deployed_pipelines_own_recipe(deployed, param, allowed):
    """The Nova 2 definition's preparation step renders nova_lite_2_0_p5_gpu_lora_sft: its rules, not Nova 1's."""
    before = executions(deployed, NOVA2_PIPELINE)
    code, err = run(deployed, param, pipeline=NOVA2_PIPELINE)
    assert code == (0 if allowed else start_execution.EXIT_USAGE), err
    assert len(executions(deployed, NOVA2_PIPELINE)) == len(before) + allowed
    if not allowed and not param.startswith("TrainingInstanceType"):
        assert "nova_lite_2_0_p5_gpu_lora_sft takes" in err


@pytest.mark.parametrize("flag, value", [("--max-train-records", "-5"), ("--max-train-records", "abc"),
                                         ("--max-eval-records", "0"), ("--epochs", "0"), ("--lora-alpha", "100"),
                                         ("--max-length", "1000")])
def test_the_preparation_step_refuses_the_same_values_in_the_same_words(deployed, capsys, tmp_path, flag, value):
    parameter = {"--max-train-records": "TrainingRecords", "--max-eval-records": "EvaluationRecords",
                 "--epochs": "Epochs", "--lora-alpha": "LoraAlpha", "--max-length": "MaxLength"}[flag]
    _, err = run(deployed, f"{parameter}={value}")
    rule = err.splitlines()[0].split(f"{parameter}={value}: ", 1)[1]
    try:
        code = prepare([flag, value, "--input-dir", str(tmp_path / "not-read"), "--output-dir", str(tmp_path)])
    except SystemExit as exited:
        code = exited.code
    assert code != 0 and rule in capsys.readouterr().err



def test_every_rule_is_for_a_parameter_the_pipeline_declares():
    definition = json.loads((PROJECT_ROOT / "pipeline" / "definition.json").read_text())
    assert set(PARAMETER_RULES) <= {parameter["Name"] for parameter in definition["Parameters"]}


def _deploy_with_recipe(sagemaker, name: str, recipe_id: str | None) -> None:
    """The committed definition with its preparation step's --recipe changed, or left out."""
    definition = json.loads((PROJECT_ROOT / "pipeline" / "definition.json").read_text())
    [prepare_step] = [step for step in definition["Steps"] if step["Name"] == "PrepareFinQAData"]
    arguments = prepare_step["Arguments"]["AppSpecification"]["ContainerArguments"]
    at = arguments.index("--recipe")
    arguments[at:at + 2] = ["--recipe", recipe_id] if recipe_id else []
    sagemaker.create_pipeline(PipelineName=name, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/pipeline",
                              PipelineDefinition=json.dumps(definition))


def test_a_definition_without_recipe_is_checked_against_the_steps_default(deployed):
    _deploy_with_recipe(deployed, "nova-finqa-before-recipes", None)
    code, err = run(deployed, "LoraAlpha=100", pipeline="nova-finqa-before-recipes")
    assert code == start_execution.EXIT_USAGE and "nova_lite_1_0_g5_g6_12x_gpu_lora_sft takes one of 32" in err


def test_a_recipe_this_checkout_does_not_know_is_left_to_the_step_with_a_warning(deployed):
    _deploy_with_recipe(deployed, "nova-finqa-newer", "nova_lite_3_0_p6_gpu_lora_sft")
    code, err = run(deployed, "LoraAlpha=100", pipeline="nova-finqa-newer")
    assert code == 0
    assert err == ("warning: the deployed pipeline's recipe 'nova_lite_3_0_p6_gpu_lora_sft' is not in this "
                   "checkout's catalog: recipe values are left to its preparation step to check\n")
    assert len(executions(deployed, "nova-finqa-newer")) == 1


def test_an_rft_pipelines_recipe_values_are_checked_by_their_own_rule():
    """The reward Lambda and the data path are the pipeline's arguments: an override of an RFT
    recipe value is checked against the recipe's rule alone, `none` standing for no reasoning."""
    with mock_aws():
        client = boto3.client("sagemaker", region_name="us-east-1")
        client.create_pipeline(PipelineName="rft", RoleArn=f"arn:aws:iam::{ACCOUNT}:role/pipeline",
                               PipelineDefinition=(PROJECT_ROOT / "pipeline" /
                                                   "definition-nova_lite_v2_smtj_p5_p5en_gpu_lora_rft.json").read_text())
        deployed = start_execution.deployed_pipeline(client, "rft")
        assert start_execution.parameter_overrides(["ReasoningEffort=none", "MaxSteps=20"], deployed) == [
            {"Name": "ReasoningEffort", "Value": "none"}, {"Name": "MaxSteps", "Value": "20"}]
        with pytest.raises(start_execution.UsageError, match=r"NumberGeneration=0: number_generation \(parameter "
                                                             r"NumberGeneration\) 0 is (below|not allowed)"):
            start_execution.parameter_overrides(["NumberGeneration=0"], deployed)
