"""The bill after an execution: every job's billable seconds from DescribeTrainingJob and
DescribeProcessingJob (botocore's Stubber, which checks each request and response against the
API model), priced with steps/estimate.py's table, and the report's cost section and chart."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber

from scripts import bill, report
from steps.estimate import PRICES_USD_PER_HOUR
from tests.test_report import BLUE, GREY, _chart_pixels, _count

REGION = "us-east-1"
ACCOUNT = "123456789012"
PIPELINE = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/nova-finqa-sft"
EXECUTION = f"{PIPELINE}/execution/run2"
EARLIER = f"{PIPELINE}/execution/run1"
STARTED = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
PRICE = PRICES_USD_PER_HOUR[REGION]


def training_job(name: str, seconds: int | None, instance_type: str = "ml.g5.12xlarge", count: int = 1) -> dict:
    job = {"TrainingJobName": name, "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{name}",
           "ModelArtifacts": {"S3ModelArtifacts": f"s3://bucket/{name}/output/model.tar.gz"},
           "TrainingJobStatus": "Completed" if seconds is not None else "InProgress",
           "SecondaryStatus": "Completed" if seconds is not None else "Training",
           "StoppingCondition": {"MaxRuntimeInSeconds": 432000}, "CreationTime": STARTED,
           "ResourceConfig": {"InstanceType": instance_type, "InstanceCount": count, "VolumeSizeInGB": 100}}
    if seconds is not None:
        job.update(TrainingTimeInSeconds=seconds, BillableTimeInSeconds=seconds)
    return job


def processing_job(name: str, seconds: int) -> dict:
    return {"ProcessingJobName": name,
            "ProcessingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/{name}",
            "ProcessingJobStatus": "Completed", "CreationTime": STARTED,
            "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                                      "VolumeSizeInGB": 30}},
            "AppSpecification": {
                "ImageUri": f"683313688378.dkr.ecr.{REGION}.amazonaws.com/sagemaker-scikit-learn:1.2-1"},
            "ProcessingStartTime": STARTED, "ProcessingEndTime": STARTED + timedelta(seconds=seconds)}


def step(name: str, kind: str, job_name: str, cached: bool = False) -> dict:
    entry = {"StepName": name, "StepStatus": "Succeeded", "StartTime": STARTED,
             "Metadata": {kind: {"Arn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:"
                                        f"{'training' if kind == 'TrainingJob' else 'processing'}-job/{job_name}"}}}
    if cached:
        entry["CacheHitResult"] = {"SourcePipelineExecutionArn": EARLIER}
    return entry


# One execution of the default pipeline: the base model's answers reused from an earlier one.
JOBS = [
    ("PrepareFinQAData", "ProcessingJob", processing_job("prepare-1", 300), False),
    ("FineTune", "TrainingJob", training_job("sft-1", 2_100), False),
    ("FindCheckpoint", "ProcessingJob", processing_job("checkpoint-1", 120), False),
    ("GenerateFineTunedAnswers", "TrainingJob", training_job("eval-tuned-1", 1_900), False),
    ("GenerateBaseModelAnswers", "TrainingJob", training_job("eval-base-0", 1_800), True),
    ("ScoreAnswers", "ProcessingJob", processing_job("score-1", 90), False),
]


def stub_execution(stubber: Stubber, execution: str = EXECUTION, jobs=JOBS) -> None:
    steps = [step(name, kind, job.get("TrainingJobName") or job["ProcessingJobName"], cached)
             for name, kind, job, cached in jobs]
    steps += [{"StepName": "CheckAccuracy", "StepStatus": "Succeeded", "Metadata": {"Condition": {"Outcome": "True"}}}]
    stubber.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": steps},
                         {"PipelineExecutionArn": execution, "SortOrder": "Ascending"})
    for _, kind, job, _ in jobs:
        if kind == "TrainingJob":
            stubber.add_response("describe_training_job", job, {"TrainingJobName": job["TrainingJobName"]})
        else:
            stubber.add_response("describe_processing_job", job, {"ProcessingJobName": job["ProcessingJobName"]})


@pytest.fixture
def sagemaker():
    client = boto3.client("sagemaker", region_name=REGION)
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_every_job_of_the_execution_is_billed_at_the_tables_prices(sagemaker):
    client, stubber = sagemaker
    stub_execution(stubber)
    result = bill.execution_bill(client, EXECUTION, REGION)
    assert [(j.step, j.kind, j.billable_seconds, j.instance_type) for j in result.jobs] == [
        ("PrepareFinQAData", "processing", 300, "ml.m5.xlarge"), ("FineTune", "training", 2_100, "ml.g5.12xlarge"),
        ("FindCheckpoint", "processing", 120, "ml.m5.xlarge"),
        ("GenerateFineTunedAnswers", "training", 1_900, "ml.g5.12xlarge"),
        ("GenerateBaseModelAnswers", "training", 1_800, "ml.g5.12xlarge"),
        ("ScoreAnswers", "processing", 90, "ml.m5.xlarge")]
    costs = {j.step: j.cost_usd for j in result.jobs}
    assert costs["FineTune"] == round(2_100 / 3600 * 7.09, 4) == 4.1358
    assert costs["PrepareFinQAData"] == round(300 / 3600 * 0.23, 4) == 0.0192
    assert result.jobs[4].cached_from == EARLIER
    gpu = (2_100 + 1_900 + 1_800) / 3600 * PRICE["ml.g5.12xlarge"]
    cpu = (300 + 120 + 90) / 3600 * PRICE["ml.m5.xlarge"]
    assert result.model_cost_usd == round(sum(costs.values()), 2) == round(gpu + cpu, 2) == 11.46
    assert result.execution_cost_usd == round(sum(costs.values()) - costs["GenerateBaseModelAnswers"], 2) == 7.91


def test_instances_multiply_a_training_jobs_billable_seconds(sagemaker):
    client, stubber = sagemaker
    jobs = [("FineTune", "TrainingJob", training_job("sft-p5", 1_000, "ml.p5.48xlarge", 4), False)]
    stub_execution(stubber, jobs=jobs)
    (job,) = bill.execution_bill(client, EXECUTION, REGION).jobs
    assert job.cost_usd == round(1_000 / 3600 * 4 * 113.068, 4)


def test_a_job_not_billed_yet_or_without_a_price_leaves_the_total_unknown_and_says_why(sagemaker):
    client, stubber = sagemaker
    jobs = [("FineTune", "TrainingJob", training_job("sft-running", None), False),
            ("GenerateFineTunedAnswers", "TrainingJob", training_job("eval-p5en", 600, "ml.p5en.48xlarge"), False)]
    stub_execution(stubber, jobs=jobs)
    result = bill.execution_bill(client, EXECUTION, REGION)
    assert result.model_cost_usd is None and result.execution_cost_usd is None
    assert result.unpriced() == ["FineTune (ml.g5.12xlarge: not billed yet)",
                                 "GenerateFineTunedAnswers (ml.p5en.48xlarge: no price in the table)"]


def test_a_serverless_job_lists_its_billable_tokens_and_leaves_its_cost_unknown(sagemaker):
    """Serverless jobs have no instances (no ResourceConfig): DescribeTrainingJob reports BillableTokenCount."""
    client, stubber = sagemaker
    fine_tune, evaluation = training_job("serverless-sft-1", None), training_job("serverless-eval-1", None)
    for job, tokens in ((fine_tune, 2_450_112), (evaluation, None)):
        del job["ResourceConfig"]
        job.update(TrainingJobStatus="Completed", SecondaryStatus="Completed",
                   ServerlessJobConfig={"BaseModelArn": f"arn:aws:sagemaker:{REGION}:aws:hub-content/"
                                                        "SageMakerPublicHub/Model/meta-textgeneration-llama-3-2-1b-instruct",
                                        "JobType": "FineTuning", "CustomizationTechnique": "SFT", "Peft": "LORA"})
        if tokens:
            job["BillableTokenCount"] = tokens
    stub_execution(stubber, jobs=[("FineTune", "TrainingJob", fine_tune, False),
                                  ("GenerateFineTunedAnswers", "TrainingJob", evaluation, False)])
    result = bill.execution_bill(client, EXECUTION, REGION)
    assert [job.kind for job in result.jobs] == ["serverless", "serverless"]
    assert result.jobs[0].billable_tokens == 2_450_112 and result.model_cost_usd is None
    assert result.unpriced() == [
        "FineTune (serverless: 2,450,112 billable tokens, no sourced price per token)",
        "GenerateFineTunedAnswers (serverless: not billed yet, no sourced price per token)"]


def package(version: int, accuracy: float, execution: str | None, records: int) -> dict:
    metadata = {"train_records": str(records), "accuracy": str(accuracy), "baseline_accuracy": "0.25",
                "training_job": f"sft-{version}", "estimated_training_hours": "0.583",
                "estimated_training_cost_usd": "4.13", "estimated_evaluation_cost_usd": "7.0",
                "training_price_per_hour_usd": "7.09", "training_instance_type": "ml.g5.12xlarge",
                "training_instance_count": "1", "training_billable_seconds": "3600"}
    if execution:
        metadata["pipeline_execution_arn"] = execution
    return {"ModelPackageName": "nova-finqa", "ModelPackageGroupName": "nova-finqa", "ModelPackageVersion": version,
            "ModelPackageArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/nova-finqa/{version}",
            "CreationTime": STARTED, "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
            "ModelApprovalStatus": "PendingManualApproval", "CustomerMetadataProperties": metadata}


class _Session:
    def __init__(self, sagemaker):
        self._sagemaker = sagemaker

    def client(self, name):
        return self._sagemaker if name == "sagemaker" else boto3.client(name, region_name=REGION)


def test_the_report_shows_estimate_bill_and_accuracy_per_dollar_and_charts_accuracy_against_cost(sagemaker, tmp_path):
    client, stubber = sagemaker
    packages = [package(1, 0.5, EXECUTION, 100), package(2, 0.75, None, 6_251)]
    stubber.add_response("list_model_packages", {"ModelPackageSummaryList": [
        {"ModelPackageGroupName": "nova-finqa", "ModelPackageVersion": p["ModelPackageVersion"],
         "ModelPackageArn": p["ModelPackageArn"], "CreationTime": STARTED, "ModelPackageStatus": "Completed"}
        for p in packages]},
        {"ModelPackageGroupName": "nova-finqa", "SortBy": "CreationTime", "SortOrder": "Ascending"})
    stubber.add_response("describe_model_package", packages[0], {"ModelPackageName": packages[0]["ModelPackageArn"]})
    stub_execution(stubber)
    stubber.add_response("describe_model_package", packages[1], {"ModelPackageName": packages[1]["ModelPackageArn"]})
    assert report.main(["--output-dir", str(tmp_path), "--region", REGION], session=_Session(client)) == 0
    text = (tmp_path / report.REPORT_NAME).read_text()
    cost = text[text.index("## Cost"):]
    # v1: the whole execution was described ($11.46 for the model, $7.91 for this execution);
    # v2 predates pipeline_execution_arn: its training job alone, from the package (1 h at $7.09).
    assert "| v1 | training $4.13 (0.58 h), evaluation $7.00 | $11.46 | $7.91 | 4.36 |" in cost
    assert ("| v2 | training $4.13 (0.58 h), evaluation $7.00 | $7.09 | $7.09 | 10.58 | "
            "training job only, from the package's metadata |") in cost
    assert "| v1 | GenerateBaseModelAnswers | eval-base-0 | 1 x ml.g5.12xlarge | 1,800 | $3.54 | run1 |" in cost
    assert report.COST_CHART_NAME in cost
    pixels = _chart_pixels(tmp_path / report.COST_CHART_NAME)
    assert _count(pixels, BLUE) > 50 and _count(pixels, GREY) > 50  # two points and the base model's line


def test_a_model_whose_cost_is_unknown_has_no_point_and_no_accuracy_per_dollar():
    unbilled = bill.Bill(EXECUTION, (bill.JobCost("FineTune", bill.TRAINING, "sft", "ml.g5.12xlarge", 1, None, 7.09),))
    result = report.Result("v1", 100, 0.5, bill=unbilled)
    assert report.cost_points([result]) == [] and report.accuracy_per_dollar(result) is None


def test_a_version_whose_jobs_cannot_be_described_falls_back_to_its_metadata(sagemaker):
    client, stubber = sagemaker
    stubber.add_client_error("list_pipeline_execution_steps", "AccessDeniedException", "not allowed")
    result = report.with_cost(report.Result("v1", 100, 0.5), package(1, 0.5, EXECUTION, 100), client, REGION)
    assert result.bill.model_cost_usd == 7.09
    assert "jobs not described" in result.billing_note and "AccessDeniedException" in result.billing_note
