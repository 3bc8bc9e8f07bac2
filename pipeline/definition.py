"""The SageMaker Pipeline, built from the settings by `build_pipeline`, with no AWS call.

    PrepareFinQAData ─> FineTune ─> FindCheckpoint ─> GenerateFineTunedAnswers ─┐
          │                                                                     ├─> ScoreAnswers ─> CheckAccuracy ─┐
          └────────────────> GenerateBaseModelAnswers ──────────────────────────┘                                  │
                                                                                            RegisterModel <─ pass ─┤
                                                                                           AccuracyTooLow <─ fail ─┘

A DPO recipe puts two stages before FineTune: the model answers the sampled training questions
(GenerateTrainingAnswers, a Nova evaluation job whose inputs do not change between executions,
so a cache hit after the first) and MakePreferencePairs turns its wrong answers into DPO pairs
(gold reply preferred, its own reply not), which FineTune trains on:

    PrepareFinQAData ──> GenerateTrainingAnswers ──> MakePreferencePairs ──> FineTune ──> ... (as above)

With a source model package (SFT -> DPO, pipeline.source_model) training starts from its
checkpoint, and the training answers are that model's.

One function per stage below, in that order. What depends on the recipe (images, instance
types, the recipe's fields and defaults, the evaluation recipe) comes from `steps.catalog`;
the Studio parameters are declared in `pipeline.parameters`.

Where a job writes decides what the next job's cache can reuse: SageMaker keys a job step's
cache on its image, arguments, hyperparameters and input locations (not its outputs). So
prepared data and the training recipe go to keys built from exactly what determines their
content (code digest, recipe, data location, record counts, recipe values): re-running with a
new learning rate re-trains, but the base model's evaluation, whose inputs did not move, is a
cache hit. Per-execution results (report, checkpoint, scores) go under the execution id and
are always read through the producing step's properties, which a cache hit carries over.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from pipeline.artifacts import Artifact, base_model_recipe_artifacts, code_artifact, source_model_recipe_artifact
from pipeline.bedrock_rules import sagemaker_inference_instance_types
from pipeline.images import PROCESSING_INSTANCE_TYPE, Images, check_region, images_for
from pipeline.parameters import Parameters, declare
from pipeline.reward_function import function_arn, function_name
from pipeline.sdk import offline_sdk, pipeline_session
from pipeline.settings import Settings
from pipeline.source_model import SourceModel
from steps import package_metadata as keys
from steps.catalog import RecipeError, TrainingRecipe, recipe
from steps.estimate import SERVERLESS
from steps.open_weights_models import pipeline_is_open_weights

# Step names, as Studio shows them.
PREPARE = "PrepareFinQAData"
TRAIN = "FineTune"
CHECKPOINT = "FindCheckpoint"
GENERATE_FINE_TUNED = "GenerateFineTunedAnswers"
GENERATE_BASE = "GenerateBaseModelAnswers"
GENERATE_TRAINING = "GenerateTrainingAnswers"
PREFERENCES = "MakePreferencePairs"
SCORE = "ScoreAnswers"
OPEN_WEIGHTS_EVAL = "eval_open_weights"
"""The preparation step's output with an open model's evaluation set (steps.prepare)."""
OPEN_WEIGHTS_PROMPTS = "prompts_open_weights"
"""For open-weights DPO: the training questions in that layout, for the model to answer."""
GATE = "CheckAccuracy"
REGISTER = "RegisterModel"
FAIL = "AccuracyTooLow"

# What `steps.evaluate` writes into evaluation.json; the gate reads these paths. The primary
# metric is named on the command line so that the base model's figure sits at a known path.
PRIMARY_METRIC = "execution_accuracy"
ACCURACY_JSON_PATH = "metrics.accuracy.value"
BASELINE_ACCURACY_JSON_PATH = f"baseline.metrics.{PRIMARY_METRIC}.value"

PROCESSING = "/opt/ml/processing"
CODE_INPUT_DIR = f"{PROCESSING}/input/code"
RECIPE_IN_CONTAINER = "/opt/ml/input/data/recipe/recipe.yaml"
# The processing image has Python but not our code: check the archive's SHA-256 against the one
# the definition was built with (the entrypoint's $1; a different archive at that key is refused,
# not run; $P/input/code is CODE_INPUT_DIR), unpack it and run the step's module with the
# container's arguments. SageMaker takes at most 256 characters per entrypoint item (botocore's
# model; pipeline/checks.py checks it).
ENTRY_SCRIPT = (
    f'set -e; P={PROCESSING}; A=$P/input/code/steps.tar.gz; C=$P/code; echo "$1  $A" | sha256sum -c --status || '
    '{ echo "$A: SHA-256 is not $1; not run" >&2; exit 1; }; shift; '
    'mkdir -p $C; tar -xzf $A -C $C; PYTHONPATH=$C exec python3 -m "$@"'
)


def entrypoint(code_digest: str) -> list[str]:
    return ["/bin/sh", "-c", ENTRY_SCRIPT, "nova-finqa-step", code_digest]


TRAINING_MAX_RUNTIME_SECONDS = 432_000
EVALUATION_MAX_RUNTIME_SECONDS = 86_400
CACHE_EXPIRY = "P90D"

# The recipe methods this pipeline builds a training step for.
SUPPORTED_METHODS = ("sft", "rft", "dpo")

# The sampler's seed is fixed here rather than offered in Studio: the same records for the same
# parameters is what lets cached steps be reused across executions.
SAMPLING_SEED = "42"

# The evaluation data's file, whose URI the package metadata records for the Bedrock smoke test.
EVAL_DATA_FILE = "gen_qa.jsonl"


@dataclass(frozen=True)
class BuiltPipeline:
    pipeline: object
    definition: str
    uploads: tuple[Artifact, ...]


@dataclass(frozen=True)
class _Build:
    """What every stage reads: the settings, the recipe, its images, the parameters, the SDK session."""
    settings: Settings
    recipe: TrainingRecipe
    images: Images
    parameters: Parameters
    session: object
    code: Artifact
    base_recipes: tuple[Artifact, ...]
    source: SourceModel | None = None
    source_recipe: Artifact | None = None

    @property
    def root(self) -> str:
        return self.settings.s3_root

    @property
    def technique(self) -> str:
        """SFT, DPO, RFT, or "SFT then DPO" (and so on) when training starts from a package's checkpoint."""
        return self.recipe.method.upper() if self.source is None else self.source.technique_after(self.recipe)


def canonical_json(definition: str) -> str:
    """The definition as reviewed and deployed: sorted keys, indented, so a change reads as a diff."""
    return json.dumps(json.loads(definition), indent=2, sort_keys=True) + "\n"


def build_pipeline(settings: Settings, source: SourceModel | None = None) -> BuiltPipeline:
    """The pipeline for these settings, its canonical definition, and the artifacts it reads.

    `source`: the approved package whose checkpoint training starts from (resolved by
    pipeline.source_model at upsert); None trains the base model."""
    if settings.serverless:
        from pipeline.serverless import build_serverless_pipeline

        return build_serverless_pipeline(settings)
    chosen = recipe(settings.recipe)
    if chosen.method not in SUPPORTED_METHODS:
        raise RecipeError(f"--recipe {chosen.id}: a {chosen.method.upper()} recipe; this pipeline trains with "
                          f"{', '.join(m.upper() for m in SUPPORTED_METHODS)} recipes")
    check_region(settings.region, chosen)  # an unsupported region fails before the SDK's seconds of import
    with offline_sdk():
        build = _Build(settings=settings, recipe=chosen, images=images_for(settings.region, chosen),
                       parameters=declare(chosen, f"{settings.s3_root}/data/finqa/"),
                       session=pipeline_session(settings.region, settings.bucket),
                       code=code_artifact(settings.prefix),
                       base_recipes=base_model_recipe_artifacts(settings.prefix, chosen.id),
                       source=source,
                       source_recipe=None if source is None else source_model_recipe_artifact(
                           settings.prefix, chosen.id, source.checkpoint))
        return _assemble(build)


def _assemble(build: _Build) -> BuiltPipeline:
    from sagemaker.mlops.workflow import Pipeline

    prepare = _prepare(build)
    preference_steps, preferences = [], None
    if build.recipe.method == "dpo":
        generate_training = _generate_training_answers(build, prepare)
        preferences = _make_preferences(build, prepare, generate_training)
        preference_steps = [generate_training, preferences]
    train = _train(build, prepare, preferences)
    checkpoint = _find_checkpoint(build, train)
    generate_fine_tuned = _generate(build, prepare, GENERATE_FINE_TUNED, checkpoint)
    generate_base = _generate(build, prepare, GENERATE_BASE, None)
    score = _score(build, prepare, train, generate_fine_tuned, generate_base,
                   preference_steps[0] if preference_steps else None)
    gate = _gate(build, score, _register(build, prepare, train, checkpoint, score, preferences))
    pipeline = Pipeline(name=build.settings.pipeline_name, parameters=build.parameters.all,
                        steps=[prepare, *preference_steps, train, checkpoint, generate_fine_tuned, generate_base,
                               score, gate],
                        pipeline_experiment_config=None, sagemaker_session=build.session)
    uploads = (build.code, *build.base_recipes, *([build.source_recipe] if build.source_recipe else []))
    return BuiltPipeline(pipeline=pipeline, definition=canonical_json(pipeline.definition()), uploads=uploads)


# Shared pieces of the stages.

def _cache():
    from sagemaker.mlops.workflow import CacheConfig

    return CacheConfig(enable_caching=True, expire_after=CACHE_EXPIRY)


def _api_retry():
    from sagemaker.mlops.workflow.retry import StepExceptionTypeEnum, StepRetryPolicy

    return StepRetryPolicy(exception_types=[StepExceptionTypeEnum.THROTTLING, StepExceptionTypeEnum.SERVICE_FAULT],
                           interval_seconds=30, backoff_rate=2.0, max_attempts=5)


def _job_retries() -> list:
    from sagemaker.mlops.workflow.retry import SageMakerJobExceptionTypeEnum, SageMakerJobStepRetryPolicy

    # GPU capacity comes and goes: wait minutes, not seconds, between attempts.
    return [SageMakerJobStepRetryPolicy(
        exception_types=[SageMakerJobExceptionTypeEnum.CAPACITY_ERROR, SageMakerJobExceptionTypeEnum.RESOURCE_LIMIT,
                         SageMakerJobExceptionTypeEnum.INTERNAL_ERROR],
        interval_seconds=300, backoff_rate=2.0, max_attempts=5), _api_retry()]


def _execution_path(build: _Build, *parts: str):
    from sagemaker.core.workflow import ExecutionVariables, Join

    return Join(on="/", values=[build.root, "executions", ExecutionVariables.PIPELINE_EXECUTION_ID, *parts])


def _input(name: str, source, local_path: str):
    from sagemaker.core.shapes import ProcessingInput, ProcessingS3Input

    return ProcessingInput(input_name=name, s3_input=ProcessingS3Input(
        s3_uri=source, local_path=local_path, s3_data_type="S3Prefix", s3_input_mode="File"))


def _output(name: str, destination, local_path: str):
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output

    return ProcessingOutput(output_name=name, s3_output=ProcessingS3Output(
        s3_uri=destination, local_path=local_path, s3_upload_mode="EndOfJob"))


def _processing(build: _Build, name: str, job_name: str, display_name: str, description: str, inputs: list,
                outputs: list, arguments: list, property_files: list):
    """A step that runs one `steps.<module>` on the processing image, with the code archive as its first input."""
    from sagemaker.core.processing import Processor
    from sagemaker.mlops.workflow import ProcessingStep

    processor = Processor(role=build.settings.role_arn, image_uri=build.images.processing, instance_count=1,
                          instance_type=PROCESSING_INSTANCE_TYPE, entrypoint=entrypoint(build.code.digest),
                          base_job_name=job_name,
                          sagemaker_session=build.session)
    code = _input("code", f"s3://{build.settings.bucket}/{build.code.key}", CODE_INPUT_DIR)
    return ProcessingStep(name=name, display_name=display_name, description=description,
                          step_args=processor.run(inputs=[code, *inputs], outputs=outputs, arguments=arguments),
                          property_files=property_files, cache_config=_cache(), retry_policies=_job_retries())


def _mlflow_run(build: _Build) -> dict | None:
    """Where the jobs log, with --mlflow-tracking-arn: experiment = the pipeline, run = the execution."""
    from sagemaker.core.workflow import ExecutionVariables

    if not build.settings.mlflow_tracking_arn:
        return None
    return {"MlflowResourceArn": build.settings.mlflow_tracking_arn,
            "MlflowExperimentName": build.settings.pipeline_name,
            "MlflowRunName": ExecutionVariables.PIPELINE_EXECUTION_ID}


def _nova_step(build: _Build, **kwargs):
    """A training step whose job runs without SageMaker Debugger's profiler (ModelTrainer has no switch)
    and, with --mlflow-tracking-arn, logs to the execution's MLflow run (CreateTrainingJob's
    MlflowConfig; ModelTrainer has no field for it either)."""
    from sagemaker.mlops.workflow import TrainingStep

    mlflow = _mlflow_run(build)

    class NovaTrainingStep(TrainingStep):
        @property
        def arguments(self):
            request = super().arguments
            request["ProfilerConfig"] = {"DisableProfiler": True}
            if mlflow is not None:
                request["MlflowConfig"] = mlflow
            return request

    return NovaTrainingStep(**kwargs, cache_config=_cache(), retry_policies=_job_retries())


def _nova_job(build: _Build, job_name: str, image: str, instance_type, instance_count, max_runtime: int,
              hyperparameters: dict, channels: dict, output: str):
    """The arguments of a Nova recipe job (training or evaluation), its recipe delivered as the `recipe` channel."""
    from sagemaker.core.training.configs import Compute, InputData, OutputDataConfig, StoppingCondition
    from sagemaker.train import ModelTrainer

    trainer = ModelTrainer(
        sagemaker_session=build.session, role=build.settings.role_arn, base_job_name=job_name, training_image=image,
        compute=Compute(instance_type=instance_type, instance_count=instance_count),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=max_runtime),
        output_data_config=OutputDataConfig(s3_output_path=f"{build.root}/{output}"),
        hyperparameters={**hyperparameters, "sagemaker_recipe_local_path": RECIPE_IN_CONTAINER})
    return trainer.train(input_data_config=[InputData(channel_name=name, data_source=source)
                                            for name, source in channels.items()], wait=False, logs=False)


def _job_output(step, *parts: str):
    from sagemaker.core.workflow import Join

    return Join(on="/", values=[step.properties.OutputDataConfig.S3OutputPath, step.properties.TrainingJobName,
                                "output", *parts])


def _prepared(prepare, output: str):
    return prepare.properties.ProcessingOutputConfig.Outputs[output].S3Output.S3Uri


def _data_report():
    from sagemaker.core.workflow import PropertyFile

    return PropertyFile(name="DataReport", output_name="report", path="data_report.json")


# 1. Prepare: FinQA -> Nova data, gen_qa evaluation data, data report, training recipe.
def _prepare(build: _Build):
    from sagemaker.core.workflow import Join

    p = build.parameters
    prepared = [build.root, "prepared", build.code.digest[:16], build.recipe.id]
    # Training and validation data depend on the same things: one key prefix for both.
    training_data = [*prepared, "train-records", p.train_records, "max-length", p.recipe["MaxLength"],
                     "from", p.data_location]
    recipe_values = [part for flag, value in p.recipe_flags() for part in (flag.lstrip("-"), value)]
    open_weights, extra_outputs = [], []
    if pipeline_is_open_weights(build.settings):
        # AWS's open-weights data layout (steps/finqa/open_weights.py), and the open model's evaluation set.
        open_weights = ["--open-weights-technique", build.settings.technique]
        extra_outputs = [_output(OPEN_WEIGHTS_EVAL, Join(on="/", values=[
            *prepared, "eval-records", p.eval_records, "from", p.data_location, OPEN_WEIGHTS_EVAL]),
            f"{PROCESSING}/output/{OPEN_WEIGHTS_EVAL}")]
        training_data += ["open-weights", build.settings.technique]
        if build.recipe.method == "dpo":
            extra_outputs.append(_output(OPEN_WEIGHTS_PROMPTS, Join(on="/", values=[
                *training_data, OPEN_WEIGHTS_PROMPTS]), f"{PROCESSING}/output/{OPEN_WEIGHTS_PROMPTS}"))
    extra_flags = []
    if build.recipe.method == "rft" and not open_weights:
        # The recipe names the reward function and the S3 object of the training data (as AWS's
        # RFT tooling sets data_s3_path), the same one the training job's channel reads.
        extra_flags = ["--reward-lambda-arn", function_arn(build.settings),
                       "--data-s3-path", Join(on="/", values=[*training_data, "train", "train.jsonl"])]
        recipe_values += ["reward", function_name(build.settings)]
    if build.source is not None:
        # The training recipe starts from the source package's checkpoint (iterative training).
        extra_flags += ["--model-name-or-path", build.source.checkpoint]
        recipe_values += ["from-checkpoint", build.source.checkpoint.removeprefix("s3://")]
    eval_data = Join(on="/", values=[*prepared, "eval-records", p.eval_records, "from", p.data_location, "eval"])
    # The model package's metadata values that depend on parameters, checked against SageMaker's
    # limit here, before any GPU job, rather than by RegisterModel after all of them.
    metadata_values = ["--metadata-value", keys.EVAL_DATA_S3_URI, Join(on="/", values=[eval_data, EVAL_DATA_FILE])]
    mlflow_server = build.settings.mlflow_tracking_arn.rsplit("/", 1)[-1]
    mlflow_flags = (["--mlflow-tracking-uri", build.settings.mlflow_tracking_arn,
                     "--mlflow-experiment", build.settings.pipeline_name] if mlflow_server else [])
    return _processing(
        build, PREPARE, "nova-finqa-prepare", "Prepare FinQA data and training recipe",
        f"Converts FinQA to Nova's conversation and gen_qa formats and renders AWS's {build.recipe.id} recipe from "
        "the parameters; bad recipe values fail here, before any GPU.",
        inputs=[_input("finqa", p.data_location, f"{PROCESSING}/input/finqa")],
        outputs=[
            # For DPO the training records are written as prompts for the model to answer.
            _output("prompts", Join(on="/", values=[*training_data, "prompts"]), f"{PROCESSING}/output/prompts")
            if build.recipe.method == "dpo" else
            _output("train", Join(on="/", values=[*training_data, "train"]), f"{PROCESSING}/output/train"),
            _output("validation", Join(on="/", values=[*training_data, "validation"]),
                    f"{PROCESSING}/output/validation"),
            _output("eval", eval_data, f"{PROCESSING}/output/eval"),
            # Nova 2's max_steps follows the records written, the MLflow fields the server and
            # pipeline: the recipe's key holds what they depend on.
            _output("recipe", Join(on="/", values=[*prepared, "recipe", *recipe_values,
                                                   *(["train-records", p.train_records, "from", p.data_location]
                                                     if build.recipe.step_based else []),
                                                   *(["mlflow", mlflow_server, build.settings.pipeline_name]
                                                     if mlflow_server else [])]),
                    f"{PROCESSING}/output/recipe"),
            _output("report", _execution_path(build, "report"), f"{PROCESSING}/output/report"),
            *extra_outputs,
        ],
        arguments=["steps.prepare", "--input-dir", f"{PROCESSING}/input/finqa", "--output-dir", f"{PROCESSING}/output",
                   "--max-train-records", p.train_records, "--max-eval-records", p.eval_records,
                   "--accuracy-threshold", p.accuracy_threshold.to_string(),
                   "--seed", SAMPLING_SEED, "--recipe", build.recipe.id,
                   *[part for flag, value in p.recipe_flags() for part in (flag, value)], *extra_flags,
                   # The cost estimate, checked against MaxTrainingCost before any GPU starts.
                   "--max-training-cost", p.max_training_cost, *_instance_flags(p), "--region", build.settings.region,
                   *metadata_values, *mlflow_flags, *open_weights],
        property_files=[_data_report()])


def _instance_flags(p: Parameters) -> list:
    if p.training_instance_type is None:  # serverless: AWS picks the instances
        return ["--training-instance-type", SERVERLESS]
    return ["--training-instance-type", p.training_instance_type,
            "--evaluation-instance-type", p.evaluation_instance_type]


# 2a. DPO only: the model answers the sampled training questions (a Nova evaluation job, as the
# base model's test answers are made), and its wrong answers become preference pairs.
def _generate_training_answers(build: _Build, prepare):
    evaluation = build.recipe.evaluation
    model, recipe_uri, who = _model_to_ask(build)
    return _nova_step(
        build, name=GENERATE_TRAINING, display_name=f"Answer FinQA training questions ({who})",
        description=(f"AWS's {evaluation.id} job on the {who}'s answers to the sampled training questions; cached "
                     "across executions with the same training data."),
        step_args=_nova_job(build, "nova-finqa-answers-train", build.images.evaluation,
                            build.parameters.evaluation_instance_type, 1, EVALUATION_MAX_RUNTIME_SECONDS, model,
                            {"train": _prepared(prepare, "prompts"), "recipe": recipe_uri}, "generations"))


def _model_to_ask(build: _Build):
    """The hyperparameters and evaluation recipe of the model training starts from: the base model,
    or the source package's checkpoint (base_model_location, as AWS's launcher sets it)."""
    if build.source is None:
        return ({"base_model": build.recipe.base_model},
                f"s3://{build.settings.bucket}/{build.base_recipes[0].key.rsplit('/', 1)[0]}/", "base model")
    return ({"base_model_location": build.source.checkpoint},
            f"s3://{build.settings.bucket}/{build.source_recipe.key.rsplit('/', 1)[0]}/", "source model")


def _preferences_report():
    from sagemaker.core.workflow import PropertyFile

    return PropertyFile(name="Preferences", output_name="report", path="preferences.json")


def _make_preferences(build: _Build, prepare, generate_training, archive: str = "output.tar.gz"):
    """`archive`: the file of the answering job's output to read ("" for the whole folder)."""
    return _processing(
        build, PREFERENCES, "nova-finqa-preferences", "Make DPO preference pairs",
        "Scores the model's training answers with FinQA's verdict; each wrong one becomes a pair, the gold reply "
        "preferred. Fewer pairs than AWS's minimum fail here, before the DPO job.",
        inputs=[_input("predictions", _job_output(generate_training), f"{PROCESSING}/input/predictions"),
                _input("prompts", _prepared(prepare, "prompts"), f"{PROCESSING}/input/prompts")],
        outputs=[_output("train", _execution_path(build, "preferences", "train"), f"{PROCESSING}/output/train"),
                 _output("report", _execution_path(build, "preferences", "report"), f"{PROCESSING}/output/report")],
        arguments=["steps.preferences", "--predictions", f"{PROCESSING}/input/predictions/{archive}".rstrip("/"),
                   "--prompts", f"{PROCESSING}/input/prompts", "--output-dir", f"{PROCESSING}/output",
                   "--max-length", build.parameters.recipe["MaxLength"].to_string(),
                   *(["--layout", "open-weights"] if pipeline_is_open_weights(build.settings) else [])],
        property_files=[_preferences_report()])


# 2. Train: AWS's recipe on the prepared conversations (SFT), on the prepared prompts with the
# reward Lambda scoring the job's responses (RFT), or on the preference pairs (DPO).
def _train(build: _Build, prepare, preferences=None):
    from sagemaker.core.training.configs import S3DataSource
    from sagemaker.core.workflow import Join

    def data(output: str, data_type: str) -> S3DataSource:
        # The channel types AWS's SDK gives Nova data: "Converse" for SFT, "S3Prefix" for RFT
        # (aws/nova-forge-sdk, ForgeTrainer); it names the file, as they do.
        return S3DataSource(s3_data_type=data_type, s3_data_distribution_type="FullyReplicated",
                            s3_uri=Join(on="/", values=[_prepared(prepare, output), f"{output}.jsonl"]))

    chosen = build.recipe
    # From a source package's checkpoint, AWS's launcher sends base_model_location instead
    # (`_get_args_from_nova_recipe`, for an s3:// run.model_name_or_path).
    hyperparameters = ({"base_model": chosen.base_model} if build.source is None
                       else {"base_model_location": build.source.checkpoint})
    if chosen.method == "rft":
        channels = {"train": data("train", "S3Prefix")}
        # As every AWS launch path copies run.reward_lambda_arn (sagemaker-train, sm_recipes/utils.py
        # `_get_args_from_nova_recipe`): the job calls the reward it names.
        hyperparameters["reward_lambda_arn"] = function_arn(build.settings)
        description = (f"AWS's {chosen.id} recipe ({chosen.display_name}) on the prepared FinQA prompts; the "
                       f"reward Lambda {function_name(build.settings)} scores each response with FinQA's verifier.")
    elif chosen.method == "dpo":
        # Preference pairs are Converse records (AWS's DPO data format); AWS's pages give DPO no
        # validation set of its own, and pairs for one would need a second answering job.
        pairs = preferences.properties.ProcessingOutputConfig.Outputs["train"].S3Output.S3Uri
        channels = {"train": S3DataSource(s3_data_type="Converse", s3_data_distribution_type="FullyReplicated",
                                          s3_uri=Join(on="/", values=[pairs, "train.jsonl"]))}
        description = (f"AWS's {chosen.id} recipe ({chosen.display_name}) on the preference pairs made from the "
                       "model's own wrong FinQA answers.")
    else:
        channels = {"train": data("train", "Converse")}
        if chosen.validation_channel:
            channels["validation"] = data("validation", "Converse")
        description = f"AWS's {chosen.id} recipe ({chosen.display_name}) on the prepared FinQA conversations."
    if build.source is not None:
        description += f" Starts from the checkpoint of {build.source.package_arn} ({build.source.technique})."
    return _nova_step(
        build, name=TRAIN,
        display_name=f"Fine-tune {chosen.model_name} ({'LoRA' if chosen.peft == 'lora' else 'full-rank'} "
                     f"{build.technique})",
        description=description,
        step_args=_nova_job(build, f"nova-finqa-{chosen.method}", build.images.training,
                            build.parameters.training_instance_type, build.parameters.instance_count(chosen),
                            TRAINING_MAX_RUNTIME_SECONDS, hyperparameters,
                            {**channels, "recipe": _prepared(prepare, "recipe")}, "training"))


# 3. The checkpoint path, from manifest.json in the training job's output.
def _find_checkpoint(build: _Build, train):
    from sagemaker.core.workflow import PropertyFile

    return _processing(
        build, CHECKPOINT, "nova-finqa-checkpoint", "Find the checkpoint, render its evaluation recipe",
        "Reads manifest.json from the training output, refuses a checkpoint outside the account's escrow bucket "
        "(or the bucket named at upsert), and renders the gen_qa evaluation recipe for the fine-tuned checkpoint.",
        inputs=[_input("training", _job_output(train), f"{PROCESSING}/input/training")],
        outputs=[_output("recipe", _execution_path(build, "checkpoint-eval-recipe"), f"{PROCESSING}/output/recipe"),
                 _output("checkpoint", _execution_path(build, "checkpoint"), f"{PROCESSING}/output/checkpoint")],
        arguments=["steps.checkpoint", "--training-output", f"{PROCESSING}/input/training",
                   "--output-dir", f"{PROCESSING}/output", "--recipe", build.recipe.id,
                   # evaluated in the reasoning mode it trained in (steps.recipes.evaluation_recipe)
                   *(["--reasoning-effort", build.parameters.recipe.get("ReasoningEffort")]
                     if build.parameters.recipe.get("ReasoningEffort") is not None else []),
                   # Upsert-time, not a Studio parameter: an execution cannot widen where checkpoints come from.
                   "--account", build.settings.account,
                   *(["--checkpoint-bucket", build.settings.checkpoint_bucket]
                     if build.settings.checkpoint_bucket else [])],
        property_files=[PropertyFile(name="Checkpoint", output_name="checkpoint", path="checkpoint.json")])


def _checkpoint_uri(checkpoint, key: str = "checkpoint_s3_uri"):
    from sagemaker.core.workflow import JsonGet

    return JsonGet(step_name=CHECKPOINT, property_file=checkpoint.property_files[0], json_path=key)


# 4. Generate answers on the FinQA test set, fine-tuned and base model (Nova evaluation jobs).
def _generate(build: _Build, prepare, name: str, checkpoint):
    from sagemaker.core.workflow import Join

    evaluation = build.recipe.evaluation
    if checkpoint is None:
        model = {"base_model": build.recipe.base_model}
        if build.parameters.recipe.get("ReasoningEffort") is None:
            recipe_uri = f"s3://{build.settings.bucket}/{build.base_recipes[0].key.rsplit('/', 1)[0]}/"
        else:  # the recipe of the mode the fine-tuned model trains and is evaluated in
            folder = build.base_recipes[0].key.rsplit("/", 2)[0]
            recipe_uri = Join(on="/", values=[f"s3://{build.settings.bucket}/{folder}",
                                              build.parameters.recipe.get("ReasoningEffort"), ""])
        who, job = "base model", "nova-finqa-eval-base"
        description = (f"AWS's {evaluation.id} job on the untuned {build.recipe.model_name}; cached across "
                       "executions with the same evaluation data.")
    else:
        model, recipe_uri = {"base_model_location": _checkpoint_uri(checkpoint)}, _prepared(checkpoint, "recipe")
        who, job = "fine-tuned", "nova-finqa-eval-tuned"
        description = f"AWS's {evaluation.id} job on the fine-tuned checkpoint."
    return _nova_step(
        build, name=name, display_name=f"Answer FinQA test questions ({who})", description=description,
        step_args=_nova_job(build, job, build.images.evaluation, build.parameters.evaluation_instance_type, 1,
                            EVALUATION_MAX_RUNTIME_SECONDS, model,
                            {"train": _prepared(prepare, "eval"), "recipe": recipe_uri}, "generations"))


# 5. Score: FinQA execution accuracy of both, from the generated programs and answers.
def _score(build: _Build, prepare, train, generate_fine_tuned, generate_base, generate_training=None,
           archive: str = "output.tar.gz", billed_by_time: bool = True):
    """`archive`: the file of the generation jobs' output the scorer reads ("" for the whole folder);
    `billed_by_time`: whether the jobs' BillableTimeInSeconds is theirs to log (not for serverless ones)."""
    from sagemaker.core.workflow import Join, PropertyFile

    mlflow = _mlflow_run(build)
    tracking_inputs, tracking_flags = [], []
    if mlflow is not None:
        # The run gets the scores, the data report's estimate and what each GPU job was billed.
        tracking_inputs = [_input("report", _prepared(prepare, "report"), f"{PROCESSING}/input/report")]
        tracking_flags = ["--mlflow-tracking-uri", mlflow["MlflowResourceArn"],
                          "--mlflow-experiment", mlflow["MlflowExperimentName"],
                          "--mlflow-run-name", mlflow["MlflowRunName"],
                          "--data-report", f"{PROCESSING}/input/report/data_report.json"]
        jobs = [("training", train), ("fine_tuned_evaluation", generate_fine_tuned), ("base_evaluation", generate_base)]
        if generate_training is not None:
            jobs.append(("training_answers", generate_training))
        for job, step in jobs if billed_by_time else ():
            tracking_flags += ["--billable-seconds", Join(on="=", values=[job, step.properties.BillableTimeInSeconds])]
    return _processing(
        build, SCORE, "nova-finqa-score", "Score answers (FinQA accuracy)",
        "Executes the generated FinQA programs and compares answers with the gold ones, for the fine-tuned and "
        "the base model.",
        inputs=[_input("predictions", _job_output(generate_fine_tuned), f"{PROCESSING}/input/predictions"),
                _input("baseline-predictions", _job_output(generate_base),
                       f"{PROCESSING}/input/baseline-predictions"),
                _input("eval", _prepared(prepare, "eval"), f"{PROCESSING}/input/eval"), *tracking_inputs],
        outputs=[_output("evaluation", _execution_path(build, "evaluation"), f"{PROCESSING}/output/evaluation")],
        arguments=["steps.evaluate",
                   "--predictions", f"{PROCESSING}/input/predictions/{archive}".rstrip("/"),
                   "--baseline-predictions", f"{PROCESSING}/input/baseline-predictions/{archive}".rstrip("/"),
                   "--eval-data", f"{PROCESSING}/input/eval", "--output-dir", f"{PROCESSING}/output/evaluation",
                   "--primary-metric", PRIMARY_METRIC, *tracking_flags,
                   # the open model's name in evaluation.json, so the report sets it beside Nova
                   *(["--base-model", build.settings.base_model] if pipeline_is_open_weights(build.settings) else [])],
        property_files=[PropertyFile(name="Evaluation", output_name="evaluation", path="evaluation.json")])


def _accuracies(score):
    from sagemaker.core.workflow import JsonGet

    evaluation = score.property_files[0]
    return (JsonGet(step_name=SCORE, property_file=evaluation, json_path=ACCURACY_JSON_PATH),
            JsonGet(step_name=SCORE, property_file=evaluation, json_path=BASELINE_ACCURACY_JSON_PATH))


# 6. Gate: at least the threshold, and not below the base model.
def _gate(build: _Build, score, register):
    from sagemaker.core.workflow import ConditionGreaterThanOrEqualTo, Join
    from sagemaker.mlops.workflow import ConditionStep, FailStep

    accuracy, baseline_accuracy = _accuracies(score)
    threshold = build.parameters.accuracy_threshold
    fail = FailStep(name=FAIL, display_name="Accuracy too low", error_message=Join(on=" ", values=[
        "Fine-tuned accuracy", accuracy, "is below the AccuracyThreshold", threshold,
        "or below the base model's accuracy", baseline_accuracy]))
    return ConditionStep(
        name=GATE, display_name="Accuracy gate",
        description="Registers the model when its accuracy reaches AccuracyThreshold and the base model's.",
        conditions=[ConditionGreaterThanOrEqualTo(left=accuracy, right=threshold),
                    ConditionGreaterThanOrEqualTo(left=accuracy, right=baseline_accuracy)],
        if_steps=[register], else_steps=[fail])


def approval_status(settings: Settings) -> str:
    return "Approved" if settings.approves_automatically else "PendingManualApproval"


# 7. Register: a model package pending review, with what a reviewer needs to decide.
def _register(build: _Build, prepare, train, checkpoint, score, preferences=None):
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.workflow import ExecutionVariables, Join, JsonGet
    from sagemaker.mlops.workflow import ModelStep
    from sagemaker.serve import ModelBuilder

    p = build.parameters
    accuracy, baseline_accuracy = _accuracies(score)
    data_report = prepare.property_files[0]

    def report_count(split: str) -> JsonGet:
        return JsonGet(step_name=PREPARE, property_file=data_report, json_path=f"splits.{split}.written")

    def estimated(key: str) -> JsonGet:
        return JsonGet(step_name=PREPARE, property_file=data_report, json_path=f"estimate.registry.{key}")

    def text(value) -> Join:
        return Join(on="", values=[value])

    # From the step's properties, not from this execution's path: a cached step wrote elsewhere.
    evaluation_json = Join(on="/", values=[
        score.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri, "evaluation.json"])
    # The package points at the checkpoint itself, uncompressed, with the Nova inference image and
    # the instance types SageMaker's Nova inference runs the model on, as AWS's Nova inference
    # guide creates the model (ModelDataSource.S3DataSource, S3Prefix, CompressionType None:
    # bedrock_rules.SAGEMAKER_INFERENCE_PAGE) and AWS's Nova Forge SDK does; the job's output.tar.gz
    # holds only manifest.json. That page runs full-rank and LoRA-merged checkpoints; a LoRA one
    # is served by Bedrock, which the approval hook imports from checkpoint_s3_uri (escrow), since
    # only SageMaker's own platform registers the restricted packages Bedrock imports by ARN.
    checkpoint_data = {"S3DataSource": {"S3Uri": _checkpoint_uri(checkpoint, "checkpoint_s3_prefix"),
                                        "S3DataType": "S3Prefix", "CompressionType": "None"}}
    model = ModelBuilder(image_uri=build.images.inference, s3_model_data_url=checkpoint_data,
                         role_arn=build.settings.role_arn, sagemaker_session=build.session, dependencies={},
                         log_level=logging.ERROR)
    recipe_values = {flag[2:].replace("-", "_"): value for flag, value in p.recipe_flags()}
    return ModelStep(
        name=REGISTER, display_name="Register the fine-tuned model",
        description="Model package with the evaluation as model quality metrics.",
        step_args=model.register(
            model_package_group_name=build.settings.model_package_group,
            content_types=["application/json"], response_types=["application/json"],
            inference_instances=list(sagemaker_inference_instance_types(build.recipe)),
            # A person approves in the Model Registry; only an upsert with --auto-approve writes
            # Approved here, where the definition shows it. No Studio parameter decides it.
            approval_status=approval_status(build.settings),
            model_metrics=ModelMetrics(model_statistics=MetricsSource(
                content_type="application/json", s3_uri=evaluation_json)),
            # Keys as scripts/import_to_bedrock.py and scripts/report.py read them (steps.package_metadata).
            customer_metadata_properties={
                keys.RECIPE: build.recipe.id,
                keys.BASE_MODEL: build.recipe.base_model,
                keys.CHECKPOINT_S3_URI: text(_checkpoint_uri(checkpoint)),
                keys.TRAINING_JOB: train.properties.TrainingJobName,
                keys.TECHNIQUE: build.technique,
                **({keys.SOURCE_MODEL_PACKAGE_ARN: build.source.package_arn} if build.source is not None else {}),
                # DPO trains on the pairs made, not on the records asked
                keys.TRAIN_RECORDS: text(report_count("train") if preferences is None else JsonGet(
                    step_name=PREFERENCES, property_file=preferences.property_files[0], json_path="pairs")),
                **({keys.TRAINING_QUESTIONS: text(report_count("train")),
                    keys.TRAINING_ANSWERS_RIGHT: text(JsonGet(step_name=PREFERENCES,
                                                              property_file=preferences.property_files[0],
                                                              json_path="base_correct"))}
                   if preferences is not None else {}),
                keys.VALIDATION_RECORDS: text(report_count("validation")),
                keys.EVAL_RECORDS: text(report_count("test")),
                keys.EVAL_DATA_S3_URI: Join(on="/", values=[_prepared(prepare, "eval"), EVAL_DATA_FILE]),
                **recipe_values,
                **({keys.REWARD_LAMBDA_ARN: function_arn(build.settings)} if build.recipe.method == "rft" else {}),
                # The gate's figures: the approval hook refuses a package without them.
                keys.ACCURACY: text(accuracy),
                keys.BASELINE_ACCURACY: text(baseline_accuracy),
                keys.ACCURACY_THRESHOLD: text(p.accuracy_threshold),
                # The estimate beside what was billed; scripts/report.py prices every job of the execution.
                **{key: estimated(key) for key in keys.REGISTRY_FIELDS},
                keys.TRAINING_INSTANCE_TYPE: p.training_instance_type,
                keys.TRAINING_INSTANCE_COUNT: text(train.properties.ResourceConfig.InstanceCount),
                keys.TRAINING_BILLABLE_SECONDS: text(train.properties.BillableTimeInSeconds),
                keys.EVALUATION_INSTANCE_TYPE: p.evaluation_instance_type,
                keys.PIPELINE_EXECUTION_ARN: ExecutionVariables.PIPELINE_EXECUTION_ARN,
            }),
        retry_policies=[_api_retry()])
