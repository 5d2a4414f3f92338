"""The e2e's shared-prefix generation gives the tokens ``generate`` gives (the reference: `HFGenerator`, i.e. HF
``generate`` on the whole model), for models that share their first layers with the base and for models that do
not (which must not use the store)."""

from __future__ import annotations

import copy
import random

import pytest
import torch
from conftest import build_tiny_model

from gateau.bench.e2e.shared_prefix import PrefixStore, SharedPrefixGenerator, shared_layers
from gateau.eval.generate import GenRequest, HFGenerator
from gateau.models import LoadedModel

LAYERS = 4


def loaded(model, tokenizer) -> LoadedModel:
    return LoadedModel(model=model, tokenizer=tokenizer, spec="tiny", device=torch.device("cpu"))


def perturbed(base, first_layer: int, *, eos_boost: float = 0.0):
    """A copy of ``base`` with every decoder layer from ``first_layer`` on changed (and the EOS logit raised by
    ``eos_boost``, so some rows stop early), as training the last layers would leave it."""
    model = copy.deepcopy(base)
    gen = torch.Generator().manual_seed(first_layer)
    with torch.no_grad():
        for layer in model.model.layers[first_layer:]:
            for p in layer.parameters():
                p.add_(0.2 * torch.randn(p.shape, generator=gen))
        model.lm_head.weight[1] += eos_boost * model.lm_head.weight.abs().mean()
    return model


def requests(seed: int = 0) -> list[GenRequest]:
    rng = random.Random(seed)
    lengths = [9, 10, 30, 31, 33, 50, 52, 7]
    return [GenRequest([rng.randrange(3, 300) for _ in range(n)], 12) for n in lengths]


def tiny(arch: str, tokenizer):
    return build_tiny_model(arch, len(tokenizer), seed=3, layers=LAYERS)


@pytest.mark.parametrize("arch, first_changed, eos_boost", [("llama", 2, 0.0), ("qwen2", 3, 6.0),
                                                            ("llama", LAYERS, 0.0)])
def test_shared_prefix_generation_equals_generate(tiny_tokenizer, arch, first_changed, eos_boost):
    base = tiny(arch, tiny_tokenizer)
    store = PrefixStore(loaded(base, tiny_tokenizer), layers=2)
    model = perturbed(base, first_changed, eos_boost=eos_boost)
    assert shared_layers(model, base) == first_changed
    reference = HFGenerator(loaded(model, tiny_tokenizer), max_batch=3, progress=False).generate(requests())
    for _ in range(2):  # the second pass reuses every stored batch
        shared = SharedPrefixGenerator.wrap(HFGenerator(loaded(model, tiny_tokenizer), max_batch=3, progress=False),
                                            store)
        assert shared.uses_store
        got = shared.generate(requests())
        assert [(g.text, g.new_tokens, g.prompt_tokens) for g in got] == \
            [(g.text, g.new_tokens, g.prompt_tokens) for g in reference]
    assert store.computed == len(shared.batches(requests()))
    if eos_boost:
        assert any(g.new_tokens < 12 for g in reference)  # the early-stop path is exercised


def test_a_model_that_shares_fewer_layers_takes_generates_path(tiny_tokenizer):
    base = tiny("llama", tiny_tokenizer)
    store = PrefixStore(loaded(base, tiny_tokenizer), layers=3)
    model = perturbed(base, 1)
    assert shared_layers(model, base) == 1
    shared = SharedPrefixGenerator.wrap(HFGenerator(loaded(model, tiny_tokenizer), max_batch=3, progress=False),
                                        store)
    assert not shared.uses_store
    reference = HFGenerator(loaded(model, tiny_tokenizer), max_batch=3, progress=False).generate(requests(1))
    assert [g.text for g in shared.generate(requests(1))] == [g.text for g in reference]
    assert store.computed == 0
    saved = perturbed(base, 3)
    saved.config.use_cache, saved.config._name_or_path = False, "somewhere/else"  # as a trained model is saved
    assert shared_layers(saved, base) == 3
    saved.config.rope_theta = 1.0
    assert shared_layers(saved, base) == 0
    other_embedding = copy.deepcopy(base)
    with torch.no_grad():
        other_embedding.model.embed_tokens.weight[5] += 1.0
    assert shared_layers(other_embedding, base) == 0


def test_wider_batches_equal_generate_with_the_same_batches(tiny_tokenizer):
    """``wrap(max_batch=, max_padding=)``: larger, more padded batches (fewer decoding steps per prompt), the tokens
    still those of ``generate`` over the same batches."""
    base = tiny("llama", tiny_tokenizer)
    model = perturbed(base, 2, eos_boost=6.0)
    store = PrefixStore(loaded(base, tiny_tokenizer), layers=2)
    shared = SharedPrefixGenerator.wrap(HFGenerator(loaded(model, tiny_tokenizer), progress=False), store,
                                        max_batch=5, max_padding=0.9)
    reference = HFGenerator(loaded(model, tiny_tokenizer), max_batch=5, max_padding=0.9, progress=False)
    assert shared.batches(requests()) == reference.batches(requests())
    assert max(len(b) for b in reference.batches(requests())) == 5
    assert [g.text for g in shared.generate(requests())] == [g.text for g in reference.generate(requests())]
