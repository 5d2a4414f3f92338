"""Loss curve PNG from ``train_log.jsonl``."""

from __future__ import annotations

import json
from pathlib import Path


def read_log(path: str | Path) -> list[dict]:
    """The rows of a ``train_log.jsonl`` (one dict per logging step)."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def plot_loss(log: str | Path, out: str | Path, title: str = "training loss") -> Path:
    """Draw loss (nats per response token) and learning rate against the optimizer step; returns ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_log(log)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    steps = [r["step"] for r in rows]
    ax.plot(steps, [r["loss"] for r in rows], marker="o" if len(rows) < 40 else None, markersize=3,
            color="tab:blue", label="loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (nats / response token)", color="tab:blue")
    ax.grid(alpha=0.3)
    lr = ax.twinx()
    lr.plot(steps, [r["lr"] for r in rows], color="tab:orange", alpha=0.6, linewidth=1)
    lr.set_ylabel("learning rate", color="tab:orange")
    if rows:
        tokens = rows[-1]["tokens_seen"]
        ax.set_title(f"{title}\n{len(rows)} logged steps, {tokens:,} tokens seen", fontsize=9)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out)
    plt.close(fig)
    return out
