"""The pipeline's parameters, as Studio's form shows them: made here, and only here.

What a recipe allows decides the form: `TrainingInstanceType` and `EvaluationInstanceType`
offer exactly the recipe's instance types (a drop-down), `LoraAlpha` exists for LoRA recipes
only, `Replicas` where the recipe can run on more than one instance count, and every default
is the recipe's own (from `steps.catalog`). Reinforcement fine-tuning (RFT) recipes take
`MaxSteps`, `NumberGeneration` and `ReasoningEffort` instead of `Epochs`; DPO recipes add `Beta`. The recipe's values
are declared once each, with the flag that carries them, in `steps.recipes.RECIPE_PARAMETERS`;
each reaches the preparation step, which checks it against AWS's allowed values before any GPU
starts, as it checks its cost estimate against `MaxTrainingCost`.
"""
from __future__ import annotations

from dataclasses import dataclass

from steps.catalog import TrainingRecipe
from steps.recipes import RECIPE_PARAMETERS

DEFAULT_ACCURACY_THRESHOLD = 0.5


@dataclass(frozen=True)
class Parameters:
    data_location: object
    train_records: object
    eval_records: object
    recipe: dict[str, object]  # the recipe's values (steps.recipes.RECIPE_PARAMETERS it is offered), by name
    training_instance_type: object
    evaluation_instance_type: object
    max_training_cost: object
    accuracy_threshold: object

    @property
    def all(self) -> list:
        return [self.data_location, self.train_records, self.eval_records, *self.recipe.values(),
                self.training_instance_type, self.evaluation_instance_type, self.max_training_cost,
                self.accuracy_threshold]

    def recipe_flags(self) -> list[tuple[str, object]]:
        """The preparation step's recipe flags (steps.recipes.add_recipe_arguments), with their values as text."""
        return [(RECIPE_PARAMETERS[name].flag, value.to_string()) for name, value in self.recipe.items()]

    def instance_count(self, recipe: TrainingRecipe):
        """The training job's instance count: the recipe's replicas (a parameter where it may vary)."""
        if "Replicas" in self.recipe:
            return self.recipe["Replicas"]
        replicas = recipe.fields.get("replicas")
        # AWS's RFT recipes for training jobs state no other replicas than their own
        return replicas.default if replicas is not None else recipe.template["run"].get("replicas", 1)


def declare(recipe: TrainingRecipe, default_data_location: str) -> Parameters:
    from sagemaker.core.workflow import ParameterFloat, ParameterInteger, ParameterString

    def recipe_parameter(parameter):
        choices = parameter.choices(recipe)
        if parameter.type == "Integer":
            return ParameterInteger(parameter.name, default_value=parameter.default(recipe))
        if parameter.type == "Float":
            return ParameterFloat(parameter.name, default_value=parameter.default(recipe))
        if choices is None:
            return ParameterString(parameter.name, default_value=parameter.default(recipe))
        return ParameterString(parameter.name, default_value=parameter.default(recipe), enum_values=choices)

    return Parameters(
        data_location=ParameterString("DataLocation", default_value=default_data_location),
        train_records=ParameterString("TrainingRecords", default_value="all"),
        eval_records=ParameterString("EvaluationRecords", default_value="all"),
        recipe={name: recipe_parameter(parameter) for name, parameter in RECIPE_PARAMETERS.items()
                if parameter.offered_for(recipe)},
        training_instance_type=ParameterString("TrainingInstanceType", default_value=recipe.instance_types[0],
                                               enum_values=list(recipe.instance_types)),
        evaluation_instance_type=ParameterString("EvaluationInstanceType",
                                                 default_value=recipe.evaluation_instance_default,
                                                 enum_values=list(recipe.evaluation.instance_types)),
        # USD; text so that empty means no limit, as 0 does (steps.estimate.max_training_cost).
        max_training_cost=ParameterString("MaxTrainingCost", default_value="0"),
        accuracy_threshold=ParameterFloat("AccuracyThreshold", default_value=DEFAULT_ACCURACY_THRESHOLD),
        # No ModelApprovalStatus: approval is a reviewer's act, or an upsert-time setting
        # (--auto-approve, pipeline.definition), never an execution's choice.
    )
