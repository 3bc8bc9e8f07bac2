"""Training from an approved model package's checkpoint instead of the base model (e.g. SFT -> DPO).

AWS's iterative training for Nova ("Iterative training", Amazon Nova user guide,
https://docs.aws.amazon.com/nova/latest/userguide/nova-iterative-training.html): a training job's
checkpoint (`checkpoint_s3_bucket` of its manifest, an escrow S3 path) is set as the next
recipe's `run.model_name_or_path`; the Nova 2 guide's summary of the same page
(https://docs.aws.amazon.com/nova/latest/nova2-userguide/smtj-iterative-training.html) asks for
the same model type and training technique throughout. AWS's launcher
(sagemaker-train `sm_recipes/utils.py`, `_get_args_from_nova_recipe`) turns an s3:// model path
into the job's `base_model_location` hyperparameter, in place of `base_model`.

The package is resolved once, at upsert (DescribeModelPackage): it must be Approved, of the
pipeline's model package group, hold the checkpoint this pipeline's registration writes under
`checkpoint_s3_uri`, and be of the recipe's model and LoRA-or-full-rank kind. Its ARN goes onto
the new package's metadata as its lineage.
"""
from __future__ import annotations

from dataclasses import dataclass

from steps import package_metadata as keys
from steps.catalog import RecipeError, TrainingRecipe
from steps.catalog import recipe as catalog_recipe
from steps.escrow import checkpoint_location_problem

CHECKPOINT_KEY = "checkpoint_s3_uri"
"""The metadata key RegisterModel writes the checkpoint under (pipeline/definition.py)."""
SOURCE_KEY = keys.SOURCE_MODEL_PACKAGE_ARN
TECHNIQUE_KEY = keys.TECHNIQUE
TECHNIQUE_SEPARATOR = " then "
# The methods a checkpoint can be trained further with on training jobs: AWS's RFT recipes for
# training jobs are Nova 2's, whose packages this pipeline's Nova 1.0 ones are not.
CONTINUABLE_METHODS = ("sft", "dpo")


class SourceModelError(ValueError):
    """The source model package cannot be trained from; the message says why and what to pass."""


@dataclass(frozen=True)
class SourceModel:
    """An approved package's checkpoint, which training starts from."""
    package_arn: str
    checkpoint: str
    technique: str
    """How the source was trained, e.g. SFT; the new package's technique is this, then the recipe's."""

    def technique_after(self, chosen: TrainingRecipe) -> str:
        # "SFT then DPO": a package's metadata values allow no ">" (botocore's CustomerMetadataMap);
        # scripts/report.py shows it as SFT -> DPO.
        return f"{self.technique}{TECHNIQUE_SEPARATOR}{chosen.method.upper()}"


def describe_source_model(sagemaker, package_arn: str, group: str, chosen: TrainingRecipe, account: str = "",
                          checkpoint_bucket: str = "") -> SourceModel:
    """The checkpoint of `package_arn`, checked against the pipeline's group and recipe, and (given the
    pipeline's `account`) against where Nova checkpoints may come from (steps.escrow)."""
    if chosen.method not in CONTINUABLE_METHODS:
        offered = ", ".join(method.upper() for method in CONTINUABLE_METHODS)
        raise SourceModelError(f"--source-model-package: {chosen.id} is an {chosen.method.upper()} recipe; training "
                               f"from a package's checkpoint is offered for {offered}")
    package = sagemaker.describe_model_package(ModelPackageName=package_arn)
    where = f"--source-model-package {package_arn}"
    status = package.get("ModelApprovalStatus")
    if status != "Approved":
        raise SourceModelError(f"{where}: its approval status is {status}; only an Approved package is trained "
                               "from (approve it in the Model Registry, or pick an approved version)")
    if package.get("ModelPackageGroupName") != group:
        raise SourceModelError(f"{where}: it belongs to the group {package.get('ModelPackageGroupName')!r}, not to "
                               f"--model-package-group {group!r}")
    metadata = package.get("CustomerMetadataProperties", {})
    checkpoint = metadata.get(CHECKPOINT_KEY, "")
    if not checkpoint.startswith("s3://"):
        raise SourceModelError(f"{where}: its metadata has no {CHECKPOINT_KEY} (an s3:// checkpoint); only "
                               "packages this pipeline registered can be trained from")
    problem = checkpoint_location_problem(checkpoint, account, checkpoint_bucket) if account else None
    if problem:
        raise SourceModelError(f"{where}: its {CHECKPOINT_KEY} {problem}")
    if metadata.get("base_model") != chosen.base_model:
        raise SourceModelError(f"{where}: it is a fine-tuned {metadata.get('base_model')!r}, and {chosen.id} trains "
                               f"{chosen.base_model!r}: iterative training keeps the model type")
    source_recipe = metadata.get("recipe", "")
    try:
        source = catalog_recipe(source_recipe)
    except RecipeError:
        raise SourceModelError(f"{where}: its metadata names the recipe {source_recipe!r}, which this pipeline does "
                               "not know, so its LoRA or full-rank kind cannot be checked") from None
    if source.peft != chosen.peft:
        raise SourceModelError(f"{where}: it was trained {source.peft} ({source.id}) and {chosen.id} is {chosen.peft}: "
                               "AWS's iterative training keeps the training technique; pick a "
                               f"{source.peft} recipe")
    technique = metadata.get(TECHNIQUE_KEY) or source.method.upper()
    return SourceModel(package_arn=package_arn, checkpoint=checkpoint, technique=technique)
