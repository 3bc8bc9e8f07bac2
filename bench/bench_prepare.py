"""Throughput and peak memory of the preparation step on a FinQA-sized input and one ten times larger.

    python bench/bench_prepare.py [--shared DIR] [--runs N]

FinQA has 6,251 train, 883 dev and 1,147 test records (8,281). The inputs here are made by
repeating the real records of ../shared/finqa with new ids, so the figures are for real
FinQA text at FinQA's size, not for the real dataset. Each run is a fresh subprocess (the
command the container runs); peak memory is that process's maximum resident set size.
The ten-times input has 62,510 training records, more than Nova takes (20,000), so that run
samples 20,000 of them after converting all.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FINQA_SIZES = {"train": 6251, "dev": 883, "test": 1147}
SOURCES = {"train": "train_100.json", "dev": "dev_200.json", "test": "test_100.json"}


def make_input(shared: Path, folder: Path, scale: int) -> int:
    folder.mkdir(parents=True)
    total = 0
    for split, size in FINQA_SIZES.items():
        records = json.loads((shared / SOURCES[split]).read_text())
        count = size * scale
        repeated = [{**records[i % len(records)], "id": f"{records[i % len(records)]['id']}#copy{i}"}
                    for i in range(count)]
        (folder / f"{split}.json").write_text(json.dumps(repeated))
        total += count
    return total


def run(input_dir: Path, output_dir: Path, *extra: str) -> tuple[float, int]:
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "steps.prepare", "--input-dir", str(input_dir),
                                "--output-dir", str(output_dir), *extra], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"prepare failed: {process.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss * 1024


def json_parse_time(folder: Path) -> float:
    """The floor under any standard-library reader: parsing the input files, nothing else,
    with the cycle collector paused as the step pauses it."""
    gc.disable()
    try:
        started = time.perf_counter()
        for path in sorted(folder.iterdir()):
            with path.open(encoding="utf-8") as handle:
                json.load(handle)
        return time.perf_counter() - started
    finally:
        gc.enable()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "finqa")
    parser.add_argument("--runs", type=int, default=5, help="runs per input; the median is printed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        baseline_time, baseline_memory = run(ROOT / "data" / "finqa_sample", work / "out0")
        print(f"startup (40-record sample): {baseline_time:.2f} s, peak memory {baseline_memory / 2**20:.0f} MiB")
        for scale, extra in ((1, ()), (10, ("--max-train-records", "20000"))):
            records = make_input(args.shared, work / f"in{scale}", scale)
            size = sum(p.stat().st_size for p in (work / f"in{scale}").iterdir())
            runs = [run(work / f"in{scale}", work / f"out{scale}", *extra) for _ in range(args.runs)]
            elapsed = statistics.median(seconds for seconds, _ in runs)
            memory = max(peak for _, peak in runs)
            parse = json_parse_time(work / f"in{scale}")
            print(f"{records:>6} records ({size / 2**20:.0f} MiB of JSON, x{scale}): {elapsed:.2f} s "
                  f"(median of {args.runs}; {min(s for s, _ in runs):.2f}-{max(s for s, _ in runs):.2f} s), "
                  f"{records / elapsed:,.0f} records/s, peak memory {memory / 2**20:.0f} MiB "
                  f"({memory / size:.1f} x the input); json.load of the input alone: {parse:.2f} s")


if __name__ == "__main__":
    main()
