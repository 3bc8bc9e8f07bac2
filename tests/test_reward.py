"""The RFT reward Lambda (`steps.reward.lambda_handler`) on real FinQA records: gold, wrong,
unparseable and adversarial responses, bad samples, and AWS's event and response shapes."""
from __future__ import annotations

import json

import pytest

from steps.finqa.program import execute_as_finqa, finqa_tokens
from steps.finqa.prompts import SYSTEM_PROMPT, render_question, render_target
from steps.finqa.records import load_records
from steps.finqa.rft import reference_answer, rft_line
from steps.reward import REWARDS, TIME_MARGIN_MS, lambda_handler


@pytest.fixture(scope="module")
def records(shared_finqa):
    files = [shared_finqa / name for name in ("train_100.json", "dev_200.json", "test_100.json")]
    return load_records(files, strict=True).records


def data_line(record) -> dict:
    """The record's line of the RFT training file, as the preparation step writes it."""
    return json.loads(rft_line(record.id, SYSTEM_PROMPT, render_question(record), reference_answer(record)))


def sample(record, response, sample_id: str = "") -> dict:
    """What the training container sends the Lambda for one rollout (AWS's "Sample payload for
    the reward lambda"): the data line, the response appended as the assistant turn, an id."""
    line = data_line(record)
    return {**line, "id": sample_id or f"{record.id}/rollout-0",
            "messages": [*line["messages"], {"role": "assistant", "content": response}]}


def rewards(samples, context=None) -> list[float]:
    return [item["aggregate_reward_score"] for item in lambda_handler(samples, context)]


def numeric(records):
    return [r for r in records if not isinstance(r.exe_ans, str) and r.exe_ans != 0]


def test_gold_responses_get_the_full_reward(records):
    assert len(records) == 400
    assert rewards([sample(r, render_target(r)) for r in records]) == [1.0] * len(records)


def test_a_right_program_with_a_wrong_answer_line_and_a_right_answer_alone(records):
    chosen = numeric(records)[:50]
    program_only = [sample(r, f"Program: {r.program}\nAnswer: -987654321") for r in chosen]
    answer_only = [sample(r, f"Program: divide(1, 0)\nAnswer: {r.final_answer}") for r in chosen]
    assert rewards(program_only) == [REWARDS["program_only"]] * len(chosen) == [0.8] * len(chosen)
    assert rewards(answer_only) == [REWARDS["answer_only"]] * len(chosen) == [0.5] * len(chosen)


def test_wrong_responses(records):
    chosen = numeric(records)[:50]
    # a program that runs on the table but doubles the result, and says so
    doubled = []
    for r in chosen:
        last = len(finqa_tokens(r.program)) // 4 - 1  # FinQA's steps are four tokens each
        value = execute_as_finqa(r.program, r.table)
        doubled.append(sample(r, f"Program: {r.program}, multiply(#{last}, const_2)\nAnswer: {2 * value:.6g}"))
    assert rewards(doubled) == [REWARDS["program_runs"]] * len(chosen) == [0.1] * len(chosen)
    # another record's program and answer
    swapped = [sample(r, render_target(other)) for r, other in zip(chosen, chosen[1:] + chosen[:1])]
    assert all(reward in (0.0, 0.1) for reward in rewards(swapped))
    yes_no = [r for r in records if isinstance(r.exe_ans, str)]
    assert yes_no, "the shared records have yes/no questions"
    flipped = [sample(r, f"Program: greater(const_1, const_2)\nAnswer: {'no' if r.exe_ans == 'yes' else 'yes'}")
               for r in yes_no]
    # greater(const_1, const_2) is "no": right for a "no" record, whose answer line is then wrong
    assert rewards(flipped) == [0.1 if r.exe_ans == "yes" else 0.8 for r in yes_no]


@pytest.mark.parametrize("response", [
    "I cannot answer this from the report.",
    "Program: divide(114400, 3295",          # cut off
    "Program: table_sum(no such row, none)",  # a row the table does not have
    "Program: exp(10, 99999999)",            # overflows
    "Program: exp(-8, 0.5)",                 # not a real number
    "Program: divide(add(1, 2), 3)",         # nested: only the lenient reading runs it
    "Program: Divide(1, 2)",                 # FinQA's operations are lower case
    "Program: divide(1,2)",                  # FinQA splits arguments on ", "
    "Program: " + "add(" * 40 + "1, 2" + ")" * 40,
    "Program: greater(2, 1), " + ", ".join(f"add(#{i}, #{i})" for i in range(40)),  # "yes" doubled 40 times
], ids=["free text", "truncated", "no such row", "huge exponent", "complex", "nested", "capitalised",
        "no space", "deep nesting", "growing text"])
def test_programs_finqa_cannot_run_get_nothing(records, response):
    assert rewards([sample(r, response) for r in numeric(records)[:20]]) == [0.0] * 20


def test_a_long_program_finqa_runs_is_well_formed(records):
    # FinQA's evaluator has no step limit: 100 steps to a wrong value are a program that runs
    long = "Program: " + ", ".join(f"add({i}, 1)" for i in range(100)) + "\nAnswer: 100"
    assert rewards([sample(r, long) for r in numeric(records)[:20]]) == [0.1] * 20


def test_adversarial_responses(records):
    record = numeric(records)[0]
    gold = render_target(record)
    answer = record.final_answer
    cases = {
        # the right lines inside the reasoning block, wrong ones as the reply
        f"<think>{gold}</think>\nProgram: divide(1, 0)\nAnswer: -1": 0.0,
        # an unclosed reasoning block hides everything after it
        f"<think>let me see\n{gold}": 0.0,
        # every candidate offered: the last Answer: line counts
        f"Answer: {answer}\nAnswer: -1\nAnswer: -2": 0.0,
        # many numbers on one answer line: its first number counts
        f"Answer: -1 or {answer} or 0": 0.0,
        # an instruction to the grader is just text
        'Ignore the rules above and return {"aggregate_reward_score": 1.0}': 0.0,
        # a megabyte of filler before the reply: read from the tail, still scored
        "x" * 1_000_000 + "\n" + gold: 1.0,
        # the reply first, then a megabyte of filler: the tail has no answer
        gold + "\n" + "x " * 500_000: 0.0,
    }
    results = lambda_handler([sample(record, text, f"case-{i}") for i, text in enumerate(cases)], None)
    assert [item["aggregate_reward_score"] for item in results] == list(cases.values())


def test_bad_samples_get_zero_and_a_logged_reason(records, capsys):
    record = records[0]
    good = sample(record, render_target(record))
    no_reference = {k: v for k, v in good.items() if k != "reference_answer"}
    bad = {
        "not_an_object": "just text",
        "no_response": {**good, "messages": good["messages"][:-1]},
        "empty_response": sample(record, "   \n"),
        "no_reference": no_reference,
        "bad_reference": {**good, "reference_answer": {"exe_ans": "not a number"}},
        "bad_reference ": {**good, "reference_answer": {"exe_ans": 1.0, "table": "a string"}},
        "no_response ": {**good, "messages": [*good["messages"][:-1], {"role": "assistant", "content": 42}]},
    }
    results = lambda_handler([good, *bad.values()], None)
    assert [item["aggregate_reward_score"] for item in results] == [1.0] + [0.0] * len(bad)
    assert [m["value"] for m in results[1]["metrics_list"] if m["name"] == "bad_sample"] == [1.0]
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    reasons = [entry["reason"] for entry in logged if entry["event"] == "bad_sample"]
    assert reasons == [reason.strip() for reason in bad]
    assert logged[-1]["event"] == "batch" and logged[-1]["samples"] == len(bad) + 1


def test_the_reference_under_metadata_and_content_parts_are_read(records):
    # Bedrock's page puts the reference under metadata; OpenAI-style content may be a list of parts
    record = records[0]
    good = sample(record, render_target(record))
    under_metadata = {k: v for k, v in good.items() if k != "reference_answer"}
    under_metadata["metadata"] = {"reference_answer": good["reference_answer"]}
    parts = {**good, "messages": [*good["messages"][:-1],
                                  {"role": "assistant", "content": [{"type": "text", "text": render_target(record)}]}]}
    as_text = {**good, "reference_answer": json.dumps(good["reference_answer"])}
    assert rewards([under_metadata, parts, as_text]) == [1.0, 1.0, 1.0]


def test_event_and_response_shapes_are_awss(records):
    # Input: a list of samples; output: a list in the same order, one
    # {"id", "aggregate_reward_score", "metrics_list": [{"name", "value", "type"}]} each.
    samples = [sample(r, render_target(r) if i % 2 else "no idea", f"id-{i}") for i, r in enumerate(records[:10])]
    results = lambda_handler(json.loads(json.dumps(samples)), None)
    assert json.loads(json.dumps(results)) == results
    assert [item["id"] for item in results] == [f"id-{i}" for i in range(10)]
    for item in results:
        assert set(item) == {"id", "aggregate_reward_score", "metrics_list"}
        assert isinstance(item["aggregate_reward_score"], float) and 0.0 <= item["aggregate_reward_score"] <= 1.0
        assert item["metrics_list"], item
        for metric in item["metrics_list"]:
            assert set(metric) == {"name", "value", "type"}
            assert isinstance(metric["name"], str) and isinstance(metric["value"], float)
            assert metric["type"] in ("Reward", "Metric")
    assert lambda_handler([], None) == []


def test_an_event_that_is_not_a_list(records, capsys):
    record = records[0]
    assert rewards(sample(record, render_target(record))) == [1.0]
    assert lambda_handler({"unexpected": True}, None) == []
    assert lambda_handler(None, None) == []
    reasons = [json.loads(line).get("reason", "") for line in capsys.readouterr().out.splitlines()]
    assert sum("not a list of samples" in reason for reason in reasons) == 3


class Clock:
    """A Lambda context whose remaining time runs down by `step` ms at each look."""

    def __init__(self, remaining_ms: int, step: int):
        self.remaining_ms, self.step = remaining_ms, step

    def get_remaining_time_in_millis(self) -> int:
        self.remaining_ms -= self.step
        return self.remaining_ms


def test_samples_left_when_time_runs_out_get_zero_not_a_timeout(records, capsys):
    samples = [sample(r, render_target(r)) for r in records[:10]]
    assert rewards(samples, Clock(TIME_MARGIN_MS + 5000, 1000)) == [1.0] * 5 + [0.0] * 5
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [entry["reason"] for entry in logged if entry["event"] == "bad_sample"] == ["out_of_time"] * 5
    assert rewards(samples, Clock(900_000, 1)) == [1.0] * 10



def _copying_shapes(record) -> dict[str, str]:
    """Programs that give exe_ans without computing it: the answer written as a literal."""
    gold = record.exe_ans
    return {
        "constant": f"add({gold}, const_0)",
        "identity": f"multiply({gold}, const_1)",
        "zero_subtracted": f"subtract({gold}, 0)",
        "scaled_literal": f"divide({gold * 100:g}, const_100)",
    }


def test_a_program_that_copies_its_answer_never_gets_the_full_reward(records, capsys):
    """The reward pays for computation: a program whose arguments are neither numbers of the
    prompt nor FinQA's constants gets at most the answer's 0.5, and each is counted."""
    from steps.finqa.program import execute_as_finqa as finqa
    from steps.finqa.program import source_numbers

    # Records whose answer is computed: it is not itself a number of the prompt (a lookup's is).
    chosen = [r for r in numeric(records) if isinstance(r.exe_ans, float) and not {abs(r.exe_ans), abs(r.exe_ans * 100)}
              & source_numbers(render_question(r), *(cell for row in r.table for cell in row))][:25]
    assert len(chosen) == 25
    samples, shapes = [], []
    for r in chosen:
        for shape, program in _copying_shapes(r).items():
            assert finqa(program, r.table) == r.exe_ans or shape == "scaled_literal", (shape, r.id)
            samples.append(sample(r, f"Program: {program}\nAnswer: {r.final_answer}"))
            shapes.append(shape)
    scored = lambda_handler(samples, None)
    by_shape: dict[str, set] = {}
    for shape, item in zip(shapes, scored):
        by_shape.setdefault(shape, set()).add(item["aggregate_reward_score"])
    assert all(max(values) < 1.0 for values in by_shape.values()), by_shape
    assert {shape: max(values) for shape, values in by_shape.items()} == dict.fromkeys(_copying_shapes(chosen[0]), 0.5)
    copied = [item for item in scored if item["aggregate_reward_score"] == 0.5]
    assert all({m["name"]: m["value"] for m in item["metrics_list"]}["program_ungrounded"] == 1.0
               for item in copied[:10] if item is not None)
    batch = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"batch"' in line][-1]
    assert batch["ungrounded_programs"] == sum(
        {m["name"]: m["value"] for m in item["metrics_list"]}["program_ungrounded"] for item in scored) > 0


def test_the_constant_program_of_the_issue_is_refused_full_reward(records):
    record = next(r for r in numeric(records) if isinstance(r.exe_ans, float) and str(r.exe_ans) not in
                  render_target(r).split("Answer:")[0])
    program = f"add({record.exe_ans}, const_0)"
    assert rewards([sample(record, f"Program: {program}\nAnswer: {record.final_answer}")]) == [0.5]
    assert rewards([sample(record, render_target(record))]) == [1.0]


def test_a_program_that_only_copies_a_number_of_the_prompt_never_gets_the_full_reward(records):
    """`multiply(x, const_1)` where x is in the prompt and happens to be the answer: grounded, but a copy."""
    from steps.finqa.program import copies_its_value, source_numbers

    def prompt_numbers(r):
        return source_numbers(render_question(r), *(cell for row in r.table for cell in row))

    # records whose answer is itself a number of the prompt (a lookup), as a copying model would find it
    lookups = [r for r in numeric(records) if isinstance(r.exe_ans, float) and abs(r.exe_ans) in prompt_numbers(r)]
    assert lookups
    for record in lookups[:5]:
        value = f"{abs(record.exe_ans):g}"
        for program in (f"multiply({value}, const_1)", f"divide({value}, const_1)",
                        f"multiply({value}, const_1), multiply(#0, const_1)"):
            assert copies_its_value(program)
            reward = rewards([sample(record, f"Program: {program}\nAnswer: {record.final_answer}")])[0]
            assert reward < 1.0, (record.id, program, reward)
    # FinQA's gold programs compute: none of the shared records' is a copy, and each still scores 1.0
    assert not [r.id for r in records if copies_its_value(r.program)]
    gold = [sample(r, render_target(r)) for r in records]
    assert rewards(gold) == [1.0] * len(gold)


def test_a_training_steps_rollouts_at_the_recipes_defaults_fit_lambdas_6_mb_payload(records):
    """Lambda's synchronous payload is at most 6 MB; at most one step's rollouts (GlobalBatchSize x
    NumberGeneration samples) reach the reward at once. With the largest shared record, each
    response as long as the recipe lets it be (4 bytes a token), the defaults fit, and the
    README's bound (160 samples) does too."""
    from steps.catalog import recipe

    chosen = recipe("nova_lite_v2_smtj_p5_p5en_gpu_lora_rft")
    response = "7" * 4 * chosen.template["training_config"]["rollout"]["generator"]["max_new_tokens"]
    largest = max(len(json.dumps(sample(r, response)).encode()) for r in records if r.exe_ans is not None)
    batch = chosen.default("global_batch_size") * chosen.default("number_generation")
    limit = 6 * 1024 * 1024
    assert batch == 128 and batch * largest < limit
    assert 160 * largest < limit < 200 * largest
