"""What the pipeline does differently for an open-weights base model (Llama, Qwen, GPT-OSS ...):
which models are open-weights, and how an approved one is served.

The models themselves, with the techniques, training types and regions AWS offers and the source
of each, are entries of the serverless model table (`steps/serverless_models.py`, HUB_MODELS),
beside Nova's: `--platform serverless --base-model <hub model name>` takes them, and refuses any
other with the list.

Serving, by architecture family and region, from Bedrock's user guide (read 2026-12-06 in stored
copies of the pages):
- "Import a customized model" (model-customization-import-model): Custom Model Import takes the
  Mistral, Mixtral, Flan, Llama (2, 3, 3.1, 3.2, 3.3, Mllama), GPTBigCode, Qwen2 / Qwen2.5 / Qwen2-VL /
  Qwen2.5-VL / Qwen3 (Qwen3ForCausalLM, Qwen3MoeForCausalLM) and GPT-OSS (20B and 120B, "only
  supported in the US East (N. Virginia) region") architectures, in us-east-1, us-east-2, us-west-2
  and eu-central-1; "Converse is also not supported for Qwen3 models".
- "Invoke your imported model" (invoke-imported-model): "Converse API is not supported for Qwen2.5,
  Qwen2-VL, Qwen2.5-VL, and GPT-OSS models"; models imported after 2025-11-11 take OpenAI's
  chat-completion body through InvokeModel.
So Llama models answer through Converse, Qwen and GPT-OSS models through InvokeModel with OpenAI's
chat-completion body, and a family Bedrock does not list (Gemma 4, Nemotron, the Qwen3.5 / 3.6
vision-language models), or a region where Bedrock does not import it (serverless customization
also runs in ap-northeast-1 and eu-west-1), is served on a SageMaker endpoint from its model package
(scripts/sagemaker_endpoint.py), as AWS's SDK deploys it. `--open-weights-serving` overrides the
choice: `sagemaker-endpoint` always, `bedrock` only where Bedrock can (refused otherwise).

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
"""Bedrock imports it; it answers InvokeModel with OpenAI's chat-completion body (no Converse)."""
SAGEMAKER_ENDPOINT = "sagemaker-endpoint"
"""A SageMaker endpoint from the model package (Bedrock cannot import it there, or the operator said so)."""

SERVING_CHOICES = ("auto", "bedrock", SAGEMAKER_ENDPOINT)
"""`--open-weights-serving`: auto (Bedrock where it can, else an endpoint), bedrock, sagemaker-endpoint."""

BEDROCK_IMPORT_REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-central-1")
BEDROCK_BY_FAMILY: dict[str, tuple[str, tuple[str, ...]]] = {
    "llama": (BEDROCK_CONVERSE, BEDROCK_IMPORT_REGIONS),
    "qwen2": (BEDROCK_INVOKE, BEDROCK_IMPORT_REGIONS),
    "qwen3": (BEDROCK_INVOKE, BEDROCK_IMPORT_REGIONS),
    "gpt-oss": (BEDROCK_INVOKE, ("us-east-1",)),
}
"""Family -> how an imported model answers, and the regions where Bedrock imports the architecture."""
BEDROCK_IMPORT_SOURCE = ("Bedrock user guide, 'Import a customized model' (model-customization-import-model) and "
                         "'Invoke your imported model' (invoke-imported-model), read 2026-12-06")


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


def bedrock_regions(model_id: str) -> tuple[str, ...]:
    """The regions where Bedrock imports a model fine-tuned from `model_id` (none: not its architecture)."""
    return BEDROCK_BY_FAMILY.get(hub_model(model_id).family, ("", ()))[1]


def deployment(model_id: str, region: str, serving: str = "auto") -> str:
    """How an approved model fine-tuned from `model_id` is served in `region`: one of the constants
    above. `serving` "bedrock" where Bedrock cannot import it is `deployment_problem`'s to refuse;
    here it falls back to the endpoint like "auto"."""
    if serving == SAGEMAKER_ENDPOINT or region not in bedrock_regions(model_id):
        return SAGEMAKER_ENDPOINT
    return BEDROCK_BY_FAMILY[hub_model(model_id).family][0]


TABLE_HEADER = ("Hub model (`--base-model`)", "Family", "SFT", "DPO", "RLVR", "Regions", "Deployed by", "Source")


def markdown_table() -> str:
    """The table of docs/open-weights.md (tests/test_open_weights_models.py keeps the page equal to it)."""
    lines = ["| " + " | ".join(TABLE_HEADER) + " |", "|" + "---|" * len(TABLE_HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows()]
    return "\n".join(lines) + "\n"


def deployment_problem(model_id: str, region: str, serving: str = "auto", model_units: int | None = None) -> str:
    """Why the approval hook could not serve a model fine-tuned from `model_id` in `region` as asked,
    or "" if it can. The one rule for `pipeline.upsert`'s warning and `scripts.import_to_bedrock`."""
    if serving not in SERVING_CHOICES:
        return f"--open-weights-serving {serving!r}: choose one of {', '.join(SERVING_CHOICES)}"
    regions = bedrock_regions(model_id)
    if serving == "bedrock" and region not in regions:
        family = hub_model(model_id).family
        where = (f"Bedrock imports {family} models in {', '.join(regions)} only" if regions
                 else f"Bedrock Custom Model Import does not take the {family} architecture")
        return (f"{model_id} in {region}: --open-weights-serving bedrock, but {where}: use --open-weights-serving "
                f"auto or sagemaker-endpoint ({BEDROCK_IMPORT_SOURCE})")
    if model_units:
        return (f"{model_id}: Provisioned Throughput (--provisioned-model-units) is for Nova models here; an "
                "open-weights model answers on demand by its imported model's ARN, or on its SageMaker endpoint: "
                "leave the setting out")
    return ""


def table_rows() -> list[list[str]]:
    """Models x techniques (training types) x regions, with sources, for docs/open-weights.md."""
    labels = {BEDROCK_CONVERSE: "Bedrock import", BEDROCK_INVOKE: "Bedrock import (InvokeModel)"}
    rows = []
    for model in open_weights_models():
        cells = [", ".join(kind for kind in ("lora", "full") if technique in model.techniques.get(kind, ())) or "-"
                 for technique in TECHNIQUES]
        by_way: dict[str, list[str]] = {}
        for region in model.regions:
            by_way.setdefault(deployment(model.model_id, region), []).append(region)
        served = "; ".join(f"{labels.get(way, 'SageMaker endpoint')}: {', '.join(regions)}"
                           for way, regions in by_way.items())
        source = "page; SDK tests" if "docstrings and tests" in model.source else "page"
        rows.append([f"`{model.model_id}`", model.family, *cells, ", ".join(model.regions), served, source])
    return rows
