"""AWS doubles shared by the operator-tool tests: a `moto_server` on loopback, and a
pipeline definition declaring the parameters the real pipeline declares."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"

PIPELINE_PARAMETERS = [
    {"Name": "DataLocation", "Type": "String", "DefaultValue": "s3://example-bucket/finqa"},
    {"Name": "TrainingRecords", "Type": "Integer", "DefaultValue": 6000},
    {"Name": "Epochs", "Type": "Integer", "DefaultValue": 2},
    {"Name": "LearningRate", "Type": "Float", "DefaultValue": 1e-5},
    {"Name": "AccuracyThreshold", "Type": "Float", "DefaultValue": 0.5},
    {"Name": "ModelApprovalStatus", "Type": "String", "DefaultValue": "PendingManualApproval"},
    {"Name": "EvalRecordLimit", "Type": "Integer", "DefaultValue": 0},
    {"Name": "CacheSteps", "Type": "Boolean", "DefaultValue": True},
]


def pipeline_definition() -> str:
    return json.dumps({"Version": "2020-12-01", "Parameters": PIPELINE_PARAMETERS, "Steps": []})


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def moto_server():
    """A `moto_server` subprocess on 127.0.0.1; yields its endpoint URL."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def run_cli(module: str, args: list[str], endpoint: str, extra_env: dict | None = None):
    """Run `python -m MODULE ARGS` as a user would, against the given endpoint."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOVA_")}
    env.update({"AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1",
                "PYTHONPATH": str(PROJECT_ROOT)})
    env.update(extra_env or {})
    return subprocess.run([sys.executable, "-m", module, *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
