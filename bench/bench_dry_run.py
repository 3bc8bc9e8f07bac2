"""Wall time of `python -m pipeline.upsert --dry-run` beside the time of importing the SDK alone.

    python bench/bench_dry_run.py [--runs N] [--serverless]

Both are fresh processes, as in CI: the import run imports exactly the SageMaker SDK modules
the build uses, so the difference is what building, checking and writing the definition
cost. Target: the dry run under 1.5 times the import.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMPORT_SDK = "import sagemaker.mlops.workflow, sagemaker.serve, sagemaker.train"
EXAMPLE_FLAGS = ["--region", "us-east-1", "--role-arn", "arn:aws:iam::111122223333:role/NovaFinQAPipelineRole",
                 "--bucket", "amzn-s3-demo-bucket"]
SERVERLESS_FLAGS = ["--platform", "serverless", "--base-model", "amazon.nova-2-lite-v1", "--technique", "sft",
                    "--training-type", "lora"]


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each, alternating (default: %(default)s)")
    parser.add_argument("--serverless", action="store_true",
                        help="time the committed serverless example (Nova 2 Lite SFT LoRA) instead of the default")
    args = parser.parse_args()
    flags = EXAMPLE_FLAGS + (SERVERLESS_FLAGS if args.serverless else [])
    # A machine without AWS credentials or config, as the README's first command assumes; the
    # metadata service is off for both, as the dry run turns it off for itself.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tempfile.mkdtemp(),
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    with tempfile.TemporaryDirectory() as folder:
        out = str(Path(folder) / "definition.json")
        dry_run = [sys.executable, "-m", "pipeline.upsert", "--dry-run", *flags, "--definition-out", out]
        import_only = [sys.executable, "-c", IMPORT_SDK]
        timed(import_only, env)  # warm the file cache for both
        imports, dry_runs = [], []
        for _ in range(args.runs):
            imports.append(timed(import_only, env))
            dry_runs.append(timed(dry_run, env))
    import_median, dry_median = statistics.median(imports), statistics.median(dry_runs)
    print(f"runs: {args.runs} each, fresh processes, python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(f"import SDK only   median {import_median:.2f} s  (min {min(imports):.2f}, max {max(imports):.2f})")
    print(f"dry run           median {dry_median:.2f} s  (min {min(dry_runs):.2f}, max {max(dry_runs):.2f})")
    print(f"dry run / import  {dry_median / import_median:.2f}  (target < 1.5)")
    print(f"build, checks and write: {dry_median - import_median:.2f} s over the import")
    return 0


if __name__ == "__main__":
    sys.exit(main())
