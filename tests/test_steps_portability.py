"""`steps/` runs inside a bare processing container: its Python may be older than ours, and
it has only the standard library."""
from __future__ import annotations

import ast
import sys

import pytest

from tests.conftest import PROJECT_ROOT

STEP_FILES = sorted((PROJECT_ROOT / "steps").rglob("*.py"))
# The scikit-learn processing image the pipeline uses runs Python 3.9.
OLDEST_PYTHON = (3, 9)


@pytest.mark.parametrize("path", STEP_FILES, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_step_code_is_python_3_9_syntax_and_standard_library_at_import(path):
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path), feature_version=OLDEST_PYTHON)
    if len(tree.body) > 1:
        assert any(isinstance(node, ast.ImportFrom) and node.module == "__future__" for node in tree.body), \
            "annotations like `str | None` need `from __future__ import annotations` on Python 3.9"
    for node in tree.body:  # module level only: pyarrow and datasets are imported where needed
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            assert top in sys.stdlib_module_names or top == "steps", f"{path.name} imports {name} at module level"
