"""The pipeline's own rules for parameter values that are not recipe fields (those are AWS's, in
`steps.catalog`): record counts, the accuracy threshold and the training budget.

The preparation step applies them to its flags and `scripts.start_execution` to an execution's
overrides, so a value refused at the door is one the step would refuse, in the same words.
"""
from __future__ import annotations

import argparse
import math
from typing import Any, Callable

from steps.finqa.nova import MIN_TRAINING_RECORDS

EVERY_RECORD = ("", "all")
_EVERY_RECORD_HINT = "or empty / 'all' for every record"


class RuleError(ValueError):
    """A value the pipeline cannot run with; the message says what is allowed."""


def as_flag(rule: Callable[[str], Any]) -> Callable[[str], Any]:
    """A rule as an argparse type (argparse shows the message of ArgumentTypeError only)."""
    def parse(text: str) -> Any:
        try:
            return rule(text)
        except RuleError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return parse


def record_limit(text: str, minimum: int = 1, why: str = "") -> int | None:
    """A record count: a seeded sample of that many records; empty or "all" means every record."""
    if text.strip().lower() in EVERY_RECORD:
        return None
    try:
        value = int(text)
    except ValueError:
        raise RuleError(f"{text!r} is not a whole number ({_EVERY_RECORD_HINT})") from None
    if value < minimum:
        raise RuleError(f"{value} must be at least {minimum}{why} ({_EVERY_RECORD_HINT})")
    return value


def training_record_limit(text: str) -> int | None:
    """A training record count: fewer than Nova's minimum could never make a training file."""
    return record_limit(text, minimum=MIN_TRAINING_RECORDS, why=", the fewest Nova fine-tuning takes")


def accuracy_threshold(text: str) -> float:
    """The accuracy the gate asks for: a fraction of the test records, as `steps.evaluate` reports it."""
    try:
        value = float(text)
    except ValueError:
        raise RuleError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or not 0 <= value <= 1:
        hint = f"; for {value:g}% write {value / 100:g}" if 1 < value <= 100 else ""
        raise RuleError(f"{text.strip()} is not a fraction from 0 to 1 (accuracy is the share of test records "
                        f"answered right, 0.5 for half){hint}")
    return value


def max_training_cost(text: str) -> float | None:
    """MaxTrainingCost in USD; empty or 0 means no limit."""
    if text.strip() == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise RuleError(f"{text!r} is not an amount in USD (or 0 / empty for no limit)") from None
    if not math.isfinite(value) or value < 0:
        raise RuleError(f"{text!r} must be 0 or more USD (0 / empty for no limit)")
    return value or None


# The pipeline's parameters these rules are for (its recipe parameters follow the recipe's fields).
PARAMETER_RULES = {
    "TrainingRecords": training_record_limit,
    "EvaluationRecords": record_limit,
    "AccuracyThreshold": accuracy_threshold,
    "MaxTrainingCost": max_training_cost,
}
