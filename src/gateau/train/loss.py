"""Per-sequence losses of padded or packed batches, and LongAlign's sequence loss weighting.

Shapes: a batch has ``labels`` of shape (B, T) with -100 on positions without loss. Padded batches hold one
sequence per row; padding-free packed batches hold several sequences per row, each starting where
``position_ids`` (B, T) is 0. The per-token losses ``token_nll`` (B, T-1) are in nats and aligned with the
*shifted* labels: ``token_nll[b, t]`` is -log p(labels[b, t+1] | tokens <= t), 0 where that label is -100.

- ``token`` weighting (TRL's default): loss = sum of token losses / number of label tokens in the whole
  accumulated batch, so a sequence weighs in proportion to its number of response tokens;
- ``sequence`` weighting: loss = sum over sequences of (that sequence's mean token loss) / number of sequences
  with at least one label token in the whole accumulated batch, so every sequence weighs the same whether it is
  packed with others or not (LongAlign, Bai et al. 2024, showed that packing otherwise lets long sequences dominate).
"""

from __future__ import annotations

import torch

IGNORE_INDEX = -100


def sequence_ids(labels: torch.Tensor, position_ids: torch.Tensor | None = None) -> torch.Tensor:
    """(B, T) int64: a batch-unique index of the sequence each token belongs to, in batch order.

    Without ``position_ids`` each row is one sequence; with them, a new sequence starts at every position whose id
    is 0, and at the start of every row.
    """
    rows, width = labels.shape
    if position_ids is None:
        return torch.arange(rows, device=labels.device).unsqueeze(1).expand(rows, width)
    starts = position_ids == 0
    starts[:, 0] = True
    return starts.reshape(-1).long().cumsum(0).reshape(rows, width) - 1


def _label_index(labels: torch.Tensor, position_ids: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(sequence index of each shifted label (B, T-1), mask of real labels (B, T-1), number of sequences)."""
    ids = sequence_ids(labels, position_ids)
    n_seq = int(ids[:, -1].max().item()) + 1 if ids.numel() else 0
    return ids[:, 1:], labels[:, 1:] != IGNORE_INDEX, n_seq


def per_sequence_sums(token_nll: torch.Tensor, labels: torch.Tensor,
                      position_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of token losses, number of label tokens) per sequence, both (S,) over every sequence of the batch
    (a sequence without label tokens gets 0 and 0). ``token_nll`` is (B, T-1), see the module docstring."""
    ids, mask, n_seq = _label_index(labels, position_ids)
    sums = token_nll.new_zeros(n_seq).index_add(0, ids[mask], token_nll[mask])
    counts = torch.bincount(ids[mask], minlength=n_seq)
    return sums, counts


def per_sequence_mean_nll(token_nll: torch.Tensor, labels: torch.Tensor,
                          position_ids: torch.Tensor | None = None) -> torch.Tensor:
    """(S',) mean token loss (nats) of each sequence that has at least one label token, in batch order."""
    sums, counts = per_sequence_sums(token_nll, labels, position_ids)
    keep = counts > 0
    return sums[keep] / counts[keep]


def count_sequences(labels: torch.Tensor, position_ids: torch.Tensor | None = None) -> int:
    """Sequences in the batch with at least one label token (what `sequence` weighting divides by)."""
    ids, mask, _ = _label_index(labels, position_ids)
    return int(torch.unique(ids[mask]).numel())


def sequence_weighted_loss(token_nll: torch.Tensor, labels: torch.Tensor, position_ids: torch.Tensor | None = None,
                           num_sequences: torch.Tensor | int | None = None) -> torch.Tensor:
    """Scalar: sum of per-sequence mean losses / ``num_sequences`` (default: the sequences of this batch).

    Pass the number of sequences of the whole accumulated (and, across devices, gathered) batch as
    ``num_sequences`` so that accumulation and data parallelism give the same loss as one big batch. A batch with
    no label token gives a differentiable 0.
    """
    means = per_sequence_mean_nll(token_nll, labels, position_ids)
    denom = means.numel() if num_sequences is None else num_sequences
    denom = torch.as_tensor(denom, dtype=token_nll.dtype, device=token_nll.device).clamp(min=1)
    return means.sum() / denom + 0.0 * token_nll.sum()


def label_token_nll(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, object]:
    """(token NLL, the model's output). Token NLL: (B, T-1) in nats aligned with the shifted labels (0 where the
    label is -100), from logits at the label positions only (the positions that predict a label in any row, passed
    as ``logits_to_keep``), so the LM head and its backward cost O(label positions × vocab), not O(T × vocab).
    Memory holds those logits in fp32 once; TRL's fused head tiles them instead but, off Triton devices (CPU),
    scores every position."""
    labels = inputs["labels"]
    shifted = labels[:, 1:]
    mask = shifted != IGNORE_INDEX
    positions = mask.any(dim=0).nonzero().squeeze(1)  # (K,) positions t whose logits predict labels[:, t + 1]
    kwargs = {k: v for k, v in inputs.items() if k in ("attention_mask", "position_ids")}
    out = model(input_ids=inputs["input_ids"], logits_to_keep=positions, use_cache=False, **kwargs)
    log_probs = torch.log_softmax(out.logits.float(), dim=-1)  # (B, K, V)
    targets = shifted[:, positions].clamp(min=0)
    picked = -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, K)
    nll = picked.new_zeros(shifted.shape)
    nll[:, positions] = picked
    return nll.masked_fill(~mask, 0.0), out
