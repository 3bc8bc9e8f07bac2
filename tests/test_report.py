"""`python -m scripts.report`: from the Model Registry (moto, and moto_server end to end)
and from local evaluation.json files. Every accuracy here is a made-up test value, chosen
to be recognisable (0.25, 0.5, ...), never a measurement."""
from __future__ import annotations

import json

import boto3
import numpy
import pytest
from moto import mock_aws
from PIL import Image

from scripts import report
from tests.aws_fixtures import ACCOUNT, run_cli

REGION = "us-east-1"
GROUP = "nova-finqa"
BLUE, GREY = (0x1F, 0x77, 0xB4), (0x9E, 0x9E, 0x9E)


def evaluation_json(accuracy: float, baseline: float | None, correct: int = 0, scored: int = 0,
                    total: int | None = None) -> dict:
    """The shape steps.evaluate writes (only the parts the report reads, plus counts)."""
    metric = {"value": accuracy, "correct": correct, "scored": scored, "total": scored if total is None else total}
    return {
        "metrics": {"accuracy": {"value": accuracy, "metric": "execution_accuracy"},
                    "execution_accuracy": metric, "answer_accuracy": metric},
        "primary_metric": "execution_accuracy",
        "counts": {"eval_records": scored},
        "baseline": None if baseline is None else {"metrics": {"execution_accuracy": {"value": baseline},
                                                                "answer_accuracy": {"value": baseline}}},
    }


def _chart_pixels(path):
    image = Image.open(path)
    image.load()
    assert image.size == (800, 450)
    pixels = numpy.asarray(image.convert("RGB"), dtype=numpy.int16)
    assert pixels.std() > 10, "the chart is blank"
    return pixels


def _count(pixels, colour) -> int:
    return int((numpy.abs(pixels - numpy.array(colour)).sum(axis=2) < 6).sum())


@pytest.fixture
def registry():
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        s3 = boto3.client("s3", region_name=REGION)
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        s3.create_bucket(Bucket="example-bucket")
        yield sagemaker, s3


def _register(sagemaker, metadata: dict, statistics_uri: str | None = None) -> None:
    request = {"ModelPackageGroupName": GROUP, "ModelApprovalStatus": "PendingManualApproval",
               "InferenceSpecification": {"Containers": [{"Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/n:1"}],
                                          "SupportedContentTypes": ["application/json"],
                                          "SupportedResponseMIMETypes": ["application/json"]}}
    if metadata:
        request["CustomerMetadataProperties"] = metadata
    if statistics_uri:
        request["ModelMetrics"] = {"ModelQuality": {"Statistics": {
            "ContentType": "application/json", "S3Uri": statistics_uri}}}
    sagemaker.create_model_package(**request)


def _fill_registry(sagemaker, s3) -> None:
    _register(sagemaker, {"train_records": "100", "accuracy": "0.5", "baseline_accuracy": "0.25",
                          "training_job": "train-small", "epochs": "2", "learning_rate": "1e-05", "lora_alpha": "128"})
    s3.put_object(Bucket="example-bucket", Key="runs/big/evaluation.json",
                  Body=json.dumps(evaluation_json(0.75, 0.25, correct=3, scored=4)).encode())
    _register(sagemaker, {"train_records": "6000", "training_job": "train-big"},
              "s3://example-bucket/runs/big/evaluation.json")
    _register(sagemaker, {"train_records": "300"})
    _register(sagemaker, {"train_records": "1000"}, "s3://example-bucket/runs/gone/evaluation.json")


def test_registry_report_table_and_chart(registry, tmp_path, capsys):
    sagemaker, s3 = registry
    _fill_registry(sagemaker, s3)
    assert report.main(["--output-dir", str(tmp_path)]) == 0
    assert "without metrics: v3, v4" in capsys.readouterr().err
    table = (tmp_path / report.REPORT_NAME).read_text()
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in table.splitlines()
            if line.startswith("| ") and not line.startswith("| Model")}
    assert rows["Base Nova Lite"][1:3] == ["0", "25.0%"]
    assert rows["v1"][1:3] == ["100", "50.0%"]
    assert rows["v2"][1:4] == ["6,000", "75.0%", "3/4"]
    assert rows["v3"][2] == "no metrics" and "neither an accuracy" in rows["v3"][10]
    assert rows["v4"][2] == "no metrics" and "runs/gone/evaluation.json cannot be read" in rows["v4"][10]
    assert "execution_accuracy" in table and report.CHART_NAME in table
    pixels = _chart_pixels(tmp_path / report.CHART_NAME)
    blue, grey = _count(pixels, BLUE), _count(pixels, GREY)
    # Bar areas follow the values: two tuned bars (0.5 + 0.75) against one base bar (0.25).
    assert grey > 0 and 4.0 < blue / grey < 6.0
    labels = [label for label, _, _ in report.chart_bars(report.results_from_registry(sagemaker, s3, GROUP))]
    assert labels == ["Base\nNova Lite", "100 records\n2 epochs\nlr 1e-05\nalpha 128", "6,000 records"]


def test_chart_orders_bars_by_training_set_size_and_labels_them_by_size_and_recipe():
    results = [report.Result("v2", 6000, 0.75, 0.25), report.Result("v1", 100, 0.5, 0.25, recipe="1 epochs, lr 2e-05"),
               report.Result("v3", None, 0.5), report.Result("v4", 300, None),
               report.Result("v5", 6000, 0.7), report.Result("v6", None, 0.4)]
    assert [(label.replace("\n", " "), value) for label, value, _ in report.chart_bars(results)] == [
        ("Base Nova Lite", 0.25), ("100 records 1 epochs lr 2e-05", 0.5),
        # alike in size and recipe: told apart by their names in the table
        ("6,000 records (v2)", 0.75), ("6,000 records (v5)", 0.7),
        ("size unknown (v3)", 0.5), ("size unknown (v6)", 0.4)]


def test_a_base_model_at_zero_percent_still_has_a_bar(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "evaluation.json").write_text(json.dumps(evaluation_json(0.5, 0.0, 2, 4)))
    assert report.main(["--from-files", f"100={tmp_path / 'run'}", "--output-dir", str(tmp_path / "out")]) == 0
    assert "| Base Nova Lite | 0 | 0.0% |" in (tmp_path / "out" / report.REPORT_NAME).read_text()
    pixels = _chart_pixels(tmp_path / "out" / report.CHART_NAME)
    assert _count(pixels, GREY) > 100


def test_from_files_works_offline(tmp_path):
    for name, accuracy, correct, scored, total in (("base-run", 0.5, 2, 4, 4), ("big-run", 0.75, 3, 3, 4)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "evaluation.json").write_text(
            json.dumps(evaluation_json(accuracy, 0.25, correct, scored, total)))
    out = tmp_path / "out"
    code = report.main(["--from-files", f"100={tmp_path / 'base-run'}",
                        f"6000={tmp_path / 'big-run' / 'evaluation.json'}", "--output-dir", str(out)])
    assert code == 0
    table = (out / report.REPORT_NAME).read_text()
    assert "| run 1 | 100 | 50.0% | 2/4 |" in table and f"from {tmp_path / 'base-run' / 'evaluation.json'}" in table
    # one of big-run's 4 test records had no prediction: it counts in the denominator
    assert "| run 2 | 6,000 | 75.0% | 3/4 |" in table
    assert "| Base Nova Lite | 0 | 25.0% |" in table
    assert "Accuracy metric: execution_accuracy." in table, "the metric the files name, not 'as registered'"
    _chart_pixels(out / report.CHART_NAME)


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not JSON (Expecting property name"),
    (json.dumps({"metrics": {}}), "has no metrics.accuracy.value (is it steps.evaluate's evaluation.json?)"),
    (b"\xff\xfe", "cannot be read ('utf-8' codec can't decode"),
], ids=["not-json", "no-accuracy", "not-utf8"])
def test_a_file_that_is_not_an_evaluation_is_refused_with_its_name(tmp_path, capsys, content, message):
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "evaluation.json").write_text(json.dumps(evaluation_json(0.5, 0.25, 2, 4)))
    bad = tmp_path / "broken.json"
    bad.write_bytes(content if isinstance(content, bytes) else content.encode())
    out = tmp_path / "out"
    assert report.main(["--from-files", str(tmp_path / "good"), str(bad), "--output-dir", str(out)]) == 2
    error = capsys.readouterr().err
    assert f"--from-files: {bad} " in error and message in error
    assert "pass the evaluation.json that steps.evaluate wrote, or leave the file out" in error
    assert not out.exists(), "nothing written"


def test_a_folder_of_runs_is_read_as_runs_and_a_folder_without_one_is_refused(tmp_path, capsys):
    for name, accuracy in (("a/job-1", 0.5), ("b", 0.75)):
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "evaluation.json").write_text(json.dumps(evaluation_json(accuracy, 0.25, 1, 2)))
    results = report.results_from_files([str(tmp_path / "runs")])
    assert [(r.label, r.accuracy, r.note) for r in results] == [
        ("run 1", 0.5, f"from {tmp_path / 'runs' / 'a' / 'job-1' / 'evaluation.json'}"),
        ("run 2", 0.75, f"from {tmp_path / 'runs' / 'b' / 'evaluation.json'}")]
    assert all("job-1" not in label and "runs" not in label for label, _, _ in report.chart_bars(results))
    (tmp_path / "empty" / "logs").mkdir(parents=True)
    out = ["--output-dir", str(tmp_path / "out")]
    assert report.main(["--from-files", str(tmp_path / "empty"), *out]) == 2
    assert f"{tmp_path / 'empty'}" in (error := capsys.readouterr().err) and "holds no evaluation.json" in error
    assert report.main(["--from-files", f"100={tmp_path / 'runs'}", *out]) == 2
    assert "2 runs in the folder and one training-set size" in capsys.readouterr().err
    assert report.main(["--from-files", f"100={tmp_path / 'missing.json'}", *out]) == 2
    assert f"{tmp_path / 'missing.json'} does not exist" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_no_metrics_anywhere_gives_a_table_and_no_chart(tmp_path):
    (tmp_path / report.CHART_NAME).write_bytes(b"stale")
    results = [report.Result("v1", 100, None, note="no metrics: statistics unreadable")]
    report.write_report(results, tmp_path, "Model Registry group g (us-east-1)")
    table = (tmp_path / report.REPORT_NAME).read_text()
    assert "No chart" in table and "Accuracy metric: as registered (see the metadata key accuracy)." in table
    assert not (tmp_path / report.CHART_NAME).exists()


def test_a_bad_training_size_is_an_error(tmp_path, capsys):
    assert report.main(["--from-files", f"many={tmp_path}", "--output-dir", str(tmp_path)]) == 2
    assert "not a whole number" in capsys.readouterr().err


def test_report_end_to_end_against_moto_server(moto_server, tmp_path):
    sagemaker = boto3.client("sagemaker", region_name=REGION, endpoint_url=moto_server)
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_server)
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    s3.create_bucket(Bucket="example-bucket")
    _fill_registry(sagemaker, s3)
    result = run_cli("scripts.report", ["--output-dir", str(tmp_path)], moto_server,
                     {"NOVA_MODEL_PACKAGE_GROUP": GROUP})
    assert result.returncode == 0, result.stderr
    assert "| v2 | 6,000 | 75.0% | 3/4 |" in (tmp_path / report.REPORT_NAME).read_text()
    _chart_pixels(tmp_path / report.CHART_NAME)


def test_a_registry_that_cannot_be_read_is_named_with_its_region(tmp_path, capsys):
    from botocore.stub import Stubber

    sagemaker = boto3.client("sagemaker", region_name="eu-west-1")

    class _Session:
        def client(self, name):
            return sagemaker if name == "sagemaker" else boto3.client(name, region_name="eu-west-1")

    with Stubber(sagemaker) as stubber:
        stubber.add_client_error("list_model_packages", service_error_code="AccessDeniedException",
                                 service_message="not authorized", http_status_code=400)
        code = report.main(["--region", "eu-west-1", "--output-dir", str(tmp_path)], session=_Session())
    assert code == 1
    said = capsys.readouterr().err
    assert "reading the Model Registry group nova-finqa in eu-west-1 failed" in said and "AccessDeniedException" in said
