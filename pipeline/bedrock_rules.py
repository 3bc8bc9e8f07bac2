"""Where AWS serves a fine-tuned Nova model: the facts AWS's recipe catalog does not hold.

One dated table, with the page each fact comes from, read by `scripts.import_to_bedrock` (it
refuses a deployment AWS does not offer before any Bedrock call), by `pipeline.upsert` (a
warning at build time) and by the pipeline's registration step (the model package's inference
instance types). When AWS adds a region, change the table and `CHECKED` together.

Keys are the recipe's `run.model_type` (`steps.catalog.TrainingRecipe.model_type`), the model
id Bedrock's pages use for Provisioned Throughput.
"""
from __future__ import annotations

from steps.catalog import TRAINING_RECIPES, TrainingRecipe

CHECKED = "2026-12-02"

ON_DEMAND_PAGE = "https://docs.aws.amazon.com/bedrock/latest/userguide/deploy-custom-model-on-demand.html"
PROVISIONED_PAGE = "https://docs.aws.amazon.com/bedrock/latest/userguide/prov-thru-supported.html"
SAGEMAKER_INFERENCE_PAGE = "https://docs.aws.amazon.com/nova/latest/userguide/nova-model-sagemaker-inference.html"
FULL_RANK_PAGE = "https://docs.aws.amazon.com/nova/latest/userguide/custom-fine-tune-odi.html"

ON_DEMAND_REGIONS: dict[str, tuple[str, ...]] = {
    # "You can deploy a custom model for on-demand inference in the following Regions: US East
    # (N. Virginia), US West (Oregon)" for the base models Nova Lite, Nova Micro and Nova Pro.
    # Nova 2 Lite is not among them. (An earlier version of the page named US East only.)
    "amazon.nova-lite-v1:0:300k": ("us-east-1", "us-west-2"),
    "amazon.nova-micro-v1:0:128k": ("us-east-1", "us-west-2"),
    "amazon.nova-pro-v1:0:300k": ("us-east-1", "us-west-2"),
}

PROVISIONED_REGIONS: dict[str, tuple[str, ...]] = {
    # "Supported Region and models for Provisioned Throughput", single-region support.
    "amazon.nova-lite-v1:0:300k": ("us-east-1",),
    "amazon.nova-micro-v1:0:128k": ("us-east-1",),
    "amazon.nova-pro-v1:0:300k": ("us-east-1",),
    "amazon.nova-2-lite-v1:0:256k": ("us-east-1",),
}

SAGEMAKER_INFERENCE_INSTANCE_TYPES: dict[str, tuple[str, ...]] = {
    # The page's "Supported models and instances", as AWS's Nova Forge SDK encodes it
    # (aws/nova-forge-sdk src/amzn_nova_forge/core/constants.py SUPPORTED_SMI_CONFIGS, commit a4d5b3d).
    # The same page: only full-rank and LoRA-merged checkpoints run there; unmerged LoRA ones are
    # served by Bedrock.
    "amazon.nova-micro-v1:0:128k": ("ml.g5.12xlarge", "ml.g5.24xlarge", "ml.g6e.xlarge", "ml.g6e.2xlarge",
                                    "ml.g6e.4xlarge", "ml.g6.12xlarge", "ml.g6.24xlarge", "ml.g6.48xlarge",
                                    "ml.p5.48xlarge"),
    "amazon.nova-lite-v1:0:300k": ("ml.g6.12xlarge", "ml.g6.24xlarge", "ml.g6.48xlarge", "ml.p5.48xlarge"),
    "amazon.nova-pro-v1:0:300k": ("ml.p5.48xlarge",),
    "amazon.nova-2-lite-v1:0:256k": ("ml.g6.48xlarge", "ml.p5.48xlarge"),
}

PROVISIONED_FLAG = "--provisioned-model-units N"


def _regions(regions: tuple[str, ...]) -> str:
    return ", ".join(regions) if regions else "no region"


def _provisioned_offer(recipe: TrainingRecipe, region: str) -> str:
    regions = PROVISIONED_REGIONS.get(recipe.model_type, ())
    if region in regions:
        return f", or buy Provisioned Throughput for it ({PROVISIONED_FLAG}; billed by the hour until deleted)"
    return (f"; Provisioned Throughput for {recipe.model_name} is sold in {_regions(regions)} only "
            f"({PROVISIONED_PAGE}), so Bedrock cannot serve this model from {region} at all")


def serving(recipe: TrainingRecipe) -> str:
    """Where Bedrock serves this recipe's model, in a few words: on demand, Provisioned Throughput, by region."""
    on_demand = ON_DEMAND_REGIONS.get(recipe.model_type, ()) if recipe.bedrock_on_demand else ()
    provisioned = PROVISIONED_REGIONS.get(recipe.model_type, ())
    ways = [f"on demand in {', '.join(on_demand)}"] if on_demand else []
    ways += [f"Provisioned Throughput in {', '.join(provisioned)}"] if provisioned else []
    return "; ".join(ways) or "not served"


def on_demand_problem(recipe: TrainingRecipe, region: str) -> str | None:
    """Why Bedrock will not deploy this recipe's model on demand in the region, with the way out; None if it will."""
    if not recipe.bedrock_on_demand:
        return (f"recipe {recipe.id} trains a full-rank {recipe.model_name} model, and Bedrock serves "
                f"full-rank Nova models only with Provisioned Throughput, never on demand ({FULL_RANK_PAGE}): "
                f"train with a LoRA recipe{_provisioned_offer(recipe, region)}")
    regions = ON_DEMAND_REGIONS.get(recipe.model_type, ())
    if not regions:
        served = sorted({r.model_name for r in TRAINING_RECIPES.values() if r.model_type in ON_DEMAND_REGIONS})
        return (f"Bedrock deploys no custom {recipe.model_name} model on demand (its page names "
                f"{', '.join(served)} only: {ON_DEMAND_PAGE}, read {CHECKED}): "
                f"train one of those{_provisioned_offer(recipe, region)}")
    if region not in regions:
        return (f"Bedrock deploys custom {recipe.model_name} models on demand in {_regions(regions)} only "
                f"({ON_DEMAND_PAGE}, read {CHECKED}), not in --region {region}: run the pipeline in "
                f"{' or '.join(regions)}{_provisioned_offer(recipe, region)}")
    return None


def provisioned_problem(recipe: TrainingRecipe, region: str) -> str | None:
    """Why Bedrock will not sell Provisioned Throughput for this recipe's model in the region; None if it will."""
    regions = PROVISIONED_REGIONS.get(recipe.model_type, ())
    if region in regions:
        return None
    return (f"Bedrock sells Provisioned Throughput for {recipe.model_name} in {_regions(regions)} only "
            f"({PROVISIONED_PAGE}, read {CHECKED}), not in --region {region}")


def deployment_problem(recipe: TrainingRecipe, region: str, model_units: int | None) -> str | None:
    """Why the approval hook could not serve this recipe's model in the region the way the settings
    ask (on demand, or Provisioned Throughput with model units); None if it can."""
    return provisioned_problem(recipe, region) if model_units else on_demand_problem(recipe, region)


def _offered(table: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    return tuple(sorted({region for regions in table.values() for region in regions}))


def region_problem(region: str, provisioned: bool) -> str | None:
    """Why no Nova model at all can be served the asked way in the region: known before any AWS call."""
    on_demand, sold = _offered(ON_DEMAND_REGIONS), _offered(PROVISIONED_REGIONS)
    if provisioned:
        if region in sold:
            return None
        return (f"Bedrock sells Provisioned Throughput for Nova models in {_regions(sold)} only "
                f"({PROVISIONED_PAGE}, read {CHECKED}), not in --region {region}")
    if region in on_demand:
        return None
    fix = (f"buy Provisioned Throughput with {PROVISIONED_FLAG}" if region in sold
           else f"run the pipeline in {' or '.join(on_demand)}")
    return (f"Bedrock deploys custom Nova models on demand in {_regions(on_demand)} only "
            f"({ON_DEMAND_PAGE}, read {CHECKED}), not in --region {region}: {fix}")


def sagemaker_inference_instance_types(recipe: TrainingRecipe) -> tuple[str, ...]:
    """The instance types SageMaker's Nova inference runs this recipe's model on."""
    types = SAGEMAKER_INFERENCE_INSTANCE_TYPES.get(recipe.model_type)
    if not types:
        raise ValueError(f"{SAGEMAKER_INFERENCE_PAGE} names no instance type for {recipe.model_name} "
                         f"({recipe.model_type}); add it to pipeline/bedrock_rules.py from that page")
    return types
