"""The README's table of supported recipes, made from the catalog (`steps.catalog`), never typed.

    python -m scripts.recipe_table            # print it
    python -m scripts.recipe_table --write    # replace it in README.md, between its markers
"""
from __future__ import annotations

import sys
from pathlib import Path

from pipeline.bedrock_rules import serving
from pipeline.definition import SUPPORTED_METHODS
from scripts.generated_table import GeneratedTable
from steps.catalog import DEFAULT_RECIPE, SOURCE, TRAINING_RECIPES

README = Path(__file__).resolve().parent.parent / "README.md"


def table() -> str:
    lines = [
        f"From aws/sagemaker-hyperpod-recipes at `{SOURCE['commit'][:12]}` ({SOURCE['date'][:10]}).",
        "",
        "| `--recipe` | model | method | instance types | instances | in Bedrock |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    supported = {r: chosen for r, chosen in TRAINING_RECIPES.items() if chosen.method in SUPPORTED_METHODS}
    for recipe_id, chosen in sorted(supported.items(), key=lambda item: (item[1].model_type, item[0])):
        replicas = chosen.fields.get("replicas")
        instances = (", ".join(map(str, replicas.enum)) if replicas is not None and replicas.enum
                     else str(chosen.template["run"].get("replicas", 1)))
        method = f"{'LoRA' if chosen.peft == 'lora' else 'full-rank'} {chosen.method.upper()}"
        name = f"`{recipe_id}`" + (" (default)" if recipe_id == DEFAULT_RECIPE else "")
        lines.append(f"| {name} | {chosen.model_name} | {method} | {', '.join(chosen.instance_types)} | "
                     f"{instances} | {serving(chosen)} |")
    return "\n".join(lines) + "\n"


GENERATED = GeneratedTable("recipe", README, table)
START, END = GENERATED.start, GENERATED.end


def replaced(page: str) -> str:
    return GENERATED.replaced(page)


if __name__ == "__main__":
    sys.exit(GENERATED.main(__doc__.split("\n")[0]))
