"""Content-addressed code and recipe artifacts: same content, same bytes and key; new content, new key."""
from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import yaml

from pipeline.artifacts import PROJECT_ROOT, base_model_recipe_artifacts, code_archive_bytes, code_artifact
from steps.catalog import DEFAULT_RECIPE
from steps.recipes import evaluation_recipe


def copy_steps(target: Path) -> Path:
    shutil.copytree(PROJECT_ROOT / "steps", target / "steps", ignore=shutil.ignore_patterns("__pycache__"))
    return target


def test_archive_holds_the_steps_package_only_with_fixed_metadata():
    with tarfile.open(fileobj=io.BytesIO(code_archive_bytes()), mode="r:gz") as archive:
        members = archive.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert {"steps/__init__.py", "steps/prepare.py", "steps/checkpoint.py", "steps/recipes.py",
            "steps/finqa/__init__.py", "steps/finqa/records.py"} <= set(names)
    assert all(name.endswith(".py") and "__pycache__" not in name for name in names)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {(0, 0, 0, "", "", 0o644)}


def test_same_content_gives_the_same_bytes_wherever_and_whenever_it_is_built(tmp_path):
    copy = copy_steps(tmp_path / "elsewhere")
    for path in (copy / "steps").rglob("*.py"):
        path.touch()  # new mtimes must not matter
    (copy / "steps" / "__pycache__").mkdir(exist_ok=True)
    (copy / "steps" / "__pycache__" / "prepare.cpython-311.pyc").write_bytes(b"\0")
    assert code_archive_bytes(copy) == code_archive_bytes()
    assert code_artifact("nova-finqa", copy) == code_artifact("nova-finqa")


def test_changed_code_gets_a_new_key(tmp_path):
    copy = copy_steps(tmp_path)
    before = code_artifact("nova-finqa", copy)
    with (copy / "steps" / "checkpoint.py").open("a") as file:
        file.write("\n")
    after = code_artifact("nova-finqa", copy)
    assert after.key != before.key
    assert after.key == f"nova-finqa/code/{after.digest}/steps.tar.gz"


def test_base_model_recipe_artifact():
    artifact, = base_model_recipe_artifacts("team/nova", DEFAULT_RECIPE)
    assert artifact.key == f"team/nova/recipes/{artifact.digest}/recipe.yaml"
    assert yaml.safe_load(artifact.data) == evaluation_recipe(DEFAULT_RECIPE)
    nova_2, = base_model_recipe_artifacts("team/nova", "nova_lite_2_0_p5_gpu_lora_sft")
    assert nova_2.key != artifact.key
    assert yaml.safe_load(nova_2.data)["run"]["model_name_or_path"] == "nova-lite-2/prod"
    assert yaml.safe_load(nova_2.data)["inference"]["reasoning_effort"] is None  # trained without reasoning
    assert base_model_recipe_artifacts("team/nova", DEFAULT_RECIPE) == (artifact,)


def test_an_rft_base_model_is_evaluated_in_each_reasoning_mode_it_may_train_in():
    artifacts = base_model_recipe_artifacts("team/nova", "nova_lite_v2_smtj_p5_p5en_gpu_lora_rft")
    folder = artifacts[0].key.rsplit("/", 2)[0]
    assert [a.key for a in artifacts] == [f"{folder}/{mode}/recipe.yaml" for mode in ("high", "low", "none")]
    inference = [yaml.safe_load(a.data)["inference"] for a in artifacts]
    # AWS's "Reasoning model evaluation" page: reasoning on, max_new_tokens 32768
    assert [(i["reasoning_effort"], i["max_new_tokens"]) for i in inference] == [
        ("high", 32768), ("low", 32768), (None, 1024)]
