"""FinQA preference pairs for Nova direct preference optimization (DPO): the gold reply preferred,
the model's own wrong reply not.

AWS's format (SageMaker developer guide, "Direct preference optimization (DPO)" for Nova,
https://docs.aws.amazon.com/sagemaker/latest/dg/nova-dpo.html, and the Nova user guide's DPO data
preparation): a `bedrock-conversation-2024` record as for SFT whose last turn is the
assistant's `candidates`, each `{"content": [{"text": ...}], "preferenceLabel": ...}`, labels
`preferred` and `non-preferred`. AWS's validator (amazon-nova-samples,
`customization/bedrock-finetuning/understanding/dataset_validation/nova_ft_dataset_validator.py`,
`ConverseDatasetSampleWithCandidates`) adds: only the last message holds candidates, at least two
of them, not all with one label, text only, roles alternating user / assistant from user, the
reserved strings banned everywhere, and 8 to 20,000 samples for Nova 1.0 (DPO is Nova 1.0 only).

One pair per record the model got wrong by FinQA's verdict: the preferred reply is the gold
`Program:` / `Answer:` reply exactly as the SFT data renders it, the non-preferred one is what the
model wrote, with the reserved strings neutralised as every other text is. A record the model got
right gives no pair; a record without a usable reply is dropped and counted under its reason.

Pure functions on texts and verdicts: scoring a reply is the caller's (steps/preferences.py uses
steps/evaluate.py's FinQA scoring), so no FinQA rule is written here.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .nova import (
    MAX_TRAINING_RECORDS,
    MIN_TRAINING_RECORDS,
    SCHEMA_VERSION,
    NovaDataError,
    RecordTooLongError,
    check_conversation_texts,
)
from .prompts import SanitiseCounts, sanitise

PREFERRED = "preferred"
NON_PREFERRED = "non-preferred"
LABELS = (PREFERRED, NON_PREFERRED)
MIN_PAIRS = MIN_TRAINING_RECORDS
"""AWS's validator: 8 to 20,000 samples for every Nova 1.0 model (MODEL_TO_NUM_SAMPLES_MAP)."""
MAX_PAIRS = MAX_TRAINING_RECORDS
# AWS's validator lists these too besides the reserved strings steps/finqa/prompts.py neutralises
# (INVALID_TOKENS_TEXT; missing commas there glue "Thought:" to its neighbours, so as written it
# catches "<unk>" and not "Thought:" alone; the service's own check is not published, so both are
# kept out). A model's reply may hold them; FinQA's text does not.
VALIDATOR_ONLY_TOKENS = ("thought:", "<unk>")

# Why a record gives no pair; each is counted in the report.
BASE_CORRECT = "base_correct"
NO_REPLY = "no_reply"
EMPTY_REPLY = "empty_reply"
SAME_AS_GOLD = "same_as_gold"
BANNED_TOKEN = "banned_token"
OVER_MAX_LENGTH = "over_max_length"
DROP_REASONS = {
    NO_REPLY: "the model's output has no reply for the record",
    EMPTY_REPLY: "the model's reply is empty",
    SAME_AS_GOLD: "the model's reply is the gold reply itself (the gold program does not give exe_ans)",
    BANNED_TOKEN: f"the model's reply holds a string AWS's validator bans ({', '.join(VALIDATOR_ONLY_TOKENS)})",
    OVER_MAX_LENGTH: "prompt and a reply together are over the recipe's max_length",
}


class PreferenceError(NovaDataError):
    """Preference data Nova DPO would refuse; the message says which rule and where."""


@dataclass(frozen=True)
class Attempt:
    """One prompt, its gold reply, the model's reply (None when it gave none) and FinQA's verdict on it."""
    id: str
    system: str
    user: str
    gold_reply: str
    reply: str | None
    correct: bool
    answer_correct: bool = False
    """Whether the reply's final answer was right although its program was not (reported only)."""


@dataclass
class PreferencePairs:
    """The pairs made (as JSONL lines, in the attempts' order) and what became of every attempt."""
    lines: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    attempts: int = 0
    base_correct: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    right_answer_wrong_program: int = 0
    sanitised: SanitiseCounts = field(default_factory=SanitiseCounts)
    problems: list[str] = field(default_factory=list)

    @property
    def made(self) -> int:
        return len(self.lines)

    def drop(self, reason: str, message: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        self.problems.append(message)

    def report(self, problems_kept: int = 50) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "pairs": self.made,
            "base_correct": self.base_correct,
            "dropped": dict(sorted(self.dropped.items())),
            "dropped_total": sum(self.dropped.values()),
            "drop_reasons": {reason: DROP_REASONS[reason] for reason in sorted(self.dropped)},
            "pairs_with_right_answer_wrong_program": self.right_answer_wrong_program,
            "sanitised_replacements": {"total": self.sanitised.total,
                                       "by_string": dict(sorted(self.sanitised.by_string.items()))},
            "min_pairs": MIN_PAIRS,
            "max_pairs": MAX_PAIRS,
            "problems": self.problems[:problems_kept],
            "problems_not_listed": max(0, len(self.problems) - problems_kept),
        }


def preference_record(system: str, user: str, preferred: str, non_preferred: str) -> dict[str, Any]:
    """One DPO record in AWS's format: the user turn, then the assistant's two labelled candidates."""
    return {
        "schemaVersion": SCHEMA_VERSION,
        "system": [{"text": system}],
        "messages": [
            {"role": "user", "content": [{"text": user}]},
            {"role": "assistant", "candidates": [
                {"content": [{"text": preferred}], "preferenceLabel": PREFERRED},
                {"content": [{"text": non_preferred}], "preferenceLabel": NON_PREFERRED},
            ]},
        ],
    }


def preference_line(system: str, user: str, preferred: str, non_preferred: str) -> str:
    """`preference_record` as a line of JSON, non-ASCII characters as \\u escapes (as the SFT lines)."""
    return json.dumps(preference_record(system, user, preferred, non_preferred), separators=(",", ":")) + "\n"


def build_pairs(attempts: Iterable[Attempt], max_length: int) -> PreferencePairs:
    """A pair for every attempt FinQA's verdict calls wrong and whose reply Nova takes; the rest counted."""
    pairs = PreferencePairs()
    for attempt in attempts:
        pairs.attempts += 1
        if attempt.correct:
            pairs.base_correct += 1
            continue
        if attempt.reply is None:
            pairs.drop(NO_REPLY, f"record {attempt.id!r}: no reply in the model's output")
            continue
        counts = SanitiseCounts()
        reply = sanitise(attempt.reply.strip(), counts)
        if not reply:
            pairs.drop(EMPTY_REPLY, f"record {attempt.id!r}: the model's reply is empty")
            continue
        if reply == attempt.gold_reply.strip():
            pairs.drop(SAME_AS_GOLD, f"record {attempt.id!r}: the model wrote the gold reply, which FinQA "
                                     "scores wrong (its gold program does not give exe_ans)")
            continue
        banned = [token for token in VALIDATOR_ONLY_TOKENS if token in reply.lower()]
        if banned:
            pairs.drop(BANNED_TOKEN, f"record {attempt.id!r}: the model's reply holds {banned}")
            continue
        try:
            for candidate in (attempt.gold_reply, reply):
                check_conversation_texts([attempt.system], [attempt.user, candidate], max_length)
        except RecordTooLongError as error:
            pairs.drop(OVER_MAX_LENGTH, f"record {attempt.id!r}: {error}")
            continue
        pairs.sanitised.add(counts)
        pairs.right_answer_wrong_program += attempt.answer_correct
        pairs.lines.append(preference_line(attempt.system, attempt.user, attempt.gold_reply, reply))
        pairs.ids.append(attempt.id)
    return pairs


def check_preference_record(record: Any) -> None:
    """Raise PreferenceError saying which of AWS's DPO rules the record breaks."""
    if not isinstance(record, dict):
        raise PreferenceError("a record is not a JSON object")
    unknown = set(record) - {"schemaVersion", "system", "messages"}
    if unknown:
        raise PreferenceError(f"unexpected fields {sorted(unknown)}")
    if "schemaVersion" in record and record["schemaVersion"] != SCHEMA_VERSION:
        raise PreferenceError(f"schemaVersion is {record['schemaVersion']!r}, not {SCHEMA_VERSION!r}")
    system = record.get("system", [])
    if not isinstance(system, list):
        raise PreferenceError("'system' must be a list of {'text': ...}")
    for part in system:
        _text(part, "system")
    messages = record.get("messages")
    if not isinstance(messages, list) or len(messages) < 2:
        raise PreferenceError("'messages' must hold at least a user turn and the assistant's candidates")
    for number, message in enumerate(messages):
        expected = "user" if number % 2 == 0 else "assistant"
        if not isinstance(message, dict) or message.get("role") != expected:
            raise PreferenceError(f"message {number}: roles must alternate user / assistant, starting with user")
        last = number == len(messages) - 1
        if last != ("candidates" in message):
            raise PreferenceError(f"message {number}: only the last message holds candidates, and it must")
        if last:
            _candidates(message, number)
        else:
            content = message.get("content")
            if set(message) != {"role", "content"} or not isinstance(content, list) or not content:
                raise PreferenceError(f"message {number} must be {{'role': ..., 'content': [...]}} with content")
            for part in content:
                _text(part, f"message {number}")
    if messages[-1].get("role") != "assistant":
        raise PreferenceError("the last message must be the assistant's")


def _candidates(message: dict, number: int) -> None:
    candidates = message["candidates"]
    if set(message) != {"role", "candidates"} or not isinstance(candidates, list) or len(candidates) < 2:
        raise PreferenceError(f"message {number}: 'candidates' must be a list of at least two")
    labels = set()
    for index, candidate in enumerate(candidates):
        where = f"message {number} candidate {index}"
        if not isinstance(candidate, dict) or set(candidate) != {"content", "preferenceLabel"}:
            raise PreferenceError(f"{where} must be exactly {{'content': [...], 'preferenceLabel': ...}}")
        if candidate["preferenceLabel"] not in LABELS:
            raise PreferenceError(f"{where}: preferenceLabel {candidate['preferenceLabel']!r} is not one of {LABELS}")
        labels.add(candidate["preferenceLabel"])
        content = candidate["content"]
        if not isinstance(content, list) or not content:
            raise PreferenceError(f"{where} has no content")
        for part in content:
            _text(part, where)
    if len(labels) < 2:
        raise PreferenceError(f"message {number}: the candidates must not all have the same preferenceLabel")


def _text(part: Any, where: str) -> str:
    if not isinstance(part, dict) or set(part) != {"text"} or not isinstance(part["text"], str):
        raise PreferenceError(f"{where}: each content part must be exactly {{'text': <string>}}")
    text = part["text"]
    if not text.strip():
        raise PreferenceError(f"{where}: empty text")
    try:
        check_conversation_texts([], [text], max_length=1 << 62)
    except NovaDataError as error:
        raise PreferenceError(f"{where}: {error}") from None
    banned = [token for token in VALIDATOR_ONLY_TOKENS if token in text.lower()]
    if banned:
        raise PreferenceError(f"{where}: the text holds {banned}, which AWS's validator refuses")
    return text


def check_preference_lines(lines: Sequence[str], name: str) -> None:
    """Check a whole DPO JSONL file as AWS's validator would; raise PreferenceError naming the line."""
    if not MIN_PAIRS <= len(lines) <= MAX_PAIRS:
        raise PreferenceError(f"{name}: {len(lines)} preference pairs; Nova 1.0 DPO takes {MIN_PAIRS} to {MAX_PAIRS:,}")
    for number, line in enumerate(lines, start=1):
        try:
            check_preference_record(json.loads(line))
        except json.JSONDecodeError as error:
            raise PreferenceError(f"{name} line {number}: not JSON ({error})") from None
        except PreferenceError as error:
            raise PreferenceError(f"{name} line {number}: {error}") from None
