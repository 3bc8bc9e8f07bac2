"""FinQA records as RFT data lines (`steps.finqa.rft`): AWS's documented format for Nova 2
reinforcement fine-tuning, and the reference the reward reads back."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from steps.finqa.answers import Gold
from steps.finqa.nova import NovaDataError
from steps.finqa.prompts import SYSTEM_PROMPT, render_question
from steps.finqa.records import load_records
from steps.finqa.rft import (
    ReferenceAnswerError,
    check_rft_lines,
    check_rft_record,
    read_reference,
    reference_answer,
    rft_line,
)
from tests.conftest import PROJECT_ROOT

ARN = "arn:aws:lambda:us-east-1:123456789012:function:SageMaker-nova-finqa-reward"


@pytest.fixture(scope="module")
def records(shared_finqa):
    files = [shared_finqa / name for name in ("train_100.json", "dev_200.json", "test_100.json")]
    return load_records(files, strict=True).records


@pytest.fixture(scope="module")
def lines(records):
    return [rft_line(r.id, SYSTEM_PROMPT, render_question(r), reference_answer(r)) for r in records]


def test_lines_of_real_records_are_in_awss_rft_format(records, lines):
    # "Preparing data for RFT on Amazon Nova 2": one JSON object a line; `messages` with a
    # system turn first and a user turn, content as text; `reference_answer` an object; `id` optional.
    check_rft_lines(lines, "train.jsonl")
    for record, line in zip(records, lines):
        assert line.endswith("\n") and line.count("\n") == 1 and line.isascii()
        row = json.loads(line)
        assert list(row) == ["id", "messages", "reference_answer"]
        assert row["id"] == record.id
        assert row["messages"] == [{"role": "system", "content": SYSTEM_PROMPT},
                                   {"role": "user", "content": render_question(record)}]


def test_the_reference_carries_what_the_reward_needs(records, lines):
    for record, line in zip(records, lines):
        reference = json.loads(line)["reference_answer"]
        assert reference == {"id": record.id, "program": record.program, "exe_ans": record.exe_ans,
                             "answer": record.answer, "table": [list(row) for row in record.table]}
        read = read_reference(reference)
        assert (read.id, read.exe_ans, read.table) == (record.id, record.exe_ans, [list(row) for row in record.table])
        assert read.gold == Gold.of(record.exe_ans, record.answer)


@pytest.mark.parametrize("change, message", [
    (lambda row: row.pop("messages"), "'messages' must be a non-empty list"),
    (lambda row: row.update(messages=[]), "'messages' must be a non-empty list"),
    (lambda row: row["messages"].reverse(), "the system turn must come first"),
    (lambda row: row.update(messages=row["messages"][:1]), "no user turn"),
    (lambda row: row["messages"][1].update(content="  "), "message 1 has no text"),
    (lambda row: row["messages"][1].update(content=[{"text": "hi"}]), "message 1 has no text"),
    (lambda row: row["messages"][1].update(role="bot"), "message 1 has role 'bot'"),
    (lambda row: row["messages"][1].update(name="x"), "message 1 must be exactly"),
    (lambda row: row.pop("reference_answer"), "'reference_answer' must be a non-empty object"),
    (lambda row: row.update(reference_answer={}), "'reference_answer' must be a non-empty object"),
    (lambda row: row.update(id=""), "'id' must be a non-empty string"),
], ids=["no messages", "empty messages", "system second", "no user", "empty text", "content parts",
        "unknown role", "extra key", "no reference", "empty reference", "empty id"])
def test_a_record_breaking_awss_rules_is_refused(lines, change, message):
    row = json.loads(lines[0])
    change(row)
    with pytest.raises(NovaDataError, match=message):
        check_rft_record(row)
    with pytest.raises(NovaDataError, match=f"train.jsonl line 2: .*{message}"):
        check_rft_lines([lines[0], json.dumps(row)], "train.jsonl")


def test_awss_optional_parts_are_accepted(lines):
    row = json.loads(lines[0])
    del row["id"]
    row["messages"] = row["messages"][1:] + [{"role": "assistant", "content": "Program: add(1, 2)"}]
    row["reference_answer"] = "text works too"
    row["task_id"] = "extra fields go to the reward function"
    check_rft_record(row)


@pytest.mark.parametrize("reference", [
    [1, 2], "not json", {"answer": "1"}, {"exe_ans": "maybe"}, {"exe_ans": float("inf")},
    {"exe_ans": 1.0, "table": "a | b"}, {"exe_ans": 1.0, "table": [[1, 2]]}, {"exe_ans": 1.0, "answer": 5},
], ids=["a list", "text", "no exe_ans", "exe_ans not a number", "infinite", "table text", "cells not text",
        "answer not text"])
def test_a_reference_the_reward_cannot_use_is_refused_with_a_reason(reference):
    with pytest.raises(ReferenceAnswerError) as raised:
        read_reference(reference)
    assert raised.value.reason == "bad_reference"


@pytest.mark.integration
def test_the_preparation_step_writes_awss_rft_format_for_an_rft_recipe(tmp_path, shared_finqa, records):
    result = subprocess.run(
        [sys.executable, "-m", "steps.prepare", "--input-dir", str(shared_finqa), "--output-dir", str(tmp_path),
         "--recipe", "nova_lite_v2_smtj_p5_p5en_gpu_lora_rft", "--reward-lambda-arn", ARN,
         "--data-s3-path", "s3://amzn-s3-demo-bucket/train/train.jsonl"],
        cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    by_id = {record.id: record for record in records}
    for split, expected in (("train", 100), ("validation", 200)):
        lines = (tmp_path / split / f"{split}.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
        assert len(lines) == expected
        check_rft_lines(lines, f"{split}.jsonl")
        for line in lines:
            record = by_id[json.loads(line)["id"]]
            assert line == rft_line(record.id, SYSTEM_PROMPT, render_question(record), reference_answer(record))
    # evaluation data is the SFT pipeline's, whatever the recipe: the same gen_qa records
    gen_qa = [json.loads(line) for line in (tmp_path / "eval" / "gen_qa.jsonl").read_text().splitlines()]
    assert len(gen_qa) == 100 and all(row["system"] == SYSTEM_PROMPT for row in gen_qa)
    assert gen_qa[0]["query"] == render_question(by_id[json.loads(gen_qa[0]["metadata"])["id"]])
