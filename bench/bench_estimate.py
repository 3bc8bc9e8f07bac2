"""The preparation step's cost estimate for 100, 1,000 and 6,251 training records, beside the workshop's figures.

    python bench/bench_estimate.py [--shared DIR] [--region REGION]

Each input repeats the real training records of ../shared/finqa with new ids (dev and test
as they are), so the token counts are those of real FinQA text. The estimate is what
`python -m steps.prepare` writes into report/data_report.json, for the default recipe
(Nova Lite 1.0 LoRA SFT, 2 epochs) on each instance type it runs on, and for the P5 LoRA recipe.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = (100, 1_000, 6_251)
WORKSHOP = {100: "about 32.5 min", 6_251: "more than 6 h"}
RUNS = (("nova_lite_1_0_g5_g6_12x_gpu_lora_sft", "ml.g5.12xlarge"),
        ("nova_lite_1_0_g5_g6_12x_gpu_lora_sft", "ml.g6.12xlarge"),
        ("nova_lite_1_0_p5_p4d_gpu_lora_sft", "ml.p5.48xlarge"))


def make_input(shared: Path, folder: Path, train_records: int) -> None:
    folder.mkdir(parents=True)
    records = json.loads((shared / "train_100.json").read_text())
    copies = [{**records[i % len(records)], "id": f"{records[i % len(records)]['id']}#copy{i}"}
              for i in range(train_records)]
    (folder / "train.json").write_text(json.dumps(copies))
    for name in ("dev_200.json", "test_100.json"):
        (folder / name).write_text((shared / name).read_text())


def estimate(input_dir: Path, output_dir: Path, region: str, recipe: str, instance_type: str) -> dict:
    arguments = ["--input-dir", str(input_dir), "--output-dir", str(output_dir), "--region", region,
                 "--training-instance-type", instance_type]
    if recipe != "nova_lite_1_0_g5_g6_12x_gpu_lora_sft":
        arguments += ["--recipe", recipe]
    result = subprocess.run([sys.executable, "-m", "steps.prepare", *arguments], cwd=ROOT,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"prepare failed: {result.stderr.strip().splitlines()[-1]}")
    return json.loads((output_dir / "report" / "data_report.json").read_text())["estimate"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "finqa")
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args()
    print("| training records | workshop (1 x ml.g5.12xlarge) | recipe | instances | tokens read "
          "| estimated training | training cost | evaluation (2 jobs, 100 test records) |")
    print("| ---: | --- | --- | --- | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        for size in SIZES:
            make_input(args.shared, work / f"in{size}", size)
            for recipe, instance_type in RUNS:
                try:
                    figures = estimate(work / f"in{size}", work / f"out{size}-{instance_type}", args.region,
                                       recipe, instance_type)
                except SystemExit as error:
                    print(f"| {size:,} | | {recipe} | {instance_type} | {error} |")
                    continue
                seconds = figures["training_seconds"]
                cost, evaluation_cost = figures["training_cost_usd"], figures["evaluation_cost_usd"]
                workshop = WORKSHOP.get(size, "") if instance_type == "ml.g5.12xlarge" and "g5_g6_12x" in recipe else ""
                print(f"| {size:,} | {workshop} | {recipe} | {figures['instance_count']} x {instance_type} "
                      f"| {figures['training_tokens_processed']:,} | {seconds / 60:,.1f} min ({seconds / 3600:.2f} h) "
                      f"| {'unknown' if cost is None else f'${cost:,.2f}'} "
                      f"| {'unknown' if evaluation_cost is None else f'${evaluation_cost:.2f}'} |")


if __name__ == "__main__":
    main()
