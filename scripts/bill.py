"""What an execution's jobs were billed: each job's billable seconds and its cost.

A training job (the Nova training and evaluation jobs) reports BillableTimeInSeconds, per
instance (DescribeTrainingJob: "Multiply BillableTimeInSeconds by the number of instances");
a processing job reports none, so its time is ProcessingEndTime - ProcessingStartTime, per
instance. Cost is that time x instances x the hourly price of steps/estimate.py's table for
the region (the same, dated and sourced, prices the estimate used). A step that was a cache
hit ran in an earlier execution: its job is listed, and its cost counted for the model it
produced but not for this execution.

A serverless job (ServerlessJobConfig: serverless model customization, and its evaluation jobs)
has no instances to price: DescribeTrainingJob reports `BillableTokenCount` ("the billable token
count for eligible serverless training jobs", botocore's API model) instead, which is listed; its
cost stays unknown, since no price per token could be sourced (steps/estimate.py,
SERVERLESS_PRICE_SOURCE).
"""
from __future__ import annotations

from dataclasses import dataclass

from steps.estimate import PriceTable

TRAINING, PROCESSING, SERVERLESS = "training", "processing", "serverless"


@dataclass(frozen=True)
class JobCost:
    step: str
    kind: str
    job: str
    instance_type: str
    instance_count: int
    billable_seconds: int | None
    """Per instance; None while the job has not been billed (still running, or never started)."""
    price_per_hour_usd: float | None
    cached_from: str = ""
    """The execution that ran the job, when this step was a cache hit."""
    billable_tokens: int | None = None
    """A serverless job's BillableTokenCount (None for a job on instances, or one not billed yet)."""

    @property
    def cost_usd(self) -> float | None:
        if self.billable_seconds is None or self.price_per_hour_usd is None:
            return None
        return round(self.billable_seconds / 3600 * self.instance_count * self.price_per_hour_usd, 4)


@dataclass(frozen=True)
class Bill:
    execution_arn: str
    jobs: tuple[JobCost, ...]

    def _total(self, jobs: list[JobCost]) -> float | None:
        costs = [job.cost_usd for job in jobs]
        return None if not costs or None in costs else round(sum(costs), 2)

    @property
    def model_cost_usd(self) -> float | None:
        """Every job the model took, cache hits included; None when one cannot be priced."""
        return self._total(list(self.jobs))

    @property
    def execution_cost_usd(self) -> float | None:
        """What this execution itself was billed: cache hits cost it nothing."""
        return self._total([job for job in self.jobs if not job.cached_from])

    def unpriced(self) -> list[str]:
        return [f"{job.step} ({_why_unpriced(job)})" for job in self.jobs if job.cost_usd is None]


def _why_unpriced(job: JobCost) -> str:
    if job.kind == SERVERLESS:
        tokens = "not billed yet" if job.billable_tokens is None else f"{job.billable_tokens:,} billable tokens"
        return f"serverless: {tokens}, no sourced price per token"
    return f"{job.instance_type}: {'not billed yet' if job.billable_seconds is None else 'no price in the table'}"


def _job_name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def execution_bill(sagemaker, execution_arn: str, region: str, prices: PriceTable | None = None) -> Bill:
    """Every job step of the execution (ListPipelineExecutionSteps), described and priced."""
    prices = prices or PriceTable()
    jobs = []
    pages = sagemaker.get_paginator("list_pipeline_execution_steps").paginate(
        PipelineExecutionArn=execution_arn, SortOrder="Ascending")
    for page in pages:
        for step in page["PipelineExecutionSteps"]:
            metadata = step.get("Metadata") or {}
            cached_from = (step.get("CacheHitResult") or {}).get("SourcePipelineExecutionArn", "")
            tokens = None
            if "TrainingJob" in metadata:
                job = sagemaker.describe_training_job(TrainingJobName=_job_name(metadata["TrainingJob"]["Arn"]))
                name, seconds = job["TrainingJobName"], job.get("BillableTimeInSeconds")
                resources = job.get("ResourceConfig")
                if job.get("ServerlessJobConfig") or not resources:
                    kind, instance_type, count = SERVERLESS, "serverless", 1
                    tokens = job.get("BillableTokenCount")
                else:
                    kind, instance_type, count = TRAINING, resources["InstanceType"], resources["InstanceCount"]
            elif "ProcessingJob" in metadata:
                job = sagemaker.describe_processing_job(ProcessingJobName=_job_name(metadata["ProcessingJob"]["Arn"]))
                cluster = job["ProcessingResources"]["ClusterConfig"]
                started, ended = job.get("ProcessingStartTime"), job.get("ProcessingEndTime")
                seconds = None if started is None or ended is None else round((ended - started).total_seconds())
                kind = PROCESSING
                instance_type, count = cluster["InstanceType"], cluster["InstanceCount"]
                name = job["ProcessingJobName"]
            else:
                continue
            price = None if kind == SERVERLESS else prices.price(region, instance_type).usd_per_hour
            jobs.append(JobCost(step=step["StepName"], kind=kind, job=name, instance_type=instance_type,
                                instance_count=count, billable_seconds=seconds, price_per_hour_usd=price,
                                cached_from=cached_from, billable_tokens=tokens))
    return Bill(execution_arn=execution_arn, jobs=tuple(jobs))
