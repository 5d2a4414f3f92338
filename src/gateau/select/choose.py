"""`gateau select`: rank a scored run, pick the top ratio / count, export records with their scores.

No model is loaded. The input records are re-read from the run's data path (or ``--data``) and written unchanged
with an added ``gateau`` object: ``score``, ``rank``, ``method`` and the components behind the score.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from gateau.select.rank import Ranking, rank_table, table_columns
from gateau.data import FieldMap, load_records_by_id
from gateau.methods.base import ScoreOptions
from gateau.store import RunStore

EXPORT_COMPONENTS = ("ppl_short", "ppl_long", "hmp", "cas", "ifd", "car_reward", "n_context", "n_response")


@dataclass
class Selection:
    """The chosen rows (positions in the run table, best first) and everything needed to report on them."""

    ranking: Ranking
    chosen: np.ndarray
    ids: list[str]
    statuses: list[str]
    notes: list[str]

    def summary_lines(self) -> list[str]:
        r = self.ranking
        n = len(self.ids)
        excluded = Counter(s for s, rk in zip(self.statuses, r.rank) if rk == 0)
        lines = [f"method: {r.method}  options: " + ", ".join(f"{k}={v}" for k, v in asdict(r.options).items()),
                 f"samples: {n}  ranked: {len(r.order)}  selected: {len(self.chosen)}"]
        if excluded:
            lines.append("not ranked (never selected): " + ", ".join(f"{k}={v}" for k, v in sorted(excluded.items())))
        fallback = sum(1 for i in self.chosen if "falls back to hmg" in (self.notes[i] or ""))
        if r.method == "gateau" and any("falls back to hmg" in (x or "") for x in self.notes):
            total_fb = sum(1 for x in self.notes if "falls back to hmg" in (x or ""))
            lines.append(f"cas undefined -> ranked by hmg alone: {total_fb} samples ({fallback} selected)")
        lines.extend(r.notes)
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


def select(run: str | Path, method: str, options: ScoreOptions, ratio: float | None = None,
           count: int | None = None) -> Selection:
    """Rank the run's stored scores with ``method`` and keep the top ``ratio`` of all samples or ``count``."""
    if (ratio is None) == (count is None):
        raise ValueError("give exactly one of --ratio and --count")
    table = RunStore(run).read_scores()
    n = table.num_rows
    if ratio is not None:
        if not 0 < ratio <= 1:
            raise ValueError("--ratio must be in (0, 1]")
        k = n if ratio == 1 else max(1, math.ceil(ratio * n - 1e-9))
    else:
        if count <= 0:
            raise ValueError("--count must be positive")
        k = count
    ranking = rank_table(table, method, replace(options, select_count=k))  # CaR's set depends on k
    cols = table_columns(table)
    return Selection(ranking, ranking.order[:k], cols["id"], cols["status"], cols["note"])


def export_jsonl(selection: Selection, run: str | Path, out: str | Path, data: str | None = None,
                 fields: FieldMap | None = None) -> int:
    """Write the selected input records, best first, each with a ``gateau`` object; returns the count written."""
    store = RunStore(run)
    config = store.read_config()
    source = data or config["data"]
    fmap = fields or FieldMap(**config["measure"]["fields"])
    records = load_records_by_id(source, fmap)
    r = selection.ranking
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("w", encoding="utf-8") as handle:
        for pos in selection.chosen:
            sid = selection.ids[pos]
            if sid not in records:
                raise KeyError(f"sample id {sid!r} is in the run but not in {source}; pass --data with the scored file")
            record = dict(records[sid])
            record["gateau"] = _export_object(r, pos)
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return len(selection.chosen)


def _export_object(r: Ranking, pos: int) -> dict[str, Any]:
    comps = {name: _clean(r.components[name][pos]) for name in EXPORT_COMPONENTS if name in r.components}
    return {"score": _clean(r.score[pos]), "rank": int(r.rank[pos]), "method": r.method, "components": comps}


def _clean(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)
