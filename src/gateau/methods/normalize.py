"""Named normalisations of a 1-D score vector (across a dataset, or across the segments of one sample).

All ignore NaN entries (they stay NaN) and return float64 arrays of the input's shape.

- ``softmax``: exp(x/T) / Σ exp(x/T) (the paper's Norm; T = temperature, 1 in the paper);
- ``minmax``: (x − min) / (max − min), 0.5 everywhere if constant;
- ``sum``: x / Σ x (L1; for non-negative profiles such as attention mass);
- ``rank``: percentile rank in (0, 1], ties averaged;
- ``zscore``: (x − mean) / std, 0 if constant;
- ``log``: natural log (x must be > 0; for perplexities, log PPL = mean NLL in nats/token);
- ``raw``: x unchanged.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

NORMS = ("softmax", "minmax", "sum", "rank", "zscore", "log", "raw")


def normalize(x: np.ndarray, name: str, temperature: float = 1.0) -> np.ndarray:
    """Apply normalisation ``name`` to the finite entries of ``x`` (NaN stays NaN)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.full(x.shape, np.nan)
    ok = np.isfinite(x)
    if not ok.any():
        return out
    v = x[ok]
    if name == "softmax":
        if temperature <= 0:
            raise ValueError("softmax temperature must be > 0")
        z = v / temperature
        e = np.exp(z - z.max())
        out[ok] = e / e.sum()
    elif name == "minmax":
        span = v.max() - v.min()
        out[ok] = (v - v.min()) / span if span > 0 else 0.5
    elif name == "sum":
        total = v.sum()
        if total == 0:
            raise ValueError("sum normalisation of an all-zero vector")
        out[ok] = v / total
    elif name == "rank":
        out[ok] = rankdata(v, method="average") / len(v)
    elif name == "zscore":
        std = v.std()
        out[ok] = (v - v.mean()) / std if std > 0 else 0.0
    elif name == "log":
        if (v <= 0).any():
            raise ValueError("log normalisation of a non-positive value")
        out[ok] = np.log(v)
    elif name == "raw":
        out[ok] = v
    else:
        raise ValueError(f"unknown normalisation {name!r}; choose one of {NORMS}")
    return out
