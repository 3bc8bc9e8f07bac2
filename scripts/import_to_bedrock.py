"""Turn an approved model package into an Amazon Bedrock model that answers.

    python -m scripts.import_to_bedrock --model-package-arn ARN [--wait] [--provisioned-model-units N]
        [--smoke-question-file PATH] [--verbose]

and, with the same logic, `lambda_handler`: the target of the EventBridge rule on
"SageMaker Model Package State Change" for our group's approved packages
(see `python -m scripts.deploy_approval_hook`).

For an approved package it calls CreateCustomModel, waits until the model is Active, then
either creates an on-demand CustomModelDeployment or, with --provisioned-model-units N, buys
Provisioned Throughput of N model units (no commitment, billed by the hour until deleted),
waits until that serves, asks it one FinQA test question through Converse, and writes the
Bedrock ARNs back onto the package's metadata.

Where the model comes from: a package of SageMaker's restricted type (`ManagedStorageType:
Restricted`) is imported by its ARN, which Bedrock's API model calls "the preferred method for
new SageMaker AI training outputs" and AWS's SDK (BedrockModelBuilder) uses for those; any
other package by the escrow checkpoint path in its metadata (`checkpoint_s3_uri`), which
Bedrock reads with the import role (--bedrock-role-arn); a package a serverless job registered
without being restricted, by its container's model data URI. The path taken is logged and written
as `bedrock_import_source`.

Before any Bedrock call: a malformed package ARN, a group's ARN, a package of another group,
region or account (compared with the caller's, from STS) is refused, and so is a deployment
Bedrock does not offer (pipeline/bedrock_rules.py: on demand only for LoRA models in some
regions, Provisioned Throughput in fewer), and a checkpoint outside this account's escrow
bucket or the bucket named at upsert (--checkpoint-bucket; steps/escrow.py). The approval hook
also refuses a package without the accuracy gate's figures (accuracy, baseline_accuracy,
accuracy_threshold) or whose figures do not pass the gate.

An open-weights model (the package's metadata `base_model` names a Llama, Qwen or GPT-OSS hub
model, steps/open_weights_models.py) goes the way AWS's SDK takes it (sagemaker-serve
`BedrockModelBuilder.deploy`): a restricted package by its ARN as above; any other through
Bedrock Custom Model Import, CreateModelImportJob from the package's model data
(`ModelDataSource.S3DataSource.S3Uri`, resolved as the SDK does to its `checkpoints/hf_merged/`,
else `checkpoints/hf/`, else itself), read by the import role. The imported model answers on
demand by its ARN: no deployment to create. Its smoke test is the same FinQA question, through
Converse, or for GPT-OSS through InvokeModel with OpenAI's chat-completion body (Bedrock's
"Invoke your imported model": Converse is not supported for Qwen and GPT-OSS imports). Where
Bedrock cannot import it (an architecture it does not list, a region without Custom Model Import)
or `--open-weights-serving sagemaker-endpoint` says so, the package is served on a SageMaker endpoint instead
(scripts/sagemaker_endpoint.py, as AWS's SDK deploys it: model, endpoint config, endpoint, inference
components) with the same claim, hand-over, smoke test and metadata; the endpoint's name goes onto
the package (`sagemaker_endpoint_name`).

Names and client request tokens are derived from the package, and existing models,
deployments and provisioned throughputs are looked up first, so a second run creates nothing.
A package that is not approved is left alone. A failure is written onto the package
(`bedrock_import_status` = Failed, `bedrock_import_error`) and raised; the hook's claim is then
released (`Claims`). Metadata writes only
happen when something changed: SageMaker may emit another state-change event for the write,
and that event then finds nothing to do.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.bedrock_rules import deployment_problem, region_problem
from pipeline.settings import Settings, SettingsError, add_settings_arguments
from scripts.aws import configure_logging, error_code, found, session_for, split_s3_uri
from scripts.sagemaker_endpoint import (
    ADAPTER,
    BASE,
    ENDPOINT,
    MODEL,
    EndpointPlan,
    EndpointProblem,
    SageMakerEndpoint,
    base_model_of,
)
from steps import package_metadata as keys
from steps.catalog import RecipeError, TrainingRecipe, recipe
from steps.escrow import checkpoint_location_problem
from steps.open_weights_models import BEDROCK_CONVERSE, BEDROCK_INVOKE, SAGEMAKER_ENDPOINT, deployment, is_open_weights
from steps.open_weights_models import deployment_problem as open_weights_deployment_problem
from steps.serverless_models import OPEN_WEIGHTS_REGIONS, hub_model

LOG = logging.getLogger("scripts.import_to_bedrock")

# The package's metadata keys this tool reads and writes, as steps.package_metadata names them.
CHECKPOINT_KEY = keys.CHECKPOINT_S3_URI
EVAL_DATA_KEY = keys.EVAL_DATA_S3_URI
RECIPE_KEY = keys.RECIPE
BASE_MODEL_KEY = keys.BASE_MODEL
STATUS_KEY = keys.BEDROCK_IMPORT_STATUS
ERROR_KEY = keys.BEDROCK_IMPORT_ERROR
SOURCE_KEY = keys.BEDROCK_IMPORT_SOURCE
CLAIM_KEY = keys.BEDROCK_IMPORT_CLAIM
MODEL_ARN_KEY = keys.BEDROCK_MODEL_ARN
DEPLOYMENT_ARN_KEY = keys.BEDROCK_DEPLOYMENT_ARN
PROVISIONED_ARN_KEY = keys.BEDROCK_PROVISIONED_MODEL_ARN
SMOKE_KEY = keys.BEDROCK_SMOKE_TEST
ENDPOINT_KEY, COMPONENT_KEY = keys.SAGEMAKER_ENDPOINT_NAME, keys.SAGEMAKER_INFERENCE_COMPONENT
# The accuracy gate's figures, as the pipeline's registration writes them.
ACCURACY_KEY, BASELINE_KEY, THRESHOLD_KEY = keys.ACCURACY, keys.BASELINE_ACCURACY, keys.ACCURACY_THRESHOLD

IMPORTING, DEPLOYING, PROVISIONING, ENDPOINT_CREATING, DEPLOYED, FAILED, SKIPPED = (
    "ModelImporting", "DeploymentCreating", "ThroughputProvisioning", "EndpointCreating", "Deployed", "Failed",
    "Skipped")
PENDING = (IMPORTING, DEPLOYING, PROVISIONING, ENDPOINT_CREATING)
FROM_MODEL_PACKAGE, FROM_ESCROW, FROM_IMPORT_JOB = "model-package", "s3-escrow", "s3-import-job"
FROM_ENDPOINT = SAGEMAKER_ENDPOINT

POLL_SECONDS = 60
LAMBDA_SAFETY_SECONDS = 90
MAX_LAMBDA_RESUMES = 12
"""A Lambda run lasts at most 15 minutes; an import can take longer, so an unfinished run
hands over to a fresh invocation of itself, at most this many times (about three hours)."""
CLAIM_SECONDS = 20 * 60
"""A claim outlives one Lambda run (15 minutes at most) and is renewed at each hand-over; one
whose invocation died without releasing it is taken over after this long."""
CLAIMS_FOLDER = "approval-hook/claims"

_NAME_LIMIT = 63
_METADATA_VALUE = re.compile(r"[^\w .:/=+\-@]", re.UNICODE)
_PACKAGE_ARN = re.compile(r"arn:aws[a-z-]*:sagemaker:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
                          r"model-package/(?P<group>[^/\s]+)/(?P<version>[0-9]+)")
_GROUP_ARN = re.compile(r"arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package-group/(?P<group>\S+)")


class ImportFailed(RuntimeError):
    """The package cannot be imported; the message says why and what to do."""


class BadPackageArn(ValueError):
    """The ARN given is not a version of our group's packages; refused before any AWS call."""


@dataclass(frozen=True)
class Outcome:
    status: str
    model_package_arn: str
    model_arn: str = ""
    deployment_arn: str = ""
    provisioned_model_arn: str = ""
    source: str = ""
    detail: str = ""
    endpoint_name: str = ""


@dataclass(frozen=True)
class SmokeQuestion:
    system: str
    query: str
    source: str


@dataclass(frozen=True)
class _Plan:
    """How this package reaches Bedrock, decided before any Bedrock call."""
    source: str
    checkpoint: str
    recipe: TrainingRecipe | None
    """The Nova recipe it was trained with; None for an open-weights model."""
    model_units: int | None
    base_model: str = ""
    """The open-weights hub model it was fine-tuned from; "" for Nova."""
    served_by: str = BEDROCK_CONVERSE
    """BEDROCK_CONVERSE, BEDROCK_INVOKE or SAGEMAKER_ENDPOINT: how the smoke test asks it."""


def _registered_model_data(package: dict) -> str:
    """Where a package that a serverless job registered itself keeps its weights, when it is not
    restricted: the S3 URI of its first container (ModelDataSource, or ModelDataUrl). The pipeline's
    own registration writes `checkpoint_s3_uri`; a serverless job's package has no such metadata."""
    containers = (package.get("InferenceSpecification") or {}).get("Containers") or [{}]
    source = (containers[0].get("ModelDataSource") or {}).get("S3DataSource") or {}
    return (source.get("S3Uri") or containers[0].get("ModelDataUrl") or "").strip()


def check_package_arn(arn: str, group: str, region: str, account: str = "") -> None:
    """BadPackageArn unless `arn` names a version of `group`'s packages in `region` (and, given
    `account`, of that account: the caller's)."""
    listing = f"aws sagemaker list-model-packages --model-package-group-name {group} --region {region}"
    if _GROUP_ARN.fullmatch(arn):
        raise BadPackageArn(f"--model-package-arn {arn} is the ARN of a model package group, not of a model "
                            f"version: give one of its versions (.../model-package/{group}/<version>; {listing})")
    match = _PACKAGE_ARN.fullmatch(arn)
    if match is None:
        raise BadPackageArn(f"--model-package-arn {arn!r} is not a model package version ARN "
                            f"(arn:aws:sagemaker:{region}:<account>:model-package/{group}/<version>; {listing})")
    if match["group"].lower() != group.lower():
        raise BadPackageArn(f"--model-package-arn {arn} is a version of group {match['group']}, not of "
                            f"--model-package-group {group}: pass --model-package-group {match['group']} "
                            f"to import it, or give a version of {group}")
    if match["region"] != region:
        raise BadPackageArn(f"--model-package-arn {arn} is in {match['region']}, not in --region {region}: "
                            f"run with --region {match['region']}")
    if account and match["account"] != account:
        raise BadPackageArn(f"--model-package-arn {arn} is a package of account {match['account']}, not of account "
                            f"{account} whose credentials run this import: a package of another account is not "
                            "imported; run with credentials of that account, in that account")


def claim_key(prefix: str, package_arn: str) -> str:
    """Where the hook's claim on a package version lives, under the pipeline's prefix."""
    match = _PACKAGE_ARN.fullmatch(package_arn)
    if match is None:
        raise BadPackageArn(f"{package_arn!r} is not a model package version ARN")
    return "/".join(part for part in (prefix, CLAIMS_FOLDER, match["group"], f"{match['version']}.json") if part)


def gate_problem(metadata: dict[str, str]) -> str | None:
    """Why the package's accuracy gate figures do not let the hook import it (None when they do)."""
    figures, unusable = {}, []
    for key in (ACCURACY_KEY, BASELINE_KEY, THRESHOLD_KEY):
        try:
            figures[key] = float(metadata.get(key, ""))
        except ValueError:
            unusable.append(key)
            continue
        if figures[key] != figures[key]:
            unusable.append(key)
    if unusable:
        return (f"the package's metadata has no usable {', '.join(unusable)}: the accuracy gate's figures, which the "
                "pipeline's registration writes; the approval hook imports only packages that went through the "
                "gate (a person who decided otherwise imports it with python -m scripts.import_to_bedrock)")
    if figures[ACCURACY_KEY] < max(figures[THRESHOLD_KEY], figures[BASELINE_KEY]):
        return (f"the package's accuracy {figures[ACCURACY_KEY]:g} is below its accuracy_threshold "
                f"{figures[THRESHOLD_KEY]:g} or its baseline_accuracy {figures[BASELINE_KEY]:g}: it did not pass the "
                "accuracy gate, and the approval hook does not import it")
    return None


class Claims:
    """One approval hook invocation at a time per package: a claim object in the pipeline's bucket,
    created with a conditional PutObject (If-None-Match: *), which S3 lets exactly one writer win
    (S3's conditional writes; botocore's PutObject IfNoneMatch / IfMatch, DeleteObject IfMatch).

    A claim names its invocation and when it expires. The holder renews it (a hand-over to the
    next invocation, a Lambda retry under the same request id) and releases it when the import
    is deployed or failed; an expired one is taken over, with If-Match on the ETag read, so that
    two invocations cannot both take over one dead claim."""

    _LOST = ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "412", "409", "404")

    def __init__(self, s3, bucket: str, prefix: str, owner: str = "", now: Callable[[], float] = time.time,
                 seconds: float = CLAIM_SECONDS):
        self.s3, self.bucket, self.prefix, self.now, self.seconds = s3, bucket, prefix, now, seconds
        self.owner = {"ExpectedBucketOwner": owner} if owner else {}

    def take(self, package_arn: str, claim: str) -> str | None:
        """None once `claim` holds the package; else the claim of the invocation that does."""
        key = claim_key(self.prefix, package_arn)
        holder = ""
        for _ in range(3):
            body = json.dumps({"claim": claim, "expires_at": self.now() + self.seconds}).encode()
            if self._put(key, body, IfNoneMatch="*"):
                return None
            current = self._read(key)
            if current is None:
                continue  # released since: try again
            holder, expires_at, etag = current
            if holder != claim and expires_at > self.now():
                return holder
            # Ours (renewed) or expired (taken over), as long as nobody wrote it since we read it.
            if self._put(key, body, IfMatch=etag):
                return None
        return holder or "another invocation"

    def release(self, package_arn: str, claim: str) -> None:
        key = claim_key(self.prefix, package_arn)
        current = self._read(key)
        if current is None or current[0] != claim:
            return
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=key, IfMatch=current[2], **self.owner)
        except ClientError as error:
            if error_code(error) not in self._LOST:
                raise

    def _put(self, key: str, body: bytes, **condition: str) -> bool:
        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json",
                               **condition, **self.owner)
            return True
        except ClientError as error:
            if error_code(error) not in self._LOST:
                raise
            return False

    def _read(self, key: str) -> tuple[str, float, str] | None:
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=key, **self.owner)
        except ClientError as error:
            if error_code(error) not in ("NoSuchKey", "404"):
                raise
            return None
        try:
            claim = json.loads(response["Body"].read(4096))
            return str(claim["claim"]), float(claim["expires_at"]), response["ETag"]
        except (ValueError, KeyError, TypeError):
            return "", 0.0, response["ETag"]  # not a claim this code wrote: expired


def metadata_value(text: str) -> str:
    """Model package metadata values allow letters, digits, spaces and `_.:/=+-@`, at most
    256 characters: anything else in an error message becomes a space."""
    cleaned = re.sub(r"\s+", " ", _METADATA_VALUE.sub(" ", text)).strip()
    return cleaned[:256] or "-"


def _bounded_name(package: dict, suffix: str) -> str:
    base = re.sub(r"[^0-9a-zA-Z]+", "-", package["ModelPackageGroupName"]).strip("-")
    suffix = f"-v{package['ModelPackageVersion']}{suffix}"
    return base[:_NAME_LIMIT - len(suffix)].rstrip("-") + suffix


def resource_names(package: dict) -> tuple[str, str, str]:
    """Bedrock model, on-demand deployment and provisioned throughput names for this package
    version: stable across runs."""
    return _bounded_name(package, ""), _bounded_name(package, "-ondemand"), _bounded_name(package, "-provisioned")


def request_token(package_arn: str, purpose: str) -> str:
    return hashlib.sha256(f"{package_arn}|{purpose}".encode()).hexdigest()


def read_smoke_question(text: str, source: str) -> SmokeQuestion:
    """The first record of a gen_qa.jsonl file (the pipeline's FinQA test split)."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ImportFailed(f"smoke question: {source} line {number} is not JSON ({error})") from None
        if not isinstance(record, dict) or not str(record.get("query", "")).strip():
            raise ImportFailed(f"smoke question: {source} line {number} has no 'query' (expected gen_qa.jsonl)")
        return SmokeQuestion(str(record.get("system") or ""), str(record["query"]), source)
    raise ImportFailed(f"smoke question: {source} has no records")


def _known(package_arn: str, metadata: dict[str, str]) -> Outcome:
    """What the package's metadata says of its import so far."""
    return Outcome(metadata.get(STATUS_KEY, ""), package_arn, metadata.get(MODEL_ARN_KEY, ""),
                   metadata.get(DEPLOYMENT_ARN_KEY, ""), metadata.get(PROVISIONED_ARN_KEY, ""),
                   metadata.get(SOURCE_KEY, ""), endpoint_name=metadata.get(ENDPOINT_KEY, ""))


class BedrockImport:
    def __init__(self, sagemaker, bedrock, bedrock_runtime, s3, bedrock_role_arn: str,
                 smoke_question: SmokeQuestion | None = None, model_units: int | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 poll_seconds: float = POLL_SECONDS, *, account: str, checkpoint_bucket: str = "",
                 claims: Claims | None = None, endpoint: SageMakerEndpoint | None = None, serving: str = "auto",
                 endpoint_role_arn: str = "", endpoint_instance_type: str = ""):
        """`account`: the caller's (STS), the only one whose packages and escrow checkpoints are
        imported; `checkpoint_bucket`: the bucket named at upsert instead of the escrow bucket;
        `claims`: the approval hook's (`handle_event` needs them); `endpoint`, `serving`,
        `endpoint_role_arn`, `endpoint_instance_type`: how an open-weights model is served where
        Bedrock does not (--open-weights-serving and the endpoint settings)."""
        self.sagemaker = sagemaker
        self.bedrock = bedrock
        self.bedrock_runtime = bedrock_runtime
        self.s3 = s3
        self.bedrock_role_arn = bedrock_role_arn
        self.smoke_question = smoke_question
        self.model_units = model_units
        self.sleep = sleep
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.account = account
        self.checkpoint_bucket = checkpoint_bucket
        self.claims = claims
        self.endpoint = endpoint
        self.serving = serving
        self.endpoint_role_arn = endpoint_role_arn
        self.endpoint_instance_type = endpoint_instance_type

    @property
    def region(self) -> str:
        return self.bedrock.meta.region_name

    def run(self, package_arn: str, deadline: float | None = None, retry_failed: bool = True,
            claim: str = "") -> Outcome:
        """Advance the package's import as far as it goes before `deadline` (a `clock()`
        value; None waits as long as it takes). Safe to call any number of times.

        With `claim` (the approval hook's), the package is claimed for it before the first
        Bedrock call, and left alone while another claim holds it; without, claims are ignored
        (an operator's run takes over)."""
        package, metadata, settled = self._read(package_arn, retry_failed)
        package_arn = package["ModelPackageArn"]
        if settled is not None:
            return settled
        match = _PACKAGE_ARN.fullmatch(package_arn)
        if match is None or match["account"] != self.account:
            raise ImportFailed(f"{package_arn} is not a model package of account {self.account}, whose credentials "
                               "run this import: refused")
        if claim:
            if self.claims is None:
                raise ImportFailed("the approval hook's claims need the pipeline's bucket: set NOVA_BUCKET")
            holder = self.claims.take(package_arn, claim)
            if holder is not None:
                detail = f"import under way by approval hook invocation {holder}"
                LOG.info("%s: %s; this one leaves it alone", package_arn, detail)
                return Outcome(**{**asdict(_known(package_arn, metadata)), "status": SKIPPED, "detail": detail})
            # Read again under the claim: another invocation may have finished, and released
            # its claim, between the first read and this claim.
            package, metadata, settled = self._read(package_arn, retry_failed)
            if settled is not None:
                self.claims.release(package_arn, claim)
                return settled
        progress: dict[str, str] = {}
        try:
            plan = self._plan(package, metadata, gate=bool(claim))
            if claim:
                # Shown on the package for whoever looks; the claim object decides.
                self._write(package_arn, metadata, {CLAIM_KEY: claim})
            outcome = self._advance(package, metadata, progress, deadline, plan)
        except Exception as error:  # every failure, expected or not, is written and releases the claim
            LOG.error("importing %s into Bedrock failed: %s", package_arn, error)
            self.fail(package_arn, error, claim, metadata, progress)
            raise
        if claim and outcome.status == DEPLOYED:
            self.claims.release(package_arn, claim)
        return outcome

    def _read(self, package_arn: str, retry_failed: bool) -> tuple[dict, dict[str, str], Outcome | None]:
        """The package, its metadata, and the outcome when there is nothing to do (else None)."""
        package = self.sagemaker.describe_model_package(ModelPackageName=package_arn)
        package_arn = package["ModelPackageArn"]
        metadata = dict(package.get("CustomerMetadataProperties") or {})
        approval = package.get("ModelApprovalStatus", "")
        if approval != "Approved":
            LOG.info("%s is %s, not Approved: nothing to do", package_arn, approval or "without status")
            return package, metadata, Outcome(SKIPPED, package_arn,
                                              detail=f"package is {approval or 'without approval status'}")
        known = _known(package_arn, metadata)
        if known.status == DEPLOYED and (known.deployment_arn or known.provisioned_model_arn
                                         or (known.source == FROM_IMPORT_JOB and known.model_arn)
                                         or (known.source == FROM_ENDPOINT and known.endpoint_name)):
            LOG.info("%s is already served by %s", package_arn,
                     known.deployment_arn or known.provisioned_model_arn or known.model_arn or known.endpoint_name)
            return package, metadata, Outcome(**{**asdict(known), "detail": "already deployed"})
        if known.status == FAILED and not retry_failed:
            detail = (f"an earlier import failed ({metadata.get(ERROR_KEY, 'no reason recorded')}); "
                      "retry with python -m scripts.import_to_bedrock --model-package-arn ARN --wait")
            LOG.warning("%s: %s", package_arn, detail)
            return package, metadata, Outcome(**{**asdict(known), "status": SKIPPED, "detail": detail})
        return package, metadata, None

    def fail(self, package_arn: str, error: BaseException, claim: str = "", metadata: dict[str, str] | None = None,
             progress: dict[str, str] | None = None) -> None:
        """Write Failed and why onto the package, and release `claim`; a failure to do so is logged."""
        try:
            if metadata is None:
                package = self.sagemaker.describe_model_package(ModelPackageName=package_arn)
                metadata = dict(package.get("CustomerMetadataProperties") or {})
            self._write(package_arn, metadata, {**(progress or {}), STATUS_KEY: FAILED,
                                                 ERROR_KEY: metadata_value(str(error))}, remove=(CLAIM_KEY,))
        except (ClientError, BotoCoreError) as write_error:
            LOG.error("and the failure could not be written onto %s: %s", package_arn, write_error)
        if claim and self.claims is not None:
            try:
                self.claims.release(package_arn, claim)
            except (ClientError, BotoCoreError) as release_error:
                LOG.error("and the claim on %s could not be released (it expires by itself): %s",
                          package_arn, release_error)

    def _plan(self, package: dict, metadata: dict[str, str], gate: bool = False) -> _Plan:
        if gate:
            problem = gate_problem(metadata)
            if problem:
                raise ImportFailed(problem)
        base_model = metadata.get(BASE_MODEL_KEY, "").strip()
        if is_open_weights(base_model):
            return self._open_weights_plan(package, base_model)
        trained = self._recipe(package, metadata)
        problem = deployment_problem(trained, self.region, self.model_units)
        if problem:
            raise ImportFailed(problem)
        if not self.bedrock_role_arn:
            raise ImportFailed("importing into Bedrock needs an import role (CreateCustomModel's roleArn, which "
                               "AWS's BedrockModelBuilder passes for a model package and a checkpoint alike): "
                               "set --bedrock-role-arn or NOVA_BEDROCK_ROLE_ARN "
                               "(python -m scripts.deploy_approval_hook creates one and prints its ARN)")
        if package.get("ManagedStorageType") == "Restricted":
            return _Plan(FROM_MODEL_PACKAGE, "", trained, self.model_units)
        checkpoint = metadata.get(CHECKPOINT_KEY, "").strip() or _registered_model_data(package)
        try:
            split_s3_uri(checkpoint)
        except ValueError:
            raise ImportFailed(
                f"the model package has no usable '{CHECKPOINT_KEY}' in its metadata "
                f"(found {checkpoint!r}); the pipeline's registration step writes the training "
                "job's escrow checkpoint there (manifest.json checkpoint_s3_bucket)") from None
        problem = checkpoint_location_problem(checkpoint, self.account, self.checkpoint_bucket)
        if problem:
            raise ImportFailed(f"the model package's {CHECKPOINT_KEY}: {problem}")
        return _Plan(FROM_ESCROW, checkpoint, trained, self.model_units)

    def _open_weights_plan(self, package: dict, base_model: str) -> _Plan:
        problem = open_weights_deployment_problem(base_model, self.region, self.serving, self.model_units)
        if problem:
            raise ImportFailed(problem)
        served_by = deployment(base_model, self.region, self.serving)
        if served_by == SAGEMAKER_ENDPOINT:
            if self.endpoint is None or not self.endpoint_role_arn:
                raise ImportFailed(
                    f"{base_model} is served on a SageMaker endpoint in {self.region} (Bedrock cannot import it "
                    "there, or --open-weights-serving said so), which needs the role the endpoint runs with: set "
                    "--endpoint-role-arn (NOVA_ENDPOINT_ROLE_ARN) or --role-arn, and redeploy the approval hook "
                    "with it (python -m scripts.deploy_approval_hook)")
            if package.get("ManagedStorageType") == "Restricted":
                # AWS's ModelBuilder serves one as a model of the package itself on an instance type the caller
                # names; only SageMaker's multi-turn RL registers such packages, which this pipeline does not run.
                raise ImportFailed(f"{package['ModelPackageArn']} is a restricted package (SageMaker keeps its "
                                   "weights): serving one on an endpoint is not built here; deploy it from SageMaker "
                                   "Studio (Models > My models > Deploy)")
            return _Plan(FROM_ENDPOINT, "", None, None, base_model, SAGEMAKER_ENDPOINT)
        if not self.bedrock_role_arn:
            raise ImportFailed("importing an open-weights model needs a Bedrock import role (the package's, or its "
                               "model data's reader): set --bedrock-role-arn or NOVA_BEDROCK_ROLE_ARN")
        if package.get("ManagedStorageType") == "Restricted":
            return _Plan(FROM_MODEL_PACKAGE, "", None, None, base_model, served_by)
        containers = (package.get("InferenceSpecification") or {}).get("Containers") or [{}]
        uri = (((containers[0].get("ModelDataSource") or {}).get("S3DataSource") or {}).get("S3Uri")
               or containers[0].get("ModelDataUrl") or "")
        try:
            split_s3_uri(uri)
        except ValueError:
            raise ImportFailed(f"the model package of {base_model} has no S3 model data (ModelDataSource or "
                               f"ModelDataUrl; found {uri!r}) for Bedrock to import") from None
        if uri.rstrip("/").endswith(".tar.gz"):
            raise ImportFailed(f"the model data {uri} is an archive; Bedrock imports a folder of Hugging Face "
                               "weights: extract it to S3 and register that folder")
        return _Plan(FROM_IMPORT_JOB, self._weights_folder(uri), None, None, base_model, served_by)

    def _weights_folder(self, uri: str) -> str:
        """The folder Bedrock imports, found as AWS's SDK finds it (BedrockModelBuilder._resolve_hf_model_path):
        the URI itself if it holds config.json, else checkpoints/hf_merged/ (merged weights), else
        checkpoints/hf/ (a LoRA adapter), else the URI."""
        base = uri.rstrip("/") + "/"
        bucket, prefix = split_s3_uri(base)
        for folder, marker in (("", "config.json"), ("checkpoints/hf_merged/", "config.json"),
                               ("checkpoints/hf/", "adapter_config.json")):
            try:
                self.s3.head_object(Bucket=bucket, Key=f"{prefix}{folder}{marker}")
            except ClientError as error:
                if error_code(error) not in ("404", "NoSuchKey", "NotFound", "403"):
                    raise
                continue
            return base + folder if folder else uri.rstrip("/")
        return uri.rstrip("/")

    @staticmethod
    def _recipe(package: dict, metadata: dict[str, str]) -> TrainingRecipe:
        containers = (package.get("InferenceSpecification") or {}).get("Containers") or [{}]
        # AWS's own field for it, on packages the platform registers itself.
        recipe_id = metadata.get(RECIPE_KEY, "").strip() or (containers[0].get("BaseModel") or {}).get("RecipeName", "")
        if not recipe_id:
            raise ImportFailed(
                f"the model package names no training recipe (metadata '{RECIPE_KEY}'), so whether Bedrock can "
                "serve it on demand (LoRA) or only with Provisioned Throughput (full-rank) is unknown: add it with "
                "aws sagemaker update-model-package --model-package-arn ARN "
                f"--customer-metadata-properties {RECIPE_KEY}=<recipe id>")
        try:
            return recipe(recipe_id)
        except RecipeError as error:
            raise ImportFailed(f"the model package's {RECIPE_KEY}: {error}") from None

    def _advance(self, package: dict, metadata: dict[str, str], progress: dict[str, str],
                 deadline: float | None, plan: _Plan) -> Outcome:
        package_arn = package["ModelPackageArn"]
        model_name, deployment_name, provisioned_name = resource_names(package)
        if plan.source == FROM_IMPORT_JOB:
            return self._advance_import_job(package, metadata, progress, deadline, plan, model_name)
        if plan.source == FROM_ENDPOINT:
            return self._advance_endpoint(package, metadata, progress, deadline, plan)

        model_arn = self._ensure_model(package_arn, model_name, plan)
        progress.update({MODEL_ARN_KEY: model_arn, SOURCE_KEY: plan.source})
        if not self._wait("Bedrock model", model_name, lambda: self._model_status(model_arn), deadline):
            self._write(package_arn, metadata, {**progress, STATUS_KEY: IMPORTING})
            return Outcome(IMPORTING, package_arn, model_arn, source=plan.source,
                           detail=f"Bedrock is importing {model_name}")

        if plan.model_units:
            endpoint = self._ensure_provisioned(package_arn, provisioned_name, model_arn, plan.model_units)
            progress[PROVISIONED_ARN_KEY] = endpoint
            waiting = self._wait("Bedrock provisioned throughput", provisioned_name,
                                 lambda: self._provisioned_status(endpoint), deadline, ready="InService")
            pending, what = PROVISIONING, f"Bedrock is provisioning {provisioned_name}"
        else:
            endpoint = self._ensure_deployment(package_arn, deployment_name, model_arn)
            progress[DEPLOYMENT_ARN_KEY] = endpoint
            waiting = self._wait("Bedrock deployment", deployment_name, lambda: self._deployment_status(endpoint),
                                 deadline)
            pending, what = DEPLOYING, f"Bedrock is deploying {deployment_name}"
        served = Outcome(pending, package_arn, model_arn, progress.get(DEPLOYMENT_ARN_KEY, ""),
                         progress.get(PROVISIONED_ARN_KEY, ""), plan.source, what)
        if not waiting:
            self._write(package_arn, metadata, {**progress, STATUS_KEY: pending})
            return served

        smoke = self._smoke_test(endpoint, metadata, plan.served_by)
        self._write(package_arn, metadata, {**progress, STATUS_KEY: DEPLOYED, SMOKE_KEY: metadata_value(smoke)},
                    remove=(ERROR_KEY, CLAIM_KEY))
        LOG.info("%s is served by %s", package_arn, endpoint)
        return Outcome(**{**asdict(served), "status": DEPLOYED, "detail": smoke})

    def _advance_import_job(self, package: dict, metadata: dict[str, str], progress: dict[str, str],
                            deadline: float | None, plan: _Plan, name: str) -> Outcome:
        """Custom Model Import of an open-weights model: one import job per package version, named
        after it, looked up before it is created; the imported model answers on demand."""
        package_arn = package["ModelPackageArn"]
        progress[SOURCE_KEY] = plan.source
        model_arn = self._imported_model(name)
        if not model_arn:
            job_arn = self._ensure_import_job(package_arn, name, plan)
            if not self._wait("Bedrock model import job", name, lambda: self._import_job_status(job_arn), deadline,
                              ready="Completed"):
                self._write(package_arn, metadata, {**progress, STATUS_KEY: IMPORTING})
                return Outcome(IMPORTING, package_arn, source=plan.source, detail=f"Bedrock is importing {name}")
            model_arn = self.bedrock.get_model_import_job(jobIdentifier=job_arn)["importedModelArn"]
        progress[MODEL_ARN_KEY] = model_arn
        smoke = self._smoke_test(model_arn, metadata, plan.served_by)
        self._write(package_arn, metadata, {**progress, STATUS_KEY: DEPLOYED, SMOKE_KEY: metadata_value(smoke)},
                    remove=(ERROR_KEY, CLAIM_KEY))
        LOG.info("%s is served by the imported model %s", package_arn, model_arn)
        return Outcome(DEPLOYED, package_arn, model_arn, source=plan.source, detail=smoke)

    def _advance_endpoint(self, package: dict, metadata: dict[str, str], progress: dict[str, str],
                          deadline: float | None, plan: _Plan) -> Outcome:
        """A SageMaker endpoint for an open-weights model: model and endpoint config, endpoint, then its
        inference components (the base model, and a LoRA adapter on it), each looked up before it is
        created and waited for in turn; the hand-over resumes where a run stopped."""
        package_arn = package["ModelPackageArn"]
        try:
            registered = base_model_of(package)["HubContentName"]
            if registered != plan.base_model:
                raise ImportFailed(f"{package_arn}: SageMaker registered it as a fine-tuned {registered} (BaseModel), "
                                   f"its metadata says {plan.base_model} ({BASE_MODEL_KEY}): fix the metadata first")
            endpoint = self.endpoint.plan(package, role_arn=self.endpoint_role_arn,
                                          accept_eula=hub_model(plan.base_model).gated,
                                          instance_type=self.endpoint_instance_type)
        except EndpointProblem as error:
            raise ImportFailed(str(error)) from None
        progress.update({SOURCE_KEY: FROM_ENDPOINT, ENDPOINT_KEY: endpoint.name,
                         COMPONENT_KEY: endpoint.serving_component})
        pending = Outcome(ENDPOINT_CREATING, package_arn, source=FROM_ENDPOINT, endpoint_name=endpoint.name,
                          detail=f"SageMaker is creating endpoint {endpoint.name} on {endpoint.instance_type}")
        remedy = (f"delete it (aws sagemaker delete-endpoint --endpoint-name {endpoint.name}; delete-endpoint-config "
                  "and delete-model of the same name), then run again to recreate it")
        self.endpoint.ensure(endpoint, MODEL)
        waits = [(ENDPOINT, "SageMaker endpoint", endpoint.name, lambda: self.endpoint.endpoint_status(endpoint)),
                 (BASE, "SageMaker inference component", endpoint.base_component,
                  lambda: self.endpoint.component_status(endpoint.base_component))]
        if endpoint.lora:
            waits.append((ADAPTER, "SageMaker inference component", endpoint.adapter_component,
                          lambda: self.endpoint.component_status(endpoint.adapter_component)))
        for stage, what, name, status in waits:
            self.endpoint.ensure(endpoint, stage)
            if not self._wait(what, name, status, deadline, ready="InService", remedy=remedy):
                self._write(package_arn, metadata, {**progress, STATUS_KEY: ENDPOINT_CREATING})
                return pending
        smoke = self._smoke_test_endpoint(endpoint, metadata)
        self._write(package_arn, metadata, {**progress, STATUS_KEY: DEPLOYED, SMOKE_KEY: metadata_value(smoke)},
                    remove=(ERROR_KEY, CLAIM_KEY))
        LOG.info("%s is served by SageMaker endpoint %s (%s)", package_arn, endpoint.name, endpoint.serving_component)
        return Outcome(**{**asdict(pending), "status": DEPLOYED, "detail": smoke})

    def _smoke_test_endpoint(self, endpoint: EndpointPlan, metadata: dict[str, str]) -> str:
        question = self._question(metadata)
        try:
            answer = self.endpoint.ask(endpoint, question.system, question.query)
        except EndpointProblem as problem:
            raise ImportFailed(f"smoke test: the question from {question.source}: {problem}") from None
        LOG.info("smoke test answer from endpoint %s: %s", endpoint.name, answer[:500])
        return f"answered: {answer}"

    def _imported_model(self, name: str) -> str:
        existing = found(self.bedrock.get_imported_model, modelIdentifier=name)
        return existing["modelArn"] if existing else ""

    def _ensure_import_job(self, package_arn: str, name: str, plan: _Plan) -> str:
        job = found(self.bedrock.get_model_import_job, jobIdentifier=name)
        if job:
            LOG.info("Bedrock model import job %s exists already: %s", name, job["jobArn"])
            return job["jobArn"]
        LOG.info("creating Bedrock model import job %s for %s from %s (%s)", name, plan.base_model,
                 plan.checkpoint, package_arn)
        return self.bedrock.create_model_import_job(
            jobName=name, importedModelName=name, roleArn=self.bedrock_role_arn,
            modelDataSource={"s3DataSource": {"s3Uri": plan.checkpoint}},
            clientRequestToken=request_token(package_arn, "model-import-job"),
        )["jobArn"]

    def _import_job_status(self, job_arn: str) -> tuple[str, str]:
        job = self.bedrock.get_model_import_job(jobIdentifier=job_arn)
        return job.get("status", ""), job.get("failureMessage", "")

    def _ensure_model(self, package_arn: str, name: str, plan: _Plan) -> str:
        existing = found(self.bedrock.get_custom_model, modelIdentifier=name)
        if existing:
            LOG.info("Bedrock model %s exists already: %s", name, existing["modelArn"])
            return existing["modelArn"]
        request: dict[str, Any] = {"modelName": name,
                                   "clientRequestToken": request_token(package_arn, "custom-model")}
        # The import role in both branches, as AWS's SDK sends it (sagemaker-serve,
        # BedrockModelBuilder: `roleArn` with modelPackageArnDataSource and with s3DataSource).
        request["roleArn"] = self.bedrock_role_arn
        if plan.source == FROM_MODEL_PACKAGE:
            LOG.info("creating Bedrock model %s from the model package %s (restricted: imported by ARN)",
                     name, package_arn)
            request["customModelDataSource"] = {"modelPackageArnDataSource": {"modelPackageArn": package_arn}}
        else:
            LOG.info("creating Bedrock model %s from the escrow checkpoint %s (the package is not restricted, "
                     "so Bedrock cannot import it by ARN)", name, plan.checkpoint)
            request["modelSourceConfig"] = {"s3DataSource": {"s3Uri": plan.checkpoint}}
        return self.bedrock.create_custom_model(**request)["modelArn"]

    def _ensure_deployment(self, package_arn: str, name: str, model_arn: str) -> str:
        existing = found(self.bedrock.get_custom_model_deployment, customModelDeploymentIdentifier=name)
        if existing:
            if existing["modelArn"] != model_arn:
                raise ImportFailed(f"Bedrock deployment {name} exists but serves {existing['modelArn']}, "
                                   f"not {model_arn}; delete or rename it, then run again")
            LOG.info("Bedrock deployment %s exists already: %s", name, existing["customModelDeploymentArn"])
            return existing["customModelDeploymentArn"]
        LOG.info("creating on-demand deployment %s of %s", name, model_arn)
        return self.bedrock.create_custom_model_deployment(
            modelDeploymentName=name,
            modelArn=model_arn,
            description=f"On-demand deployment of {package_arn}"[:200],
            clientRequestToken=request_token(package_arn, "custom-model-deployment"),
        )["customModelDeploymentArn"]

    def _ensure_provisioned(self, package_arn: str, name: str, model_arn: str, units: int) -> str:
        existing = found(self.bedrock.get_provisioned_model_throughput, provisionedModelId=name)
        if existing:
            if existing["desiredModelArn"] != model_arn:
                raise ImportFailed(f"Bedrock provisioned throughput {name} exists but serves "
                                   f"{existing['desiredModelArn']}, not {model_arn}; delete it "
                                   "(aws bedrock delete-provisioned-model-throughput), then run again")
            if existing["desiredModelUnits"] != units:
                LOG.warning("Bedrock provisioned throughput %s exists with %d model units, not %d: kept as it is "
                            "(delete it to buy another size)", name, existing["desiredModelUnits"], units)
            LOG.info("Bedrock provisioned throughput %s exists already: %s", name, existing["provisionedModelArn"])
            return existing["provisionedModelArn"]
        LOG.warning("buying Provisioned Throughput %s: %d model units of %s, no commitment, billed by the hour "
                    "until deleted (aws bedrock delete-provisioned-model-throughput --provisioned-model-id %s)",
                    name, units, model_arn, name)
        return self.bedrock.create_provisioned_model_throughput(
            provisionedModelName=name,
            modelId=model_arn,
            modelUnits=units,
            clientRequestToken=request_token(package_arn, "provisioned-model-throughput"),
        )["provisionedModelArn"]

    def _model_status(self, model_arn: str) -> tuple[str, str]:
        model = self.bedrock.get_custom_model(modelIdentifier=model_arn)
        return model.get("modelStatus", ""), model.get("failureMessage", "")

    def _deployment_status(self, deployment_arn: str) -> tuple[str, str]:
        deployment = self.bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=deployment_arn)
        return deployment.get("status", ""), deployment.get("failureMessage", "")

    def _provisioned_status(self, provisioned_arn: str) -> tuple[str, str]:
        provisioned = self.bedrock.get_provisioned_model_throughput(provisionedModelId=provisioned_arn)
        return provisioned.get("status", ""), provisioned.get("failureMessage", "")

    def _wait(self, what: str, name: str, status: Callable[[], tuple[str, str]], deadline: float | None,
              ready: str = "Active", remedy: str = "delete it in Bedrock, then run again to recreate it") -> bool:
        """True once ready; False if the deadline comes first; ImportFailed if it failed."""
        while True:
            state, failure = status()
            if state == ready:
                return True
            if state == "Failed":
                raise ImportFailed(f"{what} {name} failed: {failure or 'no reason given'}; {remedy}")
            if deadline is not None and self.clock() + self.poll_seconds > deadline:
                LOG.info("%s %s is %s; not waiting longer in this run", what, name, state)
                return False
            LOG.info("%s %s is %s", what, name, state)
            self.sleep(self.poll_seconds)

    def _question(self, metadata: dict[str, str]) -> SmokeQuestion:
        if self.smoke_question is not None:
            return self.smoke_question
        uri = metadata.get(EVAL_DATA_KEY, "").strip()
        if uri.endswith("/"):
            uri += "gen_qa.jsonl"
        try:
            bucket, key = split_s3_uri(uri)
        except ValueError:
            raise ImportFailed(
                f"smoke test: the model package has no '{EVAL_DATA_KEY}' (the FinQA test split as "
                "gen_qa.jsonl) in its metadata; give one with --smoke-question-file") from None
        body = self.s3.get_object(Bucket=bucket, Key=key)["Body"]
        # The first record is all we need: read the first MiB, not the whole test split.
        head = body.read(1 << 20).decode("utf-8", errors="replace")
        body.close()
        first_line = head.split("\n", 1)[0]
        return read_smoke_question(first_line, uri)

    def _smoke_test(self, model_id: str, metadata: dict[str, str], served_by: str = BEDROCK_CONVERSE) -> str:
        question = self._question(metadata)
        if served_by == BEDROCK_INVOKE:
            return self._smoke_test_openai(model_id, question)
        request: dict[str, Any] = {
            "modelId": model_id,
            "messages": [{"role": "user", "content": [{"text": question.query}]}],
            "inferenceConfig": {"maxTokens": 512, "temperature": 0.0},
        }
        if question.system:
            request["system"] = [{"text": question.system}]
        response = self.bedrock_runtime.converse(**request)
        texts = [part.get("text", "") for part in response.get("output", {}).get("message", {}).get("content", [])]
        answer = " ".join(t for t in texts if t).strip()
        if not answer:
            raise ImportFailed(f"smoke test: {model_id} answered the question from "
                               f"{question.source} with no text (stopReason {response.get('stopReason')})")
        LOG.info("smoke test answer from %s: %s", model_id, answer[:500])
        return f"answered: {answer}"

    def _smoke_test_openai(self, model_id: str, question: SmokeQuestion) -> str:
        """The question through InvokeModel in OpenAI's chat-completion schema (GPT-OSS imports)."""
        messages = ([{"role": "system", "content": question.system}] if question.system else []) + [
            {"role": "user", "content": question.query}]
        response = self.bedrock_runtime.invoke_model(
            modelId=model_id, contentType="application/json", accept="application/json",
            body=json.dumps({"messages": messages, "max_tokens": 512, "temperature": 0.0}))
        try:
            body = json.loads(response["body"].read())
            answer = str(body["choices"][0]["message"]["content"] or "").strip()
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise ImportFailed(f"smoke test: {model_id} answered the question from {question.source} "
                               f"with no chat completion ({error!r})") from None
        if not answer:
            raise ImportFailed(f"smoke test: {model_id} answered the question from {question.source} with no text")
        LOG.info("smoke test answer from %s: %s", model_id, answer[:500])
        return f"answered: {answer}"

    def _write(self, package_arn: str, metadata: dict[str, str], updates: dict[str, str],
               remove: tuple[str, ...] = ()) -> None:
        merged = {**metadata, **updates}
        to_remove = [key for key in remove if key in merged]
        for key in to_remove:
            del merged[key]
        if merged == metadata:
            return
        # The full map is sent: SageMaker merges it, and a double that replaces keeps it whole too.
        request: dict[str, Any] = {"ModelPackageArn": package_arn, "CustomerMetadataProperties": merged}
        if to_remove:
            request["CustomerMetadataPropertiesToRemove"] = to_remove
        self.sagemaker.update_model_package(**request)
        metadata.clear()
        metadata.update(merged)


def importer_for(settings: Settings, smoke_question: SmokeQuestion | None = None, session=None,
                 sleep: Callable[[float], None] = time.sleep) -> BedrockImport:
    session = session or session_for(settings)
    account = session.client("sts").get_caller_identity()["Account"]
    s3 = session.client("s3")
    claims = Claims(s3, settings.bucket, settings.prefix, owner=account) if settings.bucket else None
    sagemaker = session.client("sagemaker")
    endpoint = SageMakerEndpoint(sagemaker, session=session)
    return BedrockImport(sagemaker, session.client("bedrock"),
                         session.client("bedrock-runtime"), s3,
                         settings.bedrock_role_arn, smoke_question, settings.model_units, sleep=sleep,
                         account=account, checkpoint_bucket=settings.checkpoint_bucket, claims=claims,
                         endpoint=endpoint, serving=settings.open_weights_serving,
                         endpoint_role_arn=settings.endpoint_role_arn or settings.role_arn,
                         endpoint_instance_type=settings.endpoint_instance_type)


def handle_event(event: dict, remaining_seconds: float, settings: Settings, importer: BedrockImport,
                 lambda_client=None, function_name: str = "", request_id: str = "") -> dict:
    """One Lambda invocation: a model package state-change event, or a hand-over from an
    earlier invocation that ran out of time (`resume` carries the count, `claim` the claim).

    Two deliveries of one approval (EventBridge delivers at least once, and our own metadata
    writes fire more events) start one import: each invocation claims the package under its
    request id before its first Bedrock call, with a conditional write only one can win
    (`Claims`), and one that finds another's live claim leaves the package alone. The hook's
    reserved concurrency of 1 (deploy_approval_hook) is a second line, not the lock. Lambda
    retries an invocation under the same request id, so a retry keeps the claim; a hand-over
    carries it; a failure, including one to hand over, writes Failed and releases it; a claim
    whose invocation died expires."""
    detail = event.get("detail") or {}
    package_arn = detail.get("ModelPackageArn", "")
    if not package_arn:
        raise ImportFailed(f"event has no detail.ModelPackageArn: {json.dumps(event)[:500]}")
    group = detail.get("ModelPackageGroupName", "")
    if group and group != settings.model_package_group:
        LOG.info("%s belongs to group %s, not %s: ignored", package_arn, group, settings.model_package_group)
        return asdict(Outcome(SKIPPED, package_arn, detail=f"group {group} is not ours"))
    try:
        check_package_arn(package_arn, settings.model_package_group, settings.region, importer.account)
    except BadPackageArn as error:
        LOG.info("%s: ignored", error)
        return asdict(Outcome(SKIPPED, package_arn, detail=str(error)))
    claim = str(event.get("claim") or request_id)
    deadline = importer.clock() + remaining_seconds - LAMBDA_SAFETY_SECONDS
    outcome = importer.run(package_arn, deadline=deadline, retry_failed=False, claim=claim)
    if outcome.status in PENDING and lambda_client is not None:
        resumes = int(event.get("resume", 0)) + 1
        try:
            if resumes > MAX_LAMBDA_RESUMES:
                raise ImportFailed(f"{package_arn} still {outcome.status} after {MAX_LAMBDA_RESUMES} hand-overs; "
                                   "finish it with python -m scripts.import_to_bedrock --wait")
            lambda_client.invoke(FunctionName=function_name, InvocationType="Event",
                                 Payload=json.dumps({**event, "resume": resumes, "claim": claim}).encode())
        except (ImportFailed, ClientError, BotoCoreError) as error:
            LOG.error("%s: the import could not be handed over: %s", package_arn, error)
            importer.fail(package_arn, error, claim)
            raise
        LOG.info("%s is %s: handed over to a new invocation (%d of at most %d)",
                 package_arn, outcome.status, resumes, MAX_LAMBDA_RESUMES)
    return asdict(outcome)


def lambda_handler(event: dict, context) -> dict:
    LOG.setLevel(logging.INFO)
    settings = Settings.resolve(None, os.environ, required=("region",))
    session = session_for(settings)
    return handle_event(event, context.get_remaining_time_in_millis() / 1000.0, settings,
                        importer_for(settings, session=session), session.client("lambda"),
                        context.invoked_function_arn, context.aws_request_id)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scripts.import_to_bedrock", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-package-arn", required=True, help="the approved model package version")
    parser.add_argument("--wait", action="store_true",
                        help="wait until the model serves and the smoke test answered "
                             "(without it: start what is missing, record progress, return)")
    parser.add_argument("--smoke-question-file", type=Path,
                        help="local gen_qa.jsonl whose first record is the smoke-test question "
                             f"(default: the package's {EVAL_DATA_KEY})")
    parser.add_argument("--verbose", action="store_true", help="also print the AWS SDK's INFO lines")
    add_settings_arguments(parser)
    return parser


def main(argv: list[str] | None = None, *, session=None, sleep: Callable[[float], None] = time.sleep) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose, LOG.name)
    try:
        settings = Settings.resolve(args, required=("region",))
        check_package_arn(args.model_package_arn, settings.model_package_group, settings.region)
        problem = region_problem(settings.region, provisioned=settings.model_units is not None)
        # An open-weights model is served in every region its customization runs in (Bedrock, or an endpoint).
        if problem and settings.region not in OPEN_WEIGHTS_REGIONS:
            raise ImportFailed(problem)
        question = None
        if args.smoke_question_file:
            question = read_smoke_question(args.smoke_question_file.read_text(encoding="utf-8"),
                                           str(args.smoke_question_file))
    except (SettingsError, BadPackageArn, ImportFailed, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        importer = importer_for(settings, question, session, sleep)
        check_package_arn(args.model_package_arn, settings.model_package_group, settings.region, importer.account)
    except BadPackageArn as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    deadline = None if args.wait else importer.clock()
    try:
        outcome = importer.run(args.model_package_arn, deadline=deadline, retry_failed=True)
    except ImportFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as error:
        # An AWS error says what failed, not where it was asked: name the region and account.
        print(f"error: {error} (in {settings.region}, account {importer.account}: check --region (AWS_REGION), "
              "the ARN and the credentials)", file=sys.stderr)
        return 1
    print(json.dumps(asdict(outcome), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
