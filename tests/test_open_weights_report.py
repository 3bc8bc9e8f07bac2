"""Nova and an open-weights model scored on the same FinQA test records by FinQA's official
verdict (`steps.evaluate`), then reported side by side from files (`scripts.report --from-files`)."""
from __future__ import annotations

import json

from scripts import report
from steps import evaluate
from steps.prepare import OPEN_WEIGHTS_EVAL_FILE, prepare
from tests.nova_output import jsonl, nova_line

LLAMA = "meta-textgeneration-llama-3-2-1b-instruct"


def test_a_report_from_files_puts_nova_and_an_open_model_side_by_side(shared_finqa, tmp_path):
    data = tmp_path / "data"
    prepare(shared_finqa, data, max_eval_records=40, open_weights_technique="sft")
    gen_qa = [json.loads(line) for line in (data / "eval" / "gen_qa.jsonl").read_text().splitlines()]
    open_eval = [json.loads(line) for line in (data / OPEN_WEIGHTS_EVAL_FILE).read_text().splitlines()]

    # Nova's job echoes the metadata; the open model's dataset has none (AWS's OpenAI messages
    # layout), so its lines are matched to the records by their prompt.
    nova_right = {n for n in range(len(gen_qa)) if n % 2 == 0}
    llama_right = {n for n in range(len(gen_qa)) if n % 4 == 0}
    base_right = {n for n in range(len(gen_qa)) if n % 8 == 0}
    (tmp_path / "nova.jsonl").write_text(jsonl(
        nova_line(example, example["response"] if n in nova_right else "Program: add(1, 1)\nAnswer: 2")
        for n, example in enumerate(gen_qa)))
    (tmp_path / "nova_base.jsonl").write_text(jsonl(
        nova_line(example, example["response"] if n in base_right else "Answer: unknown")
        for n, example in enumerate(gen_qa)))

    def open_model_lines(right):
        return jsonl({"prompt": str(row["messages"][:2]),
                      "inference": row["messages"][2]["content"] if n in right else "Answer: unknown"}
                     for n, row in enumerate(open_eval))
    (tmp_path / "llama.jsonl").write_text(open_model_lines(llama_right))
    (tmp_path / "llama_base.jsonl").write_text(open_model_lines(base_right))

    for name, model in (("nova", None), ("llama", LLAMA)):
        argv = ["--predictions", str(tmp_path / f"{name}.jsonl"), "--eval-data", str(data / "eval"),
                "--baseline-predictions", str(tmp_path / f"{name}_base.jsonl"), "--output-dir", str(tmp_path / name)]
        assert evaluate.main(argv + (["--base-model", model] if model else [])) == 0
    llama = json.loads((tmp_path / "llama" / "evaluation.json").read_text())
    assert llama["model"] == LLAMA and "model" not in json.loads((tmp_path / "nova" / "evaluation.json").read_text())
    assert llama["counts"]["matched_by_prompt"] == len(gen_qa)
    assert llama["metrics"]["accuracy"]["metric"] == "execution_accuracy"

    out = tmp_path / "report"
    assert report.main(["--from-files", f"100={tmp_path / 'nova'}", f"100={tmp_path / 'llama'}",
                        "--output-dir", str(out)]) == 0
    table = (out / report.REPORT_NAME).read_text()
    total = len(gen_qa)

    def cell(right):
        return f"{len(right) / total * 100:.1f}%"
    assert table.startswith(f"# Nova vs {LLAMA} on FinQA")
    assert f"| Base Nova Lite | 0 | {cell(base_right)} |" in table
    assert f"| Base {LLAMA} | 0 | {cell(base_right)} |" in table
    assert f"| run 1 | 100 | {cell(nova_right)} | {len(nova_right)}/{total} |" in table
    assert f"| run 2 ({LLAMA}) | 100 | {cell(llama_right)} | {len(llama_right)}/{total} |" in table
    bars = [(label.replace("\n", " "), value) for label, value, _ in
            report.chart_bars(report.results_from_files([str(tmp_path / "nova"), str(tmp_path / "llama")]))]
    assert [label for label, _ in bars] == ["Base Nova Lite", f"Base {LLAMA}", "size unknown", f"{LLAMA} size unknown"]
    assert (out / report.CHART_NAME).stat().st_size > 0
