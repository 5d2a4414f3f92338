"""Rank correlation that is defined on every input: the agreement numbers of `gateau select` and the report."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho of two (n,) arrays over the rows where both are finite; NaN with fewer than 3 such rows or
    when either is constant on them (where rho is undefined)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return float("nan")
    return float(spearmanr(x[ok], y[ok]).statistic)
