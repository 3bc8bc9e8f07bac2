"""Create or update the approval hook: approving a model package imports it into Bedrock.

    python -m scripts.deploy_approval_hook [--checkpoint-bucket NAME] [--bedrock-role-arn ARN]
        [--provisioned-model-units N] [--verbose] [settings flags]

Every value that goes into a policy is checked against the rule of what it names (account id,
partition, region, S3's bucket naming rules, the prefix's characters: pipeline/settings.py) and
filled into the parsed policy document, never into its JSON text (`render_policy`).

Sets up, in this order, and each time to the same end state (running it again changes
nothing that is already right):
- the IAM role Bedrock assumes to read the Nova checkpoint (`<group>-bedrock-import`), unless
  --bedrock-role-arn names one (then that role is checked: it must exist in this account and
  trust bedrock.amazonaws.com; nothing is changed on it),
- the Lambda's IAM role (`<group>-approval-hook`),
  both with the reviewed policies in scripts/policies/*.json (the Provisioned Throughput
  statements only with --provisioned-model-units; those that serve an open-weights model on a
  SageMaker endpoint only with an endpoint role: --endpoint-role-arn, else --role-arn),
- the Lambda's log group with a retention period,
- the Lambda `<group>-bedrock-import` running `scripts.import_to_bedrock.lambda_handler`
  from a deterministic zip (scripts/lambda_bundle.py), redeployed only when the code changed,
  with a reserved concurrency of 1 (one import step at a time: see handle_event),
- the EventBridge rule `<group>-approved` on "SageMaker Model Package State Change" for this
  group with `ModelApprovalStatus: Approved`, targeting the Lambda, and the permission that
  lets the rule invoke it.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import string
import sys
import time
from collections.abc import Callable
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.settings import Settings, SettingsError, add_settings_arguments, bucket_name_problem
from scripts.aws import configure_logging, error_code, found, session_for
from scripts.lambda_bundle import HANDLER, build_zip
from steps.escrow import ESCROW_BUCKET_PREFIX

POLICIES = Path(__file__).resolve().parent / "policies"
RUNTIME = "python3.13"
TIMEOUT_SECONDS = 900
MEMORY_MB = 256
LOG_RETENTION_DAYS = 90
TARGET_ID = "bedrock-import"
PERMISSION_ID = "invoked-by-approval-rule"
NAME_LIMIT = 64
ROLE_PROPAGATION_TRIES = 12
RESERVED_CONCURRENCY = 1
BEDROCK_PRINCIPAL = "bedrock.amazonaws.com"
REQUIRED_SETTINGS = ("region", "bucket")


class HookError(RuntimeError):
    """A setting the hook cannot be deployed with; the message names it and the fix."""


def _bounded(name: str) -> str:
    """IAM role, Lambda and rule names stop at 64 characters; a longer one keeps a hash."""
    if len(name) <= NAME_LIMIT:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:NAME_LIMIT - 9]}-{digest}"


class HookNames:
    def __init__(self, group: str):
        self.bedrock_role = _bounded(f"{group}-bedrock-import")
        self.lambda_role = _bounded(f"{group}-approval-hook")
        self.function = _bounded(f"{group}-bedrock-import")
        self.rule = _bounded(f"{group}-approved")
        self.log_group = f"/aws/lambda/{self.function}"


def event_pattern(group: str) -> dict:
    return {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {"ModelPackageGroupName": [group], "ModelApprovalStatus": ["Approved"]},
    }


def render_policy(file_name: str, values: dict[str, str]) -> dict:
    """A reviewed policy file with its ${Placeholders} filled; a missing value is an error.

    The file is parsed first and each value substituted inside the string it belongs to, so
    a value, whatever it holds, stays one string: it cannot add a statement or a key."""
    document = json.loads((POLICIES / file_name).read_text(encoding="utf-8"))

    def fill(node):
        if isinstance(node, dict):
            return {key: fill(value) for key, value in node.items()}
        if isinstance(node, list):
            return [fill(item) for item in node]
        if isinstance(node, str):
            return string.Template(node).substitute(values)
        return node

    return fill(document)


# What each policy value may be; a value breaking its rule is refused before any IAM call.
_POLICY_VALUE_RULES = {
    "Partition": re.compile(r"aws(-[a-z]+)*"),
    "AccountId": re.compile(r"\d{12}"),
    "Region": re.compile(r"[a-z]{2}(-[a-z]+)+-\d"),
    "ModelPackageGroup": re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"),
    "FunctionName": re.compile(r"[a-zA-Z0-9_-]{1,64}"),
    "BedrockRoleArn": re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+"),
    "EndpointRoleArn": re.compile(r"(arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+)?"),
    "PrefixPath": re.compile(r"([A-Za-z0-9!_.'()-]+/)*"),
}


def escrow_bucket_pattern(account: str) -> str:
    """AWS's service-managed buckets of this account's Nova checkpoints (steps/escrow.py)."""
    return f"{ESCROW_BUCKET_PREFIX}{account}-*"


def endpoint_role_arn(settings: Settings) -> str:
    """The role a SageMaker endpoint serving an open-weights model runs with: --endpoint-role-arn, else the
    pipeline's --role-arn, else none (the hook then refuses such a package, saying so)."""
    return settings.endpoint_role_arn or settings.role_arn


def policy_values(settings: Settings, account: str, partition: str, names: HookNames,
                  bedrock_role_arn: str) -> dict[str, str]:
    values = {
        "Partition": partition, "Region": settings.region, "AccountId": account,
        "ModelPackageGroup": settings.model_package_group, "FunctionName": names.function,
        "BedrockRoleArn": bedrock_role_arn, "Bucket": settings.bucket,
        "PrefixPath": f"{settings.prefix}/" if settings.prefix else "",
        "CheckpointBucketPattern": settings.checkpoint_bucket or escrow_bucket_pattern(account),
        "EndpointRoleArn": endpoint_role_arn(settings),
    }
    problems = [f"{name} {values[name]!r} does not match {rule.pattern}"
                for name, rule in _POLICY_VALUE_RULES.items() if not rule.fullmatch(values[name])]
    for name, bucket in (("--bucket", settings.bucket), ("--checkpoint-bucket", settings.checkpoint_bucket)):
        problem = bucket and bucket_name_problem(bucket)
        if problem:
            problems.append(f"{name} {bucket!r} {problem}")
    if problems:
        raise HookError("a value for the hook's IAM policies is refused: " + "; ".join(problems))
    return values


class Deployer:
    def __init__(self, session, settings: Settings, out=sys.stdout,
                 sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self.iam = session.client("iam")
        self.logs = session.client("logs")
        self.lambda_ = session.client("lambda")
        self.events = session.client("events")
        self.sts = session.client("sts")
        self.out = out
        self.sleep = sleep

    def _tags(self, parameter: str, as_list: bool = False) -> dict:
        if not self.settings.tags:
            return {}
        return {parameter: self.settings.tag_list if as_list else dict(self.settings.tags)}

    def say(self, text: str) -> None:
        self.out.write(text + "\n")

    def deploy(self) -> dict[str, str]:
        identity = self.sts.get_caller_identity()
        account, partition = identity["Account"], identity["Arn"].split(":")[1]
        names = HookNames(self.settings.model_package_group)
        given_role = self.settings.bedrock_role_arn
        bedrock_role_arn = given_role or f"arn:{partition}:iam::{account}:role/{names.bedrock_role}"
        values = policy_values(self.settings, account, partition, names, bedrock_role_arn)

        if given_role:
            self.check_given_bedrock_role(given_role, account)
            self.say(f"using the given Bedrock import role {given_role}")
        else:
            self.ensure_role(names.bedrock_role, render_policy("bedrock_import_trust.json", values),
                             render_policy("bedrock_import_permissions.json", values),
                             "Lets Bedrock read Nova checkpoints to import approved models")
        permissions = render_policy("approval_hook_permissions.json", values)
        if self.settings.model_units:
            permissions["Statement"] += render_policy("approval_hook_provisioned_throughput.json", values)["Statement"]
        if values["EndpointRoleArn"]:
            permissions["Statement"] += render_policy("approval_hook_sagemaker_endpoint.json", values)["Statement"]
        lambda_role_arn = self.ensure_role(
            names.lambda_role, render_policy("approval_hook_trust.json", values), permissions,
            f"Runs the Bedrock import of approved {self.settings.model_package_group} model packages")
        self.ensure_log_group(names.log_group)
        environment = {
            "NOVA_MODEL_PACKAGE_GROUP": self.settings.model_package_group,
            "NOVA_BEDROCK_ROLE_ARN": bedrock_role_arn,
            "NOVA_BUCKET": self.settings.bucket,
            "NOVA_PREFIX": self.settings.prefix,
        }
        if self.settings.model_units:
            environment["NOVA_PROVISIONED_MODEL_UNITS"] = str(self.settings.model_units)
        if self.settings.checkpoint_bucket:
            environment["NOVA_CHECKPOINT_BUCKET"] = self.settings.checkpoint_bucket
        if values["EndpointRoleArn"]:
            environment["NOVA_ENDPOINT_ROLE_ARN"] = values["EndpointRoleArn"]
        if self.settings.open_weights_serving != "auto":
            environment["NOVA_OPEN_WEIGHTS_SERVING"] = self.settings.open_weights_serving
        if self.settings.endpoint_instance_type:
            environment["NOVA_ENDPOINT_INSTANCE_TYPE"] = self.settings.endpoint_instance_type
        function_arn = self.ensure_function(names.function, build_zip(), {
            "Role": lambda_role_arn, "Handler": HANDLER, "Runtime": RUNTIME, "Timeout": TIMEOUT_SECONDS,
            "MemorySize": MEMORY_MB, "Environment": {"Variables": environment},
            "Description": "Imports approved Nova FinQA model packages into Bedrock"})
        self.ensure_reserved_concurrency(names.function)
        rule_arn = self.events.put_rule(
            Name=names.rule, EventPattern=json.dumps(event_pattern(self.settings.model_package_group)),
            State="ENABLED",
            Description=f"Approved {self.settings.model_package_group} model packages go to Bedrock",
        )["RuleArn"]
        self.events.put_targets(Rule=names.rule, Targets=[{"Id": TARGET_ID, "Arn": function_arn}])
        self.ensure_invoke_permission(names.function, rule_arn)
        self.say(f"rule {names.rule} -> {function_arn}")
        return {"rule_arn": rule_arn, "function_arn": function_arn,
                "lambda_role_arn": lambda_role_arn, "bedrock_role_arn": bedrock_role_arn}

    def check_given_bedrock_role(self, role_arn: str, account: str) -> None:
        """The role a user named must be one Bedrock can assume here: found out now, not at the first approval."""
        role_account, _, path_and_name = role_arn.split(":", 4)[4].partition(":role/")
        if role_account != account:
            raise HookError(f"--bedrock-role-arn {role_arn} is in account {role_account}, not in {account}, "
                            "where the import runs: give a role of this account, or leave the flag out and "
                            "this command creates one")
        try:
            role = self.iam.get_role(RoleName=path_and_name.rsplit("/", 1)[-1])["Role"]
        except ClientError as error:
            if error_code(error) != "NoSuchEntity":
                raise
            raise HookError(f"--bedrock-role-arn {role_arn}: no such role in account {account}; create it "
                            "(trust and permissions as in scripts/policies/bedrock_import_*.json), or leave "
                            "the flag out and this command creates one") from None
        if role["Arn"] != role_arn:
            raise HookError(f"--bedrock-role-arn {role_arn}: the role of that name is {role['Arn']}; give its ARN")
        trust = _as_dict(role.get("AssumeRolePolicyDocument")) or {}
        if not any(_allows_service(statement, BEDROCK_PRINCIPAL) for statement in _listed(trust.get("Statement"))):
            raise HookError(f"--bedrock-role-arn {role_arn} does not let {BEDROCK_PRINCIPAL} assume it (its trust "
                            "policy), so Bedrock could not read the checkpoint: add the statement of "
                            "scripts/policies/bedrock_import_trust.json to it")

    def ensure_role(self, name: str, trust: dict, permissions: dict, description: str) -> str:
        try:
            role = self.iam.get_role(RoleName=name)["Role"]
        except ClientError as error:
            if error_code(error) != "NoSuchEntity":
                raise
            role = self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust),
                                        Description=description, **self._tags("Tags", as_list=True))["Role"]
            self.say(f"created role {name}")
        else:
            if _as_dict(role.get("AssumeRolePolicyDocument")) != trust:
                self.iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
                self.say(f"updated trust policy of role {name}")
        try:
            current = self.iam.get_role_policy(RoleName=name, PolicyName="permissions")["PolicyDocument"]
        except ClientError as error:
            if error_code(error) != "NoSuchEntity":
                raise
            current = None
        if _as_dict(current) != permissions:
            self.iam.put_role_policy(RoleName=name, PolicyName="permissions", PolicyDocument=json.dumps(permissions))
            self.say(f"set permissions of role {name}")
        return role["Arn"]

    def ensure_log_group(self, name: str) -> None:
        try:
            self.logs.create_log_group(logGroupName=name, **self._tags("tags"))
        except ClientError as error:
            if error_code(error) != "ResourceAlreadyExistsException":
                raise
        self.logs.put_retention_policy(logGroupName=name, retentionInDays=LOG_RETENTION_DAYS)

    def ensure_function(self, name: str, code: bytes, configuration: dict) -> str:
        """Create the function, or update its code and its configuration where they differ."""
        code_sha = base64.b64encode(hashlib.sha256(code).digest()).decode()
        try:
            current = self.lambda_.get_function_configuration(FunctionName=name)
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
            created = self._create_function(name, code, configuration)
            self.say(f"created Lambda {name} ({len(code)} bytes)")
            return created["FunctionArn"]
        if current.get("CodeSha256") != code_sha:
            self.lambda_.update_function_code(FunctionName=name, ZipFile=code)
            self._wait_updated(name)
            self.say(f"updated the code of Lambda {name}")
        if any(current.get(key) != value for key, value in configuration.items()):
            self.lambda_.update_function_configuration(FunctionName=name, **configuration)
            self._wait_updated(name)
            self.say(f"updated the configuration of Lambda {name}")
        return current["FunctionArn"]

    def _create_function(self, name: str, code: bytes, configuration: dict) -> dict:
        for attempt in range(ROLE_PROPAGATION_TRIES):
            try:
                return self.lambda_.create_function(FunctionName=name, Code={"ZipFile": code}, **self._tags("Tags"),
                                                    **configuration)
            except ClientError as error:
                # A role created seconds ago is not yet visible to Lambda: IAM is eventually consistent.
                propagating = (error_code(error) == "InvalidParameterValueException"
                               and "cannot be assumed" in str(error))
                if not propagating or attempt == ROLE_PROPAGATION_TRIES - 1:
                    raise
                self.sleep(5)
        raise AssertionError("unreachable")

    def _wait_updated(self, name: str) -> None:
        while self.lambda_.get_function_configuration(FunctionName=name).get("LastUpdateStatus") == "InProgress":
            self.sleep(2)

    def ensure_reserved_concurrency(self, function: str) -> None:
        current = self.lambda_.get_function_concurrency(FunctionName=function).get("ReservedConcurrentExecutions")
        if current != RESERVED_CONCURRENCY:
            self.lambda_.put_function_concurrency(FunctionName=function,
                                                  ReservedConcurrentExecutions=RESERVED_CONCURRENCY)
            self.say(f"set the reserved concurrency of Lambda {function} to {RESERVED_CONCURRENCY}")

    def ensure_invoke_permission(self, function: str, rule_arn: str) -> None:
        existing = found(self.lambda_.get_policy, FunctionName=function)
        policy = json.loads(existing["Policy"]) if existing else {"Statement": []}
        statement = next((s for s in policy["Statement"] if s.get("Sid") == PERMISSION_ID), None)
        if statement is not None:
            source = statement.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn")
            if source == rule_arn:
                return
            self.lambda_.remove_permission(FunctionName=function, StatementId=PERMISSION_ID)
        self.lambda_.add_permission(FunctionName=function, StatementId=PERMISSION_ID,
                                    Action="lambda:InvokeFunction", Principal="events.amazonaws.com",
                                    SourceArn=rule_arn)


def _listed(value) -> list:
    return [value] if isinstance(value, (str, dict)) else list(value or [])


def _allows_service(statement: dict, service: str) -> bool:
    principal = statement.get("Principal")
    services = _listed(principal.get("Service")) if isinstance(principal, dict) else []
    return (statement.get("Effect") == "Allow" and service in services
            and "sts:AssumeRole" in _listed(statement.get("Action")))


def _as_dict(document) -> dict | None:
    if document is None or isinstance(document, dict):
        return document
    return json.loads(document)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scripts.deploy_approval_hook", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verbose", action="store_true", help="also print the AWS SDK's INFO lines")
    add_settings_arguments(parser)
    return parser


def main(argv: list[str] | None = None, *, session=None, sleep: Callable[[float], None] = time.sleep) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        settings = Settings.resolve(args, required=REQUIRED_SETTINGS)
    except SettingsError as error:
        why = (" (the hook's Lambda reads each approved model's smoke-test question from the pipeline's bucket: "
               "give the --bucket the pipeline was deployed with)") if "--bucket (" in str(error) else ""
        print(f"error: {error}{why}", file=sys.stderr)
        return 2
    try:
        deployer = Deployer(session or session_for(settings), settings, sleep=sleep)
        print(json.dumps(deployer.deploy(), indent=2))
    except HookError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as error:
        print(f"error: {error}\nRunning it again is safe: what exists already is kept.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
