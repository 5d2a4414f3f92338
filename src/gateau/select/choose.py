"""`gateau select`: rank a scored run, pick the top ratio / count, export records with their scores.

No model is loaded and torch is never imported. The input records are re-read from the run's data path (or
``--data``), checked against the content fingerprints stored at scoring time, and written unchanged with an added
``gateau`` object: ``score``, ``rank``, ``method`` and the components behind the score. Beside the file, a sidecar
``FILE.jsonl.meta.json`` records the file's sha256, the selection settings and the run (path, fingerprint) it came
from, and the run's ``exports.jsonl`` gains a line pointing to the file (see `gateau.provenance`).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import FieldMap, SelectConfig
from ..data import content_hash, load_records_by_id, recorded_source
from ..provenance import record_export, write_selection_meta
from ..status import status_examples
from ..store import RunError, RunStore
from ..util.atomic import atomic_open
from ..util.outputs import check_output_file
from .rank import Ranking, rank_table


class DataMismatchError(RunError):
    """The data file given for export is not the one that was scored (records edited, removed or reordered)."""


class EmptySelectionError(RunError):
    """No sample of the run is ranked by the method, so there is nothing to export."""


@dataclass
class Selection:
    """The chosen rows (positions in the run table, best first) and everything needed to report on them."""

    ranking: Ranking
    chosen: np.ndarray
    ids: list[str]
    statuses: list[str]
    errors: list[str]
    config: SelectConfig | None = None
    """The settings that made it (ratio or count), recorded in the export's sidecar."""
    asked: int = 0
    """The selection size asked for (--count, or --ratio of all samples); more than chosen when fewer samples are
    ranked."""

    def summary_lines(self) -> list[str]:
        r = self.ranking
        options = ", ".join(f"{k}={v}" for k, v in asdict(r.options).items()) or "none"
        lines = [f"method: {r.method}  options: {options}",
                 f"samples: {len(self.ids)}  ranked: {len(r.order)}  selected: {len(self.chosen)}"]
        excluded = Counter(s for s, rk in zip(self.statuses, r.rank) if rk == 0)
        if excluded:
            lines.append("not ranked (never selected): " + ", ".join(f"{k}={v}" for k, v in sorted(excluded.items())))
            unranked = [i for i, rk in enumerate(r.rank) if rk == 0]
            lines.extend(status_examples([self.ids[i] for i in unranked], [self.statuses[i] for i in unranked],
                                         [self.errors[i] or "no finite score" for i in unranked]))
        if self.asked > len(self.chosen):
            lines.append(f"note: {self.asked} samples asked for, but only {len(r.order)} are ranked: selected "
                         f"{len(self.chosen)}")
        lines.extend(r.notes(self.chosen))
        lines.append(_quantile_line("score (all ranked)", r.score[r.order]))
        lines.append(_quantile_line("score (selected)  ", r.score[self.chosen]))
        agree = r.agreement()
        if agree:
            lines.append("Spearman agreement of the final score with each component (over ranked samples):")
            lines.extend(f"  {name:<10} {rho:+.3f}" for name, rho in sorted(agree.items(), key=lambda kv: -abs(kv[1])))
        return lines


def _quantile_line(label: str, values: np.ndarray) -> str:
    if len(values) == 0:
        return f"{label}: (none)"
    q = np.quantile(values, [0, 0.25, 0.5, 0.75, 1])
    return f"{label}: min {q[0]:.4g}  q25 {q[1]:.4g}  median {q[2]:.4g}  q75 {q[3]:.4g}  max {q[4]:.4g}"


def select(run: str | Path, config: SelectConfig, allow_partial: bool = False) -> Selection:
    """Rank the run's stored scores with ``config.method`` and keep the top ``ratio`` of all samples or ``count``.
    A run with samples still unscored is refused (RunError with the counts) unless ``allow_partial``."""
    store = RunStore(run)
    table = store.read_scores()
    expected = store.read_config().get("n_records")
    if not allow_partial and expected is not None and table.num_rows < expected:
        raise RunError(f"{run}: only {table.num_rows} of {expected} samples are scored; finish the run with the same "
                       "`gateau score` command, or pass --allow-partial to rank the scored ones")
    k = config.keep(table.num_rows)
    ranking = rank_table(table, config.method, config.options, k=k)
    ids, statuses, errors = (table.column(c).to_pylist() for c in ("id", "status", "error"))
    return Selection(ranking, ranking.order[:k], ids, statuses, errors, config, asked=k)


def verify_data(table_cols: dict[str, Any], records: dict[str, tuple[int, dict[str, Any]]], source: str) -> None:
    """DataMismatchError naming the first scored id whose record in ``source`` is missing, moved or edited."""
    for sid, index, stored in zip(table_cols["id"], table_cols["index"], table_cols["content_hash"]):
        hint = "pass --data with the file that was scored, or score this file into a new --out"
        if sid not in records:
            raise DataMismatchError(f"sample {sid!r} was scored but is not in {source}; {hint}")
        position, record = records[sid]
        if position != int(index):
            raise DataMismatchError(f"sample {sid!r} was record {int(index)} when scored but is record {position} "
                                    f"in {source} (reordered); {hint}")
        if content_hash(record) != stored:
            raise DataMismatchError(f"sample {sid!r} differs in {source} from the record that was scored "
                                    f"(edited); {hint}")


def export_jsonl(selection: Selection, run: str | Path, out: str | Path, data: str | None = None,
                 fields: FieldMap | None = None) -> int:
    """Write the selected input records, best first, each with a ``gateau`` object, and the provenance sidecar;
    returns the count written. ``out`` is refused (`OutputError`) when it is the data, inside a run or a
    directory; the data is checked against the run first, and the file appears only when complete (temp file +
    rename)."""
    store = RunStore(run)
    config = store.read_config()
    source = data or config["data"]["path"]
    check_output_file(out, "--out", inputs=(config["data"]["path"], source))
    if len(selection.chosen) == 0:
        raise EmptySelectionError(f"{run}: no sample is ranked by method {selection.ranking.method!r} (see the "
                                  f"summary), so nothing was written to {out}; fix or re-score the samples, or "
                                  "choose a method the run has columns for")
    fmap = fields or FieldMap(**config["data"]["fields"])
    records = load_records_by_id(recorded_source(config["data"], source), fmap)
    verify_data(store.read_scores().select(["id", "index", "content_hash"]).to_pydict(), records, source)
    r = selection.ranking
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(out_path, "w") as handle:
        for pos in selection.chosen:
            record = dict(records[selection.ids[pos]][1])
            record["gateau"] = _export_object(r, pos)
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    meta = write_selection_meta(out_path, run=run, run_config=config, selection=_selection_settings(selection),
                                records=len(selection.chosen), data=source)
    record_export(run, meta)
    return len(selection.chosen)


def _selection_settings(selection: Selection) -> dict[str, Any]:
    """Method, options, ratio / count and how many were selected: what the sidecar records."""
    r, config = selection.ranking, selection.config
    return {"method": r.method, "options": asdict(r.options) if r.options is not None else {},
            "ratio": config.ratio if config else None, "count": config.count if config else None,
            "selected": len(selection.chosen), "ranked": len(r.order), "samples": len(selection.ids)}


def _export_object(r: Ranking, pos: int) -> dict[str, Any]:
    comps = {name: _clean(values[pos]) for name, values in r.components.items()}
    return {"score": _clean(r.score[pos]), "rank": int(r.rank[pos]), "method": r.method, "components": comps}


def _clean(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)
