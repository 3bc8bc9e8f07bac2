"""Turn an approved model package into an on-demand Amazon Bedrock model.

    python -m scripts.import_to_bedrock --model-package-arn ARN [--wait] [--smoke-question-file PATH]

and, with the same logic, `lambda_handler`: the target of the EventBridge rule on
"SageMaker Model Package State Change" for our group's approved packages
(see `python -m scripts.deploy_approval_hook`).

For an approved package it reads the Nova checkpoint path from the package's metadata
(`checkpoint_s3_uri`), calls CreateCustomModel, waits until the model is Active, creates an
on-demand CustomModelDeployment, waits until that is Active, asks the deployment one FinQA
test question through Converse, and writes the Bedrock ARNs back onto the package's
metadata. Names and client request tokens are derived from the package, and existing
models and deployments are looked up first, so a second run creates nothing. A package
that is not approved is left alone. A failure is written onto the package
(`bedrock_import_status` = Failed, `bedrock_import_error`) and raised.

Metadata writes only happen when something changed: SageMaker may emit another state-change
event for the write, and that event then finds nothing to do.
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.settings import Settings, SettingsError, add_settings_arguments
from scripts.aws import error_code, session_for, split_s3_uri

LOG = logging.getLogger("scripts.import_to_bedrock")

CHECKPOINT_KEY = "checkpoint_s3_uri"
EVAL_DATA_KEY = "eval_data_s3_uri"
STATUS_KEY = "bedrock_import_status"
ERROR_KEY = "bedrock_import_error"
MODEL_ARN_KEY = "bedrock_model_arn"
DEPLOYMENT_ARN_KEY = "bedrock_deployment_arn"
SMOKE_KEY = "bedrock_smoke_test"

IMPORTING, DEPLOYING, DEPLOYED, FAILED, SKIPPED = (
    "ModelImporting", "DeploymentCreating", "Deployed", "Failed", "Skipped")

POLL_SECONDS = 60
LAMBDA_SAFETY_SECONDS = 90
MAX_LAMBDA_RESUMES = 12
"""A Lambda run lasts at most 15 minutes; an import can take longer, so an unfinished run
hands over to a fresh invocation of itself, at most this many times (about three hours)."""

_NAME_LIMIT = 63
_METADATA_VALUE = re.compile(r"[^\w .:/=+\-@]", re.UNICODE)


class ImportFailed(RuntimeError):
    """The package cannot be imported; the message says why and what to do."""


@dataclass(frozen=True)
class Outcome:
    status: str
    model_package_arn: str
    model_arn: str = ""
    deployment_arn: str = ""
    detail: str = ""


@dataclass(frozen=True)
class SmokeQuestion:
    system: str
    query: str
    source: str


def metadata_value(text: str) -> str:
    """Model package metadata values allow letters, digits, spaces and `_.:/=+-@`, at most
    256 characters: anything else in an error message becomes a space."""
    cleaned = re.sub(r"\s+", " ", _METADATA_VALUE.sub(" ", text)).strip()
    return cleaned[:256] or "-"


def resource_names(package: dict) -> tuple[str, str]:
    """Bedrock model and deployment names for this package version: stable across runs."""
    base = re.sub(r"[^0-9a-zA-Z]+", "-", package["ModelPackageGroupName"]).strip("-")
    version = f"-v{package['ModelPackageVersion']}"
    deployment_suffix = version + "-ondemand"
    model = base[:_NAME_LIMIT - len(version)].rstrip("-") + version
    deployment = base[:_NAME_LIMIT - len(deployment_suffix)].rstrip("-") + deployment_suffix
    return model, deployment


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


class BedrockImport:
    def __init__(self, sagemaker, bedrock, bedrock_runtime, s3, bedrock_role_arn: str,
                 smoke_question: SmokeQuestion | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 poll_seconds: float = POLL_SECONDS):
        self.sagemaker = sagemaker
        self.bedrock = bedrock
        self.bedrock_runtime = bedrock_runtime
        self.s3 = s3
        self.bedrock_role_arn = bedrock_role_arn
        self.smoke_question = smoke_question
        self.sleep = sleep
        self.clock = clock
        self.poll_seconds = poll_seconds

    def run(self, package_arn: str, deadline: float | None = None, retry_failed: bool = True) -> Outcome:
        """Advance the package's import as far as it goes before `deadline` (a `clock()`
        value; None waits as long as it takes). Safe to call any number of times."""
        package = self.sagemaker.describe_model_package(ModelPackageName=package_arn)
        package_arn = package["ModelPackageArn"]
        approval = package.get("ModelApprovalStatus", "")
        if approval != "Approved":
            LOG.info("%s is %s, not Approved: nothing to do", package_arn, approval or "without status")
            return Outcome(SKIPPED, package_arn, detail=f"package is {approval or 'without approval status'}")
        metadata = dict(package.get("CustomerMetadataProperties") or {})
        known = Outcome(metadata.get(STATUS_KEY, ""), package_arn, metadata.get(MODEL_ARN_KEY, ""),
                        metadata.get(DEPLOYMENT_ARN_KEY, ""))
        if known.status == DEPLOYED and known.deployment_arn:
            LOG.info("%s is already deployed as %s", package_arn, known.deployment_arn)
            return Outcome(DEPLOYED, package_arn, known.model_arn, known.deployment_arn, "already deployed")
        if known.status == FAILED and not retry_failed:
            detail = (f"an earlier import failed ({metadata.get(ERROR_KEY, 'no reason recorded')}); "
                      "retry with python -m scripts.import_to_bedrock --model-package-arn ARN --wait")
            LOG.warning("%s: %s", package_arn, detail)
            return Outcome(SKIPPED, package_arn, known.model_arn, known.deployment_arn, detail)
        progress: dict[str, str] = {}
        try:
            return self._advance(package, metadata, progress, deadline)
        except (ImportFailed, ClientError, BotoCoreError) as error:
            LOG.error("importing %s into Bedrock failed: %s", package_arn, error)
            try:
                self._write(package_arn, metadata, {**progress, STATUS_KEY: FAILED,
                                                     ERROR_KEY: metadata_value(str(error))})
            except (ClientError, BotoCoreError) as write_error:
                LOG.error("and the failure could not be written onto %s: %s", package_arn, write_error)
            raise

    def _advance(self, package: dict, metadata: dict[str, str], progress: dict[str, str],
                 deadline: float | None) -> Outcome:
        package_arn = package["ModelPackageArn"]
        checkpoint = metadata.get(CHECKPOINT_KEY, "").strip()
        try:
            split_s3_uri(checkpoint)
        except ValueError:
            raise ImportFailed(
                f"the model package has no usable '{CHECKPOINT_KEY}' in its metadata "
                f"(found {checkpoint!r}); the pipeline's registration step writes the training "
                "job's escrow checkpoint there (manifest.json checkpoint_s3_bucket)") from None
        if not self.bedrock_role_arn:
            raise ImportFailed("no Bedrock import role: set --bedrock-role-arn or NOVA_BEDROCK_ROLE_ARN "
                               "(python -m scripts.deploy_approval_hook creates one)")
        model_name, deployment_name = resource_names(package)

        model_arn = self._ensure_model(package_arn, model_name, checkpoint)
        progress[MODEL_ARN_KEY] = model_arn
        if not self._wait("model", model_name, lambda: self._model_status(model_arn), deadline):
            self._write(package_arn, metadata, {**progress, STATUS_KEY: IMPORTING})
            return Outcome(IMPORTING, package_arn, model_arn, detail=f"Bedrock is importing {model_name}")

        deployment_arn = self._ensure_deployment(package_arn, deployment_name, model_arn)
        progress[DEPLOYMENT_ARN_KEY] = deployment_arn
        if not self._wait("deployment", deployment_name, lambda: self._deployment_status(deployment_arn), deadline):
            self._write(package_arn, metadata, {**progress, STATUS_KEY: DEPLOYING})
            return Outcome(DEPLOYING, package_arn, model_arn, deployment_arn,
                           f"Bedrock is deploying {deployment_name}")

        smoke = self._smoke_test(deployment_arn, metadata)
        self._write(package_arn, metadata, {**progress, STATUS_KEY: DEPLOYED, SMOKE_KEY: metadata_value(smoke)},
                    remove=(ERROR_KEY,))
        LOG.info("%s deployed on demand as %s", package_arn, deployment_arn)
        return Outcome(DEPLOYED, package_arn, model_arn, deployment_arn, smoke)

    def _ensure_model(self, package_arn: str, name: str, checkpoint: str) -> str:
        try:
            existing = self.bedrock.get_custom_model(modelIdentifier=name)
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
        else:
            LOG.info("Bedrock model %s exists already: %s", name, existing["modelArn"])
            return existing["modelArn"]
        LOG.info("creating Bedrock model %s from %s", name, checkpoint)
        return self.bedrock.create_custom_model(
            modelName=name,
            modelSourceConfig={"s3DataSource": {"s3Uri": checkpoint}},
            roleArn=self.bedrock_role_arn,
            clientRequestToken=request_token(package_arn, "custom-model"),
        )["modelArn"]

    def _ensure_deployment(self, package_arn: str, name: str, model_arn: str) -> str:
        try:
            existing = self.bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=name)
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
        else:
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

    def _model_status(self, model_arn: str) -> tuple[str, str]:
        model = self.bedrock.get_custom_model(modelIdentifier=model_arn)
        return model.get("modelStatus", ""), model.get("failureMessage", "")

    def _deployment_status(self, deployment_arn: str) -> tuple[str, str]:
        deployment = self.bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=deployment_arn)
        return deployment.get("status", ""), deployment.get("failureMessage", "")

    def _wait(self, what: str, name: str, status: Callable[[], tuple[str, str]], deadline: float | None) -> bool:
        """True once Active; False if the deadline comes first; ImportFailed if it failed."""
        while True:
            state, failure = status()
            if state == "Active":
                return True
            if state == "Failed":
                raise ImportFailed(f"Bedrock {what} {name} failed: {failure or 'no reason given'}; "
                                   f"delete it in Bedrock, then run again to recreate it")
            if deadline is not None and self.clock() + self.poll_seconds > deadline:
                LOG.info("Bedrock %s %s is %s; not waiting longer in this run", what, name, state)
                return False
            LOG.info("Bedrock %s %s is %s", what, name, state)
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

    def _smoke_test(self, deployment_arn: str, metadata: dict[str, str]) -> str:
        question = self._question(metadata)
        request: dict[str, Any] = {
            "modelId": deployment_arn,
            "messages": [{"role": "user", "content": [{"text": question.query}]}],
            "inferenceConfig": {"maxTokens": 512, "temperature": 0.0},
        }
        if question.system:
            request["system"] = [{"text": question.system}]
        response = self.bedrock_runtime.converse(**request)
        texts = [part.get("text", "") for part in response.get("output", {}).get("message", {}).get("content", [])]
        answer = " ".join(t for t in texts if t).strip()
        if not answer:
            raise ImportFailed(f"smoke test: {deployment_arn} answered the question from "
                               f"{question.source} with no text (stopReason {response.get('stopReason')})")
        LOG.info("smoke test answer from %s: %s", deployment_arn, answer[:500])
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
    return BedrockImport(session.client("sagemaker"), session.client("bedrock"),
                         session.client("bedrock-runtime"), session.client("s3"),
                         settings.bedrock_role_arn, smoke_question, sleep=sleep)


def handle_event(event: dict, remaining_seconds: float, settings: Settings, importer: BedrockImport,
                 lambda_client=None, function_name: str = "") -> dict:
    """One Lambda invocation: a model package state-change event, or a hand-over from an
    earlier invocation that ran out of time (`resume` carries the count)."""
    detail = event.get("detail") or {}
    package_arn = detail.get("ModelPackageArn", "")
    if not package_arn:
        raise ImportFailed(f"event has no detail.ModelPackageArn: {json.dumps(event)[:500]}")
    group = detail.get("ModelPackageGroupName", "")
    if group and group != settings.model_package_group:
        LOG.info("%s belongs to group %s, not %s: ignored", package_arn, group, settings.model_package_group)
        return asdict(Outcome(SKIPPED, package_arn, detail=f"group {group} is not ours"))
    deadline = importer.clock() + remaining_seconds - LAMBDA_SAFETY_SECONDS
    outcome = importer.run(package_arn, deadline=deadline, retry_failed=False)
    if outcome.status in (IMPORTING, DEPLOYING) and lambda_client is not None:
        resumes = int(event.get("resume", 0)) + 1
        if resumes > MAX_LAMBDA_RESUMES:
            raise ImportFailed(f"{package_arn} still {outcome.status} after {MAX_LAMBDA_RESUMES} hand-overs; "
                               "finish it with python -m scripts.import_to_bedrock --wait")
        lambda_client.invoke(FunctionName=function_name, InvocationType="Event",
                             Payload=json.dumps({**event, "resume": resumes}).encode())
        LOG.info("%s is %s: handed over to a new invocation (%d of at most %d)",
                 package_arn, outcome.status, resumes, MAX_LAMBDA_RESUMES)
    return asdict(outcome)


def lambda_handler(event: dict, context) -> dict:
    logging.getLogger().setLevel(logging.INFO)
    settings = Settings.resolve(None, os.environ, required=("region", "bedrock_role_arn"))
    session = session_for(settings)
    return handle_event(event, context.get_remaining_time_in_millis() / 1000.0, settings,
                        importer_for(settings, session=session), session.client("lambda"),
                        context.invoked_function_arn)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scripts.import_to_bedrock", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-package-arn", required=True, help="the approved model package version")
    parser.add_argument("--wait", action="store_true",
                        help="wait until the deployment is active and the smoke test answered "
                             "(without it: start what is missing, record progress, return)")
    parser.add_argument("--smoke-question-file", type=Path,
                        help="local gen_qa.jsonl whose first record is the smoke-test question "
                             f"(default: the package's {EVAL_DATA_KEY})")
    add_settings_arguments(parser)
    return parser


def main(argv: list[str] | None = None, *, session=None, sleep: Callable[[float], None] = time.sleep) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.resolve(args, required=("region", "bedrock_role_arn"))
        question = None
        if args.smoke_question_file:
            question = read_smoke_question(args.smoke_question_file.read_text(encoding="utf-8"),
                                           str(args.smoke_question_file))
    except (SettingsError, ImportFailed, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    importer = importer_for(settings, question, session, sleep)
    deadline = None if args.wait else importer.clock()
    try:
        outcome = importer.run(args.model_package_arn, deadline=deadline, retry_failed=True)
    except (ImportFailed, ClientError, BotoCoreError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(outcome), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
