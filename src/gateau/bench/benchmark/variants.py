"""The variants the benchmark compares, evaluated from stored score tables alone: every registered method under
the settings grid it declares (`Method.bench_variants`: HMG normalisations, CAM in-sample options, gateau α × CAM
options, at every window for window-dependent methods), `with_window` to pair one window's HMG with the base
run's CAM columns, `evaluate_tables` / `evaluate` to turn tables or run directories into result rows,
and `sort_rows` to order them. Needs no model."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa

from ...config import ModelConfig
from ...errors import UsageError
from ...methods import METHODS, method_options
from ...methods.base import BenchVariant
from ...select.rank import rank_table
from ...status import Status
from ..synth import SynthLabel
from .stats import label_arrays, metrics, top_count

MAIN_WINDOW = ModelConfig.short_window  # the tool's default short window
TOP_FRACTION = 0.3  # the selection size every method is evaluated at (CaR's set depends on it)


def has_columns(table: pa.Table, method: str) -> bool:
    """True if ``table`` holds every stored column ``method`` scores from."""
    return method in METHODS and set(METHODS[method].columns) <= set(table.column_names)


def has_values(table: pa.Table, column: str) -> bool:
    """True if ``table`` has ``column`` with a value in at least one row."""
    return column in table.column_names and table.column(column).null_count < table.num_rows


WINDOW_COLUMNS = tuple(dict.fromkeys(c for cls in METHODS.values() for c in cls.window_columns))


def with_window(base: pa.Table, window_table: pa.Table) -> pa.Table:
    """``base`` with its window-dependent columns (`Method.window_columns`) taken from ``window_table`` (aligned by
    id); a row is ``ok`` only where it is ok in both. Lets a method combine one window's HMG with the CAM columns
    measured once in the base run."""
    if window_table is base:
        return base
    pos = {sid: i for i, sid in enumerate(window_table.column("id").to_pylist())}
    take = [pos.get(sid) for sid in base.column("id").to_pylist()]
    w_status = window_table.column("status").to_pylist()
    status = [s if (j is not None and w_status[j] == Status.OK) or s != Status.OK else Status.WINDOW_FAILED.value
              for s, j in zip(base.column("status").to_pylist(), take)]
    out = base.set_column(base.schema.get_field_index("status"), "status", pa.array(status, pa.string()))
    idx = pa.array(take, type=pa.int64())
    for name in WINDOW_COLUMNS:
        if name in window_table.column_names:
            col = window_table.column(name).take(idx)
            if name in out.column_names:
                out = out.set_column(out.schema.get_field_index(name), name, col)
            else:
                out = out.append_column(name, col)
    return out


@dataclass
class _Eval:
    labels: Sequence[SynthLabel]
    k: int
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, method: str, table: pa.Table, variant: BenchVariant, *, window: int | None, main: bool) -> None:
        options = method_options(method, variant.preset, **variant.overrides)
        score = rank_table(table, method, options, k=self.k).score
        positive, types = label_arrays(table.column("id").to_pylist(), self.labels)
        self.rows.append({"method": method, "window": window, "preset": variant.preset, "extra": False,
                          "main": main, "settings": dict(variant.overrides), **metrics(score, positive, types)})


def evaluate_tables(tables: Mapping[int, pa.Table], labels: Sequence[SynthLabel], base: pa.Table | None = None,
                    main_window: int | None = None) -> list[dict[str, Any]]:
    """Evaluate every registered method under each of its `Method.bench_variants`; one dict per variant.

    ``tables``: short window W → a score table holding that window's columns (``ppl_short``, ``ppl_long``...).
    ``base``: the table with the window-independent columns (CAM, IFD, PPL...); default: the table with the most
    columns. Methods with window-dependent columns are evaluated at every W (their other columns from ``base``),
    the others once. ``main_window``: the W whose variants are flagged ``main`` (default 128 if present, else the
    smallest). Methods whose columns are absent are skipped, and so are variants whose `BenchVariant.requires`
    columns hold no value (e.g. calibrated CAM on a run scored without ``--calibrate-attention``). Every method ranks for a selection of the top 30%.
    """
    if not tables:
        raise UsageError("no score tables to evaluate")
    windows = sorted(tables)
    if main_window is None or main_window not in tables:
        main_window = MAIN_WINDOW if MAIN_WINDOW in tables else windows[0]
    if base is None:
        base = max(tables.values(), key=lambda t: len(t.column_names))
    ev = _Eval(labels, top_count(TOP_FRACTION, base.num_rows))
    for name, cls in METHODS.items():
        at = [(w, with_window(base, tables[w])) for w in windows] if cls.window_columns else [(None, base)]
        for w, table in at:
            if not has_columns(table, name):
                continue
            for variant in cls.bench_variants():
                if not all(has_values(table, c) for c in variant.requires):
                    continue  # an optional measurement this run did not make
                ev.add(name, table, variant, window=w, main=variant.main and w in (None, main_window))
    return ev.rows


def read_run(run_dir: str | Path) -> tuple[int | None, pa.Table]:
    """(short window W, score table) of a run directory made by `gateau score`."""
    from gateau.store import RunStore

    store = RunStore(run_dir)
    return store.read_config()["measure"]["short_window"], store.read_scores()


def evaluate(run_dirs: Sequence[str | Path], labels: Sequence[SynthLabel],
             main_window: int | None = None) -> list[dict[str, Any]]:
    """`evaluate_tables` on run directories: each run's window W comes from its config; when two runs share a W,
    the one with more columns is used; the base table is the run with the most columns."""
    tables: dict[int, pa.Table] = {}
    base = None
    for d in run_dirs:
        w, table = read_run(d)
        if w is None:
            raise UsageError(f"{d} was scored in pair mode; the benchmark compares short windows")
        if w not in tables or len(table.column_names) > len(tables[w].column_names):
            tables[w] = table
        if base is None or len(table.column_names) > len(base.column_names):
            base = table
    return evaluate_tables(tables, labels, base=base, main_window=main_window)


def sort_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """By AUROC (highest first, NaN last), then top-30% precision; stable."""
    def key(r: dict[str, Any]) -> tuple[float, float]:
        a = r["auroc"]
        return (-a if np.isfinite(a) else math.inf, -(r.get("p30") if np.isfinite(r.get("p30", np.nan)) else -1))
    return sorted(rows, key=key)
