"""Reading a model's generation for FinQA, and deciding whether its answer is right.

Where the answer is taken from (`read_generation`, `extract_answer`), in this order:

1. Anything inside `<think>...</think>` is reasoning and is dropped; an unclosed
   `<think>` (a generation cut off while thinking) drops everything after it, and a
   `</think>` without an opening tag (a chat template that opens the block in the
   prompt) drops everything before it.
2. The last `Answer:` label (also `**Answer:**`, `Final answer:`): the text after it on
   its line, or the next non-empty line if that is empty.
3. Otherwise the last `\\boxed{...}`, then the last "the answer is ..." phrase.
4. Otherwise, when the model ignored the format, the free text outside `Program:` lines.

A `\\boxed{...}` is read whole, braces inside it included (`\\boxed{\\text{35}\\%}`), with the
LaTeX markup dropped and a scale word right after it kept (`\\boxed{35} million`). When the
text chosen in 2 holds boxes, or the generation holds several, the last box is the answer:
a model that corrects itself boxes its correction last.

From the chosen text a numeric gold takes its number (from a label or phrase the first
number, since an answer line starts with its answer; from free text the last number, since
reasoning comes before the conclusion); a yes/no gold takes the yes/no word the same way.
A year in a sentence (a bare 1900-2099 after "in", "from", "to", "fiscal", a month...) is
passed over when the text has any other number.
A number is read like this (`parse_number`): "$", "USD", thousands commas, markdown `*`
and backticks are ignored; "(1,234)" and "-$5" are negative (a "-" glued to a preceding
digit or letter is a range or a hyphen, not a sign); "%", "percent" mark a percentage;
a scale word right after a number ("thousand", "million", "mn", "mm", "billion", "bn") is
its unit: `$1,234.5 million` reads as 1234.5 (FinQA's amounts are mostly in the units of
the report, as the gold 1234.5 is) and also as 1,234,500,000 (some golds are multiplied
out: 35,000,000 for "35 million"). A number of more than MAX_NUMBER_DIGITS digits is not
an answer.

When an answer is right (`answer_matches`), with `tolerance` the relative tolerance REL
(DEFAULT_TOLERANCE unless the caller sets one):

- Gold targets: the record's `exe_ans`, and the number of its human answer string
  (FinQA's human answers are rounded: "34%" for 0.34461), as written, multiplied out if it
  has a scale word and, if it is a percentage, as a fraction.
- Readings of the prediction: its value, value / 100 and value * 100, so 34.7%, 0.347,
  34.7 and "34.72 %" all answer a gold of 0.34719 (or of 34.719, when the gold program
  multiplied by 100), and its value multiplied out if it has a scale word. The hundredfold
  readings are always allowed, not only next to a "%": FinQA's own human answers drop the
  sign ("27.9" for an exe_ans of 0.279). They are not combined with a scale word.
- Right when some reading r and some target t have |r - t| <= REL * |t|, or both are 0,
  computed exactly: every number is taken as the decimal it is written as (exe_ans as its
  shortest decimal form, REL as written), so an answer exactly REL away is right whatever
  float rounding would say. The sign counts: "a 6.1% decrease" written as 6.1% is wrong
  for a gold of -0.061.
- yes/no golds: the answer must be the same word as exe_ans or the human answer.

The tolerance travels into evaluation.json (`tolerance_rules`) so a figure can always be
read with the rule that produced it.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Context, Decimal, localcontext
from typing import Union

from .program import Value
from .prompts import ANSWER_PREFIX, PROGRAM_PREFIX

DEFAULT_TOLERANCE = 0.01
"""1% relative: an answer rounded to three significant digits (34.7% or 35% for 0.34719) is
right; a different quantity seldom is within 1%."""

MAX_GENERATION_CHARS = 20000
"""Longer generations are read from their tail: the answer comes last, and the regular
expressions stay fast on hostile input."""

MAX_NUMBER_DIGITS = 100
"""A longer run of digits is no financial answer (and exact arithmetic on it costs)."""

_EXACT = Context(prec=1000)
"""Decimal arithmetic that never rounds here: numbers of at most MAX_NUMBER_DIGITS digits,
floats' exponents within +-324, times 100 or 10**9, need far fewer than 1000 digits."""

SCALES = {"thousand": 10 ** 3, "million": 10 ** 6, "mn": 10 ** 6, "mm": 10 ** 6, "billion": 10 ** 9, "bn": 10 ** 9}


@dataclass(frozen=True)
class Number:
    exact: Decimal
    """The number as written, exactly: "0.3535", not the float nearest it."""
    percent: bool
    text: str
    year: bool = False
    """A bare 1900-2099 after "in", "from", "fiscal"...: a date in a sentence, not an answer."""
    scale: int = 1
    """10**6 for "35 million": the scale word after the number, 1 when there is none."""

    @property
    def value(self) -> float:
        return float(self.exact)


Answer = Union[Number, str]
"""A parsed answer: a Number, or "yes" / "no"."""


@dataclass(frozen=True)
class Generation:
    program: str | None
    """The text after the last `Program:` label, or None."""
    answer_text: str | None
    """The text the answer is taken from, or None when there is nothing to read."""
    answer_source: str
    """answer_line, boxed, answer_phrase, free_text, or none."""


_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"
_PROGRAM_WORD = re.escape(PROGRAM_PREFIX.rstrip(":"))
_ANSWER_WORD = re.escape(ANSWER_PREFIX.rstrip(":"))
# markdown around a label: "**Answer:** 34.7%", "### Program:", "`Program:`"
_PROGRAM_LABEL = re.compile(r"(?im)^[*_`#> \t]*" + _PROGRAM_WORD + r"[*_`\s]*[:：][*_`\s]*(.*)$")
_ANSWER_LABEL = re.compile(r"(?i)\b(?:final\s+)?" + _ANSWER_WORD + r"[*_`\s]*[:：][*_`\s]*(.*)")
_BOXED_PARTS = re.compile(r"\\boxed\s*\{|\{|\}")
_SCALE_AFTER = re.compile(r"\s*(thousand|million|billion|mn|bn|mm)\b", re.IGNORECASE)
_LATEX_COMMAND = re.compile(r"\\(?:text|textbf|textrm|mathrm|mathbf|rm|bf|operatorname|left|right)\b")
_LATEX_SPACE = re.compile(r"\\[,;:! ]|~")
_ANSWER_PHRASE = re.compile(r"(?i)\banswer\s+(?:is|would\s+be|will\s+be|=)\s*:?\s*([^\n]*)")
_NUMBER = re.compile(
    r"(?<![\w.])(?P<open>\(\s*)?(?P<sign>[-−–+]\s*)?(?P<currency>(?:us)?\$\s*|usd\s*)?(?P<sign2>[-−–]\s*)?"
    r"(?P<digits>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?!\d|,\d)"
    r"(?P<unit>\s*(?:%|percent\b|per\s*cent\b|pct\b))?"
    r"(?:\s*(?P<scale>million|billion|thousand|mn|bn|mm)\b)?"
    r"(?P<close>\s*\))?",
    re.IGNORECASE)
_YEAR = re.compile(r"(?:19|20)\d\d")
_BEFORE_YEAR = re.compile(
    r"(?i)\b(?:in|from|to|for|during|since|between|and|through|until|of|fiscal|fy|year|years|ended|"
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:tember)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|\d{1,2}\s*,)\s*$")
_YES_NO_WORD = re.compile(r"(?i)\b(yes|no)\b")
_MARKDOWN = re.compile(r"[*`]")


def read_generation(text: str) -> Generation:
    """Where a generation's program and answer are, by the rules in the module docstring."""
    if not isinstance(text, str):
        return Generation(None, None, "none")
    text = _without_thinking(text[-MAX_GENERATION_CHARS:])
    program = None
    program_labels = list(_PROGRAM_LABEL.finditer(text))
    if program_labels:
        last = program_labels[-1]
        program = _program_text(last.group(1) or _next_line(text, last.end()))
    answer_labels = list(_ANSWER_LABEL.finditer(text))
    if answer_labels:
        last = answer_labels[-1]
        answer = last.group(1).strip() or _next_line(text, last.end())
        boxed = boxed_answers(answer)
        return Generation(program, boxed[-1] if boxed else answer, "answer_line")
    boxed = boxed_answers(text)
    if boxed:
        return Generation(program, boxed[-1], "boxed")
    phrases = list(_ANSWER_PHRASE.finditer(text))
    if phrases:
        return Generation(program, phrases[-1].group(1), "answer_phrase")
    free_text = _PROGRAM_LABEL.sub(" ", text).strip()
    if free_text:
        return Generation(program, free_text, "free_text")
    return Generation(program, None, "none")


def boxed_answers(text: str) -> list[str]:
    """The content of every complete `\\boxed{...}`, in the order the boxes open, as plain text
    with the scale word that follows a box."""
    boxes: list[tuple[int, str]] = []
    opened: list[tuple[int, int]] = []  # (where the content starts, 1 for a box, 0 for a brace)
    # one pass over the braces: a box inside a box, or a box never closed, costs no rescan
    for part in _BOXED_PARTS.finditer(text):
        if part.group(0) == "}":
            if opened:
                start, is_box = opened.pop()
                if is_box:
                    scale = _SCALE_AFTER.match(text, part.end())
                    content = _plain_latex(text[start:part.start()])
                    boxes.append((start, content + (" " + scale.group(1) if scale else "")))
        else:
            opened.append((part.end(), int(part.group(0) != "{")))
    return [content for _, content in sorted(boxes)]


def _plain_latex(text: str) -> str:
    text = _LATEX_SPACE.sub("", _LATEX_COMMAND.sub("", text))
    return text.replace("\\%", "%").replace("\\$", "$").replace("{", "").replace("}", "")


def _without_thinking(text: str) -> str:
    # str.find, not a regular expression: many unclosed tags must not cost quadratic time
    lowered = text.lower()
    kept = []
    position = 0
    first_close, first_open = lowered.find(_THINK_CLOSE), lowered.find(_THINK_OPEN)
    if first_close >= 0 and (first_open < 0 or first_close < first_open):
        # the opening tag was in the prompt (or cut off with a long generation's head)
        position = first_close + len(_THINK_CLOSE)
    while True:
        start = lowered.find(_THINK_OPEN, position)
        if start < 0:
            kept.append(text[position:])
            break
        kept.append(text[position:start])
        end = lowered.find(_THINK_CLOSE, start)
        if end < 0:
            break
        position = end + len(_THINK_CLOSE)
    return " ".join(kept)


def _next_line(text: str, position: int) -> str:
    for line in text[position:].splitlines():
        if line.strip():
            return line.strip()
    return ""


def _program_text(text: str) -> str:
    # "Program: ... Answer: ..." on one line: the answer is not part of the program. Anything
    # else stays, markdown and full stops included: FinQA's verdict is on the text as written.
    label = _ANSWER_LABEL.search(text)
    if label:
        # with the emphasis that opens the label: "divide(1, 2) **Answer:** 0.5"
        text = text[:label.start()].rstrip().rstrip("*_")
    return text.strip()


def extract_answer(generation: Generation, gold: Value) -> Answer | None:
    """The answer in a generation, of the kind the gold is (number or yes/no); None if none."""
    if generation.answer_text is None:
        return None
    text = generation.answer_text
    take_last = generation.answer_source == "free_text"
    if isinstance(gold, str):
        words = _YES_NO_WORD.findall(text)
        if not words:
            return None
        return (words[-1] if take_last else words[0]).lower()
    numbers = all_numbers(text)
    if not numbers:
        return None
    # "the change from 2018 to 2019 was 5%": the years are not the answer, unless nothing else is
    numbers = [number for number in numbers if not number.year] or numbers
    return numbers[-1] if take_last else numbers[0]


def all_numbers(text: str) -> list[Number]:
    """Every number in a text, in order, read as `parse_number` reads one."""
    text = _MARKDOWN.sub("", text).replace("\\%", "%")
    numbers = []
    previous_end = None
    for match in _NUMBER.finditer(text):
        # "0.347 (34.7%)" restates a number; only a stand-alone "(1,234)" is a negative
        restatement = previous_end is not None and not text[previous_end:match.start()].strip()
        number = _number_from_match(match, parentheses_negate=not restatement,
                                    after=text[max(0, match.start() - 12):match.start()])
        if number is not None:
            numbers.append(number)
        previous_end = match.end()
    return numbers


def parse_number(text: str) -> Number | None:
    """The first number in a text ("approximately $1,234.5 million" -> 1234.5), or None."""
    numbers = all_numbers(text)
    return numbers[0] if numbers else None


def _number_from_match(match: re.Match, parentheses_negate: bool, after: str) -> Number | None:
    digits = match.group("digits").replace(",", "")
    if len(digits) - ("." in digits) > MAX_NUMBER_DIGITS or not math.isfinite(float(digits)):
        return None
    exact = _exact(digits)
    negative = parentheses_negate and bool(match.group("open") and match.group("close"))
    for sign in (match.group("sign"), match.group("sign2")):
        if sign and sign.strip() != "+":
            negative = not negative
    text = match.group(0).strip()
    year = bool(_YEAR.fullmatch(text) and _BEFORE_YEAR.search(after))
    scale = SCALES[match.group("scale").lower()] if match.group("scale") else 1
    # copy_negate: unary minus would round to the default context's 28 digits
    return Number(exact.copy_negate() if negative else exact, bool(match.group("unit")), text, year, scale)


def _exact(number: str | float) -> Decimal:
    """A number as the decimal it is written as; a float as its shortest decimal form (repr),
    which is how exe_ans and the tolerance were written in the first place."""
    return Decimal(number if isinstance(number, str) else repr(number))


@dataclass(frozen=True)
class Gold:
    exe_ans: Value
    human_answer: Answer | None
    """The record's human answer string, parsed (None if empty or not readable)."""

    @classmethod
    def of(cls, exe_ans: Value, answer: str) -> Gold:
        if isinstance(exe_ans, str):
            word = _YES_NO_WORD.search(answer or "")
            return cls(exe_ans.strip().lower(), word.group(1).lower() if word else None)
        return cls(float(exe_ans), parse_number(answer or ""))


def answer_matches(prediction: Answer | None, gold: Gold, tolerance: float = DEFAULT_TOLERANCE) -> bool:
    """Whether a parsed answer is right, by the rules in the module docstring."""
    if prediction is None:
        return False
    if isinstance(gold.exe_ans, str) or isinstance(prediction, str):
        return isinstance(prediction, str) and isinstance(gold.exe_ans, str) and prediction in (
            gold.exe_ans, gold.human_answer)
    with localcontext(_EXACT):
        targets = [_exact(gold.exe_ans)]
        human = gold.human_answer
        if isinstance(human, Number):
            targets.append(human.exact)
            if human.scale != 1:
                targets.append(human.exact * human.scale)
            if human.percent:
                targets.append(human.exact / 100)
        readings = [prediction.exact, prediction.exact / 100, prediction.exact * 100]
        if prediction.scale != 1:
            readings.append(prediction.exact * prediction.scale)
        limit = _exact(tolerance)
        return any(_close(reading, target, limit) for reading in readings for target in targets)


def _close(reading: Decimal, target: Decimal, tolerance: Decimal) -> bool:
    if target == 0:
        return reading == 0
    return abs(reading - target) <= tolerance * abs(target)
