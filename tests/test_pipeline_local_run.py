"""The processing steps of the committed definition, run locally as their containers would run them.

Each step's ContainerEntrypoint and ContainerArguments are taken from pipeline/definition.json,
with parameter values substituted and `/opt/ml/processing` mapped to a temporary folder; its
inputs are filled from the outputs the definition wires them to (or, for the Nova jobs,
which need a GPU in an AWS service account, from outputs the test makes in their documented
format). So the chain prepare -> training output -> checkpoint -> evaluate runs on real
FinQA records through the same wiring SageMaker follows, and every PropertyFile JSON path
the definition reads is looked up in a file a step really wrote.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.artifacts import code_archive_bytes
from pipeline.checks import all_steps
from tests.conftest import PROJECT_ROOT
from tests.nova_output import jsonl, nova_line

# Every test here starts a process or a server, or reads a fixture that does.
pytestmark = pytest.mark.integration

DEFINITION = json.loads((PROJECT_ROOT / "pipeline" / "definition.json").read_text())
PROCESSING = "/opt/ml/processing"
CHECKPOINT = "s3://customer-escrow-111122223333-smtj-a1b2c3/nova-finqa-sft/step_12"
# Values a user might type in Studio's form, other than the defaults, to see them arrive.
PARAMETERS = {"TrainingRecords": "40", "EvaluationRecords": "30", "Epochs": 1, "LearningRate": 2e-05,
              "LoraAlpha": 64, "MaxLength": 8192, "GlobalBatchSize": 32}
_OUTPUT_GET = re.compile(r"^Steps\.(\w+)\.ProcessingOutputConfig\.Outputs\['(\w+)'\]\.S3Output\.S3Uri$")


STEPS = {step["Name"]: step for step in all_steps(DEFINITION["Steps"])}


def _parameter_values() -> dict[str, Any]:
    values = {p["Name"]: p["DefaultValue"] for p in DEFINITION["Parameters"]}
    values.update(PARAMETERS)
    return values


def _text(value: Any, parameters: dict[str, Any]) -> str:
    """A container argument as SageMaker renders it: parameters substituted, joins joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Get" in value and value["Get"].startswith("Parameters."):
        return str(parameters[value["Get"].split(".", 1)[1]])
    if isinstance(value, dict) and "Std:Join" in value:
        join = value["Std:Join"]
        return join["On"].join(_text(item, parameters) for item in join["Values"])
    raise AssertionError(f"a processing container argument this test cannot render: {value!r}")


class LocalPipeline:
    """Runs processing steps from the definition; keeps every output folder by step and name."""

    def __init__(self, root: Path, finqa: Path):
        self.root = root
        self.finqa = finqa
        self.parameters = _parameter_values()
        self.outputs: dict[tuple[str, str], Path] = {}
        self.job_outputs: dict[str, Path] = {}
        self.code_archive = code_archive_bytes()

    def local(self, path: str, step: str) -> Path:
        return Path(path.replace(PROCESSING, str(self.root / step / "processing")))

    def source(self, uri: Any) -> Path:
        """The local stand-in for an S3 location of the definition."""
        if isinstance(uri, str) and "/code/" in uri:
            digest = uri.split("/code/")[1].split("/")[0]
            assert digest == hashlib.sha256(self.code_archive).hexdigest(), "the definition runs other code"
            folder = self.root / "s3-code"
            folder.mkdir(exist_ok=True)
            (folder / "steps.tar.gz").write_bytes(self.code_archive)
            return folder
        if uri == {"Get": "Parameters.DataLocation"}:
            return self.finqa
        if isinstance(uri, dict) and "Get" in uri:
            match = _OUTPUT_GET.match(uri["Get"])
            assert match, f"an input wired to something this test does not know: {uri}"
            return self.outputs[(match.group(1), match.group(2))]
        if isinstance(uri, dict) and "Std:Join" in uri:
            values = uri["Std:Join"]["Values"]
            if len(values) == 2 and isinstance(values[1], str):
                # A file in a step's output: <output>/<file name>
                return self.source(values[0]) / values[1]
            # A job's own output folder: <S3OutputPath>/<TrainingJobName>/output
            gets = {v["Get"].split(".")[1] for v in values if isinstance(v, dict)}
            assert len(gets) == 1 and values[-1] == "output", uri
            return self.job_outputs[gets.pop()]
        raise AssertionError(f"an input this test cannot provide: {uri!r}")

    def run(self, name: str) -> subprocess.CompletedProcess:
        arguments = STEPS[name]["Arguments"]
        for processing_input in arguments["ProcessingInputs"]:
            source = self.source(processing_input["S3Input"]["S3Uri"])
            target = self.local(processing_input["S3Input"]["LocalPath"], name)
            shutil.copytree(source, target, dirs_exist_ok=True)
        app = arguments["AppSpecification"]
        # Arguments and the paths inside the entry script are mapped alike.
        command = [_text(part, self.parameters).replace(PROCESSING, str(self.root / name / "processing"))
                   for part in app["ContainerEntrypoint"] + app["ContainerArguments"]]
        # `python3` in the container is this interpreter here; no PYTHONPATH leaks in from pytest.
        env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(self.root)}
        result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=self.root)
        for output in arguments["ProcessingOutputConfig"]["Outputs"]:
            self.outputs[(name, output["OutputName"])] = self.local(output["S3Output"]["LocalPath"], name)
        return result

    def property_file(self, reference: str) -> Path:
        """The file a `Steps.<step>.PropertyFiles.<name>` reference reads."""
        _, step_name, _, file_name = reference.split(".")
        declared = next(f for f in STEPS[step_name]["PropertyFiles"] if f["PropertyFileName"] == file_name)
        return self.outputs[(step_name, declared["OutputName"])] / declared["FilePath"]


def _json_gets(node: Any):
    if isinstance(node, dict):
        if "Std:JsonGet" in node:
            yield node["Std:JsonGet"]["PropertyFile"]["Get"], node["Std:JsonGet"]["Path"]
        for value in node.values():
            yield from _json_gets(value)
    elif isinstance(node, list):
        for item in node:
            yield from _json_gets(item)


def _lookup(document: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        assert isinstance(document, dict) and key in document, f"{dotted}: no {key!r}"
        document = document[key]
    return document


def _nova_job_output(folder: Path, members: dict[str, bytes]) -> Path:
    """A Nova job's output folder as SageMaker leaves it: output.tar.gz beside an empty model.tar.gz."""
    folder.mkdir(parents=True)
    for archive_name, content in (("output.tar.gz", members), ("model.tar.gz", {})):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for name, data in content.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        (folder / archive_name).write_bytes(buffer.getvalue())
    return folder


def _generations(gen_qa: Path, answer) -> bytes:
    """inference_output.jsonl as the Nova evaluation job writes it, answers chosen by the test."""
    records = [json.loads(line) for line in gen_qa.read_text().splitlines()]
    return jsonl(nova_line(record, answer(index, record)) for index, record in enumerate(records)).encode()


@pytest.fixture(scope="module")
def chain(tmp_path_factory, shared_finqa):
    local = LocalPipeline(tmp_path_factory.mktemp("pipeline"), shared_finqa)
    prepared = local.run("PrepareFinQAData")
    assert prepared.returncode == 0, prepared.stderr
    local.job_outputs["FineTune"] = _nova_job_output(
        local.root / "jobs" / "training", {"manifest.json": json.dumps({"checkpoint_s3_bucket": CHECKPOINT}).encode()})
    checkpoint = local.run("FindCheckpoint")
    assert checkpoint.returncode == 0, checkpoint.stderr
    return local


def test_prepare_writes_what_the_training_job_reads(chain):
    train = STEPS["FineTune"]["Arguments"]
    channels = {c["ChannelName"]: chain.source(c["DataSource"]["S3DataSource"]["S3Uri"])
                for c in train["InputDataConfig"]}
    assert len(channels["train"].read_text().splitlines()) == 40
    assert channels["validation"].read_text().strip()
    recipe = yaml.safe_load((channels["recipe"] / "recipe.yaml").read_text())
    assert train["HyperParameters"]["sagemaker_recipe_local_path"] == "/opt/ml/input/data/recipe/recipe.yaml"
    config = recipe["training_config"]
    assert config["trainer"]["max_epochs"] == 1 and config["model"]["optim"]["lr"] == 2e-05
    assert config["model"]["peft"]["lora_tuning"]["alpha"] == 64 and config["global_batch_size"] == 32


def test_checkpoint_step_writes_what_the_evaluation_job_reads(chain):
    job = STEPS["GenerateFineTunedAnswers"]["Arguments"]
    channels = {c["ChannelName"]: chain.source(c["DataSource"]["S3DataSource"]["S3Uri"])
                for c in job["InputDataConfig"]}
    recipe = yaml.safe_load((channels["recipe"] / "recipe.yaml").read_text())
    assert recipe["run"]["model_name_or_path"] == CHECKPOINT
    assert recipe["evaluation"]["task"] == "gen_qa"
    assert len((channels["train"] / "gen_qa.jsonl").read_text().splitlines()) == 30
    reference, path = next(_json_gets(job["HyperParameters"]))
    assert json.loads(chain.property_file(reference).read_text())[path] == CHECKPOINT


def test_a_training_output_without_checkpoint_fails_the_step(tmp_path, shared_finqa, chain):
    local = LocalPipeline(tmp_path, shared_finqa)
    local.job_outputs["FineTune"] = _nova_job_output(tmp_path / "jobs", {"manifest.json": b"{}"})
    result = local.run("FindCheckpoint")
    assert result.returncode == 1 and "checkpoint_s3_bucket" in result.stderr


def test_score_reads_both_generations_and_writes_what_the_gate_reads(chain, tmp_path):
    gen_qa = chain.outputs[("PrepareFinQAData", "eval")] / "gen_qa.jsonl"
    # The fine-tuned model answers every question as the gold program does; the base model a third.
    chain.job_outputs["GenerateFineTunedAnswers"] = _nova_job_output(
        tmp_path / "tuned", {"inference_output.jsonl": _generations(gen_qa, lambda i, r: r["response"]),
                             "eval-result/results_2026-11-23.json": b"{}"})
    chain.job_outputs["GenerateBaseModelAnswers"] = _nova_job_output(
        tmp_path / "base", {"inference_output.jsonl": _generations(
            gen_qa, lambda i, r: r["response"] if i % 3 == 0 else "Program: add(1, 1)\nAnswer: 2"),
            "eval-result/results_2026-11-23.json": b"{}"})
    scored = chain.run("ScoreAnswers")
    assert scored.returncode == 0, scored.stderr
    for reference, path in _json_gets(DEFINITION):
        document = json.loads(chain.property_file(reference).read_text())
        _lookup(document, path)
    evaluation = json.loads(chain.property_file("Steps.ScoreAnswers.PropertyFiles.Evaluation").read_text())
    accuracy = _lookup(evaluation, "metrics.accuracy.value")
    baseline_path = STEPS["CheckAccuracy"]["Arguments"]["Conditions"][1]["RightValue"]["Std:JsonGet"]["Path"]
    baseline = _lookup(evaluation, baseline_path)
    assert accuracy > baseline
    assert accuracy >= _parameter_values()["AccuracyThreshold"]
