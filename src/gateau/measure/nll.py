"""Response NLL for a batch of rows, from response-only logits (never full-sequence logits).

A row is ``ids`` (a full token sequence) and ``response_start``: the tokens ``ids[response_start:]`` are scored.
Rows are right-padded to the longest row *of the batch* only; the model computes hidden states for every position
but the LM head runs only on the positions that predict response tokens (``logits_to_keep`` as a 2-D bool mask),
and the log-softmax runs in fp32 in chunks of rows, so memory is O(|y| · vocab), not O(n · vocab).
The same pass gives the mean and the per-token response NLLs (`forward_response`): methods that aggregate tokens
(``hmg-tokens``) need no second forward.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

LOGSOFTMAX_CHUNK_ROWS = 1024


@dataclass
class RowBatch:
    """A right-padded batch, or rows packed into one sequence. Shapes: ids/attention (batch, length); keep (batch,
    length) bool selects the positions whose logits predict response tokens; targets (n_kept,) are the predicted
    ids in row-major order; position_ids (1, length) restart at 0 for every packed row (None when padded)."""

    ids: torch.Tensor
    attention_mask: torch.Tensor | None
    keep: torch.Tensor
    targets: torch.Tensor
    response_counts: list[int]
    lengths: list[int]
    position_ids: torch.Tensor | None = None


def make_batch(rows: list[tuple[list[int], int]], pad_id: int, device: torch.device) -> RowBatch:
    """Right-pad ``rows`` = [(ids, response_start)] to the batch's longest row; no attention mask if none is padded."""
    lengths = [len(ids) for ids, _ in rows]
    width = max(lengths)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    keep = torch.zeros((len(rows), width), dtype=torch.bool)
    targets: list[int] = []
    counts: list[int] = []
    for b, (row, start) in enumerate(rows):
        if not 0 < start < len(row):
            raise ValueError(f"response_start {start} must be inside the row (length {len(row)})")
        ids[b, : len(row)] = torch.tensor(row, dtype=torch.long)
        keep[b, start - 1 : len(row) - 1] = True
        targets.extend(row[start:])
        counts.append(len(row) - start)
    mask = None
    if min(lengths) != width:
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for b, n in enumerate(lengths):
            mask[b, :n] = 1
        mask = mask.to(device)
    return RowBatch(ids.to(device), mask, keep.to(device), torch.tensor(targets, device=device), counts, lengths)


def make_packed_batch(rows: list[tuple[list[int], int]], device: torch.device) -> RowBatch:
    """Concatenate ``rows`` = [(ids, response_start)] into one sequence (batch 1, no padding) with position ids
    restarting at 0 per row and no attention mask: transformers then masks block-diagonally (flash-attention
    varlen runs each row alone; sdpa/eager build a block-diagonal mask, so packing pays only with flash)."""
    ids: list[int] = []
    positions: list[int] = []
    keep: list[bool] = []
    targets: list[int] = []
    for row, start in rows:
        if not 0 < start < len(row):
            raise ValueError(f"response_start {start} must be inside the row (length {len(row)})")
        ids.extend(row)
        positions.extend(range(len(row)))
        keep.extend([False] * (start - 1) + [True] * (len(row) - start) + [False])
        targets.extend(row[start:])

    def tensor(values: list, dtype: torch.dtype) -> torch.Tensor:
        return torch.tensor([values], dtype=dtype, device=device)

    return RowBatch(tensor(ids, torch.long), None, tensor(keep, torch.bool), torch.tensor(targets, device=device),
                    [len(r) - s for r, s in rows], [len(r) for r, _ in rows], tensor(positions, torch.long))


def token_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-token negative log-likelihood in nats. logits (n, vocab) any dtype, targets (n,) → (n,) float32."""
    out = torch.empty(targets.shape[0], dtype=torch.float32, device=logits.device)
    for lo in range(0, targets.shape[0], LOGSOFTMAX_CHUNK_ROWS):
        chunk = logits[lo : lo + LOGSOFTMAX_CHUNK_ROWS].float()
        picked = chunk.gather(1, targets[lo : lo + LOGSOFTMAX_CHUNK_ROWS, None]).squeeze(1)
        out[lo : lo + LOGSOFTMAX_CHUNK_ROWS] = torch.logsumexp(chunk, dim=-1) - picked
    return out


@dataclass
class ResponseNLL:
    """One row's response NLL from one forward pass: ``mean`` in nats/token (float32 mean, as stored in
    ``nll_long``/``nll_short``/``seg_nll``) and ``tokens`` (n_response,) float32, −log p of each response token in
    nats, in response order."""

    mean: float
    tokens: np.ndarray


@torch.no_grad()
def forward_response(model: torch.nn.Module, batch: RowBatch, **model_kwargs) -> list[ResponseNLL]:
    """Mean and per-token response NLL per row of ``batch`` (padded or packed), from one forward with
    response-only logits. Extra kwargs go to ``model(...)`` (e.g. an attention probe)."""
    out = model(input_ids=batch.ids, attention_mask=batch.attention_mask, position_ids=batch.position_ids,
                logits_to_keep=batch.keep, use_cache=False, **model_kwargs)
    logits = out.logits.reshape(-1, out.logits.shape[-1])
    nll = token_nll(logits, batch.targets)
    host = nll.cpu().numpy()
    bounds = np.cumsum([0, *batch.response_counts])
    return [ResponseNLL(part.mean().item(), host[lo:hi].copy())
            for part, lo, hi in zip(torch.split(nll, batch.response_counts), bounds[:-1], bounds[1:])]


def forward_response_nll(model: torch.nn.Module, batch: RowBatch, **model_kwargs) -> list[float]:
    """Mean response NLL (nats/token) per row of ``batch`` (`forward_response` without the per-token values)."""
    return [r.mean for r in forward_response(model, batch, **model_kwargs)]
