"""Nova's data formats and the rules a file must pass before a GPU job sees it.

- Training and validation: `bedrock-conversation-2024` records, one system prompt, one user
  turn, one assistant turn (Nova Lite 1.0 SFT).
- Evaluation, bring your own dataset (`gen_qa`): `system`, `query`, `response` and
  `metadata`, all strings.

The rules are those of AWS's data validator for Nova 1.0 SFT (schema, roles, non-empty text,
reserved strings, 8 to 20,000 records), plus the recipe's `max_length`, which AWS does not
check before the job starts.
"""
from __future__ import annotations

import functools
import json
from json.encoder import encode_basestring_ascii
from typing import Any

from .prompts import estimate_tokens, find_reserved

SCHEMA_VERSION = "bedrock-conversation-2024"
MIN_TRAINING_RECORDS = 8
MAX_TRAINING_RECORDS = 20_000
EVAL_PROMPT_TOKEN_GUIDE = 3_500
"""AWS's guidance for `system + query` in a gen_qa evaluation; longer prompts may be cut."""


class NovaDataError(ValueError):
    """Data that would break one of Nova's rules; the message says which and where."""


class RecordTooLongError(NovaDataError):
    """A record over the recipe's max_length: skipped and counted, never truncated."""


def conversation_line(system: str, user: str, assistant: str) -> str:
    """One `bedrock-conversation-2024` record as a line of JSON, non-ASCII as \\u escapes.

    Filled into a template by json's C string encoder: the same JSON as encoding the record's
    dict, in half the time, which counts at 20,000 records of several thousand characters.
    """
    return (f'{{"schemaVersion":"{SCHEMA_VERSION}","system":[{{"text":{_encoded_system(system)}}}],'
            f'"messages":[{{"role":"user","content":[{{"text":{encode_basestring_ascii(user)}}}]}},'
            f'{{"role":"assistant","content":[{{"text":{encode_basestring_ascii(assistant)}}}]}}]}}\n')


# Every record of a file has the same system prompt: encode it, and check it, once.
_encoded_system = functools.lru_cache(maxsize=4)(encode_basestring_ascii)


def gen_qa_record(system: str, query: str, response: str, metadata: dict[str, Any]) -> dict[str, str]:
    return {
        "system": system,
        "query": query,
        "response": response,
        "metadata": json.dumps(metadata, ensure_ascii=False, sort_keys=True, separators=(",", ":")),
    }


def conversation_texts(record: dict[str, Any]) -> list[str]:
    """All texts of a conversation record, system first; raises NovaDataError on a bad shape."""
    if not isinstance(record, dict):
        raise NovaDataError("a record is not a JSON object")
    if record.get("schemaVersion") != SCHEMA_VERSION:
        raise NovaDataError(f"schemaVersion is {record.get('schemaVersion')!r}, not {SCHEMA_VERSION!r}")
    unknown = set(record) - {"schemaVersion", "system", "messages"}
    if unknown:
        raise NovaDataError(f"unexpected fields {sorted(unknown)}")
    texts = []
    system = record.get("system", [])
    if not isinstance(system, list):
        raise NovaDataError("'system' must be a list of {'text': ...}")
    for part in system:
        texts.append(_text_of(part, "system"))
    messages = record.get("messages")
    if not isinstance(messages, list) or len(messages) < 2:
        raise NovaDataError("'messages' must hold at least a user and an assistant turn")
    for number, message in enumerate(messages):
        expected = "user" if number % 2 == 0 else "assistant"
        if not isinstance(message, dict) or message.get("role") != expected:
            role = message.get("role") if isinstance(message, dict) else None
            raise NovaDataError(
                f"message {number} has role {role!r}; roles must alternate user / assistant, "
                "starting with user")
        content = message.get("content")
        if not isinstance(content, list) or not content:
            raise NovaDataError(f"message {number} has no content")
        texts.extend(_text_of(part, f"message {number}") for part in content)
    if messages[-1].get("role") != "assistant":
        raise NovaDataError("the last message must be the assistant's")
    return texts


def _text_of(part: Any, where: str) -> str:
    if not isinstance(part, dict) or set(part) != {"text"} or not isinstance(part["text"], str):
        raise NovaDataError(f"{where}: each content part must be exactly {{'text': <string>}}")
    if not part["text"].strip():
        raise NovaDataError(f"{where}: empty text")
    return part["text"]


def check_conversation(record: dict[str, Any], max_length: int) -> int:
    """The record's estimated token count, after checking every rule for one record."""
    texts = conversation_texts(record)
    system = len(record.get("system", []))
    return check_conversation_texts(texts[:system], texts[system:], max_length)


def check_conversation_texts(system: list[str], turns: list[str], max_length: int) -> int:
    """The estimated token count of a conversation's texts, after checking the rules for text:
    not empty, no reserved strings, within max_length all together."""
    tokens = sum(map(_checked_system_tokens, system)) + sum(map(_checked_tokens, turns))
    if tokens > max_length:
        raise RecordTooLongError(f"about {tokens} tokens, over max_length {max_length}")
    return tokens


def _checked_tokens(text: str) -> int:
    if not text.strip():
        raise NovaDataError("empty text")
    reserved = find_reserved(text)
    if reserved:
        raise NovaDataError(f"reserved strings {reserved} in the text")
    return estimate_tokens(text)


_checked_system_tokens = functools.lru_cache(maxsize=4)(_checked_tokens)


def check_conversation_lines(lines: list[str], max_length: int, name: str, *, training: bool) -> None:
    """Check a whole JSONL file's lines as Nova will; raise NovaDataError naming the line."""
    if training and not MIN_TRAINING_RECORDS <= len(lines) <= MAX_TRAINING_RECORDS:
        raise NovaDataError(
            f"{name}: {len(lines)} records; Nova Lite 1.0 fine-tuning takes "
            f"{MIN_TRAINING_RECORDS} to {MAX_TRAINING_RECORDS:,} training records")
    if not lines:
        raise NovaDataError(f"{name}: no records")
    for number, line in enumerate(lines, start=1):
        try:
            check_conversation(json.loads(line), max_length)
        except (json.JSONDecodeError, NovaDataError) as error:
            raise NovaDataError(f"{name} line {number}: {error}") from None


def check_gen_qa(record: Any) -> None:
    """Check one gen_qa evaluation record; raise NovaDataError saying what is wrong."""
    if not isinstance(record, dict):
        raise NovaDataError("not a JSON object")
    unknown = set(record) - {"system", "query", "response", "images", "metadata"}
    if unknown:
        raise NovaDataError(f"unexpected fields {sorted(unknown)}")
    for field in ("query", "response"):
        if not isinstance(record.get(field), str) or not record[field].strip():
            raise NovaDataError(f"'{field}' must be a non-empty string")
    for field in ("system", "metadata"):
        if field in record and not isinstance(record[field], str):
            raise NovaDataError(f"'{field}' must be a string")


def check_gen_qa_lines(lines: list[str], name: str) -> None:
    """Check a whole gen_qa JSONL file's lines; raise NovaDataError naming the line."""
    if not lines:
        raise NovaDataError(f"{name}: no records")
    for number, line in enumerate(lines, start=1):
        try:
            check_gen_qa(json.loads(line))
        except (json.JSONDecodeError, NovaDataError) as error:
            raise NovaDataError(f"{name} line {number}: {error}") from None
