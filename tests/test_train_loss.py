"""Per-sequence losses in packed batches equal unpacked ones; `sequence` weighting against hand-computed values
and, through the real trainer, against naive per-sample forwards."""

from __future__ import annotations

import json

import pytest
import torch
from train_fixtures import long_records, one_thread, save_tiny_model, write_jsonl  # noqa: F401

from gateau.train.encode import IGNORE_INDEX, ConversationEncoder
from gateau.train.loss import (count_sequences, per_sequence_mean_nll, per_sequence_sums, sequence_ids,
                               sequence_weighted_loss)

X = IGNORE_INDEX


def test_sequence_ids_padded_and_packed():
    labels = torch.zeros(2, 5, dtype=torch.long)
    assert sequence_ids(labels).tolist() == [[0] * 5, [1] * 5]
    pos = torch.tensor([[0, 1, 2, 0, 1], [0, 1, 0, 1, 2]])
    assert sequence_ids(labels, pos).tolist() == [[0, 0, 0, 1, 1], [2, 2, 3, 3, 3]]


def test_sequence_weighting_hand_computed():
    # one packed row: sequence A = tokens 0-3 (labels on 2, 3), sequence B = tokens 4-9 (labels on 6..9)
    labels = torch.tensor([[X, X, 5, 6, X, X, 7, 8, 9, 10]])
    pos = torch.tensor([[0, 1, 2, 3, 0, 1, 2, 3, 4, 5]])
    nll = torch.zeros(1, 9)
    nll[0, [1, 2]] = torch.tensor([1.0, 3.0])  # shifted: label at t+1 -> index t; A's mean = 2
    nll[0, [5, 6, 7, 8]] = 4.0  # B's mean = 4
    nll.requires_grad_(True)
    assert per_sequence_sums(nll, labels, pos)[1].tolist() == [2, 4]
    assert per_sequence_mean_nll(nll, labels, pos).tolist() == [2.0, 4.0]
    loss = sequence_weighted_loss(nll, labels, pos)
    assert loss.item() == pytest.approx(3.0)  # (2 + 4) / 2; token weighting would give 20 / 6
    loss.backward()
    expected = torch.zeros(1, 9)
    expected[0, [1, 2]] = 1 / (2 * 2)  # each sequence weighs 1/2, spread over its own tokens
    expected[0, [5, 6, 7, 8]] = 1 / (2 * 4)
    assert torch.allclose(nll.grad, expected)
    # the accumulated batch's sequence count divides instead of the local one
    assert sequence_weighted_loss(nll, labels, pos, num_sequences=6).item() == pytest.approx(1.0)
    assert count_sequences(labels, pos) == 2 and count_sequences(labels) == 1
    empty = torch.full((1, 4), X)
    assert sequence_weighted_loss(torch.zeros(1, 3, requires_grad=True), empty).item() == 0.0


def _token_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B, T-1) naive -log p of the shifted labels, 0 where ignored."""
    logp = torch.log_softmax(logits[:, :-1].float(), -1)
    target = labels[:, 1:]
    got = logp.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return torch.where(target != X, -got, torch.zeros_like(got))


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_per_sequence_losses_equal_unpacked(tiny_tokenizer, attn):
    from conftest import build_tiny_model

    model = build_tiny_model("llama", len(tiny_tokenizer))
    model.config._attn_implementation = attn
    encoder = ConversationEncoder(tiny_tokenizer, "chat", 4096)
    seqs = [encoder.encode(r["messages"]) for r in long_records(4, words=12)]
    alone = []
    with torch.no_grad():
        for s in seqs:
            ids, lab = torch.tensor([s.input_ids]), torch.tensor([s.labels])
            alone.append(per_sequence_mean_nll(_token_nll(model(ids).logits, lab), lab).item())
        ids = torch.tensor([[i for s in seqs for i in s.input_ids]])
        lab = torch.tensor([[x for s in seqs for x in s.labels]])
        pos = torch.tensor([[p for s in seqs for p in range(len(s.input_ids))]])
        logits = model(ids, position_ids=pos, use_cache=False).logits  # no mask: block-diagonal from positions
        packed = per_sequence_mean_nll(_token_nll(logits, lab), lab, pos)
    assert packed.tolist() == pytest.approx(alone, abs=1e-5)
    assert max(alone) - min(alone) > 1e-3  # the sequences differ, so a mix-up would show


def _naive_losses(model_dir, records, max_length):
    """(token-weighted, sequence-weighted) loss of all records with the initial weights, one forward each."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    encoder = ConversationEncoder(tok, "chat", max_length)
    total, count, means = 0.0, 0, []
    with torch.no_grad():
        for r in records:
            s = encoder.encode(r["messages"])
            lab = torch.tensor([s.labels])
            nll = _token_nll(model(torch.tensor([s.input_ids])).logits, lab)
            n = int((lab[:, 1:] != X).sum())
            total, count = total + nll.sum().item(), count + n
            means.append(nll.sum().item() / n)
    return total / count, sum(means) / len(means)


@pytest.mark.parametrize("weighting", ["token", "sequence"])
@pytest.mark.parametrize("packing", [True, False])
def test_trainer_loss_equals_naive(tmp_path, weighting, packing):
    from gateau.train.recipe import TrainConfig
    from gateau.train.trainer import train

    model_dir = save_tiny_model(tmp_path / "model")
    records = long_records(6, words=12)
    data = write_jsonl(tmp_path / "data.jsonl", records)
    # one optimizer step over every sequence: 6 unpacked rows (batch 2 x accumulation 3) or a few packed rows
    config = TrainConfig(data=str(data), out=str(tmp_path / "out"), model=str(model_dir), max_length=160,
                         max_steps=1, lr=1e-9, warmup_ratio=0.0, batch_size=2 if not packing else 1,
                         grad_accum=3 if not packing else 6, packing=packing, loss_weighting=weighting,
                         gradient_checkpointing=False, progress=False, save_steps=10)
    train(config)
    logged = json.loads((tmp_path / "out" / "train_log.jsonl").read_text().splitlines()[0])["loss"]
    token, sequence = _naive_losses(model_dir, records, 160)
    assert logged == pytest.approx(token if weighting == "token" else sequence, abs=1e-5)
    assert abs(token - sequence) > 1e-4  # the two weightings differ on this data
