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

from ..errors import UsageError

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
            raise UsageError("softmax temperature must be > 0")
        z = v / temperature
        e = np.exp(z - z.max())
        out[ok] = e / e.sum()
    elif name == "minmax":
        span = v.max() - v.min()
        out[ok] = (v - v.min()) / span if span > 0 else 0.5
    elif name == "sum":
        total = v.sum()
        if total == 0:
            raise UsageError("sum normalisation of an all-zero vector")
        out[ok] = v / total
    elif name == "rank":
        out[ok] = rankdata(v, method="average") / len(v)
    elif name == "zscore":
        std = v.std()
        out[ok] = (v - v.mean()) / std if std > 0 else 0.0
    elif name == "log":
        if (v <= 0).any():
            raise UsageError("log normalisation of a non-positive value")
        out[ok] = np.log(v)
    elif name == "raw":
        out[ok] = v
    else:
        raise UsageError(f"unknown normalisation {name!r}; choose one of {NORMS}")
    return out


def normalize_groups(x: np.ndarray, lengths: np.ndarray, name: str, temperature: float = 1.0) -> np.ndarray:
    """`normalize` applied to each consecutive group of a flat vector, vectorised over groups.

    x: (sum(lengths),) finite values; lengths: (n_groups,) positive group sizes. Equals concatenating
    ``normalize(group, name, temperature)`` over the groups (``rank`` loops over groups)."""
    x = np.asarray(x, dtype=np.float64)
    lengths = np.asarray(lengths, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    group = np.repeat(np.arange(len(lengths)), lengths)

    def per_group(reduce: np.ufunc, v: np.ndarray) -> np.ndarray:
        return reduce.reduceat(v, starts)[group]

    if name == "softmax":
        if temperature <= 0:
            raise UsageError("softmax temperature must be > 0")
        z = x / temperature
        e = np.exp(z - per_group(np.maximum, z))
        return e / per_group(np.add, e)
    if name == "sum":
        total = per_group(np.add, x)
        if (total == 0).any():
            raise UsageError("sum normalisation of an all-zero vector")
        return x / total
    if name == "minmax":
        low = per_group(np.minimum, x)
        span = per_group(np.maximum, x) - low
        return np.where(span > 0, (x - low) / np.where(span > 0, span, 1.0), 0.5)
    if name == "zscore":
        mean = per_group(np.add, x) / lengths[group]
        std = np.sqrt(per_group(np.add, (x - mean) ** 2) / lengths[group])
        return np.where(std > 0, (x - mean) / np.where(std > 0, std, 1.0), 0.0)
    if name in ("log", "raw"):
        return normalize(x, name, temperature)
    if name == "rank":
        return np.concatenate([normalize(x[s: s + n], name) for s, n in zip(starts, lengths)])
    raise UsageError(f"unknown normalisation {name!r}; choose one of {NORMS}")
