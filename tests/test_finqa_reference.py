"""FinQA's own evaluation beside ours, program for program.

The verdicts of czyssrs/FinQA code/evaluate/evaluate.py (`program_tokenization`, then
`eval_program` and `exe_res == gold_res`) are written out here for the programs on which
the project once differed from it, on real records of ../shared/finqa, and for the 400
gold programs; `execute_as_finqa` must give each. Where a copy of FinQA's repository is at
hand (the research tool `fetch` puts one at /work/.mirror/czyssrs+FinQA/repo, a bare git
directory; FINQA_GIT_DIR names another), FinQA's own functions are loaded from it and run
beside ours: on the same programs, on variants of every gold program, and on the example
predictions FinQA publishes. Nothing of FinQA's is copied into this project.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
from pathlib import Path

import pytest

from steps.finqa.program import ProgramError, execute_as_finqa, execute_leniently, finqa_tokens, matches_exe_ans
from steps.finqa.records import load_records

FINQA_GIT_DIR = Path(os.environ.get("FINQA_GIT_DIR", "/work/.mirror/czyssrs+FinQA/repo"))
SHARED_FILES = ("train_100.json", "dev_200.json", "test_100.json")

# (record id, program, FinQA's verdict, the lenient verdict): right (True) or not (False)
CASES = [
    # gold: greater(526768, 478269) -> yes. FinQA splits arguments on ", " only and drops commas from numbers
    ("VNO/2007/page_192.pdf-1", "greater(526,768, 478,269)", True, True),
    ("VNO/2007/page_192.pdf-1", "greater(526768,478269)", False, True),
    ("VNO/2007/page_192.pdf-1", "Greater(526768, 478269)", False, True),
    ("VNO/2007/page_192.pdf-1", "greater(526768, 478269).", False, True),
    ("VNO/2007/page_192.pdf-1", "`greater(526768, 478269)`", False, True),
    # gold: table_average(net sales, none) -> 8953.33333 (26860 / 3)
    ("LMT/2015/page_55.pdf-4", "table_average(net sales, none)", True, True),
    ("LMT/2015/page_55.pdf-4", "divide(26860, 3)", True, True),
    ("LMT/2015/page_55.pdf-4", "divide(26860.00003, 3)", False, False),  # 8953.33334 after rounding
    ("LMT/2015/page_55.pdf-4", "divide(add(9091, add(8732, 9037)), const_3)", False, True),
    ("LMT/2015/page_55.pdf-4", "table_average(Net Sales, none)", False, True),
    ("LMT/2015/page_55.pdf-4", "table_average(net  sales, none)", False, True),
    # gold: table_average(operating margin, none), table_max(operating margin, none), subtract(#1, #0)
    ("AON/2014/page_47.pdf-1",
     "subtract(table_max(operating margin, none), table_average(operating margin, none))", False, True),
    # FinQA's stale row: #0 in place of a row name reduces the row the previous table step read
    ("AON/2014/page_47.pdf-1",
     "table_average(operating margin, none), table_max(#0, none), subtract(#1, #0)", True, True),
    # gold: multiply(245.7, 49.9%), multiply(#0, const_1000000) -> 122604300
    ("SLG/2012/page_87.pdf-2", "multiply(245.7, 49.9%), multiply(#0, const_1000000)", True, True),
    ("SLG/2012/page_87.pdf-2", "multiply(245.7, 49.9%), multiply(#0, const_1000000), add(#1, 0.1)", False, False),
    # gold: add(32, 38), divide(#0, const_2), multiply(#1, const_1000000) -> 35000000
    ("JPM/2008/page_117.pdf-1", "add(32, 38), divide(#0, const_2), multiply(#1, 1,000,000)", True, True),
    ("JPM/2008/page_117.pdf-1", "add(32, 38), divide(#0, const_2), multiply(#1, const_1000000) ", False, True),
    ("JPM/2008/page_117.pdf-1", "add(32,38), divide(#0,const_2), multiply(#1,const_1000000)", False, True),
]


@pytest.fixture(scope="module")
def shared_records(shared_finqa) -> dict:
    return {record.id: record for name in SHARED_FILES for record in load_records([shared_finqa / name]).records}


def our_verdict(program: str, record, execute=execute_as_finqa) -> bool:
    try:
        return matches_exe_ans(execute(program, record.table), record.exe_ans)
    except ProgramError:
        return False


@pytest.mark.parametrize("record_id, program, finqa_right, lenient_right", CASES)
def test_our_verdicts_are_finqas(shared_records, record_id, program, finqa_right, lenient_right):
    record = shared_records[record_id]
    assert our_verdict(program, record) is finqa_right
    assert (finqa_right or our_verdict(program, record, execute_leniently)) is lenient_right


def test_every_shared_gold_program_is_right_for_finqa(shared_records):
    assert len(shared_records) == 400
    assert [record_id for record_id, record in shared_records.items() if not our_verdict(record.program, record)] == []


# ---------------------------------------------------------------- FinQA's own code, when at hand

@pytest.fixture(scope="module")
def finqa() -> dict:
    """FinQA's evaluate.py functions, loaded from the repository copy (skip when absent).

    Only the four functions and the operation list are taken: the script's own imports
    (numpy, sympy, tqdm) are for parts this comparison does not use.
    """
    try:
        source = subprocess.run(["git", "--git-dir", str(FINQA_GIT_DIR), "show", "HEAD:code/evaluate/evaluate.py"],
                                capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"no copy of czyssrs/FinQA at {FINQA_GIT_DIR} (set FINQA_GIT_DIR to a clone's .git)")
    wanted = {"str_to_num", "process_row", "eval_program", "program_tokenization"}
    body = [node for node in ast.parse(source).body
            if (isinstance(node, ast.FunctionDef) and node.name in wanted)
            or (isinstance(node, ast.Assign)
                and any(getattr(target, "id", "") == "all_ops" for target in node.targets))]
    namespace: dict = {}
    exec(compile(ast.Module(body=body, type_ignores=[]), "czyssrs/FinQA code/evaluate/evaluate.py", "exec"), namespace)
    assert wanted <= set(namespace)
    return namespace


def finqa_verdict(finqa: dict, tokens: list, record) -> bool:
    invalid, result = finqa["eval_program"](tokens, [list(row) for row in record.table])
    return invalid == 0 and result == record.exe_ans


def variants(program: str):
    """A gold program as models misspell it, each a different way FinQA may or may not accept."""
    yield program
    yield program.replace(", ", ",")
    yield program + "."
    yield program + " "
    yield program.upper()
    yield program.replace("(", "( ")
    yield program.replace("(", " (")
    yield program.replace("#0", "#5")
    yield program.replace("const_", "const")
    yield program.replace(")", "),")
    yield program.replace(", none", "")
    yield program.replace("table_", "Table_")
    yield program.replace("0", "0,0")
    yield program.replace(", ", " , ")


@pytest.mark.parametrize("record_id, program, finqa_right, lenient_right", CASES)
@pytest.mark.integration
def test_finqas_own_code_gives_the_verdicts_written_here(finqa, shared_records, record_id, program, finqa_right,
                                                         lenient_right):
    record = shared_records[record_id]
    assert finqa_verdict(finqa, finqa["program_tokenization"](program), record) is finqa_right


@pytest.mark.integration
def test_finqas_own_code_and_ours_agree_on_variants_of_every_gold_program(finqa, shared_finqa, shared_records):
    raw = {row["id"]: row for name in SHARED_FILES for row in json.loads((shared_finqa / name).read_text())}
    compared, disagreements = 0, []
    for record_id, record in shared_records.items():
        for program in (*variants(record.program), raw[record_id]["qa"]["program_re"]):
            tokens = finqa["program_tokenization"](program)
            assert tokens[:-1] == finqa_tokens(program)
            compared += 1
            if finqa_verdict(finqa, tokens, record) is not our_verdict(program, record):
                disagreements.append((record_id, program))
    assert compared == 400 * 15
    assert disagreements == []


@pytest.mark.integration
def test_finqas_own_code_and_ours_agree_on_its_example_predictions(finqa, shared_records):
    """FinQA's published example predictions (a model's token programs for its test split)
    for the test records of ../shared/finqa, written back as text and scored both ways."""
    predictions = json.loads(subprocess.run(
        ["git", "--git-dir", str(FINQA_GIT_DIR), "show", "HEAD:code/evaluate/example_predictions.json"],
        capture_output=True, text=True, check=True).stdout)
    scored = []
    for prediction in predictions:
        record = shared_records.get(prediction["id"])
        if record is None:
            continue
        tokens = prediction["predicted"]
        text = _program_text(tokens[:-1])
        assert finqa_tokens(text) == tokens[:-1], prediction["id"]
        scored.append((finqa_verdict(finqa, tokens, record), our_verdict(text, record)))
    assert len(scored) == 94
    assert [theirs for theirs, ours in scored if theirs is not ours] == []
    assert sum(theirs for theirs, _ in scored) == 69


def _program_text(tokens: list) -> str:
    """Token programs as text that FinQA's tokenizer splits back into the same tokens."""
    text = ""
    for index, token in enumerate(tokens):
        if index and not tokens[index - 1].endswith("(") and token != ")":
            text += ", "
        text += token
    return text
