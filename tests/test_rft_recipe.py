"""The Nova 2 Lite RFT recipes: the fields the pipeline sets, with AWS's allowed values (from the
catalog), and the recipe the preparation step renders, which is AWS's recipe file but for our
values."""
from __future__ import annotations

import pytest
import yaml

from steps.catalog import RecipeError, recipe
from steps.recipes import training_recipe
from tests.test_recipes import _aws_file, _changed, _prepare

RFT_RECIPES = ("nova_lite_v2_smtj_p5_p5en_gpu_lora_rft", "nova_lite_v2_smtj_p5_p5en_gpu_rft")
ARN = "arn:aws:lambda:us-east-1:123456789012:function:SageMaker-nova-finqa-reward"
DATA = "s3://amzn-s3-demo-bucket/nova-finqa/prepared/train/train.jsonl"
NEEDED = {"reward_lambda_arn": ARN, "data_s3_path": DATA}


@pytest.mark.parametrize("recipe_id", RFT_RECIPES)
def test_the_rft_fields_and_awss_allowed_values(recipe_id):
    chosen = recipe(recipe_id)
    assert (chosen.method, chosen.model_name, chosen.step_based) == ("rft", "Nova 2 Lite", True)
    assert chosen.image("us-east-1").endswith("/nova-fine-tune-repo:SM-TJ-RFT-V2-latest")
    fields = chosen.fields
    # the launcher's schema for the recipe's family
    assert (fields["max_steps"].min, fields["max_steps"].max) == (5, 100000)
    assert (fields["learning_rate"].min, fields["learning_rate"].max) == (1e-07, 0.001)
    # the HyperPod RFT schema of the same model, for the same place in the recipe
    assert (fields["number_generation"].min, fields["number_generation"].max, fields["number_generation"].default) \
        == (2, 16, 2)
    # the recipe file's comment: "Enables reasoning mode High / Low / or null for non-reasoning"
    assert (fields["reasoning_effort"].enum, fields["reasoning_effort"].default) == (("high", "low", None), "high")
    assert fields["reward_lambda_arn"].paths == (("run", "reward_lambda_arn"),
                                                 ("training_config", "rollout", "rewards", "api_endpoint",
                                                  "lambda_arn"))
    assert ("lora_alpha" in fields) is (chosen.peft == "lora")
    if chosen.peft == "lora":
        assert fields["lora_alpha"].enum == (16, 32, 64)


@pytest.mark.parametrize("recipe_id", RFT_RECIPES)
@pytest.mark.integration
def test_the_prepared_recipe_is_awss_file_but_for_our_values(tmp_path, sample_finqa, recipe_id):
    chosen = recipe(recipe_id)
    lora = ["--lora-alpha", "64"] if chosen.peft == "lora" else []
    result = _prepare(tmp_path, sample_finqa, "--recipe", recipe_id, "--max-steps", "40", "--number-generation", "8",
                      "--reasoning-effort", "none", "--learning-rate", "5e-6", *lora,
                      "--reward-lambda-arn", ARN, "--data-s3-path", DATA)
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load((tmp_path / "recipe" / "recipe.yaml").read_text())
    config = rendered["training_config"]
    assert rendered["run"]["reward_lambda_arn"] == config["rollout"]["rewards"]["api_endpoint"]["lambda_arn"] == ARN
    assert rendered["run"]["data_s3_path"] == DATA
    assert (config["trainer"]["max_steps"], config["rollout"]["advantage_strategy"]["number_generation"],
            config["reasoning_effort"], config["trainer"]["optim_config"]["lr"]) == (40, 8, None, 5e-6)
    ours = {path for name in ("max_steps", "number_generation", "reasoning_effort", "learning_rate", "lora_alpha",
                              "reward_lambda_arn", "data_s3_path") if name in chosen.fields
            for path in chosen.fields[name].paths} | {("run", "name")}
    # save_steps: AWS's `${oc.select:training_config.trainer.max_steps}`, resolved as AWS's launcher does
    assert _changed(_aws_file(chosen.file), rendered) == ours | {("training_config", "trainer", "save_steps")}
    assert config["trainer"]["save_steps"] == 40


@pytest.mark.parametrize("values, message", [
    ({"number_generation": 1}, "number_generation \\(parameter NumberGeneration\\) 1 is below 2"),
    ({"number_generation": 17}, "number_generation \\(parameter NumberGeneration\\) 17 is above 16"),
    ({"reasoning_effort": "medium"}, "reasoning_effort \\(parameter ReasoningEffort\\) 'medium' is not allowed"),
    ({"lora_alpha": 128}, "lora_alpha \\(parameter LoraAlpha\\) 128 is not allowed"),
    ({"max_steps": 4}, "max_steps \\(parameter MaxSteps\\) 4 is below 5"),
    ({"reward_lambda_arn": None}, "--reward-lambda-arn '': .* needs the ARN of the reward Lambda"),
    ({"reward_lambda_arn": "SageMaker-nova-finqa-reward"}, "needs the ARN of the reward Lambda"),
    ({"data_s3_path": None}, "--data-s3-path '': .* needs the s3:// URI of its training data"),
])
def test_values_aws_does_not_allow_are_refused_naming_the_parameter(values, message):
    with pytest.raises(RecipeError, match=message):
        training_recipe(RFT_RECIPES[0], **{"max_steps": 10, **NEEDED, **values})


@pytest.mark.integration
def test_prepare_refuses_an_rft_recipe_without_its_reward_before_reading_data(tmp_path, sample_finqa):
    result = _prepare(tmp_path, sample_finqa, "--recipe", RFT_RECIPES[0], "--data-s3-path", DATA)
    assert result.returncode == 1 and "needs the ARN of the reward Lambda" in result.stderr
    assert not any(tmp_path.iterdir()), "nothing is written when the recipe is refused"


def test_without_max_steps_they_come_from_epochs_as_for_nova_2_sft():
    _, summary = training_recipe(RFT_RECIPES[0], epochs=2, train_records=6251, global_batch_size=64, **NEEDED)
    assert summary["max_steps"] == 2 * 98
