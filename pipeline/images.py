"""Container images of the pipeline's jobs, per region and recipe, resolved without any AWS call.

The Nova training, evaluation and inference images come from AWS's recipe catalog
(`steps.catalog`); the processing image is SageMaker's scikit-learn image, which brings the
Python 3 that the standard-library-only `steps/` code needs.
"""
from __future__ import annotations

from dataclasses import dataclass

from steps.catalog import INFERENCE_IMAGES, TrainingRecipe, UnsupportedRegionError

SKLEARN_VERSION = "1.2-1"
PROCESSING_INSTANCE_TYPE = "ml.m5.xlarge"

__all__ = ["Images", "UnsupportedRegionError", "check_region", "images_for"]


@dataclass(frozen=True)
class Images:
    processing: str
    training: str
    evaluation: str
    inference: str


def check_region(region: str, recipe: TrainingRecipe) -> None:
    """Raises UnsupportedRegionError where AWS publishes no image the pipeline needs; no SDK import."""
    recipe.image(region)
    recipe.evaluation.image(region)
    if region not in INFERENCE_IMAGES:
        raise UnsupportedRegionError(
            f"--region {region}: AWS publishes the Nova inference image in {', '.join(sorted(INFERENCE_IMAGES))} only")


def images_for(region: str, recipe: TrainingRecipe) -> Images:
    check_region(region, recipe)
    from sagemaker.core import image_uris

    return Images(
        processing=image_uris.retrieve("sklearn", region=region, version=SKLEARN_VERSION,
                                       instance_type=PROCESSING_INSTANCE_TYPE),
        training=recipe.image(region),
        evaluation=recipe.evaluation.image(region),
        inference=INFERENCE_IMAGES[region],
    )
