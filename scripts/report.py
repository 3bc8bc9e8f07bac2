"""Accuracy of every registered model version against the base model, by training-set size.

    python -m scripts.report [--output-dir DIR] [settings flags]
    python -m scripts.report --from-files [RECORDS=]PATH [[RECORDS=]PATH ...] [--output-dir DIR]

From the Model Registry it lists every version in the group and takes its accuracy from
the package metadata (`accuracy`), else from the evaluation.json its ModelQuality statistics
point at; the training-set size from `train_records` and the recipe from `epochs`,
`learning_rate` and `lora_alpha`; the base model's figure from `baseline_accuracy`, else
from evaluation.json's baseline. `--from-files` reads local evaluation.json files instead,
so it works offline: a PATH is a run's evaluation.json, a folder holding one, or a folder of
runs (every evaluation.json below it, each a run); a folder with none is refused. Prefix a
single run with its training-set size (`100=runs/small/evaluation.json`).

Models side by side: an evaluation.json names the base model it was measured against (`model`,
written by `steps.evaluate --base-model`; a registered version's metadata `base_model`); none
means Nova Lite, as before. Each base model gets its own row and bar, and a fine-tuned version
from another base model than Nova Lite is labelled with it, so Nova and an open-weights model
(Llama, Qwen, GPT-OSS) are read side by side on the same metric.

Writes DIR/accuracy_report.md (a Markdown table) and DIR/accuracy_by_training_size.png (a bar
chart, each fine-tuned bar labelled by its training-set size and recipe). A version without
metrics is listed as "no metrics" with the reason.

From the Model Registry it also prices each version: the estimate its package recorded
(`estimated_training_cost_usd` ...) beside what its execution's jobs were billed
(`pipeline_execution_arn`; scripts/bill.py describes every job), accuracy per dollar, and
DIR/accuracy_by_cost.png, accuracy against what the model cost.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.settings import Settings, SettingsError, add_settings_arguments
from scripts.aws import session_for, split_s3_uri
from scripts.bill import Bill, execution_bill
from steps.estimate import PriceTable

REPORT_NAME = "accuracy_report.md"
CHART_NAME = "accuracy_by_training_size.png"
COST_CHART_NAME = "accuracy_by_cost.png"
CHART_SIZE_INCHES = (8.0, 4.5)
CHART_DPI = 100
DEFAULT_OUTPUT_DIR = Path("out/report")
EVALUATION_FILE = "evaluation.json"
MIN_BAR_PERCENT = 0.8
"""A bar of 0% would be no bar at all, as if the figure were missing: it is drawn this high
(in percentage points), still labelled with its true value."""


class ReportInputError(ValueError):
    """An input of the report cannot be used; the message names it."""


@dataclass(frozen=True)
class Result:
    label: str
    train_records: int | None
    accuracy: float | None
    baseline: float | None = None
    metric: str = ""
    scored: str = ""
    approval: str = ""
    training_job: str = ""
    note: str = ""
    recipe: str = ""
    """The training recipe's values, such as "2 epochs, lr 1e-05, alpha 128", when known."""
    estimate: str = ""
    """What the preparation step estimated, from the package's metadata."""
    bill: Bill | None = None
    billing_note: str = ""
    model: str = ""
    """The base model the version was fine-tuned from, as `--base-model` names it; "" = Nova Lite."""


DEFAULT_MODEL_TITLE = "Nova Lite"


def model_title(model: str) -> str:
    return model or DEFAULT_MODEL_TITLE


def _number(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ReportInputError(f"{what} is {value!r}, not a number") from None
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise ReportInputError(f"{what} is {value!r}, not a fraction from 0 to 1")
    return number


def _records(value: Any, what: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        raise ReportInputError(f"{what} is {value!r}, not a whole number") from None


def figures_from_evaluation(evaluation: Any, source: str) -> dict[str, Any]:
    """accuracy, baseline, metric name and 'correct/total' from an evaluation.json.

    The total, not the scored count, is the denominator of the accuracy: a test record
    without a prediction counts as wrong.
    """
    try:
        metrics = evaluation["metrics"]
        accuracy = _number(metrics["accuracy"]["value"], f"{source} metrics.accuracy.value")
    except (KeyError, TypeError):
        raise ReportInputError(f"{source} has no metrics.accuracy.value (is it steps.evaluate's evaluation.json?)") \
            from None
    metric = metrics["accuracy"].get("metric") or evaluation.get("primary_metric") or ""
    detail = metrics.get(metric) if isinstance(metrics.get(metric), dict) else {}
    scored = f"{detail['correct']}/{detail['total']}" if {"correct", "total"} <= set(detail) else ""
    baseline = None
    baseline_metrics = (evaluation.get("baseline") or {}).get("metrics") or {}
    for name in ("accuracy", metric):
        if isinstance(baseline_metrics.get(name), dict) and "value" in baseline_metrics[name]:
            baseline = _number(baseline_metrics[name]["value"], f"{source} baseline.metrics.{name}.value")
            break
    model = evaluation.get("model") or ""
    if not isinstance(model, str):
        raise ReportInputError(f"{source} model is {model!r}, not a model name")
    return {"accuracy": accuracy, "baseline": baseline, "metric": metric, "scored": scored, "model": model}


def _read_s3_json(s3, uri: str) -> Any:
    try:
        bucket, key = split_s3_uri(uri)
    except ValueError:
        raise ReportInputError(f"statistics location {uri!r} is not an s3:// URI") from None
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except (ClientError, BotoCoreError) as error:
        raise ReportInputError(f"{uri} cannot be read ({error})") from None
    try:
        return json.loads(body)
    except json.JSONDecodeError as error:
        raise ReportInputError(f"{uri} is not JSON ({error})") from None


def result_from_package(package: dict, s3) -> Result:
    metadata = package.get("CustomerMetadataProperties") or {}
    label = f"v{package.get('ModelPackageVersion', '?')}"
    base = Result(label=label, train_records=None, accuracy=None,
                  approval=package.get("ModelApprovalStatus", ""), training_job=metadata.get("training_job", ""),
                  recipe=recipe_label(metadata), model=metadata.get("base_model", ""))
    try:
        base = replace(base, train_records=_records(metadata.get("train_records"), f"{label} train_records"))
        figures: dict[str, Any] = {}
        statistics = (package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics") or {}).get("S3Uri")
        if statistics:
            try:
                figures = figures_from_evaluation(_read_s3_json(s3, statistics), statistics)
            except ReportInputError as error:
                if "accuracy" not in metadata:
                    raise
                figures = {"note": f"statistics unreadable: {error}"}
        elif "accuracy" not in metadata:
            raise ReportInputError("neither an accuracy in its metadata nor ModelQuality statistics")
        accuracy = (_number(metadata["accuracy"], f"{label} accuracy") if "accuracy" in metadata
                    else figures["accuracy"])
        baseline = (_number(metadata["baseline_accuracy"], f"{label} baseline_accuracy")
                    if metadata.get("baseline_accuracy") else figures.get("baseline"))
        return replace(base, accuracy=accuracy, baseline=baseline, metric=figures.get("metric", ""),
                       scored=figures.get("scored", ""), note=figures.get("note", ""))
    except ReportInputError as error:
        return replace(base, note=f"no metrics: {error}")


def recipe_label(metadata: dict) -> str:
    """The recipe values a registered version carries in its metadata, in a few words."""
    parts = [(metadata.get("epochs"), "{} epochs"), (metadata.get("learning_rate"), "lr {}"),
             (metadata.get("lora_alpha"), "alpha {}")]
    return ", ".join(template.format(value) for value, template in parts if value not in (None, ""))


def results_from_registry(sagemaker, s3, group: str, region: str | None = None) -> list[Result]:
    """Every version in the group; with the region, each priced (estimate and bill)."""
    results = []
    paginator = sagemaker.get_paginator("list_model_packages")
    for page in paginator.paginate(ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Ascending"):
        for summary in page.get("ModelPackageSummaryList", []):
            package = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            result = result_from_package(package, s3)
            results.append(with_cost(result, package, sagemaker, region) if region else result)
    return results


def results_from_files(specs: list[str]) -> list[Result]:
    """One result per run, named by its place in the list ("run 1"), never by its folder;
    the file it came from is in its note."""
    runs = [run for spec in specs for run in _runs(spec)]
    results = []
    for number, (train_records, path) in enumerate(runs, start=1):
        label = f"run {number}"
        try:
            evaluation = json.loads(path.read_text(encoding="utf-8"))
            figures = figures_from_evaluation(evaluation, str(path))
        except (OSError, json.JSONDecodeError, ReportInputError) as error:
            results.append(Result(label, train_records, None, note=f"no metrics: {error}"))
            continue
        if figures["model"]:
            label += f" ({figures['model']})"
        results.append(Result(label, train_records, figures["accuracy"], figures["baseline"],
                              figures["metric"], figures["scored"], note=f"from {path}", model=figures["model"]))
    return results


def _runs(spec: str) -> list[tuple[int | None, Path]]:
    """The (training-set size, evaluation.json) of each run a --from-files argument names."""
    size_text, sep, path_text = spec.partition("=")
    if not sep:
        size_text, path_text = "", spec
    train_records = _records(size_text, f"--from-files {spec!r}: the part before '='")
    path = Path(path_text)
    if not path.exists():
        raise ReportInputError(f"--from-files {spec!r}: {path} does not exist; pass a run's {EVALUATION_FILE}, "
                               "the folder holding it, or a folder of such runs")
    if not path.is_dir():
        return [(train_records, path)]
    if (path / EVALUATION_FILE).is_file():
        return [(train_records, path / EVALUATION_FILE)]
    found = sorted(path.rglob(EVALUATION_FILE))
    if not found:
        raise ReportInputError(f"--from-files {spec!r}: the folder holds no {EVALUATION_FILE}; pass a run's "
                               f"{EVALUATION_FILE}, the folder holding it, or a folder of such runs")
    if train_records is not None and len(found) > 1:
        raise ReportInputError(f"--from-files {spec!r}: {len(found)} runs in the folder and one training-set size; "
                               f"give each run its own RECORDS=PATH")
    return [(train_records, run) for run in found]


def _percent(value: float | None) -> str:
    return "no metrics" if value is None else f"{value * 100:.1f}%"


def base_model_results(results: list[Result]) -> list[Result]:
    """Each base model's figure, in the order the models first appear: from the newest of its
    results that measured one."""
    bases = []
    for model in dict.fromkeys(r.model for r in results):
        measured = [r for r in results if r.model == model and r.baseline is not None]
        if not measured:
            continue
        newest = measured[-1]
        others = sorted({round(r.baseline, 6) for r in measured} - {round(newest.baseline, 6)})
        note = f"measured with {newest.label}"
        if others:
            note += "; other runs measured " + ", ".join(_percent(v) for v in others) + " (different eval sets?)"
        bases.append(Result(f"Base {model_title(model)}", 0, newest.baseline, metric=newest.metric, note=note,
                            model=model))
    return bases


def render_markdown(results: list[Result], source: str, chart_written: bool, cost_chart_written: bool = False) -> str:
    bases = base_model_results(results)
    metrics = sorted({r.metric for r in results if r.metric})
    models = list(dict.fromkeys(model_title(r.model) for r in results)) or [DEFAULT_MODEL_TITLE]
    lines = [
        f"# {' vs '.join(models)} on FinQA: accuracy by training-set size",
        "",
        f"Source: {source}. Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.",
        f"Accuracy metric: {', '.join(metrics) or 'as registered (see the metadata key accuracy)'}.",
        "",
        "| Model | Training records | Accuracy | Correct/total | Approval | Training job | Notes |",
        "|---|---:|---:|---:|---|---|---|",
    ]
    rows = bases + results
    for r in rows:
        records = "-" if r.train_records is None else f"{r.train_records:,}"
        cells = [r.label, records, _percent(r.accuracy), r.scored or "-", r.approval or "-",
                 r.training_job or "-", r.note.replace("|", "/") or ""]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if chart_written:
        lines += [f"![accuracy by training-set size]({CHART_NAME})", ""]
    else:
        lines += ["No chart: no version has metrics yet.", ""]
    lines += cost_lines(results, cost_chart_written)
    return "\n".join(lines)


def chart_bars(results: list[Result]) -> list[tuple[str, float, bool]]:
    """(label, accuracy, is_base) for every bar: the base model first, then the fine-tuned
    versions by training-set size (unknown sizes last), each labelled by its size and recipe;
    versions alike in both are told apart by their names in the table."""
    bars = [(f"Base\n{model_title(base.model)}", base.accuracy, True) for base in base_model_results(results)]
    tuned = [r for r in results if r.accuracy is not None]
    tuned.sort(key=lambda r: (r.train_records is None, r.train_records or 0))
    # one recipe value a line: side by side, bars are too narrow for the whole recipe
    labels = ["\n".join(filter(None, [r.model, "size unknown" if r.train_records is None
                                       else f"{r.train_records:,} records", *r.recipe.split(", ")])) for r in tuned]
    for r, label in zip(tuned, labels):
        if labels.count(label) > 1:
            label += f"\n({r.label})"
        bars.append((label, r.accuracy, False))
    return bars


@contextmanager
def _chart(path: Path, title: str) -> Iterator[Any]:
    """Axes for one chart of accuracy (0-100%), saved to `path` once drawn."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=CHART_SIZE_INCHES, dpi=CHART_DPI)
    try:
        yield axes
        axes.set_ylim(0, 100)
        axes.set_ylabel("accuracy on FinQA test (%)")
        axes.set_title(title)
        axes.spines[["top", "right"]].set_visible(False)
        figure.tight_layout()
        figure.savefig(path, dpi=CHART_DPI)
    finally:
        pyplot.close(figure)


def write_chart(results: list[Result], path: Path) -> bool:
    bars = chart_bars(results)
    if not bars:
        return False
    models = " vs ".join(dict.fromkeys(model_title(r.model) for r in results))
    with _chart(path, f"Base {models} vs fine-tuned, by training-set size") as axes:
        positions = range(len(bars))
        values = [value * 100 for _, value, _ in bars]
        colours = ["#9e9e9e" if is_base else "#1f77b4" for _, _, is_base in bars]
        drawn = axes.bar(positions, [max(v, MIN_BAR_PERCENT) for v in values], color=colours)
        axes.bar_label(drawn, labels=[f"{v:.1f}%" for v in values], padding=2)
        axes.set_xticks(list(positions), [label for label, _, _ in bars], fontsize=8)
    return True


def write_report(results: list[Result], output_dir: Path, source: str) -> tuple[Path, Path | None]:
    output_dir.mkdir(parents=True, exist_ok=True)
    chart = output_dir / CHART_NAME
    written = write_chart(results, chart)
    if not written and chart.exists():
        chart.unlink()  # a chart from an earlier report would no longer match the table
    cost_chart = output_dir / COST_CHART_NAME
    cost_written = write_cost_chart(results, cost_chart)
    if not cost_written and cost_chart.exists():
        cost_chart.unlink()
    report = output_dir / REPORT_NAME
    report.write_text(render_markdown(results, source, written, cost_written), encoding="utf-8")
    return report, chart if written else None


# What each version cost: the estimate beside the bill, accuracy per dollar, accuracy against cost.

def estimate_label(metadata: dict) -> str:
    """The preparation step's estimate as the package recorded it, in a few words."""
    def dollars(key: str) -> str:
        value = metadata.get(key)
        return f"${float(value):,.2f}" if value not in (None, "", "unknown") else "unknown"
    if "estimated_training_cost_usd" not in metadata:
        return ""
    hours = metadata.get("estimated_training_hours")
    duration = f" ({float(hours):.2f} h)" if hours not in (None, "", "unknown") else ""
    return (f"training {dollars('estimated_training_cost_usd')}{duration}, "
            f"evaluation {dollars('estimated_evaluation_cost_usd')}")


def metadata_bill(metadata: dict) -> Bill | None:
    """The training job's bill from the package alone (its billable seconds, instances and the
    estimate's price), for when the execution's jobs cannot be described."""
    from scripts.bill import TRAINING, JobCost

    try:
        seconds = int(metadata["training_billable_seconds"])
        count = int(metadata.get("training_instance_count") or 1)
        price = float(metadata["training_price_per_hour_usd"])
    except (KeyError, ValueError):
        return None
    job = JobCost(step="training", kind=TRAINING, job=metadata.get("training_job", ""),
                  instance_type=metadata.get("training_instance_type", ""), instance_count=count,
                  billable_seconds=seconds, price_per_hour_usd=price)
    return Bill(execution_arn=metadata.get("pipeline_execution_arn", ""), jobs=(job,))


def with_cost(result: Result, package: dict, sagemaker, region: str, prices: PriceTable | None = None) -> Result:
    """The result with its estimate and its execution's bill (or, failing that, the training job's)."""
    metadata = package.get("CustomerMetadataProperties") or {}
    result = replace(result, estimate=estimate_label(metadata))
    execution = metadata.get("pipeline_execution_arn")
    if not execution:  # a version registered before the pipeline recorded its execution
        bill = metadata_bill(metadata)
        return replace(result, bill=bill, billing_note="training job only, from the package's metadata" if bill else "")
    try:
        return replace(result, bill=execution_bill(sagemaker, execution, region, prices))
    except (ClientError, BotoCoreError) as error:
        bill = metadata_bill(metadata)
        note = f"jobs not described ({error})" + ("; training job from the package's metadata" if bill else "")
        return replace(result, bill=bill, billing_note=note)


def _dollars(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.2f}"


def accuracy_per_dollar(result: Result) -> float | None:
    """Accuracy points (percent) per USD the model cost."""
    cost = result.bill.model_cost_usd if result.bill else None
    if result.accuracy is None or not cost:
        return None
    return result.accuracy * 100 / cost


def cost_lines(results: list[Result], chart_written: bool) -> list[str]:
    priced = [r for r in results if r.bill is not None or r.estimate or r.billing_note]
    if not priced:
        return []
    lines = ["## Cost", "",
             "The estimate is the preparation step's, before any GPU; the bill is every job of the version's "
             "execution, billable seconds x instances x the price table's hourly price (steps/estimate.py). "
             "The model's cost counts jobs reused from earlier executions (cache hits); the execution's does not.",
             "", "| Model | Estimate | Billed: model | Billed: this execution | Accuracy points per $ | Notes |",
             "|---|---|---:|---:|---:|---|"]
    for r in priced:
        per_dollar = accuracy_per_dollar(r)
        notes = [r.billing_note] + (["unpriced: " + ", ".join(r.bill.unpriced())] if r.bill and r.bill.unpriced() else [])
        lines.append("| " + " | ".join([
            r.label, r.estimate or "-", _dollars(r.bill.model_cost_usd if r.bill else None),
            _dollars(r.bill.execution_cost_usd if r.bill else None),
            "-" if per_dollar is None else f"{per_dollar:,.2f}", "; ".join(filter(None, notes)).replace("|", "/")]) + " |")
    lines += ["", "| Model | Step | Job | Instances | Billable seconds | Cost | Cache hit of |",
              "|---|---|---|---|---:|---:|---|"]
    for r in priced:
        for job in (r.bill.jobs if r.bill else ()):
            seconds = "not billed yet" if job.billable_seconds is None else f"{job.billable_seconds:,}"
            lines.append(f"| {r.label} | {job.step} | {job.job} | {job.instance_count} x {job.instance_type} | "
                         f"{seconds} | {_dollars(job.cost_usd)} | {job.cached_from.rsplit('/', 1)[-1] or '-'} |")
    lines.append("")
    if chart_written:
        lines += [f"![accuracy against cost]({COST_CHART_NAME})", ""]
    return lines


def cost_points(results: list[Result]) -> list[tuple[str, float, float]]:
    """(label, model cost in USD, accuracy) of every version with both."""
    points = []
    for r in results:
        cost = r.bill.model_cost_usd if r.bill else None
        if r.accuracy is not None and cost is not None:
            size = "size unknown" if r.train_records is None else f"{r.train_records:,} records"
            points.append((f"{r.label}, {size}", cost, r.accuracy))
    return points


def write_cost_chart(results: list[Result], path: Path) -> bool:
    points = cost_points(results)
    if not points:
        return False
    with _chart(path, "Accuracy against cost") as axes:
        axes.scatter([cost for _, cost, _ in points], [accuracy * 100 for _, _, accuracy in points],
                     color="#1f77b4", s=60, zorder=3)
        for label, cost, accuracy in points:
            axes.annotate(label, (cost, accuracy * 100), textcoords="offset points", xytext=(6, 6), fontsize=8)
        for base in base_model_results(results):
            axes.axhline(base.accuracy * 100, color="#9e9e9e", linestyle="--", zorder=2)
            axes.annotate(f"base {model_title(base.model)} {base.accuracy * 100:.1f}%", (0, base.accuracy * 100),
                          textcoords="offset points", xytext=(4, 4), fontsize=8, color="#616161")
        axes.set_xlim(0, max(cost for _, cost, _ in points) * 1.25)
        axes.set_xlabel("what the model cost (USD, every job of its execution)")
    return True


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scripts.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR,
                        help=f"where to write {REPORT_NAME} and {CHART_NAME} (default {DEFAULT_OUTPUT_DIR})")
    parser.add_argument("--from-files", nargs="+", metavar="[RECORDS=]PATH",
                        help="local evaluation.json files, run folders or folders of runs instead of the Model Registry")
    add_settings_arguments(parser)
    return parser


def main(argv: list[str] | None = None, *, session=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.from_files:
            results = results_from_files(args.from_files)
            source = "local files " + ", ".join(args.from_files)
        else:
            settings = Settings.resolve(args, required=("region",))
            session = session or session_for(settings)
            results = results_from_registry(session.client("sagemaker"), session.client("s3"),
                                            settings.model_package_group, settings.region)
            source = f"Model Registry group {settings.model_package_group} ({settings.region})"
    except (SettingsError, ReportInputError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as error:
        print(f"error: reading the Model Registry failed: {error}", file=sys.stderr)
        return 1
    if not results:
        print(f"error: nothing to report from {source}: no model versions", file=sys.stderr)
        return 1
    report, chart = write_report(results, args.output_dir, source)
    print(f"wrote {report}" + (f" and {chart}" if chart else " (no chart: no metrics yet)"))
    missing = [r.label for r in results if r.accuracy is None]
    if missing:
        print(f"without metrics: {', '.join(missing)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
