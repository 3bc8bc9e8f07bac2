"""Download FinQA from the Hugging Face Hub and stage it as split files for the pipeline.

    python -m scripts.stage_finqa [--dataset ibm-research/finqa] [--revision refs/convert/parquet]
        --output-dir DIR [--s3-uri s3://bucket/prefix/finqa/]

`ibm-research/finqa` is a loading script, which `datasets` 4 and later refuse to run; its
parquet conversion (revision `refs/convert/parquet`) is plain data. Pin a commit of that
revision to know exactly what you trained on. The files written here, `train.jsonl`,
`validation.jsonl` and `test.jsonl` in the Hugging Face layout, are what `steps.prepare`
reads; pass the S3 folder as the pipeline's data location.

Without access to the Hub: FinQA's own `train.json`, `dev.json` and `test.json`
(github.com/czyssrs/FinQA, folder `dataset/`) need no staging, `steps.prepare` reads them as
they are; a folder of the parquet files is staged with `--dataset FOLDER --revision ''`.
(Staging FinQA's JSON through `datasets` would not be faithful: its JSON reader changes the
last digit of 23 of the 100 `exe_ans` values of ../shared/finqa's test file, 0.07879 becoming
0.07879000000000001.)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from scripts.aws import split_s3_uri
from steps.finqa.records import load_hf_dataset

SPLITS = ("train", "validation", "test")
OFFLINE_ROUTE = ("FinQA's own train.json, dev.json and test.json (github.com/czyssrs/FinQA, folder dataset/) "
                 "need no staging: steps.prepare reads them as they are, so copy them to the pipeline's "
                 "DataLocation; for the parquet files pass --dataset FOLDER --revision ''")


def stage(dataset: str, revision: str | None, output_dir: Path) -> dict[str, int]:
    """Write one JSONL file per split; return the record count of each."""
    output_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in SPLITS:
        rows = load_hf_dataset(dataset, revision, split)
        partial = output_dir / f".{split}.jsonl.partial"
        with partial.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
        partial.replace(output_dir / f"{split}.jsonl")
        counts[split] = len(rows)
    return counts


def upload(output_dir: Path, s3_uri: str) -> None:
    import boto3

    try:
        bucket, prefix = split_s3_uri(s3_uri)
    except ValueError:
        raise SystemExit(f"error: --s3-uri {s3_uri!r} must be s3://bucket/prefix") from None
    client = boto3.client("s3")
    for split in SPLITS:
        key = f"{prefix.rstrip('/')}/{split}.jsonl".lstrip("/")
        client.upload_file(str(output_dir / f"{split}.jsonl"), bucket, key)
        print(f"uploaded s3://{bucket}/{key}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.stage_finqa", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ibm-research/finqa",
                        help="Hugging Face dataset id, or a local folder of parquet / JSON files "
                             "(default: %(default)s)")
    parser.add_argument("--revision", default="refs/convert/parquet",
                        help="dataset revision; empty for a local folder (default: %(default)s)")
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--s3-uri", help="also upload the split files to this S3 folder")
    args = parser.parse_args(argv)
    try:
        counts = stage(args.dataset, args.revision or None, args.output_dir)
    except ConnectionError as error:  # what `datasets` raises when the Hub cannot be reached
        print(f"error: --dataset {args.dataset}: the Hugging Face Hub cannot be reached ({error}); "
              f"offline, {OFFLINE_ROUTE}", file=sys.stderr)
        return 1
    print(", ".join(f"{split}: {count} records" for split, count in counts.items()) + f" in {args.output_dir}")
    if args.s3_uri:
        upload(args.output_dir, args.s3_uri)
    return 0


if __name__ == "__main__":
    sys.exit(main())
