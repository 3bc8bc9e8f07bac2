"""Predictions written the way a Nova evaluation job writes its inference_output.jsonl."""
from __future__ import annotations

import json


def nova_line(example: dict, inference, *, metadata: bool = True) -> dict:
    """One inference_output.jsonl line for a gen_qa record: the conversation as the job renders
    it, the model's text, the gold response, and the echoed metadata."""
    prompt = str([{"role": "system", "content": example["system"]}, {"role": "user", "content": example["query"]}])
    line = {"prompt": prompt, "inference": inference, "gold": example["response"]}
    if metadata:
        line["metadata"] = example["metadata"]
    return line


def jsonl(lines) -> str:
    return "".join(json.dumps(line) + "\n" for line in lines)
