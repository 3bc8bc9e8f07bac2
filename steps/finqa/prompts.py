"""How a FinQA record becomes a prompt and a training target, and how Nova's reserved strings
are kept out of both.

The model is asked for two lines, `Program: <FinQA program>` and `Answer: <final answer>`:
the program lets the scorer check the reasoning by executing it, the answer is what a user
reads. The evaluation step parses exactly this format (and falls back to free text).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .records import FinQARecord, RecordError

SYSTEM_PROMPT = (
    "You are a financial analyst. You answer a question about a company's financial report "
    "from the report's text and table. Reason with the numbers given, then reply with exactly "
    "two lines and nothing else:\n"
    "Program: the calculation as a FinQA program, steps separated by \", \", each one of "
    "add, subtract, multiply, divide, exp, greater, table_sum, table_average, table_max, "
    "table_min, with #N for the result of step N, e.g. subtract(5829, 5735), divide(#0, 5735)\n"
    "Answer: the final answer, a number (with % when it is a percentage) or yes / no"
)

PROGRAM_PREFIX = "Program:"
ANSWER_PREFIX = "Answer:"

# Nova rejects a training record whose text contains any of these, matched case-insensitively
# as substrings. A role word before a colon gets a space before the colon ("operating
# system:" -> "operating system :"), tags and markers get round brackets: a reader sees the
# same words, the validator no longer sees a role marker.
_RESERVED = re.compile(r"(user|bot|assistant|system)(:)|<(image|video)>|\[(eos)\]", re.IGNORECASE)
RESERVED_STRINGS = ("User:", "Bot:", "Assistant:", "System:", "<image>", "<video>", "[EOS]")


def _neutralise(match: re.Match) -> str:
    if match.group(1):
        return f"{match.group(1)} :"
    word = match.group(3) or match.group(4)
    return f"({word})"


def _pattern_name(match: re.Match) -> str:
    if match.group(1):
        return f"{match.group(1).capitalize()}:"
    if match.group(3):
        return f"<{match.group(3).lower()}>"
    return "[EOS]"


@dataclass
class SanitiseCounts:
    """Replacements made, by the reserved string they neutralised."""

    by_string: dict[str, int] = field(default_factory=dict)

    def add(self, other: SanitiseCounts) -> None:
        for key, count in other.by_string.items():
            self.by_string[key] = self.by_string.get(key, 0) + count

    @property
    def total(self) -> int:
        return sum(self.by_string.values())


_ROLE_WORDS = ("user", "bot", "assistant", "system")


def _has_reserved(text: str) -> bool:
    # A few substring scans instead of the regular expression, which is many times slower;
    # almost every FinQA text has no reserved string, and only a handful of colons.
    if ("<" in text or "[" in text) and any(tag in text.lower() for tag in ("<image>", "<video>", "[eos]")):
        return True
    colon = text.find(":")
    while colon != -1:
        if text[max(0, colon - 9):colon].lower().endswith(_ROLE_WORDS):
            return True
        colon = text.find(":", colon + 1)
    return False


def sanitise(text: str, counts: SanitiseCounts) -> str:
    """Text with Nova's reserved strings neutralised; each replacement counted in `counts`."""
    if not _has_reserved(text):
        return text

    def replace(match: re.Match) -> str:
        name = _pattern_name(match)
        counts.by_string[name] = counts.by_string.get(name, 0) + 1
        return _neutralise(match)

    return _RESERVED.sub(replace, text)


def find_reserved(text: str) -> list[str]:
    """The reserved strings present in `text` (for validation: must be empty after sanitising)."""
    if not _has_reserved(text):
        return []
    return sorted({_pattern_name(match) for match in _RESERVED.finditer(text)})


def render_table(table: tuple[tuple[str, ...], ...]) -> str:
    """The table as pipe-separated rows, the first row set off as the header."""
    if not table:
        return "(no table)"
    width = max(len(row) for row in table)
    lines = []
    for number, row in enumerate(table):
        line = "| " + " | ".join(row) + " |"
        # Cells are nearly always clean: normalise cell by cell only when the row shows a
        # run of spaces, a line break, an empty cell or a short row.
        if len(row) < width or "" in row or not _is_one_line(line):
            cells = [_one_line(cell) or "-" for cell in row] + ["-"] * (width - len(row))
            line = "| " + " | ".join(cells) + " |"
        lines.append(line)
        if number == 0 and len(table) > 1:
            lines.append("|" + "---|" * width)
    return "\n".join(lines)


def _is_one_line(text: str) -> bool:
    return not ("  " in text or "\n" in text or "\t" in text or "\r" in text or "\x0b" in text
                or "\x0c" in text or text[:1].isspace() or text[-1:].isspace())


def _one_line(text: str) -> str:
    """Runs of white space as one space; FinQA text rarely has any, so check before splitting."""
    return text if _is_one_line(text) else " ".join(text.split())


def _paragraph(sentences: tuple[str, ...]) -> str:
    return _one_line(" ".join(sentences)) or "(none)"


def render_question(record: FinQARecord) -> str:
    """The user turn: the report's text before the table, the table, the text after, the question."""
    return (
        f"Report text before the table:\n{_paragraph(record.pre_text)}\n\n"
        f"Table:\n{render_table(record.table)}\n\n"
        f"Report text after the table:\n{_paragraph(record.post_text)}\n\n"
        f"Question: {_one_line(record.question)}"
    )


def render_target(record: FinQARecord) -> str:
    """The assistant turn: the gold program and the final answer, in the format asked for."""
    if not record.program:
        raise RecordError("missing_program", f"record {record.id!r}: no reasoning program to train on")
    answer = record.final_answer
    if not answer:
        raise RecordError("missing_answer", f"record {record.id!r}: neither an answer nor exe_ans")
    return f"{PROGRAM_PREFIX} {record.program}\n{ANSWER_PREFIX} {answer}"


# Bytes classed as word letters (a), digits (0), white space ( ) and anything else (.), so
# that the estimate below is a handful of C-speed scans instead of a loop over characters.
_CHAR_CLASSES = bytes(
    ord("a") if chr(b).isascii() and chr(b).isalpha() else
    ord("0") if chr(b).isascii() and chr(b).isdigit() else
    ord(" ") if chr(b) in " \t\n\r\x0b\x0c" else
    ord(".")
    for b in range(256)
)

# The classes again with everything but letters (digits) as space: a run starts at " a" (" 0").
_LETTERS_ONLY = bytes(ord("a") if b == ord("a") else ord(" ") for b in range(256))
_DIGITS_ONLY = bytes(ord("0") if b == ord("0") else ord(" ") for b in range(256))


def estimate_tokens(text: str) -> int:
    """A deliberately high estimate of the token count of `text`.

    Nova's tokenizer is not public. A word counts one token per 4 letters plus 3/4 of a token
    (its last, partial piece), a number one per 3 digits plus 2/3, every other non-space byte
    one token (so a non-ASCII character counts 2 to 4). BPE tokenizers do better than that on
    English and on FinQA's numbers (on FinQA this gives one token per 2.8 characters), so a
    record under the limit by this estimate is under it for the real tokenizer too.
    """
    classes = (" " + text).encode("utf-8").translate(_CHAR_CLASSES)
    letters, digits, spaces = classes.count(b"a"), classes.count(b"0"), classes.count(b" ")
    others = len(classes) - letters - digits - spaces
    words = classes.translate(_LETTERS_ONLY).count(b" a")
    numbers = classes.translate(_DIGITS_ONLY).count(b" 0")
    return -(-(3 * letters + 9 * words + 4 * digits + 8 * numbers + 12 * others) // 12)
