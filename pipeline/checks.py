"""Checks of a built pipeline definition, before anything is uploaded or upserted.

- every `Get` names a parameter, a step (and a property file of that step) or an execution
  variable that exists;
- every parameter is used somewhere (an unused one is a form field that does nothing);
- each job step's arguments validate against botocore's model of the API call the step
  makes, with each pipeline expression replaced by a value of the type the API expects there.
"""
from __future__ import annotations

import copy
import json
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


def argument_problems(definition: dict[str, Any]) -> list[str]:
    """Each job step's arguments checked against botocore's SageMaker model."""
    model = botocore.session.get_session().get_service_model("sagemaker")
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


def definition_problems(definition_json: str) -> list[str]:
    definition = json.loads(definition_json)
    return reference_problems(definition) + argument_problems(definition)
