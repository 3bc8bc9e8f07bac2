"""Test-wide guards: no real AWS account, no network beyond this machine."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Set before any test module imports the SageMaker SDK: `sagemaker.mlops.workflow`
# makes a boto3 client at import time and needs a region; fake credentials make sure
# that nothing a test does can ever reach a real account.
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_SECURITY_TOKEN"] = "testing"
os.environ["AWS_SESSION_TOKEN"] = "testing"
os.environ.pop("AWS_PROFILE", None)
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_FINQA = PROJECT_ROOT.parent / "shared" / "finqa"
SAMPLE_FINQA = PROJECT_ROOT / "data" / "finqa_sample"

_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_local(address) -> bool:
    if isinstance(address, (str, bytes)):  # a unix socket path
        return True
    host = address[0]
    if isinstance(host, bytes):
        host = host.decode()
    return host in _LOOPBACK_NAMES or host.startswith("127.")


def _guarded_connect(self, address):
    if self.family != socket.AF_UNIX and not _is_local(address):
        raise RuntimeError(f"tests must not reach the network: connect to {address!r} blocked")
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    if self.family != socket.AF_UNIX and not _is_local(address):
        raise RuntimeError(f"tests must not reach the network: connect to {address!r} blocked")
    return _real_connect_ex(self, address)


socket.socket.connect = _guarded_connect
socket.socket.connect_ex = _guarded_connect_ex


@pytest.fixture(scope="session")
def shared_finqa() -> Path:
    """The real FinQA records beside the checkout (../shared/finqa).

    Where they are not there (a fork's CI, say), the tests that need them are skipped and
    the ones on the sample shipped in the project still run. Our own CI sets
    NOVA_REQUIRE_SHARED_FINQA=1, so that a missing folder fails instead of skipping.
    """
    if not SHARED_FINQA.is_dir():
        message = f"{SHARED_FINQA} is not beside the checkout"
        if os.environ.get("NOVA_REQUIRE_SHARED_FINQA") == "1":
            pytest.fail(message + " (NOVA_REQUIRE_SHARED_FINQA=1)")
        pytest.skip(message)
    return SHARED_FINQA


@pytest.fixture(scope="session")
def sample_finqa() -> Path:
    """The small real FinQA sample shipped inside the project."""
    return SAMPLE_FINQA


@pytest.fixture(scope="session")
def finqa_question(sample_finqa, tmp_path_factory) -> dict:
    """The first FinQA test question exactly as the pipeline writes it (steps.prepare's eval/gen_qa.jsonl, made
    from the project's real FinQA sample): the approval hook's smoke-test question."""
    import json

    from steps.prepare import prepare

    output = tmp_path_factory.mktemp("prepared")
    prepare(sample_finqa, output, max_eval_records=1)
    return json.loads((output / "eval" / "gen_qa.jsonl").read_text(encoding="utf-8").splitlines()[0])


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
                    pytest.fail("moto_server did not start")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


# The quick loop, `python -m pytest -m "not integration"`, leaves out every test that starts a
# process or a server. A test using one of these fixtures is marked by them; a test that starts
# a process itself carries @pytest.mark.integration, and one that does not is stopped here,
# with this message, before it starts it.
INTEGRATION_FIXTURES = frozenset({"moto_server", "mlflow_server"})
_real_popen_init = subprocess.Popen.__init__


def _unmarked_popen(self, args, *rest, **options):
    raise AssertionError(f"this test starts a process ({args!r}): mark it @pytest.mark.integration")


def pytest_collection_modifyitems(items):
    for item in items:
        if INTEGRATION_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    integration = item.get_closest_marker("integration") is not None
    subprocess.Popen.__init__ = _real_popen_init if integration else _unmarked_popen


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item):
    subprocess.Popen.__init__ = _real_popen_init
