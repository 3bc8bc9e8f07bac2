"""steps.checkpoint: from a training job's output to the fine-tuned model's evaluation recipe."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from steps.catalog import DEFAULT_RECIPE
from steps.checkpoint import CheckpointError, render
from steps.recipes import evaluation_recipe
from tests.conftest import PROJECT_ROOT

ACCOUNT = "111122223333"
CHECKPOINT = "s3://customer-escrow-111122223333-smtj-a1b2c3/nova-finqa-sft-2026-11-23/step_42"


def write_archive(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def manifest(**values) -> bytes:
    return json.dumps(values).encode()


def test_checkpoint_from_output_tar_gz(tmp_path):
    training = tmp_path / "training"
    write_archive(training / "output.tar.gz", {"manifest.json": manifest(checkpoint_s3_bucket=CHECKPOINT),
                                               "training_metrics.json": b"{}"})
    summary = render(training, tmp_path / "out", account=ACCOUNT)
    assert summary["checkpoint_s3_uri"] == CHECKPOINT
    rendered = yaml.safe_load((tmp_path / "out" / "recipe" / "recipe.yaml").read_text())
    assert rendered == evaluation_recipe(DEFAULT_RECIPE, CHECKPOINT)
    written = json.loads((tmp_path / "out" / "checkpoint" / "checkpoint.json").read_text())
    assert written["checkpoint_s3_uri"] == CHECKPOINT
    assert written["manifest"] == {"checkpoint_s3_bucket": CHECKPOINT}
    # SageMaker's S3Prefix model data (the registered package's) must end in a slash.
    assert written["checkpoint_s3_prefix"] == CHECKPOINT + "/"


def test_a_checkpoint_path_with_its_slash_keeps_one(tmp_path):
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "manifest.json").write_bytes(manifest(checkpoint_s3_bucket=CHECKPOINT + "/"))
    assert render(tmp_path / "training", tmp_path / "out", account=ACCOUNT)["checkpoint_s3_prefix"] == CHECKPOINT + "/"


def test_checkpoint_from_unpacked_manifest_in_a_subfolder(tmp_path):
    (tmp_path / "training" / "output").mkdir(parents=True)
    (tmp_path / "training" / "output" / "manifest.json").write_bytes(manifest(checkpoint_s3_bucket=CHECKPOINT))
    assert render(tmp_path / "training", tmp_path / "out", account=ACCOUNT)["checkpoint_s3_uri"] == CHECKPOINT


def test_manifest_without_checkpoint_is_a_clear_error(tmp_path):
    write_archive(tmp_path / "training" / "output.tar.gz", {"manifest.json": manifest(job="x")})
    with pytest.raises(CheckpointError, match="checkpoint_s3_bucket.*keys present: job"):
        render(tmp_path / "training", tmp_path / "out", account=ACCOUNT)
    assert not (tmp_path / "out").exists()


def test_no_manifest_is_a_clear_error(tmp_path):
    write_archive(tmp_path / "training" / "model.tar.gz", {"weights.bin": b"0"})
    with pytest.raises(CheckpointError, match="no manifest.json found .*model.tar.gz"):
        render(tmp_path / "training", tmp_path / "out", account=ACCOUNT)


@pytest.mark.integration
def test_command_line_reports_the_error_and_fails(tmp_path):
    write_archive(tmp_path / "training" / "output.tar.gz", {"manifest.json": manifest(checkpoint_s3_bucket="")})
    result = subprocess.run([sys.executable, "-m", "steps.checkpoint", "--training-output", str(tmp_path / "training"),
                             "--output-dir", str(tmp_path / "out"), "--account", ACCOUNT],
                            cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 1
    assert "checkpoint_s3_bucket" in result.stderr and "not an s3:// path" in result.stderr
