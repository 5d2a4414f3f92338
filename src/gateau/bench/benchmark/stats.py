"""Metrics of one score vector against the synthetic labels: AUROC with its Hanley–McNeil standard error, the
precision of the top 10/30/50%, and the mean percentile of each sample type; plus `label_arrays`, which aligns the
labels with a score table's ids. Pure functions: arrays in, numbers out."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from scipy.stats import rankdata

from gateau.bench.synth import SAMPLE_TYPES, SynthLabel

from ...errors import UsageError

TOP_FRACTIONS = (0.1, 0.3, 0.5)


def hanley_mcneil_se(auroc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of an AUROC (Hanley & McNeil 1982); NaN when undefined."""
    if not np.isfinite(auroc) or n_pos == 0 or n_neg == 0:
        return float("nan")
    q1, q2 = auroc / (2 - auroc), 2 * auroc**2 / (1 + auroc)
    var = (auroc * (1 - auroc) + (n_pos - 1) * (q1 - auroc**2) + (n_neg - 1) * (q2 - auroc**2)) / (n_pos * n_neg)
    return float(math.sqrt(max(var, 0.0)))


def top_count(fraction: float, n: int) -> int:
    """How many samples the top ``fraction`` of ``n`` is (as `gateau select --ratio`: ceil, at least 1)."""
    return max(1, math.ceil(fraction * n - 1e-9)) if n else 0


def metrics(score: np.ndarray, positive: Sequence[bool], types: Sequence[str]) -> dict[str, Any]:
    """AUROC (± SE), top-10/30/50% precision and per-type mean percentile of one score vector.

    NaN scores (unrankable samples) rank last, tied with each other; other ties break by input order for the
    precision (as `rank_table` does) and count half in the AUROC. ``type_pct``: the mean percentile rank of each
    type's samples, 100 = ranked first.
    """
    from sklearn.metrics import roc_auc_score

    score = np.asarray(score, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    types = np.asarray(types, dtype=object)
    n = len(score)
    finite = np.isfinite(score)
    filled = score.copy()
    filled[~finite] = (score[finite].min() - 1.0) if finite.any() else 0.0
    n_pos = int(positive.sum())
    auroc = float(roc_auc_score(positive, filled)) if 0 < n_pos < n else float("nan")
    order = np.lexsort((np.arange(n), -filled))
    out: dict[str, Any] = {"auroc": auroc, "auroc_se": hanley_mcneil_se(auroc, n_pos, n - n_pos)}
    for fraction in TOP_FRACTIONS:
        k = top_count(fraction, n)
        out[f"p{round(fraction * 100)}"] = float(positive[order[:k]].mean()) if k else float("nan")
    pct = 100.0 * rankdata(filled, method="average") / n if n else filled
    present = [t for t in SAMPLE_TYPES if t in set(types)] + sorted(set(types) - set(SAMPLE_TYPES))
    out["type_pct"] = {t: float(pct[types == t].mean()) for t in present}
    out["type_n"] = {t: int((types == t).sum()) for t in present}
    out["n"], out["n_ranked"] = n, int(finite.sum())
    return out


def label_arrays(ids: Sequence[str], labels: Sequence[SynthLabel]) -> tuple[np.ndarray, np.ndarray]:
    """(long_dependent bools, type strings) aligned with ``ids``; ValueError if an id has no label."""
    by_id = {lab.id: lab for lab in labels}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise UsageError(f"{len(missing)} scored ids have no label (e.g. {missing[0]!r}); "
                         "score the data.jsonl written next to labels.jsonl")
    return (np.array([by_id[i].long_dependent for i in ids], dtype=bool),
            np.array([by_id[i].type for i in ids], dtype=object))
