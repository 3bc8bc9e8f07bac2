"""The Nova 2 Lite RFT recipes in the catalog (`steps.catalog`): the fields a pipeline sets, with
AWS's allowed values, and the rendered recipe, which is AWS's recipe file but for our values."""
from __future__ import annotations

import copy
import subprocess

import pytest

from steps.catalog import SOURCE, RecipeError, recipe
from tests.conftest import PROJECT_ROOT

RFT_RECIPES = ("nova_lite_v2_smtj_p5_p5en_gpu_lora_rft", "nova_lite_v2_smtj_p5_p5en_gpu_rft")
# a clone of aws/sagemaker-hyperpod-recipes beside the checkout, as `fetch` leaves it
RECIPES_REPO = PROJECT_ROOT.parent / ".mirror" / "aws+sagemaker-hyperpod-recipes" / "repo"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:SageMaker-nova-finqa-reward"


@pytest.mark.parametrize("recipe_id", RFT_RECIPES)
def test_the_rft_fields_and_awss_allowed_values(recipe_id):
    chosen = recipe(recipe_id)
    assert (chosen.method, chosen.model_name, chosen.step_based) == ("rft", "Nova 2 Lite", True)
    assert chosen.image("us-east-1").endswith("/nova-fine-tune-repo:SM-TJ-RFT-V2-latest")
    fields = chosen.fields
    # the launcher's schema
    assert (fields["max_steps"].min, fields["max_steps"].max) == (5, 100000)
    assert (fields["learning_rate"].min, fields["learning_rate"].max) == (1e-07, 0.001)
    # the HyperPod RFT schema of the same model, for the same place in the recipe
    assert (fields["number_generation"].min, fields["number_generation"].max, fields["number_generation"].default) \
        == (2, 16, 2)
    # the recipe file's comment: "Enables reasoning mode High / Low / or null for non-reasoning"
    assert (fields["reasoning_effort"].enum, fields["reasoning_effort"].default) == (("high", "low", None), "high")
    assert fields["reward_lambda_arn"].paths == (("run", "reward_lambda_arn"),
                                                 ("training_config", "rollout", "rewards", "api_endpoint", "lambda_arn"))
    if chosen.peft == "lora":
        assert fields["lora_alpha"].enum == (16, 32, 64)
    else:
        assert "lora_alpha" not in fields


OUR_VALUES = {"max_steps": 40, "number_generation": 8, "reasoning_effort": None, "learning_rate": 5e-6,
              "reward_lambda_arn": ARN}


@pytest.mark.parametrize("recipe_id", RFT_RECIPES)
def test_the_rendered_recipe_is_awss_but_for_our_values(recipe_id):
    chosen = recipe(recipe_id)
    values = {**OUR_VALUES, **({"lora_alpha": 64} if chosen.peft == "lora" else {})}
    rendered = chosen.render(values, name="nova-finqa")
    expected = copy.deepcopy(dict(chosen.template))
    expected["run"]["name"] = "nova-finqa"
    expected["run"]["reward_lambda_arn"] = ARN
    config = expected["training_config"]
    config["rollout"]["rewards"]["api_endpoint"]["lambda_arn"] = ARN
    config["rollout"]["advantage_strategy"]["number_generation"] = 8
    config["reasoning_effort"] = None
    config["trainer"]["max_steps"] = 40
    config["trainer"]["optim_config"]["lr"] = 5e-6
    if chosen.peft == "lora":
        config["trainer"]["peft"]["lora_tuning"]["alpha"] = 64
    assert rendered == expected


@pytest.mark.parametrize("field, value, message", [
    ("number_generation", 1, "number_generation 1 is below 2"),
    ("number_generation", 17, "number_generation 17 is above 16"),
    ("reasoning_effort", "medium", "reasoning_effort 'medium' is not allowed"),
    ("lora_alpha", 128, "lora_alpha 128 is not allowed"),
    ("max_steps", 4, "max_steps 4 is below 5"),
])
def test_values_aws_does_not_allow_are_refused(field, value, message):
    with pytest.raises(RecipeError, match=message):
        recipe(RFT_RECIPES[0]).render({field: value})


@pytest.mark.skipif(not RECIPES_REPO.is_dir(), reason="AWS's recipe catalog is not fetched on this machine")
@pytest.mark.parametrize("recipe_id", RFT_RECIPES)
def test_the_catalogs_template_is_awss_recipe_file(recipe_id):
    from scripts.build_catalog import RECIPES_SRC, load_recipe

    chosen = recipe(recipe_id)
    text = subprocess.run(["git", "-C", str(RECIPES_REPO), "show", f"{SOURCE['commit']}:{RECIPES_SRC}/{chosen.file}"],
                          check=True, capture_output=True, text=True).stdout
    assert load_recipe(text) == chosen.template
