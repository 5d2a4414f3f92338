"""Independent naive references the tests compare gateau's measurements against: full-sequence logits and eager
attention on one unpadded row, no batching, no response-only tricks."""

from __future__ import annotations

import numpy as np
import torch

_CACHE: dict[tuple, float] = {}


@torch.no_grad()
def response_nll(model: torch.nn.Module, ids: list[int], response_start: int) -> float:
    """Mean −log p(ids[t] | ids[:t]) over t ≥ response_start, in nats, from full-sequence fp32 logits."""
    x = torch.tensor([ids], dtype=torch.long)
    logits = model(x, use_cache=False).logits[0].float()  # (n, vocab)
    logp = torch.log_softmax(logits[:-1], dim=-1)  # position t predicts token t + 1
    nll = -logp[torch.arange(len(ids) - 1), x[0, 1:]]  # nll[t - 1] is the NLL of token t
    return nll[response_start - 1:].mean().item()


def response_nll_cached(model: torch.nn.Module, ids: list[int], response_start: int) -> float:
    """`response_nll`, memoised per (model object, row); the key holds the model, so its id is never reused."""
    key = (model, tuple(ids), response_start)
    if key not in _CACHE:
        _CACHE[key] = response_nll(model, ids, response_start)
    return _CACHE[key]


@torch.no_grad()
def response_attention(model_eager: torch.nn.Module, ids: list[int], response_start: int) -> np.ndarray:
    """(len(ids),) attention paid by the response rows, averaged over rows, heads and layers (eager weights)."""
    att = model_eager(torch.tensor([ids]), output_attentions=True).attentions
    per_layer = [a[0, :, response_start:, :].float().mean(dim=(0, 1)) for a in att]
    return torch.stack(per_layer).mean(0).numpy()
