"""The reward Lambda in both of AWS's contracts: Nova's (a list of results) and open-weights
models' (`{statusCode, body}`), each checked with AWS's own verifier in sagemaker-train."""
from __future__ import annotations

import json

import pytest
from sagemaker.train.common_utils.rlvr_reward_verifier import _unwrap_response, _validate_output_format

from steps import reward
from steps.finqa.open_weights import ground_truth
from steps.finqa.prompts import SYSTEM_PROMPT, render_question, render_target
from steps.finqa.records import load_records
from steps.finqa.rft import reference_answer


@pytest.fixture(scope="module")
def records(shared_finqa):
    return load_records([shared_finqa / "test_100.json"], strict=True).records[:20]


def nova_samples(records):
    # Nova: the data line's reference_answer, the response appended as the assistant turn.
    return [{"id": record.id, "reference_answer": reference_answer(record),
             "messages": [{"role": "system", "content": SYSTEM_PROMPT},
                          {"role": "user", "content": render_question(record)},
                          {"role": "assistant", "content": render_target(record) if n % 2 == 0 else "Answer: 0"}]}
            for n, record in enumerate(records)]


def open_weights_samples(records):
    # The open-weights data line is verl-style: its reference is reward_model.ground_truth.
    samples = nova_samples(records)
    for sample, record in zip(samples, records):
        del sample["reference_answer"]
        sample["reward_model"] = {"ground_truth": ground_truth(record), "style": "rule"}
    return samples


def expected(records):
    return [1.0 if n % 2 == 0 else 0.0 for n in range(len(records))]


def test_nova_contract_is_a_plain_list_awss_verifier_accepts(records, monkeypatch):
    monkeypatch.delenv(reward.CONTRACT_VARIABLE, raising=False)
    payload = reward.lambda_handler(nova_samples(records), None)
    results = _unwrap_response(json.loads(json.dumps(payload)), is_nova=True)
    assert isinstance(results, list)
    assert all(_validate_output_format(result, n) == [] for n, result in enumerate(results))
    assert [r["aggregate_reward_score"] for r in results] == expected(records)
    assert [r["id"] for r in results] == [record.id for record in records]


def test_open_weights_contract_wraps_the_same_items_and_awss_verifier_unwraps_them(records, monkeypatch):
    monkeypatch.setenv(reward.CONTRACT_VARIABLE, reward.OPEN_WEIGHTS)
    payload = json.loads(json.dumps(reward.lambda_handler(open_weights_samples(records), None)))
    assert payload["statusCode"] == 200 and isinstance(payload["body"], str)
    results = _unwrap_response(payload, is_nova=False)
    assert all(_validate_output_format(result, n) == [] for n, result in enumerate(results))
    assert [r["aggregate_reward_score"] for r in results] == expected(records)
    # the same items as the Nova contract gives for the same responses
    monkeypatch.setenv(reward.CONTRACT_VARIABLE, reward.NOVA)
    assert results == reward.lambda_handler(nova_samples(records), None)


def test_an_http_style_event_is_answered_in_the_open_weights_contract(records, monkeypatch):
    monkeypatch.delenv(reward.CONTRACT_VARIABLE, raising=False)
    payload = reward.lambda_handler({"body": json.dumps(open_weights_samples(records))}, None)
    assert [r["aggregate_reward_score"] for r in _unwrap_response(payload, is_nova=False)] == expected(records)


def test_the_nova_contract_response_is_refused_by_the_open_weights_check_and_back(records, monkeypatch):
    # The two contracts are not interchangeable: each one's response fails the other's check.
    monkeypatch.setenv(reward.CONTRACT_VARIABLE, reward.NOVA)
    with pytest.raises(ValueError, match="statusCode"):
        _unwrap_response(reward.lambda_handler(nova_samples(records), None), is_nova=False)
    monkeypatch.setenv(reward.CONTRACT_VARIABLE, reward.OPEN_WEIGHTS)
    wrapped = _unwrap_response(reward.lambda_handler(nova_samples(records), None), is_nova=True)
    assert _validate_output_format(wrapped, 0) != []


def test_an_unknown_contract_setting_falls_back_to_nova_and_says_so(records, monkeypatch, capsys):
    monkeypatch.setenv(reward.CONTRACT_VARIABLE, "openweights")
    assert isinstance(reward.lambda_handler(nova_samples(records[:1]), None), list)
    assert '"bad_contract"' in capsys.readouterr().out


def test_a_sample_with_neither_reference_is_a_bad_sample_not_an_error(records, monkeypatch):
    monkeypatch.setenv(reward.CONTRACT_VARIABLE, reward.OPEN_WEIGHTS)
    sample = open_weights_samples(records[:1])[0]
    del sample["reward_model"]
    results = _unwrap_response(reward.lambda_handler([sample], None), is_nova=False)
    assert results[0]["aggregate_reward_score"] == 0.0
    assert {m["name"]: m["value"] for m in results[0]["metrics_list"]}["bad_sample"] == 1.0
