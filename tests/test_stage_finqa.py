"""Staging FinQA from a Hugging Face dataset, on a local parquet folder laid out like the Hub's conversion."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from scripts.stage_finqa import main, stage
from steps.finqa.records import load_records
from tests.conftest import PROJECT_ROOT, SAMPLE_FINQA


def hf_rows(records: list[dict]) -> list[dict]:
    return [{"id": r["id"], "pre_text": r["pre_text"], "post_text": r["post_text"], "table": r["table"],
             "question": r["qa"]["question"], "answer": r["qa"]["answer"], "final_result": str(r["qa"]["exe_ans"]),
             "program_re": r["qa"]["program_re"], "gold_inds": list(r["qa"]["gold_inds"].values())} for r in records]


def test_a_parquet_dataset_is_staged_as_split_files_prepare_reads(tmp_path):
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    dataset = tmp_path / "finqa"
    sources = {}
    for split, name in (("train", "train"), ("validation", "dev"), ("test", "test")):
        sources[split] = json.loads((SAMPLE_FINQA / f"{name}.json").read_text())
        (dataset / "default" / split).mkdir(parents=True)
        pq.write_table(pyarrow.Table.from_pylist(hf_rows(sources[split])),
                       dataset / "default" / split / "0000.parquet")

    counts = stage(str(dataset), None, tmp_path / "staged")
    assert counts == {"train": 20, "validation": 10, "test": 10}

    loaded = load_records([tmp_path / "staged" / "test.jsonl"], strict=True)
    assert [r.id for r in loaded.records] == [r["id"] for r in sources["test"]]
    for record, source in zip(loaded.records, sources["test"]):
        assert record.question == source["qa"]["question"]
        assert record.exe_ans == source["qa"]["exe_ans"]
        assert record.table == tuple(tuple(row) for row in source["table"])


def test_without_the_hub_one_line_names_the_cause_and_the_offline_route(tmp_path, capsys):
    # conftest sets HF_HUB_OFFLINE=1: `datasets` answers as it does on a machine without network.
    assert main(["--output-dir", str(tmp_path / "staged")]) == 1
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert line.startswith("error: --dataset ibm-research/finqa: the Hugging Face Hub cannot be reached")
    assert "steps.prepare reads them as they are" in line and "--dataset FOLDER --revision ''" in line
    assert "Traceback" not in captured.err
    assert not list((tmp_path / "staged").glob("*.jsonl"))


@pytest.mark.integration
def test_an_unreachable_hub_is_said_at_once_without_the_hub_client_retrying(tmp_path):
    # No offline switch set, and a Hub endpoint that refuses connections (a closed port on this
    # machine): one probe, one line; `datasets` is never asked (it would retry five times).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    env.update({"HF_ENDPOINT": f"http://127.0.0.1:{closed}", "PYTHONPATH": str(PROJECT_ROOT)})
    result = subprocess.run([sys.executable, "-m", "scripts.stage_finqa", "--output-dir", str(tmp_path / "staged")],
                            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: --dataset ibm-research/finqa: the Hugging Face Hub cannot be reached "
                           f"(http://127.0.0.1:{closed}: ")
    assert "steps.prepare reads them as they are" in line


def test_the_offline_switch_is_honoured_before_any_connection(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("no probe when offline is set"))
    assert main(["--output-dir", str(tmp_path / "staged")]) == 1
    assert "(HF_HUB_OFFLINE=1 is set)" in capsys.readouterr().err
