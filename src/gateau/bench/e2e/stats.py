"""Statistics of `gateau bench e2e`: mean ± std over seeds, a seeded paired bootstrap over items, and the
hierarchical bootstrap (seeds within each arm, then items) with the smallest detectable difference (numpy only)."""

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


Z_ALPHA_05_TWO_SIDED = 1.959964  # z_{0.975}
Z_POWER_80 = 0.841621  # z_{0.80}
MDE_FACTOR = Z_ALPHA_05_TWO_SIDED + Z_POWER_80  # ≈ 2.80: smallest detectable difference = 2.80 · SE


def hierarchical_bootstrap(a: np.ndarray, b: np.ndarray, *, n_boot: int = 2000, seed: int = 0,
                           level: float = 0.95) -> dict[str, float]:
    """CI of mean(a) − mean(b) where ``a`` (seeds_a × items) and ``b`` (seeds_b × items) hold one arm's per-item
    scores per training seed, the same items (columns) in both. Each resample draws, in this order with
    ``np.random.default_rng(seed)``: item indices (``n_boot`` × items, shared by both arms: the items are paired),
    then seed indices of ``a`` (``n_boot`` × seeds_a) and of ``b`` (``n_boot`` × seeds_b), each arm's seeds
    resampled within the arm; the resample's statistic is the mean over the drawn seeds and items of ``a`` minus the
    same of ``b``. Returns ``diff`` (observed), ``lo``/``hi`` (percentile interval), ``se`` (std of the resampled
    differences), ``mde`` (`MDE_FACTOR` × se: the smallest true difference a two-sided test at 0.05 detects with
    80% power), ``p_le_0``, ``n`` (items) and ``seeds_a``/``seeds_b``."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or a.shape[1] == 0 or not a.shape[0] or not b.shape[0]:
        raise ValueError(f"hierarchical bootstrap needs (seeds x items) arrays with the same items, got {a.shape} "
                         f"and {b.shape}")
    rng = np.random.default_rng(seed)
    n = a.shape[1]
    items = rng.integers(0, n, size=(n_boot, n))
    seeds_a = rng.integers(0, a.shape[0], size=(n_boot, a.shape[0]))
    seeds_b = rng.integers(0, b.shape[0], size=(n_boot, b.shape[0]))

    def resampled_means(x: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        # x[seeds] (n_boot, s, n) -> columns picked by items: mean over drawn seeds and drawn items
        rows = x[seeds]  # (n_boot, s, n)
        picked = np.take_along_axis(rows, items[:, None, :].repeat(x.shape[0], axis=1), axis=2)
        return picked.mean(axis=(1, 2))

    diffs = resampled_means(a, seeds_a) - resampled_means(b, seeds_b)
    tail = (1 - level) / 2
    se = float(diffs.std(ddof=1)) if n_boot > 1 else 0.0
    return {"diff": float(a.mean() - b.mean()), "lo": float(np.quantile(diffs, tail)),
            "hi": float(np.quantile(diffs, 1 - tail)), "se": se, "mde": MDE_FACTOR * se,
            "p_le_0": float((diffs <= 0).mean()), "n": int(n), "seeds_a": int(a.shape[0]), "seeds_b": int(b.shape[0])}
