"""The two SDK internals pipeline.sdk patches while building: held against the installed SDK."""
from __future__ import annotations

import inspect

from pipeline import sdk


def test_processing_step_still_reads_only_a_method_name_from_the_local_client():
    from sagemaker.mlops.workflow import steps

    source = inspect.getsource(steps.ProcessingStep.__init__)
    assert "LocalSagemakerClient().create_processing_job.__name__" in source, (
        "ProcessingStep no longer reads the local client the way pipeline.sdk's stand-in answers")
    assert hasattr(steps, "LocalSagemakerClient")
    with sdk.offline_sdk():
        assert steps.LocalSagemakerClient is sdk.LocalClientStandIn
        assert steps.LocalSagemakerClient().create_processing_job.__name__ == "create_processing_job"
    assert steps.LocalSagemakerClient is not sdk.LocalClientStandIn


def test_telemetry_is_still_sent_through_the_replaced_sender():
    from sagemaker.core.telemetry import telemetry_logging

    emitter = inspect.getsource(telemetry_logging._telemetry_emitter)
    assert "_send_telemetry_request(" in emitter, "telemetry no longer goes through the sender pipeline.sdk replaces"
    original = telemetry_logging._send_telemetry_request
    with sdk.offline_sdk():
        assert telemetry_logging._send_telemetry_request is not original
        assert telemetry_logging._send_telemetry_request(0, [], None) is None
    assert telemetry_logging._send_telemetry_request is original


def test_a_build_leaves_no_patch_behind_even_when_it_fails():
    import os

    from sagemaker.mlops.workflow import steps

    before = os.environ.get("SAGEMAKER_VALIDATE_ROLE")
    try:
        with sdk.offline_sdk():
            raise RuntimeError("a failing build")
    except RuntimeError:
        pass
    assert steps.LocalSagemakerClient is not sdk.LocalClientStandIn
    assert os.environ.get("SAGEMAKER_VALIDATE_ROLE") == before
