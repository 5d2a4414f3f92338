"""The benchmark figure: AUROC bars (± SE) of the main variants and, per sample type, the score strips of hmg, cam
and gateau under the tool's default options (`default_distributions` collects those scores). matplotlib is
imported only when a figure is drawn."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa

from ...methods import METHODS
from ...select.rank import rank_table
from ..synth import LONG_DEPENDENT_TYPES, SAMPLE_TYPES, SynthLabel
from .report import _method_label, settings_text
from .stats import label_arrays
from .variants import has_columns


def default_distributions(table: pa.Table, labels: Sequence[SynthLabel]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Scores under default options of every method that measures model columns of its own (those present), with
    each sample's type."""
    _, types = label_arrays(table.column("id").to_pylist(), labels)
    return {m: (rank_table(table, m).score, types)
            for m, cls in METHODS.items() if cls.columns and cls.uses_model and has_columns(table, m)}


def plot_results(main_rows: Sequence[dict[str, Any]], distributions: Mapping[str, tuple[np.ndarray, np.ndarray]],
                 path: str | Path) -> Path:
    """AUROC bars (± SE) of the main variants (one colour per method) + per-type score strips per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_dist = max(1, len(distributions))
    fig = plt.figure(figsize=(5 * n_dist, 5 + 0.28 * len(main_rows)))
    grid = fig.add_gridspec(2, n_dist, height_ratios=[max(2.0, 0.28 * len(main_rows)), 4])
    ax = fig.add_subplot(grid[0, :])
    rows = list(reversed(main_rows))
    names = [f"{_method_label(r)} {('W=' + str(r['window']) + ' ') if r['window'] else ''}{settings_text(r)}"
             + (f" [{r['preset']}]" if r["preset"] else "") for r in rows]
    values = [r["auroc"] if np.isfinite(r["auroc"]) else 0.0 for r in rows]
    errors = [r["auroc_se"] if np.isfinite(r["auroc_se"]) else 0.0 for r in rows]
    palette = {m: f"C{i % 10}" for i, m in enumerate(METHODS)}
    colours = [palette.get(r["method"], "tab:gray") for r in rows]
    ax.barh(range(len(rows)), values, xerr=errors, color=colours, alpha=0.85)
    ax.set_yticks(range(len(rows)), names, fontsize=7)
    ax.axvline(0.5, color="k", lw=0.8, ls="--")
    ax.set_xlim(0, 1)
    ax.set_xlabel("AUROC (long-dependent vs rest), ± SE")
    ax.set_title("main variants")
    for j, (method, (score, types)) in enumerate(distributions.items()):
        a = fig.add_subplot(grid[1, j])
        present = [t for t in SAMPLE_TYPES if t in set(types)]
        rng = np.random.default_rng(0)
        for x, t in enumerate(present):
            v = score[types == t]
            v = v[np.isfinite(v)]
            colour = "tab:blue" if t in LONG_DEPENDENT_TYPES else "tab:red"
            a.scatter(x + rng.uniform(-0.18, 0.18, len(v)), v, s=12, color=colour, alpha=0.7)
            if len(v):
                a.hlines(np.median(v), x - 0.3, x + 0.3, color="k", lw=1.5)
        a.set_xticks(range(len(present)), present, rotation=35, ha="right", fontsize=8)
        a.set_title(f"{method} (default options)", fontsize=9)
        a.set_ylabel("score")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
