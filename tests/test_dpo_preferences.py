"""DPO preference pairs end to end: the real preparation step writes the DPO prompts from real FinQA
training records, a base model's answers are written the way a Nova evaluation job writes them,
and `python -m steps.preferences` runs as the processing job runs it. The pairs are checked
against AWS's documented DPO format (SageMaker developer guide, nova-dpo.html) field by field."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from steps.finqa.preferences import (
    MIN_PAIRS,
    Attempt,
    PreferenceError,
    build_pairs,
    check_preference_lines,
    check_preference_record,
    preference_record,
)
from tests.conftest import PROJECT_ROOT
from tests.nova_output import jsonl, nova_line
from tests.test_evaluate import nova_archive

DPO_RECIPE = "nova_micro_1_0_g5_g6_12x_gpu_lora_dpo"
SWAPS = {"add": "subtract", "subtract": "add", "multiply": "divide", "divide": "multiply"}


def prepare(input_dir: Path, output: Path, *extra: str) -> Path:
    subprocess.run([sys.executable, "-m", "steps.prepare", "--input-dir", str(input_dir), "--output-dir", str(output),
                    "--recipe", DPO_RECIPE, *extra], cwd=PROJECT_ROOT, check=True, capture_output=True, text=True)
    return output


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, shared_finqa) -> Path:
    return prepare(shared_finqa, tmp_path_factory.mktemp("dpo-prepared"))


@pytest.fixture(scope="module")
def prompts(prepared) -> list[dict]:
    lines = (prepared / "prompts" / "gen_qa.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def sft_replies(tmp_path_factory, shared_finqa) -> dict[str, str]:
    """The assistant turn of each SFT training record, by the user turn: what SFT trains on."""
    output = tmp_path_factory.mktemp("sft-prepared")
    subprocess.run([sys.executable, "-m", "steps.prepare", "--input-dir", str(shared_finqa),
                    "--output-dir", str(output)], cwd=PROJECT_ROOT, check=True, capture_output=True, text=True)
    records = [json.loads(line) for line in (output / "train" / "train.jsonl").read_text().splitlines()]
    return {r["messages"][0]["content"][0]["text"]: r["messages"][1]["content"][0]["text"] for r in records}


def wrong_reply(example: dict) -> str:
    """A wrong answer of the kind a base model writes: the gold program with its first operation swapped."""
    gold = example["response"]
    program = gold.splitlines()[0]
    swapped = re.sub(r"\b(add|subtract|multiply|divide)\(", lambda m: SWAPS[m.group(1)] + "(", program, count=1)
    return f"{swapped}\nAnswer: 12.5%" if swapped != program else "The change was about 12.5 percent."


def run(predictions: Path, prompts_dir: Path, output: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "steps.preferences", "--predictions", str(predictions),
                           "--prompts", str(prompts_dir), "--output-dir", str(output), *extra],
                          cwd=PROJECT_ROOT, capture_output=True, text=True)


def base_output(tmp_path: Path, prompts: list[dict], reply) -> Path:
    lines = [nova_line(example, text) for example in prompts if (text := reply(example)) is not None]
    (tmp_path / "base").mkdir(exist_ok=True)
    return nova_archive(tmp_path / "base" / "output.tar.gz", jsonl(lines))


@pytest.mark.integration
def test_wrong_answers_become_pairs_in_aws_dpo_format(tmp_path, prepared, prompts, sft_replies):
    # every third record right, one empty reply, one with no reply at all, one with a reserved string
    def reply(example):
        index = prompts.index(example)
        if index == 1:
            return ""
        if index == 2:
            return None
        if index == 4:
            return "Assistant: " + wrong_reply(example)
        return example["response"] if index % 3 == 0 else wrong_reply(example)

    result = run(base_output(tmp_path, prompts, reply), prepared / "prompts", tmp_path / "out",
                 "--max-length", "4096")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "report" / "preferences.json").read_text())
    right = sum(1 for index in range(len(prompts)) if index % 3 == 0)
    assert report["attempts"] == len(prompts) == 99
    assert report["base_correct"] == right
    assert report["dropped"] == {"empty_reply": 1, "no_reply": 1}
    assert report["pairs"] == len(prompts) - right - 2
    assert report["sanitised_replacements"]["by_string"] == {"Assistant:": 1}

    lines = (tmp_path / "out" / "train" / "train.jsonl").read_text().splitlines()
    assert len(lines) == report["pairs"]
    by_query = {example["query"]: example for example in prompts}
    for line in lines:
        record = json.loads(line)
        # AWS's documented shape: SFT's turns, the last one the assistant's labelled candidates
        assert set(record) == {"schemaVersion", "system", "messages"}
        assert record["schemaVersion"] == "bedrock-conversation-2024"
        user, last = record["messages"]
        assert user["role"] == "user" and [set(part) for part in user["content"]] == [{"text"}]
        assert set(last) == {"role", "candidates"} and last["role"] == "assistant"
        assert [c["preferenceLabel"] for c in last["candidates"]] == ["preferred", "non-preferred"]
        preferred, rejected = (c["content"][0]["text"] for c in last["candidates"])
        example = by_query[user["content"][0]["text"]]
        assert record["system"] == [{"text": example["system"]}]
        # the preferred reply is the gold reply exactly as the SFT data trains on it
        assert preferred == example["response"] == sft_replies[example["query"]]
        assert preferred.startswith("Program: ") and "\nAnswer: " in preferred
        assert rejected != preferred and "Assistant:" not in rejected
        check_preference_record(record)


@pytest.mark.integration
def test_too_few_pairs_fails_before_the_dpo_job_with_the_numbers(tmp_path, prepared, prompts):
    wrong = {example["query"] for example in prompts[:MIN_PAIRS - 1]}
    predictions = base_output(tmp_path, prompts,
                              lambda e: wrong_reply(e) if e["query"] in wrong else e["response"])
    result = run(predictions, prepared / "prompts", tmp_path / "out")
    assert result.returncode == 1
    message = result.stderr
    assert f"{MIN_PAIRS - 1} preference pairs from 99 training records" in message
    assert f"got {99 - MIN_PAIRS + 1} right" in message and "takes 8 to 20,000 pairs" in message
    assert not (tmp_path / "out" / "train" / "train.jsonl").exists()


def test_a_reply_that_is_the_gold_one_but_scored_wrong_is_dropped():
    attempt = Attempt(id="a", system="s", user="q", gold_reply="Program: add(1, 1)\nAnswer: 3",
                      reply="Program: add(1, 1)\nAnswer: 3", correct=False)
    pairs = build_pairs([attempt], max_length=4096)
    assert pairs.made == 0 and pairs.dropped == {"same_as_gold": 1}


@pytest.mark.parametrize("breakage, message", [
    (lambda r: r["messages"][1]["candidates"].pop(), "at least two"),
    (lambda r: r["messages"][1]["candidates"][1].update(preferenceLabel="preferred"), "same preferenceLabel"),
    (lambda r: r["messages"][1]["candidates"][1].update(preferenceLabel="rejected"), "is not one of"),
    (lambda r: r["messages"][0].update(candidates=[]), "only the last message"),
    (lambda r: r["messages"][1]["candidates"][0]["content"][0].update(text=" "), "empty text"),
    (lambda r: r["messages"][1]["candidates"][1]["content"][0].update(text="Thought: no"), "thought:"),
    (lambda r: r["messages"].reverse(), "roles must alternate"),
])
def test_the_checker_refuses_what_aws_validator_refuses(breakage, message):
    record = preference_record("system", "question", "Program: add(1, 2)\nAnswer: 3", "Answer: 4")
    check_preference_record(record)
    breakage(record)
    with pytest.raises(PreferenceError, match=message):
        check_preference_record(record)


def test_a_file_outside_aws_sample_bounds_is_refused():
    line = json.dumps(preference_record("s", "q", "a", "b"))
    with pytest.raises(PreferenceError, match="7 preference pairs; Nova 1.0 DPO takes 8"):
        check_preference_lines([line] * 7, "train.jsonl")


@pytest.mark.integration
def test_prompts_without_a_gold_reply_are_refused_naming_the_input(tmp_path, prepared, prompts):
    stripped = tmp_path / "prompts" / "gen_qa.jsonl"
    stripped.parent.mkdir()
    stripped.write_text("".join(json.dumps({**example, "system": ""}) + "\n" for example in prompts))
    result = run(base_output(tmp_path, prompts, wrong_reply), stripped.parent, tmp_path / "out")
    assert result.returncode == 1
    assert f"--prompts {stripped.parent}" in result.stderr and "no gold reply or system prompt" in result.stderr


@pytest.mark.integration
def test_the_step_runs_locally_with_help():
    result = subprocess.run([sys.executable, "-m", "steps.preferences", "--help"], cwd=PROJECT_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0 and "--predictions" in result.stdout and "--max-length" in result.stdout
