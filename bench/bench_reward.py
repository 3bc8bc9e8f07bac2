"""Rewards per second of the RFT reward Lambda's handler for a batch of 1,000 samples.

    python bench/bench_reward.py [--shared DIR] [--repeat N] [--samples N]

The samples are what the training container sends the Lambda: the RFT data lines of the 400
real FinQA records of ../shared/finqa (train, dev and test), cycled to --samples, each with a
response appended, in the shapes a model writes: the gold two lines, the same after a <think>
block, a right program with a wrong answer line, a right answer with a broken program, a
program that runs to another value, free text, a truncated program, a huge exponent, and a
long response (20,000 characters of reasoning before the reply). Printed: the handler in
process (median of N runs; wall and CPU time), and the handler in a fresh process as a Lambda
cold start runs it (imports included).
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from steps.finqa.prompts import SYSTEM_PROMPT, render_question, render_target  # noqa: E402
from steps.finqa.records import load_records  # noqa: E402
from steps.finqa.rft import reference_answer, rft_line  # noqa: E402
from steps.reward import lambda_handler  # noqa: E402


def response(record, index: int) -> str:
    gold = render_target(record)
    shapes = [
        gold,
        f"<think>Find the rows, then compute step by step; a first guess is 12.5%.</think>\n{gold}",
        f"Program: {record.program}\nAnswer: -987654321",
        f"Program: divide(1, 0)\nAnswer: {record.final_answer}",
        f"Program: {record.program}, multiply(#0, const_2)\nAnswer: 3",
        "From the table the change is small; I would say about 4%.",
        "Program: divide(114400, 3295",
        "Program: exp(10, 99999999)\nAnswer: 1",
        "<think>" + "the table shows the amounts for each year. " * 470 + f"</think>\n{gold}",
    ]
    return shapes[index % len(shapes)]


def make_samples(shared: Path, count: int) -> list[dict]:
    files = [shared / name for name in ("train_100.json", "dev_200.json", "test_100.json")]
    records = load_records(files).records
    samples = []
    for index in range(count):
        record = records[index % len(records)]
        line = json.loads(rft_line(record.id, SYSTEM_PROMPT, render_question(record), reference_answer(record)))
        line["id"] = f"{record.id}/rollout-{index}"
        line["messages"].append({"role": "assistant", "content": response(record, index)})
        samples.append(line)
    return samples


COLD_START = """
import json, sys, time
started = time.perf_counter()
from steps.reward import lambda_handler
imported = time.perf_counter()
with open(sys.argv[1]) as handle:
    event = json.load(handle)
loaded = time.perf_counter()
lambda_handler(event, None)
done = time.perf_counter()
sys.stderr.write(json.dumps({"import": imported - started, "handler": done - loaded}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "finqa")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--samples", type=int, default=1000)
    args = parser.parse_args()
    samples = make_samples(args.shared, args.samples)
    event = json.loads(json.dumps(samples))  # as Lambda hands it over: freshly decoded JSON
    payload = len(json.dumps(samples).encode())
    wall, cpu = [], []
    for _ in range(args.repeat):
        with redirect_stdout(io.StringIO()):
            cpu_started, started = time.process_time(), time.perf_counter()
            results = lambda_handler(event, None)
            wall.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
    outcomes: dict[float, int] = {}
    for item in results:
        outcomes[item["aggregate_reward_score"]] = outcomes.get(item["aggregate_reward_score"], 0) + 1
    median = statistics.median(wall)
    print(f"{len(samples)} samples ({payload / 2**20:.1f} MiB of event JSON), rewards "
          + ", ".join(f"{reward:g}: {n}" for reward, n in sorted(outcomes.items(), reverse=True)))
    print(f"in process: {median * 1000:.1f} ms per batch (median of {args.repeat}; "
          f"{min(wall) * 1000:.1f}-{max(wall) * 1000:.1f} ms), {len(samples) / median:,.0f} rewards/s; "
          f"CPU {statistics.median(cpu) * 1000:.1f} ms")
    with tempfile.NamedTemporaryFile("w", suffix=".json") as handle:
        json.dump(samples, handle)
        handle.flush()
        runs = []
        for _ in range(args.repeat):
            finished = subprocess.run([sys.executable, "-c", COLD_START, handle.name], cwd=ROOT, check=True,
                                      capture_output=True, text=True)
            runs.append(json.loads(finished.stderr))
    imports = statistics.median(run["import"] for run in runs)
    handler = statistics.median(run["handler"] for run in runs)
    print(f"fresh process (a cold start): import {imports * 1000:.1f} ms, first batch {handler * 1000:.1f} ms "
          f"(medians of {args.repeat}), {len(samples) / handler:,.0f} rewards/s")


if __name__ == "__main__":
    main()
