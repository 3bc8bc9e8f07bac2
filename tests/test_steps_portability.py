"""`steps/` runs inside a bare processing container: its Python may be older than ours, and
it has only the standard library."""
from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.nova_output import jsonl, nova_line

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


def python_3_9() -> str | None:
    """A Python 3.9 interpreter on this machine: NOVA_PYTHON39, python3.9 on the PATH, or a
    pyenv version (pyenv's shim alone fails when 3.9 is not a selected version)."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [os.environ.get("NOVA_PYTHON39"), shutil.which("python3.9"),
                  *sorted(str(p) for p in root.glob("versions/3.9*/bin/python3.9"))]
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 9))"],
                               capture_output=True, text=True)
        if probe.stdout.strip() == "True":
            return candidate
    return None


def run_steps(python: str, sample: Path, output: Path) -> None:
    """Prepare the sample, then score its gold responses written as a Nova job writes them."""
    prepared, scored = output / "prepared", output / "scored"
    subprocess.run([python, "-m", "steps.prepare", "--input-dir", str(sample), "--output-dir", str(prepared)],
                   cwd=PROJECT_ROOT, check=True, capture_output=True)
    gen_qa = (prepared / "eval" / "gen_qa.jsonl").read_text(encoding="utf-8")
    examples = [json.loads(line) for line in gen_qa.splitlines()]
    predictions = output / "inference_output.jsonl"
    predictions.write_text(jsonl(nova_line(example, example["response"]) for example in examples), encoding="utf-8")
    subprocess.run([python, "-m", "steps.evaluate", "--predictions", str(predictions), "--eval-data",
                    str(prepared / "eval"), "--output-dir", str(scored)], cwd=PROJECT_ROOT, check=True,
                   capture_output=True)


@pytest.mark.integration
def test_the_steps_give_the_same_outputs_on_python_3_9(sample_finqa, tmp_path):
    python = python_3_9()
    if python is None:
        pytest.skip("no Python 3.9 on this machine (set NOVA_PYTHON39 to one)")
    run_steps(python, sample_finqa, tmp_path / "old")
    run_steps(sys.executable, sample_finqa, tmp_path / "ours")
    files = sorted(p.relative_to(tmp_path / "ours") for p in (tmp_path / "ours").rglob("*") if p.is_file())
    assert Path("prepared/train/train.jsonl") in files and Path("scored/evaluation.json") in files
    for relative in files:  # the scores name the predictions file they read, in each run's own folder
        old = (tmp_path / "old" / relative).read_text(encoding="utf-8").replace(str(tmp_path / "old"), "RUN")
        ours = (tmp_path / "ours" / relative).read_text(encoding="utf-8").replace(str(tmp_path / "ours"), "RUN")
        assert old == ours, relative
    evaluation = json.loads((tmp_path / "ours" / "scored" / "evaluation.json").read_text())
    assert evaluation["metrics"]["execution_accuracy"]["value"] == 1.0
