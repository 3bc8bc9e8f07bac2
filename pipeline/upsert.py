"""Build, check and deploy the pipeline: `python -m pipeline.upsert [--dry-run] [settings]`.

With --dry-run: builds the definition, checks it and writes it, with no AWS call at all (no
credentials needed), except DescribeModelPackage with --source-model-package, which needs the
package's checkpoint (`pipeline.source_model`). Without: also uploads the code and recipe (an object already at a key is
kept only if its SHA-256 is the artifact's: anything else there is reported and replaced;
every S3 call names this account as the bucket's expected owner), creates the model package
group if missing, for a reinforcement fine-tuning recipe creates or updates the reward Lambda
its recipe names (`pipeline.reward_function`), creates or updates the pipeline (merging tags),
and prints the pipeline ARN and what changed against the deployed definition.
AWS_ENDPOINT_URL (boto3's own variable) points every call at another endpoint, e.g. moto_server.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from pipeline.settings import Settings, SettingsError, add_settings_arguments

SERVERLESS_DESCRIPTION = ("FinQA -> {model} on SageMaker AI serverless model customization ({technique}, "
                          "{training_type}), evaluation against the base model, accuracy gate, Model Registry")
PIPELINE_DESCRIPTION = ("FinQA -> Amazon Nova fine-tuning with AWS's recipe {recipe}, evaluation against the "
                        "base model, accuracy gate, Model Registry")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline.upsert", description=__doc__.split("\n")[0])
    add_settings_arguments(parser)
    parser.add_argument("--dry-run", action="store_true",
                        help="build and check the definition and write it; no AWS call, no credentials needed")
    parser.add_argument("--definition-out", type=Path, default=None, metavar="PATH",
                        help="write the definition here (default with --dry-run: stdout)")
    return parser


REQUIRED_SETTINGS = ("region", "role_arn", "bucket")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.resolve(args, required=REQUIRED_SETTINGS)
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from pipeline.bedrock_rules import deployment_problem
    from steps.open_weights_models import SAGEMAKER_ENDPOINT, deployment, pipeline_is_open_weights
    from steps.open_weights_models import deployment_problem as open_weights_deployment_problem

    if pipeline_is_open_weights(settings):
        problem = open_weights_deployment_problem(settings.base_model, settings.region, settings.open_weights_serving,
                                                  settings.model_units)
        if not problem and deployment(settings.base_model, settings.region,
                                      settings.open_weights_serving) == SAGEMAKER_ENDPOINT:
            print(f"note: the approval hook serves approved {settings.base_model} models in {settings.region} on a "
                  "SageMaker endpoint (instance type: --endpoint-instance-type, else the hub's Default hosting "
                  "configuration), billed by the instance-hour until deleted (docs/open-weights.md)", file=sys.stderr)
    else:
        problem = deployment_problem(trained_recipe(settings), settings.region, settings.model_units)
    if problem:
        print(f"warning: the approval hook could not serve this pipeline's models: {problem}", file=sys.stderr)
    if settings.approves_automatically:
        print("warning: --auto-approve: every model that passes the accuracy gate is registered Approved, and the "
              "approval hook, where deployed, imports and serves it with no reviewer; whoever may start executions "
              "chooses AccuracyThreshold and DataLocation (docs/security.md)", file=sys.stderr)
    # The SDK makes clients when imported and needs a region by then: the settings' one.
    os.environ["AWS_DEFAULT_REGION"] = settings.region
    if args.dry_run:
        # Each client the SDK makes looks for credentials; without any, botocore's last resort
        # is the EC2 instance metadata service, over the network. A dry run needs none.
        os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    from pipeline.checks import definition_problems
    from pipeline.definition import build_pipeline
    from pipeline.source_model import SourceModelError
    from steps.catalog import RecipeError, UnsupportedRegionError

    try:
        source = resolve_source_model(settings)
        built = build_pipeline(settings, source)
    except (UnsupportedRegionError, RecipeError, SourceModelError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    problems = definition_problems(built.definition)
    if problems:
        print("error: the pipeline definition does not check out:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    if args.definition_out is not None:
        args.definition_out.parent.mkdir(parents=True, exist_ok=True)
        args.definition_out.write_text(built.definition, encoding="utf-8")
    if args.dry_run:
        if args.definition_out is None:
            sys.stdout.write(built.definition)
        steps = json.loads(built.definition)["Steps"]
        where = f"written to {args.definition_out}" if args.definition_out is not None else "written to stdout"
        print(f"dry run: pipeline {settings.pipeline_name} checked ({len(steps)} top-level steps, "
              f"{len(built.definition):,} bytes), {where}; nothing uploaded, no AWS call.\n"
              f"next: the same command without --dry-run deploys it, with credentials of the account of "
              f"--role-arn and a bucket that exists:\n  {_deploy_command(sys.argv[1:] if argv is None else argv)}",
              file=sys.stderr)
        return 0
    from botocore.exceptions import BotoCoreError, ClientError

    from pipeline.reward_evaluator import EvaluatorError
    from pipeline.reward_function import RewardFunctionError

    try:
        deploy(settings, built)
    except (BotoCoreError, ClientError, RewardFunctionError, UpsertError, EvaluatorError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def sagemaker_client(settings: Settings):
    import boto3

    return boto3.Session(region_name=settings.region).client("sagemaker")


def resolve_source_model(settings: Settings):
    """The approved package training starts from (--source-model-package), or None: DescribeModelPackage."""
    if not settings.source_model_package:
        return None
    from botocore.exceptions import BotoCoreError, ClientError

    from pipeline.source_model import SourceModelError, describe_source_model
    from steps.catalog import recipe

    try:
        source = describe_source_model(sagemaker_client(settings), settings.source_model_package,
                                       settings.model_package_group, recipe(settings.recipe),
                                       account=settings.account, checkpoint_bucket=settings.checkpoint_bucket)
    except (BotoCoreError, ClientError) as error:
        raise SourceModelError(f"--source-model-package {settings.source_model_package}: "
                               f"cannot be read ({error})") from None
    print(f"training starts from {source.package_arn} ({source.technique}): {source.checkpoint}", file=sys.stderr)
    return source


class UpsertError(RuntimeError):
    """The account or bucket the settings name cannot take the pipeline; the message names the fix."""


def _deploy_command(argv: list[str]) -> str:
    """The command line of this dry run as a deployment: without --dry-run and --definition-out."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--dry-run" or arg.startswith("--definition-out="):
            continue
        elif arg == "--definition-out":
            skip = True
        else:
            kept.append(arg)
    return shlex.join(["python", "-m", "pipeline.upsert", *kept])


def trained_recipe(settings: Settings):
    """The catalog recipe the pipeline trains with: --recipe, or on serverless the combination's."""
    from steps.catalog import recipe

    if settings.serverless:
        from pipeline.serverless import serverless_recipe

        return serverless_recipe(settings)
    return recipe(settings.recipe)


def pipeline_description(settings: Settings) -> str:
    if settings.serverless:
        return SERVERLESS_DESCRIPTION.format(technique=settings.technique.upper(), training_type=settings.training_type,
                                             model=settings.base_model)
    return PIPELINE_DESCRIPTION.format(recipe=settings.recipe)


def deploy(settings: Settings, built) -> str:
    import boto3

    from pipeline import reward_evaluator, reward_function

    session = boto3.Session(region_name=settings.region)
    s3 = session.client("s3")
    sagemaker = session.client("sagemaker")
    account = session.client("sts").get_caller_identity()["Account"]
    check_role_account(account, settings.role_arn)
    _check_bucket(s3, settings)
    for artifact in built.uploads:
        done = upload_verified(s3, settings.bucket, artifact.key, artifact.data, account)
        print(f"{done}: s3://{settings.bucket}/{artifact.key}")
    if _ensure_model_package_group(sagemaker, settings):
        print(f"created model package group {settings.model_package_group}")
    if settings.serverless:
        # Serverless RLVR and the generation jobs name the reward as an AI Registry evaluator.
        print(f"reward function: {reward_function.deploy(session, settings)}")
        print(f"reward evaluator: {reward_evaluator.deploy(reward_evaluator.hub_client(session), settings)}")
    elif trained_recipe(settings).method == "rft":
        print(f"reward function: {reward_function.deploy(session, settings)}")
    deployed = _deployed_pipeline(sagemaker, settings.pipeline_name)
    previous = None if deployed is None else deployed["PipelineDefinition"]
    if previous is None:
        arn = sagemaker.create_pipeline(
            PipelineName=settings.pipeline_name, PipelineDefinition=built.definition,
            PipelineDescription=pipeline_description(settings), RoleArn=settings.role_arn,
            **({"Tags": settings.tag_list} if settings.tags else {}))["PipelineArn"]
    else:
        arn = sagemaker.update_pipeline(
            PipelineName=settings.pipeline_name, PipelineDefinition=built.definition,
            PipelineDescription=pipeline_description(settings),
            RoleArn=settings.role_arn)["PipelineArn"]
        _merge_tags(sagemaker, arn, settings.tags)
    print(arn)
    previous_role = None if deployed is None else deployed.get("RoleArn")
    for line in change_summary(previous, built.definition, previous_role, settings.role_arn):
        print(f"  {line}")
    return arn


def _error_code(error) -> str:
    return error.response.get("Error", {}).get("Code", "")


UPLOADED, CHECKED, REPLACED = "uploaded", "already in S3 (SHA-256 checked)", "replaced"


def upload_verified(s3, bucket: str, key: str, data: bytes, owner: str) -> str:
    """Put `data` at its content-addressed `key` unless exactly those bytes are there already.

    The key names the SHA-256 of the bytes, but anyone who may write to the bucket can put
    anything there: what is found is compared (S3's own SHA-256 of the object when it has one,
    else the object's bytes, read and hashed), and different bytes are reported on stderr and
    replaced. The upload carries its SHA-256 (S3 refuses bytes that do not match it) and every
    call names `owner` as the bucket's expected owner (another account's bucket is refused)."""
    from botocore.exceptions import ClientError

    digest = hashlib.sha256(data).digest()
    checksum = base64.b64encode(digest).decode()
    try:
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED", ExpectedBucketOwner=owner)
    except ClientError as error:
        if _error_code(error) not in ("404", "NoSuchKey", "NotFound"):
            raise
        head = None
    if head is not None:
        if head.get("ChecksumSHA256") == checksum:
            return CHECKED
        found = hashlib.sha256()
        for chunk in s3.get_object(Bucket=bucket, Key=key, ExpectedBucketOwner=owner)["Body"].iter_chunks(1 << 20):
            found.update(chunk)
        if found.digest() == digest:
            _put(s3, bucket, key, data, checksum, owner)  # the same bytes, now with S3's own SHA-256
            return CHECKED
        print(f"warning: s3://{bucket}/{key} held {head.get('ContentLength')} bytes of SHA-256 {found.hexdigest()}, "
              f"not the artifact (SHA-256 {digest.hex()}): someone who may write to the bucket put it there; it is "
              "replaced, and the jobs check the code archive's SHA-256 before they run it. Find out who wrote it "
              "(CloudTrail data events, S3 server access logs)", file=sys.stderr)
        _put(s3, bucket, key, data, checksum, owner)
        return REPLACED
    _put(s3, bucket, key, data, checksum, owner)
    return UPLOADED


def _put(s3, bucket: str, key: str, data: bytes, checksum: str, owner: str) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=data, ChecksumSHA256=checksum, ExpectedBucketOwner=owner)


def _is_missing(error) -> bool:
    message = error.response.get("Error", {}).get("Message", "").lower()
    return _error_code(error) == "ResourceNotFound" or (
        _error_code(error) == "ValidationException" and ("not exist" in message or "not find" in message))


def _ensure_model_package_group(sagemaker, settings: Settings) -> bool:
    from botocore.exceptions import ClientError

    try:
        sagemaker.describe_model_package_group(ModelPackageGroupName=settings.model_package_group)
        return False
    except ClientError as error:
        if not _is_missing(error):
            raise
    sagemaker.create_model_package_group(
        ModelPackageGroupName=settings.model_package_group,
        ModelPackageGroupDescription=("Nova Lite fine-tuned on FinQA, registered by the pipeline after its "
                                      "accuracy gate"),
        **({"Tags": settings.tag_list} if settings.tags else {}))
    return True


def check_role_account(caller_account: str, role_arn: str) -> None:
    """Refuse a role of another account than the credentials': SageMaker runs every job of the
    pipeline as the role, and an RFT recipe names its reward function in the role's account."""
    account = role_arn.split(":")[4]
    if caller_account != account:
        raise UpsertError(
            f"--role-arn {role_arn} is in account {account}, but these credentials are of account "
            f"{caller_account}: deploy with credentials of account {account}, or give a role of account "
            f"{caller_account} (--role-arn / NOVA_ROLE_ARN)")


def _check_bucket(s3, settings: Settings) -> None:
    """The bucket must exist before anything is uploaded: the upsert creates none."""
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=settings.bucket)
    except ClientError as error:
        code = _error_code(error)
        if code in ("404", "NoSuchBucket", "NotFound"):
            raise UpsertError(
                f"bucket {settings.bucket!r} (--bucket / NOVA_BUCKET) does not exist: create it first, e.g. "
                f"`aws s3 mb s3://{settings.bucket} --region {settings.region}`, or name one that exists") from None
        if code in ("403", "AccessDenied", "Forbidden"):
            raise UpsertError(
                f"bucket {settings.bucket!r} (--bucket / NOVA_BUCKET) is not readable with these credentials "
                f"(HeadBucket: {code}): it may be another account's; name a bucket of this account, or grant "
                "s3:ListBucket, s3:GetObject and s3:PutObject on it") from None
        raise


def _deployed_pipeline(sagemaker, name: str) -> dict | None:
    """DescribePipeline's answer (definition and role), or None when no pipeline has the name."""
    from botocore.exceptions import ClientError

    try:
        return sagemaker.describe_pipeline(PipelineName=name)
    except ClientError as error:
        if _is_missing(error):
            return None
        raise


def _merge_tags(sagemaker, arn: str, tags: tuple[tuple[str, str], ...]) -> None:
    """Set the given tags, keep the others: AddTags alone may keep a stale value beside the new one."""
    if not tags:
        return
    existing = {tag["Key"]: tag["Value"] for tag in sagemaker.list_tags(ResourceArn=arn).get("Tags", [])}
    changed = [(key, value) for key, value in tags if existing.get(key) != value]
    stale = [key for key, _ in changed if key in existing]
    if stale:
        sagemaker.delete_tags(ResourceArn=arn, TagKeys=stale)
    if changed:
        sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": key, "Value": value} for key, value in changed])


def change_summary(previous: str | None, current: str, previous_role: str | None = None,
                   role: str | None = None) -> list[str]:
    """What a reviewer wants to know about an upsert: the role, and which parameters and steps changed.

    A new role is in every job step's arguments; those steps are listed only where something
    else changed as well."""
    if previous is None:
        return ["created (no pipeline of this name was deployed)"]
    role_change = []
    if previous_role and role and previous_role != role:
        steps = sum(1 for step in _steps_by_name(json.loads(previous).get("Steps", [])).values()
                    if json.dumps(previous_role) in json.dumps(step))
        role_change = [f"role changed: {previous_role} -> {role} (the pipeline's {steps} job steps run as it)"]
        previous = previous.replace(json.dumps(previous_role), json.dumps(role))
    before, after = json.loads(previous), json.loads(current)
    if before == after:
        return role_change or ["definition unchanged"]
    changes = _compare("parameter", _by_name(before.get("Parameters", [])), _by_name(after.get("Parameters", [])))
    changes += _compare("step", _steps_by_name(before.get("Steps", [])), _steps_by_name(after.get("Steps", [])))
    return role_change + (changes or ["definition changed outside parameters and steps"])


def _by_name(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {item["Name"]: item for item in items}


def _steps_by_name(steps: list[dict[str, Any]]) -> dict[str, Any]:
    flat = {}
    for step in steps:
        arguments = step.get("Arguments", {})
        if step.get("Type") == "Condition":
            flat.update(_steps_by_name(arguments.get("IfSteps", []) + arguments.get("ElseSteps", [])))
            step = {**step, "Arguments": {k: v for k, v in arguments.items() if k not in ("IfSteps", "ElseSteps")}}
        flat[step["Name"]] = step
    return flat


def _compare(kind: str, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    lines = [f"{kind} added: {name}" for name in after if name not in before]
    lines += [f"{kind} removed: {name}" for name in before if name not in after]
    lines += [f"{kind} changed: {name}" for name in after if name in before and after[name] != before[name]]
    return lines


if __name__ == "__main__":
    sys.exit(main())
