"""CAM through the scorer vs naive references: segment PPLs from separate full-logit passes, segment attention from
eager ``output_attentions``; the fused pass; undefined CAS; the RoPE-base override of the short model."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from gateau.data import Sample
from gateau.methods.cam import ATTN_HEAD_TOKENS, cas_value
from gateau.models import LoadedModel, load_model
from gateau.prompt import PromptEncoder
from gateau.config import ScoreConfig
from gateau.pipeline.scorer import Scorer
from naive import response_attention as naive_attention
from naive import response_nll as naive_response_nll

CONTEXT = " ".join(f"The harbour of town {i} shelters {i * 7 % 50} boats and keeps a blue lighthouse." for i in range(9))
SAMPLE = Sample(index=0, id="s", context=CONTEXT, instruction="How many boats does town 3 shelter?",
                response="Town 3 shelters 21 boats.")
SEG = 24


@pytest.fixture(scope="module")
def scored(tiny_tokenizer, tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    lm = LoadedModel(model=model, tokenizer=tiny_tokenizer, spec="tiny", device=torch.device("cpu"))
    config = ScoreConfig.from_flat(data="-", out="-", methods="gateau", max_length=2048, segment_len=SEG,
                                   short_window=16, token_budget=256, progress=False)
    scorer = Scorer(config, lm)
    row = scorer.score_batch([SAMPLE])[0]
    row["forward_tokens"] = scorer.runners["long"].forward_tokens
    eager = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    return scorer, row, model, eager


def test_segment_nll_equals_scoring_each_segment_separately(scored, tiny_tokenizer):
    scorer, row, model, _ = scored
    enc = PromptEncoder(tiny_tokenizer, "plain", 2048).encode(SAMPLE)
    spans = enc.segments(SEG)
    assert len(spans) >= 3 and row["seg_tokens"] == [e - s for s, e in spans]
    for (s, e), got in zip(spans, row["seg_nll"]):
        ids, start = enc.row(enc.context[s:e])
        assert got == pytest.approx(naive_response_nll(model, ids, start), abs=1e-5)


def test_segment_attention_equals_eager_reference(scored, tiny_tokenizer):
    _, row, _, eager = scored
    enc = PromptEncoder(tiny_tokenizer, "plain", 2048).encode(SAMPLE)
    ids, start = enc.row()
    mass = naive_attention(eager, ids, start)
    ctx = mass[len(enc.head): len(enc.head) + len(enc.context)]
    expected = [ctx[s:e].mean() for s, e in enc.segments(SEG)]
    np.testing.assert_allclose(row["seg_attn"], expected, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(row["attn_head"], ctx[:ATTN_HEAD_TOKENS], rtol=1e-5, atol=1e-8)
    assert row["cas"] == pytest.approx(cas_value(np.exp(row["seg_nll"]), np.array(expected)), rel=1e-6)


def test_fused_pass_gives_nll_long_and_attention_in_one_forward(scored, tiny_tokenizer):
    scorer, row, model, _ = scored
    enc = PromptEncoder(tiny_tokenizer, "plain", 2048).encode(SAMPLE)
    ids, start = enc.row()
    assert row["nll_long"] == pytest.approx(naive_response_nll(model, ids, start), abs=1e-5)
    window_ids, window_start = enc.window_row(16)
    assert row["nll_short"] == pytest.approx(naive_response_nll(model, window_ids, window_start), abs=1e-5)
    rows = scorer.plan(SAMPLE, {})[1]
    full_rows = [r for r in rows.values() if len(r.ids) == len(ids)]
    assert len(full_rows) == 1 and full_rows[0].attention  # one full pass, carrying the attention probe
    expected_tokens = len(ids) + len(window_ids) + sum(len(enc.row(enc.context[s:e])[0]) for s, e in enc.segments(SEG))
    # length-sorted batches: only the shorter last segment may be padded, by less than one segment
    assert expected_tokens <= row["forward_tokens"] < expected_tokens + SEG


def test_context_shorter_than_two_segments_leaves_cas_undefined(scored):
    scorer = scored[0]
    short = Sample(index=1, id="short", context="A tiny context.", instruction="Why?", response="Because.")
    row = scorer.score_batch([short])[0]
    assert row["status"] == "ok" and row["cas"] is None and "falls back to hmg" in row["note"]
    assert row["nll_long"] is not None and row["nll_short"] is not None


def test_short_model_rope_base_override(tiny_model_dir):
    base = load_model(str(tiny_model_dir), device="cpu", dtype="float32")
    wide = load_model(str(tiny_model_dir), device="cpu", dtype="float32", rope_theta=2_000_000.0)
    theta = lambda lm: lm.model.config.rope_parameters["rope_theta"]  # noqa: E731
    assert theta(wide) == 2_000_000.0 and theta(base) != theta(wide)
    ids = torch.tensor([list(range(5, 60))])
    with torch.no_grad():
        assert not torch.allclose(base.model(ids).logits, wide.model(ids).logits)
