"""The Nova Lite recipes this project runs: LoRA SFT training and bring-your-own-dataset evaluation.

The values are those of aws/sagemaker-hyperpod-recipes (recipes_collection/recipes/):
`fine-tuning/nova/nova_1_0/nova_lite/SFT/nova_lite_1_0_g5_g6_12x_gpu_lora_sft.yaml` and
`evaluation/nova/nova_1_0/nova_lite/nova_lite_1_0_p5_48xl_gpu_bring_your_own_dataset_eval.yaml`.
They live here, as data, so that a recipe is rendered without the network and without
cloning that repository: the Prepare step renders the training recipe from the pipeline's
parameters (a bad value fails there, before any GPU is paid for), the checkpoint step renders
the evaluation recipe for the fine-tuned checkpoint, and the pipeline renders the one for the
base model.

Recipes are written as YAML with floats always carrying a dot and a signed exponent
(`1.0e-05`): PyYAML's YAML 1.1 resolver reads `1e-05` as a string.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
from pathlib import Path
from typing import Any

BASE_MODEL = "nova-lite/prod"
MODEL_TYPE = "amazon.nova-lite-v1:0:300k"
RECIPE_FILE = Path("recipe") / "recipe.yaml"

DEFAULT_EPOCHS = 2
DEFAULT_LEARNING_RATE = 1e-5
DEFAULT_LORA_ALPHA = 128
DEFAULT_MAX_LENGTH = 8192
DEFAULT_GLOBAL_BATCH_SIZE = 64
# FinQA answers are two short lines (program, answer); the recipe's 8196 would only let a
# rambling model run on for minutes per record.
DEFAULT_MAX_NEW_TOKENS = 1024

LORA_ALPHAS = (32, 64, 96, 128, 160, 192)
MAX_LENGTHS = tuple(range(1024, 8192 + 1, 1024))
GLOBAL_BATCH_SIZES = (16, 32, 64)

_TRAINING_TEMPLATE: dict[str, Any] = {
    "run": {
        "name": "nova-finqa-lora-sft",
        "model_type": MODEL_TYPE,
        "model_name_or_path": BASE_MODEL,
        "replicas": 1,
        "data_s3_path": "",
        "output_s3_path": "",
        "mlflow_tracking_uri": "",
        # The recipe asks to leave these two non-empty.
        "mlflow_experiment_name": "nova-finqa-lora-sft",
        "mlflow_run_name": "nova-finqa-lora-sft",
    },
    "training_config": {
        "max_length": DEFAULT_MAX_LENGTH,
        "global_batch_size": DEFAULT_GLOBAL_BATCH_SIZE,
        "trainer": {"max_epochs": DEFAULT_EPOCHS},
        "model": {
            "hidden_dropout": 0.0,
            "attention_dropout": 0.0,
            "ffn_dropout": 0.0,
            "optim": {
                "lr": DEFAULT_LEARNING_RATE,
                "name": "distributed_fused_adam",
                "adam_w_mode": True,
                "eps": 1e-06,
                "weight_decay": 0.0,
                "betas": [0.9, 0.999],
                "sched": {"warmup_steps": 10, "constant_steps": 0, "min_lr": 1e-06},
            },
            "peft": {
                "peft_scheme": "lora",
                "lora_tuning": {"loraplus_lr_ratio": 16.0, "alpha": DEFAULT_LORA_ALPHA, "adapter_dropout": 0.01},
            },
        },
    },
}

_EVALUATION_TEMPLATE: dict[str, Any] = {
    "run": {
        "name": "nova-finqa-byod-eval",
        "model_type": MODEL_TYPE,
        "model_name_or_path": BASE_MODEL,
        "replicas": 1,
        "data_s3_path": "",
        "output_s3_path": "",
        "mlflow_tracking_uri": "",
        "mlflow_experiment_name": "",
        "mlflow_run_name": "",
    },
    "evaluation": {"task": "gen_qa", "strategy": "gen_qa", "metric": "all"},
    "inference": {"max_new_tokens": DEFAULT_MAX_NEW_TOKENS, "top_k": -1, "top_p": 1.0, "temperature": 0,
                  "top_logprobs": 0},
    "processor": {"lambda_arn": "", "lambda_type": "rft", "preprocessing": {"enabled": False},
                  "postprocessing": {"enabled": True}, "aggregation": "average"},
}


class RecipeError(ValueError):
    """A recipe value is out of the range the Nova recipe accepts; the message names it."""


def training_recipe(*, epochs: int = DEFAULT_EPOCHS, learning_rate: float = DEFAULT_LEARNING_RATE,
                    lora_alpha: int = DEFAULT_LORA_ALPHA, max_length: int = DEFAULT_MAX_LENGTH,
                    global_batch_size: int = DEFAULT_GLOBAL_BATCH_SIZE) -> dict[str, Any]:
    """The Nova Lite LoRA SFT recipe with these values, each checked against the recipe's rules."""
    problems = []
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        problems.append(f"epochs (parameter Epochs) is {epochs!r}: it must be a whole number, at least 1")
    if not isinstance(learning_rate, (int, float)) or not math.isfinite(learning_rate) or learning_rate <= 0:
        problems.append(f"learning rate (parameter LearningRate) is {learning_rate!r}: it must be a number above 0")
    if lora_alpha not in LORA_ALPHAS:
        problems.append(f"LoRA alpha (parameter LoraAlpha) is {lora_alpha!r}: it must be one of "
                        f"{', '.join(map(str, LORA_ALPHAS))}")
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length not in MAX_LENGTHS:
        problems.append(f"max length (parameter MaxLength) is {max_length!r}: it must be 1024 to 8192, "
                        "a multiple of 1024")
    if global_batch_size not in GLOBAL_BATCH_SIZES:
        problems.append(f"global batch size (parameter GlobalBatchSize) is {global_batch_size!r}: it must be "
                        f"one of {', '.join(map(str, GLOBAL_BATCH_SIZES))}")
    if problems:
        raise RecipeError("; ".join(problems))
    recipe = copy.deepcopy(_TRAINING_TEMPLATE)
    config = recipe["training_config"]
    config["max_length"] = max_length
    config["global_batch_size"] = global_batch_size
    config["trainer"]["max_epochs"] = epochs
    config["model"]["optim"]["lr"] = float(learning_rate)
    config["model"]["peft"]["lora_tuning"]["alpha"] = lora_alpha
    return recipe


def evaluation_recipe(model_name_or_path: str = BASE_MODEL, *,
                      max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> dict[str, Any]:
    """The bring-your-own-dataset (gen_qa) evaluation recipe for the base model or a checkpoint."""
    if model_name_or_path != BASE_MODEL and not model_name_or_path.startswith("s3://"):
        raise RecipeError(f"model to evaluate is {model_name_or_path!r}: it must be {BASE_MODEL!r} "
                          "or the s3:// path of a fine-tuned checkpoint")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise RecipeError(f"max_new_tokens is {max_new_tokens!r}: it must be a whole number, at least 1")
    recipe = copy.deepcopy(_EVALUATION_TEMPLATE)
    recipe["run"]["model_name_or_path"] = model_name_or_path
    recipe["inference"]["max_new_tokens"] = max_new_tokens
    return recipe


def recipe_yaml(recipe: dict[str, Any]) -> str:
    """YAML text of a recipe (nested mappings, lists and scalars), keys in the template's order."""
    lines: list[str] = []
    _emit(recipe, 0, lines)
    return "\n".join(lines) + "\n"


def _emit(mapping: dict[str, Any], indent: int, lines: list[str]) -> None:
    pad = " " * indent
    for key, value in mapping.items():
        if isinstance(value, dict):
            lines.append(f"{pad}{key}:")
            _emit(value, indent + 2, lines)
        elif isinstance(value, list):
            lines.append(f"{pad}{key}:")
            lines.extend(f"{pad}  - {_scalar(item)}" for item in value)
        else:
            lines.append(f"{pad}{key}: {_scalar(value)}")


def _scalar(value: Any) -> str:
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


def write_recipe(recipe: dict[str, Any], output_dir: Path) -> Path:
    """Write OUT/recipe/recipe.yaml, the file a Nova job reads from its `recipe` channel."""
    path = Path(output_dir) / RECIPE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(recipe_yaml(recipe), encoding="utf-8")
    return path


def _whole_number(name: str, parameter: str):
    def parse(text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a whole number (the pipeline parameter {parameter} sets {name})") from None
    return parse


def _learning_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number (the pipeline parameter LearningRate sets the learning rate)") from None
    return value


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """The training recipe's flags (the pipeline's parameters); --max-length is the caller's own flag."""
    group = parser.add_argument_group("training recipe (values are checked before any data is read)")
    group.add_argument("--epochs", type=_whole_number("epochs", "Epochs"), default=DEFAULT_EPOCHS,
                       help="trainer.max_epochs, at least 1 (default: %(default)s)")
    group.add_argument("--learning-rate", type=_learning_rate, default=DEFAULT_LEARNING_RATE,
                       help="model.optim.lr, above 0 (default: %(default)s)")
    group.add_argument("--lora-alpha", type=_whole_number("LoRA alpha", "LoraAlpha"), default=DEFAULT_LORA_ALPHA,
                       help=f"peft.lora_tuning.alpha, one of {', '.join(map(str, LORA_ALPHAS))} "
                            "(default: %(default)s)")
    group.add_argument("--global-batch-size", type=_whole_number("global batch size", "GlobalBatchSize"),
                       default=DEFAULT_GLOBAL_BATCH_SIZE,
                       help=f"one of {', '.join(map(str, GLOBAL_BATCH_SIZES))} (default: %(default)s)")


def training_recipe_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The training recipe for the recipe flags (and --max-length). Raises RecipeError naming a bad value."""
    return training_recipe(epochs=args.epochs, learning_rate=args.learning_rate, lora_alpha=args.lora_alpha,
                           max_length=args.max_length, global_batch_size=args.global_batch_size)
