"""HMG pair mode: model A is a separate checkpoint that sees the same (left-truncated) sample as model B."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from conftest import build_tiny_model
from transformers import AutoModelForCausalLM

from gateau.cli import main
from gateau.data import Sample
from gateau.prompt import PromptEncoder
from naive import response_nll


def test_pair_mode_scores_each_model_on_the_full_sample(tmp_path, tiny_tokenizer, tiny_model_dir):
    short_dir = tmp_path / "short"
    build_tiny_model("llama", len(tiny_tokenizer), seed=7).save_pretrained(short_dir)
    tiny_tokenizer.save_pretrained(short_dir)
    record = {"id": "a", "context": "The red harbour keeps 2210 boats. " * 12, "instruction": "How many boats?",
              "response": "It keeps 2210 boats."}
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps(record) + "\n")
    run = tmp_path / "run"
    assert main(["score", str(data), "--out", str(run), "--methods", "hmg", "--long-model", str(tiny_model_dir),
                 "--short-model", str(short_dir), "--max-length", "100", "--no-progress"]) == 0
    row = pq.read_table(run / "scores.parquet").to_pylist()[0]
    enc = PromptEncoder(tiny_tokenizer, "plain", 100).encode(Sample(0, "a", record["context"], record["instruction"],
                                                                   record["response"]))
    assert enc.truncated > 0 and row["n_truncated"] == enc.truncated  # both models see the same left-truncated row
    ids, start = enc.row()
    long_model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    short_model = AutoModelForCausalLM.from_pretrained(short_dir).eval()
    assert row["nll_long"] == pytest.approx(response_nll(long_model, ids, start), abs=1e-5)
    assert row["nll_short"] == pytest.approx(response_nll(short_model, ids, start), abs=1e-5)
    assert row["n_short_context"] == len(enc.context)
    assert row["nll_short"] != pytest.approx(row["nll_long"], rel=1e-3)  # really two different models
