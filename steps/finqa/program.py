"""FinQA's reasoning programs: parsing, execution, and the nested (Hugging Face) form.

A program is a comma-separated list of steps `op(arg1, arg2)`; `#n` is the result of
step n (0-based). Semantics follow the official scorer (`eval_program` and `str_to_num`
in czyssrs/FinQA code/evaluate/evaluate.py):

- add, subtract, multiply, divide, exp (arg1 ** arg2) on numbers; greater(a, b) gives
  "yes" if a > b else "no". A yes/no result cannot be used as a number.
- A numeric argument is a number, a percentage ("5%" -> 0.05), or a constant
  `const_<number>` (`const_m1` is -1). Commas separate arguments, as in FinQA's
  tokenizer, so "1,234" is two arguments; inside table cells they are thousands commas.
- table_sum / table_average / table_max / table_min(row name, none) reduce the table row
  whose first cell is the row name (when several rows share the name the last one counts,
  as FinQA builds a dict of rows). Each other cell is read as FinQA does: "$" removed,
  everything from the first "(" dropped ("-12034 ( 12034 )" -> -12034,
  "27.9% ( 27.9 % )" -> 0.279). A cell that is not a number makes the step fail.
  Unlike FinQA, a row name that matches no row exactly is looked up once more ignoring
  case and repeated spaces (models retype names), and a step reference as a table
  argument is an error rather than FinQA's stale-variable bug.
- The result of a program is the result of its last step. FinQA compares it with
  `exe_ans` after rounding to 5 decimal places: see `matches_exe_ans`.

Deviations that only make hostile input fail cleanly: a program longer than
MAX_PROGRAM_CHARS or MAX_STEPS steps, `inf`/`nan` literals, and any result whose magnitude
exceeds MAX_MAGNITUDE (exp is refused before it is computed) raise ProgramError, so a
model's output can never raise OverflowError, hang, or produce a complex number.

`parse_program` also accepts the nested form (`divide(subtract(5829, 5735), 5735)`,
Hugging Face's `program_re`), converted by `nested_to_steps`: it denotes the same
computation, so a model that writes it is scored on what it computes.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence, Tuple, Union

from .errors import CountedError

ARITHMETIC_OPERATIONS = ("add", "subtract", "multiply", "divide", "exp", "greater")
TABLE_OPERATIONS = ("table_sum", "table_average", "table_max", "table_min")
OPERATIONS = ARITHMETIC_OPERATIONS + TABLE_OPERATIONS

MAX_PROGRAM_CHARS = 2000
"""The longest gold program of ../shared/finqa has 120 characters."""
MAX_STEPS = 32
"""Gold programs of ../shared/finqa have at most 5 steps (FinQA's longest, about 10)."""
MAX_MAGNITUDE = 1e100
"""Far beyond any financial quantity; past it a result is an error, not a number."""

EXE_ANS_DECIMALS = 5
EXE_FLOAT_NOISE = 1e-9
"""Relative slack added to FinQA's rounding rule: two programs that compute the same
value by different float operations can land on opposite sides of a rounding boundary."""

Value = Union[float, str]
"""A program's value: a float, or "yes" / "no" from greater."""


class ProgramError(CountedError):
    """A program cannot be parsed or executed."""


@dataclass(frozen=True)
class Step:
    operation: str
    arguments: Tuple[str, str]

    def __str__(self) -> str:
        return f"{self.operation}({self.arguments[0]}, {self.arguments[1]})"


_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_REFERENCE = re.compile(r"#(\d+)")
_SPACES = re.compile(r"\s+")
_OPERATION_CALL = re.compile(r"([A-Za-z_]+)\s*\(")
_ATOM = re.compile(r"[^,()]*")
_SPACE_RUN = re.compile(r"\s*")


def parse_program(program: str) -> tuple[Step, ...]:
    """The steps of a program in step form, or in nested form (converted)."""
    if not isinstance(program, str):
        raise ProgramError("not_text", f"a program is text, got {type(program).__name__}")
    parser = _Parser(program)
    steps = parser.parse()
    if parser.nested and parser.written_references:
        raise ProgramError("syntax", "the program mixes nested calls with #n step references")
    return steps


def execute_program(program: str, table: Sequence[Sequence[str]] = ()) -> Value:
    """The value of a program's last step, unrounded; ProgramError if it cannot be had."""
    steps = parse_program(program)
    results: list[Value] = []
    for index, step in enumerate(steps):
        if step.operation in TABLE_OPERATIONS:
            result: Value = _table_step(step, table, index)
        else:
            first = _number_argument(step.arguments[0], results, index)
            second = _number_argument(step.arguments[1], results, index)
            result = _arithmetic(step.operation, first, second, index)
        if isinstance(result, float) and not (math.isfinite(result) and abs(result) <= MAX_MAGNITUDE):
            raise ProgramError("overflow", f"step {index} ({step}): the result is beyond {MAX_MAGNITUDE:g}")
        results.append(result)
    return results[-1]


def _arithmetic(operation: str, first: float, second: float, index: int) -> Value:
    if operation == "add":
        return first + second
    if operation == "subtract":
        return first - second
    if operation == "multiply":
        return first * second
    if operation == "divide":
        if second == 0:
            raise ProgramError("division_by_zero", f"step {index}: divide({first:g}, 0)")
        return first / second
    if operation == "exp":
        return _power(first, second, index)
    return "yes" if first > second else "no"


def _power(base: float, exponent: float, index: int) -> float:
    if base == 0:
        if exponent < 0:
            raise ProgramError("division_by_zero", f"step {index}: exp(0, {exponent:g})")
        return 1.0 if exponent == 0 else 0.0
    if base < 0 and not exponent.is_integer():
        raise ProgramError("not_real", f"step {index}: exp({base:g}, {exponent:g}) is not a real number")
    # decide on the logarithm so that a huge exponent is refused without computing it
    if exponent * math.log10(abs(base)) > math.log10(MAX_MAGNITUDE):
        raise ProgramError("overflow", f"step {index}: exp({base:g}, {exponent:g}) is beyond {MAX_MAGNITUDE:g}")
    try:
        return math.pow(base, exponent)
    except (OverflowError, ValueError) as error:
        raise ProgramError("overflow", f"step {index}: exp({base:g}, {exponent:g}): {error}") from None


def _number_argument(argument: str, results: Sequence[Value], index: int) -> float:
    reference = _REFERENCE.fullmatch(argument)
    if reference:
        step = int(reference.group(1))
        if step >= len(results):
            raise ProgramError("bad_reference", f"step {index}: {argument} refers to no earlier step")
        value = results[step]
        if isinstance(value, str):
            raise ProgramError("not_a_number", f"step {index}: {argument} is {value!r}, not a number")
        return value
    value = number_from_text(argument)
    if value is None:
        raise ProgramError("bad_argument", f"step {index}: {argument!r} is not a number, a percentage, a constant or #n")
    return value


def number_from_text(text: str) -> float | None:
    """FinQA's `str_to_num`: "1,234" -> 1234, "5%" -> 0.05, "const_m1" -> -1; None if none.

    Only finite decimal numbers count (Python's float() would also take "inf" and "nan").
    """
    text = text.replace(",", "").strip()
    if _NUMBER.fullmatch(text):
        return _finite(float(text))
    if "%" in text:
        stripped = text.replace("%", "").strip()
        if _NUMBER.fullmatch(stripped):
            return _finite(float(stripped) / 100.0)
        return None
    if text.startswith("const_"):
        constant = text[len("const_"):]
        constant = "-1" if constant == "m1" else constant
        if _NUMBER.fullmatch(constant):
            return _finite(float(constant))
    return None


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) and abs(value) <= MAX_MAGNITUDE else None


def _table_step(step: Step, table: Sequence[Sequence[str]], index: int) -> float:
    row_name, _ = step.arguments
    if _REFERENCE.fullmatch(row_name):
        raise ProgramError("bad_argument", f"step {index}: {step.operation} takes a table row name, not {row_name}")
    cells = _table_row(table, row_name)
    if cells is None:
        raise ProgramError("no_such_row", f"step {index}: the table has no row {row_name!r}")
    numbers = []
    for cell in cells:
        value = number_from_text(str(cell).replace("$", "").split("(")[0].strip())
        if value is None:
            raise ProgramError("bad_table_cell", f"step {index}: row {row_name!r} has a cell that is not a number: {cell!r}")
        numbers.append(value)
    if not numbers:
        raise ProgramError("bad_table_cell", f"step {index}: row {row_name!r} has no values")
    if step.operation == "table_sum":
        return sum(numbers)
    if step.operation == "table_average":
        return sum(numbers) / len(numbers)
    if step.operation == "table_max":
        return max(numbers)
    return min(numbers)


def _table_row(table: Sequence[Sequence[str]], row_name: str) -> Sequence[str] | None:
    exact = None
    loose = None
    wanted = _SPACES.sub(" ", row_name).strip().lower()
    for row in table:
        if not row:
            continue
        if row[0] == row_name:
            exact = row[1:]
        elif loose is None and _SPACES.sub(" ", str(row[0])).strip().lower() == wanted:
            loose = row[1:]
    return exact if exact is not None else loose


def round_result(value: Value) -> Value:
    """A value as FinQA reports it: numbers rounded to 5 decimal places."""
    return value if isinstance(value, str) else round(value, EXE_ANS_DECIMALS)


def matches_exe_ans(value: Value, exe_ans: Value) -> bool:
    """FinQA's execution check, `round(value, 5) == exe_ans`, robust to float noise.

    Equivalent to |value - round(exe_ans, 5)| <= 0.5e-5, widened by EXE_FLOAT_NOISE
    relative to the gold so that a correct program whose float arithmetic lands a hair
    across a rounding boundary still counts.
    """
    if isinstance(value, str) or isinstance(exe_ans, str):
        return isinstance(value, str) and isinstance(exe_ans, str) and value.strip().lower() == exe_ans.strip().lower()
    gold = round(float(exe_ans), EXE_ANS_DECIMALS)
    if round(value, EXE_ANS_DECIMALS) == gold:
        return True
    return abs(value - gold) <= 0.5 * 10 ** -EXE_ANS_DECIMALS + EXE_FLOAT_NOISE * max(1.0, abs(gold))


def nested_to_steps(program_re: str) -> str:
    """Hugging Face's nested `program_re` as FinQA's step form.

    `divide(subtract(5829, 5735), 5735)` -> `subtract(5829, 5735), divide(#0, 5735)`:
    inner calls become earlier steps, in the order they are evaluated (left to right).
    Several top-level calls separated by commas are kept in order.
    """
    return ", ".join(str(step) for step in parse_program(program_re))


class _Parser:
    """Recursive descent over `program := call ("," call)*`, where
    `call := operation "(" argument "," argument ")"` and an argument of an arithmetic
    operation may itself be a call (the nested form). A table operation's row name is
    taken as written up to its last comma, parentheses included
    ("contractual obligations ( 1 )")."""

    def __init__(self, text: str):
        self.text = text.strip()
        self.position = 0
        self.steps: list[Step] = []
        self.nested = False
        self.written_references = False

    def parse(self) -> tuple[Step, ...]:
        if not self.text:
            raise ProgramError("empty", "the program is empty")
        if len(self.text) > MAX_PROGRAM_CHARS:
            raise ProgramError("too_long", f"the program has {len(self.text)} characters, more than {MAX_PROGRAM_CHARS}")
        while True:
            self._skip_spaces()
            self._call(depth=0)
            self._skip_spaces()
            if self.position == len(self.text):
                return tuple(self.steps)
            if self.text[self.position] != ",":
                self._fail("expected ',' between steps")
            self.position += 1

    def _call(self, depth: int) -> str:
        if depth > MAX_STEPS:
            raise ProgramError("too_long", f"the program nests deeper than {MAX_STEPS} calls")
        match = _OPERATION_CALL.match(self.text, self.position)
        if not match:
            self._fail("expected a step such as divide(arg1, arg2)")
        operation = match.group(1).lower()
        if operation not in OPERATIONS:
            raise ProgramError("unknown_operation", f"step {len(self.steps)}: unknown operation {match.group(1)!r}")
        self.position = match.end()
        if operation in TABLE_OPERATIONS:
            arguments = self._table_arguments()
        else:
            arguments = self._arithmetic_arguments(depth)
        if len(arguments) != 2 or not all(arguments):
            raise ProgramError("syntax", f"step {len(self.steps)}: {operation} takes two arguments, got {arguments}")
        if len(self.steps) >= MAX_STEPS:
            raise ProgramError("too_long", f"the program has more than {MAX_STEPS} steps")
        self.steps.append(Step(operation, (arguments[0], arguments[1])))
        return f"#{len(self.steps) - 1}"

    def _arithmetic_arguments(self, depth: int) -> list[str]:
        arguments = []
        while True:
            self._skip_spaces()
            if _OPERATION_CALL.match(self.text, self.position):
                self.nested = True
                arguments.append(self._call(depth + 1))
            else:
                atom = _ATOM.match(self.text, self.position)
                argument = atom.group(0).strip()
                self.written_references = self.written_references or bool(_REFERENCE.fullmatch(argument))
                arguments.append(argument)
                self.position = atom.end()
            self._skip_spaces()
            if self.position >= len(self.text):
                self._fail("unclosed '('")
            separator = self.text[self.position]
            self.position += 1
            if separator == ")":
                return arguments
            if separator == "(":
                self._fail("unexpected '('")

    def _table_arguments(self) -> list[str]:
        depth = 0
        start = self.position
        while self.position < len(self.text):
            character = self.text[self.position]
            if character == "(":
                depth += 1
            elif character == ")":
                if depth == 0:
                    inside = self.text[start:self.position]
                    self.position += 1
                    row, comma, second = inside.rpartition(",")
                    return [row.strip(), second.strip()] if comma else [inside.strip()]
                depth -= 1
            self.position += 1
        self._fail("unclosed '('")

    def _skip_spaces(self) -> None:
        self.position = _SPACE_RUN.match(self.text, self.position).end()

    def _fail(self, what: str):
        shown = self.text[self.position:self.position + 40]
        raise ProgramError("syntax", f"{what} at character {self.position} ({shown!r})")
