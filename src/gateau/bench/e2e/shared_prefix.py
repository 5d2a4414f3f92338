"""Greedy generation that computes the decoder layers a trained model shares with its base model once, for every
model of `gateau bench e2e`.

Every CPU arm trains only its last few decoder layers (``--train-last-layers``): the embedding and the first K
layers stay the base model's, bit for bit. So, for a prompt batch, the base model's key/value cache of those K
layers and its hidden states after layer K are the same for every arm. `PrefixStore` computes them once per batch
(with the base model) and keeps them in memory; `SharedPrefixGenerator` (an `HFGenerator`) checks how many leading
layers a loaded model shares with the base (`shared_layers`: equal tensors, not names or a flag) and, when it shares
at least the store's K, runs only layers K… over the stored hidden states, then decodes greedily as
`HFGenerator`'s ``generate`` does (left padding, positions from the attention mask, stop at EOS). A model that
shares fewer layers (LoRA on every layer, full fine-tuning) or a sampled generation takes `HFGenerator`'s path.
`tests/test_e2e_shared_prefix.py` checks the generated tokens against ``generate`` itself.

Cost: the QA prompts of the e2e pass through N − K layers per arm instead of N (4 of 30 for SmolLM2-135M), the
point of it. Memory: K × 2 × prompt tokens × key/value width × 4 bytes per prompt (SmolLM2-135M, K = 26: about
40 kB per prompt token, 2 GB for 100 prompts of 500 tokens), plus the hidden states.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from ...eval.generate import Generation, HFGenerator
from ...hub import NO_HUB_OPTIONS, HubOptions


def _decoder(model: Any) -> Any:
    return model.get_decoder()


# Config keys that do not change what the layers compute (where the model was loaded from, and whether it keeps a
# key/value cache, which training turns off in the saved config).
_NOT_ARCHITECTURE = frozenset({"_name_or_path", "use_cache", "transformers_version"})


def _architecture(model: Any) -> dict[str, Any]:
    return {k: v for k, v in model.config.to_dict().items() if k not in _NOT_ARCHITECTURE}


def shared_layers(model: Any, base: Any) -> int:
    """How many leading decoder layers ``model`` shares with ``base`` (0 when their embeddings or architectures
    differ): equal parameter tensors, layer by layer, from the first."""
    import torch

    if type(model) is not type(base) or _architecture(model) != _architecture(base):
        return 0
    mine, theirs = _decoder(model), _decoder(base)
    if not torch.equal(mine.embed_tokens.weight, theirs.embed_tokens.weight):
        return 0
    count = 0
    for a, b in zip(mine.layers, theirs.layers):
        pa, pb = a.state_dict(), b.state_dict()
        if pa.keys() != pb.keys() or not all(torch.equal(pa[k], pb[k]) for k in pa):
            break
        count += 1
    return count


@dataclass
class _Prefix:
    """A prompt batch after the shared layers: per layer (keys, values) and the hidden states (batch × width ×
    hidden)."""

    layers: list[tuple[Any, Any]]
    hidden: Any


def _run_layers(model: Any, layers: Any, hidden: Any, mask: Any, cache: Any) -> Any:
    """``hidden`` (batch × width × hidden) of a left-padded batch with attention ``mask`` through ``layers`` of
    ``model``'s decoder, as its own forward runs them (causal mask, rotary positions), filling ``cache``."""
    from transformers.masking_utils import create_causal_mask

    positions = _positions(mask)
    causal = create_causal_mask(config=model.config, inputs_embeds=hidden, attention_mask=mask,
                                past_key_values=None, position_ids=positions)
    rotary = _decoder(model).rotary_emb(hidden, position_ids=positions)
    for layer in layers:
        hidden = layer(hidden, attention_mask=causal, position_embeddings=rotary, position_ids=positions,
                       past_key_values=cache, use_cache=True)
    return hidden


@dataclass
class PrefixStore:
    """The base model's first ``layers`` decoder layers over each prompt batch seen, computed once (in memory)."""

    base: Any
    """The base model (`gateau.models.LoadedModel`)."""
    layers: int
    batches: dict[str, _Prefix] = field(default_factory=dict)
    frozen: Any = None
    """A `gateau.train.frozen_prefix.FrozenPrefixCache` for the forwards that score a text (the chat NLL)."""
    computed: int = 0
    """Prompt batches computed with the base model (the rest were reused)."""

    def __post_init__(self) -> None:
        if self.frozen is None:
            from ...train.frozen_prefix import FrozenPrefixCache

            self.frozen = FrozenPrefixCache()

    def prefix(self, ids: Any, mask: Any) -> _Prefix:
        """The stored prefix of the left-padded batch ``ids``/``mask`` (batch × width), computed if new."""
        key = hashlib.sha1(ids.numpy().tobytes() + mask.numpy().tobytes()).hexdigest()
        if key not in self.batches:
            self.batches[key] = self._compute(ids, mask)
            self.computed += 1
        return self.batches[key]

    def _compute(self, ids: Any, mask: Any) -> _Prefix:
        import torch
        from transformers import DynamicCache

        model = self.base.model
        decoder = _decoder(model)
        with torch.inference_mode():
            cache = DynamicCache(config=model.config)
            hidden = _run_layers(model, decoder.layers[: self.layers], decoder.embed_tokens(ids.to(self.base.device)),
                                 mask.to(self.base.device), cache)
            kept = [(cache.layers[i].keys, cache.layers[i].values) for i in range(self.layers)]
        return _Prefix(kept, hidden)


def store_for(model: str, train_last_layers: int | None, *, device: str = "cpu",
              hub: HubOptions = NO_HUB_OPTIONS) -> PrefixStore | None:
    """The store of arms that train the last ``train_last_layers`` layers of ``model``: the base model loaded once
    (``hub``: its revision and trust_remote_code), its first N − ``train_last_layers`` layers kept (None for LoRA or
    full fine-tuning, nothing to share)."""
    if not train_last_layers:
        return None
    from ...models import load_model

    base = load_model(model, device=device, progress=False, hub=hub)
    count = len(_decoder(base.model).layers) - train_last_layers
    return PrefixStore(base, layers=count) if count > 0 else None


def _positions(mask: Any) -> Any:
    """Position ids of left-padded rows, as ``generate`` makes them: cumulative sum of the mask − 1 (pads: 1)."""
    positions = mask.long().cumsum(-1) - 1
    return positions.masked_fill(mask == 0, 1)


@dataclass
class SharedPrefixGenerator(HFGenerator):
    """`HFGenerator` that takes the first ``store.layers`` layers of greedy prompts from ``store`` when the model
    shares them with the store's base (see the module)."""

    store: PrefixStore | None = None
    shared: int = 0
    """Leading layers the model shares with the store's base (`shared_layers`)."""

    @classmethod
    def wrap(cls, generator: HFGenerator, store: PrefixStore, *, max_batch: int | None = None,
             max_padding: float | None = None) -> "SharedPrefixGenerator":
        """``generator``'s model and batching (or ``max_batch``/``max_padding``) with ``store``."""
        return cls(generator.loaded, token_budget=generator.token_budget,
                   max_batch=generator.max_batch if max_batch is None else max_batch,
                   progress=generator.progress, stats=generator.stats,
                   max_padding=generator.max_padding if max_padding is None else max_padding, store=store,
                   shared=shared_layers(generator.loaded.model, store.base.model))

    @property
    def uses_store(self) -> bool:
        return self.store is not None and self.shared >= self.store.layers

    def _run_batch(self, requests: Any, batch: list[int], temperature: float,
                   seed: int) -> list[tuple[int, Generation]]:
        if temperature > 0 or not self.uses_store:
            return super()._run_batch(requests, batch, temperature, seed)
        import time

        ids, mask, pad, eos = self.padded(requests, batch)
        start = time.perf_counter()
        new = self._greedy(ids, mask, requests[batch[0]].max_new_tokens, pad, eos)
        self.stats.seconds += time.perf_counter() - start
        return self.generations(requests, batch, new.tolist(), eos)

    def _greedy(self, ids: Any, mask: Any, max_new_tokens: int, pad: int, eos: list[int]) -> Any:
        """New tokens (batch × steps, pad after a row's EOS): layers K… over the stored prefix, then the whole
        model one token at a time on the cache."""
        import torch
        from transformers import DynamicCache

        assert self.store is not None
        model = self.loaded.model
        decoder = _decoder(model)
        with torch.inference_mode():
            prefix = self.store.prefix(ids, mask)
            cache = DynamicCache(config=model.config)
            for i, (keys, values) in enumerate(prefix.layers):
                cache.update(keys, values, i)
            mask = mask.to(prefix.hidden.device)
            hidden = _run_layers(model, decoder.layers[self.store.layers:], prefix.hidden, mask, cache)
            logits = model.lm_head(decoder.norm(hidden[:, -1:]))[:, -1]
            eos_ids = torch.tensor(eos, device=logits.device)
            unfinished = torch.ones(ids.shape[0], dtype=torch.bool, device=logits.device)
            steps = []
            position = _positions(mask)[:, -1:]
            for step in range(max_new_tokens):
                token = torch.where(unfinished, logits.argmax(-1), torch.full_like(unfinished, pad, dtype=torch.long))
                steps.append(token)
                unfinished &= ~torch.isin(token, eos_ids)
                if step == max_new_tokens - 1 or not unfinished.any():
                    break
                mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
                position = position + 1
                out = model(input_ids=token[:, None], attention_mask=mask, position_ids=position,
                            past_key_values=cache, use_cache=True, logits_to_keep=1)
                logits = out.logits[:, -1]
        return torch.stack(steps, dim=1)
