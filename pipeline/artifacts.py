"""What the pipeline's jobs read from S3 besides data: the `steps/` code and the base-model recipe.

Each reaches S3 under a key that is the SHA-256 of its bytes, and the bytes depend on the
content only (sorted archive members, fixed times and owners, no gzip timestamp): building
twice gives the same keys, so the definition is byte-identical and an unchanged re-run hits
every step's cache; a changed file gives a new key, so a cached job never runs stale code.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

from steps.catalog import recipe
from steps.recipes import evaluation_recipe, reasoning_modes, recipe_yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CODE_ARCHIVE = "steps.tar.gz"
_CODE_SUFFIXES = (".py",)


@dataclass(frozen=True)
class Artifact:
    """Bytes to upload and the content-addressed key (under the settings' prefix) they go to."""
    key: str
    data: bytes

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _key(prefix: str, *parts: str) -> str:
    return "/".join(part for part in (prefix, *parts) if part)


def code_archive_bytes(root: Path = PROJECT_ROOT) -> bytes:
    """A gzipped tar of the `steps` package's Python files, identical for identical content."""
    package = root / "steps"
    files = sorted(p for p in package.rglob("*") if p.is_file() and p.suffix in _CODE_SUFFIXES
                   and "__pycache__" not in p.parts)
    if not files:
        raise FileNotFoundError(f"{package}: no Python files to package")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in files:
            data = path.read_bytes()
            info = tarfile.TarInfo(path.relative_to(root).as_posix())
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), compresslevel=9, mtime=0)


def code_artifact(prefix: str, root: Path = PROJECT_ROOT) -> Artifact:
    data = code_archive_bytes(root)
    return Artifact(_key(prefix, "code", hashlib.sha256(data).hexdigest(), CODE_ARCHIVE), data)


def base_model_recipe_artifacts(prefix: str, recipe_id: str) -> tuple[Artifact, ...]:
    """The evaluation recipe for the recipe's untuned base model: static, so it is rendered here, not in a job.

    For a recipe that trains in a reasoning mode (RFT's ReasoningEffort), one recipe per mode, at
    `recipes/<digest of all>/<mode>/recipe.yaml`: the base model is evaluated in the mode the
    fine-tuned one was trained and is evaluated in, chosen by the parameter at run time.
    """
    modes = reasoning_modes(recipe(recipe_id))
    if not modes:
        data = recipe_yaml(evaluation_recipe(recipe_id)).encode("utf-8")
        return (Artifact(_key(prefix, "recipes", hashlib.sha256(data).hexdigest(), "recipe.yaml"), data),)
    recipes = {mode: recipe_yaml(evaluation_recipe(recipe_id, reasoning_effort=mode)).encode("utf-8")
               for mode in modes}
    digest = hashlib.sha256(b"".join(mode.encode() + b"\0" + data for mode, data in recipes.items())).hexdigest()
    return tuple(Artifact(_key(prefix, "recipes", digest, mode, "recipe.yaml"), data) for mode, data in recipes.items())


def source_model_recipe_artifact(prefix: str, recipe_id: str, checkpoint: str) -> Artifact:
    """The evaluation recipe for a source model package's checkpoint (training from it: its answers to the
    training questions); static once the package is resolved, so rendered here too."""
    data = recipe_yaml(evaluation_recipe(recipe_id, checkpoint)).encode("utf-8")
    return Artifact(_key(prefix, "recipes", hashlib.sha256(data).hexdigest(), "recipe.yaml"), data)
