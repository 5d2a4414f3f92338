"""The output of a model's frozen leading decoder layers, computed once per training sequence.

With ``--train-last-layers N`` the embedding and the first K = layers − N decoder layers never change, so what they
make of a sequence is the same at every step, epoch and run that starts from the same base model. A
`FrozenPrefixCache`, installed on the model for a training (`FrozenPrefixCache.installed`), puts one module in
place of those K layers: on a sequence it has not seen it runs them (without gradients, which they do not get
anyway) and keeps their output; on one it has seen it returns the kept output. The key is the layers' input (the
embedded sequence), its positions and mask, and a digest of the K layers' weights, so a cache shared by several
trainings (`gateau bench e2e` trains ~50 arms on one pool) only ever returns what those exact layers computed.
It serves the model in training mode only (`torch.nn.Module.train`). Training is unchanged, step for step (`tests/test_train_frozen_prefix.py`); its cost drops to the last N layers
(and the output head) for every sequence seen before. Memory: one hidden-state tensor (tokens × hidden × 4 bytes)
per distinct sequence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch


def weights_digest(modules: list[torch.nn.Module]) -> str:
    """A digest of every parameter and buffer of ``modules`` (names, shapes, dtypes and values)."""
    h = hashlib.blake2b(digest_size=16)
    for i, module in enumerate(modules):
        for name, tensor in module.state_dict().items():
            h.update(f"{i}.{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
            h.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _bytes(value: Any) -> bytes:
    if value is None:
        return b"-"
    if isinstance(value, torch.Tensor):
        return f"{tuple(value.shape)}:{value.dtype}".encode() + value.detach().cpu().contiguous().view(
            torch.uint8).numpy().tobytes()
    raise TypeError(type(value))


@dataclass
class FrozenPrefixCache:
    """Kept outputs of frozen leading layers (see the module), shared by the trainings it is installed for."""

    outputs: dict[str, torch.Tensor] = field(default_factory=dict)
    computed: int = 0
    reused: int = 0

    @contextmanager
    def installed(self, model: Any, layers: int) -> Iterator[None]:
        """Serve the first ``layers`` decoder layers of ``model`` from the cache inside the block; the model is as
        it was (its own layers, its state dict) after it. A model in training mode must not train those layers (nor
        the embedding); in eval mode the cache serves forwards without a key/value cache (scoring a text, not
        generating)."""
        decoder = model.get_decoder()
        original = list(decoder.layers)
        if not 0 < layers <= len(original):
            raise ValueError(f"frozen prefix of {layers} layers: the model has {len(original)}")
        frozen = original[:layers]
        if model.training and (any(p.requires_grad for layer in frozen for p in layer.parameters()) or any(
                p.requires_grad for p in decoder.embed_tokens.parameters())):
            raise ValueError("the frozen prefix must not train: its layers or the embedding require gradients")
        stack = _CachedStack(frozen, self, weights_digest([decoder.embed_tokens, *frozen]))
        decoder.layers = torch.nn.ModuleList([stack, *(_Passthrough() for _ in frozen[1:]), *original[layers:]])
        try:
            yield
        finally:
            decoder.layers = torch.nn.ModuleList(original)


class _Passthrough(torch.nn.Module):
    """Stands for a frozen layer whose work `_CachedStack` already did."""

    def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return hidden_states


class _CachedStack(torch.nn.Module):
    """The frozen layers as one module: their kept output for an input seen before, else computed and kept."""

    def __init__(self, layers: list[torch.nn.Module], cache: FrozenPrefixCache, digest: str):
        super().__init__()
        self.frozen = layers  # a plain list: not registered, so the model's parameters and state dict are unchanged
        self.cache = cache
        self.digest = digest

    def forward(self, hidden_states: torch.Tensor, attention_mask: Any = None, position_ids: Any = None,
                past_key_values: Any = None, use_cache: bool | None = False, **kwargs: Any) -> torch.Tensor:
        # In training, a key/value cache (transformers makes one when the config says use_cache) lives for this one
        # forward and no layer reads another layer's entries, so the frozen layers need not fill theirs; outside
        # training it may be decoded from later, so they run as they are.
        if (past_key_values is not None and not self.training) or not isinstance(attention_mask,
                                                                                  (torch.Tensor, type(None))):
            return self._run(hidden_states, attention_mask, position_ids, past_key_values, use_cache, **kwargs)
        key = hashlib.blake2b(self.digest.encode() + _bytes(hidden_states) + _bytes(position_ids)
                              + _bytes(attention_mask), digest_size=20).hexdigest()
        kept = self.cache.outputs.get(key)
        if kept is None:
            with torch.no_grad():
                kept = self._run(hidden_states, attention_mask, position_ids, None, False, **kwargs).detach()
            self.cache.outputs[key] = kept
            self.cache.computed += 1
        else:
            self.cache.reused += 1
        return kept

    def _run(self, hidden: torch.Tensor, attention_mask: Any, position_ids: Any, past_key_values: Any,
             use_cache: bool | None, **kwargs: Any) -> torch.Tensor:
        for layer in self.frozen:
            hidden = layer(hidden, attention_mask=attention_mask, position_ids=position_ids,
                           past_key_values=past_key_values, use_cache=use_cache, **kwargs)
        return hidden
