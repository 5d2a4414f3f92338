"""The CAM cascade (`gateau score --cam-top F`): HMG on every sample, CAM only on the top fraction F by HMG.

CAM's segment rows cost ⌊n/128⌋ rows of 128 + |x| + |y| tokens per sample (about 9 full passes at 64k context and a
1k response), HMG about 1.1 full passes. With α = 0.8 and rank normalisation the gateau score is 0.8·u + 0.2·v
(u, v: the HMG and CAS percentiles), so a sample at HMG percentile u scores at most 0.8·u + 0.2, while the top r of
samples by HMG all score at least 0.8·(1 − r): only samples with u ≥ 1 − r − 0.25 can enter a top-r selection.
CAM need only be measured there; the README's cascade section measures how far F can go down.

Phases, each through the run's executor and store like any run (so a cascade resumes after a kill at any point):

1. ``hmg``: every sample not yet done gets all its rows except CAM's (no segment rows, a plain full row), stored
   with ``cam_cascade = pending``;
2. the top set: the ceil(F × n_ok) ok samples with the highest HMP = nll_short − nll_long (HMG's default log-rank
   order; ties by input order), written once to ``RUN/cascade.json`` with the fingerprint and the samples' content
   hashes it was chosen from, so a resumed run reuses exactly that set (it is chosen again only when the data changed);
3. ``cam``: the top samples not yet measured by CAM are scored again with every row (complete rows, ``top``): the
   full row once more, now with the attention probe, plus the segment rows;
4. the rest: the other samples' rows are stored again marked ``rest`` with a note (no model).

`gateau select --method gateau` ranks ``rest`` samples by HMG below every ``top`` one (`gateau.methods.gateau`).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any, Callable

import numpy as np

from ..config import ScoreConfig
from ..data import Sample
from ..errors import UsageError
from ..methods import parse_methods
from ..methods.base import MeasureSettings
from ..methods.cam import CAM, CASCADE_COLUMN, CASCADE_PENDING, CASCADE_REST, CASCADE_TOP
from ..status import Status
from ..store import RunStore
from ..util.atomic import atomic_write
from ..util.settings_hash import settings_hash
from .run_plan import plan_chunks
from .scorer import output_schema

CASCADE_FILE = "cascade.json"
HMG_COLUMNS = ("nll_short", "nll_long")

Execute = Callable[[ScoreConfig, list[list[Sample]]], int]  # an executor over chunks; returns model tokens run


def check_cascade(config: ScoreConfig) -> None:
    """UsageError unless the chosen methods measure both HMG (to rank by) and CAM (to cascade)."""
    if config.execution.shard is not None:
        raise UsageError("--cam-top chooses its top fraction over the whole data set: score it in one run "
                         "(--executor local or ray), not with --shard")
    methods = parse_methods(config.measure.methods)
    settings = MeasureSettings.from_config(config)
    if not any(set(HMG_COLUMNS) <= set(m.columns) for m in methods):
        raise UsageError("--cam-top ranks samples by hmg first: include gateau, hmg or hmg-tokens in --methods")
    if not any(CASCADE_COLUMN in m.extra_columns(settings) for m in methods):
        raise UsageError("--cam-top applies to cam's segment rows: include gateau or cam in --methods")


def top_count(fraction: float, n_ok: int) -> int:
    """How many of ``n_ok`` measurable samples the cascade gives to CAM: ceil(F × n_ok), at least 1 if any."""
    return min(n_ok, max(1 if n_ok else 0, math.ceil(fraction * n_ok - 1e-9)))


def hmg_top(ids: list[str], statuses: list[str], nll_short: list[float | None], nll_long: list[float | None],
            fraction: float) -> list[str]:
    """The ids of the top ``fraction`` of ok samples by HMP = nll_short − nll_long (HMG's log-rank order), best
    first, ties broken by input order (the order of ``ids``)."""
    hmp = np.array([s - l if st == Status.OK and s is not None and l is not None else np.nan
                    for st, s, l in zip(statuses, nll_short, nll_long)], dtype=np.float64)
    finite = np.flatnonzero(np.isfinite(hmp))
    order = finite[np.lexsort((finite, -hmp[finite]))]
    return [ids[i] for i in order[: top_count(fraction, len(finite))]]


def run_cascade(config: ScoreConfig, samples: list[Sample], todo: list[Sample], store: RunStore, fp: str,
                execute: Execute) -> int:
    """Score ``samples`` into ``store`` as a cascade (phases in the module docstring); ``todo``: the samples with no
    final row of fingerprint ``fp`` yet. Returns the model tokens run."""
    check_cascade(config)
    chunk = config.execution.chunk_size
    tokens = execute(replace(config, cascade_phase="hmg"), plan_chunks(todo, chunk))
    rows = _current_rows(store, samples)
    top = set(_top_set(store, config, fp, samples, rows))
    again = [s for s in samples if s.id in top and rows[s.id].get(CASCADE_COLUMN) in (CASCADE_PENDING, CASCADE_REST)]
    tokens += execute(replace(config, cascade_phase="cam"), plan_chunks(again, chunk))
    _mark_rest(store, config, _current_rows(store, samples), top)
    return tokens


def _current_rows(store: RunStore, samples: list[Sample]) -> dict[str, dict[str, Any]]:
    """The stored row (newest) of every sample of ``samples`` that has one, by id."""
    table = store.stored_rows()
    if table is None:
        return {}
    wanted = {s.id for s in samples}
    return {row["id"]: row for row in table.to_pylist() if row["id"] in wanted}


def _top_set(store: RunStore, config: ScoreConfig, fp: str, samples: list[Sample],
             rows: dict[str, dict[str, Any]]) -> list[str]:
    """The cascade's top ids: from ``RUN/cascade.json`` when it was chosen for this fingerprint, fraction and data,
    else chosen from the stored HMG columns now and written there."""
    key = settings_hash({"fingerprint": fp, "cam_top": config.measure.cam_top,
                         "samples": [(s.id, s.content_hash) for s in samples]})
    path = store.dir / CASCADE_FILE
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
            if saved.get("key") == key:
                return list(saved["top"])
        except (ValueError, KeyError, TypeError):
            pass  # damaged: choose again from the stored rows
    present = [s.id for s in samples if s.id in rows]
    col = {c: [rows[i].get(c) for i in present] for c in ("status", *HMG_COLUMNS)}
    top = hmg_top(present, col["status"], col["nll_short"], col["nll_long"], config.measure.cam_top)
    atomic_write(path, json.dumps({"key": key, "fingerprint": fp, "cam_top": config.measure.cam_top,
                                   "n_ok": sum(1 for st in col["status"] if st == Status.OK), "top": top},
                                  indent=1) + "\n")
    return top


def rest_row(row: dict[str, Any], cam_top: float) -> dict[str, Any]:
    """``row`` (one stored sample) as a sample outside the cascade's top: CAM's own columns emptied, marked
    ``rest``, with a note saying so."""
    cam_only = set(CAM.columns) - set(HMG_COLUMNS)
    note = (f"cam not measured: outside the cascade's top {cam_top:g} by hmg (--cam-top); "
            "gateau ranks it by hmg below every cam-measured sample")
    new = {k: (None if k in cam_only else v) for k, v in row.items()}
    new[CASCADE_COLUMN] = CASCADE_REST
    new["note"] = "; ".join(n for n in (row.get("note") or "", note) if n)
    return new


def _mark_rest(store: RunStore, config: ScoreConfig, rows: dict[str, dict[str, Any]], top: set[str]) -> None:
    """Store the rows of samples outside ``top`` again as ``rest`` (`rest_row`); rows already marked rest, and
    rows without a cascade mark (failed samples), are left as they are."""
    changed = [rest_row(row, config.measure.cam_top) for sid, row in rows.items()
               if sid not in top and row.get(CASCADE_COLUMN) in (CASCADE_PENDING, CASCADE_TOP)]
    if changed:
        schema = output_schema(config)
        store.write_shard([{name: r.get(name) for name in schema.names} for r in changed], schema)


__all__ = ["CASCADE_FILE", "check_cascade", "hmg_top", "rest_row", "run_cascade", "top_count"]
