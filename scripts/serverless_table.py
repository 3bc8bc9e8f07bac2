"""docs/serverless.md's table of hub models x techniques x training types x regions, made from
`steps.serverless_models`, never typed.

    python -m scripts.serverless_table            # print it
    python -m scripts.serverless_table --write    # replace it in docs/serverless.md, between its markers
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from steps.serverless_models import HUB_MODELS, TECHNIQUES, TRAINING_TYPES

PAGE = Path(__file__).resolve().parent.parent / "docs" / "serverless.md"
START = "<!-- serverless table: made by `python -m scripts.serverless_table --write` -->"
END = "<!-- end of serverless table -->"


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
    for model in HUB_MODELS:
        note = f" {model.notes}." if model.notes else ""
        lines.append(f"- `{model.model_id}`: {model.source}.{note}")
    return "\n".join(lines) + "\n"


def replaced(page: str) -> str:
    if START not in page or END not in page:
        raise ValueError(f"{PAGE.name} has no serverless table markers ({START} ... {END})")
    head, rest = page.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table()}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help=f"replace the table in {PAGE}")
    args = parser.parse_args(argv)
    if not args.write:
        sys.stdout.write(table())
        return 0
    PAGE.write_text(replaced(PAGE.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote the serverless table into {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
