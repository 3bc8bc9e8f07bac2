"""Accuracy of every registered model version against the base model, by technique and training-set size.

    python -m scripts.report [--output-dir DIR] [settings flags]
    python -m scripts.report --from-files [RECORDS=]PATH [[RECORDS=]PATH ...] [--output-dir DIR]

From the Model Registry it lists every version in the group and takes its accuracy from
the package metadata (`accuracy`), else from the evaluation.json its ModelQuality statistics
point at; the training-set size from `train_records` and the recipe from `epochs`,
`learning_rate` and `lora_alpha`; the base model's figure from `baseline_accuracy`, else
from evaluation.json's baseline. `--from-files` reads local evaluation.json files instead,
so it works offline: a PATH is a run's evaluation.json, a folder holding one, or a folder of
runs (every evaluation.json below it, each a run); a folder with none is refused. Prefix a
single run with its training-set size (`100=runs/small/evaluation.json`). An evaluation.json
may name its base model (`model`, from `steps.evaluate --base-model`): an open-weights model
(docs/open-weights.md) then gets its own base row beside Nova's, its runs labelled with it. A run's folder may also
hold `model_package.json` (its DescribeModelPackage answer, e.g. `aws sagemaker
describe-model-package --model-package-name ARN > model_package.json`): its metadata then gives
the technique, recipe, training-set size and the training job's cost, as from the registry.

Every version is labelled by technique (SFT, DPO, RFT, or SFT -> DPO for training started from
an approved package's checkpoint), training records and recipe. Every accuracy carries its 95%
Wilson score interval (scripts/significance.py), drawn as error bars; the base model is the
reference line. Two models scored on the same test records (each version against the base
model, from the base model's verdicts in per_record.jsonl; two versions whose per_record.jsonl
hold the same records) are compared with McNemar's test, and the report says in words whether
their difference is more than noise. per_record.jsonl is read from beside evaluation.json.

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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.settings import Settings, SettingsError, add_settings_arguments
from scripts.aws import session_for, split_s3_uri
from scripts.bill import Bill, execution_bill
from scripts.significance import McNemar, in_words, mcnemar, wilson_interval
from steps import package_metadata as keys
from steps.catalog import RecipeError
from steps.catalog import recipe as catalog_recipe
from steps.estimate import PriceTable
from steps.recipes import RECIPE_PARAMETERS

REPORT_NAME = "accuracy_report.md"
CHART_NAME = "accuracy_by_training_size.png"
COST_CHART_NAME = "accuracy_by_cost.png"
CHART_SIZE_INCHES = (8.0, 4.5)
CHART_DPI = 100
DEFAULT_OUTPUT_DIR = Path("out/report")
EVALUATION_FILE = "evaluation.json"
PER_RECORD_FILE = "per_record.jsonl"
PACKAGE_FILE = "model_package.json"
PAIRED_METRIC = "execution_accuracy"
"""The verdict the paired tests compare: FinQA's official execution accuracy."""
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
    technique: str = ""
    """SFT, DPO, RFT, SFT -> DPO ..."""
    recipe_id: str = ""
    correct: int | None = None
    total: int | None = None
    baseline_correct: int | None = None
    baseline_total: int | None = None
    verdicts: dict | None = None
    """Record id -> right (execution accuracy), from per_record.jsonl."""
    baseline_verdicts: dict | None = None
    base_model: str = ""
    """The model people name, e.g. Nova Lite, when the recipe is known."""

    @property
    def interval(self) -> tuple[float, float] | None:
        """The 95% Wilson score interval of the accuracy, when its counts are known."""
        return None if not self.total or self.correct is None else wilson_interval(self.correct, self.total)


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
    counted = {"correct", "total"} <= set(detail)
    scored = f"{detail['correct']}/{detail['total']}" if counted else ""
    baseline, baseline_counts = None, (None, None)
    baseline_metrics = (evaluation.get("baseline") or {}).get("metrics") or {}
    for name in ("accuracy", metric):
        if isinstance(baseline_metrics.get(name), dict) and "value" in baseline_metrics[name]:
            baseline = _number(baseline_metrics[name]["value"], f"{source} baseline.metrics.{name}.value")
            found = baseline_metrics[name]
            if {"correct", "total"} <= set(found):
                baseline_counts = (_count(found["correct"]), _count(found["total"]))
            break
    model = evaluation.get("model") or ""
    if not isinstance(model, str):
        raise ReportInputError(f"{source} model is {model!r}, not a model name")
    return {"accuracy": accuracy, "baseline": baseline, "metric": metric, "scored": scored, "model": model,
            "correct": _count(detail["correct"]) if counted else None,
            "total": _count(detail["total"]) if counted else None,
            "baseline_correct": baseline_counts[0], "baseline_total": baseline_counts[1]}


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def verdicts_from_lines(lines: list[str], source: str) -> tuple[dict, dict | None]:
    """Each record's execution-accuracy verdict (right or not) from per_record.jsonl, and the base
    model's where steps.evaluate wrote them (its `baseline`)."""
    verdicts: dict = {}
    baseline: dict | None = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            verdicts[str(row["id"])] = row[PAIRED_METRIC]["verdict"] == "correct"
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ReportInputError(f"{source} line {number}: not a steps.evaluate per-record verdict") from None
        base = row.get("baseline")
        if baseline is not None and isinstance(base, dict) and PAIRED_METRIC in base:
            baseline[str(row["id"])] = base[PAIRED_METRIC] == "correct"
        else:
            baseline = None
    return verdicts, baseline or None


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
                  approval=package.get("ModelApprovalStatus", ""), training_job=metadata.get(keys.TRAINING_JOB, ""),
                  recipe=recipe_label(metadata), technique=technique_label(metadata),
                  recipe_id=metadata.get(keys.RECIPE, ""), base_model=model_name(metadata))
    try:
        base = replace(base, train_records=_records(metadata.get(keys.TRAIN_RECORDS), f"{label} train_records"))
        figures: dict[str, Any] = {}
        statistics = (package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics") or {}).get("S3Uri")
        if statistics:
            try:
                figures = figures_from_evaluation(_read_s3_json(s3, statistics), statistics)
            except ReportInputError as error:
                if keys.ACCURACY not in metadata:
                    raise
                figures = {"note": f"statistics unreadable: {error}"}
        elif keys.ACCURACY not in metadata:
            raise ReportInputError("neither an accuracy in its metadata nor ModelQuality statistics")
        accuracy = (_number(metadata[keys.ACCURACY], f"{label} accuracy") if keys.ACCURACY in metadata
                    else figures["accuracy"])
        baseline = (_number(metadata[keys.BASELINE_ACCURACY], f"{label} baseline_accuracy")
                    if metadata.get(keys.BASELINE_ACCURACY) else figures.get("baseline"))
        counts = _counts_from(figures, metadata, accuracy, baseline)
        result = replace(base, accuracy=accuracy, baseline=baseline, metric=figures.get("metric", ""),
                         scored=figures.get("scored", ""), note=figures.get("note", ""), **counts)
        if statistics and "correct" in figures:
            result = _with_verdicts(result, lambda: _read_s3_lines(s3, _beside(statistics, PER_RECORD_FILE)),
                                    _beside(statistics, PER_RECORD_FILE))
        return result
    except ReportInputError as error:
        return replace(base, note=f"no metrics: {error}")


def _beside(location: str, name: str) -> str:
    return location.rsplit("/", 1)[0] + "/" + name


def _read_s3_lines(s3, uri: str) -> list[str]:
    bucket, key = split_s3_uri(uri)
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8").splitlines()
    except (ClientError, BotoCoreError, UnicodeDecodeError) as error:
        raise ReportInputError(f"{uri} cannot be read ({error})") from None


def _with_verdicts(result: Result, read, source: str) -> Result:
    """The result with its per-record verdicts, or a note saying why the paired tests leave it out."""
    try:
        verdicts, baseline = verdicts_from_lines(read(), source)
    except ReportInputError as error:
        return replace(result, note="; ".join(filter(None, [result.note, f"no paired test: {error}"])))
    return replace(result, verdicts=verdicts, baseline_verdicts=baseline)


def _counts_from(figures: dict, metadata: dict, accuracy: float, baseline: float | None) -> dict:
    """Correct and total for the intervals: evaluation.json's counts, else the metadata's accuracy x eval_records."""
    counts = {key: figures.get(key) for key in ("correct", "total", "baseline_correct", "baseline_total")}
    records = _records(metadata.get(keys.EVAL_RECORDS), "eval_records") if metadata.get(keys.EVAL_RECORDS) else None
    if counts["total"] is None and records:
        counts["correct"], counts["total"] = round(accuracy * records), records
    if counts["baseline_total"] is None and records and baseline is not None:
        counts["baseline_correct"], counts["baseline_total"] = round(baseline * records), records
    return counts


def technique_label(metadata: dict) -> str:
    """How the version was trained: the package's `technique` ("SFT then DPO" shown as SFT -> DPO), else its
    recipe's method."""
    if metadata.get(keys.TECHNIQUE):
        return metadata[keys.TECHNIQUE].replace(" then ", " -> ")
    try:
        return catalog_recipe(metadata.get(keys.RECIPE, "")).method.upper()
    except RecipeError:
        return ""


def model_name(metadata: dict) -> str:
    """The model people name (Nova Lite ...) from the recipe; an open-weights version (no recipe) by
    its hub model (`base_model`), as docs/open-weights.md shows them side by side."""
    try:
        return catalog_recipe(metadata.get(keys.RECIPE, "")).model_name
    except RecipeError:
        return metadata.get("base_model", "")


def recipe_label(metadata: dict) -> str:
    """The recipe values a registered version carries in its metadata, in a few words."""
    parts = [(metadata.get(RECIPE_PARAMETERS[name].dest), template)
             for name, template in (("Epochs", "{} epochs"), ("LearningRate", "lr {}"), ("LoraAlpha", "alpha {}"),
                                    ("Beta", "beta {}"))]
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
    the file it came from is in its note. A file that is not a readable evaluation.json is
    refused (ReportInputError): a local file is the user's to fix, not a run without metrics."""
    runs = [run for spec in specs for run in _runs(spec)]
    results = []
    for number, (train_records, path) in enumerate(runs, start=1):
        label = f"run {number}"
        fix = f"pass the {EVALUATION_FILE} that steps.evaluate wrote, or leave the file out"
        try:
            evaluation = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            raise ReportInputError(f"--from-files: {path} cannot be read ({error}); {fix}") from None
        except json.JSONDecodeError as error:
            raise ReportInputError(f"--from-files: {path} is not JSON ({error}); {fix}") from None
        try:
            figures = figures_from_evaluation(evaluation, str(path))
            package = _package_beside(path)
        except ReportInputError as error:
            raise ReportInputError(f"--from-files: {error}; {fix}") from None
        metadata = package.get("CustomerMetadataProperties") or {}
        model = model_name(metadata) or figures["model"]  # steps.evaluate --base-model names an open model
        if figures["model"]:
            label += f" ({figures['model']})"
        if train_records is None:
            train_records = _records(metadata.get(keys.TRAIN_RECORDS), f"{path.parent / PACKAGE_FILE} train_records")
        bill = metadata_bill(metadata)
        result = Result(label, train_records, figures["accuracy"], figures["baseline"],
                        figures["metric"], figures["scored"], note=f"from {path}",
                        approval=package.get("ModelApprovalStatus", ""),
                        training_job=metadata.get(keys.TRAINING_JOB, ""), recipe=recipe_label(metadata),
                        estimate=estimate_label(metadata), bill=bill,
                        billing_note="training job only, from the package's metadata" if bill else "",
                        technique=technique_label(metadata), recipe_id=metadata.get(keys.RECIPE, ""),
                        base_model=model,
                        **_counts_from(figures, metadata, figures["accuracy"], figures["baseline"]))
        per_record = path.parent / PER_RECORD_FILE
        if per_record.is_file():
            result = _with_verdicts(result, lambda path=per_record: path.read_text(encoding="utf-8").splitlines(),
                                    str(per_record))
        results.append(result)
    return results


def _package_beside(path: Path) -> dict:
    """The run's DescribeModelPackage answer (model_package.json beside its evaluation.json), or {}."""
    package = path.parent / PACKAGE_FILE
    if not package.is_file():
        return {}
    try:
        data = json.loads(package.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ReportInputError(f"{package} is not JSON ({error})") from None
    if not isinstance(data, dict):
        raise ReportInputError(f"{package} is not a DescribeModelPackage answer (a JSON object)")
    return data


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
    """The base model's figure, one per model (Nova Micro, Nova 2 Lite ...): from the newest result of
    that model that measured one."""
    by_model: dict[str, list[Result]] = {}
    for r in results:
        if r.baseline is not None:
            by_model.setdefault(r.base_model, []).append(r)
    bases = []
    for model, measured in by_model.items():
        newest = measured[-1]
        others = sorted({round(r.baseline, 6) for r in measured} - {round(newest.baseline, 6)})
        note = f"measured with {newest.label}"
        if others:
            note += "; other runs measured " + ", ".join(_percent(v) for v in others) + " (different eval sets?)"
        bases.append(Result(f"Base {model or 'Nova Lite'}", 0, newest.baseline, metric=newest.metric, note=note,
                            technique="base model", correct=newest.baseline_correct, total=newest.baseline_total,
                            base_model=model, scored=(f"{newest.baseline_correct}/{newest.baseline_total}"
                                                      if newest.baseline_total else "")))
    return bases


def base_model_result(results: list[Result]) -> Result | None:
    """The base model's figure: from the newest result that measured one."""
    measured = [r for r in results if r.baseline is not None]
    if not measured:
        return None
    return next(b for b in base_model_results(results) if b.base_model == measured[-1].base_model)


def _interval_text(result: Result) -> str:
    interval = result.interval
    return "-" if interval is None else f"{interval[0] * 100:.1f}% to {interval[1] * 100:.1f}%"


def _model_cost(result: Result) -> str:
    cost = result.bill.model_cost_usd if result.bill else None
    return "-" if cost is None else _dollars(cost)


REGISTERED_METRIC = "as registered (see the metadata key accuracy)"
FILES_METRIC = "each file's metrics.accuracy.value (the files name no primary metric)"


def render_markdown(results: list[Result], source: str, chart_written: bool, cost_chart_written: bool = False,
                    unnamed_metric: str = REGISTERED_METRIC) -> str:
    bases = base_model_results(results)
    metrics = sorted({r.metric for r in results if r.metric})
    open_models = [model for model in dict.fromkeys(r.base_model for r in results)
                   if model and not model.startswith("Nova")]
    lines = [
        f"# {' vs '.join(['Nova', *open_models])} on FinQA: accuracy by technique and training-set size",
        "",
        f"Source: {source}. Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        f"Accuracy metric: {', '.join(metrics) or unnamed_metric}. "
        "95% interval: Wilson score interval of correct/total (scripts/significance.py).",
        "",
        "| Model | Training records | Accuracy | Correct/total | 95% interval (Wilson) | Technique | Recipe | "
        "Cost | Approval | Training job | Notes |",
        "|---|---:|---:|---:|---|---|---|---:|---|---|---|",
    ]
    for r in bases + results:
        records = "-" if r.train_records is None else f"{r.train_records:,}"
        recipe = ", ".join(filter(None, [r.recipe_id, r.recipe])) or "-"
        cells = [r.label, records, _percent(r.accuracy), r.scored or "-", _interval_text(r), r.technique or "-",
                 recipe, _model_cost(r), r.approval or "-", r.training_job or "-", r.note.replace("|", "/") or ""]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if chart_written:
        lines += [f"![accuracy by technique and training-set size]({CHART_NAME})", ""]
    else:
        lines += ["No chart: no version has metrics yet.", ""]
    lines += paired_lines(results, bases)
    lines += cost_lines(results, cost_chart_written)
    return "\n".join(lines)


@dataclass(frozen=True)
class Comparison:
    first: str
    second: str
    test: McNemar


def paired_comparisons(results: list[Result], bases: list[Result] | None = None) -> list[Comparison]:
    """McNemar's test for every version against its base model (same records, from its per_record.jsonl),
    and for every two versions whose per_record.jsonl hold the same records."""
    base_labels = {b.base_model: b.label for b in bases or []}
    comparisons = []
    for r in results:
        if r.verdicts and r.baseline_verdicts and set(r.verdicts) == set(r.baseline_verdicts):
            ids = sorted(r.verdicts)
            comparisons.append(Comparison(r.label, base_labels.get(r.base_model, "Base model"), mcnemar(
                [r.verdicts[i] for i in ids], [r.baseline_verdicts[i] for i in ids])))
    with_verdicts = [r for r in results if r.verdicts]
    for index, first in enumerate(with_verdicts):
        for second in with_verdicts[index + 1:]:
            if set(first.verdicts) == set(second.verdicts):
                ids = sorted(first.verdicts)
                comparisons.append(Comparison(first.label, second.label, mcnemar(
                    [first.verdicts[i] for i in ids], [second.verdicts[i] for i in ids])))
    return comparisons


def paired_lines(results: list[Result], bases: list[Result]) -> list[str]:
    comparisons = paired_comparisons(results, bases)
    if not comparisons:
        return []
    names = {r.label: (f"{r.label} ({r.technique})" if r.technique else r.label) for r in results}
    lines = ["## Paired comparisons", "",
             "Two models answered the same test records: McNemar's test on the records only one of them got right "
             f"({PAIRED_METRIC}, per_record.jsonl); the exact binomial test below 25 such records, the "
             "continuity-corrected chi-square test from 25 up. More than noise: p below 0.05.", "",
             "| First | Second | Records | First only right | Second only right | Test | p |",
             "|---|---|---:|---:|---:|---|---:|"]
    for c in comparisons:
        lines.append(f"| {names.get(c.first, c.first)} | {names.get(c.second, c.second)} | {c.test.records} | "
                     f"{c.test.first_only} | {c.test.second_only} | {c.test.method} | {c.test.p_value:.3g} |")
    lines.append("")
    lines += [f"- {in_words(names.get(c.first, c.first), names.get(c.second, c.second), c.test)}"
              for c in comparisons]
    lines.append("")
    return lines


@dataclass(frozen=True)
class _Bar:
    label: str
    value: float
    is_base: bool
    interval: tuple[float, float] | None


def _bars(results: list[Result]) -> list[_Bar]:
    bars = [_Bar(base.label.replace(" ", "\n", 1), base.accuracy, True, base.interval)
            for base in base_model_results(results)]
    tuned = [r for r in results if r.accuracy is not None]
    tuned.sort(key=lambda r: (r.train_records is None, r.train_records or 0))
    # one recipe value a line: side by side, bars are too narrow for the whole recipe
    labels = ["\n".join(filter(None, [r.technique, _recipe_kind(r.recipe_id) or r.base_model,
                                       "size unknown" if r.train_records is None
                                       else f"{r.train_records:,} records", *r.recipe.split(", "),
                                       "" if _model_cost(r) == "-" else _model_cost(r)])) for r in tuned]
    for r, label in zip(tuned, labels):
        if labels.count(label) > 1:
            label += f"\n({r.label})"
        bars.append(_Bar(label, r.accuracy, False, r.interval))
    return bars


def _recipe_kind(recipe_id: str) -> str:
    """The model and LoRA or full rank of a recipe, e.g. Nova Micro LoRA: a recipe id is too long for a bar."""
    try:
        chosen = catalog_recipe(recipe_id)
    except RecipeError:
        return ""
    return f"{chosen.model_name} {'LoRA' if chosen.peft == 'lora' else 'full-rank'}"


def chart_bars(results: list[Result]) -> list[tuple[str, float, bool]]:
    """(label, accuracy, is_base) for every bar: the base model first, then the fine-tuned
    versions by training-set size (unknown sizes last), each labelled by its technique, size,
    recipe and cost; versions alike in all are told apart by their names in the table."""
    return [(bar.label, bar.value, bar.is_base) for bar in _bars(results)]


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
    bars = _bars(results)
    if not bars:
        return False
    with _chart(path, "Base model vs fine-tuned, by technique and training-set size (95% intervals)") as axes:
        positions = range(len(bars))
        values = [bar.value * 100 for bar in bars]
        colours = ["#9e9e9e" if bar.is_base else "#1f77b4" for bar in bars]
        drawn = axes.bar(positions, [max(v, MIN_BAR_PERCENT) for v in values], color=colours)
        axes.bar_label(drawn, labels=[f"{v:.1f}%" for v in values], padding=2, fontsize=8)
        for position, bar in zip(positions, bars):
            if bar.interval is not None:
                low, high = bar.interval
                axes.errorbar(position, bar.value * 100, yerr=[[bar.value * 100 - low * 100],
                                                               [high * 100 - bar.value * 100]],
                              color="#212121", capsize=4, linewidth=1)
        for base in (bar for bar in bars if bar.is_base):  # the reference line: each base model's accuracy
            axes.axhline(base.value * 100, color="#616161", linestyle="--", linewidth=1, zorder=0)
        axes.set_xticks(list(positions), [bar.label for bar in bars], fontsize=7)
    return True


def write_report(results: list[Result], output_dir: Path, source: str,
                 unnamed_metric: str = REGISTERED_METRIC) -> tuple[Path, Path | None]:
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
    report.write_text(render_markdown(results, source, written, cost_written, unnamed_metric), encoding="utf-8")
    return report, chart if written else None


# What each version cost: the estimate beside the bill, accuracy per dollar, accuracy against cost.

def estimate_label(metadata: dict) -> str:
    """The preparation step's estimate as the package recorded it, in a few words."""
    def dollars(key: str) -> str:
        value = metadata.get(key)
        return f"${float(value):,.2f}" if value not in (None, "", "unknown") else "unknown"
    if keys.ESTIMATED_TRAINING_COST_USD not in metadata:
        return ""
    hours = metadata.get(keys.ESTIMATED_TRAINING_HOURS)
    duration = f" ({float(hours):.2f} h)" if hours not in (None, "", "unknown") else ""
    return (f"training {dollars(keys.ESTIMATED_TRAINING_COST_USD)}{duration}, "
            f"evaluation {dollars(keys.ESTIMATED_EVALUATION_COST_USD)}")


def metadata_bill(metadata: dict) -> Bill | None:
    """The training job's bill from the package alone (its billable seconds, instances and the
    estimate's price), for when the execution's jobs cannot be described."""
    from scripts.bill import TRAINING, JobCost

    try:
        seconds = int(metadata[keys.TRAINING_BILLABLE_SECONDS])
        count = int(metadata.get(keys.TRAINING_INSTANCE_COUNT) or 1)
        price = float(metadata[keys.TRAINING_PRICE_PER_HOUR_USD])
    except (KeyError, ValueError):
        return None
    job = JobCost(step="training", kind=TRAINING, job=metadata.get(keys.TRAINING_JOB, ""),
                  instance_type=metadata.get(keys.TRAINING_INSTANCE_TYPE, ""), instance_count=count,
                  billable_seconds=seconds, price_per_hour_usd=price)
    return Bill(execution_arn=metadata.get(keys.PIPELINE_EXECUTION_ARN, ""), jobs=(job,))


def with_cost(result: Result, package: dict, sagemaker, region: str, prices: PriceTable | None = None) -> Result:
    """The result with its estimate and its execution's bill (or, failing that, the training job's)."""
    metadata = package.get("CustomerMetadataProperties") or {}
    result = replace(result, estimate=estimate_label(metadata))
    execution = metadata.get(keys.PIPELINE_EXECUTION_ARN)
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
        unpriced = ["unpriced: " + ", ".join(r.bill.unpriced())] if r.bill and r.bill.unpriced() else []
        notes = [r.billing_note] + unpriced
        lines.append("| " + " | ".join([
            r.label, r.estimate or "-", _dollars(r.bill.model_cost_usd if r.bill else None),
            _dollars(r.bill.execution_cost_usd if r.bill else None),
            "-" if per_dollar is None else f"{per_dollar:,.2f}",
            "; ".join(filter(None, notes)).replace("|", "/")]) + " |")
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
        base = base_model_result(results)
        if base is not None:
            axes.axhline(base.accuracy * 100, color="#9e9e9e", linestyle="--", zorder=2)
            axes.annotate(f"{base.label.lower()} {base.accuracy * 100:.1f}%", (0, base.accuracy * 100),
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
                        help="local evaluation.json files, run folders or folders of runs instead of the "
                             "Model Registry")
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
        print(f"error: reading the Model Registry group {settings.model_package_group} in {settings.region} failed: "
              f"{error}; check --region (AWS_REGION), --model-package-group (NOVA_MODEL_PACKAGE_GROUP) and the "
              "credentials", file=sys.stderr)
        return 1
    if not results:
        print(f"error: nothing to report from {source}: no model versions", file=sys.stderr)
        return 1
    report, chart = write_report(results, args.output_dir, source,
                                 FILES_METRIC if args.from_files else REGISTERED_METRIC)
    print(f"wrote {report}" + (f" and {chart}" if chart else " (no chart: no metrics yet)"))
    missing = [r.label for r in results if r.accuracy is None]
    if missing:
        print(f"without metrics: {', '.join(missing)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
