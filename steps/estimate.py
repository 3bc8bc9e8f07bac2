"""What the training job and the two evaluation jobs will cost, estimated before any GPU starts.

The preparation step knows, once it has written the data, how many tokens the training job
will read; with the recipe (epochs, or Nova 2's max_steps, and replicas = instances) and the
instance type, a job takes

    seconds = STARTUP_SECONDS + tokens processed / (tokens per second per instance x instances)

and costs seconds / 3600 x instances x the instance's hourly price. The figures behind it are
below, each with its source; where a figure is this project's own derivation, the rule says so.
They are dated: re-check them when AWS publishes new ones, and correct them when a real job's
billable seconds (`python -m scripts.report`) disagree.

Standard library only: the preparation step runs this inside the processing container.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steps.catalog import TrainingRecipe
from steps.catalog import recipe as catalog_recipe
from steps.package_metadata import REGISTRY_FIELDS
from steps.rules import as_flag, max_training_cost

TABLES_DATE = "2026-12-02"

# --- Throughput ------------------------------------------------------------------------------
# The workshop this project grows from (AWS re:Invent 2025, AIM402) trained Nova Lite 1.0 with
# the LoRA SFT recipe for g5/g6 12xlarge at its defaults (2 epochs, global batch 64, max_length
# 8192) on 1 x ml.g5.12xlarge: 100 FinQA records took about 32.5 minutes, the full training
# split (6,251 records) more than 6 hours. A FinQA training record is 1,824.7 tokens on average
# by steps.finqa.prompts.estimate_tokens (the 100 records of ../shared/finqa/train_100.json as
# steps.prepare writes them: 182,470 tokens). Two points give the two unknowns:
#     startup + 2 x 100 x 1,824.7 / rate = 1,950 s;  startup + 2 x 6,251 x 1,824.7 / rate = 21,600 s
#     -> rate = 1,142.4 tokens/s, startup = 1,630.5 s.
# Both are rounded down (1,140 and 1,630): the 100-record job then takes 32.5 minutes and the
# full split just over 6 hours, on the side of "more than 6 hours".
WORKSHOP_SOURCE = ("AWS re:Invent 2025 workshop AIM402: 100 FinQA records about 32.5 min, 6,251 records "
                   "more than 6 h, Nova Lite 1.0 LoRA SFT, 1 x ml.g5.12xlarge, 2 epochs")
WORKSHOP_RECORDS_AND_SECONDS = ((100, 1_950), (6_251, 21_600))
WORKSHOP_EPOCHS = 2
FINQA_MEAN_TRAINING_TOKENS = 1_824.7
STARTUP_SECONDS = 1_630
"""Container start, model download and load, checkpoint upload: every job pays it once (the
workshop's derivation; taken to be the same for every instance type and evaluation jobs)."""

# AWS's own estimator, aws-samples/amazon-nova-samples
# customization/SageMakerUilts/SageMakerJobsMonitoring/get_training_time_estimate.py (read from
# the fork patreilly/amazon-nova-samples at 339881e0): "baselines adapted from performing
# regression on internal stress tests", SFT only on P5, hours T0 for N0 samples on P5 instances
# at MaxLength tokens, scaled linearly in samples and max_length. Read as tokens per second per
# instance, N0 x MaxLength / (T0 x 3600 x P5): sequences as long as max_length, one epoch (AWS's
# formula has no epochs). Its Nova Lite entry says "No Lora data exists"; it has no g5 or g6.
AWS_ESTIMATOR_SOURCE = ("AWS's Nova training-time estimator (amazon-nova-samples, SageMakerJobsMonitoring/"
                        "get_training_time_estimate.py), SFT on ml.p5.48xlarge")
AWS_ESTIMATOR_SFT = {
    # (model, peft): (T0 hours, N0 samples, P5 instances, MaxLength)
    ("Nova Micro", "full-rank"): (0.45, 5_000, 2, 48_000),
    ("Nova Micro", "lora"): (0.45, 5_000, 2, 64_000),
    ("Nova Lite", "full-rank"): (0.5, 1_500, 4, 48_000),
    ("Nova Pro", "full-rank"): (0.707, 1_500, 6, 48_000),
    ("Nova Pro", "lora"): (0.75, 2_000, 6, 64_000),
}


# DPO: nobody publishes a Nova DPO throughput. Per preference pair, DPO (Rafailov et al. 2023,
# "Direct Preference Optimization", eq. 7) runs the policy forward and backward on both
# responses and the frozen reference model forward on both: per sequence, one forward pass more
# than SFT's forward and backward (about three forward passes' work), so 3/4 of SFT's tokens
# per second, counting both sequences' tokens. This project's derivation, not a measurement.
# Before the pairs exist the preparation step counts every sampled training record as a pair and
# the rejected reply as long as the gold one: an upper bound on the tokens.
DPO_TOKEN_RATE_FACTOR = 0.75
DPO_RULE = ("DPO taken as 3/4 of SFT's tokens per second, both responses of a pair counted (reference model "
            "forward on both besides the policy's forward and backward; this project's derivation from the DPO "
            "paper's loss, not a measurement); pairs counted as every sampled training record, the rejected "
            "reply as long as the gold one (an upper bound)")


@dataclass(frozen=True)
class _Anchor:
    instance_type: str
    tokens_per_second: float
    source: str


def _aws_estimator_rate(hours: float, samples: int, instances: int, max_length: int) -> float:
    return samples * max_length / (hours * 3600 * instances)


ANCHORS: dict[tuple[str, str], _Anchor] = {
    ("Nova Lite", "lora"): _Anchor("ml.g5.12xlarge", 1_140, WORKSHOP_SOURCE + "; this project's derivation"),
    **{key: _Anchor("ml.p5.48xlarge", _aws_estimator_rate(*figures), AWS_ESTIMATOR_SOURCE)
       for key, figures in AWS_ESTIMATOR_SFT.items()},
}
"""Tokens per second per instance for (model, LoRA or full-rank) SFT, on the instance type measured."""

# GPUs per instance (Amazon EC2 accelerated computing instance types,
# https://aws.amazon.com/ec2/instance-types/) and dense BF16 tensor TFLOPS per GPU (NVIDIA's
# data sheets give them with sparsity, twice these: A10 125, L4 121, A100 312, H100 SXM 989,
# H200 989). NVIDIA publishes no A10G data sheet: the A10's figure stands in for it.
GPU_DENSE_BF16_TFLOPS = {"A10G": 125, "L4": 121, "A100": 312, "H100": 989, "H200": 989}
INSTANCE_GPUS = {
    "ml.g5.12xlarge": (4, "A10G"), "ml.g5.24xlarge": (4, "A10G"), "ml.g5.48xlarge": (8, "A10G"),
    "ml.g6.12xlarge": (4, "L4"), "ml.g6.24xlarge": (4, "L4"), "ml.g6.48xlarge": (8, "L4"),
    "ml.p4d.24xlarge": (8, "A100"), "ml.p5.48xlarge": (8, "H100"), "ml.p5en.48xlarge": (8, "H200"),
}
SCALING_RULE = "scaled by GPUs x dense BF16 TFLOPS per GPU (this project's rule)"


def instance_tflops(instance_type: str) -> float | None:
    gpus = INSTANCE_GPUS.get(instance_type)
    return None if gpus is None else gpus[0] * GPU_DENSE_BF16_TFLOPS[gpus[1]]


@dataclass(frozen=True)
class Throughput:
    tokens_per_second: float | None
    """Per instance; None when no figure applies."""
    source: str


def training_throughput(recipe: TrainingRecipe, instance_type: str) -> Throughput:
    """The tokens per second per instance of the recipe's training job on this instance type,
    and where the figure comes from. Rules, in order: a figure for this model, method and
    instance; one for another instance, scaled by compute; for LoRA, the model's full-rank
    figure (LoRA computes no weight gradients: AWS's Nova Micro figures have it 1.33x faster);
    Nova 2 Lite, for which nobody publishes a figure, as Nova Lite 1.0."""
    if recipe.method not in ("sft", "dpo"):
        return Throughput(None, f"no throughput figure for {recipe.method.upper()} recipes: their jobs "
                                "generate and score answers, not a token stream")
    model = recipe.model_name
    notes = []
    if model == "Nova 2 Lite":
        model = "Nova Lite"
        notes.append("Nova 2 Lite taken as Nova Lite 1.0 (no published figure; this project's assumption)")
    anchor = ANCHORS.get((model, recipe.peft))
    if anchor is None and recipe.peft == "lora":
        anchor = ANCHORS.get((model, "full-rank"))
        if anchor is not None:
            notes.append("LoRA taken as fast as full rank (this project's rule)")
    if anchor is None:
        return Throughput(None, f"no throughput figure for {recipe.model_name} {recipe.peft} SFT")
    rate = anchor.tokens_per_second
    source = f"{anchor.source}: {anchor.tokens_per_second:,.1f} tokens/s on {anchor.instance_type}"
    if instance_type != anchor.instance_type:
        target, measured = instance_tflops(instance_type), instance_tflops(anchor.instance_type)
        if target is None:
            return Throughput(None, f"no GPU figures for {instance_type} to scale {anchor.instance_type}'s "
                                    "throughput by")
        rate = rate * target / measured
        source += f"; {SCALING_RULE}: {target:,} / {measured:,}"
    if recipe.method == "dpo":
        rate *= DPO_TOKEN_RATE_FACTOR
        notes.append(DPO_RULE)
    return Throughput(rate, "; ".join([source, *notes]))


# --- Prices ----------------------------------------------------------------------------------
# On-demand USD per instance-hour. AWS's price page (https://aws.amazon.com/sagemaker-ai/pricing/,
# On-Demand, Training) could not be read by this project's tools (its tables are rendered by
# script). The figures are the "SageMaker Hourly Instance Pricing" of AWS's
# foundation-model-benchmarking-tool (aws-samples/foundation-model-benchmarking-tool,
# fmbench/configs/pricing_fallback.yml, last changed 2025-01-26, read at commit 39ce6b9c), which
# lists us-east-1 SageMaker prices without saying whether for hosting or training (the tool
# prices endpoints). Not sourced: every other region, and ml.p5en.48xlarge anywhere. Check the
# page before trusting a budget, and give the current price with --price-table FILE or
# --price-per-hour USD.
PRICE_SOURCE = ("aws-samples/foundation-model-benchmarking-tool fmbench/configs/pricing_fallback.yml "
                "(us-east-1, January 2025; not checked against https://aws.amazon.com/sagemaker-ai/pricing/)")
PRICES_USD_PER_HOUR: dict[str, dict[str, float]] = {
    "us-east-1": {
        "ml.m5.xlarge": 0.23,
        "ml.g5.12xlarge": 7.09, "ml.g5.24xlarge": 10.18, "ml.g5.48xlarge": 20.36,
        "ml.g6.12xlarge": 5.752, "ml.g6.24xlarge": 8.344, "ml.g6.48xlarge": 16.688,
        "ml.p4d.24xlarge": 37.688, "ml.p5.48xlarge": 113.068,
    },
}


# Serverless model customization (SageMaker AI picks and releases the instances): AWS bills it, but
# this project found no published rate it could source. AWS's developer guide ("Serverless model
# customization", customize-model) says instances are provisioned "based on model size and training
# requirements" and names none; the SageMaker AI pricing page (https://aws.amazon.com/sagemaker-ai/pricing/)
# could not be read by this project's tools; AWS's SDK and API model carry no price, only
# `BillableTokenUsage` (training, prefill and sample token counts) for training sessions. So the cost
# is left unknown, and the tokens the job will process are given for whoever has the rate.
SERVERLESS = "serverless"
SERVERLESS_PRICE_SOURCE = (
    "no sourced price for serverless model customization: AWS bills it by tokens (DescribeTrainingJob's "
    "BillableTokenCount, botocore), but no rate per token could be read (https://aws.amazon.com/sagemaker-ai/pricing/, "
    "checked 2026-12-06); the cost is unknown")
SERVERLESS_THROUGHPUT_SOURCE = "serverless: AWS picks the instances, so no throughput figure applies"


class EstimateError(ValueError):
    """An estimate's input cannot be used; the message names it and the fix."""


class BudgetError(Exception):
    """The estimate is above MaxTrainingCost, or cannot be checked against it."""


@dataclass(frozen=True)
class Price:
    usd_per_hour: float | None
    source: str


@dataclass(frozen=True)
class PriceTable:
    """The built-in prices with a file's on top (`--price-table`)."""
    prices: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: PRICES_USD_PER_HOUR)
    source: str = PRICE_SOURCE
    overrides: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    overrides_source: str = ""

    def price(self, region: str | None, instance_type: str) -> Price:
        if not region:
            return Price(None, "no region given (--region), so no price")
        if instance_type in self.overrides.get(region, {}):
            return Price(self.overrides[region][instance_type], self.overrides_source)
        if instance_type in self.prices.get(region, {}):
            return Price(self.prices[region][instance_type], self.source)
        return Price(None, f"no sourced price for {instance_type} in {region} in this project's table "
                           "(give one with --price-table FILE or --price-per-hour USD)")

    @classmethod
    def with_file(cls, path: Path) -> PriceTable:
        """A JSON file {"source": "...", "prices": {"us-east-1": {"ml.g5.12xlarge": 7.09}}} over the built-in table."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise EstimateError(f"--price-table {path}: cannot be read as JSON ({error})") from None
        prices = data.get("prices") if isinstance(data, dict) else None
        source = data.get("source") if isinstance(data, dict) else None
        if not isinstance(source, str) or not source.strip() or not isinstance(prices, dict):
            raise EstimateError(f"--price-table {path}: expected {{\"source\": \"where the prices come from\", "
                                "\"prices\": {\"REGION\": {\"INSTANCE TYPE\": USD per hour}}}")
        for region, table in prices.items():
            if not isinstance(table, dict) or not all(_is_price(v) for v in table.values()):
                raise EstimateError(f"--price-table {path}: prices.{region} must map instance types to "
                                    "USD per hour above 0")
        return cls(overrides=prices, overrides_source=f"{source.strip()} (--price-table {path})")


def _is_price(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


# --- The estimate ----------------------------------------------------------------------------

def _value(recipe: TrainingRecipe, rendered: Mapping[str, Any], name: str) -> Any:
    node: Any = rendered
    for key in recipe.fields[name].paths[0]:
        node = node[key]
    return node


@dataclass(frozen=True)
class JobPlan:
    """What the estimate needs besides the data and the rendered recipe: the recipe, where the
    jobs run, what they cost per hour, and the budget."""
    recipe: TrainingRecipe
    instance_type: str
    evaluation_instance_type: str
    region: str | None
    prices: PriceTable = field(default_factory=PriceTable)
    training_price_per_hour: float | None = None
    max_training_cost: float | None = None

    @property
    def serverless(self) -> bool:
        return self.instance_type == SERVERLESS

    def __post_init__(self) -> None:
        if self.serverless:
            return
        if self.instance_type not in self.recipe.instance_types:
            raise EstimateError(f"--training-instance-type {self.instance_type}: {self.recipe.id} runs on "
                                f"{', '.join(self.recipe.instance_types)} (AWS's recipe catalog)")
        if self.evaluation_instance_type not in self.recipe.evaluation.instance_types:
            raise EstimateError(f"--evaluation-instance-type {self.evaluation_instance_type}: "
                                f"{self.recipe.evaluation.id} runs on "
                                f"{', '.join(self.recipe.evaluation.instance_types)}")

    def instance_count(self, rendered: Mapping[str, Any]) -> int:
        """Nova recipes run one instance per replica (serverless: AWS's choice, counted as one)."""
        if self.serverless:
            return 1
        return int(_value(self.recipe, rendered, "replicas")) if "replicas" in self.recipe.fields else 1

    def _training_price(self) -> Price:
        if self.serverless:
            return Price(None, SERVERLESS_PRICE_SOURCE)
        if self.training_price_per_hour is not None:
            return Price(self.training_price_per_hour, "--price-per-hour")
        return self.prices.price(self.region, self.instance_type)

    def estimate(self, rendered: Mapping[str, Any], *, training_records: int, training_tokens: int,
                 evaluation_records: int, evaluation_tokens: int) -> dict[str, Any]:
        """The estimate as the data report holds it, for the training recipe as rendered. Tokens
        are steps.finqa.prompts.estimate_tokens counts of the records written: training records
        whole, evaluation records' prompts."""
        recipe, count = self.recipe, self.instance_count(rendered)
        if recipe.step_based:
            max_steps = int(_value(recipe, rendered, "max_steps"))
            batch = int(_value(recipe, rendered, "global_batch_size"))
            # Each step reads a global batch of records: the mean record, max_steps x batch times.
            processed = math.ceil(max_steps * batch * training_tokens / training_records)
            schedule: dict[str, Any] = {"max_steps": max_steps, "global_batch_size": batch}
        else:
            epochs = int(_value(recipe, rendered, "max_epochs"))
            # a DPO pair is two sequences, prompt and gold reply, prompt and rejected reply
            processed = epochs * training_tokens * (2 if recipe.method == "dpo" else 1)
            schedule = {"epochs": epochs}
        training = (Throughput(None, SERVERLESS_THROUGHPUT_SOURCE) if self.serverless
                    else training_throughput(recipe, self.instance_type))
        price = self._training_price()
        training_seconds = _seconds(processed, training.tokens_per_second, count)

        # An evaluation job reads each prompt once and writes a short answer. Forward passes
        # alone are about 3x cheaper than training's, generating token by token far slower;
        # taken as the training throughput of the same model (this project's assumption, not a
        # measurement). Two jobs: the fine-tuned model and the base model (a cache hit after
        # the first execution on the same evaluation data, counted anyway).
        if self.serverless:
            evaluation = Throughput(None, SERVERLESS_THROUGHPUT_SOURCE)
            evaluation_price = Price(None, SERVERLESS_PRICE_SOURCE)
        else:
            # DPO adds a third job: the model answers the training questions (their prompts, counted
            # with the gold reply: a little over).
            evaluation = training_throughput(_as_sft(recipe), self.evaluation_instance_type)
            evaluation_price = self.prices.price(self.region, self.evaluation_instance_type)
        evaluation_seconds = _seconds(evaluation_tokens, evaluation.tokens_per_second, 1)
        answering_seconds = (_seconds(training_tokens, evaluation.tokens_per_second, 1)
                             if recipe.method == "dpo" else 0)
        evaluation_total = (None if evaluation_seconds is None or answering_seconds is None
                            else 2 * evaluation_seconds + answering_seconds)
        estimate = {
            "recipe": recipe.id,
            "model": recipe.model_name,
            "method": f"{recipe.peft} {recipe.method}",
            "region": self.region,
            "instance_type": self.instance_type,
            "instance_count": count,
            **schedule,
            "training_records": training_records,
            "training_tokens_processed": processed,
            "tokens_per_second_per_instance": _round(training.tokens_per_second, 1),
            "throughput_source": training.source,
            "startup_seconds": STARTUP_SECONDS,
            "training_seconds": training_seconds,
            "training_hours": _round(_hours(training_seconds), 3),
            "price_per_hour_usd": price.usd_per_hour,
            "price_source": price.source,
            "training_cost_usd": _cost(training_seconds, count, price.usd_per_hour),
            "evaluation_instance_type": self.evaluation_instance_type,
            "evaluation_jobs": 3 if recipe.method == "dpo" else 2,
            "training_answers_seconds": answering_seconds if recipe.method == "dpo" else None,
            "evaluation_records": evaluation_records,
            "evaluation_tokens": evaluation_tokens,
            "evaluation_throughput_source": evaluation.source + "; evaluation taken as fast as training "
                                                                "(this project's assumption)",
            "evaluation_seconds_per_job": evaluation_seconds,
            "evaluation_price_per_hour_usd": evaluation_price.usd_per_hour,
            "evaluation_price_source": evaluation_price.source,
            "evaluation_cost_usd": _cost(evaluation_total, 1, evaluation_price.usd_per_hour),
            "max_training_cost_usd": self.max_training_cost,
            "tables_date": TABLES_DATE,
        }
        estimate["summary"] = summary(estimate)
        estimate["registry"] = {key: "unknown" if estimate[source] is None else str(estimate[source])
                                for key, source in REGISTRY_FIELDS.items()}
        return estimate

    def check_budget(self, estimate: Mapping[str, Any]) -> None:
        """Raise BudgetError when the training estimate is above MaxTrainingCost or cannot be priced."""
        limit = self.max_training_cost
        if limit is None:
            return
        cost = estimate["training_cost_usd"]
        if cost is None:
            unknown = (estimate["price_source"] if estimate["price_per_hour_usd"] is None
                       else estimate["throughput_source"])
            raise BudgetError(
                f"MaxTrainingCost (--max-training-cost) is ${limit:,.2f} but the training job cannot be priced: "
                f"{unknown}. Give a price (--price-table / --price-per-hour) or set MaxTrainingCost to 0 for no limit")
        if cost > limit:
            raise BudgetError(
                f"estimated training cost ${cost:,.2f} is above MaxTrainingCost (--max-training-cost) ${limit:,.2f}: "
                f"{estimate['summary']}. Train on fewer records (TrainingRecords), fewer epochs, another "
                "instance type, or raise MaxTrainingCost (0 = no limit)")


def _as_sft(recipe: TrainingRecipe) -> TrainingRecipe:
    """Generating answers is no DPO: an evaluation job is taken as fast as the model's SFT training."""
    return dataclasses.replace(recipe, method="sft") if recipe.method == "dpo" else recipe


def serverless_estimate(model: str, technique: str, training_type: str, region: str | None, *,
                        training_records: int, training_tokens: int, evaluation_records: int,
                        evaluation_tokens: int, max_training_cost: float | None = None) -> dict[str, Any]:
    """The estimate for serverless customization of an open-weights model, which renders no Nova
    recipe for JobPlan.estimate: the work is counted, the cost and time are unknown (SERVERLESS_PRICE_SOURCE,
    SERVERLESS_THROUGHPUT_SOURCE)."""
    estimate = {
        "model": model,
        "method": f"{training_type} {technique}",
        "platform": SERVERLESS,
        "region": region,
        "instance_type": SERVERLESS,
        "instance_count": 1,
        "training_records": training_records,
        "training_tokens_processed": training_tokens,
        "throughput_source": SERVERLESS_THROUGHPUT_SOURCE,
        "training_hours": None,
        "price_per_hour_usd": None,
        "price_source": SERVERLESS_PRICE_SOURCE,
        "training_cost_usd": None,
        "evaluation_instance_type": SERVERLESS,
        "evaluation_jobs": 2,
        "evaluation_records": evaluation_records,
        "evaluation_tokens": evaluation_tokens,
        "evaluation_seconds_per_job": None,
        "evaluation_price_per_hour_usd": None,
        "evaluation_price_source": SERVERLESS_PRICE_SOURCE,
        "evaluation_cost_usd": None,
        "max_training_cost_usd": max_training_cost,
        "tables_date": TABLES_DATE,
    }
    estimate["summary"] = summary(estimate)
    estimate["registry"] = {key: "unknown" if estimate[source] is None else str(estimate[source])
                            for key, source in REGISTRY_FIELDS.items()}
    return estimate


def _seconds(tokens: int, rate: float | None, instances: int) -> int | None:
    return None if rate is None else round(STARTUP_SECONDS + tokens / (rate * instances))


def _hours(seconds: int | None) -> float | None:
    return None if seconds is None else seconds / 3600


def _cost(seconds: int | None, instances: int, price: float | None) -> float | None:
    return None if seconds is None or price is None else round(seconds / 3600 * instances * price, 2)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def summary(estimate: Mapping[str, Any]) -> str:
    """One line: hours and cost of training, then of evaluation."""
    def money(value: float | None) -> str:
        return "cost unknown" if value is None else f"${value:,.2f}"
    if estimate["instance_type"] == SERVERLESS:
        return (f"serverless training of {estimate['training_tokens_processed']:,} tokens and 2 serverless "
                f"evaluations of {estimate['evaluation_tokens']:,} prompt tokens: cost unknown "
                "(no sourced price for serverless model customization)")
    hours = estimate["training_hours"]
    training = "training time unknown" if hours is None else f"training {hours:.2f} h"
    price = estimate["price_per_hour_usd"]
    at = "" if price is None else f" at ${price:,.3f}".rstrip("0").rstrip(".") + "/h"
    evaluation = estimate["evaluation_seconds_per_job"]
    answering = estimate.get("training_answers_seconds")
    evaluating = ("evaluation time unknown" if evaluation is None
                  else f"evaluation 2 x {evaluation / 3600:.2f} h"
                  + (f" + answering the training questions {answering / 3600:.2f} h" if answering else ""))
    return (f"{training} on {estimate['instance_count']} x {estimate['instance_type']}{at}: "
            f"{money(estimate['training_cost_usd'])}; {evaluating} on {estimate['evaluation_instance_type']}: "
            f"{money(estimate['evaluation_cost_usd'])}")


# --- Flags of steps.prepare ------------------------------------------------------------------

def _price_per_hour(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not _is_price(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a price in USD per hour above 0")
    return value


def add_estimate_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cost estimate (written to the data report; over budget fails the step)")
    group.add_argument("--max-training-cost", type=as_flag(max_training_cost), default=None, metavar="USD",
                       help="fail when the estimated training cost is above this (0 or empty: no limit)")
    group.add_argument("--training-instance-type", default=None, metavar="TYPE",
                       help=f"the training job's instance type (default: the recipe's first); {SERVERLESS} for "
                            "serverless model customization, whose jobs run where AWS puts them")
    group.add_argument("--evaluation-instance-type", default=None, metavar="TYPE",
                       help="the evaluation jobs' instance type (default: the recipe's first training instance "
                            "type if the evaluation recipe runs there, else the evaluation recipe's first)")
    group.add_argument("--region", default=os.environ.get("AWS_REGION"),
                       help="the region whose prices apply (default: $AWS_REGION)")
    group.add_argument("--price-table", type=Path, default=None, metavar="FILE",
                       help='JSON {"source": ..., "prices": {REGION: {TYPE: USD per hour}}} over the built-in table')
    group.add_argument("--price-per-hour", type=_price_per_hour, default=None, metavar="USD",
                       help="the training instance's price, over any table")


def plan_from_args(args: argparse.Namespace) -> JobPlan:
    """The JobPlan for steps.prepare's flags (--recipe among them)."""
    recipe = catalog_recipe(args.recipe)
    instance_type = args.training_instance_type or recipe.instance_types[0]
    evaluation_type = (SERVERLESS if instance_type == SERVERLESS
                       else args.evaluation_instance_type or recipe.evaluation_instance_default)
    prices = PriceTable.with_file(args.price_table) if args.price_table else PriceTable()
    return JobPlan(recipe=recipe, instance_type=instance_type,
                   evaluation_instance_type=evaluation_type, region=args.region or None, prices=prices,
                   training_price_per_hour=args.price_per_hour, max_training_cost=args.max_training_cost)
