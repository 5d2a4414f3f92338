"""Dataset-level combination: turn the stored raw columns into one score per sample, rank, and diagnose.

Runs on ``scores.parquet`` alone (no model), in seconds, so α, the normalisation and the method can be changed
freely after scoring. Only samples with status ``ok`` are ranked; the others keep a NaN score.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import pyarrow as pa
from scipy.stats import spearmanr

from gateau.methods import get_method
from gateau.methods.base import ScoreOptions

DATASET_NORMS = ("log-rank", "rank", "softmax", "minmax-softmax", "zscore")
PRESETS: dict[str, dict[str, Any]] = {
    # The paper's equations: softmax across the dataset at every level, softmax inside samples, T = 1, α = 0.8.
    "paper": dict(norm="softmax", temperature=1.0, segment_temperature=1.0, alpha=0.8, cas_outer=None,
                  is_norm="softmax", attn_norm="softmax", attn_sink_tokens=0),
    # The official rank script: min-max each PPL list, softmax of the difference, CAS used raw.
    "official": dict(norm="minmax-softmax", temperature=1.0, segment_temperature=1.0, alpha=0.8, cas_outer="raw",
                     is_norm="softmax", attn_norm="softmax", attn_sink_tokens=0),
}
# Raw columns whose agreement with the final ranking is reported, when present.
COMPONENT_COLUMNS = ("ppl_short", "ppl_long", "cas", "ifd", "nll_alone", "car_reward", "n_context", "n_response")


def resolve_options(preset: str | None = None, **overrides: Any) -> ScoreOptions:
    """ScoreOptions from a preset (default: the tool's defaults) with explicit overrides (None = keep)."""
    base = ScoreOptions() if preset is None else ScoreOptions(**PRESETS[_check_preset(preset)])
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(given) - {f.name for f in fields(ScoreOptions)}
    if unknown:
        raise ValueError(f"unknown score options: {sorted(unknown)}")
    if "norm" in given and given["norm"] not in DATASET_NORMS:
        raise ValueError(f"unknown --norm {given['norm']!r}; choose one of {DATASET_NORMS}")
    if "alpha" in given and not 0.0 <= given["alpha"] <= 1.0:
        raise ValueError("--alpha must be in [0, 1]")
    return replace(base, **given)


def _check_preset(name: str) -> str:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return name


def table_columns(table: pa.Table) -> dict[str, Any]:
    """Columns as numpy arrays (scalars, NaN for null) or Python lists (list columns)."""
    out: dict[str, Any] = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_list(col.type) or pa.types.is_string(col.type):
            out[name] = col.to_pylist()
        else:
            out[name] = np.array([np.nan if v is None else v for v in col.to_pylist()], dtype=np.float64)
    return out


@dataclass
class Ranking:
    """``score`` (n,) float64 NaN where unrankable; ``order``: rankable row positions, best first;
    ``rank`` (n,) 1-based rank or 0 if unrankable; ``components``: raw columns used for diagnostics."""

    method: str
    options: ScoreOptions
    score: np.ndarray
    order: np.ndarray
    rank: np.ndarray
    components: dict[str, np.ndarray]
    notes: list[str] = field(default_factory=list)  # method-specific summary lines (IFD drops, CaR clusters)

    def agreement(self) -> dict[str, float]:
        """Spearman correlation of the final score with each component over rankable samples."""
        out: dict[str, float] = {}
        idx = self.order
        for name, values in self.components.items():
            v = values[idx]
            ok = np.isfinite(v)
            if ok.sum() >= 3 and np.ptp(v[ok]) > 0 and np.ptp(self.score[idx][ok]) > 0:
                out[name] = float(spearmanr(self.score[idx][ok], v[ok]).statistic)
        return out


def _only_ok(values: Any, ok: np.ndarray) -> Any:
    """Blank out (None / NaN) the entries of rows whose status is not ok."""
    if isinstance(values, list):
        return [v if o else None for v, o in zip(values, ok)]
    return np.where(ok, values, np.nan)


def rank_table(table: pa.Table, method: str, options: ScoreOptions) -> Ranking:
    """Score every row of ``table`` with ``method`` and rank the ok rows (ties broken by input order)."""
    cols = table_columns(table)
    impl = get_method(method)
    missing = [c for c in impl.columns if c not in cols]
    if missing:
        raise ValueError(f"method {method!r} needs columns {missing}, which this run did not measure; "
                         f"re-run `gateau score` with --methods including {method}")
    ok = np.array([s == "ok" for s in cols["status"]])
    rankable_cols = {k: _only_ok(v, ok) for k, v in cols.items()}
    score, notes = impl.score_with_notes(rankable_cols, options)
    score = np.asarray(score, dtype=np.float64)
    score = np.where(ok, score, np.nan)
    finite = np.flatnonzero(np.isfinite(score))
    order = finite[np.lexsort((finite, -score[finite]))]
    rank = np.zeros(len(score), dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    components = {c: cols[c] for c in COMPONENT_COLUMNS if c in cols and not isinstance(cols[c], list)}
    if method == "gateau":
        components["hmp"] = get_method("hmg").score(rankable_cols, options)
    return Ranking(method, options, score, order, rank, components, notes)
