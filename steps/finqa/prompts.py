"""How a FinQA record becomes a prompt and a training target, and how Nova's reserved strings
are kept out of both.

The model is asked for two lines, `Program: <FinQA program>` and `Answer: <final answer>`:
the program lets the scorer check the reasoning by executing it, the answer is what a user
reads. The evaluation step parses exactly this format (and falls back to free text).
"""
from __future__ import annotations

import re
import zlib
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
    width = max(map(len, table))
    lines = ["| " + " | ".join(row) + " |" for row in table]
    # Cells are nearly always clean: look at the whole table once, then at the rows, and
    # normalise cells only in a row that shows a run of spaces (an empty cell gives one too),
    # a line break or too few cells.
    if min(map(len, table)) < width or not _is_one_line(" ".join(lines)):
        lines = [line if len(row) == width and _is_one_line(line) else _clean_row(row, width)
                 for row, line in zip(table, lines)]
    if len(table) > 1:
        lines.insert(1, "|" + "---|" * width)
    return "\n".join(lines)


def _clean_row(row: tuple[str, ...], width: int) -> str:
    padding = ["-"] * (width - len(row))
    line = "| " + " | ".join([cell or "-" for cell in row] + padding) + " |"
    if _is_one_line(line):  # the usual case: empty cells, nothing else
        return line
    return "| " + " | ".join([_one_line(cell) or "-" for cell in row] + padding) + " |"


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


# Each byte's class as a bit: 1 an ASCII letter, 2 an ASCII digit, 4 white space, 0 anything
# else (punctuation, and every byte of a non-ASCII character).
_CLASS_BITS = bytes(
    1 if chr(b).isascii() and chr(b).isalpha() else
    2 if chr(b).isascii() and chr(b).isdigit() else
    4 if chr(b) in " \t\n\r\x0b\x0c" else
    0
    for b in range(256)
)
_ONES_LENGTH = 1 << 16
_ONES = int.from_bytes(b"\x01" * _ONES_LENGTH, "big")
"""0x0101...01: as a mask, keeps bit 0 of each byte of a text up to _ONES_LENGTH bytes."""
_ADLER_CHUNK = 5000
"""Bytes of at most 12 each: a chunk sums to at most 60,000, below Adler-32's modulus 65,521."""


def estimate_tokens(text: str) -> int:
    """A deliberately high estimate of the token count of `text`.

    Nova's tokenizer is not public. A word counts one token per 4 letters plus 3/4 of a token
    (its last, partial piece), a number one per 3 digits plus 2/3, every other non-space byte
    one token (so a non-ASCII character counts 2 to 4). BPE tokenizers do better than that on
    English and on FinQA's numbers (on FinQA this gives one token per 2.8 characters), so a
    record under the limit by this estimate is under it for the real tokenizer too.
    """
    # In twelfths of a token: 12 for every byte, less 12 for white space, 9 for a letter that
    # follows a letter, and 8 for a digit that follows a digit. This runs for every prompt, so
    # it is done in a few C-speed passes instead of a Python loop over the characters: the
    # byte classes are read as one big integer, in which `classes & (classes >> 8)` keeps a
    # byte's class bit only where the byte before it has the same one, and the discounts are
    # built byte by byte in a second integer whose bytes zlib's Adler-32 then adds up.
    data = text.encode("utf-8")
    length = len(data)
    ones = _ONES if length <= _ONES_LENGTH else int.from_bytes(b"\x01" * length, "big")
    classes = int.from_bytes(data.translate(_CLASS_BITS), "big")
    same_as_before = classes & (classes >> 8)
    discounts = (12 * ((classes >> 2) & ones) + 9 * (same_as_before & ones)
                 + 8 * ((same_as_before >> 1) & ones)).to_bytes(length, "big")
    return -(-(12 * length - _byte_sum(discounts)) // 12)


def _byte_sum(data: bytes) -> int:
    """The sum of the bytes, each at most 12. The low 16 bits of an Adler-32 checksum are 1 +
    the sum of the bytes modulo 65,521: exact for a chunk that sums below that."""
    view = memoryview(data)
    return sum((zlib.adler32(view[start:start + _ADLER_CHUNK]) & 0xFFFF) - 1
               for start in range(0, len(data), _ADLER_CHUNK))
