"""The scoring step logs scores, estimate and cost to the execution's MLflow run: tested against
a real `mlflow server` on 127.0.0.1 started here, read back with MLflow's own client, and (for a
SageMaker MLflow ARN) the signed request checked on a listener of our own."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from steps import tracking
from tests.conftest import PROJECT_ROOT, _free_port
from tests.nova_output import nova_line
from tests.test_evaluate import write_predictions

# Every test here starts a process or a server, or reads a fixture that does.
pytestmark = pytest.mark.integration

EXPERIMENT = "nova-finqa-sft"
ARN = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/team-server"
SERVER_START_SECONDS = 240


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """`mlflow server` on 127.0.0.1 with a SQLite store; yields its URL."""
    folder = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    environment = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
         "--default-artifact-root", str(folder / "artifacts")],
        cwd=folder, env=environment, stdout=subprocess.DEVNULL, stderr=(folder / "server.log").open("w"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_SECONDS
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("mlflow server did not start: " + (folder / "server.log").read_text()[-2000:])
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def prepared(shared_finqa, tmp_path_factory):
    """The preparation step's outputs for the shared FinQA records, with the estimate priced for us-east-1."""
    output = tmp_path_factory.mktemp("prepared")
    subprocess.run([sys.executable, "-m", "steps.prepare", "--input-dir", str(shared_finqa), "--output-dir",
                    str(output), "--region", "us-east-1"], cwd=PROJECT_ROOT, check=True, capture_output=True)
    return output


@pytest.fixture(scope="module")
def gold_predictions(prepared, tmp_path_factory):
    examples = [json.loads(line) for line in (prepared / "eval/gen_qa.jsonl").read_text().splitlines()]
    folder = tmp_path_factory.mktemp("predictions")
    model = write_predictions(folder / "model.jsonl", [nova_line(e, e["response"]) for e in examples])
    base = write_predictions(folder / "base.jsonl", [nova_line(e, "Answer: 0") for e in examples])
    return model, base


def score(prepared, predictions, output: Path, *extra: str, environment: dict | None = None):
    model, base = predictions
    return subprocess.run(
        [sys.executable, "-m", "steps.evaluate", "--predictions", str(model), "--baseline-predictions", str(base),
         "--eval-data", str(prepared / "eval"), "--output-dir", str(output), *extra],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, **(environment or {})})


def mlflow_flags(uri: str, run_name: str) -> list[str]:
    return ["--mlflow-tracking-uri", uri, "--mlflow-experiment", EXPERIMENT, "--mlflow-run-name", run_name]


def runs_named(client, name: str):
    experiment = client.get_experiment_by_name(EXPERIMENT)
    return [] if experiment is None else client.search_runs([experiment.experiment_id],
                                                            filter_string=f"attributes.run_name = '{name}'")


def test_the_scoring_step_logs_scores_estimate_and_cost_to_the_executions_run(mlflow_server, prepared,
                                                                              gold_predictions, tmp_path):
    from mlflow.tracking import MlflowClient

    result = score(prepared, gold_predictions, tmp_path, *mlflow_flags(mlflow_server, "execution-1"),
                   "--data-report", str(prepared / "report/data_report.json"),
                   "--billable-seconds", "training=1950", "--billable-seconds", "fine_tuned_evaluation=1200",
                   "--billable-seconds", "base_evaluation=1100")
    assert result.returncode == 0, result.stderr
    (run,) = runs_named(MlflowClient(mlflow_server), "execution-1")
    assert f"MLflow: logged to run {run.info.run_id} ({EXPERIMENT} / execution-1)" in result.stdout
    metrics = run.data.metrics
    assert metrics["accuracy"] == metrics["execution_accuracy"] == 1.0
    assert metrics["baseline_execution_accuracy"] < 1.0
    assert metrics["eval_records"] == 100
    assert (metrics["train_records_written"], metrics["validation_records_written"]) == (100, 200)
    assert metrics["estimated_training_cost_usd"] == 3.84
    assert metrics["estimated_training_hours"] == 0.542
    assert metrics["training_billable_seconds"] == 1950
    assert metrics["training_cost_usd"] == round(1950 / 3600 * 7.09, 4)
    assert metrics["base_evaluation_cost_usd"] == round(1100 / 3600 * 7.09, 4)
    assert metrics["gpu_cost_usd"] == round((1950 + 1200 + 1100) / 3600 * 7.09, 4)
    assert run.data.tags["estimate_instance_type"] == "ml.g5.12xlarge"
    assert run.data.tags["primary_metric"] == "execution_accuracy"


def test_the_run_the_training_job_opened_gets_the_scores_and_a_retry_logs_again(mlflow_server, prepared,
                                                                                 gold_predictions, tmp_path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(EXPERIMENT)
    training_run = client.create_run(experiment_id, run_name="execution-2")
    for attempt in range(2):
        result = score(prepared, gold_predictions, tmp_path / str(attempt), *mlflow_flags(mlflow_server, "execution-2"))
        assert result.returncode == 0, result.stderr
    (run,) = runs_named(client, "execution-2")
    assert run.info.run_id == training_run.info.run_id
    assert len(client.get_metric_history(run.info.run_id, "accuracy")) == 2


def test_an_unreachable_server_fails_the_step_naming_it_after_writing_the_scores(prepared, gold_predictions, tmp_path):
    uri = f"http://127.0.0.1:{_free_port()}"
    result = score(prepared, gold_predictions, tmp_path, *mlflow_flags(uri, "execution-3"))
    assert result.returncode == 3
    assert f"error: MLflow {uri}: GET experiments/get-by-name failed" in result.stderr
    assert json.loads((tmp_path / "evaluation.json").read_text())["metrics"]["accuracy"]["value"] == 1.0


@pytest.mark.parametrize("flags, message", [
    (["--mlflow-tracking-uri", ARN], "--mlflow-tracking-uri, --mlflow-experiment and --mlflow-run-name go together"),
    (mlflow_flags("mlflow.example.com", "e"), "neither a SageMaker MLflow ARN"),
    (mlflow_flags("arn:aws:sagemaker:us-east-1:123456789012:mlflow-notebook/x", "e"), "a mlflow-notebook, not"),
])
def test_bad_mlflow_flags_stop_the_step_before_scoring(prepared, gold_predictions, tmp_path, flags, message):
    result = score(prepared, gold_predictions, tmp_path, *flags)
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "evaluation.json").exists()


class _Recorder(BaseHTTPRequestHandler):
    """Answers the four MLflow calls as a tracking server would, keeping each request."""
    answers = {"/api/2.0/mlflow/experiments/get-by-name": {"experiment": {"experiment_id": "7"}},
               "/api/2.0/mlflow/runs/search": {"runs": [{"info": {"run_id": "run-from-training"}}]},
               "/api/2.0/mlflow/runs/log-batch": {}}
    seen: list = []

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.seen.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        payload = json.dumps(self.answers[self.path.split("?")[0]]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


def test_a_sagemaker_mlflow_arn_is_routed_and_sigv4_signed_as_the_sagemaker_mlflow_plugin_does(monkeypatch):
    listener = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    monkeypatch.setenv(tracking.CUSTOM_ENDPOINT_ENV, f"http://127.0.0.1:{listener.server_address[1]}")
    try:
        server = tracking.MlflowServer.parse(ARN)
        run_id = tracking.execution_run(server, EXPERIMENT, "execution-4")
        tracking.log(server, run_id, {"accuracy": 0.5}, {"recipe": "nova_lite_1_0_g5_g6_12x_gpu_lora_sft"})
    finally:
        listener.shutdown()
    assert run_id == "run-from-training"
    (method, path, headers, _), search, (_, _, _, logged) = _Recorder.seen
    assert (method, path) == ("GET", "/api/2.0/mlflow/experiments/get-by-name?experiment_name=nova-finqa-sft")
    assert search[3]["filter"] == "attributes.run_name = 'execution-4'"
    assert logged["run_id"] == "run-from-training" and logged["metrics"][0]["key"] == "accuracy"
    for _, _, request_headers, _ in _Recorder.seen:
        assert request_headers["x-mlflow-sm-tracking-server-arn"] == ARN
        authorization = request_headers["authorization"]
        assert authorization.startswith("AWS4-HMAC-SHA256 Credential=testing/")
        assert "/us-east-1/sagemaker-mlflow/aws4_request" in authorization
        assert "x-mlflow-sm-tracking-server-arn" in authorization.split("SignedHeaders=")[1]


def test_the_default_endpoints_are_the_plugins():
    app = "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-app/app-1"
    assert tracking.MlflowServer.parse(ARN).endpoint == "https://us-east-1.experiments.sagemaker.aws"
    assert tracking.MlflowServer.parse(app).endpoint == "https://mlflow.sagemaker.eu-west-1.app.aws"
