"""The serverless gate decides the package the fine-tuning job registered: kept for review, or rejected.

Real FinQA records are prepared and scored as the pipeline does (the generations laid out as a
serverless evaluation job leaves them, uncompressed); the definition's own CheckAccuracy
conditions are evaluated on that evaluation.json, and the branch they choose is run: its
`steps.model_package` command with the definition's arguments, against botocore's Stubber (which
checks the UpdateModelPackage request against the API model).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from pipeline.settings import Settings
from steps import model_package
from tests.conftest import PROJECT_ROOT
from tests.nova_output import jsonl, nova_line

# Each test prepares or scores real FinQA records in a process of its own.
pytestmark = pytest.mark.integration


ROLE = "arn:aws:iam::111122223333:role/NovaFinQAPipelineRole"
PACKAGE = "arn:aws:sagemaker:us-east-1:111122223333:model-package/nova-finqa/7"
CONTAINER = "/opt/ml/processing"


@pytest.fixture(scope="module")
def definition() -> dict:
    from pipeline.definition import build_pipeline

    settings = Settings(region="us-east-1", role_arn=ROLE, bucket="amzn-s3-demo-bucket", platform="serverless",
                        base_model="amazon.nova-lite-v1", technique="sft")
    return json.loads(build_pipeline(settings).definition)


def _scored(tmp_path: Path, sample_finqa: Path, fine_tuned_right: int, base_right: int = 0) -> Path:
    """evaluation.json and data_report.json for a fine-tuned model right on the first N test records
    and the base model on its first `base_right`, from the generations as a serverless evaluation
    job writes them."""
    prepared = tmp_path / "prepared"
    subprocess.run([sys.executable, "-m", "steps.prepare", "--input-dir", str(sample_finqa), "--output-dir",
                    str(prepared), "--training-instance-type", "serverless", "--recipe",
                    "nova_lite_1_0_p5_p4d_gpu_lora_sft", "--region", "us-east-1"],
                   cwd=PROJECT_ROOT, check=True, capture_output=True)
    examples = [json.loads(line) for line in (prepared / "eval" / "gen_qa.jsonl").read_text().splitlines()]
    for who, answers in (("fine-tuned", [e["response"] if i < fine_tuned_right else "Answer: 0"
                                         for i, e in enumerate(examples)]),
                         ("base", [e["response"] if i < base_right else "Answer: 0"
                                   for i, e in enumerate(examples)])):
        folder = tmp_path / who / "nova-finqa-eval" / "output" / "eval_results"
        folder.mkdir(parents=True)
        lines = (nova_line(e, a) for e, a in zip(examples, answers, strict=True))
        (folder / "inference_output.jsonl").write_text(jsonl(lines))
    subprocess.run([sys.executable, "-m", "steps.evaluate", "--predictions", str(tmp_path / "fine-tuned"),
                    "--baseline-predictions", str(tmp_path / "base"), "--eval-data", str(prepared / "eval"),
                    "--output-dir", str(tmp_path / "evaluation"), "--primary-metric", "execution_accuracy"],
                   cwd=PROJECT_ROOT, check=True, capture_output=True)
    return tmp_path


def _value(node, evaluation: dict, defaults: dict):
    """A definition value as the pipeline resolves it at run time, for this test's run."""
    if isinstance(node, dict) and "Std:JsonGet" in node:
        value = evaluation
        for key in node["Std:JsonGet"]["Path"].split("."):
            value = value[key]
        return value
    if isinstance(node, dict) and "Get" in node:
        kind, name = node["Get"].split(".", 1)
        return {"Parameters": lambda: defaults[name],
                "Steps": lambda: PACKAGE if name == "FineTune.OutputModelPackageArn" else f"<{name}>",
                "Execution": lambda: f"<{name}>"}[kind]()
    if isinstance(node, dict) and "Std:Join" in node:
        return node["Std:Join"]["On"].join(str(_value(v, evaluation, defaults)) for v in node["Std:Join"]["Values"])
    return node


def _run_gate(definition: dict, scored: Path, threshold: float | None = None) -> tuple[list[str], list[dict]]:
    """The branch CheckAccuracy takes, and the UpdateModelPackage requests its steps make."""
    defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    if threshold is not None:
        defaults["AccuracyThreshold"] = threshold
    evaluation = json.loads((scored / "evaluation" / "evaluation.json").read_text())
    gate = next(step for step in definition["Steps"] if step["Name"] == "CheckAccuracy")["Arguments"]
    passed = all(_value(c["LeftValue"], evaluation, defaults) >= _value(c["RightValue"], evaluation, defaults)
                 for c in gate["Conditions"] if c["Type"] == "GreaterThanOrEqualTo")
    branch = gate["IfSteps" if passed else "ElseSteps"]
    client = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    requests = []
    client.meta.events.register("provide-client-params.sagemaker.UpdateModelPackage",
                                lambda params, **kwargs: requests.append(dict(params)))
    for step in branch:
        if step["Type"] != "Processing":
            continue
        container_arguments = step["Arguments"]["AppSpecification"]["ContainerArguments"]
        arguments = [str(_value(a, evaluation, defaults)) for a in container_arguments]
        assert arguments[0] == "steps.model_package"
        arguments = [a.replace(f"{CONTAINER}/input/evaluation", str(scored / "evaluation"))
                      .replace(f"{CONTAINER}/input/report", str(scored / "prepared" / "report")) for a in arguments[1:]]
        with Stubber(client) as stub:
            stub.add_response("update_model_package", {"ModelPackageArn": PACKAGE})
            assert model_package.main(arguments, sagemaker=client) == 0
            stub.assert_no_pending_responses()
    return [step["Name"] for step in branch], requests


def test_a_model_that_passes_stays_pending_a_persons_approval_with_its_scores(definition, sample_finqa, tmp_path):
    scored = _scored(tmp_path, sample_finqa, fine_tuned_right=10)
    branch, requests = _run_gate(definition, scored)
    assert branch == ["RecordEvaluation"]
    [request] = requests
    assert request["ModelPackageArn"] == PACKAGE
    assert request["ModelApprovalStatus"] == "PendingManualApproval"
    metadata = request["CustomerMetadataProperties"]
    assert (metadata["accuracy"], metadata["baseline_accuracy"], metadata["eval_records"]) == ("1.0", "0.0", "10")
    assert metadata["recipe"] == "nova_lite_1_0_p5_p4d_gpu_lora_sft" and metadata["platform"] == "serverless"
    assert metadata["base_model"] == "amazon.nova-lite-v1"
    assert metadata["estimated_training_cost_usd"] == "unknown"
    assert "Passed the pipeline's accuracy gate" in request["ApprovalDescription"]
    # What the approval hook and import_to_bedrock check before importing: the gate's three figures.
    from scripts.import_to_bedrock import gate_problem

    assert metadata["accuracy_threshold"] == "0.5"
    assert gate_problem(metadata) is None


def test_a_model_below_the_threshold_is_rejected_with_the_measured_figures(definition, sample_finqa, tmp_path):
    scored = _scored(tmp_path, sample_finqa, fine_tuned_right=3)
    branch, requests = _run_gate(definition, scored)
    assert branch == ["RejectModel", "AccuracyTooLow"]
    [request] = requests
    assert request["ModelApprovalStatus"] == "Rejected"
    assert request["ApprovalDescription"].startswith(
        "Rejected by the pipeline's accuracy gate: FinQA execution_accuracy 0.3 (base model 0.0) on 10 test records")
    assert "AccuracyThreshold 0.5" in request["ApprovalDescription"]
    assert request["CustomerMetadataProperties"]["accuracy"] == "0.3"


def test_a_model_below_the_base_model_is_rejected_even_above_the_threshold(definition, sample_finqa, tmp_path):
    scored = _scored(tmp_path, sample_finqa, fine_tuned_right=6, base_right=7)
    branch, requests = _run_gate(definition, scored, threshold=0.0)
    assert branch == ["RejectModel", "AccuracyTooLow"]
    assert requests[0]["ModelApprovalStatus"] == "Rejected"
    assert "FinQA execution_accuracy 0.6 (base model 0.7)" in requests[0]["ApprovalDescription"]


def test_bad_inputs_are_refused_by_name(tmp_path):
    (tmp_path / "e.json").write_text("{}")
    client = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
    with Stubber(client):  # no response queued: any call would fail
        group_arn = "arn:aws:sagemaker:us-east-1:111122223333:model-package-group/x"
        assert model_package.main(["--model-package-arn", group_arn,
                                   "--evaluation", str(tmp_path / "e.json"), "--data-report", str(tmp_path / "e.json"),
                                   "--verdict", "keep"], sagemaker=client) == 1
        assert model_package.main(["--model-package-arn", PACKAGE, "--evaluation", str(tmp_path / "missing.json"),
                                   "--data-report", str(tmp_path / "e.json"), "--verdict", "reject"],
                                  sagemaker=client) == 1
