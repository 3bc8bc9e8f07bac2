"""A Markdown table made from the project's data, kept between two markers of a page.

Each `scripts/<name>_table.py` says what its table is (`GeneratedTable`) and calls `main`: without
flags it prints the table, with `--write` it replaces the one in the page. A test compares the
page with `replaced(page)`, so a table left stale fails.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GeneratedTable:
    name: str  # "recipe", "settings", "serverless": the markers' word
    page: Path
    make: Callable[[], str]

    @property
    def start(self) -> str:
        return f"<!-- {self.name} table: made by `python -m scripts.{self.name}_table --write` -->"

    @property
    def end(self) -> str:
        return f"<!-- end of {self.name} table -->"

    def replaced(self, page: str) -> str:
        """`page` with the table between its markers made anew."""
        if self.start not in page or self.end not in page:
            raise ValueError(f"{self.page.name} has no {self.name} table markers ({self.start} ... {self.end})")
        head, rest = page.split(self.start, 1)
        _, tail = rest.split(self.end, 1)
        return f"{head}{self.start}\n{self.make()}{self.end}{tail}"

    def main(self, description: str, argv: list[str] | None = None) -> int:
        parser = argparse.ArgumentParser(description=description)
        parser.add_argument("--write", action="store_true", help=f"replace the table in {self.page}")
        args = parser.parse_args(argv)
        if not args.write:
            sys.stdout.write(self.make())
            return 0
        self.page.write_text(self.replaced(self.page.read_text(encoding="utf-8")), encoding="utf-8")
        print(f"wrote the {self.name} table into {self.page}")
        return 0
