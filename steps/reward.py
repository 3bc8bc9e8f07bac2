"""The reward of FinQA reinforcement fine-tuning: a Lambda handler that scores Nova's responses
with the scorer's own FinQA rules (`steps/finqa/program.py`, `steps/finqa/answers.py`).

The contract is AWS's:
- "Implementing reward functions" (Nova 2 user guide,
  https://docs.aws.amazon.com/nova/latest/nova2-userguide/nova-implementing-reward-functions.html):
  the event is a list of samples, each a line of the training data with the model's response
  appended to `messages` as an `assistant` turn and a unique `id` added; `reference_answer`
  is the data line's, unchanged;
- "Setting up reward functions for Amazon Nova models" (Bedrock user guide,
  https://docs.aws.amazon.com/bedrock/latest/userguide/reward-functions.html): the response is
  a list with one `{"id", "aggregate_reward_score", "metrics_list": [{"name", "value",
  "type": "Reward" | "Metric"}]}` per sample. That page shows the reference under
  `metadata.reference_answer` (where the data line's extra fields go); both places are read.
- Both guides: a reward function must finish within 15 minutes (Lambda's longest timeout),
  and should take seconds. Every sample's work is bounded (the generation, and so its
  program, is read from its last MAX_GENERATION_CHARS characters; FinQA's arithmetic cannot
  hang), and when the invocation is about to run out of time the samples not yet scored get
  0 with the reason `out_of_time` instead of the whole batch failing.

The reward, from 0 to 1 (REWARDS), with FinQA's execution verdict as the main signal:
- 1.0: the `Program:` line executes on the record's table to `exe_ans` by FinQA's own verdict
  (`execute_as_finqa`, the gate's `execution_accuracy`) and the `Answer:` line is right as
  well;
- 0.8: the program is right but the answer line is wrong or missing: the gate counts the
  record right, but the answer line is what a user reads;
- 0.5: the answer is right by the scorer's answer rule (`answer_accuracy`), the program not;
- 0.1: FinQA's evaluator runs the program on the table but it gives another value, and the
  answer is wrong: a program FinQA can run is what the gate needs, so it is worth a little,
  never as much as being right (RFT compares the responses to one prompt with each other). A
  program only the lenient reading runs (`Divide(1,2)`, nested calls) is not well formed here:
  the gate would count it wrong;
- 0.0: none of these, or a bad sample.

The reward pays for computing, not for copying: a program counts as right only when every
argument is one FinQA's grammar allows, a number from the prompt (the report's text, its
table, the question) or one of FinQA's constants (`program.ungrounded_arguments`). Otherwise
(`add(34.7, const_0)` for a gold of 34.7), or whose every step leaves its number as it was
(`multiply(34.7, const_1)` with 34.7 in the prompt: `program.copies_its_value`), the program is
scored as one that does not compute the answer: at most 0.5 with a right answer line, never 1.0.
The gate's metric stays FinQA's official `execution_accuracy`, which executes the program
only. Each such response is counted (`program_ungrounded` in its metrics, and per batch
`ungrounded_programs` in the log).

AWS Lambda takes a synchronous request of at most 6 MB (Lambda quotas, "Invocation payload
(request and response)"). A batch is at most one training step's rollouts, GlobalBatchSize x
NumberGeneration samples, each the data line and a response: the README's RFT section gives
the recipe values that keep it under the limit.
A bad sample (not an object, no response, an empty one, no reference, a reference this
project did not write) gets 0 and a logged reason, never an exception: one bad sample must
not fail the batch, and so the training job.

Two contracts, the same items:
- Nova (above): the list of results is the response;
- open-weights models (serverless RLVR of Llama, Qwen, GPT-OSS ...): AWS's SDK checks an
  open-weights reward function's response as `{"statusCode": 200, "body": json.dumps(results)}`
  (sagemaker-train 1.27.0, `common_utils/rlvr_reward_verifier.py`, `_unwrap_response` with
  `is_nova=False`) and sends it the same list of samples. Their data lines are verl-style, so a
  sample's reference may be the line's `reward_model.ground_truth` (steps/finqa/open_weights.py)
  rather than `reference_answer`; both are read.
The contract is chosen by the deployment (`REWARD_CONTRACT` = `nova` or `open-weights` in the
function's environment, set by pipeline/reward_function.py from the pipeline's base model), and
by the event where it tells: an event wrapped as `{"body": ...}` (HTTP style) is answered
wrapped. A plain list cannot tell the two apart (AWS's SDK sends both the same list), which is
why the deployment decides.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

from steps.finqa.answers import answer_matches, extract_answer, read_generation
from steps.finqa.program import (
    ProgramError,
    copies_its_value,
    execute_as_finqa,
    matches_exe_ans,
    source_numbers,
    ungrounded_arguments,
)
from steps.finqa.rft import Reference, ReferenceAnswerError, read_reference

FULL = "program_and_answer"
PROGRAM_ONLY = "program_only"
ANSWER_ONLY = "answer_only"
RUNS = "program_runs"
NONE = "none"
REWARDS = {FULL: 1.0, PROGRAM_ONLY: 0.8, ANSWER_ONLY: 0.5, RUNS: 0.1, NONE: 0.0}

NOVA = "nova"
OPEN_WEIGHTS = "open-weights"
CONTRACTS = (NOVA, OPEN_WEIGHTS)
CONTRACT_VARIABLE = "REWARD_CONTRACT"

TIME_MARGIN_MS = 2000
"""Left for returning the response when an invocation nears its timeout."""


@dataclass(frozen=True)
class Score:
    outcome: str
    """A key of REWARDS, or the reason a sample could not be scored."""
    execution: bool = False
    answer: bool = False
    program_runs: bool = False
    bad: bool = False
    detail: str = ""
    ungrounded: bool = False
    """The program gives exe_ans but copies: an argument neither from the prompt nor a FinQA constant."""

    @property
    def reward(self) -> float:
        return REWARDS.get(self.outcome, 0.0)


class BadSample(ValueError):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


def score_response(text: str, reference: Reference, prompt: str = "") -> Score:
    """The reward outcome of one response to `prompt`, by the rules in the module docstring."""
    generation = read_generation(text)
    execution = program_runs = ungrounded = False
    detail = "no Program: line"
    if generation.program:
        try:
            value = execute_as_finqa(generation.program, reference.table)
        except ProgramError as error:
            detail = f"program: {error.reason}"
        else:
            program_runs = True
            execution = matches_exe_ans(value, reference.exe_ans)
            detail = "" if execution else f"program gives {value!r}, not {reference.exe_ans!r}"
            if execution:
                copied = ungrounded_arguments(generation.program, source_numbers(
                    prompt, *(cell for row in reference.table for cell in row)))
                if copied:
                    execution, ungrounded = False, True
                    detail = f"program copies: {', '.join(copied)} is neither in the prompt nor a FinQA constant"
                elif copies_its_value(generation.program):
                    execution, ungrounded = False, True
                    detail = "program copies: every step leaves its number as it was (x * 1, x + 0 ...)"
    answer = answer_matches(extract_answer(generation, reference.exe_ans), reference.gold)
    if execution:
        outcome = FULL if answer else PROGRAM_ONLY
    elif answer:
        outcome = ANSWER_ONLY
    else:
        outcome = RUNS if program_runs else NONE
    return Score(outcome, execution=execution, answer=answer, program_runs=program_runs, detail=detail,
                 ungrounded=ungrounded)


def score_sample(sample: Any) -> Score:
    """One sample of the event scored; a bad one gets a Score with `bad` set and its reason."""
    try:
        text = _response(sample)
        reference = read_reference(_reference_answer(sample))
    except BadSample as error:
        return Score(error.reason, bad=True, detail=str(error))
    except ReferenceAnswerError as error:
        return Score(error.reason, bad=True, detail=str(error))
    return score_response(text, reference, _prompt(sample))


def _prompt(sample: dict) -> str:
    """The turns before the response (system and user): where a program's numbers must come from."""
    return "\n".join(_text(message.get("content")) or "" for message in sample["messages"][:-1]
                     if isinstance(message, dict))


def _response(sample: Any) -> str:
    if not isinstance(sample, dict):
        raise BadSample("not_an_object", f"the sample is a {type(sample).__name__}, not an object")
    messages = sample.get("messages")
    if not isinstance(messages, list) or not messages or not isinstance(messages[-1], dict) \
            or messages[-1].get("role") != "assistant":
        raise BadSample("no_response", "the last message is not the assistant's response")
    text = _text(messages[-1].get("content"))
    if text is None:
        raise BadSample("no_response", "the response's content is neither text nor a list of text parts")
    if not text.strip():
        raise BadSample("empty_response", "the response is empty")
    return text


def _text(content: Any) -> str | None:
    """Content as text: a string, or OpenAI / Converse content parts ({"type": "text", "text": ...})."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list) or not all(isinstance(part, dict) for part in content):
        return None
    texts = [part["text"] for part in content if isinstance(part.get("text"), str)]
    if content and not texts:
        return None
    return "\n".join(texts)


def _reference_answer(sample: dict) -> Any:
    reference = sample.get("reference_answer")
    if reference is None and isinstance(sample.get("metadata"), dict):
        reference = sample["metadata"].get("reference_answer")
    if reference is None and isinstance(sample.get("reward_model"), dict):
        reference = sample["reward_model"].get("ground_truth")
    if reference is None:
        raise BadSample("no_reference", "no reference_answer (neither at the top level nor under metadata) "
                                        "and no reward_model.ground_truth")
    return reference


def reward_entry(sample_id: Any, score: Score) -> dict[str, Any]:
    """One sample's item of the response, in AWS's output structure."""
    return {
        "id": sample_id,
        "aggregate_reward_score": score.reward,
        "metrics_list": [
            {"name": "execution_correct", "value": float(score.execution), "type": "Reward"},
            {"name": "answer_correct", "value": float(score.answer), "type": "Reward"},
            {"name": "program_runs", "value": float(score.program_runs), "type": "Reward"},
            {"name": "bad_sample", "value": float(score.bad), "type": "Metric"},
            {"name": "program_ungrounded", "value": float(score.ungrounded), "type": "Metric"},
        ],
    }


def lambda_handler(event: Any, context: Any) -> Any:
    """AWS Lambda's entry point: a reward for every sample of the event, in order, in the
    contract of the deployment or of the event (module docstring)."""
    contract = os.environ.get(CONTRACT_VARIABLE) or NOVA
    if contract not in CONTRACTS:
        _log({"event": "bad_contract", "value": contract, "used": NOVA})
        contract = NOVA
    if isinstance(event, dict) and "body" in event and "messages" not in event:
        contract, event = OPEN_WEIGHTS, _unwrapped(event["body"])
    results = score_event(event, context)
    if contract == OPEN_WEIGHTS:
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(results)}
    return results


def _unwrapped(body: Any) -> Any:
    if isinstance(body, str):
        try:
            return json.loads(body)
        except json.JSONDecodeError:
            return body
    return body


def score_event(event: Any, context: Any) -> list[dict[str, Any]]:
    """A reward for every sample of the event, in order, as the list of AWS's result items."""
    started = time.perf_counter()
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    samples, problem = _samples(event)
    if problem:
        _log({"event": "bad_event", "reason": problem})
    results, outcomes, ungrounded = [], {}, 0
    for index, sample in enumerate(samples):
        sample_id = sample.get("id") if isinstance(sample, dict) else None
        if _out_of_time(remaining):
            score = Score("out_of_time", bad=True, detail="the invocation was about to time out")
        else:
            score = score_sample(sample)
        if score.bad or sample_id is None:
            _log({"event": "bad_sample", "index": index, "id": sample_id,
                  "reason": score.outcome if score.bad else "no_id", "detail": score.detail})
        outcomes[score.outcome] = outcomes.get(score.outcome, 0) + 1
        ungrounded += score.ungrounded
        results.append(reward_entry(sample_id, score))
    rewards = [result["aggregate_reward_score"] for result in results]
    _log({"event": "batch", "samples": len(results), "outcomes": dict(sorted(outcomes.items())),
          "ungrounded_programs": ungrounded,
          "mean_reward": round(sum(rewards) / len(rewards), 4) if rewards else None,
          "seconds": round(time.perf_counter() - started, 4)})
    return results


def _samples(event: Any) -> tuple[list, str]:
    if isinstance(event, list):
        return event, ""
    if isinstance(event, dict) and "messages" in event:
        return [event], "the event is one sample, not a list of samples"
    return [], f"the event is a {type(event).__name__}, not a list of samples"


def _out_of_time(remaining: Callable[[], int] | None) -> bool:
    return remaining is not None and remaining() < TIME_MARGIN_MS


def _log(record: dict[str, Any]) -> None:
    # Lambda sends a function's standard output to its CloudWatch log group, one line an entry.
    sys.stdout.write(json.dumps(record, default=str) + "\n")
