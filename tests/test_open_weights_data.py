"""FinQA in AWS's data formats for serverless customization of open-weights models
(`steps.finqa.open_weights`, `steps.prepare --open-weights-technique`), on real FinQA records."""
from __future__ import annotations

import json

import pytest

from steps.finqa.open_weights import (
    OpenWeightsDataError,
    check_dpo_record,
    check_lines,
    check_rlvr_record,
    check_sft_record,
    dpo_line,
    ground_truth,
    rlvr_line,
    sft_line,
)
from steps.finqa.prompts import SYSTEM_PROMPT, SanitiseCounts, render_question, render_target, sanitise
from steps.finqa.records import load_records
from steps.finqa.rft import read_reference, reference_answer
from steps.prepare import prepare
from steps.reward import lambda_handler


@pytest.fixture(scope="module")
def records(shared_finqa):
    return load_records([shared_finqa / "train_100.json", shared_finqa / "test_100.json"], strict=True).records


def _texts(record):
    counts = SanitiseCounts()
    return sanitise(render_question(record), counts), sanitise(render_target(record), counts)


def test_sft_lines_of_real_records_are_awss_messages_format(records):
    # customizing-models-sft, "Format 1: messages": role / content strings, the system first.
    lines = [sft_line(SYSTEM_PROMPT, *_texts(record)) for record in records]
    check_lines(lines, "sft", "train.jsonl")
    for record, line in zip(records, lines):
        assert line.endswith("\n") and line.count("\n") == 1 and line.isascii()
        question, target = _texts(record)
        assert json.loads(line) == {"messages": [{"role": "system", "content": SYSTEM_PROMPT},
                                                 {"role": "user", "content": question},
                                                 {"role": "assistant", "content": target}]}


def test_dpo_lines_pair_the_gold_response_with_another_records_as_rejected(records):
    # customizing-models-dpo, "Format 1: messages": chosen and rejected as full message lists,
    # the same system and user turns in both.
    pairs = list(zip(records, records[1:]))
    lines = [dpo_line(SYSTEM_PROMPT, _texts(record)[0], _texts(record)[1], _texts(other)[1])
             for record, other in pairs if _texts(record)[1] != _texts(other)[1]]
    check_lines(lines, "dpo", "train.jsonl")
    row = json.loads(lines[0])
    assert list(row) == ["chosen", "rejected"]
    assert row["chosen"][:2] == row["rejected"][:2]
    assert row["chosen"][2]["content"] == _texts(records[0])[1]
    same = dpo_line(SYSTEM_PROMPT, "q", "Answer: 1", "Answer: 1")
    with pytest.raises(OpenWeightsDataError, match="the same text"):
        check_dpo_record(json.loads(same))


def test_rlvr_lines_are_verl_style_and_carry_the_rewards_reference(records):
    # customizing-models-rft, "RLVR > Dataset format": data_source, prompt, ability,
    # reward_model {ground_truth (a string), style}.
    lines = [rlvr_line(SYSTEM_PROMPT, _texts(record)[0], ground_truth(record)) for record in records]
    check_lines(lines, "rlvr", "train.jsonl")
    for record, line in zip(records, lines):
        row = json.loads(line)
        assert list(row) == ["data_source", "prompt", "ability", "reward_model"]
        assert row["prompt"] == [{"role": "system", "content": SYSTEM_PROMPT},
                                 {"role": "user", "content": _texts(record)[0]}]
        assert row["reward_model"]["style"] == "rule"
        truth = row["reward_model"]["ground_truth"]
        assert isinstance(truth, str) and json.loads(truth) == reference_answer(record)
        assert read_reference(truth).exe_ans == record.exe_ans


@pytest.mark.parametrize("row, message", [
    ({"messages": [{"role": "user", "content": "q"}]}, "end with the assistant"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "system", "content": "s"},
                   {"role": "assistant", "content": "a"}]}, "must come first"),
    ({"messages": [{"role": "user", "content": " "}, {"role": "assistant", "content": "a"}]}, "no text"),
    ({"messages": [], "extra": 1}, "exactly 'messages'"),
])
def test_a_bad_sft_record_is_refused_saying_why(row, message):
    with pytest.raises(OpenWeightsDataError, match=message):
        check_sft_record(row)


def test_a_bad_rlvr_record_is_refused_saying_why():
    with pytest.raises(OpenWeightsDataError, match="ground_truth"):
        check_rlvr_record({"prompt": [{"role": "user", "content": "q"}], "reward_model": {"ground_truth": {}}})
    with pytest.raises(OpenWeightsDataError, match="end with the user"):
        check_rlvr_record({"prompt": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
                           "reward_model": {"ground_truth": "1"}})
    with pytest.raises(OpenWeightsDataError, match="line 2"):
        check_lines(['{"prompt":[{"role":"user","content":"q"}],"reward_model":{"ground_truth":"1"}}', "{"],
                    "rlvr", "train.jsonl")


@pytest.mark.parametrize("technique, check", [("sft", check_sft_record), ("rlvr", check_rlvr_record)])
def test_prepare_writes_the_technique_format_and_the_open_models_eval_set(shared_finqa, tmp_path, technique, check):
    report = prepare(shared_finqa, tmp_path, max_eval_records=20, epochs=2, open_weights_technique=technique)
    train = (tmp_path / "train" / "train.jsonl").read_text().splitlines()
    assert len(train) == report["splits"]["train"]["written"] == 100
    for line in train + (tmp_path / "validation" / "validation.jsonl").read_text().splitlines():
        check(json.loads(line))
    # No Nova recipe for a serverless open-weights job; the eval set is the scorer's records.
    assert not (tmp_path / "recipe" / "recipe.yaml").exists()
    gen_qa = [json.loads(line) for line in (tmp_path / "eval" / "gen_qa.jsonl").read_text().splitlines()]
    evaluation = [json.loads(line) for line in (tmp_path / "eval_open_weights" / "eval.jsonl").read_text().splitlines()]
    assert len(evaluation) == len(gen_qa) == 20
    assert [row["messages"] for row in evaluation] == [
        [{"role": "system", "content": g["system"]}, {"role": "user", "content": g["query"]},
         {"role": "assistant", "content": g["response"]}] for g in gen_qa]


def test_the_reward_scores_an_rlvr_line_read_back_as_the_training_container_sends_it(shared_finqa, tmp_path):
    prepare(shared_finqa, tmp_path, max_eval_records=5, open_weights_technique="rlvr")
    rows = [json.loads(line) for line in (tmp_path / "train" / "train.jsonl").read_text().splitlines()[:10]]
    records = {r.id: r for r in load_records([shared_finqa / "train_100.json"]).records}
    samples = []
    for number, row in enumerate(rows):
        record = records[json.loads(row["reward_model"]["ground_truth"])["id"]]
        samples.append({"id": str(number), "messages": row["prompt"] + [
            {"role": "assistant", "content": render_target(record)}], "reward_model": row["reward_model"]})
    results = lambda_handler(samples, None)
    assert [result["aggregate_reward_score"] for result in results] == [1.0] * 10


def test_the_nova_record_bounds_do_not_apply_to_open_weights(sample_finqa, tmp_path):
    report = prepare(sample_finqa, tmp_path, open_weights_technique="sft")
    assert report["settings"]["open_weights_technique"] == "sft"
    assert report["splits"]["train"]["written"] >= 1


def test_open_weights_dpo_pairs_are_the_model_own_wrong_answers_in_awss_dpo_layout(shared_finqa, tmp_path):
    # The pipeline's DPO: the preparation step writes the training questions (and the same in the
    # open model's evaluation layout), the base model answers them, its wrong answers become pairs.
    from steps.preferences import make_preferences
    from tests.test_dpo_preferences import wrong_reply

    prepare(shared_finqa, tmp_path / "prepared", max_eval_records=5, open_weights_technique="dpo")
    prompts = [json.loads(line) for line in
               (tmp_path / "prepared" / "prompts" / "gen_qa.jsonl").read_text().splitlines()]
    asked = [json.loads(line) for line in
             (tmp_path / "prepared" / "prompts_open_weights" / "prompts.jsonl").read_text().splitlines()]
    assert [row["messages"][1]["content"] for row in asked] == [p["query"] for p in prompts]
    for line in (tmp_path / "prepared" / "validation" / "validation.jsonl").read_text().splitlines():
        check_sft_record(json.loads(line))
    # the open model's answers carry no metadata: matched to the questions by their prompt
    answers = [{"prompt": str(row["messages"][:2]),
                "inference": prompt["response"] if n % 3 == 0 else wrong_reply(prompt)}
               for n, (row, prompt) in enumerate(zip(asked, prompts))]
    (tmp_path / "answers.jsonl").write_text("".join(json.dumps(a) + "\n" for a in answers))
    report = make_preferences(tmp_path / "answers.jsonl", tmp_path / "prepared" / "prompts", tmp_path / "out",
                              max_length=16384, layout="open-weights")
    lines = (tmp_path / "out" / "train" / "train.jsonl").read_text().splitlines()
    right = sum(1 for n in range(len(prompts)) if n % 3 == 0)
    assert report["layout"] == "open-weights" and report["pairs"] == len(lines) == len(prompts) - right
    check_lines(lines, "dpo", "train.jsonl")
    by_query = {p["query"]: p for p in prompts}
    for line in lines:
        row = json.loads(line)
        system, user, chosen = row["chosen"]
        prompt = by_query[user["content"]]
        assert (system["content"], chosen["content"]) == (prompt["system"], prompt["response"])
        assert row["rejected"][2]["content"] == wrong_reply(prompt)


def test_open_weights_dpo_with_no_wrong_answer_writes_nothing(shared_finqa, tmp_path):
    from steps.finqa.preferences import PreferenceError
    from steps.preferences import make_preferences

    prepare(shared_finqa, tmp_path / "prepared", max_eval_records=5, open_weights_technique="dpo")
    prompts = [json.loads(line) for line in
               (tmp_path / "prepared" / "prompts" / "gen_qa.jsonl").read_text().splitlines()]
    asked = [[{"role": "system", "content": p["system"]}, {"role": "user", "content": p["query"]}] for p in prompts]
    (tmp_path / "answers.jsonl").write_text("".join(
        json.dumps({"prompt": str(turns), "inference": p["response"]}) + "\n" for turns, p in zip(asked, prompts)))
    with pytest.raises(PreferenceError, match="no preference pairs"):
        make_preferences(tmp_path / "answers.jsonl", tmp_path / "prepared" / "prompts", tmp_path / "out",
                         max_length=16384, layout="open-weights")
    assert not (tmp_path / "out" / "train" / "train.jsonl").exists()
