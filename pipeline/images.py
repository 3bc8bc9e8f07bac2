"""Container images of the pipeline's jobs, per region, resolved without any AWS call.

Nova 1.0 training and evaluation images are published by AWS in a few regions only, from
one account per region (AWS's Nova customisation docs and the amazon-nova-samples
evaluator). `SM-TJ-Eval-latest` is the evaluation image of Nova 1.0 models; the `-V2-`
tags serve Nova 2.0. The processing image is SageMaker's scikit-learn image, which brings
the Python 3 that the standard-library-only `steps/` code needs.
"""
from __future__ import annotations

from dataclasses import dataclass

NOVA_ACCOUNTS = {
    "us-east-1": "708977205387",
    "us-west-2": "176779409107",
    "ap-northeast-1": "878185805882",
}
SKLEARN_VERSION = "1.2-1"


class UnsupportedRegionError(ValueError):
    """Nova fine-tuning images are not published in the region."""


@dataclass(frozen=True)
class Images:
    processing: str
    training: str
    evaluation: str
    inference: str


def nova_account(region: str) -> str:
    """The account publishing Nova images in the region; raises UnsupportedRegionError, without the SDK."""
    account = NOVA_ACCOUNTS.get(region)
    if account is None:
        raise UnsupportedRegionError(
            f"--region {region}: Nova Lite fine-tuning runs in {', '.join(sorted(NOVA_ACCOUNTS))} only")
    return account


def images_for(region: str) -> Images:
    account = nova_account(region)
    from sagemaker.core import image_uris

    registry = f"{account}.dkr.ecr.{region}.amazonaws.com"
    return Images(
        processing=image_uris.retrieve("sklearn", region=region, version=SKLEARN_VERSION,
                                       instance_type="ml.m5.xlarge"),
        training=f"{registry}/nova-fine-tune-repo:SM-TJ-SFT-latest",
        evaluation=f"{registry}/nova-evaluation-repo:SM-TJ-Eval-latest",
        inference=f"{registry}/nova-inference-repo:SM-Inference-latest",
    )
