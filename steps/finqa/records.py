"""FinQA records and how to read them, in either of the layouts FinQA is published in.

- The original layout (Chen et al.'s `train.json` / `dev.json` / `test.json`): a JSON array
  of objects with a nested `qa` object (`question`, `answer`, `program`, `exe_ans`).
- The flattened Hugging Face layout of `ibm-research/finqa` (JSON array, JSONL or parquet
  rows): `question`, `answer`, `final_result` and `program_re` (the program as one nested
  expression) at the top level.

The layout is detected per row from the data, never from the file name. Standard library
only (parquet needs pyarrow, imported only when a parquet file is read), so the same code
runs in a bare processing container.
"""
from __future__ import annotations

import json
import math
import mmap
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CountedError

ORIGINAL = "original"
HUGGINGFACE = "huggingface"


class FinQAFileError(ValueError):
    """A whole input file cannot be read; the message names the file and what to do."""


class RecordError(CountedError):
    """One record cannot be used."""


@dataclass(frozen=True)
class FinQARecord:
    id: str
    question: str
    answer: str
    """The human answer string; empty for some records (then `final_answer` uses exe_ans)."""
    exe_ans: float | str | None
    """The gold execution result: a number, or "yes" / "no"."""
    program: str
    """The reasoning program in FinQA's step form: `subtract(5829, 5735), divide(#0, 5735)`."""
    pre_text: tuple[str, ...]
    table: tuple[tuple[str, ...], ...]
    post_text: tuple[str, ...]

    @property
    def final_answer(self) -> str:
        if self.answer.strip():
            return self.answer.strip()
        return format_exe_ans(self.exe_ans)


def format_exe_ans(value: float | str | None) -> str:
    """exe_ans as an answer string: 0.34719 -> "0.34719", 12.0 -> "12", "yes" -> "yes"."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _where(source: str, index: int, record_id: str | None = None) -> str:
    return f"{source} record {index}" + (f" (id {record_id!r})" if record_id else "")


def _text_list(value: Any, field: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) or _is_array(value):
        items = tuple(value)
        if _all_strings(items):
            return items
    raise RecordError("bad_field", f"{where}: field {field!r} must be a list of strings")


def _table(value: Any, where: str) -> tuple[tuple[str, ...], ...]:
    if value is None:
        return ()
    if isinstance(value, (list, tuple)) or _is_array(value):
        rows = []
        for row in value:
            if not (isinstance(row, (list, tuple)) or _is_array(row)):
                raise RecordError("bad_field", f"{where}: field 'table' must be a list of rows (lists of cells)")
            cells = tuple(row)
            if not _all_strings(cells):
                cells = tuple("" if cell is None else str(cell) for cell in cells)
            rows.append(cells)
        return tuple(rows)
    raise RecordError("bad_field", f"{where}: field 'table' must be a list of rows (lists of cells)")


def _all_strings(items: tuple) -> bool:
    # str.join checks every item's type in C, several times faster than a generator of
    # isinstance calls; FinQA has a quarter of a million cells and sentences per split.
    try:
        "".join(items)
    except TypeError:
        return False
    return True


def _is_array(value: Any) -> bool:
    # numpy arrays (parquet through pyarrow's to_pylist gives lists, pandas gives arrays)
    return hasattr(value, "tolist") and not isinstance(value, (str, bytes))


def parse_exe_ans(value: Any, where: str) -> float | str | None:
    """exe_ans as read from JSON: a finite float, "yes" / "no", or None when absent."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        if text in ("yes", "no"):
            return text
        try:
            number = float(text.replace(",", ""))
        except ValueError:
            raise RecordError("bad_field", f"{where}: exe_ans {value!r} is neither a number nor yes/no") from None
    else:
        raise RecordError("bad_field", f"{where}: exe_ans {value!r} is neither a number nor yes/no")
    if not math.isfinite(number):
        raise RecordError("bad_field", f"{where}: exe_ans {value!r} is not a finite number")
    return number


def detect_layout(row: dict) -> str:
    if isinstance(row.get("qa"), dict):
        return ORIGINAL
    if "question" in row:
        return HUGGINGFACE
    return ""


def record_from_row(row: Any, source: str, index: int) -> FinQARecord:
    """One FinQA record from a row of either layout; RecordError says what is wrong."""
    if not isinstance(row, dict):
        raise RecordError("not_an_object", f"{_where(source, index)}: expected a JSON object, got {type(row).__name__}")
    record_id = row.get("id")
    if not isinstance(record_id, (str, int, type(None))) or isinstance(record_id, bool):
        raise RecordError("bad_field", f"{_where(source, index)}: 'id' {record_id!r} is neither text nor a number")
    record_id = str(record_id).strip() if record_id not in (None, "") else ""
    where = _where(source, index, record_id or None)
    layout = detect_layout(row)
    if layout == ORIGINAL:
        qa = row["qa"]
        question, answer = qa.get("question"), qa.get("answer")
        program, exe_ans = qa.get("program") or "", qa.get("exe_ans")
    elif layout == HUGGINGFACE:
        question, answer = row.get("question"), row.get("answer")
        exe_ans = row.get("final_result", row.get("exe_ans"))
        program = row.get("program") or ""
        if not program and row.get("program_re"):
            from .program import ProgramError, nested_to_steps

            try:
                program = nested_to_steps(str(row["program_re"]))
            except ProgramError as error:
                raise RecordError("bad_program", f"{where}: program_re {row['program_re']!r}: {error}") from None
    else:
        raise RecordError(
            "missing_question",
            f"{where}: no question (neither a 'qa' object as in FinQA's JSON files nor a "
            "'question' field as in the Hugging Face layout)")
    if not record_id:
        raise RecordError("missing_id", f"{where}: no 'id'")
    if not isinstance(question, str) or not question.strip():
        raise RecordError("missing_question", f"{where}: the question is missing or empty")
    if not isinstance(answer, (str, int, float, type(None))) or isinstance(answer, bool):
        raise RecordError("bad_field", f"{where}: the answer {answer!r} is neither text nor a number")
    answer = "" if answer is None else str(answer)
    exe = parse_exe_ans(exe_ans, where)
    if not answer.strip() and exe is None:
        raise RecordError("missing_answer", f"{where}: neither an answer nor exe_ans")
    return FinQARecord(
        id=record_id,
        question=question.strip(),
        answer=answer.strip(),
        exe_ans=exe,
        program=str(program).strip(),
        pre_text=_text_list(row.get("pre_text"), "pre_text", where),
        table=_table(row.get("table"), where),
        post_text=_text_list(row.get("post_text"), "post_text", where),
    )


def read_rows(path: Path) -> Iterator[Any]:
    """The raw rows of one file: a JSON array, JSON lines, or parquet.

    A file that cannot be read or parsed raises FinQAFileError naming the file; a JSONL
    line that is not JSON is yielded as a `_BadLine`, so the caller counts it as a bad
    record instead of losing the rest of the file.
    """
    path = Path(path)
    if path.suffix == ".parquet":
        yield from _read_parquet(path)
        return
    try:
        with path.open("rb") as handle:
            head = handle.read(1024).lstrip()
    except OSError as error:
        raise FinQAFileError(f"{path}: cannot be read ({error.strerror or error})") from None
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:].lstrip()
    if head.startswith(b"["):
        try:
            # Decoded straight from the mapped file: reading it first would hold it twice.
            with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                text = str(mapped, "utf-8-sig")
            yield from _array_items(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise FinQAFileError(
                f"{path}: not valid JSON ({error}); FinQA split files are a JSON array of "
                "records, or one JSON record per line") from None
        return
    try:
        with path.open(encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as error:
                    yield _BadLine(number, str(error))
    except UnicodeDecodeError as error:
        raise FinQAFileError(f"{path}: not UTF-8 text ({error})") from None


_JSON_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _array_items(text: str) -> Iterator[Any]:
    """The items of the JSON array in `text`, each parsed by json's C scanner when it is asked
    for, so the caller can convert and drop one record before the next is parsed. A FinQA
    record is mostly fields no step reads (retrieval results, the original table, the model
    input); parsing the whole file at once kept all of them, twice the peak memory and 20%
    more time. Raises json.JSONDecodeError where json.loads would."""
    decoder = json.JSONDecoder()
    skip = _JSON_WHITESPACE.match
    index = skip(text).end()
    if text[index:index + 1] != "[":
        raise json.JSONDecodeError("Expecting '['", text, index)
    index = skip(text, index + 1).end()
    if text[index:index + 1] == "]":
        index += 1
    else:
        while True:
            item, index = decoder.raw_decode(text, index)
            yield item
            index = skip(text, index).end()
            separator = text[index:index + 1]
            if separator == "]":
                index += 1
                break
            if separator != ",":
                raise json.JSONDecodeError("Expecting ',' delimiter", text, index)
            index = skip(text, index + 1).end()
    if skip(text, index).end() != len(text):
        raise json.JSONDecodeError("Extra data", text, index)


@dataclass(frozen=True)
class _BadLine:
    line: int
    error: str


def _read_parquet(path: Path) -> Iterator[dict]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise FinQAFileError(f"{path}: reading parquet needs pyarrow (pip install pyarrow)") from None
    try:
        parquet = pq.ParquetFile(path)
        for batch in parquet.iter_batches(batch_size=512):
            yield from batch.to_pylist()
    except Exception as error:  # pyarrow raises several unrelated types for a broken file
        raise FinQAFileError(f"{path}: not a readable parquet file ({error})") from None


@dataclass
class LoadedSplit:
    records: list[FinQARecord]
    read: int
    rejected: list[RecordError]
    """One error per skipped record, naming the file and the record, in file order."""

    @property
    def skipped(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for error in self.rejected:
            counts[error.reason] = counts.get(error.reason, 0) + 1
        return counts


def load_records(paths: Iterable[Path], *, strict: bool = False) -> LoadedSplit:
    """Every usable record of the files, in file order; bad records kept as errors.

    With `strict`, the first bad record raises RecordError instead. Duplicate ids are bad
    records too: a split that repeats an id would weight it twice and break the scorer.
    """
    records: list[FinQARecord] = []
    rejected: list[RecordError] = []
    seen: set[str] = set()
    read = 0
    for path in paths:
        for index, row in enumerate(read_rows(path)):
            read += 1
            try:
                if isinstance(row, _BadLine):
                    raise RecordError("invalid_json", f"{path} line {row.line}: not valid JSON ({row.error})")
                record = record_from_row(row, str(path), index)
                if record.id in seen:
                    raise RecordError("duplicate_id",
                                      f"{_where(str(path), index, record.id)}: the id appears earlier in the split")
            except RecordError as error:
                if strict:
                    raise
                rejected.append(error.with_traceback(None))  # its frames would keep the raw row alive
                continue
            seen.add(record.id)
            records.append(record)
    return LoadedSplit(records=records, read=read, rejected=rejected)


def load_hf_dataset(dataset: str, revision: str | None, split: str) -> list[dict]:
    """Rows of one split of a Hugging Face dataset, for users with network access.

    `dataset` is a Hub id (or a local folder of data files, as in the tests). `datasets` 4 and
    later refuse loading scripts, and `ibm-research/finqa` is one: read its parquet
    conversion, `revision="refs/convert/parquet"` (or a commit of it, to pin what you train
    on). Not used inside the pipeline's jobs, which read files.
    """
    import datasets  # heavy, and only needed here

    return list(datasets.load_dataset(dataset, revision=revision, split=split))
