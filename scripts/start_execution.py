"""Start an execution of the pipeline, optionally watching its steps until it ends.

    python -m scripts.start_execution [--param Name=Value ...] [--display-name NAME] [--wait]
    python -m scripts.start_execution --watch EXECUTION_ARN

Overrides are checked against the parameters the deployed pipeline declares (read from
DescribePipeline's definition, the one source of truth), so a misspelt name or a value of
the wrong type fails before anything starts. `--wait` prints each step's status as it
changes and exits non-zero with the failing step's reason; Ctrl-C stops watching only.
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
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.settings import Settings, SettingsError, add_settings_arguments
from scripts.aws import session_for

POLL_SECONDS = 30
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_DISPLAY_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}$")
_FINISHED = {"Succeeded", "Failed", "Stopped", "CompletedWithFailures"}
_BOOLEANS = {"true": "true", "false": "false"}


class UsageError(ValueError):
    """The command line asks for something the pipeline cannot take; nothing was started."""


@dataclass(frozen=True)
class DeclaredParameter:
    name: str
    type: str
    default: object


def declared_parameters(sagemaker, pipeline_name: str) -> dict[str, DeclaredParameter]:
    try:
        described = sagemaker.describe_pipeline(PipelineName=pipeline_name)
    except ClientError as error:
        raise UsageError(
            f"pipeline {pipeline_name!r} cannot be read ({error}); deploy it with "
            "`python -m pipeline.upsert` or pass --pipeline-name / NOVA_PIPELINE_NAME") from error
    definition = json.loads(described["PipelineDefinition"])
    return {
        item["Name"]: DeclaredParameter(item["Name"], item.get("Type", "String"), item.get("DefaultValue"))
        for item in definition.get("Parameters", [])
    }


def _typed_value(parameter: DeclaredParameter, text: str) -> str:
    """The value as SageMaker wants it (a string), after checking it parses as the declared type."""
    wrong = UsageError(f"--param {parameter.name}={text!r}: {parameter.name} is declared "
                       f"{parameter.type}, and {text!r} is not one")
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
            raise UsageError(f"--param {parameter.name}={text!r}: {parameter.name} is Boolean; "
                             "use true or false")
        return _BOOLEANS[text.strip().lower()]
    return text


def parameter_overrides(texts: list[str], declared: dict[str, DeclaredParameter]) -> list[dict[str, str]]:
    overrides: dict[str, str] = {}
    for text in texts:
        name, sep, value = text.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--param {text!r} is not Name=Value")
        if name not in declared:
            close = difflib.get_close_matches(name, list(declared), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise UsageError(f"--param {name}: the pipeline declares no parameter {name!r}; {hint}"
                             f"declared: {', '.join(sorted(declared)) or 'none'}")
        if name in overrides:
            raise UsageError(f"--param {name} is given twice")
        overrides[name] = _typed_value(declared[name], value)
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
            stamp = datetime.now(timezone.utc).strftime("%H:%M:%S")
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
                    poll_seconds: float = POLL_SECONDS) -> tuple[str, str]:
    """Follow the execution until it finishes; returns its status and, if it did not
    succeed, the reason (the failing steps' reasons, else the execution's own)."""
    board = StepBoard(out, interactive)
    while True:
        steps = _execution_steps(sagemaker, execution_arn)
        execution = sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
        board.update(steps)
        status = execution["PipelineExecutionStatus"]
        if status in _FINISHED:
            break
        sleep(poll_seconds)
    if status == "Succeeded":
        return status, ""
    failed = [f"step {step['StepName']}: {step.get('FailureReason') or step['StepStatus']}"
              for step in steps if step.get("StepStatus") in ("Failed", "Stopped")]
    reason = "; ".join(failed) or execution.get("FailureReason") or f"execution {status}"
    return status, reason


def _watch_and_report(sagemaker, execution_arn: str, out: TextIO, err: TextIO,
                      interactive: bool, sleep: Callable[[float], None]) -> int:
    try:
        status, reason = watch_execution(sagemaker, execution_arn, out, interactive, sleep)
    except KeyboardInterrupt:
        err.write(
            "\nstopped watching; the execution goes on. Watch it again with\n"
            f"  python -m scripts.start_execution --watch {execution_arn}\n"
            "or in SageMaker Studio (Pipelines), or stop it with\n"
            f"  aws sagemaker stop-pipeline-execution --pipeline-execution-arn {execution_arn}\n")
        return EXIT_INTERRUPTED
    if status == "Succeeded":
        out.write(f"execution succeeded: {execution_arn}\n")
        return 0
    err.write(f"execution {status}: {reason}\n  {execution_arn}\n")
    return EXIT_FAILED


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
    add_settings_arguments(parser)
    return parser


def main(argv: list[str] | None = None, *, sagemaker=None, out: TextIO | None = None,
         err: TextIO | None = None, sleep: Callable[[float], None] = time.sleep) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        return _run(build_parser().parse_args(argv), sagemaker, out, err, sleep)
    except (ClientError, BotoCoreError) as error:
        err.write(f"error: {error}\n")
        return EXIT_FAILED


def _run(args: argparse.Namespace, sagemaker, out: TextIO, err: TextIO, sleep: Callable[[float], None]) -> int:
    try:
        settings = Settings.resolve(args, required=("region",))
        if args.display_name and not _DISPLAY_NAME.match(args.display_name):
            raise UsageError(f"--display-name {args.display_name!r} must be 1-82 letters, digits or hyphens")
        if args.watch and (args.param or args.display_name):
            raise UsageError("--watch follows an execution already started: it takes no --param or --display-name")
        sagemaker = sagemaker or session_for(settings).client("sagemaker")
        if args.watch:
            return _watch_and_report(sagemaker, args.watch, out, err, out.isatty(), sleep)
        declared = declared_parameters(sagemaker, settings.pipeline_name)
        overrides = parameter_overrides(args.param, declared)
    except (UsageError, SettingsError) as error:
        err.write(f"error: {error}\n")
        return EXIT_USAGE
    execution_arn = start_execution(sagemaker, settings.pipeline_name, overrides, args.display_name)
    shown = ", ".join(f"{p['Name']}={p['Value']}" for p in overrides) or "pipeline defaults"
    out.write(f"started {execution_arn}\n  parameters: {shown}\n")
    if not args.wait:
        return 0
    return _watch_and_report(sagemaker, execution_arn, out, err, out.isatty(), sleep)


if __name__ == "__main__":
    sys.exit(main())
