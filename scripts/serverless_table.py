"""docs/serverless.md's table of hub models x techniques x training types x regions, made from
`steps.serverless_models`, never typed.

    python -m scripts.serverless_table            # print it
    python -m scripts.serverless_table --write    # replace it in docs/serverless.md, between its markers
"""
from __future__ import annotations

import sys
from pathlib import Path

from scripts.generated_table import GeneratedTable
from steps.serverless_models import HUB_MODELS, TECHNIQUES, TRAINING_TYPES

PAGE = Path(__file__).resolve().parent.parent / "docs" / "serverless.md"


def table() -> str:
    lines = ["| `--base-model` | hub content | " + " | ".join(f"{t.upper()} {k}" for t in TECHNIQUES
                                                          for k in TRAINING_TYPES) + " | regions | read |",
             "| --- | --- | " + " | ".join("---" for _ in TECHNIQUES for _ in TRAINING_TYPES) + " | --- | --- |"]
    for model in HUB_MODELS:
        cells = []
        for technique in TECHNIQUES:
            for kind in TRAINING_TYPES:
                recipe = model.recipe_id(technique, kind)
                offered = technique in model.techniques.get(kind, ())
                cells.append(("yes" + (f" (`{recipe}`)" if recipe else "")) if offered else "-")
        lines.append(f"| `{model.model_id}` | `{model.hub_content_name}` | {' | '.join(cells)} | "
                     f"{', '.join(model.regions)} | {model.read} |")
    lines.append("")
    lines.append("Sources:")
    by_source: dict[str, list[str]] = {}
    for model in HUB_MODELS:
        note = f" {model.notes}." if model.notes else ""
        by_source.setdefault(f"{model.source}.{note}", []).append(f"`{model.model_id}`")
    for source, models in by_source.items():
        lines.append(f"- {', '.join(models)}: {source}")
    return "\n".join(lines) + "\n"


GENERATED = GeneratedTable("serverless", PAGE, table)
START, END = GENERATED.start, GENERATED.end


def replaced(page: str) -> str:
    return GENERATED.replaced(page)


if __name__ == "__main__":
    sys.exit(GENERATED.main(__doc__.split("\n")[0]))
