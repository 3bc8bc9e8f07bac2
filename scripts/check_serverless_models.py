"""Check the serverless model table against what SageMaker Public Hub lists in a region (AWS calls).

    python -m scripts.check_serverless_models --region us-east-1

For each technique, AWS's own `list_supported_models` (SFTTrainer, DPOTrainer, RLVRTrainer: the hub
models whose recipe keywords name a FineTuning recipe of the technique, ListHubContents) against
`steps/serverless_models.py` for that region. Prints each disagreement and exits 1 when there is
one: a model the table offers that the hub does not (the pipeline would fail at CreateTrainingJob),
or a hub model of a known family the table does not offer (a combination refused needlessly).
Training types are not in the listing: the hub tags them in keywords this check does not read.
"""
from __future__ import annotations

import argparse
import sys

from steps.serverless_models import HUB_MODELS, TECHNIQUES


def hub_listing(session) -> dict[str, set[str]]:
    """Hub content names per technique, as AWS's trainers list them."""
    from sagemaker.train import DPOTrainer, RLVRTrainer, SFTTrainer

    trainers = {"sft": SFTTrainer, "dpo": DPOTrainer, "rlvr": RLVRTrainer}
    return {technique: set(trainers[technique].list_supported_models(session=session)) for technique in TECHNIQUES}


def disagreements(listing: dict[str, set[str]], region: str) -> list[str]:
    known = {model.hub_content_name: model for model in HUB_MODELS}
    problems = []
    for technique in TECHNIQUES:
        listed = listing.get(technique, set())
        for model in HUB_MODELS:
            offered = region in model.regions and any(technique in t for t in model.techniques.values())
            if offered and model.hub_content_name not in listed:
                problems.append(f"{model.model_id} {technique.upper()}: in the table for {region}, "
                                "not listed by the hub")
            elif not offered and model.hub_content_name in listed:
                problems.append(f"{model.model_id} {technique.upper()}: listed by the hub in {region}, "
                                "refused by the table")
        families = {model.family for model in HUB_MODELS}
        for name in sorted(listed - set(known)):
            if any(family in name for family in families):
                problems.append(f"{name} {technique.upper()}: listed by the hub in {region}, not in the table")
    return problems


def main(argv: list[str] | None = None, session=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.check_serverless_models",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--region", required=True)
    args = parser.parse_args(argv)
    if session is None:
        import boto3

        session = boto3.Session(region_name=args.region)
    problems = disagreements(hub_listing(session), args.region)
    for problem in problems:
        print(problem)
    print(f"{len(problems)} disagreement(s) between steps/serverless_models.py and SageMaker Public Hub in "
          f"{args.region}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
