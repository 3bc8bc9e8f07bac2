"""What the pipeline does differently for an open-weights base model (Llama, Qwen, GPT-OSS ...):
which models are open-weights, and how an approved one is deployed.

The models themselves, with the techniques, training types and regions AWS offers and the source
of each, are entries of the serverless model table (`steps/serverless_models.py`, HUB_MODELS),
beside Nova's: `--platform serverless --base-model <hub model name>` takes them, and refuses any
other with the list.

Deployment, by architecture family, from Bedrock's user guide "Code samples for custom model
import" (https://docs.aws.amazon.com/bedrock/latest/userguide/custom-model-import-code-samples.html,
read 2026-12-06): Custom Model Import takes the Mistral, Llama, Qwen, GPTBigCode, Flan and Mixtral
architectures (Converse works for them), and GPT-OSS through InvokeModel only, with OpenAI's
chat-completion body. The page says "Qwen" without versions: Qwen2 (Qwen2.5) and Qwen3 are both
taken to be in it; re-check on the page before relying on Qwen3. A family not listed is deployed
to a SageMaker endpoint from its model package instead.

Chat format: AWS's data pages for serverless customization of open-weights models
(`customizing-models-sft`, `-dpo`, `-rft`) take role / content messages and the training container
applies the model's chat template; none asks for a prompt pre-rendered in it, so every family gets
the same messages (steps/finqa/open_weights.py).

Standard library only.
"""
from __future__ import annotations

from steps.serverless_models import HUB_MODELS, TECHNIQUES, HubModel, hub_model

BEDROCK_CONVERSE = "bedrock"
"""Bedrock Custom Model Import serves the architecture; Converse works."""
BEDROCK_INVOKE = "bedrock-invoke"
"""Bedrock imports it; it answers InvokeModel with OpenAI's chat-completion body only."""
SAGEMAKER_ENDPOINT = "sagemaker-endpoint"
"""Bedrock cannot import the architecture: a SageMaker endpoint from the model package."""

DEPLOYMENT_BY_FAMILY = {
    "llama": BEDROCK_CONVERSE,
    "qwen2": BEDROCK_CONVERSE,
    "qwen3": BEDROCK_CONVERSE,
    "gpt-oss": BEDROCK_INVOKE,
}
BEDROCK_IMPORT_SOURCE = ("Bedrock user guide, 'Code samples for custom model import' "
                         "(custom-model-import-code-samples), read 2026-12-06")


PREPARATION_RECIPES = {"sft": "nova_lite_1_0_g5_g6_12x_gpu_lora_sft",
                       "dpo": "nova_lite_1_0_p5_p4d_gpu_lora_dpo",
                       "rlvr": "nova_lite_v2_smtj_p5_p5en_gpu_lora_rft"}
"""The catalog recipe of the technique whose `max_length` the preparation step checks an
open-weights model's records against (by a token estimate meant to be above any BPE tokenizer's
count), and whose method shapes the graph (DPO: the model answers the training questions first).
Only that: no Nova recipe is rendered for an open-weights job, and none of its fields reaches it."""


def pipeline_is_open_weights(settings) -> bool:
    """Whether a pipeline's settings customize an open-weights model (serverless, open base model)."""
    return bool(settings.serverless) and is_open_weights(settings.base_model)


def is_open_weights(model_id: str) -> bool:
    """Whether `model_id` is an open-weights entry of the serverless model table."""
    return any(model.model_id == model_id and not model.is_nova for model in HUB_MODELS)


def open_weights_models() -> list[HubModel]:
    return [model for model in HUB_MODELS if not model.is_nova]


def deployment(model_id: str) -> str:
    """How an approved model fine-tuned from `model_id` is served: one of the constants above."""
    return DEPLOYMENT_BY_FAMILY.get(hub_model(model_id).family, SAGEMAKER_ENDPOINT)


TABLE_HEADER = ("Hub model (`--base-model`)", "Family", "SFT", "DPO", "RLVR", "Regions", "Deployed by", "Source")


def markdown_table() -> str:
    """The table of docs/open-weights.md (tests/test_open_weights_models.py keeps the page equal to it)."""
    lines = ["| " + " | ".join(TABLE_HEADER) + " |", "|" + "---|" * len(TABLE_HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows()]
    return "\n".join(lines) + "\n"


def deployment_problem(model_id: str, model_units: int | None = None) -> str:
    """Why the approval hook could not serve a model fine-tuned from `model_id`, or "" if it can.
    The one rule for both `pipeline.upsert`'s warning and `scripts.import_to_bedrock`."""
    if deployment(model_id) == SAGEMAKER_ENDPOINT:
        return (f"{model_id}: Bedrock Custom Model Import does not take its architecture ({BEDROCK_IMPORT_SOURCE}); "
                "deploy the model package to a SageMaker endpoint instead (not done by this project)")
    if model_units:
        return (f"{model_id}: Provisioned Throughput (--provisioned-model-units) is for Nova models here; an "
                "imported open-weights model answers on demand by its ARN: leave the setting out")
    return ""


def table_rows() -> list[list[str]]:
    """Models x techniques (training types) x regions, with sources, for docs/open-weights.md."""
    labels = {BEDROCK_CONVERSE: "Bedrock import", BEDROCK_INVOKE: "Bedrock import (InvokeModel)",
              SAGEMAKER_ENDPOINT: "SageMaker endpoint"}
    rows = []
    for model in open_weights_models():
        cells = [", ".join(kind for kind in ("lora", "full") if technique in model.techniques.get(kind, ())) or "-"
                 for technique in TECHNIQUES]
        source = "facts file: re-read the page" if "NOVA_SAGEMAKER_FACTS" in model.source else "page"
        if "docstrings and tests" in model.source:
            source += "; SDK tests"
        rows.append([f"`{model.model_id}`", model.family, *cells, ", ".join(model.regions),
                     labels[deployment(model.model_id)], source])
    return rows
