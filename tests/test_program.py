"""FinQA's program DSL: every real gold program reproduces its exe_ans under FinQA's own
rules, the lenient reading accepts what models write and FinQA refuses, the nested form
executes like the step form, and hostile programs fail cleanly."""
from __future__ import annotations

import json

import pytest

from steps.finqa.program import (
    MAX_STEPS,
    MAX_TEXT_RESULT,
    ProgramError,
    Step,
    execute_as_finqa,
    execute_leniently,
    finqa_tokens,
    matches_exe_ans,
    nested_to_steps,
    parse_program,
)
from steps.finqa.records import RecordError, load_records, record_from_row

SHARED_FILES = ("train_100.json", "dev_200.json", "test_100.json")


def _shared_records(shared_finqa):
    return [record for name in SHARED_FILES for record in load_records([shared_finqa / name]).records]


def test_every_shared_gold_program_gives_exe_ans_exactly_under_finqa_rules(shared_finqa):
    records = _shared_records(shared_finqa)
    assert len(records) == 400
    not_reproduced = [(record.id, record.program, execute_as_finqa(record.program, record.table), record.exe_ans)
                      for record in records
                      if execute_as_finqa(record.program, record.table) != record.exe_ans]
    assert not_reproduced == []


def test_nested_program_re_of_every_shared_record_executes_leniently_to_the_same_value(shared_finqa):
    raw = {}
    for name in SHARED_FILES:
        raw.update({row["id"]: row for row in json.loads((shared_finqa / name).read_text())})
    reordered = 0
    for record in _shared_records(shared_finqa):
        nested = raw[record.id]["qa"]["program_re"]
        steps = nested_to_steps(nested)
        reordered += steps != record.program
        assert matches_exe_ans(execute_leniently(nested, record.table), record.exe_ans), record.id
        assert execute_leniently(steps, record.table) == execute_leniently(record.program, record.table), record.id
    # the nested form loses FinQA's step order where an inner call is not the first argument
    assert reordered > 0


def test_finqa_tokens_split_on_comma_space_only():
    assert finqa_tokens("subtract(5829, 5735), divide(#0, 5735)") == [
        "subtract(", "5829", "5735", ")", "divide(", "#0", "5735", ")"]
    assert finqa_tokens("greater(526,768, 478,269)") == ["greater(", "526,768", "478,269", ")"]
    assert finqa_tokens("divide(1,2)") == ["divide(", "1,2", ")"]
    assert finqa_tokens("divide(add(1, 2), 3).") == ["divide(", "add(", "1", "2", ")", "3", ")", "."]


@pytest.mark.parametrize("program, expected", [
    ("subtract(5829, 5735), divide(#0, 5735)", round(94 / 5735, 5)),
    ("add(1,234, 1)", 1235.0),  # one argument: FinQA drops the comma
    ("multiply(49.9%, const_1000)", 499.0),
    ("add(const_m1, const_1)", 0.0),
    ("exp(2, 10)", 1024.0),
    ("greater(5, 3)", "yes"),
    ("greater(3, 3)", "no"),
    ("divide(.455, .450)", round(0.455 / 0.450, 5)),
    ("add(1e308, 1e308)", float("inf")),  # Python's float arithmetic: inf, a value that is never exe_ans
    # Python's own comparison and joining of yes/no results, as in FinQA's evaluate.py
    ("greater(2, 1), greater(1, 2), greater(#0, #1)", "yes"),
])
def test_finqa_arithmetic(program, expected):
    assert execute_as_finqa(program) == expected


TABLE = (
    ("", "2014", "2013", "2012"),
    ("revenue", "$ 4264", "$ 4057", "$ 3925"),
    ("operating margin", "11.4% ( 11.4 % )", "7.8% ( 7.8 % )", "7.4% ( 7.4 % )"),
    ("write-offs", "-12034 ( 12034 )", "-15101 ( 15101 )", "-22234 ( 22234 )"),
    ("notes", "n/a", "5", "6"),
    ("revenue", "1", "2", "3"),
    ("Net  Income", "10", "20", "30"),
    ("contractual obligations ( 1 )", "7", "8", "9"),
)


@pytest.mark.parametrize("program, finqa, lenient", [
    ("table_max(operating margin, none)", 0.114, 0.114),
    ("table_min(write-offs, none)", -22234.0, -22234.0),
    # several rows with one name: the last one counts, as in FinQA's row dict
    ("table_sum(revenue, none)", 6.0, 6.0),
    # FinQA's stale variable: a #n in place of a row name reduces the previous table step's row
    ("table_sum(write-offs, none), table_max(#0, none)", -12034.0, "bad_argument"),
    ("add(1, 2), table_max(#0, none)", "table_reference", "bad_argument"),
    # a retyped row name: FinQA finds no row, the lenient reading ignores case and repeated spaces
    ("table_sum(net income, none)", "no_such_row", 60.0),
    ("table_sum(Revenue, none)", "no_such_row", 6.0),
    # parentheses in a row name split FinQA's tokens; the lenient reading takes the name whole
    ("table_sum(contractual obligations ( 1 ), none)", "structure", 24.0),
    ("table_sum(notes, none)", "bad_table_cell", "bad_table_cell"),
    ("table_sum(no such row, none)", "no_such_row", "no_such_row"),
])
def test_table_operations(program, finqa, lenient):
    for execute, expected in ((execute_as_finqa, finqa), (execute_leniently, lenient)):
        if isinstance(expected, str):
            with pytest.raises(ProgramError) as error:
                execute(program, TABLE)
            assert error.value.reason == expected, execute.__name__
        else:
            assert execute(program, TABLE) == pytest.approx(expected), execute.__name__


@pytest.mark.parametrize("program, reason", [
    ("", "no_result"),
    ("divide(114400, 3295", "no_result"),  # cut off: no step ends
    ("Divide(1, 2)", "structure"),
    ("divide(1, 2).", "structure"),
    ("divide(1, 2) ", "structure"),
    ("divide(add(1, 2), const_3)", "structure"),
    ("divide(1,2)", "missing_argument"),
    ("divide(5, 0)", "division_by_zero"),
    ("exp(0, -1)", "division_by_zero"),
    ("add(#0, 1)", "bad_reference"),
    ("add(#one, 1)", "bad_reference"),
    ("add(apples, 1)", "bad_argument"),
    ("add(const_x, 1)", "bad_argument"),
    ("exp(10, 1e9)", "overflow"),
    ("exp(-8, 0.5)", "not_a_number"),  # Python gives a complex number, which FinQA cannot round
    ("greater(2, 1), add(#0, 1)", "not_a_number"),
    ("greater(2, 1), greater(1, 2), add(#0, #1)", "not_a_number"),  # "yesno"
])
def test_finqa_calls_these_invalid(program, reason):
    with pytest.raises(ProgramError) as error:
        execute_as_finqa(program)
    assert error.value.reason == reason


def test_joined_yes_no_texts_stop_at_their_limit():
    steps = ["greater(2, 1)", "greater(1, 2)", "add(#0, #1)"] + [f"add(#{n}, #{n})" for n in range(2, 24)]
    with pytest.raises(ProgramError) as error:
        execute_as_finqa(", ".join(steps))
    assert error.value.reason == "too_long" and str(MAX_TEXT_RESULT) in str(error.value)


def test_a_long_program_runs_as_finqa_runs_it():
    assert execute_as_finqa(", ".join(["add(1, 2)"] * 5000)) == 3.0


@pytest.mark.parametrize("program, expected", [
    ("Divide(1, 2)", 0.5),
    ("divide(1,2)", 0.5),
    ("divide(1, 2).", 0.5),
    ("`divide(1, 2)`", 0.5),
    ("**divide(1, 2)**", 0.5),
    ("divide( 1 ,2 )", 0.5),
    ("divide (1, 2)", 0.5),
    ("divide(add(1, 2), const_3)", 1.0),
    ("subtract(divide(29, add(29, 4)), divide(8, add(8, 2)))", 29 / 33 - 8 / 10),
    ("multiply(49.9%, const_1000)", 499.0),
    ("exp(const_m1, 3)", -1.0),
    ("greater(5, 3)", "yes"),
])
def test_the_lenient_reading(program, expected):
    assert execute_leniently(program) == (expected if isinstance(expected, str) else pytest.approx(expected))


def test_nested_table_operation_inside_an_argument_is_read_leniently():
    assert execute_leniently("divide(table_sum(revenue, none), const_3)", TABLE) == 2.0


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
    assert parse_program("table_average(years ended december 31,, none)")[0].arguments == (
        "years ended december 31,", "none")


@pytest.mark.parametrize("program, reason", [
    ("", "empty"),
    ("   ", "empty"),
    ("add(1,234, 1)", "syntax"),  # commas split arguments: "1,234" is two
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
    ("add(5, 1), table_sum(#0, none)", "bad_argument"),
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
def test_hostile_programs_fail_the_lenient_reading_with_a_reason(program, reason):
    with pytest.raises(ProgramError) as error:
        execute_leniently(program)
    assert error.value.reason == reason


@pytest.mark.parametrize("value, gold, expected", [
    (0.347186, 0.34719, True),
    (0.34717, 0.34719, False),
    (0.3472, 0.34719, False),
    (-0.06063, -0.06063, True),
    (36003776400000.0, 36003776400000.0, True),
    # FinQA rounds and compares exactly: no slack for a large gold
    (26860.00003 / 3, round(26860 / 3, 5), False),
    (122604300.1, 122604300.0, False),
    (122604300.000004, 122604300.0, True),
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
            assert matches_exe_ans(execute_as_finqa(record.program, record.table), record.exe_ans), record.id


def test_a_hugging_face_row_with_a_broken_program_re_is_a_bad_record():
    with pytest.raises(RecordError) as error:
        record_from_row({"id": "x-1", "question": "q?", "answer": "1", "program_re": "divide(1, "}, "rows.jsonl", 0)
    assert error.value.reason == "bad_program"
