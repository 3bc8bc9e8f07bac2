"""Render the Nova recipes a job reads: AWS's recipe from the catalog, with only our values changed.

The training recipe is rendered by the preparation step from the pipeline's parameters (a bad
value fails there, before any GPU is paid for); the evaluation recipe by the checkpoint step for
the fine-tuned checkpoint, and at build time for the base model. Every value is checked against
the field's allowed values in `steps.catalog`, which come from AWS's recipe catalog.

Nova 2 recipes train for `max_steps` rather than epochs: it is computed here from the records
written, `Epochs` and `GlobalBatchSize` (one step is one global batch), and raised to the
recipe's minimum when FinQA is too small to reach it. Reinforcement fine-tuning (RFT) recipes
take `MaxSteps` as it is, as AWS's RFT recipes do, and need the reward Lambda's ARN and the
training data's S3 URI, which the pipeline passes.

Recipes are written as YAML with floats always carrying a dot and a signed exponent
(`1.0e-05`): PyYAML's YAML 1.1 resolver reads `1e-05` as a string.
"""
from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from steps.catalog import DEFAULT_RECIPE, TRAINING_RECIPES, RecipeError, TrainingRecipe, recipe

RECIPE_FILE = Path("recipe") / "recipe.yaml"
RUN_NAME = "nova-finqa"
DEFAULT_EPOCHS = 2
# FinQA answers are two short lines (program, answer); AWS's 8196 (or 32768 for Nova 2) would
# only let a rambling model run on for minutes per record.
DEFAULT_MAX_NEW_TOKENS = 1024
# What a reasoning model's evaluation may generate: reasoning and answer (AWS's "Reasoning model
# evaluation" page's value, also the most Nova 2's evaluation recipe allows).
REASONING_MAX_NEW_TOKENS = 32768

# Our FinQA data carries no reasoningContent, and AWS's Nova 2 recipes say to turn reasoning
# off for such data (`reasoning_enabled: ... If data has reasoningContent, set to true; otherwise False`).
FIXED_VALUES = {"reasoning_enabled": False}
# An RFT recipe turns reasoning off with `reasoning_effort: null`; a pipeline parameter is text,
# so "none" stands for it (AWS's RFT page calls this mode `none`).
REASONING_OFF = "none"
_LAMBDA_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z]{2}(-[a-z]+)+-\d:\d{12}:function:[A-Za-z0-9_-]{1,64}$")


def _recipe_has_field(parameter: RecipeParameter, chosen: TrainingRecipe) -> bool:
    return parameter.field in chosen.fields


def _several_values(parameter: RecipeParameter, chosen: TrainingRecipe) -> bool:
    field = chosen.fields.get(parameter.field)
    return field is not None and field.enum is not None and len(field.enum) > 1


def _not_rft(parameter: RecipeParameter, chosen: TrainingRecipe) -> bool:
    return chosen.method != "rft"


def _rft(parameter: RecipeParameter, chosen: TrainingRecipe) -> bool:
    return chosen.method == "rft"


@dataclass(frozen=True)
class RecipeParameter:
    """One recipe value the pipeline offers, declared once: its Studio parameter (declared by
    pipeline.parameters for the recipes it is `offered` for, with the recipe's default), the
    preparation step's flag that carries it (`add_recipe_arguments`), the recipe field it sets
    (checked by `training_values`, which scripts.start_execution runs on an override too), and
    the model package's metadata key its value is registered under (`dest`)."""
    name: str
    field: str
    type: str  # the parameter's type in the pipeline definition: Integer, Float or String
    help: str
    offered: Callable[[RecipeParameter, TrainingRecipe], bool] = _recipe_has_field
    flag_default: Any = None
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return "--" + re.sub(r"(?<!^)(?=[A-Z])", "-", self.name).lower()

    @property
    def dest(self) -> str:
        return self.flag[2:].replace("-", "_")

    def offered_for(self, chosen: TrainingRecipe) -> bool:
        return self.offered(self, chosen)

    def default(self, chosen: TrainingRecipe) -> Any:
        """The Studio parameter's default: the recipe's own value."""
        value = chosen.default(self.field) if self.field in chosen.fields else self.flag_default
        if self.type == "Float":
            return float(value)
        return _text(value) if self.type == "String" else value

    def choices(self, chosen: TrainingRecipe) -> list[str] | None:
        """The values a String parameter offers (a drop-down in Studio), as AWS's recipe allows them."""
        field = chosen.fields.get(self.field)
        if self.type != "String" or field is None or field.enum is None:
            return None
        return [_text(value) for value in field.enum]

    def value(self, text: str) -> Any:
        """The value of the parameter's text (ValueError when it is not of the parameter's type)."""
        return {"Integer": int, "Float": float}.get(self.type, str)(text)


EPOCHS = RecipeParameter(
    "Epochs", "max_epochs", "Integer", offered=_not_rft, flag_default=DEFAULT_EPOCHS,
    help="passes over the training data, at least 1; Nova 2 recipes get max_steps from it (default: %(default)s)")
# In the order of the pipeline's parameters. `Epochs` sets max_epochs on Nova 1.0 recipes and
# is turned into max_steps on step-based Nova 2 ones; RFT recipes take `MaxSteps` instead.
RECIPE_PARAMETERS = {parameter.name: parameter for parameter in (
    EPOCHS,
    RecipeParameter("LearningRate", "learning_rate", "Float", "the recipe's learning rate (default: the recipe's)"),
    RecipeParameter("LoraAlpha", "lora_alpha", "Integer", "LoRA alpha, LoRA recipes only (default: the recipe's)"),
    RecipeParameter("MaxLength", "max_length", "Integer", metavar="TOKENS",
                    help="the recipe's max_length; longer records are skipped and counted (default: the recipe's)"),
    RecipeParameter("GlobalBatchSize", "global_batch_size", "Integer",
                    "the recipe's global batch size (default: the recipe's)"),
    RecipeParameter("Replicas", "replicas", "Integer", offered=_several_values,
                    help="instances to train on, as the recipe allows (default: the recipe's)"),
    # DPO recipes: training_config.model.dpo_cfg.beta, which AWS's launcher schema calls adam_beta.
    RecipeParameter("Beta", "adam_beta", "Float",
                    "DPO recipes: how strongly the preferences are enforced (dpo_cfg.beta; default: the recipe's)"),
    RecipeParameter("MaxSteps", "max_steps", "Integer", offered=_rft,
                    help="training steps, each one global batch of prompts (default: from --epochs)"),
    RecipeParameter("NumberGeneration", "number_generation", "Integer", offered=_rft,
                    help="responses generated per prompt and compared with each other (default: the recipe's)"),
    RecipeParameter("ReasoningEffort", "reasoning_effort", "String", offered=_rft,
                    help=f"high, low, or {REASONING_OFF} for no reasoning (default: the recipe's)"),
)}
# The recipe fields the Studio parameters set, named as the user knows them in messages.
FIELD_PARAMETERS = {parameter.field: parameter.name for parameter in RECIPE_PARAMETERS.values()}


def _text(value: str | None) -> str:
    return REASONING_OFF if value is None else value


def training_values(chosen: TrainingRecipe, *, epochs: int, train_records: int | None = None,
                    **values: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The recipe field values for these parameters, and a summary for the data report.

    `values` are recipe fields (learning_rate, lora_alpha, max_length, global_batch_size,
    replicas; for RFT max_steps, number_generation, reasoning_effort, reward_lambda_arn,
    data_s3_path); ones the recipe does not have are refused. For a step-based recipe without
    max_steps, max_steps is computed when `train_records` is known; before that only the other
    values are checked.
    """
    fields = {key: value for key, value in values.items() if value is not None}
    if fields.get("reasoning_effort") == REASONING_OFF:
        fields["reasoning_effort"] = None
    fields.update({key: value for key, value in FIXED_VALUES.items() if key in chosen.fields})
    if "replicas" in chosen.fields and "replicas" not in fields:
        # The instance count the pipeline's Replicas parameter defaults to: the catalog's allowed
        # default (Nova 2 SFT's file says 1, outside the 4/8/16/32 AWS allows on training jobs).
        fields["replicas"] = chosen.default("replicas")
    if chosen.method == "rft":
        _check_rft_values(chosen, fields)
    if "max_steps" in fields:
        summary: dict[str, Any] = {"id": chosen.id, "max_steps": fields["max_steps"]}
    else:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise RecipeError(f"epochs (parameter Epochs) is {epochs!r}: it must be a whole number, at least 1")
        summary = {"id": chosen.id, "epochs": epochs}
        if chosen.step_based:
            if train_records is not None:
                per_epoch = math.ceil(train_records / fields.get("global_batch_size",
                                                                 chosen.default("global_batch_size")))
                needed = per_epoch * epochs
                minimum = chosen.fields["max_steps"].min or 1
                fields["max_steps"] = max(needed, int(minimum))
                summary.update({"max_steps": fields["max_steps"], "steps_per_epoch": per_epoch,
                                "raised_to_minimum": needed < minimum})
        else:
            fields["max_epochs"] = epochs
    chosen.render(fields, labels=FIELD_PARAMETERS)  # every value checked against AWS's allowed values
    summary["values"] = fields
    return fields, summary


def _check_rft_values(chosen: TrainingRecipe, fields: dict[str, Any]) -> None:
    # Both are AWS placeholders in the recipe file: left so, the job would fail on its GPUs.
    arn, data = fields.get("reward_lambda_arn", ""), fields.get("data_s3_path", "")
    if not isinstance(arn, str) or not _LAMBDA_ARN.match(arn):
        raise RecipeError(f"--reward-lambda-arn {arn!r}: {chosen.id} needs the ARN of the reward Lambda "
                          "(arn:aws:lambda:REGION:ACCOUNT:function:NAME; pipeline.upsert deploys it)")
    if not isinstance(data, str) or not data.startswith("s3://"):
        raise RecipeError(f"--data-s3-path {data!r}: {chosen.id} needs the s3:// URI of its training data")


def training_recipe(recipe_id: str = DEFAULT_RECIPE, *, epochs: int = DEFAULT_EPOCHS,
                    train_records: int | None = None, **values: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """AWS's training recipe with our values, and the summary for the data report."""
    chosen = recipe(recipe_id)
    fields, summary = training_values(chosen, epochs=epochs, train_records=train_records, **values)
    return chosen.render(fields, name=RUN_NAME), summary


def reasoning_modes(chosen: TrainingRecipe) -> tuple[str, ...]:
    """The reasoning modes a model trained with this recipe may be evaluated in: the
    ReasoningEffort values of an RFT recipe (as text, REASONING_OFF for null), else none."""
    field = chosen.fields.get("reasoning_effort")
    return tuple(REASONING_OFF if value is None else value for value in field.enum) if field is not None else ()


def evaluation_recipe(recipe_id: str = DEFAULT_RECIPE, model_name_or_path: str | None = None, *,
                      max_new_tokens: int | None = None, reasoning_effort: str | None = None) -> dict[str, Any]:
    """The bring-your-own-dataset (gen_qa) evaluation recipe of the recipe's model, for the base
    model (the default) or a fine-tuned checkpoint's s3:// path.

    A model trained with reasoning (an RFT recipe's `reasoning_effort`; `reasoning_effort` here,
    the recipe's default when None) is evaluated in the same mode, with the larger
    max_new_tokens its reasoning needs, as AWS's "Reasoning model evaluation" page sets
    `inference.reasoning_effort` and `max_new_tokens: 32768` ("recommended value when
    reasoning_effort set to high"; https://docs.aws.amazon.com/nova/latest/nova2-userguide/
    nova-reasoning-model-evaluation.html). Otherwise reasoning stays off and answers short.
    """
    chosen = recipe(recipe_id)
    model = chosen.base_model if model_name_or_path is None else model_name_or_path
    if model != chosen.base_model and not model.startswith("s3://"):
        raise RecipeError(f"model to evaluate is {model!r}: it must be {chosen.base_model!r} "
                          "or the s3:// path of a fine-tuned checkpoint")
    modes = reasoning_modes(chosen)
    if reasoning_effort is None:
        trained = chosen.fields.get("reasoning_effort")
        reasoning_effort = REASONING_OFF if trained is None or trained.default is None else trained.default
    if reasoning_effort != REASONING_OFF and reasoning_effort not in modes:
        raise RecipeError(f"--reasoning-effort {reasoning_effort}: {chosen.id} trains with "
                          f"{', '.join(modes) or REASONING_OFF} only")
    reasoning = reasoning_effort != REASONING_OFF
    if max_new_tokens is None:
        max_new_tokens = REASONING_MAX_NEW_TOKENS if reasoning else DEFAULT_MAX_NEW_TOKENS
    rendered = chosen.evaluation.render({"max_new_tokens": max_new_tokens}, name=f"{RUN_NAME}-eval")
    if reasoning or "reasoning_effort" in rendered["inference"]:
        rendered["inference"]["reasoning_effort"] = reasoning_effort if reasoning else None
    rendered["run"]["model_name_or_path"] = model
    return rendered


def recipe_yaml(recipe: Mapping[str, Any]) -> str:
    """YAML text of a recipe (nested mappings, lists and scalars), keys in AWS's order."""
    lines: list[str] = []
    _emit(recipe, 0, lines)
    return "\n".join(lines) + "\n"


def _emit(mapping: Mapping[str, Any], indent: int, lines: list[str]) -> None:
    pad = " " * indent
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            lines.append(f"{pad}{key}:")
            _emit(value, indent + 2, lines)
        elif isinstance(value, dict):
            lines.append(f"{pad}{key}: {{}}")
        elif isinstance(value, list):
            lines.append(f"{pad}{key}:")
            lines.extend(f"{pad}  - {_scalar(item)}" for item in value)
        else:
            lines.append(f"{pad}{key}: {_scalar(value)}")


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        mantissa, _, exponent = text.partition("e")
        if "." not in mantissa:
            mantissa += ".0"
        if exponent and exponent[0] not in "+-":
            exponent = "+" + exponent
        return f"{mantissa}e{exponent}" if exponent else mantissa
    if isinstance(value, str):
        return json.dumps(value)
    raise TypeError(f"a recipe holds no {type(value).__name__}: {value!r}")


def write_recipe(recipe: Mapping[str, Any], output_dir: Path) -> Path:
    """Write OUT/recipe/recipe.yaml, the file a Nova job reads from its `recipe` channel."""
    path = Path(output_dir) / RECIPE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(recipe_yaml(recipe), encoding="utf-8")
    return path


def _checkpoint_path(text: str) -> str:
    if not text.startswith("s3://") or len(text) <= len("s3://"):
        raise argparse.ArgumentTypeError(f"{text!r} is not the s3:// path of a Nova checkpoint")
    return text


def _recipe_id(text: str) -> str:
    try:
        return recipe(text).id
    except RecipeError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _flag_type(parameter: RecipeParameter):
    def parse(text: str) -> Any:
        try:
            return parameter.value(text)
        except ValueError:
            kind = {"Integer": "a whole number", "Float": "a number"}[parameter.type]
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind} (the pipeline parameter "
                                             f"{parameter.name})") from None
    return parse if parameter.type in ("Integer", "Float") else None


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """The training recipe's flags, one per pipeline parameter; each is checked against the recipe."""
    group = parser.add_argument_group("training recipe (values are checked before any data is read)")
    group.add_argument("--recipe", type=_recipe_id, default=DEFAULT_RECIPE,
                       help=f"AWS's recipe id, one of {', '.join(sorted(TRAINING_RECIPES))} (default: %(default)s)")
    group.add_argument("--model-name-or-path", type=_checkpoint_path, default=None, metavar="S3_URI",
                       help="start training from this checkpoint (an approved model package's, AWS's iterative "
                            "training) instead of the recipe's base model")
    rft = parser.add_argument_group("reinforcement fine-tuning (RFT) recipes only")
    for parameter in RECIPE_PARAMETERS.values():
        (rft if parameter.offered is _rft else group).add_argument(
            parameter.flag, type=_flag_type(parameter), default=parameter.flag_default, metavar=parameter.metavar,
            help=parameter.help)
    rft.add_argument("--reward-lambda-arn", default=None, help="the reward Lambda (required for RFT)")
    rft.add_argument("--data-s3-path", default=None,
                     help="the s3:// URI the training job reads train.jsonl from (required for RFT)")


def recipe_values_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The recipe field values the flags set (those left out keep the recipe's own); --epochs is
    `training_values`' own argument."""
    values = {parameter.field: getattr(args, parameter.dest) for parameter in RECIPE_PARAMETERS.values()
              if parameter is not EPOCHS}
    return {**values, "reward_lambda_arn": args.reward_lambda_arn, "data_s3_path": args.data_s3_path}
