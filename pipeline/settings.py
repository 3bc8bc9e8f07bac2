"""The project's one settings object: CLI flags, then environment variables, then defaults.

Every command (`pipeline.upsert`, the operator scripts) takes the same flags through
`add_settings_arguments` and resolves them with `Settings.resolve`, so a user sets a value
once, in CI variables or on the command line, and every tool sees it.

Each setting is declared once, as a field of `Settings`: its flag, environment variables,
default, help and rule. The parser, the resolution, the checks and the table in
docs/settings.md (`python -m scripts.settings_table --write`) are all made from it.
"""
from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace

from steps.catalog import DEFAULT_RECIPE, RecipeError, recipe
from steps.open_weights_models import SERVING_CHOICES
from steps.serverless_models import (
    DEFAULT_BASE_MODEL,
    DEFAULT_TECHNIQUE,
    DEFAULT_TRAINING_TYPE,
    HUB_MODELS,
    TECHNIQUES,
    TRAINING_TYPES,
    HubModel,
    ServerlessModelError,
    hub_model,
    offered,
)
from steps.tracking import ENDPOINTS as MLFLOW_RESOURCE_TYPES
from steps.tracking import MLFLOW_ARN


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the flag and the variable."""


_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_TAG = re.compile(r"^([^=]+)=(.*)$")
_INSTANCE_TYPE = re.compile(r"ml\.[a-z0-9-]+\.[a-z0-9-]+")
MODEL_PACKAGE_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:([a-z]{2}(-[a-z]+)+-\d):(\d{12}):model-package/"
                               r"([a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})/(\d+)$")
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no", "")
# S3's "safe" key characters (its object key naming page), less '*', which IAM policies read as
# a wildcard: the prefix goes into the hook's policies as well as into keys.
_PREFIX_SEGMENT = re.compile(r"^[A-Za-z0-9!_.'()-]+$")

Rule = Callable[[str], "str | None"]
"""Why a value is refused (said after the flag and the value), or None; its docstring is the rule
as docs/settings.md states it."""


def _region(value: str) -> str | None:
    """an AWS region name"""
    return None if _REGION.match(value) else "is not an AWS region name (e.g. us-east-1)"


def _role_arn(value: str) -> str | None:
    """an IAM role ARN"""
    return None if _ROLE_ARN.match(value) else "is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)"


def _bucket(value: str) -> str | None:
    """S3's bucket naming rules, each one named when it is broken"""
    return bucket_name_problem(value)


def _prefix(value: str) -> str | None:
    """letters, digits and `!_.'()-` between single `/`, none first or last, no `.` or `..` part"""
    if value.startswith("/") or value.endswith("/"):
        return "must not start or end with '/'"
    if not all(_PREFIX_SEGMENT.match(part) and part not in (".", "..") for part in value.split("/")):
        return ("may hold only letters, digits and !_.'()- between single '/' (no '.' or '..' part): it goes into "
                "S3 keys and into IAM policies")
    return None


def _switch(value: str) -> str | None:
    """true or false (also 1/0, yes/no)"""
    return None if value.lower() in _TRUE + _FALSE else "must be true or false"


def _name(value: str) -> str | None:
    """1-63 letters, digits or hyphens"""
    return None if _NAME.match(value) else "must be 1-63 letters, digits or hyphens"


def _recipe(value: str) -> str | None:
    """a supported recipe id (the recipe table)"""
    try:
        recipe(value)
    except RecipeError as error:
        return str(error)
    return None


def _model_units(value: str) -> str | None:
    """a whole number, 1 or more"""
    if re.fullmatch(r"[1-9][0-9]{0,5}", value):
        return None
    return "must be a whole number of model units, 1 or more"


def _mlflow_arn(value: str) -> str | None:
    """a SageMaker MLflow tracking server or app ARN"""
    match = MLFLOW_ARN.match(value)
    if match and match.group(2) in MLFLOW_RESOURCE_TYPES:
        return None
    return ("is not a SageMaker MLflow tracking server or app ARN "
            "(arn:aws:sagemaker:<region>:<12-digit account>:mlflow-tracking-server/<name>)")


def _model_package_arn(value: str) -> str | None:
    """a versioned model package ARN of --model-package-group, in --region"""
    if MODEL_PACKAGE_ARN.match(value):
        return None
    return "is not a versioned model package ARN (arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>)"


PLATFORMS = ("training-jobs", "serverless")


def _platform(value: str) -> str | None:
    """training-jobs or serverless"""
    return None if value in PLATFORMS else f"is not a platform: choose one of {', '.join(PLATFORMS)}"


def _base_model(value: str) -> str | None:
    """a hub model of the serverless model table (docs/serverless.md)"""
    try:
        hub_model(value)
    except ServerlessModelError as error:
        return str(error)
    return None


def _technique(value: str) -> str | None:
    """sft, dpo or rlvr"""
    return None if value in TECHNIQUES else f"is not a technique: choose one of {', '.join(TECHNIQUES)}"


def _serving(value: str) -> str | None:
    """auto, bedrock or sagemaker-endpoint"""
    return None if value in SERVING_CHOICES else f"is not a way to serve: choose one of {', '.join(SERVING_CHOICES)}"


def _instance_type(value: str) -> str | None:
    """a SageMaker instance type (ml.<family>.<size>)"""
    return None if _INSTANCE_TYPE.fullmatch(value) else "is not a SageMaker instance type (e.g. ml.g5.12xlarge)"


def _training_type(value: str) -> str | None:
    """lora or full"""
    return None if value in TRAINING_TYPES else f"is not a training type: choose one of {', '.join(TRAINING_TYPES)}"


def _tag(value: str) -> str | None:
    """KEY=VALUE, key at most 128 characters, value at most 256 (SageMaker's Tag, botocore's model)"""
    match = _TAG.match(value.strip())
    if not match or not match.group(1).strip():
        return "is not KEY=VALUE"
    key, text = match.group(1).strip(), match.group(2).strip()
    if len(key) > 128 or len(text) > 256:
        return (f"is too long: SageMaker takes tag keys of at most 128 characters and values of at most 256 "
                f"(this one: {len(key)} and {len(text)}); shorten it")
    return None


@dataclass(frozen=True)
class Setting:
    """One setting as its `Settings` field declares it."""
    env: tuple[str, ...]
    help: str
    default: str | None = None
    unset: str = ""
    rule: Rule | None = None
    repeatable: bool = False
    switch: bool = False
    """A flag without a value (sets "true"); its environment variable takes true or false."""
    flag_name: str = ""
    name: str = ""

    @property
    def flag(self) -> str:
        return self.flag_name or "--" + self.name.replace("_", "-")


def setting(*env: str, help: str, default: str | None = None, unset: str = "", rule: Rule | None = None,
            repeatable: bool = False, switch: bool = False, flag: str = ""):
    """A `Settings` field: set by its flag (--FIELD-NAME unless `flag`), else by the first of the
    environment variables `env` that is set, else `default`. Without a default it must be given
    to construct Settings; `unset` says, for the docs, what leaving it empty means."""
    spec = Setting(env=env, help=help, default=default, unset=unset, rule=rule, repeatable=repeatable,
                   switch=switch, flag_name=flag)
    if repeatable:
        return field(default=(), metadata={"setting": spec})
    if default is None:
        return field(metadata={"setting": spec})
    return field(default=default, metadata={"setting": spec})


@dataclass(frozen=True)
class Settings:
    region: str = setting("AWS_REGION", "AWS_DEFAULT_REGION", rule=_region, unset="(required)",
                          help="AWS region of the pipeline, e.g. us-east-1")
    role_arn: str = setting("NOVA_ROLE_ARN", rule=_role_arn, unset="(required for upsert)",
                            help="IAM role that SageMaker assumes to run the pipeline's jobs")
    bucket: str = setting("NOVA_BUCKET", rule=_bucket,
                          unset="(required for upsert and `deploy_approval_hook`)",
                          help="S3 bucket for code, recipes, data and job outputs; it must exist (the upsert "
                               "creates no bucket)")
    prefix: str = setting("NOVA_PREFIX", default="nova-finqa", rule=_prefix, help="S3 key prefix under the bucket")
    pipeline_name: str = setting("NOVA_PIPELINE_NAME", default="nova-finqa-sft", rule=_name,
                                 unset="`nova-finqa-<method>` of the recipe (`nova-finqa-sft`, `-rft`, `-dpo`); "
                                       "on serverless `nova-finqa-serverless-<technique>`",
                                 help="name of the SageMaker Pipeline; one per training method and platform unless "
                                      "given, so that one example never replaces another")
    model_package_group: str = setting("NOVA_MODEL_PACKAGE_GROUP", default="nova-finqa", rule=_name,
                                       help="Model Registry group the pipeline registers models in")
    recipe: str = setting("NOVA_RECIPE", default=DEFAULT_RECIPE, rule=_recipe,
                          help="AWS's Nova recipe id (aws/sagemaker-hyperpod-recipes); see the README's table of "
                               "supported recipes")
    bedrock_role_arn: str = setting("NOVA_BEDROCK_ROLE_ARN", default="", rule=_role_arn,
                                    unset="(for the Bedrock import)",
                                    help="IAM role that Bedrock assumes to read the checkpoint when importing an "
                                         "approved model")
    provisioned_model_units: str = setting(
        "NOVA_PROVISIONED_MODEL_UNITS", default="", rule=_model_units, unset="none: on-demand deployment",
        help="serve an approved model with Provisioned Throughput of this many model units (billed by the hour "
             "until deleted) instead of an on-demand deployment")
    mlflow_tracking_arn: str = setting(
        "NOVA_MLFLOW_TRACKING_ARN", default="", rule=_mlflow_arn, unset="none: no MLflow in the pipeline",
        help="SageMaker managed MLflow tracking server (or app) ARN the jobs and the scoring step log to; "
             "unset, the pipeline has no MLflow")
    source_model_package: str = setting(
        "NOVA_SOURCE_MODEL_PACKAGE", default="", rule=_model_package_arn,
        unset="none: training starts from the base model",
        help="ARN of an Approved model package of the group whose checkpoint training starts from instead of the base "
             "model (e.g. SFT -> DPO; AWS's iterative training); read with DescribeModelPackage at upsert")
    platform: str = setting(
        "NOVA_PLATFORM", default="training-jobs", rule=_platform,
        help="where the model is trained: training-jobs (AWS's recipe on instances you choose, --recipe) or "
             "serverless (SageMaker AI serverless model customization: --base-model, --technique, --training-type; "
             "docs/serverless.md)")
    base_model: str = setting(
        "NOVA_BASE_MODEL", default=DEFAULT_BASE_MODEL, rule=_base_model,
        help="with --platform serverless: the hub model, as AWS's SDK names it ("
             + ", ".join(m.model_id for m in HUB_MODELS) + ")")
    technique: str = setting("NOVA_TECHNIQUE", default=DEFAULT_TECHNIQUE, rule=_technique,
                             help="with --platform serverless: the customization technique (" + ", ".join(TECHNIQUES)
                                  + ")")
    training_type: str = setting("NOVA_TRAINING_TYPE", default=DEFAULT_TRAINING_TYPE, rule=_training_type,
                                 help="with --platform serverless: lora (LoRA adapters) or full (all weights)")
    open_weights_serving: str = setting(
        "NOVA_OPEN_WEIGHTS_SERVING", default="auto", rule=_serving,
        help="how the approval hook serves an approved open-weights model: auto (Bedrock Custom Model Import where "
             "Bedrock takes the architecture in the region, else a SageMaker endpoint), bedrock, or "
             "sagemaker-endpoint (docs/open-weights.md)")
    endpoint_role_arn: str = setting(
        "NOVA_ENDPOINT_ROLE_ARN", default="", rule=_role_arn, unset="the pipeline's --role-arn",
        help="IAM role a SageMaker endpoint serving an open-weights model runs with: it reads the model data and "
             "pulls the serving image")
    endpoint_instance_type: str = setting(
        "NOVA_ENDPOINT_INSTANCE_TYPE", default="", rule=_instance_type,
        unset="the base model's Default hosting configuration in the hub",
        help="instance type of a SageMaker endpoint serving an open-weights model; one the base model's hub "
             "hosting configurations publish (billed by the hour until the endpoint is deleted)")
    checkpoint_bucket: str = setting(
        "NOVA_CHECKPOINT_BUCKET", default="", rule=_bucket,
        unset="none: checkpoints only from the account's escrow bucket",
        help="the one bucket Nova checkpoints may come from, where it is not AWS's escrow bucket of this account "
             "(customer-escrow-<account>-...); the checkpoint step, the approval hook and the Bedrock import "
             "refuse a checkpoint anywhere else")
    auto_approve: str = setting(
        "NOVA_AUTO_APPROVE", default="", rule=_switch, switch=True, unset="off: a person approves each model",
        help="register models that pass the accuracy gate as Approved, which starts the Bedrock import with no "
             "reviewer (docs/security.md)")
    tags: tuple[tuple[str, str], ...] = setting(
        "NOVA_TAGS", flag="--tag", repeatable=True, rule=_tag, unset="none",
        help="tag for the pipeline, repeatable")

    @property
    def s3_root(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    @property
    def account(self) -> str:
        """The pipeline's account: the one of the role its jobs run with."""
        return self.role_arn.split(":")[4] if self.role_arn else ""

    @property
    def model_units(self) -> int | None:
        """Provisioned Throughput model units to buy, or None for an on-demand deployment."""
        return int(self.provisioned_model_units) if self.provisioned_model_units else None

    @property
    def serverless(self) -> bool:
        return self.platform == "serverless"

    @property
    def hub_model(self) -> HubModel:
        """The serverless base model (checked against what AWS offers in the region when resolved)."""
        return offered(self.base_model, self.technique, self.training_type, self.region)

    @property
    def approves_automatically(self) -> bool:
        return self.auto_approve.lower() in _TRUE

    @property
    def tag_list(self) -> list[dict[str, str]]:
        return [{"Key": key, "Value": value} for key, value in self.tags]

    @classmethod
    def resolve(
        cls,
        args: argparse.Namespace | None = None,
        environ: Mapping[str, str] | None = None,
        required: tuple[str, ...] = ("region", "role_arn", "bucket"),
    ) -> Settings:
        """Flags win over environment variables, which win over defaults.

        `required` names the settings this command cannot run without; a missing one is a
        `SettingsError` naming its flag and variable. Settings not required and not given
        are left empty.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        missing: list[str] = []
        for spec in SETTINGS:
            if spec.repeatable:
                texts = list(getattr(args, spec.name, None) or [])
                if not texts and environ.get(spec.env[0]):
                    texts = [t for t in environ[spec.env[0]].split(",") if t.strip()]
                values[spec.name] = _parse_tags(texts, spec.env[0])
                continue
            value = getattr(args, spec.name, None) if args is not None else None
            if value in (None, ""):
                value = next((environ[v] for v in spec.env if environ.get(v)), None)
            if value in (None, "") and spec.name == "pipeline_name":
                continue  # not given: named after the recipe's method, below
            if value in (None, ""):
                value = spec.default
            if value in (None, ""):
                if spec.name in required:
                    missing.append(f"{spec.flag} (or the environment variable {' / '.join(spec.env)})")
                value = ""
            values[spec.name] = value.strip()
        if missing:
            raise SettingsError("missing setting: " + "; ".join(missing))
        values.setdefault("pipeline_name", default_pipeline_name(str(values["recipe"]), str(values.get("platform", "")),
                                                               str(values.get("technique", ""))))
        settings = cls(**values)
        settings._check()
        return settings

    def _serverless_problems(self) -> list[str]:
        """On serverless, the model x technique x training type x region must be one AWS offers."""
        if not self.serverless or self.technique not in TECHNIQUES or self.training_type not in TRAINING_TYPES:
            return []
        problems = []
        # Without a region (a command that needs none) the model, technique and type are still checked.
        regions = [self.region] if self.region else sorted({r for m in HUB_MODELS for r in m.regions})
        errors = []
        for region in regions:
            try:
                offered(self.base_model, self.technique, self.training_type, region)
                break
            except ServerlessModelError as error:
                errors.append(str(error))
        else:
            if _base_model(self.base_model) is None:
                problems.append(errors[0])
        if self.source_model_package:
            problems.append("--source-model-package: continuing from a package is built for --platform "
                            "training-jobs only; on serverless AWS's trainers take it as ModelPackageConfig."
                            "SourceModelPackageArn, which this pipeline does not send yet")
        return problems

    def _check(self) -> None:
        problems = []
        for spec in SETTINGS:
            value = getattr(self, spec.name)
            if spec.rule is None or spec.repeatable or not value:
                continue
            problem = spec.rule(value)
            if problem:
                # A rule borrowed from elsewhere (the recipe catalog's) names the flag itself.
                problems.append(problem if problem.startswith(spec.flag) else f"{spec.flag} {value!r} {problem}")
        problems += self._source_model_package_problems() + self._serverless_problems()
        if problems:
            raise SettingsError("; ".join(problems))

    def _source_model_package_problems(self) -> list[str]:
        match = MODEL_PACKAGE_ARN.match(self.source_model_package)
        if not match:
            return []
        flag = f"--source-model-package {self.source_model_package!r}"
        if self.model_package_group and match.group(4) != self.model_package_group:
            return [f"{flag} is of the group {match.group(4)!r}, not of --model-package-group "
                    f"{self.model_package_group!r}"]
        if self.region and match.group(1) != self.region:
            return [f"{flag} is in {match.group(1)}, not in --region {self.region}: a Nova checkpoint is used in "
                    "its own region"]
        return []


SETTINGS: tuple[Setting, ...] = tuple(replace(f.metadata["setting"], name=f.name) for f in fields(Settings))
"""Every setting, in the order of the parser and of docs/settings.md."""


def default_pipeline_name(recipe_id: str, platform: str = "training-jobs", technique: str = "") -> str:
    """nova-finqa-<method> on training jobs, nova-finqa-serverless-<technique> on serverless: one pipeline
    per platform and technique unless --pipeline-name says otherwise, so that no example replaces another's."""
    if platform == "serverless":
        return f"nova-finqa-serverless-{technique or DEFAULT_TECHNIQUE}"
    try:
        method = recipe(recipe_id).method
    except RecipeError:
        method = "sft"  # the recipe error itself is reported by Settings._check
    return f"nova-finqa-{method}"


# S3's rules for general purpose bucket names, each with what a name breaking it is told:
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
# One is left out: the prefix amzn-s3-demo-, which AWS reserves for examples so that no one can
# own such a bucket. It is this project's example bucket for dry runs, and a real run against
# it fails at S3 itself.
_BUCKET_PREFIXES = ("xn--", "sthree-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_BUCKET_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")
_IP_ADDRESS = re.compile(r"^\d+\.\d+\.\d+\.\d+$")


def bucket_name_problem(name: str) -> str | None:
    """Which of S3's bucket naming rules the name breaks (all of them), or None for a valid name."""
    if name.startswith("s3://") or "/" in name:
        return "is not a bucket name: give the name alone, without s3:// or a key (that is --prefix)"
    broken = []
    if not 3 <= len(name) <= 63:
        broken.append(f"it must be 3 to 63 characters long, not {len(name)}")
    others = sorted(set(name) - _BUCKET_CHARACTERS)
    if others:
        broken.append(f"only lowercase letters, digits, '.' and '-' may be used, not {', '.join(map(repr, others))}")
    if name and not (name[0].isalnum() and name[-1].isalnum()):
        broken.append("it must begin and end with a letter or digit")
    if ".." in name:
        broken.append("it must not have two periods next to each other")
    if _IP_ADDRESS.match(name):
        broken.append("it must not be formatted as an IP address")
    broken += [f"it must not start with {prefix!r} (reserved by S3)" for prefix in _BUCKET_PREFIXES
               if name.startswith(prefix)]
    broken += [f"it must not end with {suffix!r} (reserved by S3)" for suffix in _BUCKET_SUFFIXES
               if name.endswith(suffix)]
    if not broken:
        return None
    return "breaks S3's bucket naming rules: " + "; ".join(broken)


def _parse_tags(texts: list[str], env: str) -> tuple[tuple[str, str], ...]:
    tags: dict[str, str] = {}
    for text in texts:
        if _tag(text):
            raise SettingsError(f"--tag {text!r} {_tag(text)} (or set {env}=KEY=VALUE,KEY2=VALUE2)")
        key, value = _TAG.match(text.strip()).groups()
        tags[key.strip()] = value.strip()
    return tuple(sorted(tags.items()))


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """The settings flags every command of the project takes."""
    group = parser.add_argument_group("settings (flag, then environment variable, then default)")
    for spec in SETTINGS:
        env = " / ".join(spec.env)
        default = f"; default {spec.default}" if spec.default else ""
        if spec.repeatable:
            group.add_argument(spec.flag, dest=spec.name, action="append", default=None, metavar="KEY=VALUE",
                               help=f"{spec.help} (env {env}=K=V,K2=V2)")
        elif spec.switch:
            group.add_argument(spec.flag, dest=spec.name, action="store_const", const="true", default=None,
                               help=f"{spec.help} (env {env}=true)")
        else:
            group.add_argument(spec.flag, dest=spec.name, default=None, help=f"{spec.help} (env {env}{default})")
