"""The pipeline definition: the contract with SageMaker, tested as JSON."""
from __future__ import annotations

import dataclasses
import json
import re
import socket
import subprocess
import sys
import threading

import botocore.endpoint
import pytest

from pipeline.checks import all_steps, argument_problems, definition_problems, reference_problems
from pipeline.settings import Settings
from steps import catalog
from tests.conftest import PROJECT_ROOT

COMMITTED_DEFINITION = PROJECT_ROOT / "pipeline" / "definition.json"
NOVA_2_RECIPE = "nova_lite_2_0_p5_gpu_lora_sft"
RFT_RECIPE = "nova_lite_v2_smtj_p5_p5en_gpu_lora_rft"
DPO_RECIPE = "nova_micro_1_0_g5_g6_12x_gpu_lora_dpo"
# The README's example settings, for which pipeline/definition.json is committed (and, with
# --recipe nova_lite_2_0_p5_gpu_lora_sft, pipeline/definition-nova_lite_2_0_p5_gpu_lora_sft.json;
# with --recipe nova_lite_v2_smtj_p5_p5en_gpu_lora_rft and nova_micro_1_0_g5_g6_12x_gpu_lora_dpo, theirs).
EXAMPLE = Settings(region="us-east-1", role_arn="arn:aws:iam::111122223333:role/NovaFinQAPipelineRole",
                   bucket="amzn-s3-demo-bucket")
EXAMPLE_FLAGS = ["--region", EXAMPLE.region, "--role-arn", EXAMPLE.role_arn, "--bucket", EXAMPLE.bucket]
COMMITTED = {None: COMMITTED_DEFINITION,
             NOVA_2_RECIPE: PROJECT_ROOT / "pipeline" / f"definition-{NOVA_2_RECIPE}.json",
             RFT_RECIPE: PROJECT_ROOT / "pipeline" / f"definition-{RFT_RECIPE}.json",
             DPO_RECIPE: PROJECT_ROOT / "pipeline" / f"definition-{DPO_RECIPE}.json"}
REGIONS = {"us-east-1": "708977205387", "us-west-2": "176779409107", "ap-northeast-1": "878185805882"}


@pytest.fixture(scope="module")
def built():
    """The pipeline for the example settings, built once; any AWS call or network lookup fails the build."""
    from pipeline.definition import build_pipeline

    attempts = []

    def no_aws_call(self, operation_model, request_dict):
        attempts.append(operation_model.name)
        raise AssertionError(f"building the pipeline called AWS: {operation_model.name}")

    def no_lookup(host, *args, **kwargs):
        attempts.append(host)
        raise OSError(f"building the pipeline looked up {host}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.endpoint.Endpoint, "make_request", no_aws_call)
        patch.setattr(socket, "getaddrinfo", no_lookup)
        result = build_pipeline(EXAMPLE)
        # The SDK sends telemetry from background threads; give any such thread time to try.
        for thread in threading.enumerate():
            if thread.name == "sagemaker-telemetry":
                thread.join(timeout=10)
    assert attempts == []
    return result


@pytest.fixture(scope="module")
def definition(built):
    return json.loads(built.definition)


def steps_by_name(definition):
    return {step["Name"]: step for step in all_steps(definition["Steps"])}


def referenced_steps(step) -> set[str]:
    text = json.dumps(step["Arguments"])
    return {name for name in ("PrepareFinQAData", "FineTune", "FindCheckpoint", "GenerateFineTunedAnswers",
                              "GenerateBaseModelAnswers", "ScoreAnswers") if f"Steps.{name}." in text}


def _rebuild_command(recipe_id, path) -> str:
    recipe_flag = f" --recipe {recipe_id}" if recipe_id else ""
    return (f"python -m pipeline.upsert --dry-run {' '.join(EXAMPLE_FLAGS)}{recipe_flag} "
            f"--definition-out {path.relative_to(PROJECT_ROOT)}")


@pytest.mark.parametrize("recipe_id", list(COMMITTED), ids=lambda r: r or "default")
def test_committed_definition_is_what_the_code_builds(recipe_id):
    from pipeline.definition import build_pipeline

    settings = EXAMPLE if recipe_id is None else dataclasses.replace(EXAMPLE, recipe=recipe_id)
    path = COMMITTED[recipe_id]
    assert path.read_text() == build_pipeline(settings).definition, (
        f"{path.relative_to(PROJECT_ROOT)} is stale: run `{_rebuild_command(recipe_id, path)}` and review the diff")


def test_steps_and_types(definition):
    steps = steps_by_name(definition)
    assert {name: step["Type"] for name, step in steps.items()} == {
        "PrepareFinQAData": "Processing", "FineTune": "Training", "FindCheckpoint": "Processing",
        "GenerateFineTunedAnswers": "Training", "GenerateBaseModelAnswers": "Training",
        "ScoreAnswers": "Processing", "CheckAccuracy": "Condition", "RegisterModel": "RegisterModel",
        "AccuracyTooLow": "Fail"}
    assert all(step.get("DisplayName") for step in steps.values())


def test_edges(definition):
    steps = steps_by_name(definition)
    assert referenced_steps(steps["FineTune"]) == {"PrepareFinQAData"}
    assert referenced_steps(steps["FindCheckpoint"]) == {"FineTune"}
    assert referenced_steps(steps["GenerateFineTunedAnswers"]) == {"PrepareFinQAData", "FindCheckpoint"}
    # The base model's evaluation waits for no training: its cache hit does not depend on it.
    assert referenced_steps(steps["GenerateBaseModelAnswers"]) == {"PrepareFinQAData"}
    assert referenced_steps(steps["ScoreAnswers"]) == {"PrepareFinQAData", "GenerateFineTunedAnswers",
                                                       "GenerateBaseModelAnswers"}
    gate = steps["CheckAccuracy"]["Arguments"]
    assert [s["Name"] for s in gate["IfSteps"]] == ["RegisterModel"]
    assert [s["Name"] for s in gate["ElseSteps"]] == ["AccuracyTooLow"]
    assert referenced_steps(steps["RegisterModel"]) >= {"FineTune", "FindCheckpoint", "ScoreAnswers",
                                                        "PrepareFinQAData"}


def test_parameters_and_defaults(definition):
    parameters = {p["Name"]: (p["Type"], p["DefaultValue"]) for p in definition["Parameters"]}
    assert parameters == {
        "DataLocation": ("String", "s3://amzn-s3-demo-bucket/nova-finqa/data/finqa/"),
        "TrainingRecords": ("String", "all"),
        "EvaluationRecords": ("String", "all"),
        "Epochs": ("Integer", 2),
        "LearningRate": ("Float", 1e-05),
        "LoraAlpha": ("Integer", 128),
        "MaxLength": ("Integer", 8192),
        "GlobalBatchSize": ("Integer", 64),
        "TrainingInstanceType": ("String", "ml.g5.12xlarge"),
        "EvaluationInstanceType": ("String", "ml.g5.12xlarge"),
        "MaxTrainingCost": ("String", "0"),
        "AccuracyThreshold": ("Float", 0.5),
    }


def test_prepare_passes_every_recipe_parameter(definition):
    arguments = steps_by_name(definition)["PrepareFinQAData"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    flags = {arguments[i]: json.dumps(arguments[i + 1]) for i in range(1, len(arguments) - 1)
             if isinstance(arguments[i], str) and arguments[i].startswith("--")}
    for flag, parameter in [("--epochs", "Epochs"), ("--learning-rate", "LearningRate"), ("--lora-alpha", "LoraAlpha"),
                            ("--global-batch-size", "GlobalBatchSize"), ("--max-length", "MaxLength"),
                            ("--max-train-records", "TrainingRecords"), ("--max-eval-records", "EvaluationRecords"),
                            ("--accuracy-threshold", "AccuracyThreshold")]:
        assert f"Parameters.{parameter}" in flags[flag]
    assert arguments[0] == "steps.prepare"


def test_training_job(definition):
    train = steps_by_name(definition)["FineTune"]
    arguments = train["Arguments"]
    assert arguments["AlgorithmSpecification"]["TrainingImage"] == \
        "708977205387.dkr.ecr.us-east-1.amazonaws.com/nova-fine-tune-repo:SM-TJ-SFT-latest"
    assert arguments["ResourceConfig"]["InstanceType"] == {"Get": "Parameters.TrainingInstanceType"}
    assert arguments["StoppingCondition"]["MaxRuntimeInSeconds"] >= 432_000
    assert arguments["ProfilerConfig"] == {"DisableProfiler": True}
    assert "DebugHookConfig" not in arguments
    assert arguments["HyperParameters"] == {"base_model": "nova-lite/prod",
                                            "sagemaker_recipe_local_path": "/opt/ml/input/data/recipe/recipe.yaml"}
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"] for c in arguments["InputDataConfig"]}
    assert set(channels) == {"train", "validation", "recipe"}
    for name in ("train", "validation"):
        assert channels[name]["S3DataType"] == "Converse"
        assert channels[name]["S3Uri"] == {"Std:Join": {"On": "/", "Values": [
            {"Get": f"Steps.PrepareFinQAData.ProcessingOutputConfig.Outputs['{name}'].S3Output.S3Uri"},
            f"{name}.jsonl"]}}
    assert channels["recipe"]["S3DataType"] == "S3Prefix"
    assert channels["recipe"]["S3Uri"] == {
        "Get": "Steps.PrepareFinQAData.ProcessingOutputConfig.Outputs['recipe'].S3Output.S3Uri"}


def test_evaluation_jobs(definition, built):
    steps = steps_by_name(definition)
    tuned, base = steps["GenerateFineTunedAnswers"]["Arguments"], steps["GenerateBaseModelAnswers"]["Arguments"]
    for job in (tuned, base):
        assert job["AlgorithmSpecification"]["TrainingImage"] == \
            "708977205387.dkr.ecr.us-east-1.amazonaws.com/nova-evaluation-repo:SM-TJ-Eval-V2-latest"
        assert job["ResourceConfig"]["InstanceType"] == {"Get": "Parameters.EvaluationInstanceType"}
        channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]}
        assert channels["train"] == {
            "Get": "Steps.PrepareFinQAData.ProcessingOutputConfig.Outputs['eval'].S3Output.S3Uri"}
    assert tuned["HyperParameters"]["base_model_location"] == {
        "Std:JsonGet": {"PropertyFile": {"Get": "Steps.FindCheckpoint.PropertyFiles.Checkpoint"},
                        "Path": "checkpoint_s3_uri"}}
    assert base["HyperParameters"]["base_model"] == "nova-lite/prod"
    base_recipe = next(c for c in base["InputDataConfig"] if c["ChannelName"] == "recipe")
    recipe_artifact = built.uploads[1]
    assert base_recipe["DataSource"]["S3DataSource"]["S3Uri"] == \
        f"s3://amzn-s3-demo-bucket/{recipe_artifact.key.rsplit('/', 1)[0]}/"
    assert recipe_artifact.digest in recipe_artifact.key


def test_processing_steps_run_their_module_from_the_content_addressed_code(definition, built):
    code = built.uploads[0]
    assert code.key == f"nova-finqa/code/{code.digest}/steps.tar.gz"
    modules = {}
    for name in ("PrepareFinQAData", "FindCheckpoint", "ScoreAnswers"):
        arguments = steps_by_name(definition)[name]["Arguments"]
        app = arguments["AppSpecification"]
        assert app["ImageUri"] == "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
        assert app["ContainerEntrypoint"][:2] == ["/bin/sh", "-c"]
        modules[name] = app["ContainerArguments"][0]
        code_input = next(i for i in arguments["ProcessingInputs"] if i["InputName"] == "code")
        assert code_input["S3Input"]["S3Uri"] == f"s3://amzn-s3-demo-bucket/{code.key}"
    assert modules == {"PrepareFinQAData": "steps.prepare", "FindCheckpoint": "steps.checkpoint",
                       "ScoreAnswers": "steps.evaluate"}


def test_caching_and_retries_on_every_job_step(definition):
    for step in steps_by_name(definition).values():
        if step["Type"] in ("Processing", "Training"):
            assert step["CacheConfig"]["Enabled"] is True, step["Name"]
            kinds = {kind for policy in step["RetryPolicies"] for kind in policy["ExceptionType"]}
            assert {"SageMaker.CAPACITY_ERROR", "Step.THROTTLING"} <= kinds, step["Name"]


def test_gate_reads_the_accuracy_steps_evaluate_writes(definition):
    from pipeline.definition import ACCURACY_JSON_PATH, BASELINE_ACCURACY_JSON_PATH

    steps = steps_by_name(definition)
    score = steps["ScoreAnswers"]
    assert score["PropertyFiles"] == [{"PropertyFileName": "Evaluation", "OutputName": "evaluation",
                                       "FilePath": "evaluation.json"}]
    output_dir = next(o["S3Output"]["LocalPath"] for o in score["Arguments"]["ProcessingOutputConfig"]["Outputs"]
                      if o["OutputName"] == "evaluation")
    arguments = score["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--output-dir") + 1] == output_dir
    conditions = steps["CheckAccuracy"]["Arguments"]["Conditions"]
    assert [c["Type"] for c in conditions] == ["GreaterThanOrEqualTo", "GreaterThanOrEqualTo"]
    assert all(c["LeftValue"]["Std:JsonGet"]["Path"] == ACCURACY_JSON_PATH == "metrics.accuracy.value"
               for c in conditions)
    assert conditions[0]["RightValue"] == {"Get": "Parameters.AccuracyThreshold"}
    assert conditions[1]["RightValue"]["Std:JsonGet"]["Path"] == BASELINE_ACCURACY_JSON_PATH
    message = json.dumps(steps["AccuracyTooLow"]["Arguments"]["ErrorMessage"])
    assert ACCURACY_JSON_PATH in message and "Parameters.AccuracyThreshold" in message


def test_registration(definition):
    register = steps_by_name(definition)["RegisterModel"]["Arguments"]
    assert register["ModelPackageGroupName"] == "nova-finqa"
    assert register["ModelApprovalStatus"] == "PendingManualApproval"  # a person approves (docs/security.md)
    statistics = register["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics["ContentType"] == "application/json"
    assert "Steps.ScoreAnswers.ProcessingOutputConfig.Outputs['evaluation']" in json.dumps(statistics["S3Uri"])
    metadata = register["CustomerMetadataProperties"]
    assert set(metadata) == {"recipe", "base_model", "technique", "checkpoint_s3_uri", "training_job", "train_records",
                             "validation_records", "eval_records", "eval_data_s3_uri", "epochs", "learning_rate",
                             "lora_alpha", "max_length", "global_batch_size", "accuracy", "baseline_accuracy",
                             "accuracy_threshold", "estimated_training_hours", "estimated_training_cost_usd",
                             "estimated_evaluation_cost_usd",
                             "training_price_per_hour_usd", "evaluation_price_per_hour_usd", "training_instance_type",
                             "training_instance_count", "training_billable_seconds", "evaluation_instance_type",
                             "pipeline_execution_arn"}
    assert "splits.train.written" in json.dumps(metadata["train_records"])
    assert metadata["technique"] == "SFT"
    # The keys the operator scripts read: the Bedrock import and the report.
    from scripts.import_to_bedrock import CHECKPOINT_KEY, EVAL_DATA_KEY

    assert {CHECKPOINT_KEY, EVAL_DATA_KEY} <= set(metadata)
    # Every key written is named in steps.package_metadata, or is a recipe value's (steps.recipes).
    from steps import package_metadata
    from steps.recipes import RECIPE_PARAMETERS

    named = {value for name, value in vars(package_metadata).items() if name.isupper() and isinstance(value, str)}
    assert set(metadata) <= named | {parameter.dest for parameter in RECIPE_PARAMETERS.values()}
    specification = register["InferenceSpecification"]
    [container] = specification["Containers"]
    assert container["Image"] == catalog.INFERENCE_IMAGES["us-east-1"]
    # The checkpoint itself, uncompressed, as AWS's Nova inference guide gives it to SageMaker;
    # not the training job's output.tar.gz, which holds only manifest.json.
    assert "ModelDataUrl" not in container
    source = container["ModelDataSource"]["S3DataSource"]
    assert (source["S3DataType"], source["CompressionType"]) == ("S3Prefix", "None")
    assert source["S3Uri"]["Std:JsonGet"] == {"PropertyFile": {"Get": "Steps.FindCheckpoint.PropertyFiles.Checkpoint"},
                                              "Path": "checkpoint_s3_prefix"}
    from pipeline.bedrock_rules import SAGEMAKER_INFERENCE_INSTANCE_TYPES

    assert specification["SupportedRealtimeInferenceInstanceTypes"] == \
        ["ml.g6.12xlarge", "ml.g6.24xlarge", "ml.g6.48xlarge", "ml.p5.48xlarge"] == \
        list(SAGEMAKER_INFERENCE_INSTANCE_TYPES["amazon.nova-lite-v1:0:300k"])


def test_definition_checks_pass(definition, built):
    assert definition_problems(built.definition) == []


def test_checks_catch_a_broken_argument(definition):
    broken = json.loads(json.dumps(definition))
    steps = steps_by_name(broken)
    steps["FineTune"]["Arguments"]["ResourceConfig"]["InstanceCount"] = "one"
    steps["PrepareFinQAData"]["Arguments"]["AppSpecification"]["EntryPoint"] = ["python3"]
    steps["RegisterModel"]["Arguments"]["CustomerMetadataProperties"]["epochs"] = 2
    problems = argument_problems(broken)
    assert len(problems) == 3
    assert "PrepareFinQAData (CreateProcessingJob)" in problems[0] and '"EntryPoint"' in problems[0]
    assert "FineTune (CreateTrainingJob)" in problems[1] and "ResourceConfig.InstanceCount" in problems[1]
    assert "RegisterModel (CreateModelPackage)" in problems[2] and "CustomerMetadataProperties.epochs" in problems[2]


def test_checks_catch_dangling_references_and_unused_parameters(definition):
    # Every use of TrainingInstanceType (the job, the estimate, the package) renamed to one that does not exist.
    broken = json.loads(json.dumps(definition).replace('"Parameters.TrainingInstanceType"',
                                                       '"Parameters.InstanceType"'))
    broken["Parameters"].append({"Name": "Unused", "Type": "String", "DefaultValue": "x"})
    steps = steps_by_name(broken)
    steps["FindCheckpoint"]["Arguments"]["ProcessingInputs"][1]["S3Input"]["S3Uri"] = {"Get": "Steps.Train.X"}
    steps["GenerateFineTunedAnswers"]["Arguments"]["HyperParameters"]["base_model_location"]["Std:JsonGet"][
        "PropertyFile"] = {"Get": "Steps.FindCheckpoint.PropertyFiles.Manifest"}
    problems = reference_problems(broken)
    assert any("Steps.Train.X names no step" in p for p in problems)
    assert any("Parameters.InstanceType names no parameter" in p for p in problems)
    assert any("no property file of FindCheckpoint" in p for p in problems)
    assert "parameter Unused is used by no step" in problems
    assert "parameter TrainingInstanceType is used by no step" in problems


# `python -m pipeline.upsert` with every network lookup refused and reported.
NETWORK_GUARDED_UPSERT = """
import runpy, socket, sys
def refuse(host, *args, **kwargs):
    sys.stderr.write(f"NETWORK LOOKUP {host}\\n")
    raise OSError("no network in a dry run")
socket.getaddrinfo = refuse
sys.argv[0] = "pipeline.upsert"
runpy.run_module("pipeline.upsert", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("recipe_id", list(COMMITTED), ids=lambda r: r or "default")
@pytest.mark.integration
def test_dry_run_is_byte_identical_across_processes_and_needs_no_credentials_or_network(tmp_path, recipe_id):
    # No credentials, no config, no region variable: what a fresh machine has.
    bare = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    command = [sys.executable, "-c", NETWORK_GUARDED_UPSERT, "--dry-run", *EXAMPLE_FLAGS,
               *(["--recipe", recipe_id] if recipe_id else [])]
    first = subprocess.Popen(command, cwd=PROJECT_ROOT, env=bare, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    second = subprocess.Popen([*command, "--definition-out", str(tmp_path / "definition.json")], cwd=PROJECT_ROOT,
                              env=bare, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    (first_out, first_err), (_, second_err) = first.communicate(timeout=120), second.communicate(timeout=120)
    assert first.returncode == 0, first_err
    assert second.returncode == 0, second_err
    assert "NETWORK LOOKUP" not in first_err + second_err
    assert first_out == (tmp_path / "definition.json").read_text() == COMMITTED[recipe_id].read_text()
    assert "no AWS call" in first_err


def test_images_follow_the_region():
    from pipeline.definition import build_pipeline

    definition = json.loads(build_pipeline(Settings(region="us-west-2", role_arn=EXAMPLE.role_arn,
                                                    bucket=EXAMPLE.bucket)).definition)
    images = {step["Name"]: json.dumps(step["Arguments"]) for step in steps_by_name(definition).values()}
    assert "176779409107.dkr.ecr.us-west-2.amazonaws.com/nova-fine-tune-repo:SM-TJ-SFT-latest" in images["FineTune"]
    assert "176779409107.dkr.ecr.us-west-2.amazonaws.com/nova-evaluation-repo" in images["GenerateBaseModelAnswers"]
    assert "246618743249.dkr.ecr.us-west-2.amazonaws.com/sagemaker-scikit-learn" in images["PrepareFinQAData"]
    assert "176779409107.dkr.ecr.us-west-2.amazonaws.com/nova-inference-repo" in images["RegisterModel"]
    assert "us-east-1" not in json.dumps(definition)


def test_region_without_nova_images_is_refused(capsys, monkeypatch):
    from pipeline.upsert import main

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # main() sets it to the settings' region

    assert main(["--dry-run", "--region", "eu-central-1", "--role-arn", EXAMPLE.role_arn,
                 "--bucket", EXAMPLE.bucket]) == 2
    error = capsys.readouterr().err
    assert "--region eu-central-1" in error and "us-east-1" in error


def test_prepared_outputs_are_keyed_by_what_determines_their_content(definition):
    """What lets a cached base-model evaluation survive a change of learning rate: its data's key."""
    outputs = {o["OutputName"]: json.dumps(o["S3Output"]["S3Uri"]) for o in
               steps_by_name(definition)["PrepareFinQAData"]["Arguments"]["ProcessingOutputConfig"]["Outputs"]}

    def parameters(text):
        return set(re.findall(r"Parameters\.(\w+)", text))

    assert parameters(outputs["eval"]) == {"EvaluationRecords", "DataLocation"}
    assert parameters(outputs["train"]) == parameters(outputs["validation"]) == {
        "TrainingRecords", "MaxLength", "DataLocation"}
    assert parameters(outputs["recipe"]) == {"Epochs", "LearningRate", "LoraAlpha", "MaxLength", "GlobalBatchSize"}
    assert all("nova_lite_1_0_g5_g6_12x_gpu_lora_sft" in outputs[name] for name in ("train", "eval", "recipe"))
    assert "Execution.PipelineExecutionId" in outputs["report"]
    base = json.dumps(steps_by_name(definition)["GenerateBaseModelAnswers"]["Arguments"])
    # Only the machine it runs on, of all the parameters: a new learning rate leaves it cached.
    assert parameters(base) == {"EvaluationInstanceType"} and "Outputs['eval']" in base
    assert "Outputs['recipe']" not in base


SFT_RECIPES = sorted(r for r, entry in catalog.TRAINING_RECIPES.items() if entry.method == "sft")


@pytest.fixture(scope="module")
def every_recipe_and_region():
    """A definition per supported recipe and Nova region, built once for the tests below."""
    from pipeline.definition import build_pipeline

    return {(recipe_id, region): json.loads(build_pipeline(dataclasses.replace(
        EXAMPLE, region=region, recipe=recipe_id)).definition) for recipe_id in SFT_RECIPES for region in REGIONS}


@pytest.mark.parametrize("recipe_id", SFT_RECIPES)
def test_every_recipe_builds_a_checked_definition_from_the_catalog(every_recipe_and_region, recipe_id):
    chosen = catalog.recipe(recipe_id)
    for region, account in REGIONS.items():
        definition = every_recipe_and_region[(recipe_id, region)]
        assert definition_problems(json.dumps(definition)) == []  # botocore's model of each job's API call
        steps = steps_by_name(definition)
        train = steps["FineTune"]["Arguments"]
        assert train["AlgorithmSpecification"]["TrainingImage"] == chosen.image(region)
        assert chosen.image(region).startswith(f"{account}.dkr.ecr.{region}.amazonaws.com/nova-fine-tune-repo:")
        for name in ("GenerateFineTunedAnswers", "GenerateBaseModelAnswers"):
            assert steps[name]["Arguments"]["AlgorithmSpecification"]["TrainingImage"] == \
                f"{account}.dkr.ecr.{region}.amazonaws.com/nova-evaluation-repo:SM-TJ-Eval-V2-latest"
        other_regions = set(REGIONS) - {region}
        assert not any(other in json.dumps(definition) for other in other_regions)
    definition = every_recipe_and_region[(recipe_id, "us-east-1")]
    parameters = {p["Name"]: p for p in definition["Parameters"]}
    assert parameters["TrainingInstanceType"]["EnumValues"] == list(chosen.instance_types)
    assert parameters["TrainingInstanceType"]["DefaultValue"] == chosen.instance_types[0]
    assert parameters["EvaluationInstanceType"]["EnumValues"] == list(chosen.evaluation.instance_types)
    assert parameters["EvaluationInstanceType"]["DefaultValue"] in chosen.evaluation.instance_types
    assert ("LoraAlpha" in parameters) is (chosen.peft == "lora")
    for name, field in (("LearningRate", "learning_rate"), ("MaxLength", "max_length"),
                        ("GlobalBatchSize", "global_batch_size")):
        assert parameters[name]["DefaultValue"] == chosen.fields[field].default
    steps = steps_by_name(definition)
    replicas = chosen.fields["replicas"]
    count = steps["FineTune"]["Arguments"]["ResourceConfig"]["InstanceCount"]
    if len(replicas.enum) > 1:
        assert parameters["Replicas"]["DefaultValue"] == replicas.default
        assert count == {"Get": "Parameters.Replicas"}
    else:
        assert "Replicas" not in parameters and count == replicas.default
    arguments = steps["PrepareFinQAData"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--recipe") + 1] == recipe_id
    checkpoint = steps["FindCheckpoint"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert checkpoint[checkpoint.index("--recipe") + 1] == recipe_id
    register = steps["RegisterModel"]["Arguments"]
    assert (register["CustomerMetadataProperties"]["recipe"], register["CustomerMetadataProperties"]["base_model"]) \
        == (recipe_id, chosen.base_model)
    from pipeline.bedrock_rules import sagemaker_inference_instance_types

    assert register["InferenceSpecification"]["SupportedRealtimeInferenceInstanceTypes"] == \
        list(sagemaker_inference_instance_types(chosen))


def test_nova_2_recipe_key_follows_the_records_its_max_steps_come_from(every_recipe_and_region):
    steps = steps_by_name(every_recipe_and_region[(NOVA_2_RECIPE, "us-east-1")])
    outputs = {o["OutputName"]: json.dumps(o["S3Output"]["S3Uri"]) for o in
               steps["PrepareFinQAData"]["Arguments"]["ProcessingOutputConfig"]["Outputs"]}
    assert set(re.findall(r"Parameters\.(\w+)", outputs["recipe"])) == {
        "Epochs", "LearningRate", "LoraAlpha", "MaxLength", "GlobalBatchSize", "Replicas", "TrainingRecords",
        "DataLocation"}


def test_an_unknown_recipe_is_refused_before_the_sdk_loads(capsys):
    from pipeline.upsert import main

    assert main(["--dry-run", *EXAMPLE_FLAGS, "--recipe", "nova_lite_lora_sft"]) == 2
    error = capsys.readouterr().err
    assert "--recipe 'nova_lite_lora_sft' is not a Nova recipe" in error
    assert "nova_lite_1_0_g5_g6_12x_gpu_lora_sft" in error
