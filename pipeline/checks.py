"""Checks of a built pipeline definition, before anything is uploaded or upserted.

- every `Get` names a parameter, a step (and a property file of that step) or an execution
  variable that exists;
- every parameter is used somewhere (an unused one is a form field that does nothing);
- each job step's arguments validate against botocore's model of the API call the step
  makes, with each pipeline expression replaced by a value of the type the API expects there.
"""
from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator
from typing import Any

import botocore.session
from botocore.model import Shape
from botocore.validate import ParamValidator

STEP_OPERATIONS = {
    "Processing": "CreateProcessingJob",
    "Training": "CreateTrainingJob",
    "RegisterModel": "CreateModelPackage",
}
# Names SageMaker Pipelines fills in at execution time, so the definition leaves them out.
_NAMES_SET_BY_PIPELINES = {
    "CreateProcessingJob": {"ProcessingJobName": "placeholder-processing-job"},
    "CreateTrainingJob": {"TrainingJobName": "placeholder-training-job"},
    "CreateModelPackage": {},
}
_EXECUTION_VARIABLES = {"StartDateTime", "CurrentDateTime", "PipelineName", "PipelineArn", "PipelineExecutionId",
                        "PipelineExecutionArn", "TrainingJobName", "ProcessingJobName"}
_EXPRESSION_KEYS = {"Get", "Std:Join", "Std:JsonGet"}


def all_steps(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for step in steps:
        yield step
        if step.get("Type") == "Condition":
            arguments = step.get("Arguments", {})
            yield from all_steps(arguments.get("IfSteps", []) + arguments.get("ElseSteps", []))


def _gets(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Get" and isinstance(value, str):
                yield value
            else:
                yield from _gets(value)
    elif isinstance(node, list):
        for item in node:
            yield from _gets(item)


def reference_problems(definition: dict[str, Any]) -> list[str]:
    """Dangling `Get`s and unused parameters."""
    parameters = {parameter["Name"] for parameter in definition.get("Parameters", [])}
    steps = {step["Name"]: step for step in all_steps(definition.get("Steps", []))}
    problems = []
    used_parameters = set()
    for step in steps.values():
        for reference in _gets(step):
            kind, _, rest = reference.partition(".")
            if kind == "Parameters":
                used_parameters.add(rest)
                if rest not in parameters:
                    problems.append(f"step {step['Name']}: {reference} names no parameter")
            elif kind == "Steps":
                target, _, path = rest.partition(".")
                if target not in steps:
                    problems.append(f"step {step['Name']}: {reference} names no step")
                elif path.startswith("PropertyFiles."):
                    declared = {f["PropertyFileName"] for f in steps[target].get("PropertyFiles", [])}
                    if path.split(".", 1)[1] not in declared:
                        problems.append(f"step {step['Name']}: {reference} names no property file of {target}")
            elif kind == "Execution":
                if rest not in _EXECUTION_VARIABLES:
                    problems.append(f"step {step['Name']}: {reference} is no execution variable")
            else:
                problems.append(f"step {step['Name']}: {reference} refers to nothing a pipeline knows")
    for unused in sorted(parameters - used_parameters):
        problems.append(f"parameter {unused} is used by no step")
    return problems


def _is_expression(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _EXPRESSION_KEYS


def _placeholder(shape: Shape) -> Any:
    return {"string": "pipeline-expression", "integer": 1, "long": 1, "float": 1.0, "double": 1.0,
            "boolean": True, "timestamp": "2020-01-01T00:00:00Z"}.get(shape.type_name, "pipeline-expression")


def _resolve(value: Any, shape: Shape) -> Any:
    """The value with each pipeline expression replaced by a placeholder of the shape's type."""
    if _is_expression(value) and shape.type_name != "structure":
        return _placeholder(shape)
    if shape.type_name == "structure" and isinstance(value, dict):
        return {key: _resolve(item, shape.members[key]) if key in shape.members else item
                for key, item in value.items()}
    if shape.type_name == "list" and isinstance(value, list):
        return [_resolve(item, shape.member) for item in value]
    if shape.type_name == "map" and isinstance(value, dict):
        return {key: _resolve(item, shape.value) for key, item in value.items()}
    return value


@functools.lru_cache(maxsize=1)
def _sagemaker_model():
    """botocore's SageMaker model, parsed once (a second JSON parse of it costs about a second)."""
    return botocore.session.get_session().get_service_model("sagemaker")


def argument_problems(definition: dict[str, Any]) -> list[str]:
    """Each job step's arguments checked against botocore's SageMaker model."""
    model = _sagemaker_model()
    validator = ParamValidator()
    problems = []
    for step in all_steps(definition.get("Steps", [])):
        operation = STEP_OPERATIONS.get(step.get("Type"))
        if operation is None:
            continue
        input_shape = model.operation_model(operation).input_shape
        arguments = {**_NAMES_SET_BY_PIPELINES[operation], **copy.deepcopy(step.get("Arguments", {}))}
        report = validator.validate(_resolve(arguments, input_shape), input_shape)
        if report.has_errors():
            problems.append(f"step {step['Name']} ({operation}): {report.generate_report()}")
    return problems


_PROCESSING_OUTPUT = re.compile(r"^Steps\.([^.]+)\.ProcessingOutputConfig\.Outputs\['([^']+)'\]\.S3Output\.S3Uri$")


def _shortest(value: Any, parameters: dict[str, str], outputs: dict[tuple[str, str], Any]) -> int:
    """The fewest characters a definition value can have once its expressions are evaluated: its
    literal text, the given parameter values and a processing output's S3 URI as its step
    configures it (anything else, another step property, an execution variable or a parameter
    not given, counts as empty)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict) and "Std:Join" in value:
        parts = value["Std:Join"]["Values"]
        return (sum(_shortest(part, parameters, outputs) for part in parts)
                + len(value["Std:Join"]["On"]) * max(0, len(parts) - 1))
    reference = str(value.get("Get", "")) if isinstance(value, dict) else ""
    if reference.startswith("Parameters."):
        return len(str(parameters.get(reference.split(".", 1)[1], "")))
    output = _PROCESSING_OUTPUT.match(reference)
    if output and (output.group(1), output.group(2)) in outputs:
        return _shortest(outputs[output.group(1), output.group(2)], parameters, outputs)
    return 0


def _configured_outputs(definition: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """Each processing output's S3Uri as configured, which its property equals (a cache hit's too:
    the cache key holds the arguments the URI is made of)."""
    return {(step["Name"], output["OutputName"]): output["S3Output"]["S3Uri"]
            for step in all_steps(definition.get("Steps", [])) if step.get("Type") == "Processing"
            for output in step.get("Arguments", {}).get("ProcessingOutputConfig", {}).get("Outputs", [])}


def _members(shape: Shape, cache: dict[str, Any]) -> Any:
    # botocore builds a structure's member shapes anew on every `.members`: once per shape here.
    if shape.name not in cache:
        cache[shape.name] = shape.members
    return cache[shape.name]


def _too_long(value: Any, shape: Shape, path: str, parameters: dict[str, str],
              outputs: dict[tuple[str, str], Any], cache: dict[str, Any]) -> Iterator[tuple[str, int, int, Any]]:
    if shape.type_name == "string" and "max" in shape.metadata and (isinstance(value, str) or _is_expression(value)):
        shortest = _shortest(value, parameters, outputs)
        if shortest > shape.metadata["max"]:
            yield path, shortest, shape.metadata["max"], value
    elif shape.type_name == "structure" and isinstance(value, dict) and not _is_expression(value):
        members = _members(shape, cache)
        for key, item in value.items():
            if key in members:
                yield from _too_long(item, members[key], f"{path}.{key}", parameters, outputs, cache)
    elif shape.type_name == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            yield from _too_long(item, shape.member, f"{path}[{index}]", parameters, outputs, cache)
    elif shape.type_name == "map" and isinstance(value, dict) and not _is_expression(value):
        for key, item in value.items():
            yield from _too_long(item, shape.value, f"{path}.{key}", parameters, outputs, cache)


def length_problems(definition: dict[str, Any], parameters: dict[str, str] | None = None) -> list[str]:
    """Values longer than botocore's model of the API allows: a name, tag, S3 URI, container
    argument or model package metadata value that would fail the step sending it (RegisterModel's,
    after every GPU job). Botocore checks maximum lengths only on the service's side.

    Without `parameters` (pipeline.upsert, when the pipeline is built), only each value's fixed
    text counts: a value too long for any execution is refused, naming the settings. With the
    execution's parameter values (scripts/start_execution.py, before it starts anything), they
    count too, and the message names the parameters in the value."""
    model = _sagemaker_model()
    outputs = _configured_outputs(definition)
    cache: dict[str, Any] = {}
    problems = []
    for step in all_steps(definition.get("Steps", [])):
        operation = STEP_OPERATIONS.get(step.get("Type"))
        if operation is None:
            continue
        shape = model.operation_model(operation).input_shape
        for path, shortest, limit, value in _too_long(step.get("Arguments", {}), shape, operation, parameters or {},
                                                      outputs, cache):
            output_values = [outputs[m.groups()] for m in map(_PROCESSING_OUTPUT.match, _gets(value))
                             if m and m.groups() in outputs]
            named = sorted({get.split(".", 1)[1] for get in _gets([value, output_values])
                            if get.startswith("Parameters.")})
            fix = (f"shorten the parameter {' or '.join(named)}, or the pipeline's " if parameters is not None and named
                   else "shorten ")
            problems.append(f"step {step['Name']}: {path} is at least {shortest} characters, over the {limit} "
                            f"SageMaker allows (botocore's model): {fix}--prefix (S3 keys), --bucket or the "
                            "names (--pipeline-name, --model-package-group)")
    return problems


def definition_problems(definition_json: str) -> list[str]:
    definition = json.loads(definition_json)
    return reference_problems(definition) + argument_problems(definition) + length_problems(definition)
