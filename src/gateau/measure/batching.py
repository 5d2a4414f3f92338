"""How `RowRunner` groups rows into forward passes, without torch: sort by length, batch by a token budget.

Kept apart from the runner so that `gateau plan` computes the exact batches (and so the exact model tokens,
padding included) that `gateau score` will run, from the tokenizer alone. Rows of very different lengths never
share a batch (padding is capped at `MAX_PAD_FRACTION` of the batch width), so a short window row is not padded up
to its sample's full-context row.
"""

from __future__ import annotations

from typing import Iterator

from .rows import RowRequest

MAX_PAD_FRACTION = 0.1  # a row joins a batch only if it is at least (1 - this) × the batch's width


def run_order(requests: list[RowRequest]) -> list[int]:
    """Positions of ``requests`` in the order they run: rows without attention first, longest first in each kind."""
    return sorted(range(len(requests)), key=lambda i: (requests[i].attention, -len(requests[i].ids)))


def batches(requests: list[RowRequest], token_budget: int, pack: bool = False,
            max_pad_fraction: float = MAX_PAD_FRACTION) -> Iterator[list[int]]:
    """The batches (lists of positions into ``requests``) of one model's rows, in run order. ``token_budget``:
    padded tokens per forward pass; ``pack``: rows without attention are packed into one unpadded sequence."""
    batch: list[int] = []
    for i in run_order(requests):  # longest first within each kind, so a batch's first row sets its width
        req = requests[i]
        width = len(requests[batch[0]].ids) if batch else len(req.ids)
        if pack and not req.attention:  # packed: the rows' own lengths add up, no padding
            fits = not batch or (not requests[batch[0]].attention and sum(len(requests[j].ids) for j in batch)
                                 + len(req.ids) <= token_budget)
        else:
            fits = (not batch or (requests[batch[0]].attention == req.attention
                                  and len(req.ids) >= (1 - max_pad_fraction) * width
                                  and (len(batch) + 1) * width <= token_budget))
        if not fits:
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def is_packed(reqs: list[RowRequest], pack: bool) -> bool:
    """True if the batch ``reqs`` runs as one packed sequence (``pack`` on and its rows carry no attention)."""
    return pack and not reqs[0].attention


def batch_tokens(reqs: list[RowRequest], pack: bool) -> int:
    """Tokens one batch sends through the model: the sum of the row lengths when packed, else rows × the longest
    row (right padding)."""
    lengths = [len(r.ids) for r in reqs]
    return sum(lengths) if is_packed(reqs, pack) else len(lengths) * max(lengths)
