"""AWS's own SDK as the oracle of every job request the pipeline makes.

For every training recipe the pipeline builds (each one the catalog has with a supported
method, so a recipe or method added later is covered without touching this file) and for its
two evaluation jobs (fine-tuned checkpoint, base model):

1. our recipe is rendered by the code the pipeline runs (`steps.prepare` with the FineTune
   step's own container arguments at the parameters' defaults, `steps.checkpoint` on a
   manifest, the base-model recipe artifact);
2. AWS's request is built from that file by AWS's launcher in the installed SDK:
   `ModelTrainer.from_recipe(training_recipe=<our file>, training_image=..., compute=...,
   input_data_config=...)` under a `PipelineSession`, then
   `TrainingStep(step_args=trainer.train()).arguments`;
3. our step's arguments (from the built definition, its pipeline expressions evaluated at the
   parameters' defaults) must equal AWS's, but for the differences listed in `ALLOWED`.

What AWS's launcher is given is only what an operator chooses (image, instance type, maximum
runtime, role, where the data is); the data channels are made the way AWS's own trainers make
them (sagemaker-train `_create_input_data_config`, `_convert_input_data_to_channels`). Everything
else (hyperparameters, instance count from the recipe's replicas, the recipe channel, the
resolved recipe it uploads) is AWS's launcher's doing, so a later SDK release that sends
another request fails this test.

The network: `trainer.train()` uploads the resolved recipe (S3 PutObject), checks the
session's default bucket (S3 ListBuckets) and may check the role (IAM SimulatePrincipalPolicy).
Those calls, and only those, are served by moto in-process; the recipe AWS's launcher
uploaded is read back from moto's S3 and compared with ours.
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import boto3
import botocore.endpoint
import pytest
import yaml
from moto import mock_aws

from pipeline.definition import (
    CHECKPOINT,
    GENERATE_BASE,
    GENERATE_FINE_TUNED,
    PREPARE,
    SUPPORTED_METHODS,
    TRAIN,
    build_pipeline,
)
from pipeline.images import images_for
from pipeline.settings import Settings
from steps import checkpoint as checkpoint_step
from steps import prepare as prepare_step
from steps.catalog import TRAINING_RECIPES

SETTINGS = Settings(region="us-east-1", role_arn="arn:aws:iam::111122223333:role/NovaFinQAPipelineRole",
                    bucket="amzn-s3-demo-bucket")
SUPPORTED = sorted(recipe_id for recipe_id, chosen in TRAINING_RECIPES.items() if chosen.method in SUPPORTED_METHODS)
CHECKPOINT_URI = "s3://customer-escrow-111122223333-smtj-a1b2c3/nova-finqa-sft-2026/step_20"
# The calls AWS's launcher makes while building a request, all served by moto (see the docstring).
LAUNCHER_CALLS = {"ListBuckets", "PutObject", "SimulatePrincipalPolicy"}

# The only differences allowed between our request and AWS's, and why.
ALLOWED = {
    # Ours: content-addressed keys under the settings' prefix (pipeline.definition's module
    # docstring); AWS's: s3://<default bucket>/<base job name>/... per call.
    "OutputDataConfig.S3OutputPath": "where outputs go is the operator's choice",
    "InputDataConfig[*].DataSource.S3DataSource.S3Uri": "data and recipe keys (S3 keys)",
    # ModelTrainer has no switch for it: pipeline.definition._nova_step.
    "ProfilerConfig": "ours turns SageMaker Debugger's profiler off",
}


def _evaluate(value: Any, context: dict[str, Any]) -> Any:
    """A definition value with its pipeline expressions evaluated: parameters at their defaults,
    step properties from `context` (a step property the test does not know fails the test)."""
    if isinstance(value, dict) and len(value) == 1:
        (key, inner), = value.items()
        if key == "Get":
            if inner.startswith("Parameters."):
                return context["parameters"][inner.split(".", 1)[1]]
            if inner in context:
                return context[inner]
            raise AssertionError(f"the oracle test has no value for {inner}")
        if key == "Std:Join":
            return inner["On"].join(str(_evaluate(part, context)) for part in inner["Values"])
        if key == "Std:JsonGet":
            name = f"{inner['PropertyFile']['Get']}.{inner['Path']}"
            if name in context:
                return context[name]
            raise AssertionError(f"the oracle test has no value for {name}")
    if isinstance(value, dict):
        return {key: _evaluate(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [_evaluate(item, context) for item in value]
    return value


@dataclasses.dataclass
class Launched:
    """AWS's request, what AWS's launcher uploaded as the recipe, and the calls it made."""
    request: dict[str, Any]
    recipe: dict[str, Any]
    calls: set[str]


@pytest.fixture(scope="module")
def aws_launcher():
    """AWS's launcher on our recipe file: ModelTrainer.from_recipe under a PipelineSession, with
    moto serving the calls it makes (one moto account and one session for the module)."""
    from pipeline.sdk import offline_sdk, pipeline_session

    calls: set[str] = set()
    make_request = botocore.endpoint.Endpoint.make_request

    def recorded(self, operation_model, request_dict):
        calls.add(operation_model.name)
        return make_request(self, operation_model, request_dict)

    with mock_aws(), pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", SETTINGS.region)  # the SDK makes module-level clients on import
        patch.setattr(botocore.endpoint.Endpoint, "make_request", recorded)
        s3 = boto3.client("s3", region_name=SETTINGS.region)
        s3.create_bucket(Bucket=SETTINGS.bucket)
        with offline_sdk():
            from sagemaker.core.training.configs import Compute, StoppingCondition
            from sagemaker.mlops.workflow import TrainingStep
            from sagemaker.train import ModelTrainer

            session = pipeline_session(SETTINGS.region, SETTINGS.bucket)

            def launch(recipe_file: Path, image: str, instance_type: str, max_runtime: int, channels: list,
                       job_name: str) -> Launched:
                calls.clear()
                trainer = ModelTrainer.from_recipe(
                    training_recipe=str(recipe_file), training_image=image,
                    compute=Compute(instance_type=instance_type),  # the count: AWS's, from the recipe
                    stopping_condition=StoppingCondition(max_runtime_in_seconds=max_runtime),
                    input_data_config=channels, role=SETTINGS.role_arn, base_job_name=job_name,
                    sagemaker_session=session)
                request = TrainingStep(name="AWS", step_args=trainer.train()).arguments
                launcher_calls = set(calls)
                recipe_uri = next(c for c in request["InputDataConfig"] if c["ChannelName"] == "recipe")[
                    "DataSource"]["S3DataSource"]["S3Uri"]
                bucket, key = recipe_uri[len("s3://"):].split("/", 1)
                recipe = yaml.safe_load(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                return Launched(request=request, recipe=recipe, calls=launcher_calls)

            yield launch


def _aws_data_channels(method: str, datasets: dict[str, str]) -> list:
    """The data channels as AWS's own trainers make them: sagemaker-train's
    `_create_input_data_config(train, validation)` and `_convert_input_data_to_channels`, with
    "Converse" for Nova SFT/DPO data and "S3Prefix" for RLVR (RFT) (base_trainer.py)."""
    from sagemaker.train.common_utils.finetune_utils import _convert_input_data_to_channels, _create_input_data_config

    inputs = _create_input_data_config(datasets["train"], datasets.get("validation"))
    return _convert_input_data_to_channels(inputs, s3_data_type="S3Prefix" if method == "rft" else "Converse")


def _channels(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The channels, in order, but for their S3 URIs (ALLOWED)."""
    channels = json.loads(json.dumps(request["InputDataConfig"]))
    for channel in channels:
        del channel["DataSource"]["S3DataSource"]["S3Uri"]
    return channels


def _foreign_buckets(recipe: Any, path: str = "") -> list[str]:
    """Every s3:// value of the recipe that is not in the pipeline's bucket (empty is AWS's default)."""
    if isinstance(recipe, dict):
        return [found for key, value in recipe.items()
                for found in _foreign_buckets(value, f"{path}.{key}".lstrip("."))]
    if isinstance(recipe, str) and recipe.startswith("s3://") and not recipe.startswith(f"s3://{SETTINGS.bucket}/") \
            and not recipe.startswith("s3://customer-escrow-"):
        return [f"{path}: {recipe}"]
    return []


def assert_same_request(ours: dict[str, Any], aws: Launched, our_recipe: dict[str, Any], job: str) -> None:
    """Our step's request and recipe against AWS's, but for ALLOWED."""
    assert aws.calls <= LAUNCHER_CALLS, f"{job}: AWS's launcher made calls this test does not serve: {aws.calls}"
    request = aws.request
    assert set(ours) - {"ProfilerConfig"} == set(request), \
        f"{job}: request fields differ from AWS's: ours {sorted(ours)}, AWS's {sorted(request)}"
    assert ours["AlgorithmSpecification"] == request["AlgorithmSpecification"], f"{job}: AlgorithmSpecification"
    assert ours["HyperParameters"] == request["HyperParameters"], \
        f"{job}: HyperParameters differ from AWS's launcher's (sm_recipes/utils.py _get_args_from_nova_recipe)"
    assert _channels(ours) == _channels(request), \
        f"{job}: channels (names, types, modes; S3 URIs aside) differ from AWS's"
    assert ours["ResourceConfig"] == request["ResourceConfig"], \
        f"{job}: instance type/count or volume differs from AWS's (count: the recipe's run.replicas)"
    assert ours["StoppingCondition"] == request["StoppingCondition"], f"{job}: StoppingCondition"
    assert ours["OutputDataConfig"]["CompressionType"] == request["OutputDataConfig"]["CompressionType"]
    assert ours["RoleArn"] == request["RoleArn"]
    assert our_recipe == aws.recipe, \
        f"{job}: the recipe we upload differs from the one AWS's launcher uploads after resolving it (OmegaConf)"
    assert _foreign_buckets(our_recipe) == [], \
        f"{job}: the recipe names a bucket that is not the pipeline's (AWS's SMTJ templates default it to \"\")"


def _built(recipe_id: str):
    built = build_pipeline(dataclasses.replace(SETTINGS, recipe=recipe_id))
    definition = json.loads(built.definition)
    parameters = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    return {step["Name"]: step for step in definition["Steps"]}, parameters, built.uploads


def _render_training(steps: dict, parameters: dict, finqa: Path, output: Path) -> Path:
    """`steps.prepare` with the Prepare step's own container arguments, at the parameters' defaults."""
    arguments = _evaluate(steps[PREPARE]["Arguments"]["AppSpecification"]["ContainerArguments"],
                          {"parameters": parameters})
    assert arguments[0] == "steps.prepare"
    local = {"/opt/ml/processing/input/finqa": str(finqa), "/opt/ml/processing/output": str(output)}
    code = prepare_step.main([local.get(argument, argument) for argument in arguments[1:]])
    assert code == 0
    return output / "recipe" / "recipe.yaml"


@pytest.mark.parametrize("recipe_id", SUPPORTED)
def test_every_job_request_is_what_awss_launcher_sends(recipe_id, aws_launcher, sample_finqa, tmp_path, capsys):
    chosen = TRAINING_RECIPES[recipe_id]
    steps, parameters, uploads = _built(recipe_id)
    images = images_for(SETTINGS.region, chosen)
    context = {"parameters": parameters}

    # Fine-tuning.
    recipe_file = _render_training(steps, parameters, sample_finqa, tmp_path / "prepared")
    ours = _evaluate(steps[TRAIN]["Arguments"], context | {
        f"Steps.{PREPARE}.ProcessingOutputConfig.Outputs['{name}'].S3Output.S3Uri": f"s3://{SETTINGS.bucket}/p/{name}"
        for name in ("train", "validation", "recipe")} | {
        # DPO trains on the preference pairs MakePreferencePairs writes (train/train.jsonl, as SFT's data).
        "Steps.MakePreferencePairs.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri":
            f"s3://{SETTINGS.bucket}/p/train"})
    datasets = {"train": f"s3://{SETTINGS.bucket}/p/train/train.jsonl"}
    if chosen.method == "sft" and not chosen.model_type.startswith("amazon.nova-2"):
        # AWS's "Fine-tune Nova 2.0" page: "You cannot provide a validation dataset for SFT with
        # Nova 2.0". RFT: the pipeline has no validation data for the reward run.
        datasets["validation"] = f"s3://{SETTINGS.bucket}/p/validation/validation.jsonl"
    aws = aws_launcher(recipe_file, images.training, parameters["TrainingInstanceType"],
                      ours["StoppingCondition"]["MaxRuntimeInSeconds"],
                      _aws_data_channels(chosen.method, datasets), f"nova-finqa-{chosen.method}")
    assert_same_request(ours, aws, yaml.safe_load(recipe_file.read_text()), f"{recipe_id} {TRAIN}")

    # Evaluation of the fine-tuned checkpoint: the recipe steps.checkpoint renders from a manifest.
    training_output = tmp_path / "training"
    training_output.mkdir()
    (training_output / "manifest.json").write_text(json.dumps({"checkpoint_s3_bucket": CHECKPOINT_URI}))
    arguments = _evaluate(steps[CHECKPOINT]["Arguments"]["AppSpecification"]["ContainerArguments"], context)
    local = {"/opt/ml/processing/input/training": str(training_output),
             "/opt/ml/processing/output": str(tmp_path / "checkpoint")}
    assert checkpoint_step.main([local.get(argument, argument) for argument in arguments[1:]]) == 0
    evaluation_file = tmp_path / "checkpoint" / "recipe" / "recipe.yaml"
    eval_data = f"s3://{SETTINGS.bucket}/p/eval"
    for name, recipe_path, model in (
            (GENERATE_FINE_TUNED, evaluation_file, {f"Steps.{CHECKPOINT}.PropertyFiles.Checkpoint.checkpoint_s3_uri":
                                                    CHECKPOINT_URI}),
            (GENERATE_BASE, None, {})):
        step_context = context | model | {
            f"Steps.{PREPARE}.ProcessingOutputConfig.Outputs['eval'].S3Output.S3Uri": eval_data,
            f"Steps.{CHECKPOINT}.ProcessingOutputConfig.Outputs['recipe'].S3Output.S3Uri": "s3://x/recipe"}
        ours = _evaluate(steps[name]["Arguments"], step_context)
        if recipe_path is None:  # the base model's recipe: the artifact the pipeline uploads
            recipe_uri = next(c for c in ours["InputDataConfig"] if c["ChannelName"] == "recipe")[
                "DataSource"]["S3DataSource"]["S3Uri"]
            artifact = next(a for a in uploads if f"s3://{SETTINGS.bucket}/{a.key}".startswith(recipe_uri))
            recipe_path = tmp_path / "base" / "recipe.yaml"
            recipe_path.parent.mkdir()
            recipe_path.write_bytes(artifact.data)
        # AWS's evaluation pipelines read the data from a "train" channel of type S3Prefix
        # (sagemaker-train evaluate/pipeline_templates.py).
        from sagemaker.train.common_utils.finetune_utils import _create_input_data_config
        aws = aws_launcher(recipe_path, images.evaluation, parameters["EvaluationInstanceType"],
                          ours["StoppingCondition"]["MaxRuntimeInSeconds"], _create_input_data_config(eval_data),
                          "nova-finqa-eval")
        assert_same_request(ours, aws, yaml.safe_load(recipe_path.read_text()), f"{recipe_id} {name}")
    capsys.readouterr()


def test_the_supported_recipes_are_every_catalog_recipe_of_a_supported_method():
    assert SUPPORTED and {TRAINING_RECIPES[r].method for r in SUPPORTED} == set(SUPPORTED_METHODS)
    assert re.search("rft", " ".join(SUPPORTED)) and re.search("2_0.*sft", " ".join(SUPPORTED))


@pytest.mark.parametrize("recipe_id", sorted(TRAINING_RECIPES))
def test_our_interpolation_resolver_gives_omegaconfs_result(recipe_id):
    from omegaconf import OmegaConf

    from steps.catalog import resolve_interpolations

    template = TRAINING_RECIPES[recipe_id].template
    assert resolve_interpolations(dict(template)) == OmegaConf.to_container(OmegaConf.create(dict(template)),
                                                                           resolve=True)


@pytest.mark.parametrize("value", ["${training_config.max_steps}", "${oc.env:HOME}", "steps-${oc.select:a.b}",
                                   "${oc.select:a.b,3}"])
def test_an_interpolation_the_resolver_does_not_know_is_refused(value):
    from steps.catalog import RecipeError, resolve_interpolations

    with pytest.raises(RecipeError, match="cannot resolve"):
        resolve_interpolations({"a": {"b": 1}, "save_steps": value})


def test_prepare_by_hand_renders_and_prices_the_replicas_the_pipeline_trains_on(sample_finqa, tmp_path, capsys):
    """Run by hand without --replicas, the Nova 2 SFT recipe gets the Replicas parameter's default
    (the catalog's, one of AWS's 4/8/16/32), not the recipe file's 1, and so does the estimate."""
    recipe_id = "nova_lite_2_0_p5_gpu_lora_sft"
    assert prepare_step.main(["--input-dir", str(sample_finqa), "--output-dir", str(tmp_path),
                              "--recipe", recipe_id]) == 0
    capsys.readouterr()
    rendered = yaml.safe_load((tmp_path / "recipe" / "recipe.yaml").read_text())
    report = json.loads((tmp_path / "report" / "data_report.json").read_text())
    replicas = TRAINING_RECIPES[recipe_id].fields["replicas"]
    assert rendered["run"]["replicas"] == replicas.default == 4 and 4 in replicas.enum
    assert report["estimate"]["instance_count"] == 4
