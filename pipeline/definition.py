"""The SageMaker Pipeline, built from the settings by `build_pipeline`, with no AWS call.

    PrepareFinQAData ──> FineTuneNovaLite ──> FindCheckpoint ──> GenerateFineTunedAnswers ──┐
          │                                                                                 ├─> ScoreAnswers ─> CheckAccuracy ─┬─> RegisterModel
          └─────────────────────────────────> GenerateBaseModelAnswers ─────────────────────┘                                  └─> AccuracyTooLow

Where a job writes decides what the next job's cache can reuse: SageMaker keys a job step's
cache on its image, arguments, hyperparameters and input locations (not its outputs). So
prepared data and the training recipe go to keys built from exactly what determines their
content (code digest, data location, record counts, recipe values): re-running with a new
learning rate re-trains, but the base model's evaluation, whose inputs did not move, is a
cache hit. Per-execution results (report, checkpoint, scores) go under the execution id and
are always read through the producing step's properties, which a cache hit carries over.
"""
from __future__ import annotations

import json
import logging
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from pipeline.artifacts import Artifact, base_model_recipe_artifact, code_artifact
from pipeline.images import Images, images_for, nova_account
from pipeline.settings import Settings
from steps.recipes import (
    BASE_MODEL,
    DEFAULT_EPOCHS,
    DEFAULT_GLOBAL_BATCH_SIZE,
    DEFAULT_LEARNING_RATE,
    DEFAULT_LORA_ALPHA,
    DEFAULT_MAX_LENGTH,
)

# Step names, as Studio shows them.
PREPARE = "PrepareFinQAData"
TRAIN = "FineTuneNovaLite"
CHECKPOINT = "FindCheckpoint"
GENERATE_FINE_TUNED = "GenerateFineTunedAnswers"
GENERATE_BASE = "GenerateBaseModelAnswers"
SCORE = "ScoreAnswers"
GATE = "CheckAccuracy"
REGISTER = "RegisterModel"
FAIL = "AccuracyTooLow"

# What `steps.evaluate` writes into evaluation.json; the gate reads these paths. The primary
# metric is named on the command line so that the base model's figure sits at a known path.
PRIMARY_METRIC = "execution_accuracy"
ACCURACY_JSON_PATH = "metrics.accuracy.value"
BASELINE_ACCURACY_JSON_PATH = f"baseline.metrics.{PRIMARY_METRIC}.value"

PROCESSING = "/opt/ml/processing"
CODE_DIR = f"{PROCESSING}/code"
CODE_INPUT_DIR = f"{PROCESSING}/input/code"
RECIPE_IN_CONTAINER = "/opt/ml/input/data/recipe/recipe.yaml"
# The processing image has Python but not our code: unpack the content-addressed archive
# and run the step's module with the container's arguments.
ENTRY_SCRIPT = (
    f'set -e; mkdir -p {CODE_DIR}; tar -xzf {CODE_INPUT_DIR}/steps.tar.gz -C {CODE_DIR}; '
    f'PYTHONPATH={CODE_DIR} exec python3 -m "$@"'
)
ENTRYPOINT = ["/bin/sh", "-c", ENTRY_SCRIPT, "nova-finqa-step"]

PROCESSING_INSTANCE_TYPE = "ml.m5.xlarge"
DEFAULT_TRAINING_INSTANCE_TYPE = "ml.g5.12xlarge"
EVALUATION_INSTANCE_TYPE = "ml.g5.12xlarge"
TRAINING_MAX_RUNTIME_SECONDS = 432_000
EVALUATION_MAX_RUNTIME_SECONDS = 86_400
DEFAULT_ACCURACY_THRESHOLD = 0.5
CACHE_EXPIRY = "P90D"

# The sampler's seed is fixed here rather than offered in Studio: the same records for the same
# parameters is what lets cached steps be reused across executions.
SAMPLING_SEED = "42"


@dataclass(frozen=True)
class BuiltPipeline:
    pipeline: object
    definition: str
    uploads: tuple[Artifact, ...]


class _LocalClientStandIn:
    """What ProcessingStep reads from the SDK's local-mode client: one method's name."""

    def create_processing_job(self) -> None:
        raise NotImplementedError("the pipeline never runs in local mode")


@contextmanager
def _offline_sdk() -> Iterator[None]:
    """The SDK as a pure builder: no IAM role check, no telemetry request, no local-mode client.

    Building makes no AWS call: the role is checked by SageMaker when the pipeline is upserted,
    and the SDK's telemetry (an HTTPS request per decorated call) is not sent.
    """
    # Imported first so that every SDK logger the build writes to exists when quieted below.
    # The import sets the root logger to INFO (sagemaker.core.experiments); the caller's level
    # is put back, or every boto3 client would announce where it found credentials.
    root_level = logging.getLogger().level
    import sagemaker.mlops.workflow  # noqa: F401
    import sagemaker.serve  # noqa: F401
    import sagemaker.train  # noqa: F401
    from sagemaker.core.telemetry import telemetry_logging
    from sagemaker.mlops.workflow import steps as workflow_steps

    logging.getLogger().setLevel(root_level)
    # ProcessingStep makes a local-mode client (a session and four boto3 clients, about 0.4 s)
    # only to read the name of its create_processing_job method; half the build's time.
    local_client = workflow_steps.LocalSagemakerClient
    workflow_steps.LocalSagemakerClient = _LocalClientStandIn

    previous_role_check = os.environ.get("SAGEMAKER_VALIDATE_ROLE")
    previous_sender = telemetry_logging._send_telemetry_request
    os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
    telemetry_logging._send_telemetry_request = lambda *args, **kwargs: None
    # The SDK narrates each job it would start and each field it drops from the definition;
    # none of it is news when building a pipeline.
    quieted = {name: logging.getLogger(name).level for name in list(logging.root.manager.loggerDict)
               if name.split(".")[0] == "sagemaker"}
    for name in quieted:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Running within a PipelineSession")
            yield
    finally:
        for name, level in quieted.items():
            logging.getLogger(name).setLevel(level)
        telemetry_logging._send_telemetry_request = previous_sender
        workflow_steps.LocalSagemakerClient = local_client
        if previous_role_check is None:
            os.environ.pop("SAGEMAKER_VALIDATE_ROLE", None)
        else:
            os.environ["SAGEMAKER_VALIDATE_ROLE"] = previous_role_check


def canonical_json(definition: str) -> str:
    """The definition as reviewed and deployed: sorted keys, indented, so a change reads as a diff."""
    return json.dumps(json.loads(definition), indent=2, sort_keys=True) + "\n"


def build_pipeline(settings: Settings) -> BuiltPipeline:
    """The pipeline for these settings, its canonical definition, and the artifacts it reads."""
    nova_account(settings.region)  # an unsupported region fails before the SDK's seconds of import
    with _offline_sdk():
        return _build(settings, images_for(settings.region))


def _build(settings: Settings, images: Images) -> BuiltPipeline:
    import boto3
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.processing import Processor
    from sagemaker.core.shapes import ProcessingInput, ProcessingOutput, ProcessingS3Input, ProcessingS3Output
    from sagemaker.core.training.configs import (
        Compute,
        InputData,
        OutputDataConfig,
        S3DataSource,
        StoppingCondition,
    )
    from sagemaker.core.workflow import (
        ConditionGreaterThanOrEqualTo,
        ExecutionVariables,
        Join,
        JsonGet,
        ParameterFloat,
        ParameterInteger,
        ParameterString,
        PropertyFile,
    )
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.mlops.workflow import (
        CacheConfig,
        ConditionStep,
        FailStep,
        ModelStep,
        Pipeline,
        ProcessingStep,
        TrainingStep,
    )
    from sagemaker.mlops.workflow.retry import (
        SageMakerJobExceptionTypeEnum,
        SageMakerJobStepRetryPolicy,
        StepExceptionTypeEnum,
        StepRetryPolicy,
    )
    from sagemaker.serve import ModelBuilder
    from sagemaker.train import ModelTrainer

    class NovaTrainingStep(TrainingStep):
        """A TrainingStep whose job runs without SageMaker Debugger's profiler (ModelTrainer has no switch)."""

        @property
        def arguments(self):
            request = super().arguments
            request["ProfilerConfig"] = {"DisableProfiler": True}
            return request

    session = PipelineSession(boto_session=boto3.Session(region_name=settings.region),
                              default_bucket=settings.bucket)
    # No SDK defaults: the user's config files (VPC, KMS keys, tags) must not change the
    # definition from one machine to the next, and every non-empty config is re-validated
    # against its JSON schema on each lookup (seconds per build).
    session.sagemaker_config = {}
    root = settings.s3_root
    code = code_artifact(settings.prefix)
    base_recipe = base_model_recipe_artifact(settings.prefix)
    code_digest = code.digest[:16]

    data_location = ParameterString("DataLocation", default_value=f"{root}/data/finqa/")
    train_records = ParameterString("TrainingRecords", default_value="all")
    eval_records = ParameterString("EvaluationRecords", default_value="all")
    epochs = ParameterInteger("Epochs", default_value=DEFAULT_EPOCHS)
    learning_rate = ParameterFloat("LearningRate", default_value=DEFAULT_LEARNING_RATE)
    lora_alpha = ParameterInteger("LoraAlpha", default_value=DEFAULT_LORA_ALPHA)
    max_length = ParameterInteger("MaxLength", default_value=DEFAULT_MAX_LENGTH)
    global_batch_size = ParameterInteger("GlobalBatchSize", default_value=DEFAULT_GLOBAL_BATCH_SIZE)
    training_instance_type = ParameterString("TrainingInstanceType", default_value=DEFAULT_TRAINING_INSTANCE_TYPE)
    accuracy_threshold = ParameterFloat("AccuracyThreshold", default_value=DEFAULT_ACCURACY_THRESHOLD)
    approval_status = ParameterString("ModelApprovalStatus", default_value="PendingManualApproval",
                                      enum_values=["PendingManualApproval", "Approved"])
    parameters = [data_location, train_records, eval_records, epochs, learning_rate, lora_alpha, max_length,
                  global_batch_size, training_instance_type, accuracy_threshold, approval_status]

    cache = CacheConfig(enable_caching=True, expire_after=CACHE_EXPIRY)
    # Capacity for g5.12xlarge comes and goes: wait minutes, not seconds, between attempts.
    job_retries = [
        SageMakerJobStepRetryPolicy(
            exception_types=[SageMakerJobExceptionTypeEnum.CAPACITY_ERROR,
                             SageMakerJobExceptionTypeEnum.RESOURCE_LIMIT,
                             SageMakerJobExceptionTypeEnum.INTERNAL_ERROR],
            interval_seconds=300, backoff_rate=2.0, max_attempts=5),
        StepRetryPolicy(exception_types=[StepExceptionTypeEnum.THROTTLING, StepExceptionTypeEnum.SERVICE_FAULT],
                        interval_seconds=30, backoff_rate=2.0, max_attempts=5),
    ]
    api_retries = [job_retries[1]]

    def execution_path(*parts: str) -> Join:
        return Join(on="/", values=[root, "executions", ExecutionVariables.PIPELINE_EXECUTION_ID, *parts])

    def processing_input(name: str, source, local_path: str) -> ProcessingInput:
        return ProcessingInput(input_name=name, s3_input=ProcessingS3Input(
            s3_uri=source, local_path=local_path, s3_data_type="S3Prefix", s3_input_mode="File"))

    def processing_output(name: str, destination, local_path: str) -> ProcessingOutput:
        return ProcessingOutput(output_name=name, s3_output=ProcessingS3Output(
            s3_uri=destination, local_path=local_path, s3_upload_mode="EndOfJob"))

    def processor(job_name: str) -> Processor:
        return Processor(role=settings.role_arn, image_uri=images.processing, instance_count=1,
                         instance_type=PROCESSING_INSTANCE_TYPE, entrypoint=ENTRYPOINT, base_job_name=job_name,
                         sagemaker_session=session)

    code_input = processing_input("code", f"s3://{settings.bucket}/{code.key}", CODE_INPUT_DIR)

    # 1. Prepare: FinQA -> Nova data, gen_qa evaluation data, data report, training recipe.
    prepared = [root, "prepared", code_digest]
    # Training and validation data depend on the same things: one key prefix for both.
    training_data = [*prepared, "train-records", train_records, "max-length", max_length, "from", data_location]
    data_report = PropertyFile(name="DataReport", output_name="report", path="data_report.json")
    prepare = ProcessingStep(
        name=PREPARE, display_name="Prepare FinQA data and training recipe",
        description="Converts FinQA to Nova's conversation and gen_qa formats and renders the LoRA SFT recipe "
                    "from the parameters; bad recipe values fail here, before any GPU.",
        step_args=processor("nova-finqa-prepare").run(
            inputs=[code_input, processing_input("finqa", data_location, f"{PROCESSING}/input/finqa")],
            outputs=[
                processing_output("train", Join(on="/", values=[*training_data, "train"]),
                                  f"{PROCESSING}/output/train"),
                processing_output("validation", Join(on="/", values=[*training_data, "validation"]),
                                  f"{PROCESSING}/output/validation"),
                processing_output("eval", Join(on="/", values=[
                    *prepared, "eval-records", eval_records, "from", data_location, "eval"]),
                    f"{PROCESSING}/output/eval"),
                processing_output("recipe", Join(on="/", values=[
                    *prepared, "recipe", "epochs", epochs, "learning-rate", learning_rate, "lora-alpha", lora_alpha,
                    "max-length", max_length, "global-batch-size", global_batch_size]),
                    f"{PROCESSING}/output/recipe"),
                processing_output("report", execution_path("report"), f"{PROCESSING}/output/report"),
            ],
            arguments=["steps.prepare",
                       "--input-dir", f"{PROCESSING}/input/finqa", "--output-dir", f"{PROCESSING}/output",
                       "--max-train-records", train_records, "--max-eval-records", eval_records,
                       "--seed", SAMPLING_SEED, "--max-length", max_length.to_string(),
                       "--epochs", epochs.to_string(), "--learning-rate", learning_rate.to_string(),
                       "--lora-alpha", lora_alpha.to_string(),
                       "--global-batch-size", global_batch_size.to_string()]),
        property_files=[data_report], cache_config=cache, retry_policies=job_retries)
    prepared_output = prepare.properties.ProcessingOutputConfig.Outputs

    def nova_job(job_name: str, image: str, instance_type, max_runtime: int, hyperparameters: dict,
                 channels: dict, output: str):
        trainer = ModelTrainer(
            sagemaker_session=session, role=settings.role_arn, base_job_name=job_name, training_image=image,
            compute=Compute(instance_type=instance_type, instance_count=1),
            stopping_condition=StoppingCondition(max_runtime_in_seconds=max_runtime),
            output_data_config=OutputDataConfig(s3_output_path=f"{root}/{output}"),
            hyperparameters={**hyperparameters, "sagemaker_recipe_local_path": RECIPE_IN_CONTAINER})
        return trainer.train(input_data_config=[InputData(channel_name=name, data_source=source)
                                                for name, source in channels.items()], wait=False, logs=False)

    def conversations(output: str) -> S3DataSource:
        # "Converse" is the channel type AWS's SDK and samples give Nova SFT data; it names the
        # file, as they do.
        return S3DataSource(s3_data_type="Converse", s3_data_distribution_type="FullyReplicated",
                            s3_uri=Join(on="/", values=[prepared_output[output].S3Output.S3Uri, f"{output}.jsonl"]))

    # 2. Train: Nova Lite LoRA SFT, the recipe delivered as the `recipe` channel.
    train = NovaTrainingStep(
        name=TRAIN, display_name="Fine-tune Nova Lite (LoRA SFT)",
        description="Nova Lite LoRA SFT recipe for g5/g6 12xlarge on the prepared FinQA conversations.",
        step_args=nova_job("nova-finqa-sft", images.training, training_instance_type, TRAINING_MAX_RUNTIME_SECONDS,
                           {"base_model": BASE_MODEL},
                           {"train": conversations("train"), "validation": conversations("validation"),
                            "recipe": prepared_output["recipe"].S3Output.S3Uri},
                           "training"),
        cache_config=cache, retry_policies=job_retries)

    # 3. The checkpoint path, from manifest.json in the training job's output.
    checkpoint_file = PropertyFile(name="Checkpoint", output_name="checkpoint", path="checkpoint.json")
    training_output = Join(on="/", values=[train.properties.OutputDataConfig.S3OutputPath,
                                           train.properties.TrainingJobName, "output"])
    checkpoint = ProcessingStep(
        name=CHECKPOINT, display_name="Find the checkpoint, render its evaluation recipe",
        description="Reads manifest.json from the training output and renders the gen_qa evaluation recipe "
                    "for the fine-tuned checkpoint.",
        step_args=processor("nova-finqa-checkpoint").run(
            inputs=[code_input, processing_input("training", training_output, f"{PROCESSING}/input/training")],
            outputs=[processing_output("recipe", execution_path("checkpoint-eval-recipe"),
                                       f"{PROCESSING}/output/recipe"),
                     processing_output("checkpoint", execution_path("checkpoint"),
                                       f"{PROCESSING}/output/checkpoint")],
            arguments=["steps.checkpoint", "--training-output", f"{PROCESSING}/input/training",
                       "--output-dir", f"{PROCESSING}/output"]),
        property_files=[checkpoint_file], cache_config=cache, retry_policies=job_retries)
    checkpoint_uri = JsonGet(step_name=CHECKPOINT, property_file=checkpoint_file, json_path="checkpoint_s3_uri")

    # 4. Generate answers on the FinQA test set, fine-tuned and base model (Nova evaluation jobs).
    eval_data = prepared_output["eval"].S3Output.S3Uri
    generate_fine_tuned = NovaTrainingStep(
        name=GENERATE_FINE_TUNED, display_name="Answer FinQA test questions (fine-tuned)",
        description="Nova bring-your-own-dataset evaluation job on the fine-tuned checkpoint.",
        step_args=nova_job("nova-finqa-eval-tuned", images.evaluation, EVALUATION_INSTANCE_TYPE,
                           EVALUATION_MAX_RUNTIME_SECONDS, {"base_model_location": checkpoint_uri},
                           {"train": eval_data,
                            "recipe": checkpoint.properties.ProcessingOutputConfig.Outputs["recipe"].S3Output.S3Uri},
                           "generations"),
        cache_config=cache, retry_policies=job_retries)
    generate_base = NovaTrainingStep(
        name=GENERATE_BASE, display_name="Answer FinQA test questions (base model)",
        description="Nova bring-your-own-dataset evaluation job on the untuned Nova Lite; cached across "
                    "executions with the same evaluation data.",
        step_args=nova_job("nova-finqa-eval-base", images.evaluation, EVALUATION_INSTANCE_TYPE,
                           EVALUATION_MAX_RUNTIME_SECONDS, {"base_model": BASE_MODEL},
                           {"train": eval_data,
                            "recipe": f"s3://{settings.bucket}/{base_recipe.key.rsplit('/', 1)[0]}/"},
                           "generations"),
        cache_config=cache, retry_policies=job_retries)

    def generations(step) -> Join:
        return Join(on="/", values=[step.properties.OutputDataConfig.S3OutputPath,
                                    step.properties.TrainingJobName, "output"])

    # 5. Score: FinQA execution accuracy of both, from the generated programs and answers.
    evaluation_file = PropertyFile(name="Evaluation", output_name="evaluation", path="evaluation.json")
    score = ProcessingStep(
        name=SCORE, display_name="Score answers (FinQA accuracy)",
        description="Executes the generated FinQA programs and compares answers with the gold ones, for the "
                    "fine-tuned and the base model.",
        step_args=processor("nova-finqa-score").run(
            inputs=[code_input,
                    processing_input("predictions", generations(generate_fine_tuned),
                                     f"{PROCESSING}/input/predictions"),
                    processing_input("baseline-predictions", generations(generate_base),
                                     f"{PROCESSING}/input/baseline-predictions"),
                    processing_input("eval", eval_data, f"{PROCESSING}/input/eval")],
            outputs=[processing_output("evaluation", execution_path("evaluation"), f"{PROCESSING}/output/evaluation")],
            arguments=["steps.evaluate",
                       "--predictions", f"{PROCESSING}/input/predictions/output.tar.gz",
                       "--baseline-predictions", f"{PROCESSING}/input/baseline-predictions/output.tar.gz",
                       "--eval-data", f"{PROCESSING}/input/eval",
                       "--output-dir", f"{PROCESSING}/output/evaluation",
                       "--primary-metric", PRIMARY_METRIC]),
        property_files=[evaluation_file], cache_config=cache, retry_policies=job_retries)
    accuracy = JsonGet(step_name=SCORE, property_file=evaluation_file, json_path=ACCURACY_JSON_PATH)
    baseline_accuracy = JsonGet(step_name=SCORE, property_file=evaluation_file,
                                json_path=BASELINE_ACCURACY_JSON_PATH)

    # 7. Register: a model package pending review, with what a reviewer needs to decide.
    # From the step's properties, not from this execution's path: a cached step wrote elsewhere.
    evaluation_json = Join(on="/", values=[
        score.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri, "evaluation.json"])

    def report_count(split: str) -> JsonGet:
        return JsonGet(step_name=PREPARE, property_file=data_report, json_path=f"splits.{split}.written")

    def text(value) -> Join:
        return Join(on="", values=[value])

    # Nova LoRA adapters are served by Amazon Bedrock (custom model import of the checkpoint),
    # not by SageMaker endpoints, and the weights stay in the service's escrow bucket: the
    # package records the Nova inference image with the training job's output.tar.gz, whose
    # manifest.json names the checkpoint; checkpoint_s3_uri is what the Bedrock import reads.
    training_archive = Join(on="/", values=[train.properties.OutputDataConfig.S3OutputPath,
                                            train.properties.TrainingJobName, "output", "output.tar.gz"])
    model = ModelBuilder(image_uri=images.inference, s3_model_data_url=training_archive,
                         role_arn=settings.role_arn, sagemaker_session=session, dependencies={},
                         log_level=logging.ERROR)
    register = ModelStep(
        name=REGISTER, display_name="Register the fine-tuned model",
        description="Model package with the evaluation as model quality metrics.",
        step_args=model.register(
            model_package_group_name=settings.model_package_group,
            content_types=["application/json"], response_types=["application/json"],
            inference_instances=[EVALUATION_INSTANCE_TYPE],
            approval_status=approval_status,
            model_metrics=ModelMetrics(model_statistics=MetricsSource(
                content_type="application/json", s3_uri=evaluation_json)),
            # Keys as scripts/import_to_bedrock.py and scripts/report.py read them.
            customer_metadata_properties={
                "base_model": BASE_MODEL,
                "checkpoint_s3_uri": text(checkpoint_uri),
                "training_job": train.properties.TrainingJobName,
                "train_records": text(report_count("train")),
                "validation_records": text(report_count("validation")),
                "eval_records": text(report_count("test")),
                "eval_data_s3_uri": Join(on="/", values=[eval_data, "gen_qa.jsonl"]),
                "epochs": epochs.to_string(),
                "learning_rate": learning_rate.to_string(),
                "lora_alpha": lora_alpha.to_string(),
                "max_length": max_length.to_string(),
                "global_batch_size": global_batch_size.to_string(),
                "accuracy": text(accuracy),
                "baseline_accuracy": text(baseline_accuracy),
            }),
        retry_policies=api_retries)

    # 6. Gate: at least the threshold, and not below the base model.
    fail = FailStep(name=FAIL, display_name="Accuracy too low",
                    error_message=Join(on=" ", values=[
                        "Fine-tuned accuracy", accuracy, "is below the AccuracyThreshold", accuracy_threshold,
                        "or below the base model's accuracy", baseline_accuracy]))
    gate = ConditionStep(
        name=GATE, display_name="Accuracy gate",
        description="Registers the model when its accuracy reaches AccuracyThreshold and the base model's.",
        conditions=[ConditionGreaterThanOrEqualTo(left=accuracy, right=accuracy_threshold),
                    ConditionGreaterThanOrEqualTo(left=accuracy, right=baseline_accuracy)],
        if_steps=[register], else_steps=[fail])

    pipeline = Pipeline(name=settings.pipeline_name, parameters=parameters,
                        steps=[prepare, train, checkpoint, generate_fine_tuned, generate_base, score, gate],
                        pipeline_experiment_config=None, sagemaker_session=session)
    return BuiltPipeline(pipeline=pipeline, definition=canonical_json(pipeline.definition()),
                         uploads=(code, base_recipe))
