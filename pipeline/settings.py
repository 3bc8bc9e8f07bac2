"""The project's one settings object: CLI flags, then environment variables, then defaults.

Every command (`pipeline.upsert`, the operator scripts) takes the same flags through
`add_settings_arguments` and resolves them with `Settings.resolve`, so a user sets a value
once, in CI variables or on the command line, and every tool sees it.
"""
from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass, field
from typing import Mapping

from steps.catalog import DEFAULT_RECIPE, RecipeError, recipe
from steps.serverless_models import (
    DEFAULT_BASE_MODEL,
    DEFAULT_TECHNIQUE,
    DEFAULT_TRAINING_TYPE,
    HUB_MODELS,
    TECHNIQUES,
    HubModel,
    ServerlessModelError,
    offered,
)
from steps.tracking import ENDPOINTS as MLFLOW_RESOURCE_TYPES, MLFLOW_ARN


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the flag and the variable."""


@dataclass(frozen=True)
class _Spec:
    name: str
    flag: str
    env: tuple[str, ...]
    default: str | None
    help: str


_SPECS: tuple[_Spec, ...] = (
    _Spec("region", "--region", ("AWS_REGION", "AWS_DEFAULT_REGION"), None,
          "AWS region of the pipeline, e.g. us-east-1"),
    _Spec("role_arn", "--role-arn", ("NOVA_ROLE_ARN",), None,
          "IAM role that SageMaker assumes to run the pipeline's jobs"),
    _Spec("bucket", "--bucket", ("NOVA_BUCKET",), None,
          "S3 bucket for code, recipes, data and job outputs"),
    _Spec("prefix", "--prefix", ("NOVA_PREFIX",), "nova-finqa",
          "S3 key prefix under the bucket"),
    _Spec("pipeline_name", "--pipeline-name", ("NOVA_PIPELINE_NAME",), "nova-finqa-sft",
          "name of the SageMaker Pipeline"),
    _Spec("model_package_group", "--model-package-group", ("NOVA_MODEL_PACKAGE_GROUP",),
          "nova-finqa", "Model Registry group the pipeline registers models in"),
    _Spec("recipe", "--recipe", ("NOVA_RECIPE",), DEFAULT_RECIPE,
          "AWS's Nova recipe id (aws/sagemaker-hyperpod-recipes); see the README's table of supported recipes"),
    _Spec("bedrock_role_arn", "--bedrock-role-arn", ("NOVA_BEDROCK_ROLE_ARN",), None,
          "IAM role that Bedrock assumes to read the checkpoint when importing an approved model"),
    _Spec("provisioned_model_units", "--provisioned-model-units", ("NOVA_PROVISIONED_MODEL_UNITS",), None,
          "serve an approved model with Provisioned Throughput of this many model units (billed by the hour "
          "until deleted) instead of an on-demand deployment"),
    _Spec("mlflow_tracking_arn", "--mlflow-tracking-arn", ("NOVA_MLFLOW_TRACKING_ARN",), None,
          "SageMaker managed MLflow tracking server (or app) ARN the jobs and the scoring step log to; "
          "unset, the pipeline has no MLflow"),
    _Spec("source_model_package", "--source-model-package", ("NOVA_SOURCE_MODEL_PACKAGE",), None,
          "ARN of an Approved model package of the group whose checkpoint training starts from instead of the "
          "base model (e.g. SFT -> DPO; AWS's iterative training); read with DescribeModelPackage at upsert"),
    _Spec("platform", "--platform", ("NOVA_PLATFORM",), "training-jobs",
          "where the model is trained: training-jobs (AWS's recipe on instances you choose, --recipe) or "
          "serverless (SageMaker AI serverless model customization: --base-model, --technique, --training-type)"),
    _Spec("base_model", "--base-model", ("NOVA_BASE_MODEL",), DEFAULT_BASE_MODEL,
          "with --platform serverless: the hub model, as AWS's SDK names it ("
          + ", ".join(m.model_id for m in HUB_MODELS) + "); see docs/serverless.md"),
    _Spec("technique", "--technique", ("NOVA_TECHNIQUE",), DEFAULT_TECHNIQUE,
          "with --platform serverless: the customization technique (" + ", ".join(TECHNIQUES) + ")"),
    _Spec("training_type", "--training-type", ("NOVA_TRAINING_TYPE",), DEFAULT_TRAINING_TYPE,
          "with --platform serverless: lora (LoRA adapters) or full (all weights)"),
)

PLATFORMS = ("training-jobs", "serverless")

TAGS_ENV = "NOVA_TAGS"

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_TAG = re.compile(r"^([^=]+)=(.*)$")
MODEL_PACKAGE_ARN = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:([a-z]{2}(-[a-z]+)+-\d):(\d{12}):model-package/([a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})/(\d+)$")


@dataclass(frozen=True)
class Settings:
    region: str
    role_arn: str
    bucket: str
    prefix: str = "nova-finqa"
    pipeline_name: str = "nova-finqa-sft"
    model_package_group: str = "nova-finqa"
    recipe: str = DEFAULT_RECIPE
    bedrock_role_arn: str = ""
    provisioned_model_units: str = ""
    mlflow_tracking_arn: str = ""
    source_model_package: str = ""
    platform: str = "training-jobs"
    base_model: str = DEFAULT_BASE_MODEL
    technique: str = DEFAULT_TECHNIQUE
    training_type: str = DEFAULT_TRAINING_TYPE
    tags: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def s3_root(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

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
        values: dict[str, str] = {}
        missing: list[str] = []
        for spec in _SPECS:
            value = getattr(args, spec.name, None) if args is not None else None
            if value in (None, ""):
                value = next((environ[v] for v in spec.env if environ.get(v)), None)
            if value in (None, ""):
                value = spec.default
            if value in (None, ""):
                if spec.name in required:
                    missing.append(f"{spec.flag} (or the environment variable {' / '.join(spec.env)})")
                value = ""
            values[spec.name] = value.strip()
        if missing:
            raise SettingsError("missing setting: " + "; ".join(missing))
        tag_texts = list(getattr(args, "tag", None) or [])
        if not tag_texts and environ.get(TAGS_ENV):
            tag_texts = [t for t in environ[TAGS_ENV].split(",") if t.strip()]
        settings = cls(**values, tags=_parse_tags(tag_texts))
        settings._check()
        return settings

    def _check(self) -> None:
        problems = []
        if self.region and not _REGION.match(self.region):
            problems.append(f"--region {self.region!r} is not an AWS region name (e.g. us-east-1)")
        for flag, value in (("--role-arn", self.role_arn), ("--bedrock-role-arn", self.bedrock_role_arn)):
            if value and not _ROLE_ARN.match(value):
                problems.append(
                    f"{flag} {value!r} is not an IAM role ARN "
                    "(arn:aws:iam::<12-digit account>:role/<name>)")
        if self.bucket:
            problem = bucket_name_problem(self.bucket)
            if problem:
                problems.append(f"--bucket {self.bucket!r} {problem}")
        if self.prefix.startswith("/") or self.prefix.endswith("/"):
            problems.append(f"--prefix {self.prefix!r} must not start or end with '/'")
        for flag, value in (("--pipeline-name", self.pipeline_name),
                            ("--model-package-group", self.model_package_group)):
            if value and not _NAME.match(value):
                problems.append(f"{flag} {value!r} must be 1-63 letters, digits or hyphens")
        if self.provisioned_model_units and not re.fullmatch(r"[1-9][0-9]{0,5}", self.provisioned_model_units):
            problems.append(f"--provisioned-model-units {self.provisioned_model_units!r} must be a whole number "
                            "of model units, 1 or more")
        if self.mlflow_tracking_arn:
            match = MLFLOW_ARN.match(self.mlflow_tracking_arn)
            if not match or match.group(2) not in MLFLOW_RESOURCE_TYPES:
                problems.append(f"--mlflow-tracking-arn {self.mlflow_tracking_arn!r} is not a SageMaker MLflow "
                                "tracking server or app ARN "
                                "(arn:aws:sagemaker:<region>:<12-digit account>:mlflow-tracking-server/<name>)")
        if self.source_model_package:
            match = MODEL_PACKAGE_ARN.match(self.source_model_package)
            if not match:
                problems.append(f"--source-model-package {self.source_model_package!r} is not a versioned model "
                                "package ARN (arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>)")
            elif self.model_package_group and match.group(4) != self.model_package_group:
                problems.append(f"--source-model-package {self.source_model_package!r} is of the group "
                                f"{match.group(4)!r}, not of --model-package-group {self.model_package_group!r}")
            elif self.region and match.group(1) != self.region:
                problems.append(f"--source-model-package {self.source_model_package!r} is in {match.group(1)}, "
                                f"not in --region {self.region}: a Nova checkpoint is used in its own region")
        if self.recipe:
            try:
                recipe(self.recipe)
            except RecipeError as error:
                problems.append(str(error))
        if self.platform not in PLATFORMS:
            problems.append(f"--platform {self.platform!r}: choose one of {', '.join(PLATFORMS)}")
        elif self.serverless:
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
                problems.append(errors[0])
            if self.source_model_package:
                problems.append("--source-model-package: continuing from a package is built for --platform "
                                "training-jobs only; on serverless AWS's trainers take it as ModelPackageConfig."
                                "SourceModelPackageArn, which this pipeline does not send yet")
        if problems:
            raise SettingsError("; ".join(problems))


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


def _parse_tags(texts: list[str]) -> tuple[tuple[str, str], ...]:
    tags: dict[str, str] = {}
    for text in texts:
        match = _TAG.match(text.strip())
        if not match or not match.group(1).strip():
            raise SettingsError(
                f"--tag {text!r} is not KEY=VALUE (or set {TAGS_ENV}=KEY=VALUE,KEY2=VALUE2)")
        tags[match.group(1).strip()] = match.group(2).strip()
    return tuple(sorted(tags.items()))


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """The settings flags every command of the project takes."""
    group = parser.add_argument_group("settings (flag, then environment variable, then default)")
    for spec in _SPECS:
        env = " / ".join(spec.env)
        default = f"; default {spec.default}" if spec.default else ""
        group.add_argument(spec.flag, dest=spec.name, default=None,
                           help=f"{spec.help} (env {env}{default})")
    group.add_argument("--tag", action="append", default=None, metavar="KEY=VALUE",
                       help=f"tag for the pipeline, repeatable (env {TAGS_ENV}=K=V,K2=V2)")
