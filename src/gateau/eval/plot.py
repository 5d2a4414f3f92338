"""The needle-test heatmap (gkamradt's convention: x = context length, y = depth percent, colour = score)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

# gkamradt's LLMTest_NeedleInAHaystack colour map: red (miss) → yellow → green (hit).
NEEDLE_COLOURS = ("#F0496E", "#EBB839", "#0CD79F")


def _length_label(n: int) -> str:
    return f"{n / 1024:g}k" if n >= 1024 and n % 128 == 0 else str(n)


def needle_heatmap(rows: Sequence[dict[str, Any]], path: str | Path, *, vmin: float, vmax: float,
                   title: str, value: str = "score") -> Path:
    """Draw mean ``value`` per (length, depth) cell of ``rows`` (dicts with ``length`` in tokens and ``depth``
    in percent) to a PNG at ``path``; depth 0 (the start of the context) is the top line. Cells are annotated
    with their value; missing cells stay blank."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import LinearSegmentedColormap

    lengths = sorted({int(r["length"]) for r in rows})
    depths = sorted({float(r["depth"]) for r in rows})
    grid = np.full((len(depths), len(lengths)), np.nan)
    sums: dict[tuple[int, int], list[float]] = {}
    for r in rows:
        if r.get(value) is None:
            continue
        sums.setdefault((depths.index(float(r["depth"])), lengths.index(int(r["length"]))), []).append(r[value])
    for (i, j), vals in sums.items():
        grid[i, j] = float(np.mean(vals))
    cmap = LinearSegmentedColormap.from_list("needle", list(NEEDLE_COLOURS))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(lengths) + 2.5), max(3.5, 0.45 * len(depths) + 1.8)))
    im = ax.imshow(grid, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    for i in range(len(depths)):
        for j in range(len(lengths)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2g}", ha="center", va="center", fontsize=8, color="black")
    ax.set_xticks(range(len(lengths)), [_length_label(n) for n in lengths])
    ax.set_yticks(range(len(depths)), [f"{d:g}" for d in depths])
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("needle depth (%)")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label=value)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
