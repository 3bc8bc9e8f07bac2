"""FinQA's program DSL: every real gold program reproduces its exe_ans, the nested form
executes like the step form, and hostile programs fail cleanly."""
from __future__ import annotations

import json

import pytest

from steps.finqa.program import (
    MAX_STEPS,
    ProgramError,
    Step,
    execute_program,
    matches_exe_ans,
    nested_to_steps,
    parse_program,
    round_result,
)
from steps.finqa.records import RecordError, load_records, record_from_row

SHARED_FILES = ("train_100.json", "dev_200.json", "test_100.json")


def _shared_records(shared_finqa):
    return [record for name in SHARED_FILES for record in load_records([shared_finqa / name]).records]


def test_every_shared_gold_program_reproduces_exe_ans_exactly_as_finqa_rounds_it(shared_finqa):
    records = _shared_records(shared_finqa)
    assert len(records) == 400
    not_reproduced = []
    for record in records:
        value = execute_program(record.program, record.table)
        if round_result(value) != record.exe_ans or not matches_exe_ans(value, record.exe_ans):
            not_reproduced.append((record.id, record.program, value, record.exe_ans))
    assert not_reproduced == []


def test_nested_program_re_of_every_shared_record_executes_to_the_same_value(shared_finqa):
    raw = {}
    for name in SHARED_FILES:
        raw.update({row["id"]: row for row in json.loads((shared_finqa / name).read_text())})
    reordered = 0
    for record in _shared_records(shared_finqa):
        steps = nested_to_steps(raw[record.id]["qa"]["program_re"])
        reordered += steps != record.program
        assert execute_program(steps, record.table) == execute_program(record.program, record.table), record.id
    # the nested form loses FinQA's step order where an inner call is not the first argument
    assert reordered > 0


def test_nested_to_steps_numbers_inner_calls_in_evaluation_order():
    assert nested_to_steps("divide(subtract(5829, 5735), 5735)") == "subtract(5829, 5735), divide(#0, 5735)"
    assert nested_to_steps("subtract(divide(29, add(29, 4)), divide(8, add(8, 2)))") == (
        "add(29, 4), divide(29, #0), add(8, 2), divide(8, #2), subtract(#1, #3)")
    assert nested_to_steps("table_max(years ended december 31,, none)") == "table_max(years ended december 31,, none)"
    assert nested_to_steps("divide(5, 2)") == "divide(5, 2)"


@pytest.mark.parametrize("nested", ["", "divide(5829, 5735", "divide(5829)", "sqrt(4, 2)", "divide(1, 2) add(1, 2)"])
def test_nested_to_steps_rejects_what_is_not_a_program(nested):
    with pytest.raises(ProgramError):
        nested_to_steps(nested)


def test_parse_program_reads_steps_and_row_names_with_commas_and_parentheses():
    assert parse_program(" Add(1, 2),divide( #0 ,const_100 ) ") == (
        Step("add", ("1", "2")), Step("divide", ("#0", "const_100")))
    assert parse_program("table_sum(contractual obligations ( 1 ), none)") == (
        Step("table_sum", ("contractual obligations ( 1 )", "none")),)
    assert parse_program("table_average(years ended december 31,, none)")[0].arguments == ("years ended december 31,", "none")


@pytest.mark.parametrize("program, expected", [
    ("subtract(5829, 5735), divide(#0, 5735)", 94 / 5735),
    ("add(1,234, 1)", None),  # FinQA splits arguments on commas: "1,234" is two arguments
    ("multiply(49.9%, const_1000)", 499.0),
    ("add(const_m1, const_1)", 0.0),
    ("exp(2, 10)", 1024.0),
    ("exp(const_m1, 3)", -1.0),
    ("greater(5, 3)", "yes"),
    ("greater(3, 3)", "no"),
    ("divide(.455, .450)", 0.455 / 0.450),
    ("divide(add(1, 2), 4)", 0.75),
])
def test_execute_follows_finqa_arithmetic(program, expected):
    if expected is None:
        with pytest.raises(ProgramError):
            execute_program(program)
    elif isinstance(expected, str):
        assert execute_program(program) == expected
    else:
        assert execute_program(program) == pytest.approx(expected)


TABLE = (
    ("", "2014", "2013", "2012"),
    ("revenue", "$ 4264", "$ 4057", "$ 3925"),
    ("operating margin", "11.4% ( 11.4 % )", "7.8% ( 7.8 % )", "7.4% ( 7.4 % )"),
    ("write-offs", "-12034 ( 12034 )", "-15101 ( 15101 )", "-22234 ( 22234 )"),
    ("notes", "n/a", "5", "6"),
    ("revenue", "1", "2", "3"),
    ("Net  Income", "10", "20", "30"),
)


@pytest.mark.parametrize("program, expected", [
    ("table_max(operating margin, none)", 0.114),
    ("table_min(write-offs, none)", -22234.0),
    ("table_average(operating margin, none), table_max(operating margin, none), subtract(#1, #0)", 0.114 - (0.114 + 0.078 + 0.074) / 3),
    # several rows with one name: the last one counts, as in FinQA's row dict
    ("table_sum(revenue, none)", 6.0),
    # a retyped row name is found ignoring case and repeated spaces
    ("table_sum(net income, none)", 60.0),
])
def test_table_operations_read_cells_as_finqa_does(program, expected):
    assert execute_program(program, TABLE) == pytest.approx(expected)


@pytest.mark.parametrize("program, reason", [
    ("table_sum(notes, none)", "bad_table_cell"),
    ("table_sum(no such row, none)", "no_such_row"),
    ("add(5, 1), table_sum(#0, none)", "bad_argument"),
])
def test_table_operations_fail_on_rows_they_cannot_use(program, reason):
    with pytest.raises(ProgramError) as error:
        execute_program(program, TABLE)
    assert error.value.reason == reason


@pytest.mark.parametrize("program, reason", [
    ("", "empty"),
    ("   ", "empty"),
    ("divide(5, 0)", "division_by_zero"),
    ("subtract(5, 5), divide(1, #0)", "division_by_zero"),
    ("exp(0, -1)", "division_by_zero"),
    ("add(#7, 1)", "bad_reference"),
    ("add(#0, 1)", "bad_reference"),
    ("exp(10, 1e9)", "overflow"),
    ("exp(7, 123456789012345678901234567890)", "overflow"),
    ("exp(9.99, 99999999999999999999)", "overflow"),
    ("exp(1e-300, -2)", "overflow"),
    ("multiply(1e99, 1e99)", "overflow"),
    ("exp(-8, 0.5)", "not_real"),
    ("add(inf, 1)", "bad_argument"),
    ("add(nan, 1)", "bad_argument"),
    ("add(1e999, 1)", "bad_argument"),
    ("add(apples, 1)", "bad_argument"),
    ("greater(2, 1), add(#0, 1)", "not_a_number"),
    ("sqrt(4, 2)", "unknown_operation"),
    ("divide(114400, 3295", "syntax"),
    ("divide(1, 2, 3)", "syntax"),
    ("divide(1)", "syntax"),
    ("divide(1, 2) add(1, 2)", "syntax"),
    ("divide(add(1, 2), #0)", "syntax"),
    ("The answer is 42", "syntax"),
    ("add(1, 2)" + ", add(1, 2)" * MAX_STEPS, "too_long"),
    ("add(1, 2" + ")" * 5000, "too_long"),
    ("add(" * 40 + "1, 2" + ")" * 40, "too_long"),
])
def test_hostile_programs_raise_program_error_with_a_reason(program, reason):
    with pytest.raises(ProgramError) as error:
        execute_program(program)
    assert error.value.reason == reason


@pytest.mark.parametrize("value, gold, expected", [
    (0.347186, 0.34719, True),
    (0.3471850000001, 0.34718, True),  # float noise across a rounding boundary
    (0.34717, 0.34719, False),
    (0.3472, 0.34719, False),
    (-0.06063, -0.06063, True),
    (36003776400000.0, 36003776400000.0, True),
    ("yes", "yes", True),
    ("no", "yes", False),
    (1.0, "yes", False),
])
def test_matches_exe_ans_is_finqa_rounding_to_five_places(value, gold, expected):
    assert matches_exe_ans(value, gold) is expected


def test_hugging_face_rows_get_a_step_program_that_reproduces_final_result(shared_finqa):
    for name in SHARED_FILES:
        for index, row in enumerate(json.loads((shared_finqa / name).read_text())):
            flattened = {"id": row["id"], "question": row["qa"]["question"], "answer": row["qa"]["answer"],
                         "final_result": row["qa"]["exe_ans"], "program_re": row["qa"]["program_re"],
                         "table": row["table"]}
            record = record_from_row(flattened, name, index)
            assert matches_exe_ans(execute_program(record.program, record.table), record.exe_ans), record.id


def test_a_hugging_face_row_with_a_broken_program_re_is_a_bad_record():
    with pytest.raises(RecordError) as error:
        record_from_row({"id": "x-1", "question": "q?", "answer": "1", "program_re": "divide(1, "}, "rows.jsonl", 0)
    assert error.value.reason == "bad_program"
