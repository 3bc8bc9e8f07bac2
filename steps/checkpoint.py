"""Find the fine-tuned checkpoint in a Nova training job's output and render its evaluation recipe.

    python -m steps.checkpoint --training-output out/training --output-dir out/checkpoint --account 111122223333

Every flag, with its default, is in `python -m steps.checkpoint --help`.

A Nova training job keeps the trained weights in a service-managed (escrow) bucket and
writes their path into `manifest.json`, key `checkpoint_s3_bucket`, inside the job's
`output/output.tar.gz`. The training output folder may hold that archive (or a
`model.tar.gz`) or the manifest unpacked; all are searched. The path must be in the
account's escrow bucket, or in the bucket named with --checkpoint-bucket (steps/escrow.py):
a manifest naming any other bucket fails the step, before the evaluation job could read it.

Writes, under the output directory:
- recipe/recipe.yaml: the bring-your-own-dataset evaluation recipe of the training recipe's
  model, with run.model_name_or_path set to the checkpoint;
- checkpoint/checkpoint.json: {"checkpoint_s3_uri": ..., "checkpoint_s3_prefix": ..., "manifest": ...,
  "manifest_source": ...} for the model registration; the prefix is the path with the trailing
  slash that SageMaker's S3Prefix model data requires.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from steps.archives import ArchiveError, members_named
from steps.catalog import DEFAULT_RECIPE, RecipeError
from steps.escrow import checkpoint_location_problem
from steps.recipes import (
    DEFAULT_MAX_NEW_TOKENS,
    REASONING_MAX_NEW_TOKENS,
    REASONING_OFF,
    evaluation_recipe,
    write_recipe,
)

DEFAULT_TRAINING_OUTPUT = "/opt/ml/processing/input/training"
DEFAULT_OUTPUT_DIR = "/opt/ml/processing/output"
MANIFEST = "manifest.json"
MANIFEST_CHECKPOINT_KEY = "checkpoint_s3_bucket"
CHECKPOINT_FILE = Path("checkpoint") / "checkpoint.json"
ARCHIVES = ("output.tar.gz", "model.tar.gz")
MAX_MANIFEST_BYTES = 1 << 20


class CheckpointError(Exception):
    """The training output holds no usable checkpoint path; the message says where it looked."""


def read_manifest(training_output: Path) -> tuple[dict[str, Any], str]:
    """The first manifest.json found (unpacked, then inside output.tar.gz / model.tar.gz), and where."""
    if not training_output.exists():
        raise CheckpointError(f"--training-output {training_output}: no such file or folder")
    if training_output.is_file():
        candidates = [training_output]
    else:
        files = sorted(p for p in training_output.rglob("*") if p.is_file())
        candidates = [p for p in files if p.name == MANIFEST]
        candidates += [p for archive in ARCHIVES for p in files if p.name == archive]
    looked = []
    for path in candidates:
        if path.name == MANIFEST:
            return _parse_manifest(path.read_bytes(), str(path)), str(path)
        looked.append(path.name)
        found = _manifest_in_archive(path)
        if found is not None:
            member, data = found
            source = f"{path}!{member}"
            return _parse_manifest(data, source), source
    where = ", ".join(looked) if looked else "no manifest.json, output.tar.gz or model.tar.gz"
    raise CheckpointError(
        f"--training-output {training_output}: no {MANIFEST} found (searched: {where}); point it at the "
        "training job's output folder (s3://.../<training job>/output/)")


def _manifest_in_archive(path: Path) -> tuple[str, bytes] | None:
    try:
        found = members_named(path, MANIFEST, MAX_MANIFEST_BYTES)
    except ArchiveError as error:
        raise CheckpointError(str(error)) from None
    return found[0] if found else None


def _parse_manifest(data: bytes, source: str) -> dict[str, Any]:
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{source}: not JSON ({error})") from None
    if not isinstance(manifest, dict):
        raise CheckpointError(f"{source}: a JSON object was expected, found {type(manifest).__name__}")
    return manifest


def checkpoint_path(manifest: dict[str, Any], source: str, account: str, checkpoint_bucket: str = "") -> str:
    value = manifest.get(MANIFEST_CHECKPOINT_KEY)
    if not isinstance(value, str) or not value.startswith("s3://") or len(value) <= len("s3://"):
        keys = ", ".join(sorted(manifest)) or "none"
        raise CheckpointError(
            f"{source}: {MANIFEST_CHECKPOINT_KEY!r} is {value!r}, not an s3:// path (keys present: {keys}); "
            "the training job did not record a checkpoint: check that it finished and that it is a Nova job")
    problem = checkpoint_location_problem(value, account, checkpoint_bucket)
    if problem:
        raise CheckpointError(f"{source}: {problem}")
    return value


def render(training_output: Path, output_dir: Path, max_new_tokens: int | None = None,
           recipe_id: str = DEFAULT_RECIPE, reasoning_effort: str | None = None, *, account: str,
           checkpoint_bucket: str = "") -> dict[str, Any]:
    """`account`: the pipeline's 12-digit account, whose escrow bucket the checkpoint must be in;
    `checkpoint_bucket`: the bucket named at upsert instead."""
    manifest, source = read_manifest(training_output)
    checkpoint = checkpoint_path(manifest, source, account, checkpoint_bucket)
    write_recipe(evaluation_recipe(recipe_id, checkpoint, max_new_tokens=max_new_tokens,
                                   reasoning_effort=reasoning_effort), output_dir)
    summary = {"checkpoint_s3_uri": checkpoint, "checkpoint_s3_prefix": checkpoint.rstrip("/") + "/",
               "manifest": manifest, "manifest_source": source}
    target = output_dir / CHECKPOINT_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m steps.checkpoint", description=__doc__.split("\n")[0])
    parser.add_argument("--training-output", type=Path, default=Path(DEFAULT_TRAINING_OUTPUT),
                        help="the training job's output folder or archive (default: %(default)s)")
    parser.add_argument("--output-dir", type=Path, default=Path(DEFAULT_OUTPUT_DIR),
                        help="folder to write recipe/ and checkpoint/ into (default: %(default)s)")
    parser.add_argument("--recipe", default=DEFAULT_RECIPE,
                        help="the training recipe's id; its model's evaluation recipe is rendered "
                             "(default: %(default)s)")
    parser.add_argument("--account", required=True,
                        help="the pipeline's 12-digit AWS account: the checkpoint must be in its escrow bucket "
                             "(customer-escrow-<account>-...)")
    parser.add_argument("--checkpoint-bucket", default="",
                        help="the one bucket the checkpoint may be in instead (the upsert's --checkpoint-bucket)")
    parser.add_argument("--max-new-tokens", type=int, default=None,
                        help=f"the evaluation recipe's inference.max_new_tokens (default: {DEFAULT_MAX_NEW_TOKENS}, "
                             f"{REASONING_MAX_NEW_TOKENS} when the model reasons)")
    parser.add_argument("--reasoning-effort", default=None,
                        help=f"the reasoning mode the model was trained in (an RFT recipe's ReasoningEffort: high, "
                             f"low or {REASONING_OFF}); it is evaluated in the same (default: the recipe's)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        summary = render(args.training_output, args.output_dir, args.max_new_tokens, args.recipe,
                         args.reasoning_effort, account=args.account, checkpoint_bucket=args.checkpoint_bucket)
    except (CheckpointError, RecipeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"checkpoint {summary['checkpoint_s3_uri']} (from {summary['manifest_source']}); "
          f"evaluation recipe written to {args.output_dir / 'recipe' / 'recipe.yaml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
