"""Write the gate's evaluation onto a model package a serverless job registered, and its verdict.

    python -m steps.model_package --model-package-arn ARN --evaluation PATH --data-report PATH
        --verdict keep|reject [--approval-status STATUS] [--metadata KEY=VALUE ...] [--region REGION]

A serverless fine-tuning job registers its model package itself (CreateTrainingJob's
ModelPackageConfig), before the pipeline has evaluated it. This step, after the accuracy gate:
- writes the figures onto the package's CustomerMetadataProperties: FinQA execution accuracy of
  the fine-tuned and the base model (`steps.evaluate`'s evaluation.json), the records counted, the
  cost estimate (the data report), and the `--metadata` given (recipe, base model, training job,
  evaluation data ...), under the keys scripts/import_to_bedrock.py and scripts/report.py read;
- `keep` (the gate passed): sets `--approval-status` (PendingManualApproval, the default, leaves
  the decision to a person);
- `reject` (the gate failed): sets Rejected, with the measured figures in ApprovalDescription, so
  that no package of a failed gate looks deployable.

UpdateModelPackage cannot attach ModelMetrics (botocore's model has no such member), so the
figures go into the metadata, with the evaluation's S3 URI (`evaluation_s3_uri`).

Runs in the processing container (boto3 ships with SageMaker's scikit-learn image) and, in tests,
against moto or botocore's Stubber.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from steps import package_metadata as keys

KEEP, REJECT = "keep", "reject"
APPROVAL_STATUSES = ("PendingManualApproval", "Approved")
# botocore: CustomerMetadataProperties keys 1-128, values 1-256 characters of letters, digits,
# spaces and _.:/=+-@; at most 50 entries (CreateModelPackage's documentation).
_NOT_ALLOWED = re.compile(r"[^\w .:/=+\-@]", re.UNICODE)
MAX_VALUE = 256
MAX_DESCRIPTION = 1024
_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/[\w-]+/\d+$")


class PackageError(ValueError):
    """An input of this step is unusable; the message names it."""


def metadata_value(value: Any) -> str:
    text = _NOT_ALLOWED.sub("_", str(value)).strip() or "none"
    return text[:MAX_VALUE]


def _figure(evaluation: Mapping[str, Any], *path: str) -> float | None:
    node: Any = evaluation
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node if isinstance(node, (int, float)) and not isinstance(node, bool) else None


def figures(evaluation: Mapping[str, Any], report: Mapping[str, Any]) -> dict[str, str]:
    """The metadata the evaluation and the data report give."""
    primary = evaluation.get("primary_metric", "execution_accuracy")
    accuracy = _figure(evaluation, "metrics", "accuracy", "value")
    baseline = _figure(evaluation, "baseline", "metrics", primary, "value")
    values: dict[str, Any] = {keys.ACCURACY: accuracy, keys.BASELINE_ACCURACY: baseline, keys.PRIMARY_METRIC: primary}
    for split, key in (("train", keys.TRAIN_RECORDS), ("validation", keys.VALIDATION_RECORDS),
                       ("test", keys.EVAL_RECORDS)):
        values[key] = (report.get("splits", {}).get(split) or {}).get("written")
    values.update((report.get("estimate") or {}).get("registry") or {})
    return {key: metadata_value("unknown" if value is None else value) for key, value in values.items()}


def _description(verdict: str, found: Mapping[str, str], threshold: float | None) -> str:
    measured = (f"FinQA {found[keys.PRIMARY_METRIC]} {found[keys.ACCURACY]} (base model "
                f"{found[keys.BASELINE_ACCURACY]}) on {found[keys.EVAL_RECORDS]} test records")
    if verdict == REJECT:
        text = (f"Rejected by the pipeline's accuracy gate: {measured}; the gate needs at least the "
                f"AccuracyThreshold {threshold if threshold is not None else 'unknown'} and the base model's figure.")
    else:
        text = f"Passed the pipeline's accuracy gate: {measured}; AccuracyThreshold {threshold}."
    return text[:MAX_DESCRIPTION]


def record(sagemaker, package_arn: str, evaluation: Mapping[str, Any], report: Mapping[str, Any], verdict: str,
           approval_status: str = APPROVAL_STATUSES[0], metadata: Mapping[str, str] | None = None,
           threshold: float | None = None) -> dict[str, Any]:
    """The UpdateModelPackage request this verdict makes, after making it."""
    if not _ARN.match(package_arn):
        raise PackageError(f"--model-package-arn {package_arn!r} is not a versioned model package ARN "
                           "(arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>)")
    if verdict not in (KEEP, REJECT):
        raise PackageError(f"--verdict {verdict!r}: choose {KEEP} or {REJECT}")
    if approval_status not in APPROVAL_STATUSES:
        raise PackageError(f"--approval-status {approval_status!r}: choose one of {', '.join(APPROVAL_STATUSES)}")
    found = figures(evaluation, report)
    # The threshold beside the two figures: the approval hook and import_to_bedrock refuse a package
    # without all three (scripts/import_to_bedrock.py gate_problem).
    if threshold is not None:
        found[keys.ACCURACY_THRESHOLD] = metadata_value(threshold)
    properties = {**{key: metadata_value(value) for key, value in (metadata or {}).items()}, **found}
    request = {
        "ModelPackageArn": package_arn,
        "ModelApprovalStatus": "Rejected" if verdict == REJECT else approval_status,
        "ApprovalDescription": _description(verdict, found, threshold),
        "CustomerMetadataProperties": properties,
    }
    sagemaker.update_model_package(**request)
    return request


def _read_json(path: Path, flag: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise PackageError(f"{flag} {path}: cannot be read as JSON ({error})") from None
    if not isinstance(data, dict):
        raise PackageError(f"{flag} {path}: not a JSON object")
    return data


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m steps.model_package", description=__doc__.split("\n")[0])
    parser.add_argument("--model-package-arn", required=True)
    parser.add_argument("--evaluation", type=Path, required=True, help="evaluation.json of steps.evaluate")
    parser.add_argument("--data-report", type=Path, required=True, help="data_report.json of steps.prepare")
    parser.add_argument("--verdict", choices=(KEEP, REJECT), required=True)
    parser.add_argument("--approval-status", default=APPROVAL_STATUSES[0])
    parser.add_argument("--accuracy-threshold", type=float, default=None)
    parser.add_argument("--metadata", type=_pair, action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--region", default=None)
    return parser


def main(argv: Sequence[str] | None = None, sagemaker=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        evaluation = _read_json(args.evaluation, "--evaluation")
        report = _read_json(args.data_report, "--data-report")
        if sagemaker is None:
            import boto3

            sagemaker = boto3.client("sagemaker", region_name=args.region)
        request = record(sagemaker, args.model_package_arn, evaluation, report, args.verdict,
                         approval_status=args.approval_status, metadata=dict(args.metadata),
                         threshold=args.accuracy_threshold)
    except PackageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{args.model_package_arn}: {request['ModelApprovalStatus']}; {request['ApprovalDescription']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
