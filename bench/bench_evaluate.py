"""Time to score 1,147 predictions (FinQA's test size) with the scoring step; target < 0.5 s.

    python bench/bench_evaluate.py [--shared DIR] [--repeat N]

The 1,147 eval records are the 100 real test records of ../shared/finqa repeated with new
ids (and "(copy N)" after the question, so that prompts are distinct), turned into gen_qa.jsonl by the real
preparation step, so the figures are for real
FinQA records at FinQA's size, not for the real test split. The predictions mix the shapes
a model writes: the gold two lines, the same after a <think> block, a free-text answer, a
wrong program, and hostile output (truncated, dividing by zero, a huge exponent).
Printed: in-process scoring (median of N runs, split into reading and scoring, and the CPU
time, which other load on the machine does not inflate), the CLI as
the container runs it (a fresh process, start-up included) on the jsonl and on an
output.tar.gz, with a baseline, and matching by prompt when metadata is absent.
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from steps.evaluate import load_eval_records, read_predictions, score_predictions  # noqa: E402
from steps.finqa.answers import DEFAULT_TOLERANCE  # noqa: E402

FINQA_TEST_SIZE = 1147


def make_eval_data(shared: Path, work: Path) -> Path:
    source = work / "finqa"
    source.mkdir()
    records = json.loads((shared / "test_100.json").read_text())
    repeated = []
    for i in range(FINQA_TEST_SIZE):
        record = records[i % len(records)]
        # a distinct question too, so that matching by prompt has one record to find
        qa = {**record["qa"], "question": f"{record['qa']['question']} (copy {i})"}
        repeated.append({**record, "id": f"{record['id']}#copy{i}", "qa": qa})
    (source / "test.json").write_text(json.dumps(repeated))
    for name in ("train_100.json", "dev_200.json"):
        (source / name).write_text((shared / name).read_text())
    subprocess.run([sys.executable, "-m", "steps.prepare", "--input-dir", str(source),
                    "--output-dir", str(work / "prepared")],
                   cwd=ROOT, check=True, capture_output=True)
    return work / "prepared" / "eval"


def generation(example: dict, index: int) -> str:
    response = example["response"]
    answer = response.split("Answer:", 1)[1].strip()
    shapes = [
        response,
        f"<think>Look up the rows, then compute step by step. First guess 12.5%.</think>\n{response}",
        f"From the table, the values give the result. The answer is {answer}.",
        "Program: subtract(5829, 5735), divide(#0, 5735)\nAnswer: 1.6%",
        "Program: divide(114400, 3295",
        "Program: divide(1, 0)\nAnswer: 0",
        "Program: exp(10, 99999999)\nAnswer: 1",
    ]
    return shapes[index % len(shapes)]


def nova_lines(gen_qa: list[dict], *, metadata: bool = True) -> str:
    lines = []
    for index, example in enumerate(gen_qa):
        prompt = str([{"role": "system", "content": example["system"]}, {"role": "user", "content": example["query"]}])
        line = {"prompt": prompt, "inference": generation(example, index), "gold": example["response"]}
        if metadata:
            line["metadata"] = example["metadata"]
        lines.append(json.dumps(line) + "\n")
    return "".join(lines)


def cli_seconds(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "steps.evaluate", *args], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "finqa")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        eval_dir = make_eval_data(args.shared, work)
        gen_qa = [json.loads(line) for line in (eval_dir / "gen_qa.jsonl").read_text().splitlines()]
        predictions = work / "inference_output.jsonl"
        predictions.write_text(nova_lines(gen_qa))
        archive = work / "output.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            data = predictions.read_bytes()
            info = tarfile.TarInfo("run_name/eval_results/inference_output.jsonl")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        no_metadata = work / "no_metadata.jsonl"
        no_metadata.write_text(nova_lines(gen_qa, metadata=False))

        print(f"{len(gen_qa)} eval records (the 100 shared test records repeated with new ids and questions), "
              f"{len(gen_qa)} predictions, {predictions.stat().st_size / 2**20:.1f} MiB of jsonl")
        reading, scoring, total, cpu = [], [], [], []
        for _ in range(args.repeat):
            cpu_started = time.process_time()
            started = time.perf_counter()
            records = load_eval_records(eval_dir)
            prediction_set = read_predictions(predictions, records)
            read_done = time.perf_counter()
            _, metrics = score_predictions(records, prediction_set, DEFAULT_TOLERANCE)
            finished = time.perf_counter()
            reading.append(read_done - started)
            scoring.append(finished - read_done)
            total.append(finished - started)
            cpu.append(time.process_time() - cpu_started)
        print(f"in-process, median of {args.repeat}: {statistics.median(total):.3f} s "
              f"(reading eval data and predictions {statistics.median(reading):.3f} s, "
              f"scoring {statistics.median(scoring):.3f} s; CPU time {statistics.median(cpu):.3f} s); target < 0.5 s")
        print(f"  execution_accuracy {metrics['execution_accuracy']['value']:.3f}, "
              f"lenient_execution_accuracy {metrics['lenient_execution_accuracy']['value']:.3f}, "
              f"answer_accuracy {metrics['answer_accuracy']['value']:.3f} (mixed shapes, by design)")
        common = ["--eval-data", str(eval_dir), "--output-dir", str(work / "out")]
        print("CLI, jsonl (fresh process, start-up included): "
              f"{cli_seconds('--predictions', str(predictions), *common):.3f} s")
        print(f"CLI, output.tar.gz: {cli_seconds('--predictions', str(archive), *common):.3f} s")
        print(f"CLI, with --baseline-predictions (scores twice): "
              f"{cli_seconds('--predictions', str(predictions), '--baseline-predictions', str(archive), *common):.3f}"
              " s")
        started = time.perf_counter()
        matched = read_predictions(no_metadata, load_eval_records(eval_dir))
        print(f"in-process, matching by prompt (no metadata): {time.perf_counter() - started:.3f} s, "
              f"{matched.matched_by_prompt} matched")


if __name__ == "__main__":
    main()
