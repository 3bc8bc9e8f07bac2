"""docs/settings.md's table of settings, made from their declarations (`pipeline.settings.Settings`), never typed.

    python -m scripts.settings_table            # print it
    python -m scripts.settings_table --write    # replace it in docs/settings.md, between its markers
"""
from __future__ import annotations

import sys
from pathlib import Path

from pipeline.settings import SETTINGS
from scripts.generated_table import GeneratedTable

PAGE = Path(__file__).resolve().parent.parent / "docs" / "settings.md"


def table() -> str:
    lines = ["| flag | environment variable | default | what it sets | accepted |",
             "| --- | --- | --- | --- | --- |"]
    for spec in SETTINGS:
        flag = f"`{spec.flag} KEY=VALUE` (repeatable)" if spec.repeatable else f"`{spec.flag}`"
        env = ", ".join(f"`{name}=K=V,K2=V2`" if spec.repeatable else f"`{name}`" for name in spec.env)
        default = spec.unset or (f"`{spec.default}`" if spec.default else "")
        rule = (spec.rule.__doc__ or "").strip() if spec.rule else ""
        lines.append(f"| {flag} | {env} | {default} | {spec.help} | {rule} |")
    return "\n".join(lines) + "\n"


GENERATED = GeneratedTable("settings", PAGE, table)
START, END = GENERATED.start, GENERATED.end


def replaced(page: str) -> str:
    return GENERATED.replaced(page)


if __name__ == "__main__":
    sys.exit(GENERATED.main(__doc__.split("\n")[0]))
