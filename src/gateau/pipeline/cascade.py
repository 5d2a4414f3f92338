"""The CAM cascade (`gateau score --cam-top F`): HMG on every sample, CAM only on the top fraction F by HMG.

CAM's segment rows cost ⌊n/128⌋ rows of 128 + |x| + |y| tokens per sample (about 9 full passes at 64k context and a
1k response), HMG about 1.1 full passes. With α = 0.8 and rank normalisation the gateau score is 0.8·u + 0.2·v
(u, v: the HMG and CAS percentiles), so a sample at HMG percentile u scores at most 0.8·u + 0.2, while the top r of
samples by HMG all score at least 0.8·(1 − r): only samples with u ≥ 1 − r − 0.25 can enter a top-r selection.
CAM need only be measured there; the README's cascade section measures how far F can go down.

Phases, each through the run's executor and store like any run (so a cascade resumes after a kill at any point):

1. ``hmg``: every sample not yet done gets all its rows except CAM's segment rows: the full row carries the
   attention probe, so CAM's attention profile is measured once, in HMG's own full pass; stored with
   ``cam_cascade = pending``;
2. the top set: the ceil(F × n_ok) ok samples with the highest HMP = nll_short − nll_long (HMG's default log-rank
   order; ties by input order), written once to ``RUN/cascade.json`` with the fingerprint and the samples' content
   hashes it was chosen from, so a resumed run reuses exactly that set (it is chosen again only when the data changed);
3. ``cam``: only the segment rows (and, with ``--calibrate-attention``, the neutral row) of the top samples not yet
   measured by CAM run; each stored row is completed with them (`complete_row`: segment NLLs, CAS from the stored
   attention profile, ``top``) and stored again, chunk by chunk;
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
from ..methods.cam import (CASCADE_COLUMN, CASCADE_PENDING, CASCADE_REST, CASCADE_TOP, SEGMENT_PHASE_COLUMNS,
                           cas_value)
from ..status import Status
from ..store import RunStore
from ..util.atomic import atomic_write
from ..util.settings_hash import settings_hash
from .run_plan import plan_chunks
from .scorer import output_schema

CASCADE_FILE = "cascade.json"
HMG_COLUMNS = ("nll_short", "nll_long")

# an executor over chunks, storing into the given store (anything with `RunStore.write_shard`); returns model tokens
Execute = Callable[[ScoreConfig, list[list[Sample]], Any], int]
REST_NOTE = "cam not measured: outside the cascade's top"


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
    tokens = execute(replace(config, cascade_phase="hmg"), plan_chunks(todo, chunk), store)
    rows = _current_rows(store, samples)
    top = set(_top_set(store, config, fp, samples, rows))
    again = [s for s in samples if s.id in top and rows[s.id].get(CASCADE_COLUMN) in (CASCADE_PENDING, CASCADE_REST)]
    tokens += execute(replace(config, cascade_phase="cam"), plan_chunks(again, chunk), CompletingStore(store, rows))
    _mark_rest(store, config, _current_rows(store, samples), top)
    return tokens


class CompletingStore:
    """The store as the ``cam`` phase's executor sees it: each chunk of phase-3 rows (CAM's segment columns only) is
    stored as the samples' stored rows completed with them (`complete_row`), so every stored row stays whole."""

    def __init__(self, store: RunStore, stored: dict[str, dict[str, Any]]):
        self.store, self.stored = store, stored

    def write_shard(self, rows: list[dict[str, Any]], schema: Any) -> Any:
        return self.store.write_shard([complete_row(self.stored[r["id"]], r) for r in rows], schema)


def complete_row(stored: dict[str, Any], measured: dict[str, Any]) -> dict[str, Any]:
    """A top sample's row: its ``stored`` phase-1 row (every column but the segment rows', ``pending`` or ``rest``)
    with the ``cam`` phase's ``measured`` row: `SEGMENT_PHASE_COLUMNS`, CAS = cos(softmax(segment PPL),
    softmax(stored segment attention)) as a complete run computes it, marked ``top``. A failed segment row (e.g.
    out of memory) gives the sample that status, so the next run measures it again."""
    if measured["status"] != Status.OK:
        return {**stored, "status": measured["status"], "error": measured["error"]}
    out = {**stored, **{c: measured.get(c) for c in SEGMENT_PHASE_COLUMNS}, CASCADE_COLUMN: CASCADE_TOP}
    if out["seg_nll"] is not None and stored.get("seg_attn") is not None:
        out["cas"] = cas_value(np.exp(out["seg_nll"]), np.asarray(stored["seg_attn"]))
    notes = [n for n in (stored.get("note") or "").split("; ") if n and not n.startswith(REST_NOTE)]
    out["note"] = "; ".join([*notes, *([measured["note"]] if measured.get("note") else [])])
    return out


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
    """``row`` (one stored sample) as a sample outside the cascade's top: the segment rows' columns and CAS emptied
    (the attention profile from phase 1 is kept), marked ``rest``, with a note saying so."""
    note = (f"{REST_NOTE} {cam_top:g} by hmg (--cam-top); "
            "gateau ranks it by hmg below every cam-measured sample")
    new = {k: (None if k in (*SEGMENT_PHASE_COLUMNS, "cas") else v) for k, v in row.items()}
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


__all__ = ["CASCADE_FILE", "CompletingStore", "check_cascade", "complete_row", "hmg_top", "rest_row", "run_cascade",
           "top_count"]
