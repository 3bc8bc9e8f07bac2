"""The SageMaker Public Hub models this pipeline customizes serverless, as data: what AWS offers.

One `HubModel` per hub model: the id AWS's SDK takes (`amazon.nova-2-lite-v1`), the hub content
name it stands for, its family, the techniques AWS offers for it per training type, the regions,
and where that was read. `offered(...)` is the one check every command makes: a combination of
model x technique x training type x region AWS does not offer is refused with the ones that exist,
before anything is built. Adding a hub model is adding an entry to `HUB_MODELS`.

How the Nova entries were decided (read 2026-12-06):
- Ids and hub content names: AWS's SDK, sagemaker-train 1.27.0,
  `sagemaker/train/common_utils/model_aliases.py` (MODEL_NAME_ALIASES).
- Techniques and training types: AWS's recipe catalog, aws/sagemaker-hyperpod-recipes @2631995
  (2026-06-23), `launcher/recipe_templatization/nova/nova_regional_parameters.json`: the training-job
  recipes whose `sm_jobs` entry carries `serverless_sku` (SFT LoRA and full for Nova Micro, Lite, Pro
  1.0 and Nova 2 Lite; DPO LoRA and full for Nova Micro, Lite and Pro 1.0; none for Nova 2 DPO,
  which AWS's Nova dataset validator also refuses: "not supported on Nova 2.0").
  Nova 2 Lite RLVR is not in the catalog's serverless list (its RFT recipes have no serverless_sku):
  it is taken from AWS's SDK, whose RLVRTrainer builds serverless RLVR jobs for Nova
  (`base_trainer.py`: Nova RLVR data goes as S3Prefix, not Converse; `evaluate/custom_scorer_evaluator.py`:
  `lambda_type` "rft" for Nova) and from AWS's Nova 2 guide, which offers RFT (LoRA and full) for
  Nova 2 Lite only. It is listed in docs/serverless.md as unverified on a real account.
- Regions: the catalog's `serverless_sku` names six (us-east-1, us-west-2, ap-southeast-2,
  ap-northeast-1, eu-central-1, eu-west-1); AWS's SDK refuses Nova outside us-east-1 and us-west-2
  before any call (`finetune_utils.py`, NOVA_REGIONS, `_validate_model_region_availability`). A
  region is kept only where both allow it: the SDK is what AWS ships to start these jobs.
- Recipes: for each technique and training type, the training-job recipe of AWS's catalog that
  carries `serverless_sku` (the p5/p4d one where a model has several): its fields, with their
  allowed values and defaults, are the job's hyperparameters (AWS's SDK reads them from the hub
  model's override file, which the dry run cannot read), and its method decides the data the
  preparation step writes. Nova 2 Lite RLVR takes AWS's RFT recipe for training jobs.
- AcceptEula: AWS's SDK sends the caller's `accept_eula` (default False) and requires True only for a
  hub model whose document says `GatedBucket` (`_validate_eula_for_gated_model`). `gated` records it.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

PUBLIC_HUB = "SageMakerPublicHub"
TECHNIQUES = ("sft", "dpo", "rlvr")
TRAINING_TYPES = ("lora", "full")
# What CreateTrainingJob's ServerlessJobConfig.CustomizationTechnique calls each technique (botocore).
API_TECHNIQUE = {"sft": "SFT", "dpo": "DPO", "rlvr": "RLVR"}

_RECIPE_CATALOG = ("aws/sagemaker-hyperpod-recipes @2631995 (2026-06-23), nova_regional_parameters.json, "
                   "sm_jobs.serverless_sku")
_SDK = "sagemaker-train 1.27.0: common_utils/model_aliases.py, common_utils/finetune_utils.py (NOVA_REGIONS)"
_NOVA_REGIONS = ("us-east-1", "us-west-2")


class ServerlessModelError(ValueError):
    """A model, technique, training type or region AWS does not offer serverless; says which exist."""


@dataclass(frozen=True)
class HubModel:
    model_id: str  # as AWS's SDK spells it (--base-model)
    hub_content_name: str  # HubContentName in SageMakerPublicHub
    family: str  # nova, llama, qwen, gpt-oss, ...
    techniques: Mapping[str, tuple[str, ...]]  # training type -> techniques offered
    regions: tuple[str, ...]
    source: str
    read: str  # date the source was read
    gated: bool = False  # the hub document's GatedBucket: AcceptEula must be true
    # (technique, training type) -> the catalog recipe whose fields are the job's hyperparameters
    recipes: Mapping[tuple[str, str], str] = field(default_factory=dict)
    hub_name: str = PUBLIC_HUB
    notes: str = ""

    @property
    def is_nova(self) -> bool:
        return self.family == "nova"

    def base_model_arn(self, region: str) -> str:
        """The hub content ARN without a version: SageMaker takes the latest version when the job starts.

        Version-less because a pinned version can only be learnt from DescribeHubContent (an AWS
        call the dry run does not make) and would freeze the definition on the version current at
        upsert time; AWS's SDK pins the version it looked up. docs/serverless.md says which to use when.
        """
        return f"arn:aws:sagemaker:{region}:aws:hub-content/{self.hub_name}/Model/{self.hub_content_name}"

    def offers(self, technique: str, training_type: str, region: str) -> bool:
        return technique in self.techniques.get(training_type, ()) and region in self.regions

    def recipe_id(self, technique: str, training_type: str) -> str | None:
        """The catalog recipe of this combination (steps.catalog), or None where the catalog has none."""
        return self.recipes.get((technique, training_type))


def _nova(model_id: str, hub_content_name: str, recipes: Mapping[tuple[str, str], str],
          source: str = f"{_SDK}; {_RECIPE_CATALOG}", notes: str = "") -> HubModel:
    techniques = {kind: tuple(t for t, k in recipes if k == kind) for kind in TRAINING_TYPES}
    return HubModel(model_id=model_id, hub_content_name=hub_content_name, family="nova", techniques=techniques,
                    regions=_NOVA_REGIONS, source=source, read="2026-12-06", notes=notes, recipes=recipes)


HUB_MODELS: tuple[HubModel, ...] = (
    _nova("amazon.nova-micro-v1", "nova-textgeneration-micro", {
        ("sft", "lora"): "nova_micro_1_0_p5_p4d_gpu_lora_sft", ("sft", "full"): "nova_micro_1_0_p5_p4d_gpu_sft",
        ("dpo", "lora"): "nova_micro_1_0_p5_p4d_gpu_lora_dpo", ("dpo", "full"): "nova_micro_1_0_p5_p4d_gpu_dpo"}),
    _nova("amazon.nova-lite-v1", "nova-textgeneration-lite", {
        ("sft", "lora"): "nova_lite_1_0_p5_p4d_gpu_lora_sft", ("sft", "full"): "nova_lite_1_0_p5_p4d_gpu_sft",
        ("dpo", "lora"): "nova_lite_1_0_p5_p4d_gpu_lora_dpo", ("dpo", "full"): "nova_lite_1_0_p5_p4d_gpu_dpo"}),
    _nova("amazon.nova-pro-v1", "nova-textgeneration-pro", {
        ("sft", "lora"): "nova_pro_1_0_p5_p4d_gpu_lora_sft", ("sft", "full"): "nova_pro_1_0_p5_gpu_sft",
        ("dpo", "lora"): "nova_pro_1_0_p5_p4d_gpu_lora_dpo", ("dpo", "full"): "nova_pro_1_0_p5_gpu_dpo"}),
    _nova("amazon.nova-2-lite-v1", "nova-textgeneration-lite-v2", {
        ("sft", "lora"): "nova_lite_2_0_p5_gpu_lora_sft", ("sft", "full"): "nova_lite_2_0_p5_gpu_sft",
        ("rlvr", "lora"): "nova_lite_v2_smtj_p5_p5en_gpu_lora_rft",
        ("rlvr", "full"): "nova_lite_v2_smtj_p5_p5en_gpu_rft"},
          source=f"{_SDK}; {_RECIPE_CATALOG} (SFT); sagemaker-train RLVRTrainer, AWS's SDK integration tests "
                 "(aws/sagemaker-python-sdk sagemaker-train/tests/integ/train/nova_capacity.py: \"Nova serverless "
                 "fine-tuning jobs (e.g. nova-textgeneration-lite-v2 SFT/RLVR)\") (RLVR)",
          notes="RLVR: not in the recipe catalog's serverless list; unverified on a real account"),
)

# Open-weights models (issue 18; steps/open_weights_models.py says how they are deployed and used).
# Read 2026-12-06:
# - _OPEN_WEIGHT_PAGE: AWS's SageMaker developer guide, "Open weight model customization" >
#   "Supported models and customization types" (model-customize-open-weight): hub model id x
#   SFT / DPO / RLVR / RLAIF x LoRA / FFT. Every row below is that table's, read in a stored copy of
#   the page's markdown (all 31 rows; RLAIF is not used here). An earlier, shorter copy showed RLVR
#   full rank for Qwen3 1.7B; this one leaves it blank, and the blank is kept (a job AWS may refuse
#   is not built).
# - Regions: the page states none; AWS's SDK refuses an open-weights model outside OPEN_WEIGHTS_REGIONS
#   (sagemaker-train 1.27.0 finetune_utils.py, `_validate_model_region_availability`).
# - model_id: the hub content name itself; the SDK's alias map has only Nova, and passes any other
#   name through unchanged (model_aliases.normalize_model_name).
# - family: the architecture, which decides how an approved model is served (steps/open_weights_models.py):
#   DeepSeek's R1 distills are Qwen2 or Llama models; "qwen3.5" are the Qwen3.5 / 3.6 vision-language models.
# - gated: Meta's Llama licence must be accepted (SageMaker JumpStart serves Meta's models only with
#   accept_eula); for the other rows AWS's SDK decides from the hub document's GatedBucket, which a
#   dry run cannot read: they are taken as not gated, and a gated one fails at the job's start.
_OPEN_WEIGHT_PAGE = ("AWS SageMaker developer guide, 'Open weight model customization' > 'Supported models "
                     "and customization types' (model-customize-open-weight)")
_OPEN_WEIGHT_REGIONS_SOURCE = "regions: sagemaker-train 1.27.0 finetune_utils.py OPEN_WEIGHTS_REGIONS"
_OPEN_WEIGHT_SDK = "named in sagemaker-train 1.27.0's docstrings and tests"
OPEN_WEIGHTS_REGIONS = ("us-east-1", "us-west-2", "ap-northeast-1", "eu-west-1")
_NAMED_BY_SDK = ("meta-textgeneration-llama-3-2-1b-instruct", "huggingface-reasoning-qwen3-1-7b",
                 "openai-reasoning-gpt-oss-20b")
_CELL = {"lf": ("lora", "full"), "l": ("lora",), "": ()}

# The page's rows: hub model id, family, then SFT, DPO, RLVR as "lf" (LoRA and full rank), "l" (LoRA), "" (none).
_OPEN_WEIGHT_ROWS = (
    ("huggingface-vlm-qwen3-6-27b", "qwen3.5", "lf", "lf", "lf"),
    ("huggingface-vlm-qwen3-5-27b", "qwen3.5", "lf", "lf", "lf"),
    ("huggingface-vlm-qwen3-5-9b", "qwen3.5", "lf", "lf", "lf"),
    ("huggingface-vlm-qwen3-5-4b", "qwen3.5", "lf", "lf", "lf"),
    ("huggingface-reasoning-qwen3-32b", "qwen3", "lf", "lf", "lf"),
    ("huggingface-reasoning-qwen3-14b", "qwen3", "lf", "lf", "lf"),
    ("huggingface-reasoning-qwen3-8b", "qwen3", "lf", "lf", "lf"),
    ("huggingface-reasoning-qwen3-4b", "qwen3", "lf", "lf", "lf"),
    ("huggingface-reasoning-qwen3-1-7b", "qwen3", "lf", "lf", "l"),
    ("huggingface-reasoning-qwen3-06b", "qwen3", "lf", "lf", "lf"),
    ("huggingface-llm-qwen2-5-72b-instruct", "qwen2", "lf", "l", "l"),
    ("huggingface-llm-qwen2-5-32b-instruct", "qwen2", "lf", "lf", "lf"),
    ("huggingface-llm-qwen2-5-14b-instruct", "qwen2", "lf", "lf", "lf"),
    ("huggingface-llm-qwen2-5-7b-instruct", "qwen2", "lf", "lf", "lf"),
    ("deepseek-llm-r1-distill-qwen-32b", "qwen2", "lf", "lf", "lf"),
    ("deepseek-llm-r1-distill-qwen-14b", "qwen2", "lf", "lf", "lf"),
    ("deepseek-llm-r1-distill-qwen-7b", "qwen2", "lf", "lf", "l"),
    ("deepseek-llm-r1-distill-qwen-1-5b", "qwen2", "lf", "lf", "l"),
    ("deepseek-llm-r1-distill-llama-70b", "llama", "lf", "l", "l"),
    ("deepseek-llm-r1-distill-llama-8b", "llama", "lf", "lf", "lf"),
    ("huggingface-vlm-gemma-4-31b-it", "gemma4", "lf", "lf", "lf"),
    ("huggingface-vlm-gemma-4-26b-a4b-it", "gemma4", "lf", "lf", "lf"),
    ("huggingface-vlm-gemma-4-e4b-it", "gemma4", "lf", "lf", "lf"),
    ("meta-textgeneration-llama-3-3-70b-instruct", "llama", "lf", "lf", "lf"),
    ("meta-textgeneration-llama-3-2-3b-instruct", "llama", "l", "l", "l"),
    ("meta-textgeneration-llama-3-2-1b-instruct", "llama", "l", "l", "l"),
    ("meta-textgeneration-llama-3-1-8b-instruct", "llama", "l", "l", "l"),
    ("huggingface-llm-nvidia-nemotron-3-super-120b-a12b-bf16", "nemotron", "l", "", "l"),
    ("huggingface-reasoning-nvidia-nemotron-3-nano-30b-a3b-bf16", "nemotron", "lf", "", "lf"),
    ("openai-reasoning-gpt-oss-120b", "gpt-oss", "l", "l", "l"),
    ("openai-reasoning-gpt-oss-20b", "gpt-oss", "lf", "lf", "lf"),
)


def _open_weights(hub_content_name: str, family: str, sft: str, dpo: str, rlvr: str) -> HubModel:
    cells = dict(zip(TECHNIQUES, (sft, dpo, rlvr)))
    techniques = {kind: tuple(t for t in TECHNIQUES if kind in _CELL[cells[t]]) for kind in TRAINING_TYPES}
    source = _OPEN_WEIGHT_PAGE + (f"; {_OPEN_WEIGHT_SDK}" if hub_content_name in _NAMED_BY_SDK else "")
    return HubModel(model_id=hub_content_name, hub_content_name=hub_content_name, family=family,
                    techniques=techniques, regions=OPEN_WEIGHTS_REGIONS,
                    source=f"{source}; {_OPEN_WEIGHT_REGIONS_SOURCE}",
                    read="2026-12-06", gated=hub_content_name.startswith("meta-textgeneration-"))


HUB_MODELS += tuple(_open_weights(*row) for row in _OPEN_WEIGHT_ROWS)

DEFAULT_BASE_MODEL = "amazon.nova-2-lite-v1"
DEFAULT_TECHNIQUE = "sft"
DEFAULT_TRAINING_TYPE = "lora"


def hub_model(model_id: str) -> HubModel:
    """The entry for an SDK model id (or its hub content name)."""
    for model in HUB_MODELS:
        if model_id in (model.model_id, model.hub_content_name):
            return model
    raise ServerlessModelError(
        f"--base-model {model_id!r} is not a hub model this pipeline knows; choose one of "
        f"{', '.join(m.model_id for m in HUB_MODELS)} (steps/serverless_models.py, HUB_MODELS)")


@dataclass(frozen=True)
class Combination:
    model: HubModel
    technique: str
    training_type: str
    region: str = field(default="")


def combinations(region: str | None = None) -> Iterator[Combination]:
    """Every model x technique x training type AWS offers (in `region`, or in any region)."""
    for model in HUB_MODELS:
        for training_type in TRAINING_TYPES:
            for technique in model.techniques.get(training_type, ()):
                for model_region in model.regions:
                    if region in (None, model_region):
                        yield Combination(model, technique, training_type, model_region)


def offered(model_id: str, technique: str, training_type: str, region: str) -> HubModel:
    """The hub model when AWS offers this combination serverless; otherwise an error listing what exists."""
    if technique not in TECHNIQUES:
        raise ServerlessModelError(f"--technique {technique!r}: choose one of {', '.join(TECHNIQUES)}")
    if training_type not in TRAINING_TYPES:
        raise ServerlessModelError(f"--training-type {training_type!r}: choose one of {', '.join(TRAINING_TYPES)}")
    model = hub_model(model_id)
    if model.offers(technique, training_type, region):
        return model
    here = sorted({(c.technique, c.training_type) for c in combinations(region) if c.model is model})
    elsewhere = sorted({c.region for c in combinations() if c.model is model
                        and (c.technique, c.training_type) == (technique, training_type)})
    problem = f"AWS does not offer serverless {technique.upper()} {training_type} of {model.model_id} in {region}"
    offers = [f"in {region} it offers: " + (", ".join(f"--technique {t} --training-type {k}" for t, k in here)
                                             if here else "nothing (regions: " + ", ".join(model.regions) + ")")]
    if elsewhere:
        offers.append(f"{technique.upper()} {training_type} of it runs in: {', '.join(elsewhere)}")
    others = sorted({c.model.model_id for c in combinations(region)
                     if (c.technique, c.training_type) == (technique, training_type) and c.model is not model})
    if others:
        offers.append(f"{technique.upper()} {training_type} in {region} is offered for: {', '.join(others)}")
    raise ServerlessModelError(f"{problem}; {'; '.join(offers)} (source: {model.source}, read {model.read})")
