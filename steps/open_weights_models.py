"""The open-weights models the pipeline customizes serverless, as data: one entry per SageMaker
Public Hub model, with the techniques and training types AWS offers for it, the regions, where
Bedrock can serve the result, and where each fact comes from.

Sources (read 2026-12-06):
- PAGE: AWS's SageMaker developer guide, "Open weight model customization", section "Supported
  models and customization types"
  (https://docs.aws.amazon.com/sagemaker/latest/dg/model-customize-open-weight.html): a table of
  hub model id x SFT / DPO / RLVR / RLAIF x LoRA / FFT. The rows of Qwen3 1.7B to 32B were read
  in full there (every box ticked). The stored copy this project could read stops after those
  rows; the entries marked FACTS take their row from the project's facts file
  (docs: NOVA_SAGEMAKER_FACTS.md, "Open-weights models"), which summarised the same page: re-read
  the page for them before relying on a combination.
- SDK: the installed sagemaker-train 1.27.0. `common_utils/finetune_utils.py`
  (`OPEN_WEIGHTS_REGIONS`: us-east-1, us-west-2, ap-northeast-1, eu-west-1, checked by
  `_validate_model_region_availability` before any open-weights trainer builds a job); its
  docstrings and tests name `meta-textgeneration-llama-3-2-1b-instruct`,
  `huggingface-reasoning-qwen3-1-7b` and `openai-reasoning-gpt-oss-20b`.
  `BaseTrainer.list_supported_models()` asks the hub for the rest: a model missing here may
  still be offered; add its row from the page.
- BEDROCK: Bedrock's user guide, "Code samples for custom model import"
  (https://docs.aws.amazon.com/bedrock/latest/userguide/custom-model-import-code-samples.html):
  Custom Model Import takes the Mistral, Llama, Qwen, GPTBigCode, Flan and Mixtral
  architectures, and GPT-OSS through InvokeModel only (OpenAI chat-completion schema, no
  Converse). A model whose architecture is not there is deployed to a SageMaker endpoint.

Chat format: AWS's data pages for serverless customization of open-weights models
(`customizing-models-sft`, `-dpo`, `-rft`) take role / content messages and apply the model's
chat template in the training container; none asks for a prompt pre-rendered in the model's
template, so every family gets the same messages (steps/finqa/open_weights.py).

Standard library only: the preparation step reads it inside the processing container.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass

TECHNIQUES = ("sft", "dpo", "rlvr")
TRAINING_TYPES = ("lora", "full")

PAGE = ("AWS SageMaker developer guide, 'Open weight model customization' > 'Supported models and "
        "customization types' (model-customize-open-weight), read 2026-12-06")
FACTS = (PAGE.replace(", read 2026-12-06", "") + ", as summarised in NOVA_SAGEMAKER_FACTS.md; the row was "
         "not in the copy read 2026-12-06: re-read it")
SDK_REGIONS = "sagemaker-train 1.27.0 common_utils/finetune_utils.py OPEN_WEIGHTS_REGIONS"
SDK_TESTS = "named in sagemaker-train 1.27.0's docstrings and tests"
READ_ON = "2026-12-06"

REGIONS = ("us-east-1", "us-west-2", "ap-northeast-1", "eu-west-1")
"""SDK_REGIONS: the SDK refuses an open-weights model anywhere else."""

ALL = {technique: TRAINING_TYPES for technique in TECHNIQUES}
LORA_ONLY = {technique: ("lora",) for technique in TECHNIQUES}

BEDROCK_CONVERSE = "converse"
"""Bedrock Custom Model Import serves the architecture, Converse included."""
BEDROCK_INVOKE = "invoke-openai"
"""Bedrock imports it, served through InvokeModel with OpenAI's chat-completion body only."""


class OpenWeightsModelError(ValueError):
    """A model or combination AWS does not offer; the message lists what it does offer."""


@dataclass(frozen=True)
class OpenWeightsModel:
    hub_name: str
    """The SageMaker Public Hub model name (`HubContentName`), as `--base-model` takes it."""
    title: str
    family: str
    """Architecture family: llama, qwen2, qwen3, gpt-oss."""
    techniques: dict[str, tuple[str, ...]]
    """Technique -> the training types AWS offers for it."""
    bedrock: str | None
    """BEDROCK_CONVERSE, BEDROCK_INVOKE, or None: deploy to a SageMaker endpoint."""
    source: str
    regions: tuple[str, ...] = REGIONS

    def hub_arn(self, region: str, partition: str = "aws") -> str:
        """The version-less hub ARN (`ServerlessJobConfig.BaseModelArn`): SageMaker takes the
        latest version, as AWS's trainers do when the hub returns no pinned one."""
        return f"arn:{partition}:sagemaker:{region}:aws:hub-content/SageMakerPublicHub/Model/{self.hub_name}"


def _model(hub_name: str, title: str, family: str, techniques: dict, bedrock: str | None, source: str):
    return OpenWeightsModel(hub_name, title, family, dict(techniques), bedrock, source)


MODELS: dict[str, OpenWeightsModel] = {model.hub_name: model for model in (
    _model("meta-textgeneration-llama-3-2-1b-instruct", "Llama 3.2 1B Instruct", "llama", LORA_ONLY,
           BEDROCK_CONVERSE, f"{FACTS}; {SDK_TESTS}"),
    _model("huggingface-reasoning-qwen3-06b", "Qwen3 0.6B", "qwen3", ALL, BEDROCK_CONVERSE, FACTS),
    _model("huggingface-reasoning-qwen3-1-7b", "Qwen3 1.7B", "qwen3", ALL, BEDROCK_CONVERSE, f"{PAGE}; {SDK_TESTS}"),
    _model("huggingface-reasoning-qwen3-4b", "Qwen3 4B", "qwen3", ALL, BEDROCK_CONVERSE, PAGE),
    _model("huggingface-reasoning-qwen3-8b", "Qwen3 8B", "qwen3", ALL, BEDROCK_CONVERSE, PAGE),
    _model("huggingface-reasoning-qwen3-14b", "Qwen3 14B", "qwen3", ALL, BEDROCK_CONVERSE, PAGE),
    _model("huggingface-reasoning-qwen3-32b", "Qwen3 32B", "qwen3", ALL, BEDROCK_CONVERSE, PAGE),
    _model("huggingface-llm-qwen2-5-7b-instruct", "Qwen2.5 7B Instruct", "qwen2", ALL, BEDROCK_CONVERSE, FACTS),
    _model("huggingface-llm-qwen2-5-14b-instruct", "Qwen2.5 14B Instruct", "qwen2", ALL, BEDROCK_CONVERSE, FACTS),
    _model("huggingface-llm-qwen2-5-32b-instruct", "Qwen2.5 32B Instruct", "qwen2", ALL, BEDROCK_CONVERSE, FACTS),
    _model("openai-reasoning-gpt-oss-20b", "GPT-OSS 20B", "gpt-oss", ALL, BEDROCK_INVOKE, f"{FACTS}; {SDK_TESTS}"),
)}


def open_weights_model(hub_name: str) -> OpenWeightsModel:
    """The table's entry for a hub model name; OpenWeightsModelError with the list otherwise."""
    try:
        return MODELS[hub_name]
    except KeyError:
        close = difflib.get_close_matches(hub_name, MODELS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise OpenWeightsModelError(
            f"--base-model {hub_name!r} is not an open-weights model this pipeline knows{hint}; "
            f"it takes: {', '.join(MODELS)} (steps/open_weights_models.py; add a model from AWS's "
            "'Open weight model customization' page)") from None


def is_open_weights(base_model: str) -> bool:
    return base_model in MODELS


def check_combination(hub_name: str, technique: str, training_type: str, region: str) -> OpenWeightsModel:
    """The model, once model x technique x training type x region is one AWS offers."""
    model = open_weights_model(hub_name)
    offered = model.techniques.get(technique, ())
    if training_type not in offered:
        combinations = ", ".join(f"{t} {kind}" for t, kinds in model.techniques.items() for kind in kinds)
        raise OpenWeightsModelError(
            f"--base-model {hub_name} --technique {technique} --training-type {training_type}: AWS does not "
            f"offer it for this model; it offers {combinations} (source: {model.source})")
    if region not in model.regions:
        raise OpenWeightsModelError(
            f"--region {region}: serverless customization of {hub_name} runs in {', '.join(model.regions)} "
            f"(source: {SDK_REGIONS})")
    return model


def table_rows() -> list[list[str]]:
    """The table of models x techniques x regions, for docs/open-weights.md."""
    rows = []
    for model in MODELS.values():
        cells = [", ".join(model.techniques.get(technique, ())) or "-" for technique in TECHNIQUES]
        deploy = {BEDROCK_CONVERSE: "Bedrock import", BEDROCK_INVOKE: "Bedrock import (InvokeModel)",
                  None: "SageMaker endpoint"}[model.bedrock]
        rows.append([f"`{model.hub_name}`", model.title, *cells, ", ".join(model.regions), deploy,
                     "page" if model.source.startswith(PAGE) else "facts file (re-read the page)"])
    return rows
