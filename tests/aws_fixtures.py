"""AWS doubles shared by the operator-tool tests: a pipeline definition declaring parameters of
every type, and running a command as a user would against an endpoint (the `moto_server`
fixture is in conftest.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import PROJECT_ROOT

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


def run_cli(module: str, args: list[str], endpoint: str, extra_env: dict | None = None):
    """Run `python -m MODULE ARGS` as a user would, against the given endpoint."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOVA_")}
    env.update({"AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1",
                "PYTHONPATH": str(PROJECT_ROOT)})
    env.update(extra_env or {})
    return subprocess.run([sys.executable, "-m", module, *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
