"""Start an execution of the pipeline, optionally watching its steps until it ends.

    python -m scripts.start_execution [--param Name=Value ...] [--display-name NAME] [--wait] [--timeout SECONDS]
    python -m scripts.start_execution --watch EXECUTION_ARN [--timeout SECONDS]

Overrides are checked before anything starts: against the parameters the deployed pipeline
declares (read from DescribePipeline's definition, the one source of truth: a misspelt name,
a value of the wrong type or not among a parameter's allowed values), and against the rules
the preparation step applies to the same values: steps.rules for record counts and the
accuracy threshold, and for recipe values steps.recipes' check against the deployed recipe
(the preparation step's --recipe in that definition). `ModelApprovalStatus` is refused even
where an older deployed pipeline declares it: approval is not an execution's to decide.
`--wait` prints each step's status as it changes and exits non-zero with the failing step's
reason; Ctrl-C and `--timeout` stop watching only.

Exit codes: 0 succeeded (or started, without --wait); 1 failed; 2 refused, nothing started;
3 started, but watching stopped before it ended (--timeout, or an endpoint that cannot be
watched); 130 Ctrl-C.
"""
from __future__ import annotations

import argparse
import difflib
import json
import math
import re
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.checks import all_steps, length_problems
from pipeline.definition import PREPARE
from pipeline.settings import Settings, SettingsError, add_settings_arguments, bucket_name_problem
from scripts.aws import error_code, session_for, split_s3_uri
from steps.catalog import DEFAULT_RECIPE, RecipeError, TrainingRecipe, recipe
from steps.recipes import EPOCHS, FIELD_PARAMETERS, REASONING_OFF, RECIPE_PARAMETERS, training_values
from steps.rules import PARAMETER_RULES, RuleError

POLL_SECONDS = 30
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_WATCHED = 3
EXIT_INTERRUPTED = 130

_DISPLAY_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}$")
_FINISHED = {"Succeeded", "Failed", "Stopped", "CompletedWithFailures"}
_BOOLEANS = {"true": "true", "false": "false"}


class UsageError(ValueError):
    """The command line asks for something the pipeline cannot take; nothing was started."""


class WatchTimeout(Exception):
    """--timeout ran out before the execution ended."""


@dataclass(frozen=True)
class DeclaredParameter:
    name: str
    type: str
    default: object
    allowed: tuple[str, ...] | None = None


@dataclass(frozen=True)
class DeployedPipeline:
    """What overrides are checked against, read from DescribePipeline's definition."""
    parameters: dict[str, DeclaredParameter]
    recipe_id: str
    recipe: TrainingRecipe | None
    """The recipe its preparation step renders; None when this checkout's catalog has no such recipe."""
    definition: dict | None = None


def deployed_pipeline(sagemaker, pipeline_name: str) -> DeployedPipeline:
    try:
        described = sagemaker.describe_pipeline(PipelineName=pipeline_name)
    except ClientError as error:
        region = sagemaker.meta.region_name
        raise UsageError(
            f"pipeline {pipeline_name!r} cannot be read in {region} ({error}); deploy it there with "
            "`python -m pipeline.upsert`, or pass the --region (AWS_REGION) and --pipeline-name "
            "(NOVA_PIPELINE_NAME) it was deployed with") from error
    definition = json.loads(described["PipelineDefinition"])
    parameters = {
        item["Name"]: DeclaredParameter(item["Name"], item.get("Type", "String"), item.get("DefaultValue"),
                                        tuple(item["EnumValues"]) if "EnumValues" in item else None)
        for item in definition.get("Parameters", [])
    }
    recipe_id = _recipe_id(definition)
    try:
        chosen = recipe(recipe_id)
    except RecipeError:
        chosen = None
    return DeployedPipeline(parameters, recipe_id, chosen, definition)


def _recipe_id(definition: dict) -> str:
    """The preparation step's --recipe; without one (a definition built before recipes could be
    chosen) the step renders its default, as steps.prepare does."""
    for step in all_steps(definition.get("Steps", [])):
        if step.get("Name") == PREPARE:
            arguments = step.get("Arguments", {}).get("AppSpecification", {}).get("ContainerArguments", [])
            if "--recipe" in arguments[:-1]:
                return arguments[arguments.index("--recipe") + 1]
    return DEFAULT_RECIPE


def _typed_value(parameter: DeclaredParameter, text: str) -> str:
    """The value as SageMaker wants it (a string), after checking it parses as the declared type."""
    wrong = UsageError(f"{parameter.name} is declared {parameter.type}, and {text!r} is not one")
    if parameter.type == "Integer":
        try:
            return str(int(text.strip()))
        except ValueError:
            raise wrong from None
    if parameter.type == "Float":
        try:
            number = float(text.strip())
        except ValueError:
            raise wrong from None
        if not math.isfinite(number):
            raise wrong
        return text.strip()
    if parameter.type == "Boolean":
        if text.strip().lower() not in _BOOLEANS:
            raise UsageError(f"{parameter.name} is Boolean; use true or false")
        return _BOOLEANS[text.strip().lower()]
    return text


def _value_problem(parameter: DeclaredParameter, value: str, deployed: DeployedPipeline) -> str | None:
    """Why the pipeline would refuse this value (typed as SageMaker wants it), or None."""
    if parameter.allowed is not None and value not in parameter.allowed:
        close = difflib.get_close_matches(value, parameter.allowed, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"{value!r} is not allowed: {parameter.name} is one of {', '.join(parameter.allowed)}{hint}"
    if parameter.name == "DataLocation":
        return _data_location_problem(value)
    rule = PARAMETER_RULES.get(parameter.name)
    if rule is not None:
        try:
            rule(value)
        except RuleError as error:
            return str(error)
    if parameter.name in RECIPE_PARAMETERS and deployed.recipe is not None:
        return _recipe_problem(parameter, value, deployed)
    return None


def _recipe_problem(parameter: DeclaredParameter, value: str, deployed: DeployedPipeline) -> str | None:
    """The preparation step's own check of a recipe value (steps.recipes.training_values), on this
    value alone: each recipe field's rule stands on its own. An RFT recipe's reward Lambda and data
    path are the pipeline's own arguments, not parameters, so a field is checked by its rule alone."""
    declared = RECIPE_PARAMETERS[parameter.name]
    typed = declared.value(value)
    try:
        if declared is EPOCHS:
            training_values(deployed.recipe, epochs=typed)
        else:
            field_value = None if declared.type == "String" and typed == REASONING_OFF else typed
            deployed.recipe.render({declared.field: field_value}, labels=FIELD_PARAMETERS)
    except RecipeError as error:
        return str(error)
    return None


def _data_location_problem(value: str) -> str | None:
    try:
        bucket, _ = split_s3_uri(value)
    except ValueError as error:
        return f"{error}: the preparation step reads FinQA from an S3 folder"
    problem = bucket_name_problem(bucket)
    return f"bucket {bucket!r} {problem}" if problem else None


# A pipeline upserted before approval became a person's act declares this parameter; an
# execution must not set it there either.
APPROVAL_PARAMETER = "ModelApprovalStatus"


def _override(name: str, value: str, deployed: DeployedPipeline, earlier: set[str]) -> str:
    declared = deployed.parameters
    if name == APPROVAL_PARAMETER:
        raise UsageError("an execution does not decide whether its model is approved: a person approves it in "
                         "the Model Registry, or the pipeline is upserted with --auto-approve (NOVA_AUTO_APPROVE=true) "
                         "to approve every model that passes the accuracy gate; upsert again to drop this parameter "
                         "from an older deployed pipeline")
    if name not in declared:
        close = difflib.get_close_matches(name, list(declared), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise UsageError(f"the pipeline declares no parameter {name!r}; {hint}"
                         f"declared: {', '.join(sorted(declared)) or 'none'}")
    if name in earlier:
        raise UsageError(f"{name} is given twice")
    typed = _typed_value(declared[name], value)
    problem = _value_problem(declared[name], typed, deployed)
    if problem:
        raise UsageError(problem)
    return typed


def parameter_overrides(texts: list[str], deployed: DeployedPipeline) -> list[dict[str, str]]:
    """The overrides as StartPipelineExecution takes them; UsageError listing every one refused."""
    overrides: dict[str, str] = {}
    refused: list[str] = []
    given: set[str] = set()
    for text in texts:
        name, sep, value = text.partition("=")
        name = name.strip()
        if not sep or not name:
            refused.append(f"--param {text}: not Name=Value (e.g. TrainingRecords=100)")
            continue
        try:
            overrides[name] = _override(name, value, deployed, given)
        except UsageError as error:
            refused.append(f"--param {name}={value}: {error}")
        given.add(name)
    if not refused and deployed.definition is not None:
        # With these values, every name, S3 URI, argument and model package metadata value still
        # fits what SageMaker allows: none can fail a step after the GPU jobs (RegisterModel's).
        values = {name: str(p.default) for name, p in deployed.parameters.items() if p.default is not None}
        refused += length_problems(deployed.definition, values | overrides)
    if refused:
        raise UsageError("\n".join(refused) + "\nnothing was started")
    return [{"Name": name, "Value": value} for name, value in overrides.items()]


def start_execution(sagemaker, pipeline_name: str, parameters: list[dict[str, str]],
                    display_name: str | None) -> str:
    request = {"PipelineName": pipeline_name, "PipelineParameters": parameters,
               "ClientRequestToken": uuid.uuid4().hex}
    if display_name:
        request["PipelineExecutionDisplayName"] = display_name
    return sagemaker.start_pipeline_execution(**request)["PipelineExecutionArn"]


def _step_line(step: dict) -> str:
    line = f"{step['StepName']:<32} {step.get('StepStatus', 'Unknown')}"
    if step.get("CacheHitResult", {}).get("SourcePipelineExecutionArn"):
        line += " (cached)"
    if step.get("FailureReason"):
        line += f": {step['FailureReason']}"
    return line


class StepBoard:
    """Shows one line per step. On a terminal the lines are redrawn in place; elsewhere
    (CI logs, files) only a step whose status changed gets a new, timestamped line."""

    def __init__(self, out: TextIO, interactive: bool):
        self.out = out
        self.interactive = interactive
        self.shown: dict[str, str] = {}
        self.lines_drawn = 0

    def update(self, steps: list[dict]) -> None:
        lines = {step["StepName"]: _step_line(step) for step in steps}
        if self.interactive:
            if lines != self.shown:
                # A line wider than the terminal would wrap and break the count of lines to redraw.
                width = shutil.get_terminal_size().columns - 1
                self.out.write("\x1b[F\x1b[2K" * self.lines_drawn)
                for line in lines.values():
                    self.out.write(line[:width] + "\n")
                self.lines_drawn = len(lines)
        else:
            stamp = datetime.now(UTC).strftime("%H:%M:%S")
            for name, line in lines.items():
                if self.shown.get(name) != line:
                    self.out.write(f"{stamp} {line}\n")
        self.shown = lines
        self.out.flush()


def _execution_steps(sagemaker, execution_arn: str) -> list[dict]:
    steps: list[dict] = []
    paginator = sagemaker.get_paginator("list_pipeline_execution_steps")
    for page in paginator.paginate(PipelineExecutionArn=execution_arn, SortOrder="Ascending"):
        steps.extend(page.get("PipelineExecutionSteps", []))
    return steps


def watch_execution(sagemaker, execution_arn: str, out: TextIO, interactive: bool,
                    sleep: Callable[[float], None] = time.sleep,
                    poll_seconds: float = POLL_SECONDS, timeout: float | None = None,
                    clock: Callable[[], float] = time.monotonic) -> tuple[str, str]:
    """Follow the execution until it finishes; returns its status and, if it did not
    succeed, the reason (the failing steps' reasons, else the execution's own). Raises
    WatchTimeout when `timeout` seconds pass first."""
    board = StepBoard(out, interactive)
    deadline = None if timeout is None else clock() + timeout
    while True:
        steps = _execution_steps(sagemaker, execution_arn)
        execution = sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
        board.update(steps)
        status = execution["PipelineExecutionStatus"]
        if status in _FINISHED:
            break
        if deadline is None:
            sleep(poll_seconds)
            continue
        left = deadline - clock()
        if left <= 0:
            raise WatchTimeout
        sleep(min(poll_seconds, left))
    if status == "Succeeded":
        return status, ""
    failed = [f"step {step['StepName']}: {step.get('FailureReason') or step['StepStatus']}"
              for step in steps if step.get("StepStatus") in ("Failed", "Stopped")]
    reason = "; ".join(failed) or execution.get("FailureReason") or f"execution {status}"
    return status, reason


def execution_arn_problem(execution_arn: str, region: str) -> str | None:
    """Why --watch cannot follow this ARN (not a pipeline execution ARN, by botocore's pattern for
    PipelineExecutionArn, or one of another region than the settings'), or None."""
    import botocore.session

    shape = botocore.session.get_session().get_service_model("sagemaker").shape_for("PipelineExecutionArn")
    if not re.fullmatch(shape.metadata["pattern"], execution_arn):
        return (f"--watch {execution_arn!r} is not a pipeline execution ARN "
                "(arn:aws:sagemaker:<region>:<account>:pipeline/<name>/execution/<id>, as `started` printed it); "
                "list them with `aws sagemaker list-pipeline-executions --pipeline-name <name>`")
    arn_region = execution_arn.split(":")[3]
    if arn_region != region:
        return (f"--watch {execution_arn!r} is an execution in {arn_region}, and --region (AWS_REGION) is {region}: "
                f"pass --region {arn_region}")
    return None


def _watch_failure(sagemaker, error: ClientError | BotoCoreError) -> str:
    """What went wrong with a call made while watching, in one line."""
    if not isinstance(error, ClientError):
        return str(error)
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = error_code(error)
    if not code or code.isdigit():
        # An AWS API answers every failure with an error code; a bare HTTP status with a web
        # page is what a stand-in such as moto_server gives for an operation it has not got.
        return (f"{sagemaker.meta.endpoint_url} has no {error.operation_name} (it answered HTTP {status} "
                "with an error page, not an AWS error)")
    return f"{error.operation_name} failed: {code}: {error.response.get('Error', {}).get('Message', '')}"


def _watch_again(execution_arn: str) -> str:
    return ("Watch it again with\n"
            f"  python -m scripts.start_execution --watch {execution_arn}\n"
            "or in SageMaker Studio (Pipelines), or stop it with\n"
            f"  aws sagemaker stop-pipeline-execution --pipeline-execution-arn {execution_arn}\n")


def _watch_and_report(sagemaker, execution_arn: str, out: TextIO, err: TextIO, interactive: bool,
                      sleep: Callable[[float], None], timeout: float | None = None,
                      clock: Callable[[], float] = time.monotonic, started: bool = True) -> int:
    """Watch until the execution ends. `started`: this run started it (else --watch of one given by ARN,
    of which nothing is known until it is read)."""
    try:
        status, reason = watch_execution(sagemaker, execution_arn, out, interactive, sleep,
                                         timeout=timeout, clock=clock)
    except KeyboardInterrupt:
        err.write("\nstopped watching; the execution goes on. " + _watch_again(execution_arn))
        return EXIT_INTERRUPTED
    except WatchTimeout:
        err.write(f"stopped watching after {timeout:g} s (--timeout); the execution goes on: {execution_arn}\n"
                  + _watch_again(execution_arn))
        return EXIT_NOT_WATCHED
    except (ClientError, BotoCoreError) as error:
        if not started:
            err.write(f"error: cannot watch {execution_arn}: {_watch_failure(sagemaker, error)}\n"
                      "Check the ARN (aws sagemaker list-pipeline-executions --pipeline-name <name>), the region "
                      "and the credentials' sagemaker:DescribePipelineExecution and "
                      "sagemaker:ListPipelineExecutionSteps permissions.\n")
            return EXIT_NOT_WATCHED
        err.write(f"error: cannot watch the execution: {_watch_failure(sagemaker, error)}\n"
                  f"The execution did start and goes on: {execution_arn}\n" + _watch_again(execution_arn))
        return EXIT_NOT_WATCHED
    if status == "Succeeded":
        out.write(f"execution succeeded: {execution_arn}\n")
        return 0
    err.write(f"execution {status}: {reason}\n  {execution_arn}\n")
    return EXIT_FAILED


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of seconds above 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scripts.start_execution", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--param", action="append", default=[], metavar="Name=Value",
                        help="override a pipeline parameter, repeatable (e.g. TrainingRecords=100)")
    parser.add_argument("--display-name", help="display name of the execution in Studio")
    parser.add_argument("--wait", action="store_true",
                        help="watch the steps until the execution ends; exit non-zero if it fails")
    parser.add_argument("--watch", metavar="EXECUTION_ARN",
                        help="watch an execution already started instead of starting one")
    parser.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                        help="with --wait or --watch: stop watching after this long (exit 3); "
                             "the execution goes on")
    add_settings_arguments(parser)
    return parser


def main(argv: list[str] | None = None, *, sagemaker=None, out: TextIO | None = None,
         err: TextIO | None = None, sleep: Callable[[float], None] = time.sleep,
         clock: Callable[[], float] = time.monotonic) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        return _run(build_parser().parse_args(argv), sagemaker, out, err, sleep, clock)
    except (ClientError, BotoCoreError) as error:
        err.write(f"error: {error}\n")
        return EXIT_FAILED


def _run(args: argparse.Namespace, sagemaker, out: TextIO, err: TextIO, sleep: Callable[[float], None],
         clock: Callable[[], float]) -> int:
    try:
        settings = Settings.resolve(args, required=("region",))
        if args.display_name and not _DISPLAY_NAME.match(args.display_name):
            raise UsageError(f"--display-name {args.display_name!r} must be 1-82 letters, digits or hyphens")
        if args.watch and (args.param or args.display_name):
            raise UsageError("--watch follows an execution already started: it takes no --param or --display-name")
        if args.timeout is not None and not (args.wait or args.watch):
            raise UsageError("--timeout limits watching: use it with --wait or --watch")
        problem = execution_arn_problem(args.watch, settings.region) if args.watch else None
        if problem:
            raise UsageError(problem)
        sagemaker = sagemaker or session_for(settings).client("sagemaker")
        if args.watch:
            return _watch_and_report(sagemaker, args.watch, out, err, out.isatty(), sleep, args.timeout, clock,
                                     started=False)
        deployed = deployed_pipeline(sagemaker, settings.pipeline_name)
        if deployed.recipe is None and args.param:
            err.write(f"warning: the deployed pipeline's recipe {deployed.recipe_id!r} is not in this checkout's "
                      "catalog: recipe values are left to its preparation step to check\n")
        overrides = parameter_overrides(args.param, deployed)
    except (UsageError, SettingsError) as error:
        err.write(f"error: {error}\n")
        return EXIT_USAGE
    execution_arn = start_execution(sagemaker, settings.pipeline_name, overrides, args.display_name)
    shown = ", ".join(f"{p['Name']}={p['Value']}" for p in overrides) or "pipeline defaults"
    out.write(f"started {execution_arn}\n  parameters: {shown}\n")
    if not args.wait:
        return 0
    return _watch_and_report(sagemaker, execution_arn, out, err, out.isatty(), sleep, args.timeout, clock)


if __name__ == "__main__":
    sys.exit(main())
