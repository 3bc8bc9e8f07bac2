"""Write `steps/catalog_data.py` from AWS's Nova recipe catalog, aws/sagemaker-hyperpod-recipes.

    python -m scripts.build_catalog --recipes-repo PATH [--output steps/catalog_data.py]

PATH is a clone of https://github.com/aws/sagemaker-hyperpod-recipes (a work tree or a bare
repository; its HEAD is read, or --revision). Everything the pipeline knows about a Nova recipe comes from
four of its files, read here and nowhere else:

- `launcher/recipe_templatization/nova/nova_regional_parameters.json`: each recipe's container
  image per platform (`sm_jobs` = SageMaker training jobs) and region, and the Nova hosting
  (inference) image per region under `all`;
- `launcher/recipe_templatization/nova/nova_metadata.json`: each recipe's instance types;
- `launcher/recipe_templatization/nova/nova_recipe_template_parameters.json`: the launcher's
  schema of each recipe family's override parameters (type, enum or min/max, per-recipe
  conditional constraints) and where each sits in the recipe (`recipe_template`);
- the recipe files under `hyperpod_recipes/recipes_src/`: the recipe itself.

Where the schema and the recipe file's own comment both state the allowed values of a field
(`replicas`, `global_batch_size`, `max_length`), a value is allowed only when both allow it:
the Nova Pro recipes, for one, say "16 and 32" where the family's schema says 16, 32 or 64.
A field the schema leaves out is kept only where AWS states its values elsewhere:
- `reasoning_effort` of the RFT recipes, from the recipe file's comment ("Enables reasoning
  mode High / Low / or null for non-reasoning");
- `number_generation` (responses per prompt) of the training-job RFT recipes, whose schema
  leaves it out, from the HyperPod RFT schema of the same model, which states 2 to 16 for the
  same place in the recipe.

The recipes the pipeline runs are the supervised (SFT) and reinforcement (RFT) fine-tuning
recipes of Nova Micro, Lite and Pro 1.0 and Nova 2 Lite that have a training-job image; each
is paired with its model's bring-your-own-dataset evaluation recipe.
"""
from __future__ import annotations

import argparse
import json
import pprint
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

TEMPLATIZATION = "launcher/recipe_templatization/nova"
RECIPES_SRC = "hyperpod_recipes/recipes_src"
REPOSITORY = "aws/sagemaker-hyperpod-recipes"
OUTPUT = Path(__file__).resolve().parent.parent / "steps" / "catalog_data.py"

_TRAINING = re.compile(r"^nova_(micro|lite|pro)_(1_0|2_0)_.*_sft$|^nova_lite_v2_smtj_.*_rft$"
                       r"|^nova_(micro|lite|pro)_1_0_.*_dpo$")
_EVALUATION = re.compile(r"^nova_(micro|lite|pro)_(1_0|2_0)_p5_48xl_gpu_bring_your_own_dataset_eval$")
# PyYAML reads YAML 1.1, where `1e-5` (no dot) is a string; the recipes mean a number, and the
# Nova containers read them as numbers.
_FLOAT_TEXT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")
# Fields the launcher's schema does not mark as hyperparameters that the pipeline sets all the same.
_ALSO_KEPT = ("replicas", "max_length", "max_new_tokens", "reward_lambda_arn", "data_s3_path")
_COMMENT_VALUES = re.compile(r"(?:allowed values? (?:is|are)|options:)\s*([0-9][0-9 ,and\[\]a-z]*)")
# The DPO recipes' way: "All supported values: {1}", "Limits: {16, 32, 64}" (a set), and
# "Limits: [0.001, 0.5]" (a range).
_COMMENT_SET = re.compile(r"(?:supported values|limits):\s*\{([0-9 ,]+)\}", re.IGNORECASE)
_COMMENT_RANGE = re.compile(r"limits:\s*\[([-+0-9.e]+),\s*([-+0-9.e]+)\]", re.IGNORECASE)
# Values named as words between slashes: "High / Low / or null", "low/high".
_COMMENT_WORDS = re.compile(r"[A-Za-z]+(?:\s*/\s*(?:or\s+)?[A-Za-z]+)+")
# Fields a recipe family's schema leaves out that the schema of another family of the same model
# states for the same place in the recipe: {field: {family: family that states it}}.
_STATED_ELSEWHERE = {"number_generation": {"nova_smtj_lora_rft": "nova_lora_rft", "nova_smtj_rft": "nova_rft"}}


class Repo:
    """A clone of the catalog's repository, read at one revision (HEAD unless told)."""

    def __init__(self, path: Path, revision: str = "HEAD"):
        self.path = path
        self.revision = revision

    def git(self, *args: str) -> str:
        return subprocess.run(["git", "-C", str(self.path), *args], check=True, capture_output=True,
                              text=True).stdout

    def read(self, relative: str) -> str:
        return self.git("show", f"{self.revision}:{relative}")

    def files(self, under: str) -> list[str]:
        return self.git("ls-tree", "-r", "--name-only", self.revision, under).split()


def _numbers(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_numbers(item) for item in value]
    if isinstance(value, str) and _FLOAT_TEXT.match(value):
        return float(value)
    return value


def load_recipe(text: str) -> dict[str, Any]:
    """A recipe file as the Nova containers read it (numbers such as `1e-5` as floats)."""
    return _numbers(yaml.safe_load(text))


def _commented_values(text: str) -> dict[str, list[int]]:
    """Allowed values stated in a recipe file's comments, e.g. `replicas: 4  # ... allowed values are 4, 8, 16`."""
    found: dict[str, list[int]] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        value, _, comment = rest.partition("#")
        match = _COMMENT_VALUES.search(comment) or _COMMENT_SET.search(comment)
        if match:
            found[key.strip()] = [int(n) for n in re.findall(r"\d+", match.group(1))]
        bounds = re.search(r"between \[(\d+), (\d+)\] and multiple of (\d+)", comment)
        if bounds:
            low, high, step = map(int, bounds.groups())
            found[key.strip()] = list(range(low, high + 1, step))
    return found


def _commented_ranges(text: str) -> dict[str, tuple[float, float]]:
    """Bounds stated in a recipe file's comments, e.g. `beta: 0.1  # ... Limits: [0.001, 0.5]`."""
    found: dict[str, tuple[float, float]] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        _, _, comment = rest.partition("#")
        match = _COMMENT_RANGE.search(comment)
        if match:
            found[key.strip()] = (float(match.group(1)), float(match.group(2)))
    return found


def _commented_words(text: str) -> dict[str, list[str | None]]:
    """Values named as words in a recipe file's comments, e.g. `reasoning_effort: high  # ... High /
    Low / or null ...` -> ["high", "low", None]."""
    found: dict[str, list[str | None]] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        _, _, comment = rest.partition("#")
        match = _COMMENT_WORDS.search(comment)
        if match:
            words = re.split(r"\s*/\s*(?:or\s+)?", match.group(0))
            # the words around the list belong to the sentence: "mode High", "null for"
            words[0], words[-1] = words[0].split()[-1], words[-1].split()[0]
            found[key.strip()] = [None if word.lower() == "null" else word.lower() for word in words]
    return found


def _recipe_type(name: str) -> str:
    """The launcher's template for a recipe (nova_recipe_template_processor._determine_recipe_type)."""
    if "lora" in name and "sft" in name:
        return "nova_lora_sft_2_0" if "_2_0" in name else "nova_lora_sft"
    if "sft" in name:
        return "nova_sft_2_0" if "_2_0" in name else "nova_sft"
    if name.endswith("_dpo"):
        return "nova_lora_dpo" if "lora" in name else "nova_dpo"
    if "smtj" in name and "rft" in name:
        return "nova_smtj_lora_rft" if "lora" in name else "nova_smtj_rft"
    if "bring_your_own_dataset" in name:
        return "nova_bring_your_own_dataset_2_0_eval" if "_2_0" in name else "nova_bring_your_own_dataset_eval"
    raise ValueError(f"{name}: no recipe template for it")


def _template_paths(template: Any, path: tuple[str, ...] = ()) -> dict[str, list[tuple[str, ...]]]:
    paths: dict[str, list[tuple[str, ...]]] = {}
    if isinstance(template, dict):
        for key, value in template.items():
            for name, found in _template_paths(value, (*path, key)).items():
                paths.setdefault(name, []).extend(found)
    elif isinstance(template, str) and template.startswith("{{") and template.endswith("}}"):
        paths[template[2:-2]] = [path]
    return paths


def _lookup(recipe: dict[str, Any], path: tuple[str, ...]) -> tuple[bool, Any]:
    node: Any = recipe
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False, None
        node = node[key]
    return True, node


def _resolve(spec: dict[str, Any], name: str, field: str) -> Any:
    constraint = spec.get("conditional_constraints", {}).get(field, {}).get("Name", {})
    if name in constraint:
        return constraint[name]
    if field in spec:
        return spec[field]
    return constraint.get("default")


def _parameters(name: str, templates: dict[str, Any], recipe: dict[str, Any], text: str) -> dict[str, dict[str, Any]]:
    """Each hyperparameter the recipe holds: where, its type, its allowed values and its default."""
    family = _recipe_type(name)
    template = templates[family]
    comments = _commented_values(text)
    ranges = _commented_ranges(text)
    parameters: dict[str, dict[str, Any]] = {}
    for variable, spec in template["recipe_override_parameters"].items():
        if spec.get("category") != "hyperparameter" and variable not in _ALSO_KEPT:
            continue
        entry = _entry(name, template, variable, recipe, comments, ranges)
        if entry is not None:
            parameters[variable] = entry
    for variable, stated_by in _STATED_ELSEWHERE.items():
        if family in stated_by and variable not in parameters:
            entry = _entry(name, templates[stated_by[family]], variable, recipe, comments)
            if entry is not None:
                parameters[variable] = entry
    for key, words in _commented_words(text).items():
        held = _find(recipe, key)
        if key not in parameters and len(held) == 1 and _lookup(recipe, held[0])[1] in words:
            parameters[key] = {"paths": [list(held[0])], "type": "string", "enum": words,
                               "default": _lookup(recipe, held[0])[1]}
    # The SFT 1.0 schema has no max_length (it has max_context_length, which the recipe does not
    # hold); the recipe file states its rule in a comment, and that is what is kept.
    for key, path in (("max_length", ("training_config", "max_length")),):
        held, value = _lookup(recipe, path)
        if held and key not in parameters:
            parameters[key] = {"paths": [list(path)], "type": "integer",
                               "enum": comments.get(key, [value]), "default": value}
    return parameters


def _entry(name: str, template: dict[str, Any], variable: str, recipe: dict[str, Any],
           comments: dict[str, list[int]],
           ranges: dict[str, tuple[float, float]] | None = None) -> dict[str, Any] | None:
    """A schema variable as a field of this recipe, or None when the recipe does not hold it."""
    spec = template["recipe_override_parameters"][variable]
    held = [path for path in _template_paths(template["recipe_template"]).get(variable, [])
            if _lookup(recipe, path)[0]]
    if not held:
        return None
    value = _lookup(recipe, held[0])[1]
    entry: dict[str, Any] = {"paths": [list(path) for path in held], "type": spec["type"]}
    enum = _resolve(spec, name, "enum")
    stated = comments.get(held[0][-1])
    if enum is not None and stated is not None:
        enum = [v for v in enum if v in stated]
    elif stated is not None:
        enum = stated
    if enum is not None:
        entry["enum"] = list(enum)
    for bound in ("min", "max"):
        if bound in spec and enum is None:
            entry[bound] = spec[bound]
    stated_range = (ranges or {}).get(held[0][-1])
    if stated_range is not None and enum is None:
        # both must allow a value: the narrower bound of the schema's and the comment's
        low, high = stated_range
        entry["min"] = max(entry.get("min", low), low)
        entry["max"] = min(entry.get("max", high), high)
    default = value if not isinstance(value, str) or not value.startswith("${") else None
    if enum is not None and default not in enum:
        default = _resolve(spec, name, "default")
    entry["default"] = default
    return entry


def _find(recipe: Any, key: str, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every place a key sits in the recipe."""
    if not isinstance(recipe, dict):
        return []
    found = [(*path, key)] if key in recipe else []
    for child, value in recipe.items():
        found.extend(_find(value, key, (*path, child)))
    return found


def _images(regional: dict[str, Any], name: str) -> dict[str, str]:
    return dict(sorted(regional.get(name, {}).get("sm_jobs", {}).get("container_image", {}).get("prod", {}).items()))


def build(repo: Repo) -> dict[str, Any]:
    regional = json.loads(repo.read(f"{TEMPLATIZATION}/nova_regional_parameters.json"))
    metadata = json.loads(repo.read(f"{TEMPLATIZATION}/nova_metadata.json"))
    templates = json.loads(repo.read(f"{TEMPLATIZATION}/nova_recipe_template_parameters.json"))["templates"]
    commit, date = repo.git("log", "-1", "--format=%H %cI", repo.revision).split()
    files = {Path(path).stem: path for path in repo.files(RECIPES_SRC) if "/nova/" in path and path.endswith(".yaml")}

    def entry(name: str) -> dict[str, Any]:
        text = repo.read(files[name])
        recipe = load_recipe(text)
        return {
            "file": files[name][len(RECIPES_SRC) + 1:],
            "display_name": metadata[name]["display_name"],
            "instance_types": metadata[name]["instance_types"],
            "images": _images(regional, name),
            "recipe": recipe,
            "parameters": _parameters(name, templates, recipe, text),
        }

    evaluations = {name: entry(name) for name in sorted(files) if _EVALUATION.match(name) and _images(regional, name)}
    by_model_type = {e["recipe"]["run"]["model_type"]: name for name, e in evaluations.items()}
    training = {}
    for name in sorted(files):
        if not _TRAINING.match(name) or not _images(regional, name) or name not in metadata:
            continue
        recipe = entry(name)
        run = recipe["recipe"]["run"]
        config = recipe["recipe"]["training_config"]
        peft = next((section["peft"].get("peft_scheme") for section in (config, config.get("model", {}),
                                                                        config.get("trainer", {}))
                     if "peft" in section), None)
        recipe.update({
            "method": "rft" if name.endswith("_rft") else "dpo" if name.endswith("_dpo") else "sft",
            "peft": "lora" if peft == "lora" else "full-rank",
            "model_type": run["model_type"],
            "base_model": run["model_name_or_path"],
            "evaluation": by_model_type[run["model_type"]],
        })
        training[name] = recipe
    hosting = regional["all"]["hosting"]["container_image"]["prod"]
    return {
        "source": {"repository": REPOSITORY, "commit": commit, "date": date},
        "inference_images": dict(sorted(hosting.items())),
        "training": training,
        "evaluation": evaluations,
    }


def render(catalog: dict[str, Any]) -> str:
    source = catalog["source"]
    return (
        '"""AWS\'s Nova recipe catalog as data: written by `python -m scripts.build_catalog`, not by hand.\n\n'
        f"Source: {source['repository']} at commit {source['commit']} ({source['date']}).\n"
        "Read it through `steps.catalog`.\n"
        '"""\n'
        "from __future__ import annotations\n\n"
        f"CATALOG = {pprint.pformat(catalog, indent=1, width=110, sort_dicts=False)}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes-repo", type=Path, required=True,
                        help=f"a clone of {REPOSITORY} (work tree or bare repository)")
    parser.add_argument("--revision", default="HEAD", help="the commit to read (default: %(default)s)")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="default: %(default)s")
    args = parser.parse_args(argv)
    try:
        text = render(build(Repo(args.recipes_repo, args.revision)))
    except subprocess.CalledProcessError as error:
        print(f"--recipes-repo {args.recipes_repo}: not a readable clone of {REPOSITORY} "
              f"({error.stderr.strip() or error})", file=sys.stderr)
        return 2
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
