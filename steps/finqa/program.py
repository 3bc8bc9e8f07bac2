"""FinQA's reasoning programs: FinQA's own verdict, a lenient reading, and the nested form.

A program is a list of steps `op(arg1, arg2)` separated by ", "; `#n` is the result of step
n (0-based). Operations: add, subtract, multiply, divide, exp (arg1 ** arg2), greater ("yes"
if arg1 > arg2 else "no"), and table_sum / table_average / table_max / table_min(row name,
none), which reduce the numbers of the table row with that name.

Two readings of a model's program, reported side by side:

`execute_as_finqa` is FinQA's verdict exactly: `program_tokenization`, `eval_program`,
`str_to_num` and `process_row` of czyssrs/FinQA code/evaluate/evaluate.py, step for step,
with Python's own arithmetic (this is our code, written from reading theirs, and
tests/test_finqa_reference.py runs theirs beside it when a copy is at hand):

- The text is split into arguments on ", " only (a comma and one space), so "526,768" is one
  argument, read as 526768 (FinQA drops every comma from a number), and "divide(1,2)" has one.
- Every fourth token, from the first, must be one of the ten operations as written
  (lower case), and every step must end with ")": a nested call, "Divide", a trailing "." or
  anything after the last ")" makes the program invalid; so does a step with two "(".
- An argument is `#n`, a number as Python's float() reads it (after dropping commas), a
  percentage ("5%" -> 0.05) or `const_<number>` (`const_m1` is -1). The arithmetic is
  Python's, so greater() of two yes/no results compares the words and add() joins them.
- A table operation looks its row name up as written (surrounding spaces aside) among the
  rows' first cells; when several rows share a name the last one counts. Every other cell
  of the row must read as a number once "$" and everything from the first "(" are removed
  ("-12034 ( 12034 )" -> -12034). A `#n` in place of the row name reduces the row of the
  previous table step again (FinQA's stale variable); with no previous one it is invalid.
- The result of the last step, rounded to 5 decimal places, must equal exe_ans exactly
  (`matches_exe_ans`): `divide(26860.00003, 3)` is wrong for a gold of 8953.33333.
- The one deviation: a yes/no text that add() has joined to more than MAX_TEXT_RESULT
  characters is an error rather than a memory blow-up (FinQA would end invalid or out of
  memory); every other program runs as FinQA runs it, and nothing can hang (Python's float
  arithmetic gives inf or OverflowError, never a huge integer).

`execute_leniently` is kinder to how models write, for `lenient_execution_accuracy`. Its
extensions, each a program FinQA calls invalid:

- markdown (`*`, backticks) and a trailing full stop around the program are dropped;
- operation names in any case (`Divide`), and any spacing: no space after a comma, spaces
  before "(" or around arguments;
- nested calls, the form of Hugging Face's `program_re`: `divide(add(1, 2), const_3)`, a
  table operation inside an argument (`nested_to_steps` gives the steps they denote);
- a row name that matches no row as written is looked up once more ignoring case and
  repeated spaces, and a row name may hold commas and parentheses
  ("contractual obligations ( 1 )", taken up to the last comma).

It also refuses what only a mistake writes: commas split arguments (so "1,234" is two, an
error), a yes/no result used as a number and a `#n` as a row name are errors, and so are
programs over MAX_PROGRAM_CHARS characters or MAX_STEPS steps, `inf` / `nan`, and results
beyond MAX_MAGNITUDE (exp is refused before it is computed). A program FinQA scores correct
is correct for the lenient metric too; the rounding and comparison are FinQA's.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union

from .errors import CountedError

ARITHMETIC_OPERATIONS = ("add", "subtract", "multiply", "divide", "exp", "greater")
TABLE_OPERATIONS = ("table_sum", "table_average", "table_max", "table_min")
OPERATIONS = ARITHMETIC_OPERATIONS + TABLE_OPERATIONS

EXE_ANS_DECIMALS = 5
"""FinQA rounds a program's result to 5 decimal places before comparing it with exe_ans."""

NO_RESULT = "n/a"
MAX_TEXT_RESULT = 1 << 20
"""add() of two yes/no results joins the words, as Python does; doubling such a text in
every step would take memory without end, so past this length it is an error."""

MAX_PROGRAM_CHARS = 2000
"""For the lenient reading. The longest gold program of ../shared/finqa has 120 characters."""
MAX_STEPS = 32
"""For the lenient reading. Gold programs of ../shared/finqa have at most 5 steps (FinQA's
longest, about 10)."""
MAX_MAGNITUDE = 1e100
"""For the lenient reading: far beyond any financial quantity; past it a result is an error."""

Value = Union[float, str]
"""A program's value: a float, or "yes" / "no" from greater."""


class ProgramError(CountedError):
    """A program cannot be parsed or executed."""


def matches_exe_ans(value: Value, exe_ans: Value) -> bool:
    """FinQA's comparison: `round(value, 5) == exe_ans`, exactly; yes/no compare as words."""
    if isinstance(value, str) or isinstance(exe_ans, str):
        return value == exe_ans
    return round_result(value) == exe_ans


def round_result(value: Value) -> Value:
    """A value as FinQA reports it: numbers rounded to 5 decimal places."""
    return value if isinstance(value, str) else round(value, EXE_ANS_DECIMALS)


# ---------------------------------------------------------------- FinQA's own verdict

def finqa_tokens(program: str) -> list[str]:
    """FinQA's `program_tokenization`, without the "EOF" it appends and `eval_program` drops:
    the text is split on ", ", then each piece after every "(" and around every ")"."""
    tokens = []
    for piece in program.split(", "):
        token = ""
        for character in piece:
            if character == ")" and token:
                tokens.append(token)
                token = ""
            token += character
            if character in "()":
                tokens.append(token)
                token = ""
        if token:
            tokens.append(token)
    return tokens


def execute_as_finqa(program: str, table: Sequence[Sequence[str]] = ()) -> Value:
    """The value FinQA's `eval_program` gives a program, rounded as it rounds it; ProgramError
    where FinQA calls the program invalid (or runs no step), with the reason."""
    tokens = finqa_tokens(program)
    for index, token in enumerate(tokens):
        if index % 4 == 0 and token.strip("(") not in OPERATIONS:
            raise ProgramError("structure", f"token {index} {token!r} is not one of FinQA's operations {OPERATIONS}")
        if index % 4 == 3 and token != ")":
            raise ProgramError("structure", f"token {index} {token!r} is not the ')' that ends a step")
    results: dict[int, Any] = {}
    # FinQA's own starting value: a program with no executed step ends as the text "n/a"
    result: Any = NO_RESULT
    rows: dict | None = None
    row_numbers: list | None = None
    for index, step in enumerate("|".join(tokens).split(")")[:-1]):
        parts = step.strip().split("(")
        if len(parts) > 2:
            raise ProgramError("nested", f"step {index} {step!r} holds another call")
        if len(parts) < 2:
            raise ProgramError("structure", f"step {index} {step!r} has no '('")
        operation = parts[0].strip("|").strip()
        arguments = parts[1].strip("|").strip().split("|")
        if len(arguments) < 2:
            raise ProgramError("missing_argument",
                               f"step {index} {operation}: two arguments separated by ', ' expected")
        first, second = arguments[0].strip(), arguments[1].strip()
        if operation in ARITHMETIC_OPERATIONS:
            result = _finqa_arithmetic(operation, _finqa_argument(first, results, index),
                                       _finqa_argument(second, results, index), index)
            results[index] = result
        elif "table" in operation:
            if rows is None:
                rows = _finqa_rows(table)
            if "#" in first:
                _finqa_reference(first, results, index)
                if row_numbers is None:
                    raise ProgramError("table_reference", f"step {index}: {operation}({first}) has no row to reduce")
            elif first not in rows:
                raise ProgramError("no_such_row", f"step {index}: the table has no row {first!r}")
            else:
                row_numbers = _finqa_row_numbers(rows[first], first, index)
            result = _finqa_reduce(operation, row_numbers, result, index)
            results[index] = result
    if result == NO_RESULT:
        raise ProgramError("no_result", "no step of the program is executed")
    if result in ("yes", "no"):
        return result
    try:
        return float(round(result, EXE_ANS_DECIMALS))
    except TypeError:
        raise ProgramError("not_a_number", f"the result {_shown(result)} is neither a number nor yes/no") from None


# FinQA's program grammar: an argument is a step result (#n), a constant of the generator's
# vocabulary (czyssrs/FinQA code/generator/constant_list.txt), a row name for a table step, or a
# number copied from the input (the report's text, its table, the question).
FINQA_CONSTANTS = frozenset({*(f"const_{n}" for n in range(1, 11)), "const_100", "const_1000", "const_10000",
                             "const_100000", "const_1000000", "const_10000000", "const_1000000000", "const_m1"})
_SOURCE_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?|\.\d+")


def source_numbers(*texts: str) -> frozenset:
    """The numbers written in the input, as FinQA reads a copied one (commas dropped, no sign)."""
    return frozenset(float(found.replace(",", "")) for text in texts for found in _SOURCE_NUMBER.findall(text)
                     if found.replace(",", "").strip("."))


def ungrounded_arguments(program: str, numbers: frozenset) -> list[str]:
    """The arguments of a program FinQA's grammar does not allow: a number not in the input
    (`numbers`, from source_numbers) or a constant outside FinQA's vocabulary. A program that
    writes its answer as a literal (`add(34.7, const_0)`) copies rather than computes."""
    tokens = finqa_tokens(program)
    found = []
    for index, token in enumerate(tokens):
        argument = token.strip()
        if index % 4 not in (1, 2) or "#" in argument or argument.lower() == "none":
            continue
        if index % 4 == 1 and tokens[index - 1].strip("(").strip() in TABLE_OPERATIONS:
            continue  # a row name, which FinQA's evaluator itself looks up in the table
        if argument.startswith("const_"):
            if argument not in FINQA_CONSTANTS:
                found.append(argument)
            continue
        text = argument.replace(",", "").rstrip("%").strip().lstrip("-+")
        try:
            value = float(text)
        except ValueError:
            continue  # not a number: FinQA's evaluator refuses it on its own
        if value not in numbers:
            found.append(argument)
    return found


def copies_its_value(program: str) -> bool:
    """Whether every step of the program leaves its value as it was (x * 1, 1 * x, x / 1, x ^ 1, x + 0,
    0 + x, x - 0): such a program writes down a number instead of computing one. FinQA's gold programs
    use an identity step only after a real one (`multiply(const_1000, 1.3), multiply(const_1, #0)`,
    CME/2017/page_97.pdf-4 of the shared dev records), never alone."""
    tokens = finqa_tokens(program)
    steps = [tokens[i:i + 4] for i in range(0, len(tokens) - 3, 4)]
    if not steps:
        return False

    def identity(step: list[str]) -> bool:
        # Each argument read as FinQA's evaluator reads it (a step result #n reads as None).
        operation = step[0].strip("(").strip()
        first, second = _finqa_number(step[1].strip()), _finqa_number(step[2].strip())
        if operation == "multiply":
            return 1.0 in (first, second)
        if operation in ("divide", "exp"):
            return second == 1.0
        if operation == "add":
            return 0.0 in (first, second)
        if operation == "subtract":
            return second == 0.0
        return False

    return all(identity(step) for step in steps)


def _finqa_argument(argument: str, results: dict[int, Any], index: int) -> Any:
    if "#" in argument:
        return _finqa_reference(argument, results, index)
    number = _finqa_number(argument)
    if number is None:
        raise ProgramError("bad_argument",
                           f"step {index}: {argument!r} is not a number, a percentage, a constant or #n")
    return number


def _finqa_reference(argument: str, results: dict[int, Any], index: int) -> Any:
    try:
        return results[int(argument.replace("#", ""))]
    except (ValueError, KeyError):
        raise ProgramError("bad_reference", f"step {index}: {argument!r} refers to no executed step") from None


def _finqa_number(text: str) -> float | None:
    """FinQA's `str_to_num`; None where it gives "n/a" or fails on a malformed constant."""
    text = text.replace(",", "")
    try:
        return float(text)
    except ValueError:
        pass
    if "%" in text:
        try:
            return float(text.replace("%", "")) / 100.0
        except ValueError:
            return None
    if "const" in text:
        constant = text.replace("const_", "")
        try:
            return float("-1" if constant == "m1" else constant)
        except ValueError:
            return None
    return None


def _finqa_arithmetic(operation: str, first: Any, second: Any, index: int) -> Any:
    try:
        if operation == "add":
            result = first + second
        elif operation == "subtract":
            result = first - second
        elif operation == "multiply":
            result = first * second
        elif operation == "divide":
            result = first / second
        elif operation == "exp":
            result = first ** second
        else:
            result = "yes" if first > second else "no"
    except ZeroDivisionError:
        raise ProgramError("division_by_zero",
                           f"step {index}: {operation}({_shown(first)}, {_shown(second)})") from None
    except OverflowError:
        raise ProgramError("overflow",
                           f"step {index}: {operation}({_shown(first)}, {_shown(second)}) overflows") from None
    except TypeError:
        raise ProgramError("not_a_number", f"step {index}: {operation}({_shown(first)}, {_shown(second)}) "
                                           "mixes a yes/no result with numbers") from None
    if isinstance(result, str) and len(result) > MAX_TEXT_RESULT:
        raise ProgramError("too_long", f"step {index}: joined yes/no results longer than {MAX_TEXT_RESULT} characters")
    return result


def _finqa_rows(table: Sequence[Sequence[str]]) -> dict:
    rows = {}
    for number, row in enumerate(table):
        if not row:
            raise ProgramError("bad_table", f"table row {number} is empty")
        rows[row[0]] = row[1:]
    return rows


def _finqa_row_numbers(cells: Sequence[str], name: str, index: int) -> list:
    numbers = []
    for cell in cells:
        number = _finqa_number(cell.replace("$", "").strip().split("(")[0].strip())
        if number is None:
            raise ProgramError("bad_table_cell",
                               f"step {index}: row {name!r} has a cell that is not a number: {cell!r}")
        numbers.append(number)
    return numbers


def _finqa_reduce(operation: str, numbers: list, previous: Any, index: int) -> Any:
    try:
        if operation == "table_max":
            return max(numbers)
        if operation == "table_min":
            return min(numbers)
        if operation == "table_sum":
            return sum(numbers)
        if operation == "table_average":
            return sum(numbers) / len(numbers)
    except (ValueError, ZeroDivisionError):
        raise ProgramError("bad_table_cell", f"step {index}: {operation} of a row with no values") from None
    # another name with "table" in it: FinQA's step changes nothing and repeats the last result
    return previous


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ---------------------------------------------------------------- the lenient reading

@dataclass(frozen=True)
class Step:
    operation: str
    arguments: tuple[str, str]

    def __str__(self) -> str:
        return f"{self.operation}({self.arguments[0]}, {self.arguments[1]})"


_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_REFERENCE = re.compile(r"#(\d+)")
_SPACES = re.compile(r"\s+")
_OPERATION_CALL = re.compile(r"([A-Za-z_]+)\s*\(")
_ATOM = re.compile(r"[^,()]*")
_SPACE_RUN = re.compile(r"\s*")


def parse_program(program: str) -> tuple[Step, ...]:
    """The steps of a program in step form, or in nested form (converted), read leniently."""
    if not isinstance(program, str):
        raise ProgramError("not_text", f"a program is text, got {type(program).__name__}")
    parser = _Parser(program)
    steps = parser.parse()
    if parser.nested and parser.written_references:
        raise ProgramError("syntax", "the program mixes nested calls with #n step references")
    return steps


def execute_leniently(program: str, table: Sequence[Sequence[str]] = ()) -> Value:
    """The value of a program's last step, unrounded, read with the lenient extensions."""
    steps = parse_program(program.strip().strip("`*. "))
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
        raise ProgramError("bad_argument",
                           f"step {index}: {argument!r} is not a number, a percentage, a constant or #n")
    return value


def number_from_text(text: str) -> float | None:
    """`str_to_num` for the lenient reading: "1,234" -> 1234, "5%" -> 0.05, "const_m1" -> -1;
    None if none. Only finite decimal numbers count (float() would also take "inf" and "nan")."""
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
            raise ProgramError("bad_table_cell",
                               f"step {index}: row {row_name!r} has a cell that is not a number: {cell!r}")
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
        elif _SPACES.sub(" ", str(row[0])).strip().lower() == wanted:
            loose = row[1:]  # the last one, as for an exact name
    return exact if exact is not None else loose


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
            raise ProgramError("too_long",
                               f"the program has {len(self.text)} characters, more than {MAX_PROGRAM_CHARS}")
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
