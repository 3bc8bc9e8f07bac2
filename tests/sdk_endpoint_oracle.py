"""What AWS's own SDK asks of AWS when it deploys a fine-tuned open-weights model package to an endpoint.

`aws_endpoint_requests` runs `sagemaker.serve.model_builder.ModelBuilder` (SageMaker Python SDK v3) as a user
calls it for a model package registered by SageMaker AI serverless model customization:
`ModelBuilder(model=ModelPackage.get(arn), role_arn=..., instance_type=...)`, `accept_eula` set on the builder
(the SDK takes it as an attribute, not a constructor argument), `.build()` and then `.deploy(endpoint_name=...)`.
Every AWS call it makes is answered in-process by a small stand-in of SageMaker / EC2 / STS that keeps the
resources it is asked to create (the harness of tests/test_serverless_oracle.py: a botocore `before-call`
handler, so each request is checked against botocore's API model before it is answered; each answer is checked
against the operation's output shape too). Any call the stand-in does not know fails.

The stand-in's world: the model package and the hub model exist; no endpoint, inference component or model of
that name exists yet; SageMaker has made the package's lineage artifact (as it does when a package is
registered); every resource is InService as soon as it is created, so nothing waits.
"""
from __future__ import annotations

import copy
import datetime
import json
import warnings
from collections import OrderedDict
from contextlib import ExitStack

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.validate import ParamValidator

from tests.test_serverless_oracle import AwsCalls

_NOW = datetime.datetime(2026, 12, 6, tzinfo=datetime.UTC)


class AwsError(Exception):
    """An AWS error response (HTTP 400) from a stand-in answer, raised by the client as AWS's would be."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class _CheckedCalls(AwsCalls):
    """`AwsCalls`, whose answers may also be AWS errors and are checked against the operation's output shape."""

    def _answer(self, model, **kwargs):
        try:
            response, parsed = super()._answer(model, **kwargs)
        except AwsError as error:
            return (AWSResponse("https://stand-in.invalid", 400, {}, None),
                    {"Error": {"Code": error.code, "Message": str(error)},
                     "ResponseMetadata": {"HTTPStatusCode": 400}})
        if model.output_shape is not None:
            report = ParamValidator().validate(parsed, model.output_shape)
            if report.has_errors():
                raise AssertionError(f"the stand-in's {model.name} answer is not valid: {report.generate_report()}")
        return response, parsed


def _arn(region: str, account: str, kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{region}:{account}:{kind}/{name.lower()}"


def _answers(package: dict, hub_document: dict, *, role_arn: str, region: str, gpus: int, vcpus: int,
             memory_mib: int) -> dict:
    """A stand-in of the account: {operation name: answer or function of the request's params}."""
    account = package["ModelPackageArn"].split(":")[4]
    base = package["InferenceSpecification"]["Containers"][0]["BaseModel"]
    default_bucket = f"sagemaker-{region}-{account}"
    models: dict[str, dict] = {}
    endpoint_configs: dict[str, dict] = {}
    endpoints: dict[str, dict] = {}
    components: dict[str, dict] = {}
    actions: dict[str, dict] = {}
    tags: dict[str, list] = {}
    lineage_artifact = {
        "ArtifactArn": f"arn:aws:sagemaker:{region}:{account}:artifact/0123456789abcdef0123456789abcdef",
        "ArtifactName": "model-package-artifact", "ArtifactType": "Model", "CreationTime": _NOW,
        "Source": {"SourceUri": package["ModelPackageArn"]}}

    def describe_model_package(params):
        assert params["ModelPackageName"] in (package["ModelPackageArn"], package.get("ModelPackageName")), params
        return copy.deepcopy(package)

    def describe_hub_content(params):
        assert (params["HubName"], params["HubContentType"], params["HubContentName"]) == (
            "SageMakerPublicHub", "Model", base["HubContentName"]), params
        assert params.get("HubContentVersion") in (None, base.get("HubContentVersion")), params
        version = base.get("HubContentVersion") or "1.0.0"
        hub_arn = f"arn:aws:sagemaker:{region}:aws:hub/SageMakerPublicHub"
        return {"HubContentName": base["HubContentName"], "HubContentVersion": version, "HubContentType": "Model",
                "HubContentArn": f"arn:aws:sagemaker:{region}:aws:hub-content/SageMakerPublicHub/Model/"
                                 f"{base['HubContentName']}/{version}",
                "DocumentSchemaVersion": "2.0.0", "HubName": "SageMakerPublicHub", "HubArn": hub_arn,
                "HubContentDocument": json.dumps(hub_document), "HubContentStatus": "Available",
                "CreationTime": _NOW}

    def describe_instance_types(params):
        return {"InstanceTypes": [{
            "InstanceType": name, "VCpuInfo": {"DefaultVCpus": vcpus}, "MemoryInfo": {"SizeInMiB": memory_mib},
            **({"GpuInfo": {"Gpus": [{"Name": "A10G", "Manufacturer": "NVIDIA", "Count": gpus}]}} if gpus else {}),
        } for name in params["InstanceTypes"]]}

    def created(store: dict, key: str, kind: str, params: dict, arn_key: str) -> dict:
        name = params[key]
        if name in store:
            raise AwsError("ValidationException", f"Cannot create already existing {kind} \"{name}\".")
        arn = _arn(region, account, kind, name)
        store[name] = {**copy.deepcopy(params), arn_key: arn}
        tags[arn] = list(params.get("Tags", []))
        return {arn_key: arn}

    def described(store: dict, key: str, kind: str, params: dict) -> dict:
        name = params[key]
        if name not in store:
            raise AwsError("ValidationException", f"Could not find {kind} \"{name}\".")
        return store[name]

    def describe_model(params):
        model = described(models, "ModelName", "model", params)
        answer = {"ModelName": model["ModelName"], "ModelArn": model["ModelArn"], "CreationTime": _NOW}
        for field in ("PrimaryContainer", "Containers", "ExecutionRoleArn", "EnableNetworkIsolation", "VpcConfig"):
            if field in model:
                answer[field] = copy.deepcopy(model[field])
        return answer

    def describe_endpoint_config(params):
        config = described(endpoint_configs, "EndpointConfigName", "endpoint configuration", params)
        answer = {"EndpointConfigName": config["EndpointConfigName"], "EndpointConfigArn": config["EndpointConfigArn"],
                  "ProductionVariants": copy.deepcopy(config["ProductionVariants"]), "CreationTime": _NOW}
        for field in ("ExecutionRoleArn", "EnableNetworkIsolation", "KmsKeyId", "DataCaptureConfig"):
            if field in config:
                answer[field] = copy.deepcopy(config[field])
        return answer

    def describe_endpoint(params):
        endpoint = described(endpoints, "EndpointName", "endpoint", params)
        config = endpoint_configs[endpoint["EndpointConfigName"]]
        variants = [{"VariantName": variant["VariantName"], "CurrentInstanceCount": variant["InitialInstanceCount"],
                     "DesiredInstanceCount": variant["InitialInstanceCount"]}
                    for variant in config["ProductionVariants"]]
        return {"EndpointName": endpoint["EndpointName"], "EndpointArn": endpoint["EndpointArn"],
                "EndpointConfigName": endpoint["EndpointConfigName"], "ProductionVariants": variants,
                "EndpointStatus": "InService", "CreationTime": _NOW, "LastModifiedTime": _NOW}

    def create_inference_component(params):
        assert params["EndpointName"] in endpoints, params
        return created(components, "InferenceComponentName", "inference-component", params,
                       "InferenceComponentArn")

    def describe_inference_component(params):
        component = described(components, "InferenceComponentName", "inference component", params)
        specification = copy.deepcopy(component["Specification"])
        container = specification.pop("Container", None)
        if container is not None:  # the service reports the container it deployed
            specification["Container"] = {"ArtifactUrl": container.get("ArtifactUrl", ""),
                                          "Environment": container.get("Environment", {})}
        answer = {"InferenceComponentName": component["InferenceComponentName"],
                  "InferenceComponentArn": component["InferenceComponentArn"],
                  "EndpointName": component["EndpointName"],
                  "EndpointArn": endpoints[component["EndpointName"]]["EndpointArn"],
                  "Specification": specification, "InferenceComponentStatus": "InService",
                  "CreationTime": _NOW, "LastModifiedTime": _NOW}
        if "VariantName" in component:
            answer["VariantName"] = component["VariantName"]
        if "RuntimeConfig" in component:
            copies = component["RuntimeConfig"]["CopyCount"]
            answer["RuntimeConfig"] = {"DesiredCopyCount": copies, "CurrentCopyCount": copies}
        return answer

    def list_inference_components(params):
        listed = [component for component in components.values()
                  if params.get("EndpointNameEquals") in (None, component["EndpointName"])
                  and params.get("VariantNameEquals") in (None, component.get("VariantName"))
                  and params.get("StatusEquals") in (None, "InService")]
        return {"InferenceComponents": [
            {"InferenceComponentName": component["InferenceComponentName"],
             "InferenceComponentArn": component["InferenceComponentArn"],
             "EndpointName": component["EndpointName"],
             "EndpointArn": endpoints[component["EndpointName"]]["EndpointArn"],
             "VariantName": component.get("VariantName", component["EndpointName"]),
             "InferenceComponentStatus": "InService", "CreationTime": _NOW, "LastModifiedTime": _NOW}
            for component in listed]}

    def list_tags(params):
        return {"Tags": copy.deepcopy(tags.get(params["ResourceArn"], []))}

    def create_action(params):
        return created(actions, "ActionName", "action", params, "ActionArn")

    def describe_action(params):
        action = described(actions, "ActionName", "action", params)
        answer = {"ActionName": action["ActionName"], "ActionArn": action["ActionArn"], "CreationTime": _NOW,
                  "LastModifiedTime": _NOW}
        for field in ("Source", "ActionType", "Description", "Status", "Properties", "MetadataProperties"):
            if field in action:
                answer[field] = copy.deepcopy(action[field])
        return answer

    def list_artifacts(params):
        source = params.get("SourceUri")
        listed = [lineage_artifact] if source in (None, package["ModelPackageArn"]) else []
        return {"ArtifactSummaries": copy.deepcopy(listed)}

    def describe_artifact(params):
        assert params["ArtifactArn"] == lineage_artifact["ArtifactArn"], params
        return {**copy.deepcopy(lineage_artifact), "LastModifiedTime": _NOW}

    def head_bucket(params):
        assert params["Bucket"] == default_bucket, params
        return {}

    def add_association(params):
        return {"SourceArn": params["SourceArn"], "DestinationArn": params["DestinationArn"]}

    return {
        "DescribeModelPackage": describe_model_package,
        "DescribeHubContent": describe_hub_content,
        "DescribeInstanceTypes": describe_instance_types,
        "CreateModel": lambda params: created(models, "ModelName", "model", params, "ModelArn"),
        "DescribeModel": describe_model,
        "CreateEndpointConfig": lambda params: created(endpoint_configs, "EndpointConfigName", "endpoint-config",
                                                       params, "EndpointConfigArn"),
        "DescribeEndpointConfig": describe_endpoint_config,
        "CreateEndpoint": lambda params: created(endpoints, "EndpointName", "endpoint", params, "EndpointArn"),
        "DescribeEndpoint": describe_endpoint,
        "CreateInferenceComponent": create_inference_component,
        "DescribeInferenceComponent": describe_inference_component,
        "ListInferenceComponents": list_inference_components,
        "ListTags": list_tags,
        "CreateAction": create_action,
        "DescribeAction": describe_action,
        "ListArtifacts": list_artifacts,
        "DescribeArtifact": describe_artifact,
        "AddAssociation": add_association,
        "GetCallerIdentity": {"Account": account, "Arn": role_arn, "UserId": "stand-in"},
        # The session's default bucket (ModelBuilder takes a model-data prefix in it at build; unused here).
        "ListBuckets": {"Buckets": [{"Name": default_bucket, "CreationDate": _NOW}]},
        "HeadBucket": head_bucket,
    }


def aws_endpoint_requests(package: dict, hub_document: dict, *, role_arn: str, endpoint_name: str,
                          accept_eula: bool, region: str = "us-east-1", instance_type: str | None = None,
                          gpus: int = 4, vcpus: int = 48, memory_mib: int = 196608,
                          monkeypatch=None) -> list[tuple[str, dict]]:
    """Runs ModelBuilder(model=<ModelPackage of `package`>, role_arn=..., instance_type=..., ...).build() then
    .deploy(endpoint_name=...) with every AWS call answered in-process, and returns the (operation name,
    API params) of every call made, in order."""
    with ExitStack() as stack:
        if monkeypatch is None:
            monkeypatch = stack.enter_context(pytest.MonkeyPatch.context())
        return _run(package, hub_document, role_arn=role_arn, endpoint_name=endpoint_name, accept_eula=accept_eula,
                    region=region, instance_type=instance_type, gpus=gpus, vcpus=vcpus, memory_mib=memory_mib,
                    monkeypatch=monkeypatch)


def _run(package, hub_document, *, role_arn, endpoint_name, accept_eula, region, instance_type, gpus, vcpus,
         memory_mib, monkeypatch) -> list[tuple[str, dict]]:
    from pipeline.sdk import offline_sdk

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": region, "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
    calls = _CheckedCalls(_answers(package, hub_document, role_arn=role_arn, region=region, gpus=gpus,
                                   vcpus=vcpus, memory_mib=memory_mib))
    session = boto3.Session(region_name=region)
    calls.install(session)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)
    with offline_sdk():
        from sagemaker.core import resources
        from sagemaker.core.helper.session_helper import Session
        from sagemaker.core.utils.utils import SageMakerClient, _ClientCacheMeta
        from sagemaker.serve.model_builder import ModelBuilder

        # sagemaker-core's resources, called without a session (as ModelBuilder calls them), use the process's
        # first SageMaker client: make it this session's for the run, and the one before it afterwards.
        monkeypatch.setitem(_ClientCacheMeta._instances, SageMakerClient, OrderedDict())
        SageMakerClient(session=session, region_name=region)
        # Nothing waits (every resource is InService when first described); the waits' live panels stay quiet.
        monkeypatch.setattr(resources, "Live", _Quiet)

        package_resource = resources.ModelPackage.get(package["ModelPackageArn"], session=session, region=region)
        with warnings.catch_warnings():
            # ModelBuilder's own default for `dependencies` ({"auto": True}) sets off its deprecation warning.
            warnings.filterwarnings("ignore", message="The 'dependencies' parameter is deprecated")
            builder = ModelBuilder(model=package_resource, role_arn=role_arn, instance_type=instance_type,
                                   sagemaker_session=Session(boto_session=session))
        builder.accept_eula = accept_eula
        builder.build()
        builder.deploy(endpoint_name=endpoint_name)
    assert not calls.unexpected, calls.unexpected
    return calls.seen


class _Quiet:
    def __init__(self, *args, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
