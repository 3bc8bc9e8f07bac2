"""The preparation step, run as the processing container runs it: a subprocess on files."""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from steps.finqa.nova import check_conversation, check_conversation_lines, check_gen_qa_lines, conversation_line
from steps.finqa.prompts import RESERVED_STRINGS, SYSTEM_PROMPT, estimate_tokens, find_reserved
from steps.finqa.records import FinQAFileError, read_rows
from tests.conftest import PROJECT_ROOT

OUTPUTS = ("train/train.jsonl", "validation/validation.jsonl", "eval/gen_qa.jsonl", "report/data_report.json")


def run_prepare(input_dir: Path, output_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "steps.prepare", "--input-dir", str(input_dir), "--output-dir", str(output_dir), *args],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def read_report(output_dir: Path) -> dict:
    return json.loads((output_dir / "report/data_report.json").read_text())


def load(path: Path) -> list[dict]:
    return json.loads(path.read_text())


def squash(text: str) -> str:
    return " ".join(text.split())


def expected_target(qa: dict) -> str:
    answer = qa["answer"].strip()
    if not answer:
        exe = qa["exe_ans"]
        answer = exe if isinstance(exe, str) else (str(int(exe)) if float(exe).is_integer() else repr(float(exe)))
    return f"Program: {qa['program']}\nAnswer: {answer}"


def assert_prompt_carries(prompt: str, source: dict) -> None:
    """Everything the model needs from the source record is in the prompt, in order."""
    flat = squash(prompt)
    position = 0
    for sentence in source["pre_text"]:
        if sentence.strip():
            position = flat.index(squash(sentence), position)
    for row in source["table"]:
        for cell in row:
            if cell.strip():
                position = flat.index(squash(cell), position)
    for sentence in source["post_text"]:
        if sentence.strip():
            position = flat.index(squash(sentence), position)
    assert flat.endswith("Question: " + squash(source["qa"]["question"]))


@pytest.fixture(scope="module")
def shared_output(shared_finqa, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("prepared")
    result = run_prepare(shared_finqa, output)
    assert result.returncode == 0, result.stderr
    return output


@pytest.mark.integration
def test_every_shared_training_record_is_converted_faithfully(shared_finqa, shared_output):
    for source_name, output_name in (("train_100.json", "train/train.jsonl"),
                                     ("dev_200.json", "validation/validation.jsonl")):
        sources = load(shared_finqa / source_name)
        written = read_jsonl(shared_output / output_name)
        assert len(written) == len(sources)
        for source, record in zip(sources, written):
            assert record["schemaVersion"] == "bedrock-conversation-2024"
            assert record["system"] == [{"text": SYSTEM_PROMPT}]
            user, assistant = record["messages"]
            assert (user["role"], assistant["role"]) == ("user", "assistant")
            assert_prompt_carries(user["content"][0]["text"], source)
            assert assistant["content"][0]["text"] == expected_target(source["qa"])
        check_conversation_lines((shared_output / output_name).read_text().splitlines(), 8192, output_name,
                                 training=output_name.startswith("train"))


@pytest.mark.integration
def test_every_shared_test_record_becomes_a_gen_qa_record_the_scorer_can_use_alone(shared_finqa, shared_output):
    sources = load(shared_finqa / "test_100.json")
    lines = (shared_output / "eval/gen_qa.jsonl").read_text().splitlines()
    check_gen_qa_lines(lines, "gen_qa.jsonl")
    assert len(lines) == len(sources)
    for source, line in zip(sources, lines):
        record = json.loads(line)
        assert set(record) == {"system", "query", "response", "metadata"}
        assert record["system"] == SYSTEM_PROMPT
        assert_prompt_carries(record["query"], source)
        assert record["response"] == expected_target(source["qa"])
        metadata = json.loads(record["metadata"])
        assert metadata["id"] == source["id"]
        assert metadata["program"] == source["qa"]["program"]
        assert metadata["exe_ans"] == source["qa"]["exe_ans"]
        assert metadata["answer"] == source["qa"]["answer"]
        assert metadata["table"] == source["table"]


@pytest.mark.integration
def test_report_counts_match_the_files(shared_output):
    report = read_report(shared_output)
    for split, path, count in (("train", "train/train.jsonl", 100), ("validation", "validation/validation.jsonl", 200),
                               ("test", "eval/gen_qa.jsonl", 100)):
        entry = report["splits"][split]
        assert entry["read"] == entry["written"] == count
        assert entry["skipped_total"] == 0
        assert len((shared_output / path).read_text().splitlines()) == count
        tokens = entry["estimated_tokens"]
        assert 0 < tokens["p50"] <= tokens["p90"] <= tokens["p95"] <= tokens["p99"] <= tokens["max"] <= 8192


@pytest.mark.integration
def test_the_sample_shipped_in_the_project_converts(sample_finqa, tmp_path):
    result = run_prepare(sample_finqa, tmp_path)
    assert result.returncode == 0, result.stderr
    report = read_report(tmp_path)
    assert [report["splits"][s]["written"] for s in ("train", "validation", "test")] == [20, 10, 10]
    check_conversation_lines((tmp_path / "train/train.jsonl").read_text().splitlines(), 8192, "train", training=True)
    assert "train: read 20, wrote 20" in result.stdout


def digests(output_dir: Path) -> dict[str, str]:
    return {name: hashlib.sha256((output_dir / name).read_bytes()).hexdigest() for name in OUTPUTS}


@pytest.mark.integration
def test_sampling_is_seeded_and_reproducible_to_the_byte(shared_finqa, tmp_path):
    runs = {}
    for name, seed in (("first", "7"), ("again", "7"), ("other_seed", "8")):
        result = run_prepare(shared_finqa, tmp_path / name, "--max-train-records", "50", "--max-eval-records", "30",
                             "--seed", seed)
        assert result.returncode == 0, result.stderr
        runs[name] = digests(tmp_path / name)
    assert runs["first"] == runs["again"]
    assert runs["first"]["train/train.jsonl"] != runs["other_seed"]["train/train.jsonl"]

    source_targets = {expected_target(r["qa"]) for r in load(shared_finqa / "train_100.json")}
    sampled = read_jsonl(tmp_path / "first/train/train.jsonl")
    assert len(sampled) == 50
    assert {r["messages"][1]["content"][0]["text"] for r in sampled} <= source_targets
    report = read_report(tmp_path / "first")
    assert report["splits"]["train"]["sampled_out"] == 50
    assert report["splits"]["test"]["written"] == 30
    assert len({json.loads(r["metadata"])["id"] for r in read_jsonl(tmp_path / "first/eval/gen_qa.jsonl")}) == 30


def write_splits(folder: Path, train: list, dev: list, test: list) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, records in (("train.json", train), ("dev.json", dev), ("test.json", test)):
        (folder / name).write_text(json.dumps(records))
    return folder


@pytest.fixture
def small(sample_finqa) -> dict[str, list]:
    return {name: load(sample_finqa / f"{name}.json") for name in ("train", "dev", "test")}


def assert_no_outputs(output_dir: Path) -> None:
    leftovers = [p for p in output_dir.rglob("*") if p.is_file()] if output_dir.exists() else []
    assert leftovers == [], f"a failed run left files behind: {leftovers}"


@pytest.mark.integration
def test_broken_json_is_an_error_naming_the_file_and_writes_nothing(small, tmp_path):
    data = write_splits(tmp_path / "in", small["train"], small["dev"], small["test"])
    (data / "train.json").write_text(json.dumps(small["train"])[:-500])
    result = run_prepare(data, tmp_path / "out")
    assert result.returncode == 1
    assert "train.json" in result.stderr and "not valid JSON" in result.stderr
    assert_no_outputs(tmp_path / "out")


@pytest.mark.parametrize("text", [
    "[]", " [ ] ", "[1, 2 ,3]\n", '\ufeff[{"a": [1, {"b": null}]}, "x"]', "\n[\n1\n,\n2\n]\n", "[NaN]",
    "[1,]", "[,1]", "[1 2]", "[1", "[1]x", "[", "[1]]", "[{]",
])
def test_a_json_array_file_is_read_item_by_item_exactly_as_json_reads_it(tmp_path, text):
    path = tmp_path / "train.json"
    path.write_text(text, encoding="utf-8")
    try:
        expected = json.loads(text.lstrip("\ufeff"))
    except json.JSONDecodeError as error:
        with pytest.raises(FinQAFileError, match=f"train.json: not valid JSON .*char {error.pos}"):
            list(read_rows(path))
    else:
        assert repr(list(read_rows(path))) == repr(expected)


@pytest.mark.integration
def test_records_missing_fields_are_skipped_counted_and_named(small, tmp_path):
    train = [dict(r) for r in small["train"]]
    train[0] = {**train[0], "qa": {**train[0]["qa"], "question": ""}}
    train[1] = {**train[1], "qa": {**train[1]["qa"], "answer": "", "exe_ans": None}}
    train[2] = {k: v for k, v in train[2].items() if k != "qa"}
    train[3] = {**train[3], "qa": {**train[3]["qa"], "answer": ""}}
    train[4] = dict(train[5])
    data = write_splits(tmp_path / "in", train, small["dev"], small["test"])

    result = run_prepare(data, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    entry = read_report(tmp_path / "out")["splits"]["train"]
    assert entry["skipped"] == {"duplicate_id": 1, "missing_answer": 1, "missing_question": 2}
    assert entry["read"] == 20 and entry["written"] == 16
    problems = "\n".join(entry["problems"])
    for record in (train[0], train[1], train[2]):
        assert record["id"] in problems
    assert "train.json record 0" in problems
    written = read_jsonl(tmp_path / "out/train/train.jsonl")
    answer_from_exe = [r for r in written if r["messages"][1]["content"][0]["text"] == expected_target(train[3]["qa"])]
    assert len(answer_from_exe) == 1 and not train[3]["qa"]["answer"]

    strict = run_prepare(data, tmp_path / "strict", "--strict")
    assert strict.returncode == 1
    assert "train.json record 0" in strict.stderr and "question" in strict.stderr
    assert_no_outputs(tmp_path / "strict")


@pytest.mark.integration
def test_records_with_fields_of_the_wrong_type_are_skipped_not_stringified(small, tmp_path):
    train = [dict(r) for r in small["train"]]
    train[0] = {**train[0], "qa": {**train[0]["qa"], "answer": {"value": 1}}}
    train[1] = {**train[1], "id": ["a", "list"]}
    train[2] = {**train[2], "pre_text": ["a sentence", None]}
    train[3] = {**train[3], "table": [{"cell": "a"}]}
    train[4] = {**train[4], "qa": {**train[4]["qa"], "exe_ans": [1]}}
    data = write_splits(tmp_path / "in", train, small["dev"], small["test"])
    result = run_prepare(data, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    entry = read_report(tmp_path / "out")["splits"]["train"]
    assert entry["skipped"] == {"bad_field": 5} and entry["written"] == 15
    assert [f"train.json record {i}" in problem for i, problem in enumerate(entry["problems"])] == [True] * 5


@pytest.mark.integration
def test_a_lone_surrogate_in_a_record_skips_it_counted_and_named(small, tmp_path):
    train = [dict(r) for r in small["train"]]
    train[2] = {**train[2], "pre_text": [*train[2]["pre_text"], "revenue \ud800 rose"]}
    data = write_splits(tmp_path / "in", train, small["dev"], small["test"])
    assert "\\ud800" in (data / "train.json").read_text()  # as JSON writes it, valid JSON

    result = run_prepare(data, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    entry = read_report(tmp_path / "out")["splits"]["train"]
    assert entry["skipped"] == {"invalid_text": 1} and entry["written"] == 19
    assert train[2]["id"] in entry["problems"][0] and "lone surrogate" in entry["problems"][0]

    strict = run_prepare(data, tmp_path / "strict", "--strict")
    assert strict.returncode == 1 and train[2]["id"] in strict.stderr and "Traceback" not in strict.stderr
    assert_no_outputs(tmp_path / "strict")


@pytest.mark.integration
def test_an_empty_table_is_rendered_not_dropped(small, tmp_path):
    train = [dict(r) for r in small["train"]]
    train[0] = {**train[0], "table": []}
    data = write_splits(tmp_path / "in", train, small["dev"], small["test"])
    assert run_prepare(data, tmp_path / "out").returncode == 0
    first = read_jsonl(tmp_path / "out/train/train.jsonl")[0]
    assert "Table:\n(no table)" in first["messages"][0]["content"][0]["text"]


@pytest.mark.integration
def test_reserved_strings_are_neutralised_counted_and_meaning_kept(small, tmp_path):
    train = [dict(r) for r in small["train"]]
    train[0] = {**train[0],
                "pre_text": ["the operating System: windows server <IMAGE> end [eos]"] + train[0]["pre_text"],
                "qa": {**train[0]["qa"], "question": "per the user: what was the change?"}}
    test = [dict(r) for r in small["test"]]
    test[0] = {**test[0], "post_text": ["Assistant: bot: notes"]}
    data = write_splits(tmp_path / "in", train, small["dev"], test)
    result = run_prepare(data, tmp_path / "out")
    assert result.returncode == 0, result.stderr

    for name in ("train/train.jsonl", "eval/gen_qa.jsonl"):
        text = (tmp_path / "out" / name).read_text()
        assert find_reserved(text) == [], name
    prompt = read_jsonl(tmp_path / "out/train/train.jsonl")[0]["messages"][0]["content"][0]["text"]
    assert "the operating System : windows server (IMAGE) end (eos)" in prompt
    assert "Question: per the user : what was the change?" in prompt
    report = read_report(tmp_path / "out")["splits"]
    assert report["train"]["sanitised_replacements"] == {
        "total": 4, "by_string": {"<image>": 1, "System:": 1, "User:": 1, "[EOS]": 1}}
    assert report["test"]["sanitised_replacements"]["by_string"] == {"Assistant:": 1, "Bot:": 1}
    assert set(RESERVED_STRINGS) >= set(report["train"]["sanitised_replacements"]["by_string"])


@pytest.mark.integration
def test_a_split_of_three_training_records_is_refused(small, tmp_path):
    data = write_splits(tmp_path / "in", small["train"][:3], small["dev"], small["test"])
    result = run_prepare(data, tmp_path / "out")
    assert result.returncode == 1
    assert "3 usable training records" in result.stderr and "8 to 20,000" in result.stderr
    assert_no_outputs(tmp_path / "out")


@pytest.mark.integration
def test_a_missing_split_is_named(small, tmp_path):
    data = write_splits(tmp_path / "in", small["train"], small["dev"], small["test"])
    (data / "test.json").unlink()
    result = run_prepare(data, tmp_path / "out")
    assert result.returncode == 1
    assert "no data for split(s) test" in result.stderr
    assert_no_outputs(tmp_path / "out")


@pytest.mark.integration
def test_over_long_records_are_skipped_and_counted_never_truncated(shared_finqa, tmp_path):
    result = run_prepare(shared_finqa, tmp_path, "--max-length", "2048")
    assert result.returncode == 0, result.stderr
    entry = read_report(tmp_path)["splits"]["train"]
    assert entry["skipped"]["over_max_length"] > 0
    assert entry["written"] + entry["skipped"]["over_max_length"] == 100
    assert entry["estimated_tokens"]["max"] <= 2048
    sources = {expected_target(r["qa"]): r for r in load(shared_finqa / "train_100.json")}
    for record in read_jsonl(tmp_path / "train/train.jsonl"):
        assert_prompt_carries(record["messages"][0]["content"][0]["text"],
                              sources[record["messages"][1]["content"][0]["text"]])


@pytest.mark.integration
def test_jsonl_input_with_a_broken_line_counts_it(small, tmp_path):
    data = write_splits(tmp_path / "in", small["train"], small["dev"], small["test"])
    (data / "train.json").unlink()
    lines = [json.dumps(r) for r in small["train"]]
    lines[4] = lines[4][:100]
    (data / "train.jsonl").write_text("\n".join(lines) + "\n")
    result = run_prepare(data, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    entry = read_report(tmp_path / "out")["splits"]["train"]
    assert entry["skipped"] == {"invalid_json": 1} and entry["written"] == 19
    assert "train.jsonl line 5" in entry["problems"][0]


@pytest.mark.parametrize("flag,value", [("--max-length", "ten"), ("--max-train-records", "0"),
                                        ("--max-train-records", "ten"), ("--max-train-records", "5"),
                                        ("--max-eval-records", "-1"), ("--accuracy-threshold", "5"),
                                        ("--accuracy-threshold", "half")])
@pytest.mark.integration
def test_bad_options_are_usage_errors(sample_finqa, tmp_path, flag, value):
    result = run_prepare(sample_finqa, tmp_path, flag, value)
    assert result.returncode == 2
    assert flag in result.stderr
    assert_no_outputs(tmp_path)


@pytest.mark.parametrize("value", ["1000", "16384"])
@pytest.mark.integration
def test_a_max_length_the_recipe_does_not_take_is_refused_before_reading_data(sample_finqa, tmp_path, value):
    result = run_prepare(sample_finqa, tmp_path, "--max-length", value)
    assert result.returncode == 1
    assert f"max_length (parameter MaxLength) {value} is not allowed" in result.stderr
    assert_no_outputs(tmp_path)


@pytest.mark.integration
def test_empty_limit_means_every_record(sample_finqa, tmp_path):
    result = run_prepare(sample_finqa, tmp_path, "--max-train-records", "", "--max-eval-records", "all")
    assert result.returncode == 0, result.stderr
    assert read_report(tmp_path)["splits"]["train"]["written"] == 20


@pytest.mark.integration
def test_a_rerun_replaces_earlier_outputs_and_a_failed_one_leaves_none(small, tmp_path):
    data = write_splits(tmp_path / "in", small["train"], small["dev"], small["test"])
    assert run_prepare(data, tmp_path / "out").returncode == 0
    (data / "train.json").write_text(json.dumps(small["train"][:3]))
    assert run_prepare(data, tmp_path / "out").returncode == 1
    assert_no_outputs(tmp_path / "out")


@pytest.mark.integration
def test_token_estimate_is_above_four_characters_a_token(shared_finqa, shared_output):
    for record in read_jsonl(shared_output / "train/train.jsonl"):
        text = record["messages"][0]["content"][0]["text"]
        assert estimate_tokens(text) >= len(text.encode()) / 4


@pytest.mark.integration
def test_split_files_are_found_in_hugging_face_parquet_folders(small, tmp_path):
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    data = tmp_path / "in"
    for split, records in (("train", small["train"]), ("validation", small["dev"]), ("test", small["test"])):
        folder = data / "default" / split
        folder.mkdir(parents=True)
        rows = [{"id": r["id"], "pre_text": r["pre_text"], "post_text": r["post_text"], "table": r["table"],
                 "question": r["qa"]["question"], "answer": r["qa"]["answer"],
                 "final_result": str(r["qa"]["exe_ans"]), "program_re": r["qa"]["program_re"]} for r in records]
        pq.write_table(pyarrow.Table.from_pylist(rows), folder / "0000.parquet")
    (data / "README.md").write_text("not data")
    result = run_prepare(data, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    report = read_report(tmp_path / "out")
    assert report["splits"]["train"]["input_files"] == ["default/train/0000.parquet"]
    written = read_jsonl(tmp_path / "out/train/train.jsonl")
    for source, record in zip(small["train"], written):
        assert_prompt_carries(record["messages"][0]["content"][0]["text"], source)
        assert record["messages"][1]["content"][0]["text"].startswith("Program: ")
    gen_qa = [json.loads(r["metadata"]) for r in read_jsonl(tmp_path / "out/eval/gen_qa.jsonl")]
    assert [m["id"] for m in gen_qa] == [r["id"] for r in small["test"]]
    assert [m["exe_ans"] for m in gen_qa] == [r["qa"]["exe_ans"] for r in small["test"]]


@pytest.mark.integration
def test_hugging_face_jsonl_rows_are_read(small, tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    for name, records in (("train.jsonl", small["train"]), ("validation.jsonl", small["dev"]),
                          ("test.jsonl", small["test"])):
        rows = [{"id": r["id"], "pre_text": r["pre_text"], "post_text": r["post_text"], "table": r["table"],
                 "question": r["qa"]["question"], "answer": r["qa"]["answer"],
                 "final_result": r["qa"]["exe_ans"], "program_re": r["qa"]["program_re"]} for r in records]
        (data / name).write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = run_prepare(data, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert read_report(tmp_path / "out")["splits"]["validation"]["written"] == 10


@pytest.mark.parametrize("text,tokens", [
    ("", 0), ("a", 1), ("abcd", 2), ("abcdefgh", 3), ("123", 2), ("1234", 2), ("a1", 2), (" , ", 1),
    ("é", 2), ("hello world 2024 , 34.7%", 12),
])
def test_token_estimate_counts_words_numbers_and_other_characters(text, tokens):
    assert estimate_tokens(text) == tokens


def estimate_by_the_rule(text: str) -> int:
    """The estimate's rule, spelt out with regular expressions: the reference for the fast one."""
    words = re.findall(r"[A-Za-z]+", text)
    numbers = re.findall(r"[0-9]+", text)
    others = re.sub(r"[A-Za-z0-9 \t\n\r\x0b\x0c]", "", text).encode("utf-8")
    twelfths = sum(3 * len(w) + 9 for w in words) + sum(4 * len(n) + 8 for n in numbers) + 12 * len(others)
    return -(-twelfths // 12)


@pytest.mark.integration
def test_token_estimate_follows_its_rule_on_every_rendered_text(shared_finqa, shared_output):
    texts = [SYSTEM_PROMPT]
    for record in read_jsonl(shared_output / "train/train.jsonl"):
        texts.extend(message["content"][0]["text"] for message in record["messages"])
    long_text = " ".join(texts)  # longer than the precomputed mask of the fast estimate
    assert len(long_text.encode()) > 1 << 16
    for text in [*texts, long_text, "Ünïcode 12ab34 \u2014 x\ty\n", "\xa0a b\u3000c"]:
        assert estimate_tokens(text) == estimate_by_the_rule(text), text[:80]


def test_a_conversation_line_is_the_json_of_the_record():
    user = 'Ünïcode \u2014 "quoted" \\ back\tslash\nnew line \U0001F4B0 \x00'
    line = conversation_line(SYSTEM_PROMPT, user, "Program: divide(1, 2)\nAnswer: 0.5")
    assert line.endswith("}\n") and line.count("\n") == 1 and line.isascii()
    record = json.loads(line)
    assert record == {
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": SYSTEM_PROMPT}],
        "messages": [{"role": "user", "content": [{"text": user}]},
                     {"role": "assistant", "content": [{"text": "Program: divide(1, 2)\nAnswer: 0.5"}]}],
    }
    assert check_conversation(record, 8192) > 0


def test_table_cells_are_one_line_each_and_short_rows_padded():
    from steps.finqa.prompts import render_table

    assert render_table((("year", "2019", "2018"), (" sales ", "1,2\n34", ""), ("net  income",))) == (
        "| year | 2019 | 2018 |\n|---|---|---|\n| sales | 1,2 34 | - |\n| net income | - | - |")
    assert render_table(()) == "(no table)"
