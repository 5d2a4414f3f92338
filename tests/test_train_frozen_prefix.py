"""The frozen-prefix cache leaves training unchanged (reference: the same training without it) and never returns an
output of other weights."""

from __future__ import annotations

import pytest
import torch
from conftest import build_tiny_model
from safetensors.torch import load_file
from train_fixtures import long_records, save_tiny_model, write_jsonl

from gateau.train.frozen_prefix import FrozenPrefixCache
from gateau.train.recipe import TrainConfig
from gateau.train.trainer import freeze_all_but_last_layers, train


def loss_and_grads(model, ids):
    model.zero_grad()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_a_step_with_the_cache_equals_one_without(tiny_tokenizer):
    model = build_tiny_model("llama", len(tiny_tokenizer), seed=5, layers=4)
    freeze_all_but_last_layers(model, 1)
    model.train()  # as the trainer runs it (no dropout in these models: the reference is deterministic)
    keys = list(model.state_dict())
    seqs = [torch.randint(3, 200, (1, n), generator=torch.Generator().manual_seed(n)) for n in (17, 30)]
    reference = [loss_and_grads(model, ids) for ids in seqs]
    cache = FrozenPrefixCache()
    with cache.installed(model, 3):
        for _ in range(2):  # the second pass takes every frozen output from the cache
            for ids, (loss, grads) in zip(seqs, reference):
                got_loss, got_grads = loss_and_grads(model, ids)
                assert got_loss == pytest.approx(loss, abs=1e-6)
                assert got_grads.keys() == grads.keys()
                assert all(torch.allclose(got_grads[k], grads[k], atol=1e-6) for k in grads)
    assert (cache.computed, cache.reused) == (2, 2)
    assert list(model.state_dict()) == keys and len(model.model.layers) == 4  # the model is as it was
    with torch.no_grad():
        model.model.layers[0].mlp.up_proj.weight[0, 0] += 1.0  # other frozen weights: computed again
    changed = loss_and_grads(model, seqs[0])
    with cache.installed(model, 3):
        assert loss_and_grads(model, seqs[0])[0] == pytest.approx(changed[0], abs=1e-6)
    assert cache.computed == 3


def test_it_refuses_layers_that_train(tiny_tokenizer):
    model = build_tiny_model("llama", len(tiny_tokenizer), seed=5, layers=4)
    freeze_all_but_last_layers(model, 2)
    model.train()
    with pytest.raises(ValueError, match="must not train"):
        with FrozenPrefixCache().installed(model, 3):
            pass


def test_training_with_a_shared_cache_writes_the_same_model(tmp_path):
    model_dir = save_tiny_model(tmp_path / "model")
    data = write_jsonl(tmp_path / "d.jsonl", long_records(6, words=12))
    cache = FrozenPrefixCache()
    weights = {}
    for name, prefix_cache in (("plain", None), ("cached", cache), ("cached-again", cache)):
        out = tmp_path / name
        train(TrainConfig(data=str(data), out=str(out), model=str(model_dir), max_length=256, max_steps=3,
                          lr=1e-2, warmup_ratio=0.0, batch_size=1, grad_accum=2, train_last_layers=1,
                          progress=False, save_steps=100), prefix_cache=prefix_cache)
        weights[name] = load_file(out / "model.safetensors")
    assert cache.computed == 6 and cache.reused == 6  # 6 sequences, each computed once over two trainings
    for name in ("cached", "cached-again"):
        assert weights[name].keys() == weights["plain"].keys()
        assert all(torch.allclose(weights[name][k], weights["plain"][k], atol=1e-6) for k in weights["plain"])
