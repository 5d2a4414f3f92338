"""`gateau demo`: the whole tool on a small labelled set, with the embedded model, on a laptop CPU.

Builds long-context samples from real essays with known labels (facts far back, facts near the end, answers that
need no context, wrong answers, summaries of early paragraphs), scores them with SmolLM2-135M in window mode,
selects 30% with every method that needs no extra model, and prints how many selected samples truly need the far
context — against the fraction in the whole set.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .config import ScoreConfig, SelectConfig
from .methods import METHODS, method_options
from .pipeline.run import run_score
from .select import export_jsonl, select
from .bench.synth import BASIC_TYPES, read_labels, write_synthetic_set

DEMO_RATIO = 0.3
# Methods compared in the demo, in print order; those needing a user-named model (car) are left out.
DEMO_METHODS = ("gateau", "hmg", "cam", "ppl", "ifd", "length", "random")


def demo_methods() -> list[str]:
    return [m for m in DEMO_METHODS if m in METHODS]


def long_dependent_fraction(run: Path, labels: dict[str, bool], method: str, ratio: float = DEMO_RATIO,
                            seed: int = 0, preset: str | None = None) -> tuple[float, int]:
    """(fraction of long-dependent samples among the selected, number selected) for ``method`` at ``ratio``."""
    options = method_options(method, preset, strict=False, seed=seed)
    selection = select(run, SelectConfig(method=method, ratio=ratio, options=options))
    chosen = [selection.ids[i] for i in selection.chosen]
    return float(np.mean([labels[i] for i in chosen])) if chosen else float("nan"), len(chosen)


def run_demo(out: Path, n: int = 36, words: int = 600, seed: int = 0, device: str = "auto",
             progress: bool = True) -> dict[str, float]:
    """Build, score, select, report. Returns {method: long-dependent fraction of its top 30%}."""
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    data_path, labels_path = write_synthetic_set(out / "data", n=n, words=words, seed=seed, types=BASIC_TYPES)
    labels = {lab.id: lab.long_dependent for lab in read_labels(labels_path)}
    methods = demo_methods()
    scored = ",".join(m for m in methods if METHODS[m].uses_model)
    print(f"gateau demo: {n} samples of ~{words} words from real essays -> {data_path}")
    config = ScoreConfig.from_flat(data_path, out / "run", methods=scored, device=device, progress=progress)
    summary = run_score(config)
    print("\n".join(summary.lines()))
    base_rate = float(np.mean(list(labels.values())))
    print(f"\nlong-dependent samples in the whole set: {base_rate:.0%} ({sum(labels.values())}/{len(labels)})")
    print(f"{'method':<8} top-{DEMO_RATIO:.0%} long-dependent")
    fractions: dict[str, float] = {}
    rows = [(m, m, None) for m in methods] + [("gateau (paper preset: softmax Norm)", "gateau", "paper")]
    for label, method, preset in rows:
        frac, k = long_dependent_fraction(out / "run", labels, method, seed=seed, preset=preset)
        fractions[label] = frac
        print(f"{label:<8} {frac:6.0%}  ({round(frac * k)}/{k})")
    selection = select(out / "run", SelectConfig(method="gateau", ratio=DEMO_RATIO))
    written = export_jsonl(selection, out / "run", out / "selected.jsonl")
    print(f"\nwrote the gateau top {DEMO_RATIO:.0%} ({written} records) to {out / 'selected.jsonl'}")
    print(f"demo wall time: {time.perf_counter() - start:.0f} s")
    return fractions
