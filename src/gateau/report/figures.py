"""The report's figures, drawn with matplotlib (object API, no pyplot state) and embedded as PNG data URIs."""

from __future__ import annotations

import base64
import io
import math

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from ..inspect import has_segments, segment_figure
from .gather import Difference, Labeled

SELECTED = "#1f77b4"
REST = "#b8b8b8"
ONLY_OTHER = "#ff7f0e"
BOTH = "#2ca02c"
DPI = 90
PALETTE = 256  # colours of the embedded PNGs: a palette image is ~4x smaller than matplotlib's RGBA, same look
LOG_SPAN = 50.0  # positive values spanning more than this factor are drawn on a log axis


def data_uri(fig: Figure, dpi: int = DPI) -> str:
    """The figure as a ``data:image/png;base64,...`` URI (a `PALETTE`-colour PNG)."""
    rendered = io.BytesIO()
    fig.savefig(rendered, format="png", dpi=dpi)
    rendered.seek(0)
    small = io.BytesIO()
    with Image.open(rendered) as image:
        image.convert("RGB").quantize(colors=PALETTE, method=Image.Quantize.FASTOCTREE).save(small, "PNG",
                                                                                              optimize=True)
    return "data:image/png;base64," + base64.b64encode(small.getvalue()).decode("ascii")


def _log_axis(values: np.ndarray) -> bool:
    return len(values) > 1 and bool(np.all(values > 0)) and float(values.max() / values.min()) > LOG_SPAN


def distributions_figure(components: dict[str, np.ndarray], chosen: np.ndarray, rest: np.ndarray) -> Figure:
    """One histogram per component (and the final score): selected (``chosen``) vs ranked but not selected
    (``rest``) samples, both row positions."""
    names = list(components)
    ncols = min(3, max(1, len(names)))
    nrows = max(1, math.ceil(len(names) / ncols))
    fig = Figure(figsize=(4.2 * ncols, 2.8 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    legend_at = None
    for ax, name in zip(axes, names):
        values = components[name]
        sel, other = values[chosen], values[rest]
        undefined = int((~np.isfinite(sel)).sum() + (~np.isfinite(other)).sum())
        sel, other = sel[np.isfinite(sel)], other[np.isfinite(other)]
        both = np.concatenate([sel, other])
        ax.set_title(name + (f"  ({undefined} undefined)" if undefined else ""), fontsize=10)
        if len(both) == 0:
            ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
            continue
        log = _log_axis(both)
        lo, hi = float(both.min()), float(both.max())
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        bins = np.geomspace(lo, hi, 21) if log else np.linspace(lo, hi, 21)
        ax.hist([other, sel], bins=bins, stacked=True, color=[REST, SELECTED],
                label=[f"not selected ({len(other)})", f"selected ({len(sel)})"])
        if log:
            ax.set_xscale("log")
        ax.tick_params(labelsize=8)
        legend_at = legend_at or ax
    for ax in axes[len(names):]:
        ax.set_visible(False)
    if legend_at is not None:
        legend_at.legend(fontsize=8)
    fig.tight_layout()
    return fig


def length_figure(lengths: np.ndarray, score: np.ndarray, chosen: np.ndarray, rest: np.ndarray,
                  rho: float) -> Figure:
    """The final score against the sample's length in tokens: selected (``chosen``) and ranked but not selected
    (``rest``) samples, both row positions; ``rho``: their Spearman correlation, for the title."""
    fig = Figure(figsize=(8, 4.2))
    ax = fig.subplots()
    ax.scatter(lengths[rest], score[rest], s=18, color=REST, label=f"not selected ({len(rest)})")
    ax.scatter(lengths[chosen], score[chosen], s=22, color=SELECTED, label=f"selected ({len(chosen)})")
    shown = lengths[np.concatenate([chosen, rest])]
    if _log_axis(shown[np.isfinite(shown)]):
        ax.set_xscale("log")
    ax.set_xlabel("sample length (tokens: context before truncation + instruction + response)")
    ax.set_ylabel("final score")
    ax.set_title(f"Spearman rho(score, length) = {rho:+.3f}" if np.isfinite(rho) else "score vs length", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def rank_figure(diff: Difference, main: Labeled) -> Figure:
    """Rank under the main selection against rank under the other, for the samples ranked by both."""
    fig = Figure(figsize=(5.6, 5.0))
    ax = fig.subplots()
    pm, po = diff.picked_main, diff.picked_other
    for mask, color, label in ((~pm & ~po, REST, "picked by neither"), (pm & ~po, SELECTED, f"only {main.label}"),
                               (~pm & po, ONLY_OTHER, f"only {diff.other.label}"), (pm & po, BOTH, "picked by both")):
        ax.scatter(diff.ranks_main[mask], diff.ranks_other[mask], s=18, color=color, label=f"{label} ({mask.sum()})")
    ax.set_xlabel(f"rank: {main.label}")
    ax.set_ylabel(f"rank: {diff.other.label}")
    rho = diff.rank_spearman
    ax.set_title(f"ranks of {len(pm)} samples ranked by both" + (f"  (rho {rho:+.3f})" if np.isfinite(rho) else ""),
                 fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def sample_plot(main: Labeled, pos: int) -> tuple[str | None, str]:
    """(data URI of the importance-vs-attention plot of row ``pos``, or None; the reason when None, "" when the run
    has no segment columns at all, so nothing is said)."""
    cols = main.selection.ranking.columns
    if not has_segments(cols):
        return None, ""
    try:
        return data_uri(segment_figure(cols, pos, main.selection.ranking, figsize=(9, 4.6))), ""
    except ValueError as exc:
        return None, str(exc)
