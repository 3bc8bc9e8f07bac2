"""Serve an approved open-weights model package on a SageMaker endpoint, the way AWS's SDK deploys it.

The approval hook's way for an open-weights model Bedrock cannot take (steps/open_weights_models.py
decides: an architecture Custom Model Import does not list, or a region without it), and for one the
operator sends there (`--open-weights-serving sagemaker-endpoint`). `scripts.import_to_bedrock` runs
it, with the same claim, hand-over, smoke test and metadata as its Bedrock paths.

What is sent is what sagemaker-serve's `ModelBuilder(model=<the model package>).build()` and
`.deploy()` send for a fine-tuned (model customization) package, read in the installed SDK
(`sagemaker/serve/model_builder.py`: the model-customization branch of `_build_single_modelbuilder`,
`_fetch_and_cache_recipe_config`, `_resolve_compute_requirements_from_config`,
`_resolve_lora_adapter_s3_uri`, `_deploy_model_customization`); tests/test_sagemaker_endpoint.py
compares our requests with the ones that SDK makes for the same package:
- the hosting configuration comes from the base model's hub document (DescribeHubContent of the
  package's `BaseModel`): its recipe's `HostingConfigs` (else the document's own), the `Default`
  profile (else the first), giving the serving image (`EcrAddress`), its `Environment`, the
  instance type and the inference component's CPU and accelerator counts (capped by, or read
  from, EC2's DescribeInstanceTypes, as the SDK does; memory 1024 MiB, the SDK's floor);
- LoRA (the package's recipe name says `lora` and it is a checkpoint): the model is the base model
  (the hub's `HostingArtifactUri`, with Meta's licence accepted where the hub names one,
  `HostingEulaUri`), placed as one inference component, and the adapter
  (`<package data>/model/checkpoints/hf/`) as a second one on top of it
  (`BaseInferenceComponentName`);
- full rank: the model is the package's weights (`checkpoints/hf_merged/` when the package says
  it is not a checkpoint), one inference component;
- the endpoint config names the execution role and the variant; the endpoint takes its name.

Names come from the package version (one endpoint per version), and each resource is looked up
before it is created, so a second run creates nothing. An endpoint bills by the instance-hour
until it is deleted: the log says so, with the commands that delete it.

The smoke test asks the served model one FinQA test question through InvokeEndpoint, in OpenAI's
chat-completion body (`messages`, so that the model's chat template is applied), which the hub's
LMI / vLLM serving images take (AWS's deployment notebook for customized models sends `messages`;
its integration test sends `{"inputs", "parameters"}`, the raw-prompt form); the answer is read from
a chat completion, or from the `generated_text` / `generation` / `outputs` shapes that test accepts.
"""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scripts.aws import found

LOG = logging.getLogger("scripts.sagemaker_endpoint")

PUBLIC_HUB = "SageMakerPublicHub"
NAME_LIMIT = 63
BASE_COMPONENT_SUFFIX = "-inference-component"
ADAPTER_COMPONENT_SUFFIX = "-adapter"
MIN_MEMORY_MB = 1024
"""The inference component's memory floor AWS's SDK requests (hub figures can exceed what an
inference component may ask for)."""
SOURCE_TAG_KEY = "sagemaker.amazonaws.com/model-source"
"""The tag AWS's SDK puts on the model it builds: the model package ARN (sagemaker-serve model_reuse)."""
BASE_TAG_KEY = "Base"
"""The tag AWS's SDK puts on a LoRA base component: the base model's recipe name."""


class EndpointProblem(RuntimeError):
    """The package cannot be served on an endpoint as it is; the message says why and what to do."""


CALLS = {"CreateModel": ("create_model", "describe_model", "ModelName"),
         "CreateEndpointConfig": ("create_endpoint_config", "describe_endpoint_config", "EndpointConfigName"),
         "CreateEndpoint": ("create_endpoint", "describe_endpoint", "EndpointName"),
         "CreateInferenceComponent": ("create_inference_component", "describe_inference_component",
                                      "InferenceComponentName")}
"""Each create call: the client's method, the one that describes what it creates, and the name's key."""
MODEL, ENDPOINT, BASE, ADAPTER = "model", "endpoint", "base", "adapter"
"""The stages the endpoint is built in, each waited for before the next: the model and its endpoint
config, the endpoint, the first inference component, the LoRA adapter's."""


@dataclass(frozen=True)
class EndpointPlan:
    """Everything the endpoint needs, decided from the package and the hub before any create call."""
    name: str
    role_arn: str
    instance_type: str
    lora: bool
    container: dict[str, Any]
    compute: dict[str, int]
    recipe_name: str
    adapter_uri: str = ""
    tags: list[dict[str, str]] = field(default_factory=list)

    @property
    def base_component(self) -> str:
        return self.name + BASE_COMPONENT_SUFFIX

    @property
    def adapter_component(self) -> str:
        return self.name + ADAPTER_COMPONENT_SUFFIX

    @property
    def serving_component(self) -> str:
        """The component InvokeEndpoint names: the adapter for LoRA, else the one component."""
        return self.adapter_component if self.lora else self.base_component

    def requests(self) -> list[tuple[str, dict[str, Any]]]:
        """The create calls, in order, with their API parameters (botocore's names)."""
        return [(operation, request) for _, operation, request in self.steps()]

    def steps(self) -> list[tuple[str, str, dict[str, Any]]]:
        """The create calls, in order, each with its stage (MODEL, ENDPOINT, BASE, ADAPTER)."""
        model = {"ModelName": self.name, "ExecutionRoleArn": self.role_arn, "Containers": [self.container]}
        if self.tags:
            model["Tags"] = self.tags
        calls: list[tuple[str, str, dict[str, Any]]] = [
            (MODEL, "CreateModel", model),
            (MODEL, "CreateEndpointConfig", {
                "EndpointConfigName": self.name, "ExecutionRoleArn": self.role_arn, "EnableNetworkIsolation": False,
                "ProductionVariants": [{"VariantName": self.name, "InstanceType": self.instance_type,
                                        "InitialInstanceCount": 1}]}),
            (ENDPOINT, "CreateEndpoint", {"EndpointName": self.name, "EndpointConfigName": self.name,
                                          **({"Tags": self.tags} if self.tags else {})}),
            (BASE, "CreateInferenceComponent", {
                "InferenceComponentName": self.base_component, "EndpointName": self.name, "VariantName": self.name,
                "Specification": {"ModelName": self.name, "ComputeResourceRequirements": dict(self.compute)},
                "RuntimeConfig": {"CopyCount": 1},
                **({"Tags": [{"Key": BASE_TAG_KEY, "Value": self.recipe_name}]} if self.lora else {})}),
        ]
        if self.lora:
            calls.append((ADAPTER, "CreateInferenceComponent", {
                "InferenceComponentName": self.adapter_component, "EndpointName": self.name,
                "Specification": {"BaseInferenceComponentName": self.base_component,
                                  "Container": {"ArtifactUrl": self.adapter_uri}}}))
        return calls


def endpoint_name(package: dict) -> str:
    """`<group>-v<version>-ep`, cut so that its inference components' names stay within 63 characters."""
    suffix = f"-v{package['ModelPackageVersion']}-ep"
    base = re.sub(r"[^0-9a-zA-Z]+", "-", package["ModelPackageGroupName"]).strip("-")
    room = NAME_LIMIT - len(BASE_COMPONENT_SUFFIX) - len(suffix)
    return base[:room].rstrip("-") + suffix


def _container(package: dict) -> dict:
    containers = (package.get("InferenceSpecification") or {}).get("Containers") or []
    if not containers:
        raise EndpointProblem(f"{package.get('ModelPackageArn')}: the model package has no inference container "
                              "(InferenceSpecification.Containers) to serve")
    return containers[0]


def base_model_of(package: dict) -> dict:
    """The package's `BaseModel` (HubContentName, HubContentVersion, RecipeName), which SageMaker
    writes on the package a customization job registers."""
    base = _container(package).get("BaseModel") or {}
    if not base.get("HubContentName"):
        raise EndpointProblem(
            f"{package.get('ModelPackageArn')}: the model package names no base model (InferenceSpecification."
            "Containers[0].BaseModel.HubContentName), so its serving image cannot be looked up in the hub; "
            "serve a package that a serverless customization job registered")
    return base


def model_data_uri(package: dict) -> str:
    uri = ((_container(package).get("ModelDataSource") or {}).get("S3DataSource") or {}).get("S3Uri", "")
    if not uri.startswith("s3://"):
        raise EndpointProblem(f"{package.get('ModelPackageArn')}: the model package has no S3 model data "
                              f"(ModelDataSource.S3DataSource.S3Uri; found {uri!r})")
    return uri


def is_lora(package: dict) -> bool:
    """As AWS's SDK decides it (`_fetch_peft` for a model package): a checkpoint whose recipe says LoRA."""
    container = _container(package)
    if container.get("IsCheckpoint") is False:
        return False
    return "lora" in str((container.get("BaseModel") or {}).get("RecipeName", "")).lower()


def hosting_configs(document: dict, recipe_name: str) -> list[dict]:
    """The recipe's HostingConfigs, else the document's own (AWS's `_extract_hosting_configs_from_hub`)."""
    for entry in document.get("RecipeCollection") or []:
        if entry.get("Name") == recipe_name:
            if entry.get("HostingConfigs"):
                return list(entry["HostingConfigs"])
            break
    return list(document.get("HostingConfigs") or [])


def _instance_of(config: dict) -> str:
    return config.get("InstanceType") or config.get("DefaultInstanceType") or ""


def _offered(config: dict) -> set[str]:
    return {t for t in [_instance_of(config), *(config.get("SupportedInstanceTypes") or [])] if t}


def select_hosting(configs: list[dict], instance_type: str, model: str) -> dict:
    """The configuration whose image and figures serve `instance_type`, or the `Default` one
    (else the first) when none is asked for. Unlike AWS's SDK, which warns and keeps the Default
    configuration's image for an instance type no configuration publishes, that is refused here:
    an image and figures benchmarked for another instance is not what a hook should deploy unseen."""
    if not configs:
        raise EndpointProblem(f"{model}: the hub document publishes no hosting configuration for this recipe "
                              "(RecipeCollection[].HostingConfigs or HostingConfigs): AWS does not offer it on "
                              "a SageMaker endpoint")
    if instance_type:
        for config in configs:
            if instance_type in _offered(config):
                return config
        offered = sorted(set().union(*(_offered(c) for c in configs)))
        raise EndpointProblem(f"--endpoint-instance-type {instance_type}: {model}'s hub document publishes hosting "
                              f"configurations for {', '.join(offered)} only; choose one of them, or leave the "
                              "setting out for the Default one")
    return next((c for c in configs if c.get("Profile") == "Default"), configs[0])


def compute_requirements(config: dict, instance: dict | None) -> dict[str, int]:
    """The inference component's ComputeResourceRequirements, as AWS's SDK resolves them from a hosting
    configuration and EC2's description of the instance type (`instance`: DescribeInstanceTypes's
    entry): CPUs as published, capped by the instance's; accelerators as published, else the
    instance's GPUs, none on a CPU instance; memory the SDK's floor."""
    published = config.get("ComputeResourceRequirements") or {}
    cpus = int(published.get("NumberOfCpuCoresRequired", 1))
    accelerators = published.get("NumberOfAcceleratorDevicesRequired")
    vcpus = ((instance or {}).get("VCpuInfo") or {}).get("DefaultVCpus")
    gpus = sum(g.get("Count", 0) for g in (((instance or {}).get("GpuInfo") or {}).get("Gpus") or []))
    if vcpus and cpus > vcpus:
        cpus = int(vcpus)
    requirements = {"MinMemoryRequiredInMb": MIN_MEMORY_MB, "NumberOfCpuCoresRequired": cpus}
    if gpus:
        requirements["NumberOfAcceleratorDevicesRequired"] = int(accelerators if accelerators is not None else gpus)
    elif instance is None and accelerators is not None:
        requirements["NumberOfAcceleratorDevicesRequired"] = int(accelerators)
    return requirements


def endpoint_plan(package: dict, document: dict, instance_of: Callable[[str], dict | None], *, role_arn: str,
                  accept_eula: bool, instance_type: str = "") -> EndpointPlan:
    """The endpoint for `package`, from its base model's hub `document` and `instance_of(instance type)`,
    EC2's description of the instance type chosen (None: the hub's figures as published).

    `instance_type`: the operator's choice (else the hub's Default configuration's);
    `accept_eula`: whether the deployment may accept the base model's licence where the hub names one."""
    base = base_model_of(package)
    model = base["HubContentName"]
    recipe_name = str(base.get("RecipeName") or "")
    config = select_hosting(hosting_configs(document, recipe_name), instance_type, model)
    image = config.get("EcrAddress") or ""
    if not re.fullmatch(r"\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/\S+", image):
        raise EndpointProblem(f"{model}: the hub's hosting configuration names no ECR image (EcrAddress {image!r})")
    chosen_type = instance_type or _instance_of(config)
    if not chosen_type:
        raise EndpointProblem(f"{model}: the hub's hosting configuration names no instance type; "
                              "set --endpoint-instance-type")
    data = model_data_uri(package)
    lora = is_lora(package)
    if lora:
        artifact = document.get("HostingArtifactUri") or ""
        if not artifact:
            raise EndpointProblem(f"{model}: the hub document has no HostingArtifactUri (the base model's weights), "
                                  "which a LoRA adapter is served on top of")
        if document.get("HostingEulaUri") and not accept_eula:
            raise EndpointProblem(f"{model}: serving it accepts its licence ({document['HostingEulaUri']}); the "
                                  "pipeline was not built with it accepted")
        weights = {"S3Uri": artifact, "S3DataType": "S3Prefix", "CompressionType": "None"}
        if accept_eula:
            weights["ModelAccessConfig"] = {"AcceptEula": True}
        adapter = data.rstrip("/") + "/model/checkpoints/hf/"
    else:
        merged = _container(package).get("IsCheckpoint") is False
        folder = data.rstrip("/") + "/checkpoints/hf_merged/" if merged else data
        weights = {"S3Uri": folder.rstrip("/") + "/", "S3DataType": "S3Prefix", "CompressionType": "None"}
        adapter = ""
    container = {"Image": image, "Environment": dict(config.get("Environment") or {}),
                 "ModelDataSource": {"S3DataSource": weights}}
    return EndpointPlan(name=endpoint_name(package), role_arn=role_arn, instance_type=chosen_type, lora=lora,
                        container=container, compute=compute_requirements(config, instance_of(chosen_type)),
                        recipe_name=recipe_name, adapter_uri=adapter,
                        tags=[{"Key": SOURCE_TAG_KEY, "Value": package["ModelPackageArn"]}])


class SageMakerEndpoint:
    """Creates what a plan lists that does not exist yet, reports where the endpoint stands, asks it."""

    def __init__(self, sagemaker, sagemaker_runtime=None, ec2=None, *, session=None):
        """The SageMaker client, and the runtime and EC2 ones, given or made from `session` when first
        needed (a Bedrock import never makes them)."""
        self.sagemaker = sagemaker
        self._runtime = sagemaker_runtime
        self._ec2 = ec2
        self._session = session

    @property
    def runtime(self):
        if self._runtime is None:
            self._runtime = self._session.client("sagemaker-runtime")
        return self._runtime

    @property
    def ec2(self):
        if self._ec2 is None and self._session is not None:
            self._ec2 = self._session.client("ec2")
        return self._ec2

    def hub_document(self, package: dict) -> dict:
        base = base_model_of(package)
        request = {"HubName": PUBLIC_HUB, "HubContentType": "Model", "HubContentName": base["HubContentName"]}
        if base.get("HubContentVersion"):
            request["HubContentVersion"] = base["HubContentVersion"]
        content = self.sagemaker.describe_hub_content(**request)
        try:
            return json.loads(content["HubContentDocument"])
        except (KeyError, ValueError) as error:
            raise EndpointProblem(f"{base['HubContentName']}: the hub content document is not JSON ({error})") from None

    def instance(self, instance_type: str) -> dict | None:
        """EC2's description of the instance type (its vCPUs and GPUs), or None without an EC2 client."""
        if self.ec2 is None:
            return None
        types = self.ec2.describe_instance_types(InstanceTypes=[instance_type.removeprefix("ml.")])["InstanceTypes"]
        return types[0] if types else None

    def plan(self, package: dict, *, role_arn: str, accept_eula: bool, instance_type: str = "") -> EndpointPlan:
        return endpoint_plan(package, self.hub_document(package), self.instance, role_arn=role_arn,
                             accept_eula=accept_eula, instance_type=instance_type)

    def ensure(self, plan: EndpointPlan, stage: str) -> None:
        """Create one stage's resources (MODEL, ENDPOINT, BASE or ADAPTER) unless they exist."""
        for step_stage, operation, request in plan.steps():
            if step_stage != stage:
                continue
            create, describe, key = CALLS[operation]
            if found(getattr(self.sagemaker, describe), missing=("ValidationException", "ResourceNotFound"),
                     **{key: request[key]}):
                LOG.info("%s %s exists already", operation.removeprefix("Create"), request[key])
                continue
            if operation == "CreateEndpoint":
                LOG.warning("creating SageMaker endpoint %s on %s: billed by the instance-hour until deleted "
                            "(aws sagemaker delete-endpoint --endpoint-name %s; then delete-endpoint-config and "
                            "delete-model of the same name)", plan.name, plan.instance_type, plan.name)
            else:
                LOG.info("%s %s", operation, request[key])
            getattr(self.sagemaker, create)(**request)

    def endpoint_status(self, plan: EndpointPlan) -> tuple[str, str]:
        endpoint = self.sagemaker.describe_endpoint(EndpointName=plan.name)
        return endpoint.get("EndpointStatus", ""), endpoint.get("FailureReason", "")

    def component_status(self, name: str) -> tuple[str, str]:
        component = self.sagemaker.describe_inference_component(InferenceComponentName=name)
        return component.get("InferenceComponentStatus", ""), component.get("FailureReason", "")

    def ask(self, plan: EndpointPlan, system: str, query: str) -> str:
        """The served model's answer to one question (OpenAI chat-completion body)."""
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": query}]
        response = self.runtime.invoke_endpoint(
            EndpointName=plan.name, InferenceComponentName=plan.serving_component,
            ContentType="application/json", Accept="application/json",
            Body=json.dumps({"messages": messages, "max_tokens": 512, "temperature": 0.0}).encode())
        raw = response["Body"].read()
        try:
            answer = answer_text(json.loads(raw))
        except ValueError as error:
            raise EndpointProblem(f"endpoint {plan.name} ({plan.serving_component}) answered {raw[:200]!r}: "
                                  f"{error}") from None
        if not answer:
            raise EndpointProblem(f"endpoint {plan.name} ({plan.serving_component}) answered with no text")
        return answer


def answer_text(body: Any) -> str:
    """The text of a chat completion (`choices[0].message.content`), or of the other shapes AWS's own
    deployment test of a fine-tuned model accepts (sagemaker-serve's test_model_customization_deployment:
    `generated_text`, `generation` or `outputs`; an object, or a list of one)."""
    if isinstance(body, list) and body:
        body = body[0]
    if isinstance(body, dict):
        choices = body.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            message = choices[0].get("message") or {}
            return str(message.get("content") or choices[0].get("text") or "").strip()
        for key in ("generated_text", "generation", "outputs"):
            if key in body:
                value = body[key]
                return str(value[0] if isinstance(value, list) and value else value or "").strip()
    raise ValueError("neither a chat completion nor a generated_text / generation / outputs answer")

