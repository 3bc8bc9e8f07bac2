"""Security review finding 5: the approval hook's claim on a package is a conditional write only
one invocation can win (S3 PutObject If-None-Match), it expires, and every failure path writes
Failed and releases it. SageMaker and S3 under in-process moto, Bedrock under botocore's Stubber."""
from __future__ import annotations

import json
import threading

import boto3
import pytest
from botocore.stub import Stubber
from moto.s3.responses import S3Response

from scripts import import_to_bedrock as imp
from tests import test_import_to_bedrock as bedrock_tests
from tests.aws_fixtures import ACCOUNT
from tests.test_import_to_bedrock import (
    ESCROW_SOURCE,
    REGION,
    _Clients,
    _event,
    _metadata,
    _package,
    _settings,
    _stub_fresh_import,
    _stub_model_import,
)

# Every test here uses the Bedrock import tests' `aws`, whose FinQA question comes from a steps.prepare run.
pytestmark = pytest.mark.integration
BUCKET, PREFIX = "example-bucket", "nova-finqa"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:nova-finqa-bedrock-import"

# The Bedrock import tests' fixtures: moto's SageMaker and S3, the real first FinQA question.
aws = bedrock_tests.aws
sagemaker_update_keeps_what_it_is_not_given = bedrock_tests.sagemaker_update_keeps_what_it_is_not_given



@pytest.fixture
def atomic_s3(monkeypatch):
    """S3 decides a conditional write atomically; moto checks the condition, then writes. Its
    handling of one PutObject is made one step here, as S3's is, so that the race is our code's."""
    lock = threading.Lock()
    original = S3Response.put_object

    def put_object(self, *args, **kwargs):
        with lock:
            return original(self, *args, **kwargs)

    monkeypatch.setattr(S3Response, "put_object", put_object)


def _claim_object(s3, package_arn: str):
    try:
        return json.loads(s3.get_object(Bucket=BUCKET, Key=imp.claim_key(PREFIX, package_arn))["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


def test_two_concurrent_invocations_import_once(aws, finqa_question, atomic_s3):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker)
    both_described = threading.Barrier(2, timeout=30)
    creates: list[str] = []
    results: dict[str, dict] = {}
    errors: list[BaseException] = []

    def invocation(request_id: str) -> None:
        try:
            # Each invocation is its own Lambda: its own clients.
            clients = _Clients(boto3.client("sagemaker", region_name=REGION), boto3.client("s3", region_name=REGION))
            waited = []

            def meet(**kwargs):
                # Both have read the package, unclaimed, before either goes on.
                if not waited:
                    waited.append(both_described.wait())

            clients.sagemaker.meta.events.register("after-call.sagemaker.DescribeModelPackage", meet)
            clients.bedrock.meta.events.register("before-parameter-build.bedrock.CreateCustomModel",
                                                 lambda **kwargs: creates.append(request_id))
            with Stubber(clients.bedrock) as bedrock, Stubber(clients.runtime) as runtime:
                _stub_fresh_import(bedrock, runtime, package_arn, finqa_question)
                results[request_id] = imp.handle_event(_event(package_arn), 900, _settings(), clients.importer(),
                                                       request_id=request_id)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=invocation, args=(name,)) for name in ("req-a", "req-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(creates) == 1, f"CreateCustomModel called by {creates}; {results}"
    [winner] = creates
    [loser] = set(results) - {winner}
    assert results[winner]["status"] == imp.DEPLOYED
    # The other found the claim held, or, if the winner had finished by then, the package deployed.
    assert (results[loser]["status"], results[loser]["detail"]) in (
        (imp.SKIPPED, f"import under way by approval hook invocation {winner}"), (imp.DEPLOYED, "already deployed"))
    assert _claim_object(s3, package_arn) is None, "a finished import releases its claim"


def test_an_invocation_that_read_the_package_before_another_finished_imports_nothing(aws, finqa_question):
    """The other order of the same race: B reads the package, A claims, imports, deploys and
    releases its claim, then B claims the free package. B must read it again under its claim."""
    sagemaker, s3 = aws
    package_arn = _package(sagemaker)
    first, late = _Clients(sagemaker, s3), _Clients(boto3.client("sagemaker", region_name=REGION), s3)
    creates: list[str] = []
    for name, clients in (("first", first), ("late", late)):
        clients.bedrock.meta.events.register("before-parameter-build.bedrock.CreateCustomModel",
                                             lambda name=name, **kwargs: creates.append(name))
    finished = []

    def first_runs_to_the_end(**kwargs):
        if not finished:
            finished.append(imp.handle_event(_event(package_arn), 900, _settings(), first.importer(),
                                             request_id="req-first"))

    late.sagemaker.meta.events.register("after-call.sagemaker.DescribeModelPackage", first_runs_to_the_end)
    with Stubber(first.bedrock) as bedrock, Stubber(first.runtime) as runtime, \
            Stubber(late.bedrock), Stubber(late.runtime):  # nothing stubbed for the late one
        _stub_fresh_import(bedrock, runtime, package_arn, finqa_question)
        result = imp.handle_event(_event(package_arn), 900, _settings(), late.importer(), request_id="req-late")
    assert finished[0]["status"] == imp.DEPLOYED
    assert creates == ["first"]
    assert result["status"] == imp.DEPLOYED and result["detail"] == "already deployed"
    assert _claim_object(s3, package_arn) is None


@pytest.mark.parametrize("failure", ["the hand-over cannot be sent", "the hand-overs are used up"])
def test_a_failure_at_the_hand_over_writes_failed_and_releases_the_claim(aws, failure):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker)
    clients = _Clients(sagemaker, s3)
    event = _event(package_arn)
    if failure == "the hand-overs are used up":
        event = {**event, "resume": imp.MAX_LAMBDA_RESUMES, "claim": "req-first"}
    with Stubber(clients.bedrock) as bedrock, Stubber(clients.lambda_) as lambda_:
        _stub_model_import(bedrock, package_arn, ESCROW_SOURCE, model_polls=("Creating",))
        if failure == "the hand-over cannot be sent":
            lambda_.add_client_error("invoke", "TooManyRequestsException", "Rate exceeded", 429)
        with pytest.raises(Exception) as raised:
            # 100 s left: less than the safety margin plus one poll, so the invocation hands over.
            imp.handle_event(event, 100, _settings(), clients.importer(), clients.lambda_, FUNCTION_ARN,
                             "req-first")
    metadata = _metadata(sagemaker, package_arn)
    assert metadata["bedrock_import_status"] == "Failed", metadata
    assert "bedrock_import_claim" not in metadata
    assert metadata["bedrock_import_error"] != "-" and str(raised.value)
    assert _claim_object(s3, package_arn) is None

    # A later approval event is not told that an import is under way.
    later = imp.handle_event(_event(package_arn), 900, _settings(), clients.importer(), request_id="req-later")
    assert later["status"] == imp.SKIPPED and "under way" not in later["detail"]
    assert "earlier import failed" in later["detail"]


def test_a_claim_expires_and_a_live_one_is_respected(aws, finqa_question):
    sagemaker, s3 = aws
    package_arn = _package(sagemaker)
    clients = _Clients(sagemaker, s3)
    # An invocation that died (Lambda's timeout, say) without releasing its claim, long ago.
    assert imp.Claims(s3, BUCKET, PREFIX, now=lambda: 0.0).take(package_arn, "req-dead") is None
    # One that holds a live claim is left alone.
    live = imp.Claims(s3, BUCKET, PREFIX)
    other = _package(sagemaker)
    assert live.take(other, "req-alive") is None
    with Stubber(clients.bedrock), Stubber(clients.runtime):
        skipped = imp.handle_event(_event(other), 900, _settings(), clients.importer(), request_id="req-new")
    assert skipped["status"] == imp.SKIPPED and "invocation req-alive" in skipped["detail"]

    with Stubber(clients.bedrock) as bedrock, Stubber(clients.runtime) as runtime:
        _stub_fresh_import(bedrock, runtime, package_arn, finqa_question)
        taken_over = imp.handle_event(_event(package_arn), 900, _settings(), clients.importer(), request_id="req-new")
        bedrock.assert_no_pending_responses()
    assert taken_over["status"] == imp.DEPLOYED
