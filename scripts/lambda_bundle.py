"""The Lambda zips of the approval hook and of the RFT reward, built deterministically from
the project's own code.

The approval hook's (`build_zip`) holds the handler's modules (`scripts/import_to_bedrock.py`
and what it imports from the project: `scripts/aws.py`, `pipeline/settings.py`,
`pipeline/bedrock_rules.py` and the recipe catalog it reads, `steps/catalog.py` with its data,
`steps/tracking.py`, whose MLflow ARN rule the settings check, `steps/package_metadata.py`, the
serverless model table `steps/serverless_models.py`, which the settings check, and
`steps/open_weights_models.py`, which the open-weights import reads, with
`scripts/sagemaker_endpoint.py`, which serves one on a SageMaker endpoint)
and a vendored boto3/botocore: the SDK bundled in Lambda's Python runtimes lags behind the
releases and may not know Bedrock's CreateCustomModel / CreateCustomModelDeployment, so the
zip carries the SDK this project was tested with. botocore's API models are cut down to the
services the handler calls, which keeps the zip small.

Which SDK that is, is recorded: scripts/lambda_requirements.txt pins each vendored
distribution, and the zip is not built from installed versions other than those (refused,
not warned about: the zip is code that runs with the hook's IAM permissions, and what it holds
should be what the repository says and the tests ran, not whatever the deploying machine has
installed). The lock file goes into the zip, so the deployed function says what it carries.

The reward's (`reward_zip`) holds `steps/reward.py` and the FinQA package it imports: standard
library only, so Lambda's runtime needs nothing else.

Same installed packages and same sources give the same bytes (sorted entries, fixed
timestamps and modes), so an unchanged function is not redeployed.
"""
from __future__ import annotations

import importlib.util
import io
import zipfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

HANDLER = "scripts.import_to_bedrock.lambda_handler"
REWARD_HANDLER = "steps.reward.lambda_handler"
PROJECT_FILES = (
    "pipeline/__init__.py",
    "pipeline/bedrock_rules.py",
    "pipeline/settings.py",
    "scripts/__init__.py",
    "scripts/aws.py",
    "scripts/import_to_bedrock.py",
    "scripts/sagemaker_endpoint.py",
    "steps/__init__.py",
    "steps/catalog.py",
    "steps/catalog_data.py",
    "steps/escrow.py",
    "steps/open_weights_models.py",
    "steps/package_metadata.py",
    "steps/serverless_models.py",
    "steps/tracking.py",
    "scripts/lambda_requirements.txt",
)
LOCK_FILE = PROJECT_ROOT / "scripts" / "lambda_requirements.txt"
VENDORED_DISTRIBUTIONS = {"boto3": "boto3", "botocore": "botocore", "s3transfer": "s3transfer",
                          "jmespath": "jmespath", "dateutil": "python-dateutil", "urllib3": "urllib3", "six": "six"}
"""Each vendored import package and the distribution that installs it (as the lock file names it)."""
VENDORED_PACKAGES = tuple(VENDORED_DISTRIBUTIONS)
BOTOCORE_SERVICES = ("bedrock", "bedrock-runtime", "ec2", "lambda", "s3", "sagemaker", "sagemaker-runtime", "sts")
"""Every service the handler makes a client for."""

REQUIRED_OPERATIONS = {
    "bedrock-runtime": ("Converse", "InvokeModel"),
    "bedrock": ("CreateCustomModel", "GetCustomModel", "CreateCustomModelDeployment", "GetCustomModelDeployment",
                "CreateProvisionedModelThroughput", "GetProvisionedModelThroughput", "CreateModelImportJob",
                "GetModelImportJob", "GetImportedModel"),
    "sagemaker": ("DescribeHubContent", "CreateInferenceComponent", "DescribeInferenceComponent"),
    "sagemaker-runtime": ("InvokeEndpoint",),
    "ec2": ("DescribeInstanceTypes",),
}
REQUIRED_PARAMETERS = {("bedrock", "CreateCustomModel"): ("customModelDataSource",)}
"""Request members the handler sends that older botocore releases lack (this one came in 1.44)."""

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def check_sdk_knows_the_handlers_calls() -> None:
    """The vendored botocore is the installed one: it must know every Bedrock call the handler makes."""
    import botocore
    import botocore.session

    session = botocore.session.get_session()
    for service, operations in REQUIRED_OPERATIONS.items():
        missing = set(operations) - set(session.get_service_model(service).operation_names)
        if missing:
            raise RuntimeError(f"the installed botocore {botocore.__version__} has no {service} "
                               f"{', '.join(sorted(missing))}: upgrade boto3 (pip install -U boto3) and deploy again")
    for (service, operation), parameters in REQUIRED_PARAMETERS.items():
        members = session.get_service_model(service).operation_model(operation).input_shape.members
        missing = set(parameters) - set(members)
        if missing:
            raise RuntimeError(f"the installed botocore {botocore.__version__}'s {service} {operation} has no "
                               f"{', '.join(sorted(missing))}: upgrade boto3 (pip install -U boto3) and deploy again")


def pinned_versions(lock_file: Path | None = None) -> dict[str, str]:
    """distribution -> version, from the lock file (`name==version` lines, # comments)."""
    lock_file = lock_file or LOCK_FILE
    pins = {}
    for line in lock_file.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.strip()] = version.strip()
    return pins


def check_installed_versions_are_the_pinned_ones() -> None:
    """RuntimeError naming every vendored distribution whose installed version is not the pinned one."""
    import importlib.metadata

    pins = pinned_versions(LOCK_FILE)
    problems = []
    for distribution in VENDORED_DISTRIBUTIONS.values():
        try:
            installed = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            installed = "not installed"
        if distribution not in pins:
            problems.append(f"{distribution} ({installed}) has no version in {LOCK_FILE.name}")
        elif installed != pins[distribution]:
            problems.append(f"{distribution} is {installed}, {LOCK_FILE.name} pins {pins[distribution]}")
    if problems:
        raise RuntimeError("the approval hook's zip vendors only the recorded SDK: " + "; ".join(problems)
                           + "; install those with pip install -r scripts/lambda_requirements.txt, or, to move "
                           "to another version, change that file in a reviewed commit and run the tests")


def _vendored_files(name: str) -> list[tuple[str, Path]]:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"{name} is not installed; install the project (pip install -e .) first")
    origin = Path(spec.origin)
    if origin.name != "__init__.py":
        return [(origin.name, origin)]
    package_dir = origin.parent
    files = []
    for path in sorted(package_dir.rglob("*")):
        relative = path.relative_to(package_dir.parent)
        parts = relative.parts
        if path.is_dir() or "__pycache__" in parts or path.suffix in (".pyc", ".pyo"):
            continue
        if parts[:2] == ("boto3", "data"):
            continue  # resource models: the handler uses clients only
        if parts[:2] == ("botocore", "data") and len(parts) > 3 and parts[2] not in BOTOCORE_SERVICES:
            continue
        files.append((relative.as_posix(), path))
    return files


def bundle_files() -> list[tuple[str, Path]]:
    files = [(name, PROJECT_ROOT / name) for name in PROJECT_FILES]
    for package in VENDORED_PACKAGES:
        files.extend(_vendored_files(package))
    return sorted(files)


def build_zip() -> bytes:
    check_installed_versions_are_the_pinned_ones()
    check_sdk_knows_the_handlers_calls()
    return _zip(bundle_files())


def reward_files() -> list[tuple[str, Path]]:
    sources = [PROJECT_ROOT / "steps" / "__init__.py", PROJECT_ROOT / "steps" / "reward.py",
               *(PROJECT_ROOT / "steps" / "finqa").glob("*.py")]
    return sorted((path.relative_to(PROJECT_ROOT).as_posix(), path) for path in sources)


def reward_zip() -> bytes:
    return _zip(reward_files())


def _zip(files: list[tuple[str, Path]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, path in files:
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    return buffer.getvalue()
