"""The lint configured in pyproject.toml ([tool.ruff]) is part of the test command: a lint error fails the suite."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT


@pytest.mark.integration
def test_ruff_finds_nothing():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=PROJECT_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, f"`python -m ruff check .` (--fix fixes some):\n{result.stdout}{result.stderr}"
