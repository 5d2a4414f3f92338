"""Statistics of `gateau bench e2e`: mean ± std over seeds and a seeded paired bootstrap CI (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value)."""
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, n_boot: int = 2000, seed: int = 0,
                     level: float = 0.95) -> dict[str, float]:
    """CI of mean(a − b) over paired items (``a[i]``, ``b[i]``: the same eval item under two arms, each already
    averaged over seeds): resample item indices with replacement ``n_boot`` times (``np.random.default_rng(seed)``),
    take the percentile interval. Returns ``diff``, ``lo``, ``hi``, ``p_le_0`` (share of resamples with
    mean diff ≤ 0) and ``n``."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.size == 0:
        raise ValueError("paired bootstrap needs at least one pair")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(n_boot, d.size))
    means = d[idx].mean(axis=1)
    tail = (1 - level) / 2
    return {"diff": float(d.mean()), "lo": float(np.quantile(means, tail)), "hi": float(np.quantile(means, 1 - tail)),
            "p_le_0": float((means <= 0).mean()), "n": int(d.size)}
