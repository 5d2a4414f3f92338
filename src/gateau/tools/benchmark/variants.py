"""The variants the benchmark compares, evaluated from stored score tables alone: every registered method under
its settings grid (HMG normalisations, CAM in-sample options, gateau α × CAM options × window), the bench-only
extra (HMG as the raw difference PPL_A − PPL_B), `with_window` to pair one window's HMG
with the base run's CAM columns, `evaluate_tables` / `evaluate` to turn tables or run directories into result rows,
and `sort_rows` to order them. Needs no model."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa

from gateau.select.rank import rank_table, resolve_options, table_columns
from gateau.methods import METHODS
from gateau.methods.base import ScoreOptions
from gateau.methods.normalize import normalize
from gateau.tools.synth import SynthLabel
from gateau.tools.benchmark.stats import label_arrays, metrics, top_count

MAIN_WINDOW = 128  # the tool's default short window (gateau.pipeline.scorer.DEFAULT_SHORT_WINDOW)

# (dataset normalisation, softmax temperature); the temperature only applies where a softmax is taken.
NORM_SETTINGS: tuple[tuple[str, float], ...] = (
    ("softmax", 0.1), ("softmax", 1.0), ("softmax", 10.0),
    ("minmax-softmax", 0.1), ("minmax-softmax", 1.0), ("minmax-softmax", 10.0),
    ("log-rank", 1.0), ("rank", 1.0), ("zscore", 1.0))
ALPHAS = (0.5, 0.7, 0.8, 0.9)
CAM_INSAMPLE = tuple((i, a, s) for i in ("softmax", "sum") for a in ("softmax", "sum") for s in (0, 4))
CAM_TEMPERATURES = (0.1, 10.0)  # extra in-sample softmax temperatures for CAM alone (paper options otherwise)
GATEAU_CAM = tuple((a, s) for a in ("softmax", "sum") for s in (0, 4))  # importance softmax, as in the paper
# Settings shown per method (the others do not change its score).
_SHOWN = {"hmg": ("norm", "temperature"), "cam": ("is_norm", "attn_norm", "attn_sink_tokens", "segment_temperature"),
          "gateau": ("norm", "temperature", "alpha", "attn_norm", "attn_sink_tokens"),
          "ifd": ("ifd_drop_above_one",), "random": ("seed",), "car": ("select_count",)}



def has_columns(table: pa.Table, method: str) -> bool:
    """True if ``table`` holds every stored column ``method`` scores from."""
    if method not in METHODS:
        return False
    need = set(METHODS[method].columns) | ({"n_context"} if method == "length" else set())
    return need <= set(table.column_names)


def with_window(base: pa.Table, window_table: pa.Table) -> pa.Table:
    """``base`` with its HMG columns (ppl_short, ppl_long, n_short_context) taken from ``window_table`` (aligned by
    id); a row is ``ok`` only where it is ok in both. Lets gateau combine one window's HMG with the CAM columns
    measured once in the base run."""
    if window_table is base:
        return base
    pos = {sid: i for i, sid in enumerate(window_table.column("id").to_pylist())}
    take = [pos.get(sid) for sid in base.column("id").to_pylist()]
    w_status = window_table.column("status").to_pylist()
    status = [s if (j is not None and w_status[j] == "ok") or s != "ok" else "window_failed"
              for s, j in zip(base.column("status").to_pylist(), take)]
    out = base.set_column(base.schema.get_field_index("status"), "status", pa.array(status, pa.string()))
    idx = pa.array(take, type=pa.int64())
    for name in ("ppl_short", "ppl_long", "n_short_context"):
        if name in window_table.column_names:
            col = window_table.column(name).take(idx)
            if name in out.column_names:
                out = out.set_column(out.schema.get_field_index(name), name, col)
            else:
                out = out.append_column(name, col)
    return out


def _ok_array(cols: dict[str, Any], name: str) -> np.ndarray:
    ok = np.array([s == "ok" for s in cols["status"]])
    return np.where(ok, cols[name], np.nan)


def hmg_difference(table: pa.Table) -> np.ndarray:
    """Extra: the raw difference PPL_A − PPL_B (no normalisation)."""
    cols = table_columns(table)
    return _ok_array(cols, "ppl_short") - _ok_array(cols, "ppl_long")


@dataclass
class _Eval:
    labels: Sequence[SynthLabel]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, method: str, table: pa.Table, options: ScoreOptions | None = None, *, window: int | None = None,
            preset: str | None = None, extra: bool = False, main: bool = False,
            score: np.ndarray | None = None, name: str | None = None) -> None:
        options = options or resolve_options()
        if score is None:
            score = rank_table(table, method, options).score
        positive, types = label_arrays(table.column("id").to_pylist(), self.labels)
        shown = {k: getattr(options, k) for k in _SHOWN.get(method.split("-")[0], ())}
        if method == "hmg-diff":
            shown = {}
        self.rows.append({"method": name or method, "window": window, "preset": preset, "extra": extra,
                          "main": main, "settings": shown, **metrics(score, positive, types)})


def evaluate_tables(tables: Mapping[int, pa.Table], labels: Sequence[SynthLabel], base: pa.Table | None = None,
                    main_window: int | None = None) -> list[dict[str, Any]]:
    """Evaluate every method and variant on stored score tables; one dict per variant, in a fixed order.

    ``tables``: short window W → a score table holding that window's HMG columns (``ppl_short``, ``ppl_long``).
    ``base``: the table with the window-independent columns (CAM, IFD, PPL...); default: the table with the most
    columns. ``main_window``: the W whose variants are flagged ``main`` (default 128 if present, else the
    smallest). Methods whose columns are absent are skipped.
    """
    if not tables:
        raise ValueError("no score tables to evaluate")
    windows = sorted(tables)
    if main_window is None or main_window not in tables:
        main_window = MAIN_WINDOW if MAIN_WINDOW in tables else windows[0]
    if base is None:
        base = max(tables.values(), key=lambda t: len(t.column_names))
    ev = _Eval(labels)
    default = resolve_options()
    ev.add("random", base, default, main=True)
    ev.add("length", base, default, main=True)
    if has_columns(base, "ppl"):
        ev.add("ppl", base, default, main=True)
    if has_columns(base, "ifd"):
        ev.add("ifd", base, default, main=True)
        ev.add("ifd", base, resolve_options(ifd_drop_above_one=False))
    if has_columns(base, "car"):
        ev.add("car", base, default, main=True)
        ev.add("car", base, resolve_options(select_count=top_count(0.3, base.num_rows)))

    has_cam = has_columns(base, "cam")
    if has_cam:
        for is_norm, attn_norm, sink in CAM_INSAMPLE:
            paper = (is_norm, attn_norm, sink) == ("softmax", "softmax", 0)
            ev.add("cam", base, resolve_options(is_norm=is_norm, attn_norm=attn_norm, attn_sink_tokens=sink),
                   preset="paper" if paper else None, main=paper or (attn_norm, sink) == ("sum", 4))
        for t in CAM_TEMPERATURES:
            ev.add("cam", base, resolve_options(segment_temperature=t))

    for w in windows:
        table = tables[w]
        if not has_columns(table, "hmg"):
            continue
        main = w == main_window
        seen: set[tuple[str, float]] = set()
        for norm, t in NORM_SETTINGS:
            key = (norm, t if norm == "softmax" else 1.0)  # HMG alone: only the inner softmax has a temperature
            if key in seen:
                continue
            seen.add(key)
            preset = {"softmax": "paper", "minmax-softmax": "official"}.get(norm) if key[1] == 1.0 else None
            ev.add("hmg", table, resolve_options(norm=norm, temperature=key[1]), window=w, preset=preset,
                   main=(main and key[1] == 1.0) or norm == default.norm)
        ev.add("hmg-diff", table, window=w, extra=True, score=hmg_difference(table))
        if not has_cam:
            continue
        merged = with_window(base, table)
        for preset in ("paper", "official"):
            ev.add("gateau", merged, resolve_options(preset), window=w, preset=preset, main=main)
        for norm, t in NORM_SETTINGS:
            for alpha in ALPHAS:
                for attn_norm, sink in GATEAU_CAM:
                    opts = resolve_options(norm=norm, temperature=t, alpha=alpha, attn_norm=attn_norm,
                                           attn_sink_tokens=sink)
                    is_main = t == 1.0 and alpha == default.alpha and (attn_norm, sink) == (
                        default.attn_norm, default.attn_sink_tokens) and (
                        norm == default.norm or (main and norm == "zscore"))
                    ev.add("gateau", merged, opts, window=w, main=is_main)
    return ev.rows


def read_run(run_dir: str | Path) -> tuple[int | None, pa.Table]:
    """(short window W, score table) of a run directory made by `gateau score`."""
    from gateau.store import RunStore

    store = RunStore(run_dir)
    return store.read_config()["measure"].get("short_window"), store.read_scores()


def evaluate(run_dirs: Sequence[str | Path], labels: Sequence[SynthLabel],
             main_window: int | None = None) -> list[dict[str, Any]]:
    """`evaluate_tables` on run directories: each run's window W comes from its config; when two runs share a W,
    the one with more columns is used; the base table is the run with the most columns."""
    tables: dict[int, pa.Table] = {}
    base = None
    for d in run_dirs:
        w, table = read_run(d)
        if w is None:
            raise ValueError(f"{d} was scored in pair mode; the benchmark compares short windows")
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
