"""The Nova recipes the pipeline runs, as AWS's recipe catalog gives them: the one place that knows.

Per recipe id (AWS's own, e.g. `nova_lite_1_0_g5_g6_12x_gpu_lora_sft`): the base model, the
training image per region for SageMaker training jobs, the instance types, the hyperparameter
fields with their allowed values and defaults, whether Bedrock serves the result on demand
(LoRA) or only with Provisioned Throughput (full-rank), and the model's bring-your-own-dataset
evaluation recipe with its image and instance types.

The data is `steps/catalog_data.py`, written by `python -m scripts.build_catalog` from
aws/sagemaker-hyperpod-recipes (its commit and date are in that file): nothing here is typed in
by hand. This module is standard library only, because the preparation and checkpoint steps
render recipes with it inside the processing container.
"""
from __future__ import annotations

import copy
import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from steps.catalog_data import CATALOG

DEFAULT_RECIPE = "nova_lite_1_0_g5_g6_12x_gpu_lora_sft"
SOURCE = CATALOG["source"]


class RecipeError(ValueError):
    """A recipe id or value the catalog does not allow; the message names it and what is allowed."""


class UnsupportedRegionError(ValueError):
    """AWS publishes no image for the recipe in the region."""


@dataclass(frozen=True)
class Field:
    """One hyperparameter of a recipe: where it sits, and the values AWS allows for it."""
    name: str
    paths: tuple[tuple[str, ...], ...]
    type: str
    default: Any
    enum: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None

    def rule(self) -> str:
        if self.enum is not None:
            return "one of " + ", ".join(str(v) for v in self.enum)
        kind = {"integer": "a whole number", "float": "a number", "boolean": "true or false"}.get(self.type, "text")
        bounds = [f"at least {_number(self.min)}" if self.min is not None else "",
                  f"at most {_number(self.max)}" if self.max is not None else ""]
        return ", ".join([kind, *(b for b in bounds if b)])

    def problem(self, value: Any) -> str | None:
        """Why AWS's recipe would refuse this value, or None when it is allowed."""
        if self.type == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
            return f"{value!r} is not a whole number"
        if self.type == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))
                                     or not math.isfinite(value)):
            return f"{value!r} is not a number"
        if self.type == "boolean" and not isinstance(value, bool):
            return f"{value!r} is not true or false"
        if self.enum is not None and value not in self.enum:
            return f"{value!r} is not allowed"
        if self.min is not None and value < self.min:
            return f"{value!r} is below {_number(self.min)}"
        if self.max is not None and value > self.max:
            return f"{value!r} is above {_number(self.max)}"
        return None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) >= 1 else repr(value)


def _fields(parameters: Mapping[str, Mapping[str, Any]]) -> dict[str, Field]:
    return {name: Field(name=name, paths=tuple(tuple(p) for p in spec["paths"]), type=spec["type"],
                        default=spec["default"], enum=tuple(spec["enum"]) if "enum" in spec else None,
                        min=spec.get("min"), max=spec.get("max"))
            for name, spec in parameters.items()}


# The one OmegaConf interpolation AWS's Nova recipes use: `${oc.select:KEY}`, the value at the
# absolute dotted KEY (None when there is none). AWS's launcher resolves it with OmegaConf before
# the job sees the file (sagemaker-train, sm_recipes/utils.py `_get_args_from_nova_recipe`:
# `_try_resolve_recipe`, then `OmegaConf.save`); the containers run the standard library only,
# so it is resolved here, and tests/test_oracle.py compares the result with OmegaConf's.
_SELECT = re.compile(r"^\$\{oc\.select:([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}$")


def resolve_interpolations(recipe: dict[str, Any]) -> dict[str, Any]:
    """The recipe with every `${oc.select:KEY}` replaced by KEY's value; any other `${...}` is refused."""
    def lookup(key: str, seen: tuple[str, ...]) -> Any:
        if key in seen:
            raise RecipeError(f"recipe interpolation ${{oc.select:{key}}} refers to itself")
        node: Any = recipe
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return resolve(node, (*seen, key))

    def resolve(value: Any, seen: tuple[str, ...] = ()) -> Any:
        if isinstance(value, dict):
            return {key: resolve(item, seen) for key, item in value.items()}
        if isinstance(value, list):
            return [resolve(item, seen) for item in value]
        if isinstance(value, str) and "${" in value:
            match = _SELECT.match(value)
            if match is None:
                raise RecipeError(f"recipe value {value!r}: an interpolation other than ${{oc.select:KEY}}, "
                                  "which this pipeline cannot resolve as AWS's launcher (OmegaConf) would")
            return lookup(match.group(1), seen)
        return value

    return resolve(recipe)


def _set(recipe: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = recipe
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


@dataclass(frozen=True)
class _Recipe:
    id: str
    file: str
    display_name: str
    instance_types: tuple[str, ...]
    images: Mapping[str, str]
    template: Mapping[str, Any]
    fields: Mapping[str, Field]

    @property
    def model_type(self) -> str:
        return self.template["run"]["model_type"]

    @property
    def base_model(self) -> str:
        return self.template["run"]["model_name_or_path"]

    @property
    def model_name(self) -> str:
        """The model as people name it: Nova Micro, Nova Lite, Nova Pro, Nova 2 Lite."""
        family = self.model_type.split(":")[0].split(".")[-1]  # nova-2-lite-v1, nova-lite-v1
        words = [w for w in family.split("-") if not w.startswith("v")]
        return " ".join(w.capitalize() if w.isalpha() else w for w in words)

    def image(self, region: str) -> str:
        image = self.images.get(region)
        if image is None:
            raise UnsupportedRegionError(
                f"--region {region}: AWS publishes the {self.id} image in {', '.join(sorted(self.images))} only")
        return image

    def render(self, values: Mapping[str, Any], name: str | None = None,
               labels: Mapping[str, str] | None = None) -> dict[str, Any]:
        """AWS's recipe with these field values (each checked) and, if given, the run name.

        `labels` names a field as the caller's user knows it (a pipeline parameter) in messages.
        """
        problems = []
        labels = labels or {}
        recipe = copy.deepcopy(dict(self.template))
        for key, value in values.items():
            field = self.fields.get(key)
            if field is None:
                raise RecipeError(f"{self.id} has no field {key!r}; its fields: {', '.join(self.fields)}")
            problem = field.problem(value)
            if problem:
                label = f"{key} (parameter {labels[key]})" if key in labels else key
                problems.append(f"{label} {problem}: {self.id} takes {field.rule()}")
                continue
            for path in field.paths:
                _set(recipe, path, float(value) if field.type == "float" else value)
        if problems:
            raise RecipeError("; ".join(problems))
        if name is not None:
            recipe["run"]["name"] = name
        return resolve_interpolations(recipe)


@dataclass(frozen=True)
class EvaluationRecipe(_Recipe):
    """A bring-your-own-dataset (gen_qa) evaluation recipe."""


@dataclass(frozen=True)
class TrainingRecipe(_Recipe):
    """A fine-tuning recipe that runs on SageMaker training jobs."""
    method: str  # "sft" or "rft"
    peft: str  # "lora" or "full-rank"
    evaluation: EvaluationRecipe

    @property
    def step_based(self) -> bool:
        """Nova 2 recipes train for max_steps, not for epochs."""
        return "max_steps" in self.fields

    @property
    def bedrock_on_demand(self) -> bool:
        """Whether the recipe's method allows on-demand serving in Bedrock: LoRA models may be served on
        demand, full-rank ones only with Provisioned Throughput. Which models and regions Bedrock
        offers each for is pipeline.bedrock_rules' (AWS's Bedrock pages, not this catalog)."""
        return self.peft == "lora"

    def default(self, field: str) -> Any:
        return self.fields[field].default

    @property
    def validation_channel(self) -> bool:
        """Whether the job takes a `validation` channel: Nova 1.0 SFT only. AWS's "Fine-tune Nova 2.0"
        page (https://docs.aws.amazon.com/sagemaker/latest/dg/nova-fine-tune-2.html, Current limitations):
        "You cannot provide a validation dataset for SFT with Nova 2.0"; RFT jobs read train only."""
        return self.method == "sft" and not self.model_type.startswith("amazon.nova-2")

    def render(self, values: Mapping[str, Any], name: str | None = None,
               labels: Mapping[str, str] | None = None) -> dict[str, Any]:
        rendered = super().render(values, name=name, labels=labels)
        if self.method == "sft":
            # Nova 2's SFT recipes ship AWS's placeholder bucket (s3://my-bucket-name/...) in these
            # HyperPod-only fields; AWS's training-job templates default both to "" (the catalog's
            # launcher/recipe_templatization/nova/nova_recipe_template_parameters.json, nova_sft_2_0 and
            # nova_lora_sft_2_0), as sagemaker-train's _get_smtj_override_spec does: the job reads its channels.
            for key in ("data_s3_path", "output_s3_path"):
                if key in rendered["run"] and key not in values:
                    rendered["run"][key] = ""
        return rendered

    @property
    def evaluation_instance_default(self) -> str:
        """The training instance type when the evaluation recipe allows it (the workshop's g5.12xlarge for
        the default recipe), else the evaluation recipe's first, as AWS lists them."""
        allowed = self.evaluation.instance_types
        return self.instance_types[0] if self.instance_types[0] in allowed else allowed[0]


def _recipe_args(recipe_id: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": recipe_id, "file": entry["file"], "display_name": entry["display_name"],
            "instance_types": tuple(entry["instance_types"]), "images": dict(entry["images"]),
            "template": entry["recipe"], "fields": _fields(entry["parameters"])}


EVALUATION_RECIPES: dict[str, EvaluationRecipe] = {
    recipe_id: EvaluationRecipe(**_recipe_args(recipe_id, entry)) for recipe_id, entry in CATALOG["evaluation"].items()}
TRAINING_RECIPES: dict[str, TrainingRecipe] = {
    recipe_id: TrainingRecipe(**_recipe_args(recipe_id, entry), method=entry["method"], peft=entry["peft"],
                              evaluation=EVALUATION_RECIPES[entry["evaluation"]])
    for recipe_id, entry in CATALOG["training"].items()}
INFERENCE_IMAGES: dict[str, str] = dict(CATALOG["inference_images"])


def recipe(recipe_id: str) -> TrainingRecipe:
    """The training recipe with this id; an unknown id is refused with the known ones, closest first."""
    found = TRAINING_RECIPES.get(recipe_id)
    if found is None:
        raise RecipeError(f"--recipe {recipe_id!r} is not a Nova recipe this pipeline runs; known: "
                          + ", ".join(_closest_first(recipe_id, TRAINING_RECIPES)))
    return found


def _closest_first(text: str, names: Iterable[str]) -> list[str]:
    names = sorted(names)
    close = difflib.get_close_matches(text, names, n=len(names), cutoff=0.0)
    return close + [n for n in names if n not in close]
