"""FinQA in AWS's data format for reinforcement fine-tuning (RFT) of Nova 2, and the reference
the reward function reads back from it.

AWS's format is OpenAI's reinforcement fine-tuning format ("Preparing data for RFT on Amazon
Nova 2", https://docs.aws.amazon.com/nova/latest/nova2-userguide/nova-data-prep-rft-2.html):
one JSON object a line with
- `messages` (required): the turns, each `{"role": ..., "content": <text>}`, roles `system`
  (first, if present) and `user`, optionally `assistant`; the content is not empty;
- `reference_answer` (required): whatever the reward function needs to score a response;
- `id` (optional): not empty when present.
AWS's own validator (aws/nova-forge-sdk, `rft_dataset_validator.py`) enforces the same.

A FinQA line holds the system prompt and the user turn that SFT and evaluation use
(`prompts.SYSTEM_PROMPT`, `prompts.render_question`), and as its reference the gold
program, `exe_ans`, the human answer and the table: the reward executes the model's program
on that table and compares the value with `exe_ans`, and reads its answer against both golds.
The training container passes `reference_answer` through to the reward Lambda unchanged.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import Any

from .answers import Gold
from .errors import CountedError
from .nova import NovaDataError
from .program import Value
from .records import FinQARecord, RecordError, parse_exe_ans

ROLES = ("system", "user", "assistant")

_json = json.JSONEncoder(separators=(",", ":")).encode


def reference_answer(record: FinQARecord) -> dict[str, Any]:
    """What the reward needs to score a response to this record."""
    if record.exe_ans is None:
        raise RecordError("missing_exe_ans", f"record {record.id!r}: no exe_ans, so no response to it can be scored")
    return {
        "id": record.id,
        "program": record.program,
        "exe_ans": record.exe_ans,
        "answer": record.answer,
        "table": [list(row) for row in record.table],
    }


def rft_line(record_id: str, system: str, user: str, reference: dict[str, Any]) -> str:
    """One RFT record as a line of JSON, non-ASCII characters as \\u escapes."""
    return (f'{{"id":{encode_basestring_ascii(record_id)},'
            f'"messages":[{{"role":"system","content":{encode_basestring_ascii(system)}}},'
            f'{{"role":"user","content":{encode_basestring_ascii(user)}}}],'
            f'"reference_answer":{_json(reference)}}}\n')


def check_rft_record(row: Any) -> None:
    """Raise NovaDataError saying which of AWS's RFT rules a record breaks."""
    if not isinstance(row, dict):
        raise NovaDataError("a record is not a JSON object")
    if "id" in row and (not isinstance(row["id"], str) or not row["id"].strip()):
        raise NovaDataError("'id' must be a non-empty string when present")
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        raise NovaDataError("'messages' must be a non-empty list of turns")
    for number, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise NovaDataError(f"message {number} must be exactly {{'role': ..., 'content': ...}}")
        if message["role"] not in ROLES:
            raise NovaDataError(f"message {number} has role {message['role']!r}; roles are {', '.join(ROLES)}")
        if not isinstance(message["content"], str) or not message["content"].strip():
            raise NovaDataError(f"message {number} has no text")
        if message["role"] == "system" and number != 0:
            raise NovaDataError(f"message {number} is a system turn; the system turn must come first")
    if not any(message["role"] == "user" for message in messages):
        raise NovaDataError("no user turn")
    reference = row.get("reference_answer")
    if not isinstance(reference, (dict, str)) or not reference:
        raise NovaDataError("'reference_answer' must be a non-empty object (or text)")


def check_rft_lines(lines: Sequence[str], name: str) -> None:
    """Check a whole RFT JSONL file's lines; raise NovaDataError naming the line."""
    if not lines:
        raise NovaDataError(f"{name}: no records")
    for number, line in enumerate(lines, start=1):
        try:
            check_rft_record(json.loads(line))
        except (json.JSONDecodeError, NovaDataError) as error:
            raise NovaDataError(f"{name} line {number}: {error}") from None


class ReferenceAnswerError(CountedError):
    """A reference_answer the reward cannot score against."""


@dataclass(frozen=True)
class Reference:
    id: str | None
    exe_ans: Value
    gold: Gold
    table: Sequence[Sequence[str]]


def read_reference(reference: Any) -> Reference:
    """The scoring reference in a `reference_answer` this module wrote; ReferenceAnswerError otherwise."""
    if isinstance(reference, str):
        try:
            reference = json.loads(reference)
        except json.JSONDecodeError:
            raise ReferenceAnswerError("bad_reference", "reference_answer is text that is not a JSON object") from None
    if not isinstance(reference, dict):
        raise ReferenceAnswerError("bad_reference", f"reference_answer is a {type(reference).__name__}, not an object")
    try:
        exe_ans = parse_exe_ans(reference.get("exe_ans"), "reference_answer")
    except RecordError as error:
        raise ReferenceAnswerError("bad_reference", str(error)) from None
    if exe_ans is None:
        raise ReferenceAnswerError("bad_reference", "reference_answer has no exe_ans")
    answer = reference.get("answer")
    table = reference.get("table", [])
    if not isinstance(answer, (str, type(None))) or not _is_table(table):
        raise ReferenceAnswerError("bad_reference",
                                   "reference_answer's answer must be text and its table a list of rows of text")
    record_id = reference.get("id")
    return Reference(id=record_id if isinstance(record_id, str) else None, exe_ans=exe_ans,
                     gold=Gold.of(exe_ans, answer or ""), table=table)


def _is_table(table: Any) -> bool:
    # The reward reads a table for every rollout: str.join checks a row's cells in C, several
    # times faster than isinstance on each cell.
    if not isinstance(table, list):
        return False
    try:
        for row in table:
            if not isinstance(row, list):
                return False
            "".join(row)
    except TypeError:
        return False
    return True
