"""docs/settings.md's table of settings, made from their declarations (`pipeline.settings.Settings`), never typed.

    python -m scripts.settings_table            # print it
    python -m scripts.settings_table --write    # replace it in docs/settings.md, between its markers
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.settings import SETTINGS

PAGE = Path(__file__).resolve().parent.parent / "docs" / "settings.md"
START = "<!-- settings table: made by `python -m scripts.settings_table --write` -->"
END = "<!-- end of settings table -->"


def table() -> str:
    lines = ["| flag | environment variable | default | what it sets | accepted |",
             "| --- | --- | --- | --- | --- |"]
    for spec in SETTINGS:
        flag = f"`{spec.flag} KEY=VALUE` (repeatable)" if spec.repeatable else f"`{spec.flag}`"
        env = ", ".join(f"`{name}=K=V,K2=V2`" if spec.repeatable else f"`{name}`" for name in spec.env)
        default = f"`{spec.default}`" if spec.default else spec.unset
        rule = (spec.rule.__doc__ or "").strip() if spec.rule else ""
        lines.append(f"| {flag} | {env} | {default} | {spec.help} | {rule} |")
    return "\n".join(lines) + "\n"


def replaced(page: str) -> str:
    if START not in page or END not in page:
        raise ValueError(f"{PAGE.name} has no settings table markers ({START} ... {END})")
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
    print(f"wrote the settings table into {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
