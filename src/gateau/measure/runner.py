"""Run many scoring rows through one model: sort by length, batch by a token budget, halve on OOM.

The batches are `gateau.measure.batching.batches` (torch-free, so `gateau plan` computes the same ones).

This is the only batching path of the tool; every method (HMG, CAM, PPL, IFD) builds `RowRequest`s and reads
`RowResult`s. A request with ``attention=True`` also returns the attention mass its response tokens pay to every
position, computed in the same forward pass (see `gateau.measure.attention`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..status import Status
from .batching import MAX_PAD_FRACTION, batches, is_packed
from .nll import forward_response, make_batch, make_packed_batch
from .rows import RowRequest, RowResult


def is_oom(exc: BaseException) -> bool:
    """True for CUDA/CPU out-of-memory errors."""
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


class RowRunner:
    """Executes `RowRequest`s on one model within ``token_budget`` padded tokens per forward pass. ``pack``: rows
    without attention are packed into one unpadded sequence per pass (position ids restart per row) instead of
    padded batches; it pays with flash-attention varlen (each row attends alone), not with sdpa/eager."""

    def __init__(self, model: torch.nn.Module, pad_id: int, token_budget: int,
                 attention_chunk_rows: int = 256, max_pad_fraction: float = MAX_PAD_FRACTION, pack: bool = False):
        self.model = model
        self.pack = pack
        self.pad_id = pad_id
        self.token_budget = token_budget
        self.max_pad_fraction = max_pad_fraction
        self.attention_chunk_rows = attention_chunk_rows
        self.device = next(model.parameters()).device
        self.forward_tokens = 0  # padded tokens sent through the model (for throughput reports)

    def run(self, requests: list[RowRequest], on_rows_done: Callable[[int, int], None] | None = None
            ) -> list[RowResult]:
        """Results in the order of ``requests``. ``on_rows_done(n_rows, n_tokens)`` is called after each batch."""
        results: list[RowResult | None] = [None] * len(requests)
        pending = list(batches(requests, self.token_budget, self.pack, self.max_pad_fraction))
        while pending:
            batch = pending.pop(0)
            try:
                for i, res in zip(batch, self._run_batch([requests[i] for i in batch])):
                    results[i] = res
            except Exception as exc:  # noqa: BLE001 - OOM is told apart below, others re-raised
                if not is_oom(exc):
                    raise
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if len(batch) == 1:
                    n = len(requests[batch[0]].ids)
                    results[batch[0]] = RowResult(None, error=f"out of memory for one row of {n} tokens",
                                                  status=Status.OOM.value)
                else:
                    half = len(batch) // 2
                    pending[:0] = [batch[:half], batch[half:]]
                    continue
            if on_rows_done is not None:
                on_rows_done(len(batch), sum(len(requests[i].ids) for i in batch))
        return [r for r in results if r is not None]

    def _run_batch(self, reqs: list[RowRequest]) -> list[RowResult]:
        rows = [(list(r.ids), r.response_start) for r in reqs]
        packed = is_packed(reqs, self.pack)
        batch = make_packed_batch(rows, self.device) if packed else make_batch(rows, self.pad_id, self.device)
        self.forward_tokens += batch.ids.numel()
        if not reqs[0].attention:
            nlls = forward_response(self.model, batch)
            return [_checked(RowResult(n.mean, token_nll=n.tokens), len(r.ids)) for n, r in zip(nlls, reqs)]
        from .attention import PROBE_KWARG, AttentionProbe, probe_attn_implementation

        impl = self.model.config._attn_implementation
        if not impl.startswith("gateau_"):
            self.model.set_attn_implementation(probe_attn_implementation(impl))
        probe = AttentionProbe([(r.response_start, len(r.ids)) for r in reqs], batch.ids.shape[1],
                               chunk_rows=self.attention_chunk_rows)
        nlls = forward_response(self.model, batch, **{PROBE_KWARG: probe})
        mass = probe.mean_mass().numpy()
        return [_checked(RowResult(n.mean, mass[b, : len(r.ids)].copy(), token_nll=n.tokens), len(r.ids))
                for b, (n, r) in enumerate(zip(nlls, reqs))]


def _checked(res: RowResult, n_tokens: int) -> RowResult:
    """``res``, or a failed result with status ``nonfinite`` when its NLL or attention is inf/NaN (an fp16/bf16
    overflow: the log-softmax itself runs in fp32)."""
    bad = [name for name, ok in (("NLL", np.isfinite(res.nll)),
                                 ("attention", res.attention is None or np.isfinite(res.attention).all())) if not ok]
    if not bad:
        return res
    return RowResult(None, error=f"non-finite {' and '.join(bad)} in a row of {n_tokens} tokens (overflow in "
                     "the model's dtype; try --dtype float32)", status=Status.NONFINITE.value)
