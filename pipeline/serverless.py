"""The pipeline on SageMaker AI serverless model customization (`--platform serverless`), no AWS call.

    PrepareFinQAData ─> FineTune ─> GenerateFineTunedAnswers ─┐
          │          (registers the package)                 ├─> ScoreAnswers ─> CheckAccuracy ─┬─> RecordEvaluation
          └────────────────> GenerateBaseModelAnswers ───────┘                                  └─> RejectModel
                                                                                                     └─> AccuracyTooLow

For DPO the training data is made from the model's own answers first, as the training-job DPO
pipeline makes it (steps/preferences.py):
    PrepareFinQAData ──> GenerateTrainingAnswers ──> MakePreferencePairs ──> FineTune ──> ...

The jobs are CreateTrainingJob requests with `ServerlessJobConfig` (botocore's model): no image,
no instance type, no recipe file. They are built here from botocore's shapes, the way AWS's SDK
builds them (sagemaker-train `SFTTrainer` / `DPOTrainer` / `RLVRTrainer.train` for the
fine-tuning job; `evaluate/pipeline_templates.py` CUSTOM_SCORER_TEMPLATE, as
`CustomScorerEvaluator` fills it for Nova, for the generation jobs), without the SDK's build-time
calls (DescribeHubContent, S3, IAM, STS): tests/test_serverless_oracle.py runs AWS's trainers with
exactly those calls stubbed and compares. Differences from the SDK, each on purpose:
- BaseModelArn carries no version (steps.serverless_models.HubModel.base_model_arn);
- the hyperparameters are the catalog recipe's fields (steps.serverless_models, `recipes`), the
  Studio parameters among them, where the SDK reads the hub model's override file;
- ModelPackageGroupArn and EvaluatorArn are computed from the settings (the role's account)
  where the SDK looks them up, and the evaluator is registered by `pipeline.upsert`
  (pipeline/reward_evaluator.py), not created while building.

Open-weights models (Llama, Qwen, GPT-OSS; steps/open_weights_models.py) take the same graph, with
these differences, each as AWS's SDK does it or for want of a source:
- the data is AWS's open-weights layout (steps/finqa/open_weights.py), all channels `S3Prefix`;
- no HyperParameters: AWS's trainers send the defaults of the hub model's override file, which
  a dry run cannot read; the job then takes the hub recipe's own (unverified on a real account);
  the Studio form keeps only what the preparation step uses (MaxLength, the record counts);
- the generation jobs send `evaluation_metric` instead of `metric` and no `lambda_type`
  (CustomScorerEvaluator for non-Nova models), on the open model's evaluation set (AWS's OpenAI
  `messages` layout), and the scorer names the model in evaluation.json;
- the reward Lambda answers in the open-weights contract (pipeline/reward_function.py);
- DPO: the same pairs from the base model's wrong answers, written in the open-weights layout
  (steps.preferences --layout open-weights), the questions asked in the evaluation layout.

The fine-tuning job registers its output as a model package of the pipeline's group itself
(ModelPackageConfig). The gate then decides what becomes of it: RecordEvaluation writes the
scores onto the package and leaves it pending a person's approval (Approved only
with the upsert-time --auto-approve); RejectModel writes them and rejects it
(steps/model_package.py), so a failed gate leaves no package that looks deployable.
"""
from __future__ import annotations

import dataclasses

from pipeline.artifacts import code_artifact
from pipeline.definition import (
    FAIL,
    GATE,
    GENERATE_BASE,
    GENERATE_FINE_TUNED,
    GENERATE_TRAINING,
    OPEN_WEIGHTS_EVAL,
    OPEN_WEIGHTS_PROMPTS,
    PREPARE,
    PROCESSING,
    TRAIN,
    BuiltPipeline,
    _accuracies,
    _Build,
    _cache,
    _input,
    _job_retries,
    _make_preferences,
    _mlflow_run,
    _prepare,
    _prepared,
    _processing,
    _score,
    approval_status,
    canonical_json,
)
from pipeline.images import PROCESSING_INSTANCE_TYPE, SKLEARN_VERSION, Images, images_for
from pipeline.parameters import declare
from pipeline.reward_evaluator import evaluator_arn
from pipeline.sdk import offline_sdk, pipeline_session
from pipeline.settings import Settings
from steps import package_metadata as keys
from steps.catalog import TrainingRecipe, recipe
from steps.open_weights_models import PREPARATION_RECIPES
from steps.recipes import DEFAULT_MAX_NEW_TOKENS, FIXED_VALUES, RECIPE_PARAMETERS
from steps.serverless_models import API_TECHNIQUE, HubModel

RECORD = "RecordEvaluation"
REJECT = "RejectModel"

# Recipe fields that are not the job's to set on serverless: AWS picks the instances (replicas),
# and AWS's trainers drop the data and reward locations from the hub's hyperparameters, which
# the request carries elsewhere (`_process_hyperparameters` of SFTTrainer / RLVRTrainer).
PLATFORM_FIELDS = ("replicas", "data_s3_path", "reward_lambda_arn")
# CUSTOM_SCORER_TEMPLATE's fixed values for Nova (CustomScorerEvaluator._get_custom_scorer_template_additions):
# gen_qa, every metric, the RFT reward contract, the evaluator's figures averaged.
EVALUATION_HYPERPARAMETERS = {"task": "gen_qa", "strategy": "gen_qa", "metric": "all", "lambda_type": "rft",
                              "postprocessing": "True", "aggregation": "mean"}
# Greedy decoding as the training-job evaluation recipe (AWS's fallbacks in CustomScorerEvaluator
# are the same but for max_new_tokens 8192: FinQA answers are two short lines, steps.recipes).
INFERENCE_HYPERPARAMETERS = {"max_new_tokens": str(DEFAULT_MAX_NEW_TOKENS), "temperature": "0", "top_k": "-1",
                             "top_p": "1.0"}
EVALUATION_MAX_RUNTIME_SECONDS = 86_400  # CUSTOM_SCORER_TEMPLATE's
# For a model other than Nova, CustomScorerEvaluator names the metric `evaluation_metric` and sends
# no `lambda_type` (_get_custom_scorer_template_additions).
OPEN_WEIGHTS_EVALUATION_HYPERPARAMETERS = {"task": "gen_qa", "strategy": "gen_qa", "evaluation_metric": "all",
                                           "postprocessing": "True", "aggregation": "mean"}


@dataclasses.dataclass(frozen=True)
class _Serverless:
    build: _Build
    model: HubModel
    technique: str
    training_type: str

    @property
    def settings(self) -> Settings:
        return self.build.settings

    @property
    def recipe(self) -> TrainingRecipe:
        return self.build.recipe

    @property
    def base_model_arn(self) -> str:
        return self.model.base_model_arn(self.settings.region)

    @property
    def group_arn(self) -> str:
        _, partition, _, _, account, _ = self.settings.role_arn.split(":", 5)
        return (f"arn:{partition}:sagemaker:{self.settings.region}:{account}:model-package-group/"
                f"{self.settings.model_package_group}")


def serverless_recipe(settings: Settings) -> TrainingRecipe:
    """The catalog recipe whose fields and data this serverless combination takes (refused if not offered);
    for an open-weights model, the one whose max_length the preparation step checks (PREPARATION_RECIPES)."""
    model = settings.hub_model
    if not model.is_nova:
        return recipe(PREPARATION_RECIPES[settings.technique])
    return recipe(model.recipe_id(settings.technique, settings.training_type))


def build_serverless_pipeline(settings: Settings) -> BuiltPipeline:
    model = settings.hub_model
    chosen = serverless_recipe(settings)
    with offline_sdk():
        declared = declare(chosen, f"{settings.s3_root}/data/finqa/")
        # AWS picks the instances: no instance types, no replicas. No Nova recipe reaches an
        # open-weights job: of the recipe's parameters only MaxLength, the preparation step's
        # token limit, stays on its form.
        parameters = dataclasses.replace(
            declared, training_instance_type=None, evaluation_instance_type=None,
            recipe={name: value for name, value in declared.recipe.items()
                    if RECIPE_PARAMETERS[name].field not in PLATFORM_FIELDS
                    and (model.is_nova or RECIPE_PARAMETERS[name].field == "max_length")})
        images = images_for(settings.region, chosen) if model.is_nova else _processing_only(settings.region)
        build = _Build(settings=settings, recipe=chosen, images=images,
                       parameters=parameters, session=pipeline_session(settings.region, settings.bucket),
                       code=code_artifact(settings.prefix), base_recipes=())
        return _assemble(_Serverless(build, model, settings.technique, settings.training_type))


def _processing_only(region: str) -> Images:
    """The processing image only: an open-weights pipeline runs no Nova image (serverless jobs name none)."""
    from sagemaker.core import image_uris

    return Images(processing=image_uris.retrieve("sklearn", region=region, version=SKLEARN_VERSION,
                                                 instance_type=PROCESSING_INSTANCE_TYPE),
                  training="", evaluation="", inference="")


def _assemble(s: _Serverless) -> BuiltPipeline:
    from sagemaker.mlops.workflow import Pipeline

    build = s.build
    prepare = _prepare(build)
    steps = [prepare]
    training_data = _data_file(_prepared(prepare, "train"), "train.jsonl")
    if s.technique == "dpo":
        questions = (_data_file(_prepared(prepare, "prompts"), "gen_qa.jsonl") if s.model.is_nova
                     else _data_file(_prepared(prepare, OPEN_WEIGHTS_PROMPTS), "prompts.jsonl"))
        answers = _generation(s, GENERATE_TRAINING, "Answer FinQA training questions (base model)", questions, None,
                              "The base model answers the training questions; its wrong answers become DPO pairs.")
        pairs = _make_preferences(build, prepare, answers, archive="")
        steps += [answers, pairs]
        training_data = _data_file(pairs.properties.ProcessingOutputConfig.Outputs["train"].S3Output.S3Uri,
                                   "train.jsonl")
    train = _fine_tune(s, prepare, training_data)
    evaluation_data = (_data_file(_prepared(prepare, "eval"), "gen_qa.jsonl") if s.model.is_nova
                       else _data_file(_prepared(prepare, OPEN_WEIGHTS_EVAL), "eval.jsonl"))
    generate_fine_tuned = _generation(s, GENERATE_FINE_TUNED, "Answer FinQA test questions (fine-tuned)",
                                      evaluation_data, train, "The fine-tuned model package answers the test set.")
    generate_base = _generation(s, GENERATE_BASE, "Answer FinQA test questions (base model)", evaluation_data, None,
                                f"{s.model.model_id} answers the test set; cached across executions with the same "
                                "evaluation data.")
    # Whether DescribeTrainingJob gives a serverless job BillableTimeInSeconds (or BillableTokenCount) is
    # not documented: a property a job does not have would fail the step that reads it.
    score = _score(build, prepare, train, generate_fine_tuned, generate_base, archive="", billed_by_time=False)
    gate = _gate(s, prepare, train, score)
    steps += [train, generate_fine_tuned, generate_base, score, gate]
    pipeline = Pipeline(name=s.settings.pipeline_name, parameters=build.parameters.all, steps=steps,
                        pipeline_experiment_config=None, sagemaker_session=build.session)
    return BuiltPipeline(pipeline=pipeline, definition=canonical_json(pipeline.definition()), uploads=(build.code,))


def _data_file(folder, name: str):
    from sagemaker.core.workflow import Join

    return Join(on="/", values=[folder, name])


def _step(name: str, display_name: str, description: str, request: dict):
    """A training step whose CreateTrainingJob request is `request` as it stands (pipeline
    expressions inside): ModelTrainer has no serverless fields, and AWS's trainers look things up."""
    from sagemaker.mlops.workflow import TrainingStep

    class ServerlessTrainingStep(TrainingStep):
        @property
        def arguments(self):
            return dict(request)

    return ServerlessTrainingStep(name=name, display_name=display_name, description=description,
                                  cache_config=_cache(), retry_policies=_job_retries())


def _jumpstart_tags(s: _Serverless) -> list[dict[str, str]]:
    # AWS's trainers tag the job with the hub model (sagemaker.train.utils._get_jumpstart_tags).
    return [{"Key": "sagemaker-sdk:jumpstart-model-id", "Value": s.model.hub_content_name},
            {"Key": "sagemaker-sdk:jumpstart-hub-name", "Value": s.model.hub_name}]


def _mlflow(s: _Serverless) -> dict:
    mlflow = _mlflow_run(s.build)
    return {} if mlflow is None else {"MlflowConfig": mlflow}


def hyperparameters(s: _Serverless, prepare=None) -> dict:
    """The fine-tuning job's hyperparameters: every field of the combination's catalog recipe but
    the platform's, as text; the Studio parameters where there is one, the recipe's default
    otherwise. A step-based recipe's max_steps is the one the preparation step computed from the
    records written, Epochs and GlobalBatchSize (steps.recipes), read from its data report."""
    from sagemaker.core.workflow import Join, JsonGet

    # Each Studio parameter of a recipe field (steps.recipes.RECIPE_PARAMETERS: Epochs -> max_epochs, Beta -> adam_beta)
    studio = {RECIPE_PARAMETERS[name].field: parameter for name, parameter in s.build.parameters.recipe.items()}
    values = {}
    for name, field in s.recipe.fields.items():
        if name in PLATFORM_FIELDS:
            continue
        if name == "max_steps" and "max_steps" not in studio and prepare is not None:
            values[name] = Join(on="", values=[JsonGet(step_name=PREPARE, property_file=prepare.property_files[0],
                                                       json_path="recipe.max_steps")])
        elif studio.get(name) is not None:
            values[name] = studio[name].to_string()
        elif name in FIXED_VALUES:
            values[name] = str(FIXED_VALUES[name])
        elif field.default is not None:
            values[name] = str(field.default)
    return values


def fine_tune_request(s: _Serverless, training_data, prepare=None) -> dict:
    """CreateTrainingJob for the serverless fine-tuning job, as AWS's trainer for the technique builds it."""
    serverless = {"BaseModelArn": s.base_model_arn, "JobType": "FineTuning",
                  "CustomizationTechnique": API_TECHNIQUE[s.technique]}
    if s.model.gated:  # AWS's trainers send AcceptEula only when true, required for gated models
        serverless["AcceptEula"] = True
    if s.training_type == "lora":
        serverless["Peft"] = "LORA"
    if s.technique == "rlvr":
        serverless["EvaluatorArn"] = evaluator_arn(s.settings)
    # Nova SFT and DPO data go as "Converse", RLVR prompts as S3Prefix (AWS's trainers).
    data_type = "Converse" if s.model.is_nova and s.technique != "rlvr" else "S3Prefix"
    request = {
        "RoleArn": s.settings.role_arn,
        "ServerlessJobConfig": serverless,
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": data_type, "S3Uri": training_data, "S3DataDistributionType": "FullyReplicated"}}}],
        "OutputDataConfig": {"S3OutputPath": f"{s.build.root}/training"},
        # for an open-weights model none: the hub recipe's own (module docstring)
        "HyperParameters": hyperparameters(s, prepare) if s.model.is_nova else {},
        "ModelPackageConfig": {"ModelPackageGroupArn": s.group_arn},
        **_mlflow(s),
        "Tags": _jumpstart_tags(s),
    }
    return request


# 2. Fine-tune: the serverless job, which registers its output in the pipeline's model package group.
def _fine_tune(s: _Serverless, prepare, training_data):
    kind = "LoRA" if s.training_type == "lora" else "full-rank"
    title = s.recipe.model_name if s.model.is_nova else s.model.model_id
    return _step(TRAIN, f"Fine-tune {title} ({kind} {s.technique.upper()}, serverless)",
                 f"SageMaker AI serverless {s.technique.upper()} of {s.model.model_id} ({kind}); the job registers "
                 f"the model package in {s.settings.model_package_group}, pending the gate.",
                 fine_tune_request(s, training_data, prepare))


def generation_request(s: _Serverless, data, trained=None) -> dict:
    """CreateTrainingJob for a serverless generation (evaluation) job, as CUSTOM_SCORER_TEMPLATE
    renders it for Nova: the base model, or with `trained` the package its job registered."""
    request = {
        "RoleArn": s.settings.role_arn,
        "ServerlessJobConfig": {"BaseModelArn": s.base_model_arn, "AcceptEula": True, "JobType": "Evaluation",
                                "EvaluationType": "CustomScorerEvaluation", "EvaluatorArn": evaluator_arn(s.settings)},
        "StoppingCondition": {"MaxRuntimeInSeconds": EVALUATION_MAX_RUNTIME_SECONDS},
        "HyperParameters": {
            **(EVALUATION_HYPERPARAMETERS if s.model.is_nova else OPEN_WEIGHTS_EVALUATION_HYPERPARAMETERS),
            **INFERENCE_HYPERPARAMETERS},
        "OutputDataConfig": {"S3OutputPath": f"{s.build.root}/generations", "CompressionType": "NONE"},
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": data}}}],
        **_mlflow(s),
    }
    if trained is not None:
        request["ModelPackageConfig"] = {"ModelPackageGroupArn": s.group_arn,
                                         "SourceModelPackageArn": trained.properties.OutputModelPackageArn}
    return request


# 3. Generate answers on FinQA questions: serverless evaluation jobs, whose generations the scorer reads.
def _generation(s: _Serverless, name: str, display_name: str, data, trained, description: str):
    return _step(name, display_name, description + " (SageMaker AI serverless evaluation, CustomScorerEvaluation "
                 "with FinQA's reward as the evaluator; the gate scores the generations itself.)",
                 generation_request(s, data, trained))


# 6. Gate: the scores go onto the package either way; a failed gate rejects it.
def _gate(s: _Serverless, prepare, train, score):
    from sagemaker.core.workflow import ConditionGreaterThanOrEqualTo, Join
    from sagemaker.mlops.workflow import ConditionStep, FailStep

    accuracy, baseline_accuracy = _accuracies(score)
    threshold = s.build.parameters.accuracy_threshold
    reject = _package_step(s, prepare, train, score, REJECT)
    fail = FailStep(name=FAIL, display_name="Accuracy too low", depends_on=[reject], error_message=Join(on=" ", values=[
        "Fine-tuned accuracy", accuracy, "is below the AccuracyThreshold", threshold,
        "or below the base model's accuracy", baseline_accuracy, "; the model package was rejected"]))
    return ConditionStep(
        name=GATE, display_name="Accuracy gate",
        description="Keeps the registered model for review when its accuracy reaches AccuracyThreshold and the "
                    "base model's; rejects it otherwise.",
        conditions=[ConditionGreaterThanOrEqualTo(left=accuracy, right=threshold),
                    ConditionGreaterThanOrEqualTo(left=accuracy, right=baseline_accuracy)],
        if_steps=[_package_step(s, prepare, train, score, RECORD)], else_steps=[reject, fail])


def _package_step(s: _Serverless, prepare, train, score, name: str):
    from sagemaker.core.workflow import ExecutionVariables, Join

    p = s.build.parameters
    keep = name == RECORD
    metadata = {
        keys.PLATFORM: "serverless",
        **({keys.RECIPE: s.recipe.id} if s.model.is_nova else {}),  # an open-weights job takes no Nova recipe
        keys.BASE_MODEL: s.model.model_id,
        keys.BASE_MODEL_ARN: s.base_model_arn,
        keys.TECHNIQUE: API_TECHNIQUE[s.technique],
        keys.TRAINING_TYPE: s.training_type,
        keys.TRAINING_JOB: train.properties.TrainingJobName,
        keys.EVAL_DATA_S3_URI: Join(on="/", values=[_prepared(prepare, "eval"), "gen_qa.jsonl"]),
        keys.EVALUATION_S3_URI: Join(on="/", values=[
            score.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri, "evaluation.json"]),
        keys.PIPELINE_EXECUTION_ARN: ExecutionVariables.PIPELINE_EXECUTION_ARN,
        **({keys.REWARD_EVALUATOR_ARN: evaluator_arn(s.settings)} if s.technique == "rlvr" else {}),
        **{RECIPE_PARAMETERS[name].dest: value.to_string() for name, value in p.recipe.items()},
    }
    inputs = [_input("evaluation", score.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri,
                     f"{PROCESSING}/input/evaluation"),
              _input("report", _prepared(prepare, "report"), f"{PROCESSING}/input/report")]
    arguments = ["steps.model_package", "--model-package-arn", train.properties.OutputModelPackageArn,
                 "--evaluation", f"{PROCESSING}/input/evaluation/evaluation.json",
                 "--data-report", f"{PROCESSING}/input/report/data_report.json",
                 "--verdict", "keep" if keep else "reject", "--region", s.settings.region,
                 "--accuracy-threshold", p.accuracy_threshold.to_string(),
                 *(["--approval-status", approval_status(s.settings)] if keep else []),
                 *[part for key, value in metadata.items()
                   for part in ("--metadata", Join(on="=", values=[key, value]))]]
    step = _processing(
        s.build, name, "nova-finqa-package",
        "Keep the model for review" if keep else "Reject the model",
        ("Writes the scores onto the model package the fine-tuning job registered; it stays pending a person's "
         "approval (Approved only with --auto-approve at upsert)." if keep else
         "Writes the scores onto the model package the fine-tuning job registered and rejects it, with the "
         "measured figures."),
        inputs=inputs, outputs=[], arguments=arguments, property_files=[])
    return step


