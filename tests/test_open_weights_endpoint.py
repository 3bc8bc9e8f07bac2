"""An approved open-weights model Bedrock cannot serve goes to a SageMaker endpoint (scripts/sagemaker_endpoint.py).

1. The requests equal the ones AWS's own SDK sends for the same package (sagemaker-serve's
   `ModelBuilder(model=<package>).build()` + `.deploy()`, run in-process with every AWS call answered:
   tests/sdk_endpoint_oracle.py). Differences, each deliberate:
   - the model's name: AWS's SDK makes up `model-<random hex>`; ours is the endpoint's name, so that a second
     run finds the model it made instead of making another;
   - AWS's SDK then records lineage (CreateAction, AddAssociation; it logs and ignores a failure there);
     ours does not: the package's metadata names the endpoint.
2. The approval hook's path: claim, plan, create, hand over while the endpoint is created, resume, smoke test
   (one FinQA question through InvokeEndpoint), metadata, and nothing created twice. The package lives in moto;
   the endpoint calls go to a SageMaker client under botocore's Stubber (moto has no hub content or inference
   components), which checks each request against the API model.
"""
from __future__ import annotations

import datetime
import io
import json

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from scripts import import_to_bedrock as imp
from scripts import sagemaker_endpoint as ep
from tests import test_import_to_bedrock as nova_import
from tests.aws_fixtures import ACCOUNT
from tests.sdk_endpoint_oracle import aws_endpoint_requests
from tests.test_import_to_bedrock import EVAL_URI, GROUP, _aws, _Clients, _event, _metadata, _settings

# The Nova import tests' moto UpdateModelPackage, made to keep what SageMaker keeps.
sagemaker_update_keeps_what_it_is_not_given = nova_import.sagemaker_update_keeps_what_it_is_not_given

REGION = "eu-west-1"  # serverless customization runs here; Bedrock Custom Model Import does not
ROLE = f"arn:aws:iam::{ACCOUNT}:role/NovaFinQAPipelineRole"
LLAMA = "meta-textgeneration-llama-3-2-1b-instruct"
QWEN = "huggingface-reasoning-qwen3-8b"
WEIGHTS = "s3://example-bucket/nova-finqa/exec-1/train/output/model"
IMAGE = "763104351884.dkr.ecr.eu-west-1.amazonaws.com/djl-inference:0.33.0-lmi15.0.0-cu128"
HOSTING_ARTIFACTS = f"s3://jumpstart-cache-prod-{REGION}/meta-textgeneration/{LLAMA}/artifacts/inference-prepack/v1.0.0/"
LORA, FULL = "llama-3-2-1b-instruct-sft-lora", "qwen3-8b-sft-full"


def _hosting(instance_type: str, profile: str = "Default", accelerators: int = 4) -> dict:
    return {"Profile": profile, "EcrAddress": IMAGE, "InstanceType": instance_type,
            "Environment": {"OPTION_MAX_MODEL_LEN": "4096", "OPTION_ROLLING_BATCH": "vllm"},
            "ComputeResourceRequirements": {"NumberOfCpuCoresRequired": 8,
                                            "NumberOfAcceleratorDevicesRequired": accelerators}}


HUB_DOCUMENT = {
    "HostingArtifactUri": HOSTING_ARTIFACTS,
    "HostingEulaUri": f"s3://jumpstart-cache-prod-{REGION}/fmhMetadata/eula/llama3_2Eula.txt",
    "RecipeCollection": [
        {"Name": LORA, "HostingConfigs": [_hosting("ml.g5.12xlarge"), _hosting("ml.g6.2xlarge", "Small", 1)]},
        {"Name": FULL, "HostingConfigs": [_hosting("ml.g5.12xlarge")]}],
}
G5_12XL = {"InstanceType": "g5.12xlarge", "VCpuInfo": {"DefaultVCpus": 48}, "MemoryInfo": {"SizeInMiB": 196608},
           "GpuInfo": {"Gpus": [{"Name": "A10G", "Manufacturer": "NVIDIA", "Count": 4,
                                 "MemoryInfo": {"SizeInMiB": 24576}}]}}
G6_2XL = {"InstanceType": "g6.2xlarge", "VCpuInfo": {"DefaultVCpus": 8}, "MemoryInfo": {"SizeInMiB": 32768},
          "GpuInfo": {"Gpus": [{"Name": "L4", "Manufacturer": "NVIDIA", "Count": 1,
                                "MemoryInfo": {"SizeInMiB": 22888}}]}}
INSTANCES = {"ml.g5.12xlarge": G5_12XL, "ml.g6.2xlarge": G6_2XL}
"""EC2's descriptions, by instance type (SageMakerEndpoint.instance)."""


def _description(base_model: str, recipe: str, version: int = 3, **container) -> dict:
    """DescribeModelPackage of a package a serverless customization job registered."""
    return {
        "ModelPackageName": GROUP, "ModelPackageGroupName": GROUP, "ModelPackageVersion": version,
        "ModelPackageArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/{version}",
        "ModelApprovalStatus": "Approved", "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "CreationTime": datetime.datetime(2026, 12, 6, tzinfo=datetime.UTC),
        "InferenceSpecification": {"Containers": [{
            "BaseModel": {"HubContentName": base_model, "HubContentVersion": "1.2.0", "RecipeName": recipe},
            "ModelDataSource": {"S3DataSource": {"S3Uri": WEIGHTS, "S3DataType": "S3Prefix",
                                                 "CompressionType": "None"}},
            **container}]},
    }


# -- 1. equal to what AWS's SDK sends -------------------------------------------------------------------------

@pytest.mark.parametrize("case, package, instance_type, instance", [
    ("LoRA: the base model and an adapter component", _description(LLAMA, LORA), "", G5_12XL),
    ("LoRA on the instance type asked for", _description(LLAMA, LORA), "ml.g6.2xlarge", G6_2XL),
    ("full rank, merged weights: one component", _description(QWEN, FULL, IsCheckpoint=False), "", G5_12XL),
    ("full rank, a checkpoint", _description(QWEN, FULL), "", G5_12XL),
])
def test_the_endpoint_requests_equal_what_awss_sdk_sends(case, package, instance_type, instance, monkeypatch):
    gated = package["InferenceSpecification"]["Containers"][0]["BaseModel"]["HubContentName"] == LLAMA
    document = HUB_DOCUMENT if gated else {k: v for k, v in HUB_DOCUMENT.items() if k != "HostingEulaUri"}
    ours = ep.endpoint_plan(package, document, INSTANCES.get, role_arn=ROLE, accept_eula=gated,
                            instance_type=instance_type)
    theirs = aws_endpoint_requests(package, document, role_arn=ROLE, endpoint_name=ours.name, accept_eula=gated,
                                   region=REGION, instance_type=instance_type or None,
                                   gpus=instance["GpuInfo"]["Gpus"][0]["Count"],
                                   vcpus=instance["VCpuInfo"]["DefaultVCpus"], monkeypatch=monkeypatch)
    creates = [(name, params) for name, params in theirs if name.startswith("Create")]
    assert [name for name, _ in creates][-1] == "CreateAction"  # lineage: theirs only (the module docstring)
    creates = creates[:-1]
    their_model = creates[0][1]["ModelName"]
    assert their_model.startswith("model-")  # made up by AWS's SDK; ours is the endpoint's name
    creates = json.loads(json.dumps(creates).replace(their_model, ours.name))
    assert [(name, params) for name, params in ours.requests()] == [tuple(c) for c in creates], case


def test_a_gated_base_model_is_not_served_without_its_licence_accepted():
    with pytest.raises(ep.EndpointProblem, match="accepts its licence"):
        ep.endpoint_plan(_description(LLAMA, LORA), HUB_DOCUMENT, INSTANCES.get, role_arn=ROLE,
                         accept_eula=False)


@pytest.mark.parametrize("document, instance_type, says", [
    (HUB_DOCUMENT, "ml.p4d.24xlarge", "publishes hosting configurations for ml.g5.12xlarge, ml.g6.2xlarge only"),
    ({"RecipeCollection": [{"Name": LORA}]}, "", "publishes no hosting configuration"),
    ({**HUB_DOCUMENT, "RecipeCollection": [{"Name": LORA, "HostingConfigs": [
        {**_hosting("ml.g5.12xlarge"), "EcrAddress": "evil.example.com/image"}]}]}, "", "names no ECR image"),
    ({k: v for k, v in HUB_DOCUMENT.items() if k != "HostingArtifactUri"}, "", "has no HostingArtifactUri"),
])
def test_what_the_hub_does_not_publish_is_refused_naming_it(document, instance_type, says):
    with pytest.raises(ep.EndpointProblem, match=says):
        ep.endpoint_plan(_description(LLAMA, LORA), document, INSTANCES.get, role_arn=ROLE, accept_eula=True,
                         instance_type=instance_type)


def test_names_stay_within_sagemakers_limit_for_a_long_group():
    package = {**_description(LLAMA, LORA, version=12345), "ModelPackageGroupName": "g" * 63}
    plan = ep.endpoint_plan(package, HUB_DOCUMENT, INSTANCES.get, role_arn=ROLE, accept_eula=True)
    assert plan.name.endswith("-v12345-ep") and len(plan.base_component) <= 63 and len(plan.adapter_component) <= 63


@pytest.mark.parametrize("body, text", [
    ({"choices": [{"message": {"role": "assistant", "content": " Program: divide(1, 2)\nAnswer: 50% "}}]},
     "Program: divide(1, 2)\nAnswer: 50%"),
    ([{"generated_text": "Answer: 50%"}], "Answer: 50%"),
    ({"generated_text": "Answer: 50%"}, "Answer: 50%"),
    ({"generation": "Answer: 50%"}, "Answer: 50%"),
    ({"outputs": ["Answer: 50%"]}, "Answer: 50%"),
])
def test_the_answer_is_read_from_a_chat_completion_or_the_shapes_awss_deployment_test_accepts(body, text):
    assert ep.answer_text(body) == text
    with pytest.raises(ValueError, match="neither a chat completion"):
        ep.answer_text({"error": "model not loaded"})


# -- 2. the approval hook's path ------------------------------------------------------------------------------

@pytest.fixture
def aws(finqa_question):
    from moto import mock_aws

    with mock_aws():
        yield _aws(REGION, finqa_question)


def _registered(sagemaker, base_model: str, recipe: str, **container) -> str:
    """The package as the serverless job registers it, with the pipeline's metadata (moto keeps BaseModel)."""
    spec = _description(base_model, recipe, **container)["InferenceSpecification"]
    return sagemaker.create_model_package(
        ModelPackageGroupName=GROUP, ModelApprovalStatus="Approved", InferenceSpecification={
            **spec, "SupportedContentTypes": ["application/json"], "SupportedResponseMIMETypes": ["application/json"]},
        CustomerMetadataProperties={"base_model": base_model, "eval_data_s3_uri": EVAL_URI, "accuracy": "0.5",
                                    "baseline_accuracy": "0.2", "accuracy_threshold": "0.3"})["ModelPackageArn"]


class _Endpoint:
    """The endpoint's own clients, each under a Stubber: SageMaker (hub content, models, endpoints, inference
    components), SageMaker Runtime and EC2."""

    def __init__(self):
        self.sagemaker = boto3.client("sagemaker", region_name=REGION)
        self.runtime = boto3.client("sagemaker-runtime", region_name=REGION)
        self.ec2 = boto3.client("ec2", region_name=REGION)
        self.stubs = [Stubber(self.sagemaker), Stubber(self.runtime), Stubber(self.ec2)]
        self.sm, self.rt, self.ec2_stub = self.stubs

    def __enter__(self):
        for stub in self.stubs:
            stub.activate()
        return self

    def __exit__(self, *exc):
        for stub in self.stubs:
            stub.deactivate()

    def all_answered(self):
        for stub in self.stubs:
            stub.assert_no_pending_responses()

    def client(self) -> ep.SageMakerEndpoint:
        return ep.SageMakerEndpoint(self.sagemaker, self.runtime, self.ec2)

    def hub(self, base_model: str, document: dict = HUB_DOCUMENT) -> None:
        self.sm.add_response("describe_hub_content", {
            "HubContentName": base_model, "HubContentArn": f"arn:aws:sagemaker:{REGION}:aws:hub-content/"
            f"SageMakerPublicHub/Model/{base_model}/1.2.0", "HubContentVersion": "1.2.0", "HubContentType": "Model",
            "DocumentSchemaVersion": "2.0.0", "HubName": "SageMakerPublicHub",
            "HubArn": f"arn:aws:sagemaker:{REGION}:aws:hub/SageMakerPublicHub", "HubContentStatus": "Available",
            "HubContentDocument": json.dumps(document), "CreationTime": datetime.datetime(2026, 1, 1)}, {
            "HubName": "SageMakerPublicHub", "HubContentType": "Model", "HubContentName": base_model,
            "HubContentVersion": "1.2.0"})
        self.ec2_stub.add_response("describe_instance_types", {"InstanceTypes": [G5_12XL]},
                                   {"InstanceTypes": ["g5.12xlarge"]})

    def missing(self, method: str, key: str, name: str) -> None:
        self.sm.add_client_error(method, "ValidationException", f"Could not find {name}.", expected_params={key: name})

    def creates(self, plan: ep.EndpointPlan, stage: str) -> None:
        for step_stage, operation, request in plan.steps():
            if step_stage != stage:
                continue
            create, describe, key = {
                "CreateModel": ("create_model", "describe_model", "ModelName"),
                "CreateEndpointConfig": ("create_endpoint_config", "describe_endpoint_config", "EndpointConfigName"),
                "CreateEndpoint": ("create_endpoint", "describe_endpoint", "EndpointName"),
                "CreateInferenceComponent": ("create_inference_component", "describe_inference_component",
                                             "InferenceComponentName")}[operation]
            self.missing(describe, key, request[key])
            arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:x/{request[key]}"
            answer = {"CreateModel": {"ModelArn": arn}, "CreateEndpointConfig": {"EndpointConfigArn": arn},
                      "CreateEndpoint": {"EndpointArn": arn},
                      "CreateInferenceComponent": {"InferenceComponentArn": arn}}[operation]
            self.sm.add_response(create, answer, request)

    def exists(self, plan: ep.EndpointPlan, stage: str) -> None:
        for step_stage, operation, request in plan.steps():
            if step_stage != stage:
                continue
            name = next(value for key, value in request.items() if key.endswith("Name"))
            arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:x/{name}"
            now = datetime.datetime(2026, 1, 1)
            method, key, answer = {
                "CreateModel": ("describe_model", "ModelName", {"ModelName": name, "ModelArn": arn,
                                                                "CreationTime": now}),
                "CreateEndpointConfig": ("describe_endpoint_config", "EndpointConfigName", {
                    "EndpointConfigName": name, "EndpointConfigArn": arn,
                    "ProductionVariants": [{"VariantName": name, "InstanceType": plan.instance_type}],
                    "CreationTime": now}),
                "CreateEndpoint": ("describe_endpoint", "EndpointName", self._endpoint(plan, "InService")),
                "CreateInferenceComponent": ("describe_inference_component", "InferenceComponentName",
                                             self._component(name, "InService")),
            }[operation]
            self.sm.add_response(method, answer, {key: name})

    @staticmethod
    def _endpoint(plan: ep.EndpointPlan, status: str, reason: str = "") -> dict:
        now = datetime.datetime(2026, 1, 1)
        return {"EndpointName": plan.name, "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{plan.name}",
                "EndpointConfigName": plan.name, "EndpointStatus": status, "CreationTime": now,
                "LastModifiedTime": now, **({"FailureReason": reason} if reason else {})}

    @staticmethod
    def _component(name: str, status: str) -> dict:
        now = datetime.datetime(2026, 1, 1)
        return {"InferenceComponentName": name, "InferenceComponentStatus": status, "EndpointName": "e",
                "InferenceComponentArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:inference-component/{name}",
                "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/e", "CreationTime": now,
                "LastModifiedTime": now}

    def endpoint_is(self, plan: ep.EndpointPlan, status: str, reason: str = "") -> None:
        self.sm.add_response("describe_endpoint", self._endpoint(plan, status, reason), {"EndpointName": plan.name})

    def component_is(self, name: str, status: str) -> None:
        self.sm.add_response("describe_inference_component", self._component(name, status),
                             {"InferenceComponentName": name})

    def answers(self, plan: ep.EndpointPlan, finqa_question: dict, text: str = "Program: divide(1, 2)\nAnswer: 50%"):
        body = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
        self.rt.add_response("invoke_endpoint", {"Body": StreamingBody(io.BytesIO(body), len(body)),
                                                 "ContentType": "application/json"}, {
            "EndpointName": plan.name, "InferenceComponentName": plan.serving_component,
            "ContentType": "application/json", "Accept": "application/json",
            "Body": json.dumps({"messages": [{"role": "system", "content": finqa_question["system"]},
                                             {"role": "user", "content": finqa_question["query"]}],
                                "max_tokens": 512, "temperature": 0.0}).encode()})


def _importer(clients: _Clients, endpoint: _Endpoint, clock=lambda: 0.0, serving: str = "auto",
              role: str = ROLE) -> imp.BedrockImport:
    return imp.BedrockImport(clients.sagemaker, clients.bedrock, clients.runtime, clients.s3, "",
                             sleep=clients.sleeps.append, clock=clock, poll_seconds=60, account=ACCOUNT,
                             claims=imp.Claims(clients.s3, "example-bucket", "nova-finqa"),
                             endpoint=endpoint.client(), serving=serving, endpoint_role_arn=role)


def test_an_approved_llama_in_ireland_is_served_on_an_endpoint_handed_over_and_answers(aws, finqa_question):
    sagemaker, s3 = aws
    package_arn = _registered(sagemaker, LLAMA, LORA)
    clients = _Clients(sagemaker, s3)
    plan = ep.endpoint_plan(sagemaker.describe_model_package(ModelPackageName=package_arn), HUB_DOCUMENT,
                            INSTANCES.get, role_arn=ROLE, accept_eula=True)
    # first invocation: the model, the endpoint config and the endpoint are created; the endpoint is still
    # Creating when the Lambda's time is up, so the run records it and hands over
    with _Endpoint() as endpoint, Stubber(clients.bedrock) as bedrock:
        endpoint.hub(LLAMA)
        endpoint.creates(plan, "model")
        endpoint.creates(plan, "endpoint")
        endpoint.endpoint_is(plan, "Creating")
        outcome = _importer(clients, endpoint, clock=lambda: 1000.0).run(package_arn, deadline=1000.0, claim="req-1")
        endpoint.all_answered()
        bedrock.assert_no_pending_responses()  # no Bedrock call at all
    assert (outcome.status, outcome.endpoint_name, outcome.source) == (imp.ENDPOINT_CREATING, plan.name,
                                                                       "sagemaker-endpoint")
    metadata = _metadata(sagemaker, package_arn)
    assert metadata["bedrock_import_status"] == "EndpointCreating"
    assert (metadata["sagemaker_endpoint_name"], metadata["sagemaker_inference_component"]) == (
        plan.name, plan.adapter_component)

    # the hand-over: what exists is found, the components are created and waited for, one question asked
    with _Endpoint() as endpoint:
        endpoint.hub(LLAMA)
        endpoint.exists(plan, "model")
        endpoint.exists(plan, "endpoint")
        endpoint.endpoint_is(plan, "InService")
        endpoint.creates(plan, "base")
        endpoint.component_is(plan.base_component, "Creating")
        endpoint.component_is(plan.base_component, "InService")
        endpoint.creates(plan, "adapter")
        endpoint.component_is(plan.adapter_component, "InService")
        endpoint.answers(plan, finqa_question)
        outcome = _importer(clients, endpoint).run(package_arn, claim="req-1")
        endpoint.all_answered()
    assert outcome.status == imp.DEPLOYED and outcome.detail == "answered: Program: divide(1, 2)\nAnswer: 50%"
    metadata = _metadata(sagemaker, package_arn)
    assert metadata["bedrock_import_status"] == "Deployed" and metadata["bedrock_import_source"] == "sagemaker-endpoint"
    assert metadata["bedrock_smoke_test"].startswith("answered: Program: divide 1 2")
    assert "bedrock_import_claim" not in metadata

    # the same approval again: nothing to do, no AWS call beyond reading the package
    with _Endpoint() as endpoint:
        assert imp.handle_event(_event(package_arn, region=REGION), 900, _settings(REGION),
                                _importer(clients, endpoint))["detail"] == "already deployed"


def test_full_rank_qwen_asked_to_an_endpoint_gets_one_component(aws, finqa_question):
    sagemaker, s3 = aws
    package_arn = _registered(sagemaker, QWEN, FULL, IsCheckpoint=False)
    clients = _Clients(sagemaker, s3)
    document = {k: v for k, v in HUB_DOCUMENT.items() if k != "HostingEulaUri"}
    plan = ep.endpoint_plan(sagemaker.describe_model_package(ModelPackageName=package_arn), document,
                            INSTANCES.get, role_arn=ROLE, accept_eula=False)
    assert not plan.lora and plan.serving_component == plan.base_component
    with _Endpoint() as endpoint:
        endpoint.hub(QWEN, document)
        endpoint.creates(plan, "model")
        endpoint.creates(plan, "endpoint")
        endpoint.endpoint_is(plan, "InService")
        endpoint.creates(plan, "base")
        endpoint.component_is(plan.base_component, "InService")
        endpoint.answers(plan, finqa_question, "Answer: 50%")
        outcome = _importer(clients, endpoint, serving="sagemaker-endpoint").run(package_arn)
        endpoint.all_answered()
    assert outcome.status == imp.DEPLOYED and outcome.endpoint_name == plan.name


def test_a_failed_endpoint_is_recorded_with_how_to_start_again(aws):
    sagemaker, s3 = aws
    package_arn = _registered(sagemaker, LLAMA, LORA)
    clients = _Clients(sagemaker, s3)
    plan = ep.endpoint_plan(sagemaker.describe_model_package(ModelPackageName=package_arn), HUB_DOCUMENT,
                            INSTANCES.get, role_arn=ROLE, accept_eula=True)
    with _Endpoint() as endpoint:
        endpoint.hub(LLAMA)
        endpoint.exists(plan, "model")
        endpoint.exists(plan, "endpoint")
        endpoint.endpoint_is(plan, "Failed", "CUDA out of memory")
        with pytest.raises(imp.ImportFailed, match="SageMaker endpoint .* failed: CUDA out of memory; delete it"):
            _importer(clients, endpoint).run(package_arn, claim="req-1")
    metadata = _metadata(sagemaker, package_arn)
    assert metadata["bedrock_import_status"] == "Failed"
    assert f"aws sagemaker delete-endpoint --endpoint-name {plan.name}" in metadata["bedrock_import_error"]


def test_an_endpoint_without_a_role_is_refused_before_any_endpoint_call(aws):
    sagemaker, s3 = aws
    package_arn = _registered(sagemaker, LLAMA, LORA)
    clients = _Clients(sagemaker, s3)
    with _Endpoint() as endpoint, pytest.raises(imp.ImportFailed, match="--endpoint-role-arn"):
        _importer(clients, endpoint, role="").run(package_arn)
        endpoint.all_answered()


def test_bedrock_asked_where_it_cannot_import_is_refused_before_any_call(aws):
    sagemaker, s3 = aws
    package_arn = _registered(sagemaker, LLAMA, LORA)
    clients = _Clients(sagemaker, s3)
    with _Endpoint() as endpoint, Stubber(clients.bedrock):
        with pytest.raises(imp.ImportFailed, match="us-east-1, us-east-2, us-west-2, eu-central-1 only"):
            _importer(clients, endpoint, serving="bedrock").run(package_arn)
    assert "--open-weights-serving auto or sagemaker-endpoint" in _metadata(sagemaker, package_arn)[
        "bedrock_import_error"]


def test_a_restricted_package_is_not_sent_to_an_endpoint(aws):
    sagemaker, s3 = aws
    package_arn = _registered(sagemaker, LLAMA, LORA)
    clients = _Clients(sagemaker, s3)
    package = {**sagemaker.describe_model_package(ModelPackageName=package_arn), "ManagedStorageType": "Restricted"}
    importer = _importer(clients, _Endpoint())
    with pytest.raises(imp.ImportFailed, match="restricted package .* Studio"):
        importer._open_weights_plan(package, LLAMA)


def test_a_package_whose_metadata_names_another_base_model_is_refused_before_any_endpoint_call(aws):
    sagemaker, s3 = aws
    package_arn = _registered(sagemaker, LLAMA, LORA)
    metadata = _metadata(sagemaker, package_arn)
    sagemaker.update_model_package(ModelPackageArn=package_arn, CustomerMetadataProperties={
        **metadata, "base_model": "meta-textgeneration-llama-3-1-8b-instruct"})
    with _Endpoint() as endpoint, pytest.raises(imp.ImportFailed, match="registered it as a fine-tuned " + LLAMA):
        _importer(_Clients(sagemaker, s3), endpoint).run(package_arn)
        endpoint.all_answered()
