"""What a scoring row is, independent of torch: which model runs it, its tokens, and what comes back.

Methods build `RowRequest`s keyed by `RowKey` and read `RowResult`s; `gateau.measure.runner` executes them.
Kept free of torch so that method modules (and `gateau select`, which imports them) load without it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LONG, SHORT = "long", "short"  # the causal LMs that run rows
REWARD, EMBED = "reward", "embed"  # extra models a method may name in `Method.aux_models`


@dataclass(frozen=True)
class RowKey:
    """Which model runs the row (``long`` or ``short``) and what the row is (``full``, ``window``, ``seg3``...)."""

    role: str
    kind: str


@dataclass(frozen=True)
class RowRequest:
    """Score ``ids[response_start:]`` given ``ids[:response_start]``; optionally measure response→key attention."""

    ids: tuple[int, ...]
    response_start: int
    attention: bool = False


@dataclass
class RowResult:
    """``nll``: mean response NLL in nats/token. ``attention``: (len(ids),) float32, the mean attention weight that
    response tokens pay to each position (averaged over response tokens, heads and layers), or None.
    ``error``: why the row could not be run (then nll is None) and ``status`` its per-sample status value
    (``oom``, ``nonfinite``)."""

    nll: float | None
    attention: np.ndarray | None = None
    error: str | None = None
    status: str | None = None
