"""FinQA in AWS's data formats for serverless customization of open-weights models (Llama,
Qwen, GPT-OSS ...), built from the same prompt and reference as Nova's data (`prompts.py`,
`rft.py`): only the layout differs.

AWS's pages (SageMaker developer guide, read 2026-12-06), JSONL, one object a line, sent to the
job as an `S3Prefix` channel (AWS's SFTTrainer / RLVRTrainer send `S3Prefix` for every
non-Nova model):
- SFT (`customizing-models-sft`, "Format 1: messages"): `{"messages": [{"role": "system",
  "content": ...}, {"role": "user", ...}, {"role": "assistant", ...}]}`, content a string, the
  system message optional and first;
- DPO (`customizing-models-dpo`, "Format 1: messages"): `{"chosen": [...], "rejected": [...]}`,
  each a full message list; the system message, when present, first and the same in both. The
  pairs are the ones steps/finqa/preferences.py makes (the gold reply chosen, the model's own
  wrong reply rejected), re-laid out;
- RLVR (`customizing-models-rft`, "RLVR > Dataset format"): verl's layout, `{"data_source",
  "prompt": [messages], "ability", "reward_model": {"ground_truth", "style": "rule"}}`, the
  ground truth a string (the page's example: "72"). FinQA's ground truth is the reference the
  reward scores against (`rft.reference_answer`: id, gold program, exe_ans, answer, table) as
  JSON text; `rft.read_reference` reads that text back.
None of these pages asks for the prompt pre-rendered in the model's chat template: the training
container applies each model's own, so one layout serves every family.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from json.encoder import encode_basestring_ascii
from typing import Any

from .nova import NovaDataError
from .records import FinQARecord
from .rft import reference_answer

DATA_SOURCE = "finqa"
ABILITY = "finance"
REWARD_STYLE = "rule"
ROLES = ("system", "user", "assistant")

_json = json.JSONEncoder(separators=(",", ":")).encode


class OpenWeightsDataError(NovaDataError):
    """Data that breaks one of AWS's rules for open-weights data; the message says which and where."""


def _messages(system: str, user: str, assistant: str | None = None) -> str:
    turns = [f'{{"role":"system","content":{encode_basestring_ascii(system)}}}',
             f'{{"role":"user","content":{encode_basestring_ascii(user)}}}']
    if assistant is not None:
        turns.append(f'{{"role":"assistant","content":{encode_basestring_ascii(assistant)}}}')
    return "[" + ",".join(turns) + "]"


def sft_line(system: str, user: str, assistant: str) -> str:
    """One SFT record (`messages`) as a line of JSON, non-ASCII characters as \\u escapes."""
    return f'{{"messages":{_messages(system, user, assistant)}}}\n'


def dpo_line(system: str, user: str, chosen: str, rejected: str) -> str:
    """One DPO record (`chosen` / `rejected`, the same system and user turns in both)."""
    return f'{{"chosen":{_messages(system, user, chosen)},"rejected":{_messages(system, user, rejected)}}}\n'


def dpo_line_from_pair(pair: dict[str, Any]) -> str:
    """A preference pair as steps/finqa/preferences.py makes it (Nova's layout: the gold reply the
    `preferred` candidate, the model's own wrong reply the `non-preferred`) in the open-weights layout."""
    candidates = {c["preferenceLabel"]: c["content"][0]["text"] for c in pair["messages"][-1]["candidates"]}
    return dpo_line(pair["system"][0]["text"], pair["messages"][0]["content"][0]["text"],
                    candidates["preferred"], candidates["non-preferred"])


def ground_truth(record: FinQARecord) -> str:
    """The RLVR ground truth: the reward's reference for the record, as JSON text."""
    return _json(reference_answer(record))


def rlvr_line(system: str, user: str, truth: str) -> str:
    """One RLVR record in verl's layout."""
    return (f'{{"data_source":"{DATA_SOURCE}","prompt":{_messages(system, user)},"ability":"{ABILITY}",'
            f'"reward_model":{{"ground_truth":{encode_basestring_ascii(truth)},"style":"{REWARD_STYLE}"}}}}\n')


def _check_messages(messages: Any, where: str, *, last: str) -> None:
    if not isinstance(messages, list) or not messages:
        raise OpenWeightsDataError(f"'{where}' must be a non-empty list of messages")
    for number, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise OpenWeightsDataError(f"{where} message {number} must be exactly {{'role': ..., 'content': ...}}")
        if message["role"] not in ROLES:
            raise OpenWeightsDataError(
                f"{where} message {number} has role {message['role']!r}; roles are {', '.join(ROLES)}")
        if not isinstance(message["content"], str) or not message["content"].strip():
            raise OpenWeightsDataError(f"{where} message {number} has no text")
        if message["role"] == "system" and number != 0:
            raise OpenWeightsDataError(f"{where} message {number} is a system message; it must come first")
    if messages[-1]["role"] != last:
        raise OpenWeightsDataError(f"'{where}' must end with the {last}'s message")


def check_sft_record(row: Any) -> None:
    if not isinstance(row, dict) or set(row) != {"messages"}:
        raise OpenWeightsDataError("an SFT record must be an object with exactly 'messages'")
    _check_messages(row["messages"], "messages", last="assistant")


def check_dpo_record(row: Any) -> None:
    if not isinstance(row, dict) or set(row) != {"chosen", "rejected"}:
        raise OpenWeightsDataError("a DPO record must be an object with exactly 'chosen' and 'rejected'")
    for name in ("chosen", "rejected"):
        _check_messages(row[name], name, last="assistant")
    if row["chosen"][:-1] != row["rejected"][:-1]:
        raise OpenWeightsDataError("'chosen' and 'rejected' must share the same system and user messages")
    if row["chosen"][-1]["content"] == row["rejected"][-1]["content"]:
        raise OpenWeightsDataError("the chosen and the rejected response are the same text")


def check_rlvr_record(row: Any) -> None:
    if not isinstance(row, dict) or not {"prompt", "reward_model"} <= set(row):
        raise OpenWeightsDataError("an RLVR record must be an object with 'prompt' and 'reward_model'")
    _check_messages(row["prompt"], "prompt", last="user")
    reward_model = row["reward_model"]
    if not isinstance(reward_model, dict) or not isinstance(reward_model.get("ground_truth"), str) \
            or not reward_model["ground_truth"].strip():
        raise OpenWeightsDataError("'reward_model.ground_truth' must be a non-empty string")


CHECKS = {"sft": check_sft_record, "dpo": check_dpo_record, "rlvr": check_rlvr_record}


def check_lines(lines: Sequence[str], technique: str, name: str) -> None:
    """Check a whole JSONL file's lines in the technique's format; OpenWeightsDataError names the line."""
    if not lines:
        raise OpenWeightsDataError(f"{name}: no records")
    check = CHECKS[technique]
    for number, line in enumerate(lines, start=1):
        try:
            check(json.loads(line))
        except (json.JSONDecodeError, OpenWeightsDataError) as error:
            raise OpenWeightsDataError(f"{name} line {number}: {error}") from None
