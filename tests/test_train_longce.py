"""LongCE: the trainer's token weights against a plain full-logits loop on HMG's window row, the cap, the plain
loss when every weight is 1, the span's tokenisation check, and the logged loss of a real `gateau train` step."""

from __future__ import annotations

import json
import math

import pytest
import torch
from train_fixtures import long_records, save_tiny_model, write_jsonl

from gateau.data.samples import Sample
from gateau.prompt import PromptEncoder
from gateau.train.encode import IGNORE_INDEX, ConversationEncoder
from gateau.train.longce import NO_DROP, ShortWindowSpans, longce_weights, short_token_nll
from gateau.train.recipe import ConfigError, TrainConfig, resolve_config

WINDOW = 6


def _naive_log_probs(model, ids: list[int]) -> list[float]:
    """log p(ids[t] | ids[:t]) for t >= 1 from the full logits of one unpadded forward."""
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
    return [logp[t - 1, ids[t]].item() for t in range(1, len(ids))]


def _naive_weights(model, tokenizer, record: dict, window: int, cap: float) -> list[float]:
    """Weights of the training sequence's label tokens, in order: the long row is the training sequence, the short
    row is the scorer's window row (`EncodedSample.window_row`) followed by the training sequence's tokens after the
    scored response (the end-of-turn mark)."""
    seq = ConversationEncoder(tokenizer, "chat", 4096).encode(record["messages"])
    user, answer = record["messages"][0]["content"], record["messages"][1]["content"]
    context, _, instruction = user.rpartition("\n\n")
    enc = PromptEncoder(tokenizer, "chat").encode(Sample(0, "", context, instruction, answer))
    full, _ = enc.row()
    short, _ = enc.window_row(window)
    short = short + seq.input_ids[len(full):]
    long_lp, short_lp = _naive_log_probs(model, seq.input_ids), _naive_log_probs(model, short)
    offset = len(seq.input_ids) - len(short)
    out = []
    for p, label in enumerate(seq.labels):
        if label != IGNORE_INDEX:
            out.append(min(math.exp(long_lp[p - 1] - short_lp[p - 1 - offset]), cap))
    return out


def _batch(tokenizer, records: list[dict], window: int):
    """Right-padded training batch (ids, labels, mask) and the spans, as the trainer receives them."""
    encoder = ConversationEncoder(tokenizer, "chat", 4096)
    spans = ShortWindowSpans(tokenizer, "chat", window)
    seqs = [encoder.encode(r["messages"]) for r in records]
    width = max(len(s.input_ids) for s in seqs)
    ids = torch.zeros(len(seqs), width, dtype=torch.long)
    labels = torch.full((len(seqs), width), IGNORE_INDEX)
    mask = torch.zeros(len(seqs), width, dtype=torch.long)
    for b, s in enumerate(seqs):
        n = len(s.input_ids)
        ids[b, :n], labels[b, :n], mask[b, :n] = torch.tensor(s.input_ids), torch.tensor(s.labels), 1
    drops = torch.tensor([spans.span(r["messages"], s.input_ids) for r, s in zip(records, seqs)])
    return ids, labels, mask, drops


def _long_nll(model, ids, labels, mask):
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits[:, :-1].float(), -1)
    got = -logp.gather(-1, labels[:, 1:].clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return torch.where(labels[:, 1:] != IGNORE_INDEX, got, torch.zeros_like(got))


@pytest.mark.parametrize("cap", [5.0, 1.5])
def test_weights_equal_naive_full_logits_loop(tiny_tokenizer, tiny_llama, cap):
    records = long_records(3, words=20)
    ids, labels, mask, drops = _batch(tiny_tokenizer, records, WINDOW)
    assert all(end > start for start, end in drops.tolist())
    short, has = short_token_nll(tiny_llama, ids, labels, mask, drops)
    weights = longce_weights(_long_nll(tiny_llama, ids, labels, mask), short, has, cap)
    for b, record in enumerate(records):
        expected = _naive_weights(tiny_llama, tiny_tokenizer, record, WINDOW, cap)
        got = weights[b][labels[b, 1:] != IGNORE_INDEX].tolist()
        assert got == pytest.approx(expected, abs=1e-4)
    assert weights.max().item() <= cap + 1e-6
    assert (weights != 1).any() and weights.std() > 1e-3  # real weights, not all one value


def test_cap_applies_and_equal_nll_gives_one():
    long = torch.tensor([[0.1, 2.0, 0.5]])
    short = torch.tensor([[9.0, 2.0, 0.5 + math.log(3.0)]])
    has = torch.tensor([[True, True, True]])
    got = longce_weights(long, short, has, 5.0)
    assert got[0].tolist() == pytest.approx([5.0, 1.0, 3.0])  # exp(8.9) capped; equal NLL -> 1; exp(log 3)
    assert longce_weights(long, short, ~has, 5.0).tolist() == [[1.0, 1.0, 1.0]]  # no short row: weight 1
    long.requires_grad_(True)
    assert not longce_weights(long, short, has, 5.0).requires_grad


def test_torch_weights_equal_the_stored_nll_twin():
    from gateau.methods.hmg_tokens import longce_weights as from_stored

    rng = torch.Generator().manual_seed(3)
    long, short = torch.rand(1, 40, generator=rng) * 4, torch.rand(1, 40, generator=rng) * 4
    got = longce_weights(long, short, torch.ones_like(long, dtype=torch.bool), 5.0)[0]
    assert got.tolist() == pytest.approx(from_stored(long[0].numpy(), short[0].numpy(), 5.0).tolist(), rel=1e-6)


def test_span_check_refuses_what_does_not_match(tiny_tokenizer):
    record = long_records(1, words=20)[0]
    seq = ConversationEncoder(tiny_tokenizer, "chat", 4096).encode(record["messages"])
    spans = ShortWindowSpans(tiny_tokenizer, "chat", WINDOW)
    start, end = spans.span(record["messages"], seq.input_ids)
    assert 0 < start < end
    changed = list(seq.input_ids)
    changed[start] = (changed[start] + 1) % len(tiny_tokenizer)
    assert spans.span(record["messages"], changed) == NO_DROP  # tokenisations differ: no short row
    assert ShortWindowSpans(tiny_tokenizer, "chat", 10_000).span(record["messages"], seq.input_ids) == NO_DROP
    no_context = [{"role": "user", "content": "What?"}, {"role": "assistant", "content": "This."}]
    assert spans.span(no_context, ConversationEncoder(tiny_tokenizer, "chat", 99).encode(no_context).input_ids) \
        == NO_DROP
    two = record["messages"] + record["messages"]
    assert spans.span(two, ConversationEncoder(tiny_tokenizer, "chat", 4096).encode(two).input_ids) == NO_DROP


def test_longce_refuses_packing_and_bad_values():
    base = dict(data="d", out="o", loss="longce")
    with pytest.raises(ConfigError, match="--packing off"):
        resolve_config("default", {**base, "packing": True})
    with pytest.raises(ConfigError, match="--longce-cap"):
        resolve_config("default", {**base, "longce_cap": 0.0})
    config, _ = resolve_config("default", base)
    assert (config.loss, config.longce_cap, config.longce_window) == ("longce", 5.0, 128)
    assert TrainConfig(data="d", out="o").loss == "ce"


def _naive_weighted_loss(model_dir, records, window, cap, weighting):
    """LongCE loss of all records with the initial weights from the naive loop: sequence weighting (mean of the
    per-sequence means of w x NLL) or token weighting (sum of w x NLL over every label token / their count)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    sums, counts = [], []
    for r in records:
        seq = ConversationEncoder(tok, "chat", 4096).encode(r["messages"])
        lp = _naive_log_probs(model, seq.input_ids)
        nll = [-lp[p - 1] for p, label in enumerate(seq.labels) if label != IGNORE_INDEX]
        w = _naive_weights(model, tok, r, window, cap) if window is not None else [1.0] * len(nll)
        sums.append(sum(a * b for a, b in zip(w, nll)))
        counts.append(len(nll))
    if weighting == "token":
        return sum(sums) / sum(counts)
    return sum(s / c for s, c in zip(sums, counts)) / len(sums)


@pytest.mark.slow
@pytest.mark.parametrize("window,weighting", [(WINDOW, "sequence"), (None, "sequence"), (WINDOW, "token")])
def test_trainer_longce_loss_equals_naive(tmp_path, window, weighting):
    from gateau.train.trainer import train

    model_dir = save_tiny_model(tmp_path / "model")
    records = long_records(4, words=20)
    data = write_jsonl(tmp_path / "data.jsonl", records)
    config = TrainConfig(data=str(data), out=str(tmp_path / "out"), model=str(model_dir), max_length=400,
                         max_steps=1, lr=1e-9, warmup_ratio=0.0, batch_size=2, grad_accum=2,
                         loss_weighting=weighting, loss="longce", longce_window=window or 10_000,
                         gradient_checkpointing=False, progress=False, save_steps=10)
    train(config)
    logged = json.loads((tmp_path / "out" / "train_log.jsonl").read_text().splitlines()[0])["loss"]
    expected = _naive_weighted_loss(model_dir, records, window, 5.0, weighting)
    assert logged == pytest.approx(expected, abs=1e-5)
    if window is not None:  # the weights change the loss on this data
        assert abs(expected - _naive_weighted_loss(model_dir, records, None, 5.0, weighting)) > 1e-4
