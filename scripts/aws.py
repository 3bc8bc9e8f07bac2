"""What every operator tool needs to talk to AWS: a session for the resolved settings.

boto3 reads `AWS_ENDPOINT_URL` (and `AWS_ENDPOINT_URL_<SERVICE>`) by itself, so the tools
work unchanged against `moto_server` or any other endpoint the user points them at.
"""
from __future__ import annotations

import logging
import sys

import boto3
from botocore.exceptions import ClientError

from pipeline.settings import Settings


def session_for(settings: Settings) -> boto3.session.Session:
    return boto3.session.Session(region_name=settings.region or None)


def configure_logging(verbose: bool, *own_loggers: str) -> None:
    """A tool's own INFO lines always; the SDK's (where credentials and each endpoint came from)
    only with --verbose, since they are noise on every run."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s",
                        stream=sys.stderr)
    for name in own_loggers:
        logging.getLogger(name).setLevel(logging.INFO)


def error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def found(call, *, missing: tuple[str, ...] = ("ResourceNotFoundException",), **request) -> dict | None:
    """`call(**request)`'s answer, or None where AWS answers that the resource does not exist (the error
    codes `missing`: Bedrock and Lambda say ResourceNotFoundException, SageMaker mostly ValidationException)."""
    try:
        return call(**request)
    except ClientError as error:
        if error_code(error) not in missing:
            raise
    return None


def split_s3_uri(uri: str) -> tuple[str, str]:
    """("bucket", "key/or/prefix") of an s3:// URI; ValueError naming the URI otherwise."""
    if not uri.startswith("s3://") or not uri[len("s3://"):].partition("/")[0]:
        raise ValueError(f"{uri!r} is not an s3://bucket/key URI")
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key
