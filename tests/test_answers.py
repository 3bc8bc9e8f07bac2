"""Reading answers in the shapes real models write, and the tolerance rules, with verdicts."""
from __future__ import annotations

from decimal import Decimal

import pytest

from steps.finqa.answers import (
    MAX_GENERATION_CHARS,
    Gold,
    Number,
    answer_matches,
    extract_answer,
    parse_number,
    read_generation,
)
from steps.finqa.records import load_records

# a FinQA test record: exe_ans 0.34719, human answer "34.7%"
PERCENT_GOLD = Gold.of(0.34719, "34.7%")


def verdict(generation: str, gold: Gold = PERCENT_GOLD, tolerance: float = 0.01) -> tuple:
    parsed = extract_answer(read_generation(generation), gold.exe_ans)
    shown = parsed.value if isinstance(parsed, Number) else parsed
    return shown, answer_matches(parsed, gold, tolerance)


@pytest.mark.parametrize("generation, parsed, right", [
    ("Program: divide(114400, 329500)\nAnswer: 34.7%", 34.7, True),
    ("The answer is 34.7%.", 34.7, True),
    ("**0.347**", 0.347, True),
    ("Answer: **34.72 %**", 34.72, True),
    ("**Answer:** 0.3472", 0.3472, True),
    ("Final answer: 34.7 percent", 34.7, True),
    ("Answer:\n\n  34.7%", 34.7, True),
    ("\\boxed{34.7\\%}", 34.7, True),
    ("<think>114400 / 329500 is about 0.12? No: 0.3472, so 34.7%.</think>\nAnswer: 34.7%", 34.7, True),
    ("<think>First guess: the answer is 12%.</think>The answer is 34.72%", 34.72, True),
    ("<THINK>12%</THINK> <think>no: 34.7%</think> so 34.7%", 34.7, True),
    ("the template opened the block: 12% looks wrong.</think>34.7%", 34.7, True),
    # reasoning first, conclusion last: free text takes the last number
    ("Revenue was 114400 in 2019 against 329500 in 2018, so the share is 0.347 (34.7%).", 34.7, True),
    ("The ratio is 34.7", 34.7, True),
    ("Revenue grew 34.7% in 2019.", 34.7, True),
    ("Answer: from 2018 to 2019 the share rose to 34.7%", 34.7, True),
    ("As of December 31, 2019, the share was 34.7%", 34.7, True),
    ("Answer: 35%", 35.0, True),  # 0.8% from 34.719: inside the 1% tolerance
    ("Answer: 34%", 34.0, False),  # 2.1% off
    ("Answer: -34.7%", -34.7, False),  # the sign counts
    ("Answer: 3.47%", 3.47, False),
    # a number in every sentence: only the conclusion counts, and it is wrong
    ("In 2019 it was 34.7%. In 2018 it was 12%. In 2017 it was 5%.", 5.0, False),
    ("Program: divide(114400, 3295", None, False),  # truncated: no answer
    ("<think>114400 / 329500 = 0.347 so the answer is 34.7", None, False),  # cut off while thinking
    ("", None, False),
    ("I cannot answer this question from the report.", None, False),
    ("Answer: not enough information", None, False),
])
def test_percentage_answers_in_the_shapes_models_write(generation, parsed, right):
    assert verdict(generation) == (parsed, right)


AMOUNT_GOLD = Gold.of(1234.5, "$ 1234.5 million")


@pytest.mark.parametrize("generation, parsed, right", [
    ("Answer: approximately $1,234.5 million", 1234.5, True),
    ("The total is US$ 1,234.5m... so the answer is $1,234.5 million.", 1234.5, True),
    ("Answer: 1234.50", 1234.5, True),
    ("Answer: $ 1.2345 billion", 1.2345, True),  # the human answer's 1234.5 million, multiplied out
    ("Answer: $ 1.2345", 1.2345, False),  # without its scale word a different amount
    ("Answer: 1,234,500,000", 1234500000.0, True),
    ("Answer: 1234.5 thousand", 1234.5, True),  # as written, the report's units
    ("Answer: 1.2345 million", 1.2345, False),
    ("Answer: (1,234.5)", -1234.5, False),  # accounting negative
    ("Answer: -$1,234.5", -1234.5, False),
    ("From 2018-2019 the total was 1234.5", 1234.5, True),  # a range's hyphen is no minus sign
    # years in a sentence are passed over, amounts that look like years are not
    ("Answer: the total for fiscal 2019 was $1,234.5 million", 1234.5, True),
    ("Between 2017 and 2019 the total grew to 1234.5 in 2019.", 1234.5, True),
    ("Answer: 2019", 2019.0, False),
    ("Answer: 2019 million, up from 1234.5", 2019.0, False),
])
def test_amount_answers(generation, parsed, right):
    assert verdict(generation, AMOUNT_GOLD) == (parsed, right)


def test_negative_answers_in_parentheses_and_with_signs():
    gold = Gold.of(-0.06063, "-6.1%")
    assert verdict("Answer: (6.1)%", gold) == (-6.1, True)
    assert verdict("Answer: (6.1%)", gold) == (-6.1, True)
    assert verdict("Answer: −6.06%", gold) == (-6.06, True)
    assert verdict("The change was -0.0606 (-6.1%).", gold) == (-6.1, True)
    assert verdict("Answer: 6.1% decrease", gold) == (6.1, False)


def test_yes_no_answers():
    gold = Gold.of("yes", "yes")
    assert verdict("Program: greater(5, 3)\nAnswer: yes", gold) == ("yes", True)
    assert verdict("Answer: **Yes**, it grew from 5 to 7", gold) == ("yes", True)
    assert verdict("It grew from 5 to 7, so yes.", gold) == ("yes", True)
    assert verdict("Answer: no", gold) == ("no", False)
    assert verdict("Answer: 7", gold) == (None, False)
    # a yes/no gold whose human answer says otherwise accepts either, as numeric golds do
    assert verdict("Answer: no", Gold.of("yes", "no")) == ("no", True)


@pytest.mark.parametrize("generation, gold, right", [
    ("Answer: 27.9", Gold.of(0.279, "27.9"), True),  # a human answer without its % sign
    ("Answer: 0.279", Gold.of(0.279, "27.9"), True),
    ("Answer: 34.72%", Gold.of(34.719, "34.7%"), True),  # gold program multiplied by const_100
    ("Answer: 0.3472", Gold.of(34.719, "34.7%"), True),
    ("Answer: 5%", Gold.of(0.04545, "0.05"), True),  # the human answer's rounding counts too
    ("Answer: 4.5%", Gold.of(0.04545, "0.05"), True),
    ("Answer: 0", Gold.of(0.0, "0"), True),
    ("Answer: 0.001", Gold.of(0.0, "0"), False),
])
def test_gold_targets_are_exe_ans_and_the_human_answer(generation, gold, right):
    assert verdict(generation, gold)[1] is right


def test_tolerance_is_relative_and_set_by_the_caller():
    assert verdict("Answer: 34%", tolerance=0.03)[1] is True
    assert verdict("Answer: 34.7%", tolerance=0.0)[1] is True  # equals the human answer
    assert verdict("Answer: 34.72%", tolerance=0.0)[1] is False  # 34.719 is not 34.72
    # one decimal short of the human answer is 1.4% off: wrong at the default, right at 2%
    assert verdict("Answer: 2.1%", Gold.of(0.0213, "2.13%")) == (2.1, False)
    assert verdict("Answer: 2.1%", Gold.of(0.0213, "2.13%"), tolerance=0.02) == (2.1, True)


def test_program_line_is_read_as_written_after_its_label():
    # the label's markdown is the label's; what follows is FinQA's to judge, full stop included
    generation = read_generation("**Program:** `subtract(5829, 5735), divide(#0, 5735)`.\n**Answer:** 1.6%")
    assert generation.program == "subtract(5829, 5735), divide(#0, 5735)`."
    assert generation.answer_source == "answer_line"
    assert read_generation("Answer: 5").program is None
    one_line = read_generation("Program: divide(114400, 329500) **Answer:** 34.7%")
    assert (one_line.program, one_line.answer_text) == ("divide(114400, 329500)", "34.7%")


def test_hostile_generations_are_read_quickly_and_safely():
    long_generation = "1, " * 200_000 + "Answer: 34.7%"
    assert verdict(long_generation) == (34.7, True)
    assert len(read_generation("(" * 100_000).answer_text or "") <= MAX_GENERATION_CHARS
    for hostile in ("\n" * 100_000, "<think>" * 10_000, "- " * 50_000, "Program: " * 10_000, "5 % " * 20_000):
        read_generation(hostile)  # linear-time expressions: each returns at once
    assert verdict("9" * 5000) == (None, False)  # beyond a float: not a number
    assert verdict("Answer: 0." + "3" * 500) == (None, False)  # more digits than any answer has
    assert verdict("\\boxed{" * 20_000) == (None, False)  # never closed
    assert verdict("\\boxed{" * 5_000 + "34.7%" + "}" * 5_000) == (34.7, True)
    assert verdict("Answer: " + "9" * 400) == (None, False)
    assert verdict(None) == (None, False)


def test_parse_number():
    assert parse_number("approximately $1,234.5 million") == Number(
        Decimal("1234.5"), False, "$1,234.5 million", scale=10 ** 6)
    assert parse_number("in 2019").year and not parse_number("2019").year and not parse_number("in $2019").year
    assert parse_number("-12034 ( 12034 )").value == -12034.0
    assert parse_number("34.72 %") == Number(Decimal("34.72"), True, "34.72 %")
    assert parse_number("no number here") is None
    assert parse_number("1,2345").value == 2345.0  # not a thousands group: the digits after the comma
    assert parse_number("(12345678901234567890123456789.5)").exact == Decimal("-12345678901234567890123456789.5")


def test_every_shared_human_answer_scores_right(shared_finqa):
    for name in ("train_100.json", "dev_200.json", "test_100.json"):
        for record in load_records([shared_finqa / name]).records:
            gold = Gold.of(record.exe_ans, record.answer)
            assert verdict(f"Answer: {record.final_answer}", gold)[1], record.id


def test_a_scale_word_after_the_final_answer_multiplies_it_out(shared_finqa):
    # a real test record: the average impact on dva, gold exe_ans 35000000, human answer "35000000"
    record = next(r for r in load_records([shared_finqa / "test_100.json"]).records
                  if r.id == "JPM/2008/page_117.pdf-1")
    gold = Gold.of(record.exe_ans, record.answer)
    assert (record.exe_ans, record.answer) == (35000000.0, "35000000")
    assert verdict("The average is (32 + 38) / 2 = 35 basis points of $1 million: \\boxed{35} million dollars",
                   gold) == (
        35.0, True)
    assert verdict("Answer: $35 million", gold) == (35.0, True)
    assert verdict("Answer: 35 mm", gold) == (35.0, True)
    assert verdict("Answer: 0.035 billion", gold) == (0.035, True)
    assert verdict("Answer: 35 thousand", gold) == (35.0, False)  # another amount
    assert verdict("Answer: 35", gold) == (35.0, False)  # no unit: 35, not 35 million
    # the hundredfold readings are for fractions and percentages, not for scaled amounts
    assert verdict("Answer: 3.5 billion", gold) == (3.5, False)


@pytest.mark.parametrize("generation, gold, right", [
    # exactly 1% away: right, whichever side float rounding puts 0.3535 - 0.35 on
    ("Answer: 35.35%", Gold.of(0.35, "35%"), True),
    ("Answer: 0.3535", Gold.of(0.35, ""), True),
    ("Answer: 1.01", Gold.of(1.0, ""), True),
    ("Answer: 0.99", Gold.of(1.0, ""), True),
    ("Answer: 30.3", Gold.of(30.0, ""), True),
    ("Answer: 0.707", Gold.of(0.7, ""), True),
    # a hair beyond 1%: wrong
    ("Answer: 1.0101", Gold.of(1.0, ""), False),
    ("Answer: 35.3501%", Gold.of(0.35, "35%"), False),
])
def test_a_verdict_at_the_tolerance_is_decided_exactly(generation, gold, right):
    assert verdict(generation, gold)[1] is right


@pytest.mark.parametrize("generation, parsed", [
    ("First guess \\boxed{12}. Checking again, the share is \\boxed{34.7\\%}", 34.7),
    ("\\boxed{12} then \\boxed{\\text{34.7}\\%}", 34.7),  # braces inside the last box
    ("\\boxed{\\textbf{0.347}}", 0.347),
    ("Answer: \\boxed{12}, no: \\boxed{34.7%}", 34.7),  # several boxes on the answer line
    ("<think>\\boxed{34.7%}</think> The answer is \\boxed{12%}", 12.0),  # reasoning does not count
    ("\\boxed{12} and an unclosed \\boxed{34.7", 12.0),
])
def test_the_last_box_is_the_answer(generation, parsed):
    assert verdict(generation)[0] == parsed
