"""The SageMaker SDK as a pure builder of definitions: no AWS call, no telemetry, quiet.

Building a pipeline makes no AWS call: the role is checked by SageMaker when the pipeline is
upserted, so the SDK's own switch turns its IAM check off (`SAGEMAKER_VALIDATE_ROLE=false`).
Two things are patched, here and nowhere else, each for the whole build only:

- ProcessingStep makes a local-mode client (a session and four boto3 clients, about 0.4 s,
  half the build) only to read the name of its `create_processing_job` method
  (`sagemaker.mlops.workflow.steps.ProcessingStep.__init__`); it has no switch.
- Telemetry (an HTTPS request per decorated SDK call). The SDK's switch is `TelemetryOptOut` in
  its defaults config, but any non-empty config is validated against the SDK's JSON schema on
  every lookup the build makes: measured, the dry run takes 24.4 s with the switch and 8.2 s
  without it. So the config stays empty and the sender is replaced.

tests/test_sdk.py holds both patches against the installed SDK, so that an SDK change under
them fails a test rather than a build.
"""
from __future__ import annotations

import functools
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager


class LocalClientStandIn:
    """What ProcessingStep reads from the SDK's local-mode client: one method's name."""

    def create_processing_job(self) -> None:
        raise NotImplementedError("the pipeline never runs in local mode")


def _no_telemetry(*args, **kwargs) -> None:
    return None


@contextmanager
def offline_sdk() -> Iterator[None]:
    # Imported first so that every SDK logger the build writes to exists when quieted below.
    # The import sets the root logger to INFO (sagemaker.core.experiments); the caller's level
    # is put back, or every boto3 client would announce where it found credentials.
    root_level = logging.getLogger().level
    import sagemaker.mlops.workflow  # noqa: F401
    import sagemaker.serve  # noqa: F401
    import sagemaker.train  # noqa: F401
    from sagemaker.core.telemetry import telemetry_logging
    from sagemaker.mlops.workflow import steps as workflow_steps

    logging.getLogger().setLevel(root_level)
    local_client = workflow_steps.LocalSagemakerClient
    workflow_steps.LocalSagemakerClient = LocalClientStandIn
    sender = telemetry_logging._send_telemetry_request
    telemetry_logging._send_telemetry_request = _no_telemetry
    previous_role_check = os.environ.get("SAGEMAKER_VALIDATE_ROLE")
    os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
    # The SDK narrates each job it would start and each field it drops from the definition;
    # none of it is news when building a pipeline.
    quieted = {name: logging.getLogger(name).level for name in list(logging.root.manager.loggerDict)
               if name.split(".")[0] == "sagemaker"}
    for name in quieted:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Running within a PipelineSession")
            yield
    finally:
        for name, level in quieted.items():
            logging.getLogger(name).setLevel(level)
        workflow_steps.LocalSagemakerClient = local_client
        telemetry_logging._send_telemetry_request = sender
        if previous_role_check is None:
            os.environ.pop("SAGEMAKER_VALIDATE_ROLE", None)
        else:
            os.environ["SAGEMAKER_VALIDATE_ROLE"] = previous_role_check


@functools.cache
def _boto_session(region: str):
    """One boto3 session per region and process: its loader parses each service model once
    (about 0.7 s for the ten clients a PipelineSession makes), not once per build."""
    import boto3

    return boto3.Session(region_name=region)


def pipeline_session(region: str, bucket: str):
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    session = PipelineSession(boto_session=_boto_session(region), default_bucket=bucket)
    # No SDK defaults: a user's config files (VPC, KMS keys, tags) must not change the definition
    # from one machine to the next (and a non-empty one is re-validated on every lookup).
    session.sagemaker_config = {}
    return session
