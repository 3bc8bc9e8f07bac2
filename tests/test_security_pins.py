"""Security review finding 8 (the Lambda zip's part): the approval hook's zip vendors exactly the
SDK versions recorded in scripts/lambda_requirements.txt, and refuses to build from others."""
from __future__ import annotations

import importlib.metadata
import io
import zipfile

import pytest

from scripts import lambda_bundle
from tests.conftest import PROJECT_ROOT

LOCK = PROJECT_ROOT / "scripts" / "lambda_requirements.txt"


def _pins(text: str) -> dict[str, str]:
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    return dict(line.split("==", 1) for line in lines if line)


def test_the_lock_pins_every_vendored_package_to_one_version():
    pins = _pins(LOCK.read_text(encoding="utf-8"))
    assert set(pins) == set(lambda_bundle.VENDORED_DISTRIBUTIONS.values())
    assert set(lambda_bundle.VENDORED_DISTRIBUTIONS) == set(lambda_bundle.VENDORED_PACKAGES)
    assert all(version and "*" not in version for version in pins.values())


def test_an_sdk_other_than_the_recorded_one_is_refused(tmp_path, monkeypatch):
    pins = _pins(LOCK.read_text(encoding="utf-8"))
    pins["boto3"] = "1.0.0"
    other = tmp_path / "lambda_requirements.txt"
    other.write_text("".join(f"{name}=={version}\n" for name, version in pins.items()), encoding="utf-8")
    monkeypatch.setattr(lambda_bundle, "LOCK_FILE", other)
    installed = importlib.metadata.version("boto3")
    with pytest.raises(RuntimeError) as raised:
        lambda_bundle.build_zip()
    message = str(raised.value)
    assert "boto3" in message and "1.0.0" in message and installed in message
    assert "pip install -r" in message and "lambda_requirements.txt" in message


def test_the_zip_carries_the_versions_it_was_built_from():
    with zipfile.ZipFile(io.BytesIO(lambda_bundle.build_zip())) as archive:
        recorded = archive.read("scripts/lambda_requirements.txt").decode()
    assert _pins(recorded) == _pins(LOCK.read_text(encoding="utf-8"))
