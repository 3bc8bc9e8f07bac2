"""The recipe catalog: held against the facts taken from AWS's catalog, and against the catalog itself.

The facts below were read from aws/sagemaker-hyperpod-recipes at the commit recorded in
steps/catalog_data.py (nova_regional_parameters.json, nova_metadata.json, the recipe files).
Where a clone of that repository is on the machine (NOVA_RECIPES_REPO, or the library's mirror),
the catalog is also rebuilt from it and must equal the committed one.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from scripts import build_catalog
from steps import catalog
from steps.catalog import RecipeError, recipe
from tests.conftest import PROJECT_ROOT

ACCOUNTS = {"us-east-1": "708977205387", "us-west-2": "176779409107", "ap-northeast-1": "878185805882"}
MIRROR = Path(os.environ.get("NOVA_RECIPES_REPO", "/work/.mirror/aws+sagemaker-hyperpod-recipes/repo"))

SFT_RECIPES = {
    # id: (model type, instance types, LoRA?, training image tag)
    "nova_lite_1_0_g5_g6_12x_gpu_lora_sft": ("amazon.nova-lite-v1:0:300k", ["ml.g5.12xlarge", "ml.g6.12xlarge"],
                                             True, "SM-TJ-SFT-latest"),
    "nova_lite_1_0_g5_g6_48x_gpu_lora_sft": ("amazon.nova-lite-v1:0:300k", ["ml.g5.48xlarge", "ml.g6.48xlarge"],
                                             True, "SM-TJ-SFT-latest"),
    "nova_lite_1_0_p5_p4d_gpu_lora_sft": ("amazon.nova-lite-v1:0:300k",
                                          ["ml.p5.48xlarge", "ml.p4d.24xlarge", "ml.p5en.48xlarge"], True,
                                          "SM-TJ-SFT-latest"),
    "nova_lite_1_0_p5_p4d_gpu_sft": ("amazon.nova-lite-v1:0:300k",
                                     ["ml.p5.48xlarge", "ml.p4d.24xlarge", "ml.p5en.48xlarge"], False,
                                     "SM-TJ-SFT-latest"),
    "nova_micro_1_0_g5_g6_12x_gpu_lora_sft": ("amazon.nova-micro-v1:0:128k", ["ml.g5.12xlarge", "ml.g6.12xlarge"],
                                              True, "SM-TJ-SFT-latest"),
    "nova_micro_1_0_g5_g6_48x_gpu_lora_sft": ("amazon.nova-micro-v1:0:128k", ["ml.g5.48xlarge", "ml.g6.48xlarge"],
                                              True, "SM-TJ-SFT-latest"),
    "nova_micro_1_0_g5_g6_48x_gpu_sft": ("amazon.nova-micro-v1:0:128k", ["ml.g5.48xlarge", "ml.g6.48xlarge"],
                                         False, "SM-TJ-SFT-latest"),
    "nova_micro_1_0_p5_p4d_gpu_lora_sft": ("amazon.nova-micro-v1:0:128k",
                                           ["ml.p5.48xlarge", "ml.p4d.24xlarge", "ml.p5en.48xlarge"], True,
                                           "SM-TJ-SFT-latest"),
    "nova_micro_1_0_p5_p4d_gpu_sft": ("amazon.nova-micro-v1:0:128k",
                                      ["ml.p5.48xlarge", "ml.p4d.24xlarge", "ml.p5en.48xlarge"], False,
                                      "SM-TJ-SFT-latest"),
    "nova_pro_1_0_p5_p4d_gpu_lora_sft": ("amazon.nova-pro-v1:0:300k",
                                         ["ml.p5.48xlarge", "ml.p4d.24xlarge", "ml.p5en.48xlarge"], True,
                                         "SM-TJ-SFT-latest"),
    "nova_pro_1_0_p5_gpu_sft": ("amazon.nova-pro-v1:0:300k", ["ml.p5.48xlarge", "ml.p5en.48xlarge"], False,
                                "SM-TJ-SFT-latest"),
    "nova_lite_2_0_p5_gpu_lora_sft": ("amazon.nova-2-lite-v1:0:256k",
                                      ["ml.p5.48xlarge", "ml.p5en.48xlarge", "ml.p4d.24xlarge"], True,
                                      "SM-TJ-SFT-V2-latest"),
    "nova_lite_2_0_p5_gpu_sft": ("amazon.nova-2-lite-v1:0:256k",
                                 ["ml.p5.48xlarge", "ml.p5en.48xlarge", "ml.p4d.24xlarge"], False,
                                 "SM-TJ-SFT-V2-latest"),
}
EVALUATION_INSTANCE_TYPES = {
    "amazon.nova-lite-v1:0:300k": ["ml.p5.48xlarge", "ml.g5.12xlarge", "ml.g5.24xlarge", "ml.g6.12xlarge",
                                   "ml.g6.24xlarge", "ml.g6.48xlarge"],
    "amazon.nova-micro-v1:0:128k": ["ml.p5.48xlarge", "ml.g5.12xlarge", "ml.g5.24xlarge", "ml.g6.12xlarge",
                                    "ml.g6.24xlarge"],
    "amazon.nova-pro-v1:0:300k": ["ml.p5.48xlarge"],
    "amazon.nova-2-lite-v1:0:256k": ["ml.p5.48xlarge", "ml.p4d.24xlarge"],
}


def test_every_sft_recipe_aws_runs_on_training_jobs_is_in_the_catalog():
    sft = {recipe_id for recipe_id, entry in catalog.TRAINING_RECIPES.items() if entry.method == "sft"}
    assert sft == set(SFT_RECIPES)


@pytest.mark.parametrize("recipe_id", sorted(SFT_RECIPES))
def test_catalog_holds_the_facts_taken_from_aws(recipe_id):
    model_type, instance_types, lora, tag = SFT_RECIPES[recipe_id]
    chosen = recipe(recipe_id)
    assert chosen.model_type == model_type
    assert list(chosen.instance_types) == instance_types
    assert chosen.bedrock_on_demand is lora and chosen.peft == ("lora" if lora else "full-rank")
    assert chosen.step_based is model_type.startswith("amazon.nova-2")
    for region, account in ACCOUNTS.items():
        assert chosen.image(region) == f"{account}.dkr.ecr.{region}.amazonaws.com/nova-fine-tune-repo:{tag}"
        # AWS maps every Nova 1.0 and 2.0 bring-your-own-dataset evaluation on training jobs to the V2 tag.
        assert chosen.evaluation.image(region) == (
            f"{account}.dkr.ecr.{region}.amazonaws.com/nova-evaluation-repo:SM-TJ-Eval-V2-latest")
    assert chosen.evaluation.model_type == model_type
    assert list(chosen.evaluation.instance_types) == EVALUATION_INSTANCE_TYPES[model_type]
    assert chosen.evaluation.template["evaluation"] == {"task": "gen_qa", "strategy": "gen_qa", "metric": "all"}


def test_allowed_values_are_those_both_aws_sources_state():
    # Nova Pro's recipe file says "16 and 32"; the launcher's schema for the family says 16, 32 or 64.
    assert recipe("nova_pro_1_0_p5_p4d_gpu_lora_sft").fields["global_batch_size"].enum == (16, 32)
    assert recipe("nova_lite_1_0_g5_g6_12x_gpu_lora_sft").fields["max_length"].enum == tuple(range(1024, 8193, 1024))
    assert recipe("nova_micro_1_0_g5_g6_48x_gpu_sft").fields["max_length"].enum == (1024, 2048, 3072, 4096)
    assert recipe("nova_lite_2_0_p5_gpu_lora_sft").fields["replicas"].enum == (4, 8, 16, 32)
    assert recipe("nova_lite_2_0_p5_gpu_lora_sft").fields["max_length"].enum == (8192, 16384, 32768, 65536)
    assert recipe("nova_lite_1_0_g5_g6_12x_gpu_lora_sft").fields["lora_alpha"].enum == (32, 64, 96, 128, 160, 192)


def test_an_unknown_recipe_is_refused_with_the_known_ones_closest_first():
    with pytest.raises(RecipeError) as refused:
        recipe("nova_lite_1_0_g5_12x_lora_sft")
    message = str(refused.value)
    known = message.split("known: ")[1].split(", ")
    assert sorted(known) == sorted(catalog.TRAINING_RECIPES)
    assert known[0].startswith("nova_lite_1_0_g5_g6")


def test_an_unsupported_region_is_refused_naming_where_the_image_is():
    with pytest.raises(catalog.UnsupportedRegionError, match="ap-northeast-1, us-east-1, us-west-2"):
        recipe(catalog.DEFAULT_RECIPE).image("eu-central-1")


@pytest.mark.integration
def test_the_committed_catalog_is_what_the_generator_makes_from_aws_catalog():
    commit = catalog.SOURCE["commit"]
    if not MIRROR.exists() or subprocess.run(["git", "-C", str(MIRROR), "cat-file", "-e", f"{commit}^{{commit}}"],
                                             capture_output=True).returncode:
        pytest.skip(f"no clone of aws/sagemaker-hyperpod-recipes holding {commit} at {MIRROR}")
    built = build_catalog.build(build_catalog.Repo(MIRROR, commit))
    assert built == catalog.CATALOG
    assert build_catalog.render(built) == (PROJECT_ROOT / "steps" / "catalog_data.py").read_text()


def test_readme_recipe_table_is_the_one_the_catalog_makes():
    from scripts import recipe_table

    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    assert recipe_table.replaced(readme) == readme, \
        "README's recipe table is stale: `python -m scripts.recipe_table --write`"
    for recipe_id in SFT_RECIPES:
        assert f"`{recipe_id}`" in readme
