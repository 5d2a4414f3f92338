"""Dataset-level combination: turn the stored raw columns into one score per sample, rank, and diagnose.

Runs on ``scores.parquet`` alone (no model, no torch), in seconds, so α, the normalisation and the method can be
changed freely after scoring. Only samples with status ``ok`` are ranked; the others keep a NaN score. Everything
method-specific (options, score, components, notes) comes from the method (`gateau.methods`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import UsageError
from ..methods import get_method
from ..status import Status
from ..util.stats import spearman

# Stored columns every run has, reported beside each method's own components.
GENERIC_COMPONENTS = ("n_context", "n_response")


def table_columns(table: pa.Table) -> dict[str, Any]:
    """Columns as numpy arrays (scalars, NaN for null) or Python lists (list and string columns). Per-token
    columns (lists of float32, |y| values per sample) come as a list of float32 numpy arrays (None for
    null), views of one buffer: no Python float per token."""
    out: dict[str, Any] = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_list(col.type) and pa.types.is_float32(col.type.value_type):
            out[name] = _float32_lists(col)
        elif pa.types.is_list(col.type) or pa.types.is_string(col.type) or pa.types.is_large_list(col.type):
            out[name] = col.to_pylist()
        else:
            out[name] = col.to_numpy(zero_copy_only=False).astype(np.float64) if col.null_count == 0 else np.array(
                [np.nan if v is None else v for v in col.to_pylist()], dtype=np.float64)
    return out


def _float32_lists(col: pa.ChunkedArray) -> list[np.ndarray | None]:
    """A list<float32> column as one numpy array per row (None for null rows)."""
    out: list[np.ndarray | None] = []
    for chunk in col.chunks:
        flat = chunk.flatten().to_numpy(zero_copy_only=False)  # the values of non-null rows, in order
        lengths = chunk.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
        parts = np.split(flat, np.cumsum(lengths)[:-1]) if len(lengths) else []
        valid = chunk.is_valid().to_numpy(zero_copy_only=False)
        out.extend(p if v else None for p, v in zip(parts, valid))
    return out


def _only_ok(values: Any, ok: np.ndarray) -> Any:
    """Blank out (None / NaN) the entries of rows whose status is not ok."""
    if isinstance(values, list):
        return [v if o else None for v, o in zip(values, ok)]
    return np.where(ok, values, np.nan)


@dataclass
class Ranking:
    """``score`` (n,) float64, NaN where unrankable; ``order``: rankable row positions, best first; ``rank`` (n,)
    1-based rank or 0 if unrankable; ``components``: per-sample values behind the score (diagnostics, export);
    ``columns``: the stored columns the method scored from (non-ok rows blanked); ``k``: the selection size the
    score was computed for (None: unknown)."""

    method: str
    options: Any
    score: np.ndarray
    order: np.ndarray
    rank: np.ndarray
    components: dict[str, np.ndarray]
    columns: dict[str, Any]
    k: int | None = None

    def agreement(self) -> dict[str, float]:
        """Spearman correlation of the final score with each component over rankable samples."""
        out: dict[str, float] = {}
        idx = self.order
        for name, values in self.components.items():
            rho = spearman(self.score[idx], values[idx])
            if not np.isnan(rho):
                out[name] = rho
        return out

    def notes(self, chosen: np.ndarray) -> list[str]:
        """The method's summary lines for the selection ``chosen`` (row positions)."""
        return get_method(self.method).notes(self.columns, self.options, self.score, chosen, self.k)


def rank_table(table: pa.Table, method: str, options: Any = None, k: int | None = None) -> Ranking:
    """Score every row of ``table`` with ``method`` (``options``: its Options, None = defaults) and rank the ok rows
    (ties broken by input order). ``k``: the selection size, for methods whose choice is a set (CaR)."""
    impl = get_method(method)
    options = type(impl).options() if options is None else options
    cols = table_columns(table)
    missing = [c for c in impl.required_columns(options) if c not in cols]
    if missing:
        raise UsageError(f"method {method!r} needs columns {missing}, which this run did not measure; "
                         f"re-run `gateau score` with --methods including {method}")
    ok = np.array([s == Status.OK for s in cols["status"]], dtype=bool)
    rankable = {name: _only_ok(v, ok) for name, v in cols.items()}
    score = np.where(ok, np.asarray(impl.score(rankable, options, k), dtype=np.float64), np.nan)
    finite = np.flatnonzero(np.isfinite(score))
    order = finite[np.lexsort((finite, -score[finite]))]
    rank = np.zeros(len(score), dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    components = {c: rankable[c] for c in GENERIC_COMPONENTS if c in rankable}
    components.update(impl.components(rankable, options))
    return Ranking(method, options, score, order, rank, components, rankable, k)
