"""`gateau inspect`: draw why one sample ranks where it does (CAM's segment importance vs attention).

Top panel: raw per-segment response PPL given only that segment (PPL = exp(seg_nll); low = the segment helps) and
the importance IS = Norm(PPL). Bottom panel: mean attention per segment (raw) and Attn = Norm(seg_attn). The x axis
is the context token position; dotted lines mark segment boundaries. The title gives the sample's rank and
components.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .errors import NotFoundError, UsageError
from .methods import method_options
from .methods.cam import CAM, CAMOptions, cas_value, drop_sink
from .methods.normalize import normalize
from .select.rank import Ranking, rank_table, table_columns
from .status import Status
from .store import RunStore
from .util.atomic import atomic_write
from .util.outputs import check_output_file


def has_segments(cols: dict[str, Any]) -> bool:
    """True if the run stored CAM's per-segment columns (scored with a method that measures them)."""
    return all(name in cols for name in CAM.columns)


def segment_figure(cols: dict[str, Any], pos: int, ranking: Ranking, figsize: tuple[float, float] = (10, 6)) -> Figure:
    """The importance-vs-attention figure of row ``pos`` (``cols``: `table_columns` of the run; ``ranking``: the
    run ranked by the method whose rank the title shows; the CAM panels use its in-sample options where it has
    them, CAM's defaults otherwise). ValueError if the run or the sample has no segment measurements."""
    sample_id = cols["id"][pos]
    if not has_segments(cols):
        raise UsageError("the run has no CAM columns; score it with --methods gateau or cam")
    if cols["status"][pos] != Status.OK or cols["seg_nll"][pos] is None:
        reason = cols["error"][pos] or cols["note"][pos] or cols["status"][pos]
        raise UsageError(f"sample {sample_id!r} has no segment measurements ({reason})")
    cam = ranking.options if isinstance(ranking.options, CAMOptions) else CAMOptions()
    seg_ppl = np.exp(np.asarray(cols["seg_nll"][pos]))
    seg_tokens = cols["seg_tokens"][pos]
    seg_attn = drop_sink(cols["seg_attn"][pos], cols["attn_head"][pos], seg_tokens, cam.attn_sink_tokens)
    starts = np.asarray(cols["seg_starts"][pos])
    centers = starts + np.asarray(seg_tokens) / 2
    widths = np.asarray(seg_tokens) * 0.9
    imp = normalize(seg_ppl, cam.is_norm, cam.segment_temperature)
    att = normalize(seg_attn, cam.attn_norm, cam.segment_temperature)

    fig = Figure(figsize=figsize)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    ax1.bar(centers, seg_ppl, width=widths, color="#9ecae1", label="PPL(y | segment, x)")
    ax1.set_ylabel("segment PPL")
    ax1b = ax1.twinx()
    ax1b.plot(centers, imp, "o-", color="#08519c", label=f"IS ({cam.is_norm})")
    ax1b.set_ylabel("importance IS")
    ax2.bar(centers, seg_attn, width=widths, color="#fdae6b", label="mean attention")
    ax2.set_ylabel("mean attention / token")
    ax2b = ax2.twinx()
    ax2b.plot(centers, att, "o-", color="#a63603", label=f"Attn ({cam.attn_norm})")
    ax2b.set_ylabel("Attn")
    for ax in (ax1, ax2):
        for s in starts[1:]:
            ax.axvline(s, color="grey", linestyle=":", linewidth=0.8)
    ax2.set_xlabel("context token position")
    for main, twin in ((ax1, ax1b), (ax2, ax2b)):
        h1, l1 = main.get_legend_handles_labels()
        h2, l2 = twin.get_legend_handles_labels()
        main.legend(h1 + h2, l1 + l2, loc="upper right", fontsize=8)
    rank = int(ranking.rank[pos])
    parts = [f"id {sample_id}", f"{ranking.method} rank {rank}/{len(ranking.order)}" if rank else "unranked"]
    cas = cas_value(seg_ppl, seg_attn, cam.is_norm, cam.attn_norm, cam.segment_temperature)
    parts.append(f"CAS {cas:.3f}")
    for name, values in ranking.components.items():
        if name.startswith("ppl") and np.isfinite(values[pos]):
            parts.append(f"{name} {values[pos]:.2f}")
    fig.suptitle("  |  ".join(parts), fontsize=10)
    fig.tight_layout()
    return fig


def inspect_sample(run: str | Path, sample_id: str, out: str | Path, method: str = "gateau",
                   options: Any = None) -> Path:
    """Write a PNG for ``sample_id`` of ``run`` to ``out``; returns the path. KeyError for an unknown id.
    ``options``: the options of ``method`` (its defaults when None); the CAM panels use its in-sample options
    where it has them (gateau, cam), CAM's defaults otherwise."""
    store = RunStore(run)
    check_output_file(out, "--out", inputs=(store.read_config()["data"]["path"],))
    table = store.read_scores()
    cols = table_columns(table)
    try:
        pos = cols["id"].index(str(sample_id))
    except ValueError:
        raise NotFoundError(f"no sample with id {sample_id!r} in {run}") from None
    if not has_segments(cols):
        raise UsageError(f"{run} has no CAM columns; score it with --methods gateau or cam")
    options = method_options(method) if options is None else options
    fig = segment_figure(cols, pos, rank_table(table, method, options))
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    atomic_write(out_path, png.getvalue())
    return out_path
