"""Our serverless FineTune request against AWS's own trainers, built for the same inputs.

AWS's SFTTrainer / DPOTrainer / RLVRTrainer run here under a PipelineSession, as a pipeline author
would use them since SDK PRs #6213 / #6235, with exactly the AWS calls they make while building
answered (`AwsCalls`): DescribeHubContent (the hub model: its ARN and recipe collection),
S3 GetObject (the recipe's override file, i.e. the hyperparameters and their defaults),
DescribeModelPackageGroup, STS GetCallerIdentity and the S3 checks of the output path. Any other
call fails the test. What they put in the TrainingStep is then compared with the FineTune step of
our dry-run definition, Studio parameters read as their defaults.

The differences, each deliberate (pipeline/serverless.py says why):
- BaseModelArn: AWS's trainer takes the version DescribeHubContent returns; ours has none
  (SageMaker takes the latest either way: botocore's ServerlessJobConfig documentation).
- The training data's S3 URI: ours is the preparation step's output (a pipeline expression); the
  trainer is given a plain URI. Compared after both are put to the same placeholder.
- max_steps of Nova 2 SFT: computed by the preparation step (a JsonGet); the trainer is given the
  same value.
The hub's override file is not readable offline: it is stood in by the catalog recipe's fields
(their allowed values and defaults), the source our request takes them from; what this test shows
is that given the same hyperparameters the requests agree in everything else.
"""
from __future__ import annotations

import copy
import datetime
import json
from io import BytesIO

import boto3
import pytest
import yaml
from botocore.awsrequest import AWSResponse
from botocore.response import StreamingBody

from pipeline.settings import Settings
from steps.serverless_models import hub_model
from tests import test_serverless_pipeline as serverless_pipeline_tests

ROLE = "arn:aws:iam::111122223333:role/NovaFinQAPipelineRole"
ACCOUNT = "111122223333"
BUCKET = "amzn-s3-demo-bucket"
REGION = "us-east-1"
HUB_VERSION = "1.2.0"
HUB_BUCKET = "jumpstart-cache-prod-us-east-1"
OVERRIDE_KEY, TEMPLATE_KEY = "recipes/override-params.json", "recipes/recipe-template.yaml"
TRAIN_URI = "s3://amzn-s3-demo-bucket/nova-finqa/prepared/train/train.jsonl"
# With no MLflow ARN AWS's trainers find or create the account's default MLflow app (ListMlflowApps,
# CreateMlflowApp) and always send MlflowConfig; the pipeline logs to MLflow only when
# --mlflow-tracking-arn is set, as on training jobs. Compared with one set on both sides.
MLFLOW_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:mlflow-tracking-server/finqa"
RUN_NAME = "<Execution.PipelineExecutionId>"

# The combinations the serverless pipeline tests build, each compared with AWS's trainer.
CASES = serverless_pipeline_tests.CASES


class AwsCalls:
    """Answers exactly the calls listed, from a botocore `before-call` handler (as botocore's
    Stubber does: parameters are validated against the API model before it runs); any other
    call fails. `seen` records each operation's API parameters."""

    def __init__(self, answers: dict):
        self.answers = answers
        self.seen: list[tuple[str, dict]] = []
        self.unexpected: list[str] = []

    def install(self, session: boto3.Session) -> None:
        session._session.register("provide-client-params", self._record)
        session._session.register("before-call", self._answer)

    def _record(self, params, model, **kwargs):
        self.seen.append((model.name, copy.deepcopy(params)))

    def _answer(self, model, **kwargs):
        answer = self.answers.get(model.name)
        if answer is None:
            self.unexpected.append(model.name)
            raise AssertionError(f"AWS's trainer made an unexpected call: {model.name}")
        params = self.seen[-1][1] if self.seen and self.seen[-1][0] == model.name else {}
        parsed = answer(params) if callable(answer) else copy.deepcopy(answer)
        return AWSResponse("https://stand-in.invalid", 200, {}, None), parsed


def _override_spec(chosen) -> dict:
    """The hub override file, stood in by the catalog recipe's fields: {name: {type, default, ...}}."""
    from pipeline.serverless import PLATFORM_FIELDS

    spec = {}
    for name, field in chosen.fields.items():
        if name in PLATFORM_FIELDS:
            continue
        entry = {"type": field.type, "default": field.default}
        if field.enum is not None:
            entry["enum"] = list(field.enum)
        for bound in ("min", "max"):
            if getattr(field, bound) is not None:
                entry[bound] = getattr(field, bound)
        spec[name] = entry
    return spec


def _answers(model, technique: str, training_type: str, spec: dict, template: dict) -> dict:
    now = datetime.datetime(2026, 12, 6, tzinfo=datetime.UTC)
    recipe = {"CustomizationTechnique": technique.upper(), "SmtjRecipeTemplateS3Uri": f"s3://{HUB_BUCKET}/{TEMPLATE_KEY}",
              "SmtjOverrideParamsS3Uri": f"s3://{HUB_BUCKET}/{OVERRIDE_KEY}"}
    if training_type == "lora":
        recipe["Peft"] = "LORA"
    document = {"RecipeCollection": [recipe], "GatedBucket": model.gated}
    hub_content = {
        "HubContentName": model.hub_content_name, "HubContentVersion": HUB_VERSION, "HubContentType": "Model",
        "HubContentArn": f"{model.base_model_arn(REGION)}/{HUB_VERSION}", "DocumentSchemaVersion": "2.0.0",
        "HubName": "SageMakerPublicHub", "HubArn": f"arn:aws:sagemaker:{REGION}:aws:hub/SageMakerPublicHub",
        "HubContentDocument": json.dumps(document), "HubContentStatus": "Available", "CreationTime": now}
    files = {OVERRIDE_KEY: json.dumps(spec).encode(), TEMPLATE_KEY: yaml.safe_dump(template).encode()}

    def get_object(params):
        assert params["Bucket"] == HUB_BUCKET and params["Key"] in files, params
        body = files[params["Key"]]
        return {"Body": StreamingBody(BytesIO(body), len(body)), "ContentLength": len(body)}

    def head_object(params):
        assert params["Bucket"] == HUB_BUCKET and params["Key"] in files, params
        return {"ContentLength": len(files[params["Key"]])}

    return {
        "DescribeHubContent": hub_content,
        "GetObject": get_object,
        # The recipe template: AWS's trainer resolves the recipe when hyperparameters are set on it.
        "HeadObject": head_object,
        "DescribeModelPackageGroup": {
            "ModelPackageGroupName": "nova-finqa", "CreationTime": now, "ModelPackageGroupStatus": "Completed",
            "ModelPackageGroupArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/nova-finqa",
            "CreatedBy": {}},
        "GetCallerIdentity": {"Account": ACCOUNT, "Arn": ROLE, "UserId": "stand-in"},
        "HeadBucket": {},
        "ListObjectsV2": {"Contents": [{"Key": "nova-finqa/training/x"}], "KeyCount": 1},
    }


def _sdk_request(model, technique: str, training_type: str, chosen, hyperparameters: dict, evaluator_arn: str,
                 monkeypatch) -> tuple[dict, AwsCalls]:
    """What AWS's trainer puts in a TrainingStep for these inputs."""
    from pipeline.sdk import offline_sdk

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
    calls = AwsCalls(_answers(model, technique, training_type, _override_spec(chosen), dict(chosen.template)))
    session = boto3.Session(region_name=REGION)
    calls.install(session)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)
    with offline_sdk():
        from sagemaker.core.workflow.pipeline_context import PipelineSession
        from sagemaker.mlops.workflow import TrainingStep
        from sagemaker.train import DPOTrainer, RLVRTrainer, SFTTrainer
        from sagemaker.train.common import TrainingType

        pipeline_session = PipelineSession(boto_session=session, default_bucket=BUCKET)
        pipeline_session.sagemaker_config = {}
        trainer_class = {"sft": SFTTrainer, "dpo": DPOTrainer, "rlvr": RLVRTrainer}[technique]
        extra = {"custom_reward_function": evaluator_arn, "skip_reward_validation": True} if technique == "rlvr" else {}
        trainer = trainer_class(
            mlflow_resource_arn=MLFLOW_ARN, mlflow_experiment_name="nova-finqa-sft", mlflow_run_name=RUN_NAME,
            is_multimodal=False,  # FinQA is text: no need for the trainer to read the data to find out
            model=model.model_id, training_type=TrainingType.LORA if training_type == "lora" else TrainingType.FULL,
            model_package_group="nova-finqa", sagemaker_session=pipeline_session, role=ROLE,
            s3_output_path=f"s3://{BUCKET}/nova-finqa/training", **extra)
        for name, value in hyperparameters.items():
            # The same values as ours, set as a user sets them (checked against the spec on assignment).
            field = chosen.fields[name]
            typed = {"integer": int, "float": float, "boolean": lambda v: v == "True"}.get(field.type, str)(value)
            setattr(trainer.hyperparameters, name, typed)
        step = TrainingStep(name="FineTune", step_args=trainer.train(training_dataset=TRAIN_URI, wait=False))
        return json.loads(json.dumps(step.arguments, default=str)), calls


def _ours(model_id: str, technique: str, training_type: str) -> tuple[dict, dict, object]:
    from pipeline.definition import build_pipeline
    from pipeline.serverless import serverless_recipe

    settings = Settings(region=REGION, role_arn=ROLE, bucket=BUCKET, platform="serverless", base_model=model_id,
                        technique=technique, training_type=training_type, mlflow_tracking_arn=MLFLOW_ARN)
    definition = json.loads(build_pipeline(settings).definition)
    defaults = {parameter["Name"]: parameter["DefaultValue"] for parameter in definition["Parameters"]}
    fine_tune = next(step for step in definition["Steps"] if step["Name"] == "FineTune")
    return fine_tune["Arguments"], defaults, serverless_recipe(settings)


def _resolved(value, defaults: dict, computed: dict):
    """A definition value with each parameter read as its default (as text, as a job receives it)
    and each preparation-step figure as `computed` gives it."""
    if isinstance(value, dict) and set(value) == {"Std:Join"}:
        parts = [_resolved(v, defaults, computed) for v in value["Std:Join"]["Values"]]
        return value["Std:Join"]["On"].join(str(p) for p in parts)
    if isinstance(value, dict) and set(value) == {"Get"}:
        kind, name = value["Get"].split(".", 1)
        return defaults[name] if kind == "Parameters" else f"<{value['Get']}>"
    if isinstance(value, dict) and set(value) == {"Std:JsonGet"}:
        return computed[value["Std:JsonGet"]["Path"]]
    if isinstance(value, dict):
        return {k: _resolved(v, defaults, computed) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v, defaults, computed) for v in value]
    return value


def _python_text(value, field_type: str) -> str:
    """A parameter default as the SDK writes a hyperparameter: str() of the typed value."""
    return str({"integer": int, "float": float}.get(field_type, str)(value))


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_fine_tune_request_is_what_aws_trainer_builds(case, monkeypatch):
    from pipeline.reward_evaluator import evaluator_arn

    model_id, technique, training_type = CASES[case]
    ours, defaults, chosen = _ours(model_id, technique, training_type)
    model = hub_model(model_id)
    computed = {"recipe.max_steps": "5"}
    ours = _resolved(ours, defaults, computed)
    hyperparameters = {name: _python_text(value, chosen.fields[name].type)
                       for name, value in ours["HyperParameters"].items()}
    ours["HyperParameters"] = hyperparameters
    settings = Settings(region=REGION, role_arn=ROLE, bucket=BUCKET)
    theirs, calls = _sdk_request(model, technique, training_type, chosen, hyperparameters, evaluator_arn(settings),
                                 monkeypatch)
    assert not calls.unexpected

    differences = {}
    # 1. BaseModelArn: version-less (ours) against the version DescribeHubContent returned (theirs).
    theirs_arn, ours_arn = theirs["ServerlessJobConfig"]["BaseModelArn"], ours["ServerlessJobConfig"]["BaseModelArn"]
    assert theirs_arn == f"{ours_arn}/{HUB_VERSION}"
    differences["BaseModelArn"] = (ours_arn, theirs_arn)
    theirs["ServerlessJobConfig"]["BaseModelArn"] = ours_arn
    # 2. The training data's URI: the preparation step's output in ours, the same file given to theirs.
    ours["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = TRAIN_URI
    assert theirs == ours, json.dumps({"ours": ours, "theirs": theirs}, indent=1, sort_keys=True)
    assert list(differences) == ["BaseModelArn"]
    called = {name for name, _ in calls.seen}
    assert {"DescribeHubContent", "GetObject", "DescribeModelPackageGroup"} <= called


def test_the_stand_in_answers_only_what_it_is_told(monkeypatch):
    """A trainer call nobody answered fails: the oracle cannot pass on a call it did not expect."""
    calls = AwsCalls({})
    session = boto3.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    calls.install(session)
    with pytest.raises(AssertionError, match="unexpected call: DescribeHubContent"):
        session.client("sagemaker").describe_hub_content(HubName="SageMakerPublicHub", HubContentType="Model",
                                                         HubContentName="nova-textgeneration-lite-v2")
    assert calls.unexpected == ["DescribeHubContent"]


def test_version_pinning_makes_no_difference_to_what_sagemaker_runs():
    """botocore's documentation of BaseModelArn: SageMaker always selects the latest version."""
    import botocore.session

    shape = botocore.session.get_session().get_service_model("sagemaker").shape_for("ServerlessJobConfig")
    documentation = shape.members["BaseModelArn"].documentation
    assert "always selects the latest version" in documentation


@pytest.mark.parametrize("case", ["nova-2-lite-sft-lora", "nova-micro-dpo-lora"])
def test_generation_jobs_are_aws_custom_scorer_template_rendered_for_nova(case):
    """Our GenerateFineTunedAnswers / GenerateBaseModelAnswers against AWS's CUSTOM_SCORER_TEMPLATE
    (sagemaker-train evaluate/pipeline_templates.py) rendered with the context CustomScorerEvaluator
    builds for a Nova model and a custom evaluator (task and strategy gen_qa, metric all,
    lambda_type rft, postprocessing True, aggregation mean), the same inference values and paths."""
    import jinja2
    from sagemaker.train.evaluate.pipeline_templates import CUSTOM_SCORER_TEMPLATE

    from pipeline.definition import build_pipeline
    from pipeline.reward_evaluator import evaluator_arn
    from pipeline.serverless import INFERENCE_HYPERPARAMETERS

    model_id, technique, training_type = CASES[case]
    settings = Settings(region=REGION, role_arn=ROLE, bucket=BUCKET, platform="serverless", base_model=model_id,
                        technique=technique, training_type=training_type)
    definition = json.loads(build_pipeline(settings).definition)
    steps = {step["Name"]: step["Arguments"] for step in definition["Steps"]}
    data, package = "s3://amzn-s3-demo-bucket/nova-finqa/prepared/eval/gen_qa.jsonl", "<FineTune package>"
    rendered = json.loads(jinja2.Template(CUSTOM_SCORER_TEMPLATE).render(
        mlflow_resource_arn=MLFLOW_ARN, evaluate_base_model=True, role_arn=ROLE,
        base_model_arn=hub_model(model_id).base_model_arn(REGION), evaluator_arn=evaluator_arn(settings),
        task="gen_qa", strategy="gen_qa", metric="all", lambda_type="rft", postprocessing="True", aggregation="mean",
        **INFERENCE_HYPERPARAMETERS, s3_output_path=f"s3://{BUCKET}/nova-finqa/generations", dataset_uri=data,
        model_package_group_arn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/nova-finqa",
        source_model_package_arn=package, pipeline_name="p", dataset_artifact_arn="a", action_arn_prefix="b"))
    theirs = {step["Name"]: step["Arguments"] for step in rendered["Steps"]}
    for ours_name, their_name in (("GenerateBaseModelAnswers", "EvaluateBaseModel"),
                                  ("GenerateFineTunedAnswers", "EvaluateCustomModel")):
        ours = json.loads(json.dumps(steps[ours_name]))
        ours["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = data
        if "ModelPackageConfig" in ours:
            source = ours["ModelPackageConfig"]["SourceModelPackageArn"]
            assert source == {"Get": "Steps.FineTune.OutputModelPackageArn"}
            ours["ModelPackageConfig"]["SourceModelPackageArn"] = package
        assert ours == theirs[their_name], (ours_name, json.dumps({"ours": ours, "theirs": theirs[their_name]},
                                                                  indent=1, sort_keys=True))
