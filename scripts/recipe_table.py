"""The README's table of supported recipes, made from the catalog (`steps.catalog`), never typed.

    python -m scripts.recipe_table            # print it
    python -m scripts.recipe_table --write    # replace it in README.md, between its markers
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.bedrock_rules import serving
from pipeline.definition import SUPPORTED_METHODS
from steps.catalog import DEFAULT_RECIPE, SOURCE, TRAINING_RECIPES

README = Path(__file__).resolve().parent.parent / "README.md"
START = "<!-- recipe table: made by `python -m scripts.recipe_table --write` -->"
END = "<!-- end of recipe table -->"


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


def replaced(readme: str) -> str:
    if START not in readme or END not in readme:
        raise ValueError(f"{README.name} has no recipe table markers ({START} ... {END})")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table()}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help=f"replace the table in {README}")
    args = parser.parse_args(argv)
    if not args.write:
        sys.stdout.write(table())
        return 0
    README.write_text(replaced(README.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote the recipe table into {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
