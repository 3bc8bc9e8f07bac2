"""Where a Nova checkpoint may come from: this account's escrow bucket, or the one bucket named at upsert.

A Nova training job keeps the trained weights in a service-managed (escrow) bucket named for the
account and platform, `customer-escrow-<account>-smtj-<id>` for training jobs and
`customer-escrow-<account>-hp-<id>` for HyperPod (AWS's Nova Forge SDK, aws/nova-forge-sdk,
`detect_platform_from_path`; its IAM setup grants reads on `customer-escrow-<account>*`), and
writes that path into `manifest.json`. Any other path in a manifest, or in a model package's
`checkpoint_s3_uri`, is not a checkpoint this account's training made, so the checkpoint step,
the approval hook and the Bedrock import refuse it. A team that keeps checkpoints in a bucket of
its own names it at upsert (--checkpoint-bucket), and then only that bucket is accepted: the
Bedrock import role may read that one and no other.

Standard library only: it runs in the processing container and in the approval hook's Lambda.
"""
from __future__ import annotations

import re

ESCROW_BUCKET_PREFIX = "customer-escrow-"
_ACCOUNT = re.compile(r"\d{12}")


def checkpoint_bucket(uri: str) -> str:
    """The bucket of an s3:// path ('' when it is not one)."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        return ""
    return uri[len("s3://"):].split("/", 1)[0]


def checkpoint_location_problem(uri: str, account: str, named_bucket: str = "") -> str | None:
    """Why `uri` is not a checkpoint of this account (None when it is one).

    `account` is the 12-digit account the pipeline runs in; `named_bucket` the bucket named at
    upsert, which then replaces the escrow pattern."""
    if not _ACCOUNT.fullmatch(account or ""):
        return f"the account to check checkpoints against is {account!r}, not a 12-digit AWS account id"
    bucket = checkpoint_bucket(uri)
    where = (f"the bucket named at upsert, {named_bucket}" if named_bucket
             else f"this account's escrow bucket ({ESCROW_BUCKET_PREFIX}{account}-...)")
    fix = "if the bucket it is in is yours, upsert again with --checkpoint-bucket naming it"
    if not bucket or len(uri) <= len(f"s3://{bucket}/"):
        return f"the checkpoint path {uri!r} is not an s3:// path to a folder in {where}"
    if named_bucket:
        allowed = bucket == named_bucket
    else:
        allowed = bucket.startswith(f"{ESCROW_BUCKET_PREFIX}{account}-")
    if allowed:
        return None
    return (f"the checkpoint {uri} is not in {where}, where Nova training jobs of this pipeline keep their "
            f"checkpoints: a checkpoint anywhere else was not trained here and is not imported or evaluated; "
            f"{fix}")
