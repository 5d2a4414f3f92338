"""Loss curve PNG from ``train_log.jsonl``."""

from __future__ import annotations

import json
from pathlib import Path


def read_log(path: str | Path) -> list[dict]:
    """The rows of a ``train_log.jsonl`` (one dict per logging step)."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def running_mean(values: list[float], window: int) -> list[float]:
    """Trailing mean over the last ``window`` values (fewer at the start)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_loss(log: str | Path, out: str | Path, title: str = "training loss") -> Path:
    """Draw the loss (nats per response token) per logged step, its trailing mean over 5 logged steps (small
    batches of mixed long and short data make single steps noisy), and the learning rate; returns ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rows = read_log(log)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    steps = [r["step"] for r in rows]
    losses = [r["loss"] for r in rows]
    ax.plot(steps, losses, marker="o" if len(rows) < 40 else None, markersize=3, color="tab:blue", alpha=0.55,
            linewidth=1, label="loss per step")
    if len(rows) >= 5:
        ax.plot(steps, running_mean(losses, 5), color="tab:blue", linewidth=2.2, label="mean of the last 5")
    ax.legend(loc="best", fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
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
