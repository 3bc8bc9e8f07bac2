"""Log an execution's scores, estimate and cost to its MLflow run, from inside the processing container.

The scoring step runs on SageMaker's scikit-learn image (Python 3.9), which has no MLflow
client, and today's `mlflow-skinny` (3.x, which `sagemaker-mlflow` pulls in) needs Python 3.10 or
later; installing it in the job would also need network access from it. So this module speaks MLflow's REST API
(`/api/2.0/mlflow/...`, the API every MLflow client uses) with the standard library. For a
SageMaker managed MLflow ARN it does what the `sagemaker-mlflow` plugin (0.5.0) does: the
region's endpoint (`https://{region}.experiments.sagemaker.aws` for a tracking server,
`https://mlflow.sagemaker.{region}.app.aws` for an MLflow app, or
`SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT`), the ARN in a routing header, and a SigV4 signature
(service `sagemaker-mlflow`, or `sagemaker` for an app) made with botocore, which SageMaker's
processing images ship and which finds the job role's credentials; it is imported only then.
An `http(s)://` URI is a plain MLflow server, as in the tests.

The run is the execution's: experiment = the pipeline's name, run = the execution id, the names
the pipeline gives the training and evaluation jobs' MlflowConfig. The earliest run of that
name in the experiment is used (the training job's), or one is created when none exists (the
training job was a cache hit from an earlier execution). Numbers are logged as metrics and
text as tags: both may be logged again when the step is retried, which MLflow's params refuse.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# botocore's CreateTrainingJob MlflowConfig.MlflowResourceArn pattern.
MLFLOW_ARN = re.compile(r"^arn:aws[a-z\-]*:sagemaker:([a-z0-9\-]*):[0-9]{12}:(mlflow-[a-zA-Z-]*)/.+$")
ENDPOINTS = {"mlflow-tracking-server": "https://{region}.experiments.sagemaker.aws",
             "mlflow-app": "https://mlflow.sagemaker.{region}.app.aws"}
ROUTING_HEADERS = {"mlflow-tracking-server": "x-mlflow-sm-tracking-server-arn", "mlflow-app": "x-sm-mlflow-app-arn"}
SIGNING_SERVICES = {"mlflow-tracking-server": "sagemaker-mlflow", "mlflow-app": "sagemaker"}
CUSTOM_ENDPOINT_ENV = "SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT"
TIMEOUT_SECONDS = 30
BILLED_JOBS = ("training", "fine_tuned_evaluation", "base_evaluation", "training_answers")
"""The GPU jobs of an execution; training_answers is DPO's answering of the training questions."""


class TrackingError(Exception):
    """MLflow could not be reached or refused a request; the message says which and why."""


@dataclass(frozen=True)
class MlflowServer:
    """Where requests go, and how they are signed."""
    uri: str
    endpoint: str
    arn: str = ""
    resource_type: str = ""
    region: str = ""

    @classmethod
    def parse(cls, uri: str) -> MlflowServer:
        match = MLFLOW_ARN.match(uri)
        if match:
            region, resource_type = match.groups()
            if resource_type not in ENDPOINTS:
                raise TrackingError(f"--mlflow-tracking-uri {uri}: a {resource_type}, not an MLflow tracking server "
                                    f"or app ({', '.join(ENDPOINTS)})")
            endpoint = os.environ.get(CUSTOM_ENDPOINT_ENV) or ENDPOINTS[resource_type].format(region=region)
            return cls(uri, endpoint.rstrip("/"), uri, resource_type, region)
        if urllib.parse.urlparse(uri).scheme in ("http", "https"):
            return cls(uri, uri.rstrip("/"))
        raise TrackingError(f"--mlflow-tracking-uri {uri!r}: neither a SageMaker MLflow ARN "
                            "(arn:aws:sagemaker:REGION:ACCOUNT:mlflow-tracking-server/NAME) nor an http(s):// URL")

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None,
             query: Mapping[str, str] | None = None) -> dict[str, Any]:
        """One REST call; the decoded JSON answer. RESOURCE_DOES_NOT_EXIST comes back as {}."""
        url = f"{self.endpoint}/api/2.0/mlflow/{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.arn:
            headers = self._signed(method, url, data, headers)
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            text = error.read().decode("utf-8", "replace")
            if error.code == 404 and "RESOURCE_DOES_NOT_EXIST" in text:
                return {}
            raise TrackingError(f"MLflow {self.uri}: {method} {path} answered {error.code}: {text[:500]}") from None
        except (urllib.error.URLError, OSError) as error:
            raise TrackingError(f"MLflow {self.uri}: {method} {path} failed: {error}") from None

    def _signed(self, method: str, url: str, data: bytes | None, headers: dict[str, str]) -> dict[str, str]:
        try:
            import botocore.session
            from botocore.auth import SigV4Auth
            from botocore.awsrequest import AWSRequest
        except ImportError:
            raise TrackingError("logging to a SageMaker MLflow ARN needs botocore to sign requests (SageMaker's "
                                "processing images have it); use an http(s):// tracking URI otherwise") from None
        credentials = botocore.session.get_session().get_credentials()
        if credentials is None:
            raise TrackingError(f"MLflow {self.uri}: no AWS credentials to sign requests with")
        headers = {**headers, ROUTING_HEADERS[self.resource_type]: self.arn}
        request = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(credentials, SIGNING_SERVICES[self.resource_type], self.region).add_auth(request)
        return dict(request.headers.items())


def execution_run(server: MlflowServer, experiment: str, run_name: str) -> str:
    """The id of the execution's run: the earliest named `run_name` in `experiment`, else a new one."""
    found = server.call("GET", "experiments/get-by-name", query={"experiment_name": experiment})
    experiment_id = found.get("experiment", {}).get("experiment_id")
    if experiment_id is None:
        experiment_id = server.call("POST", "experiments/create", {"name": experiment})["experiment_id"]
    quoted = run_name.replace("\\", "\\\\").replace("'", "\\'")
    runs = server.call("POST", "runs/search", {
        "experiment_ids": [experiment_id], "filter": f"attributes.run_name = '{quoted}'",
        "order_by": ["attributes.start_time ASC"], "max_results": 1}).get("runs", [])
    if runs:
        return runs[0]["info"]["run_id"]
    created = server.call("POST", "runs/create", {"experiment_id": experiment_id, "run_name": run_name,
                                                   "start_time": int(time.time() * 1000)})
    return created["run"]["info"]["run_id"]


def log(server: MlflowServer, run_id: str, metrics: Mapping[str, float], tags: Mapping[str, str]) -> None:
    now = int(time.time() * 1000)
    server.call("POST", "runs/log-batch", {
        "run_id": run_id,
        "metrics": [{"key": key, "value": value, "timestamp": now, "step": 0}
                    for key, value in sorted(metrics.items())],
        "tags": [{"key": key, "value": value} for key, value in sorted(tags.items())],
    })


def scores_and_cost(evaluation: Mapping[str, Any], data_report: Mapping[str, Any] | None,
                    billable_seconds: Mapping[str, int]) -> tuple[dict[str, float], dict[str, str]]:
    """What the run records: accuracies, record counts, the estimate, and each job's billable
    seconds and cost (seconds x instances x the estimate's hourly price)."""
    metrics: dict[str, float] = {}
    for name, metric in evaluation["metrics"].items():
        metrics[name] = metric["value"]
    for name, metric in ((evaluation.get("baseline") or {}).get("metrics") or {}).items():
        metrics[f"baseline_{name}"] = metric["value"]
    metrics["eval_records"] = evaluation["counts"]["eval_records"]
    tags = {"primary_metric": str(evaluation.get("primary_metric", ""))}
    estimate = (data_report or {}).get("estimate") or {}
    for split, figures in ((data_report or {}).get("splits") or {}).items():
        metrics[f"{split}_records_written"] = figures["written"]
    for key in ("training_hours", "training_cost_usd", "evaluation_cost_usd", "price_per_hour_usd"):
        if isinstance(estimate.get(key), (int, float)):
            metrics[f"estimated_{key}"] = estimate[key]
    for key in ("recipe", "instance_type", "evaluation_instance_type", "price_source", "summary"):
        if estimate.get(key):
            tags[f"estimate_{key}"] = str(estimate[key])
    prices = {"training": (estimate.get("price_per_hour_usd"), estimate.get("instance_count") or 1)}
    for job in BILLED_JOBS[1:]:
        prices[job] = (estimate.get("evaluation_price_per_hour_usd"), 1)
    total = 0.0
    for job, seconds in billable_seconds.items():
        metrics[f"{job}_billable_seconds"] = seconds
        price, instances = prices[job]
        if isinstance(price, (int, float)):
            metrics[f"{job}_cost_usd"] = round(seconds / 3600 * instances * price, 4)
            total += metrics[f"{job}_cost_usd"]
    if any(f"{job}_cost_usd" in metrics for job in billable_seconds):
        metrics["gpu_cost_usd"] = round(total, 4)
    return {key: float(value) for key, value in metrics.items() if math.isfinite(float(value))}, tags


def set_recipe_fields(rendered: dict[str, Any], tracking_uri: str, experiment: str) -> None:
    """Point a rendered Nova recipe's own MLflow fields at the server: AWS's recipes (Nova 1.0 and
    2.0) carry `run.mlflow_tracking_uri` ("Required for MLFlow") and `run.mlflow_experiment_name`.
    `run.mlflow_run_name` keeps AWS's value: the job's MlflowConfig names the run after the
    execution, and a per-execution value here would make the recipe differ on every execution."""
    run = rendered.get("run", {})
    for field, value in (("mlflow_tracking_uri", tracking_uri), ("mlflow_experiment_name", experiment)):
        if field in run:
            run[field] = value


def add_recipe_tracking_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("MLflow fields of the training recipe (both, or neither)")
    group.add_argument("--mlflow-tracking-uri", default=None, metavar="URI",
                       help="the SageMaker MLflow ARN the training job logs to")
    group.add_argument("--mlflow-experiment", default=None, metavar="NAME", help="the pipeline's name")


def recipe_tracking_from_args(args: argparse.Namespace) -> tuple[str, str] | None:
    if bool(args.mlflow_tracking_uri) != bool(args.mlflow_experiment):
        raise TrackingError("--mlflow-tracking-uri and --mlflow-experiment go together")
    if not args.mlflow_tracking_uri:
        return None
    MlflowServer.parse(args.mlflow_tracking_uri)
    return args.mlflow_tracking_uri, args.mlflow_experiment


def _billable(text: str) -> tuple[str, int]:
    job, separator, seconds = text.partition("=")
    if not separator or job not in BILLED_JOBS:
        raise argparse.ArgumentTypeError(f"{text!r} is not JOB=SECONDS with JOB one of {', '.join(BILLED_JOBS)}")
    try:
        return job, int(float(seconds))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: {seconds!r} is not a number of seconds") from None


def add_tracking_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("MLflow (all three names, or none)")
    group.add_argument("--mlflow-tracking-uri", default=None, metavar="URI",
                       help="a SageMaker MLflow tracking server or app ARN, or an http(s):// MLflow server")
    group.add_argument("--mlflow-experiment", default=None, metavar="NAME", help="the pipeline's name")
    group.add_argument("--mlflow-run-name", default=None, metavar="NAME", help="the execution id")
    group.add_argument("--data-report", type=Path, default=None, metavar="PATH",
                       help="the preparation step's data_report.json (record counts, estimate, prices)")
    group.add_argument("--billable-seconds", type=_billable, action="append", default=[], metavar="JOB=SECONDS",
                       help=f"a job's BillableTimeInSeconds, JOB one of {', '.join(BILLED_JOBS)} (repeatable)")


def server_from_args(args: argparse.Namespace) -> MlflowServer | None:
    """The MLflow server the flags name, or None without them; checked before any scoring."""
    names = (args.mlflow_tracking_uri, args.mlflow_experiment, args.mlflow_run_name)
    if not any(names):
        return None
    if not all(names):
        raise TrackingError("--mlflow-tracking-uri, --mlflow-experiment and --mlflow-run-name go together")
    return MlflowServer.parse(args.mlflow_tracking_uri)


def log_from_args(server: MlflowServer, args: argparse.Namespace, evaluation: Mapping[str, Any]) -> str:
    """Log the scores, estimate and cost to the execution's run; its id."""
    report = None
    if args.data_report is not None:
        try:
            report = json.loads(Path(args.data_report).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise TrackingError(f"--data-report {args.data_report}: cannot be read ({error})") from None
    run_id = execution_run(server, args.mlflow_experiment, args.mlflow_run_name)
    metrics, tags = scores_and_cost(evaluation, report, dict(args.billable_seconds))
    log(server, run_id, metrics, tags)
    return run_id
