"""The pipeline's parameters, as Studio's form shows them: declared here, and only here.

What a recipe allows decides the form: `TrainingInstanceType` and `EvaluationInstanceType`
offer exactly the recipe's instance types (a drop-down), `LoraAlpha` exists for LoRA recipes
only, `Replicas` where the recipe can run on more than one instance count, and every default
is the recipe's own (from `steps.catalog`). Reinforcement fine-tuning (RFT) recipes take
`MaxSteps`, `NumberGeneration` and `ReasoningEffort` instead of `Epochs`; DPO recipes add `Beta`. Each recipe value
reaches the preparation step, which checks it against AWS's allowed values before any GPU
starts, as it checks its cost estimate against `MaxTrainingCost`.
"""
from __future__ import annotations

from dataclasses import dataclass

from steps.catalog import TrainingRecipe
from steps.recipes import DEFAULT_EPOCHS, REASONING_OFF

DEFAULT_ACCURACY_THRESHOLD = 0.5
APPROVAL_STATUSES = ["PendingManualApproval", "Approved"]


@dataclass(frozen=True)
class Parameters:
    data_location: object
    train_records: object
    eval_records: object
    epochs: object | None
    learning_rate: object
    lora_alpha: object | None
    max_length: object
    global_batch_size: object
    replicas: object | None
    beta: object | None
    max_steps: object | None
    number_generation: object | None
    reasoning_effort: object | None
    training_instance_type: object
    evaluation_instance_type: object
    max_training_cost: object
    accuracy_threshold: object
    approval_status: object

    @property
    def all(self) -> list:
        return [value for value in vars(self).values() if value is not None]

    def recipe_flags(self) -> list[tuple[str, object]]:
        """The preparation step's recipe flags (steps.recipes.add_recipe_arguments), with their values as text."""
        flags = (("--epochs", self.epochs), ("--learning-rate", self.learning_rate), ("--lora-alpha", self.lora_alpha),
                 ("--max-length", self.max_length), ("--global-batch-size", self.global_batch_size),
                 ("--replicas", self.replicas), ("--beta", self.beta), ("--max-steps", self.max_steps),
                 ("--number-generation", self.number_generation), ("--reasoning-effort", self.reasoning_effort))
        return [(flag, value.to_string()) for flag, value in flags if value is not None]

    def instance_count(self, recipe: TrainingRecipe):
        """The training job's instance count: the recipe's replicas (a parameter where it may vary)."""
        if self.replicas is not None:
            return self.replicas
        replicas = recipe.fields.get("replicas")
        # AWS's RFT recipes for training jobs state no other replicas than their own
        return replicas.default if replicas is not None else recipe.template["run"].get("replicas", 1)


def declare(recipe: TrainingRecipe, default_data_location: str) -> Parameters:
    from sagemaker.core.workflow import ParameterFloat, ParameterInteger, ParameterString

    field = recipe.fields
    replicas = field.get("replicas")
    rft = recipe.method == "rft"
    reasoning = field.get("reasoning_effort")
    return Parameters(
        data_location=ParameterString("DataLocation", default_value=default_data_location),
        train_records=ParameterString("TrainingRecords", default_value="all"),
        eval_records=ParameterString("EvaluationRecords", default_value="all"),
        epochs=None if rft else ParameterInteger(
            "Epochs", default_value=field["max_epochs"].default if "max_epochs" in field else DEFAULT_EPOCHS),
        learning_rate=ParameterFloat("LearningRate", default_value=float(field["learning_rate"].default)),
        lora_alpha=ParameterInteger("LoraAlpha", default_value=field["lora_alpha"].default)
        if "lora_alpha" in field else None,
        max_length=ParameterInteger("MaxLength", default_value=field["max_length"].default),
        global_batch_size=ParameterInteger("GlobalBatchSize", default_value=field["global_batch_size"].default),
        replicas=ParameterInteger("Replicas", default_value=replicas.default)
        if replicas is not None and replicas.enum is not None and len(replicas.enum) > 1 else None,
        # DPO recipes: training_config.model.dpo_cfg.beta, which AWS's schema calls adam_beta
        beta=ParameterFloat("Beta", default_value=float(field["adam_beta"].default)) if "adam_beta" in field else None,
        max_steps=ParameterInteger("MaxSteps", default_value=field["max_steps"].default) if rft else None,
        number_generation=ParameterInteger("NumberGeneration", default_value=field["number_generation"].default)
        if rft else None,
        reasoning_effort=ParameterString(
            "ReasoningEffort", default_value=_text(reasoning.default), enum_values=[_text(v) for v in reasoning.enum])
        if rft else None,
        training_instance_type=ParameterString("TrainingInstanceType", default_value=recipe.instance_types[0],
                                               enum_values=list(recipe.instance_types)),
        evaluation_instance_type=ParameterString("EvaluationInstanceType",
                                                 default_value=recipe.evaluation_instance_default,
                                                 enum_values=list(recipe.evaluation.instance_types)),
        # USD; text so that empty means no limit, as 0 does (steps.estimate.max_training_cost).
        max_training_cost=ParameterString("MaxTrainingCost", default_value="0"),
        accuracy_threshold=ParameterFloat("AccuracyThreshold", default_value=DEFAULT_ACCURACY_THRESHOLD),
        approval_status=ParameterString("ModelApprovalStatus", default_value=APPROVAL_STATUSES[0],
                                        enum_values=APPROVAL_STATUSES),
    )


def _text(value: str | None) -> str:
    return REASONING_OFF if value is None else value
