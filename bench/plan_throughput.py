"""Fit the CPU throughput model that `gateau plan` uses for its time estimate (`gateau.pipeline.cost_model`).

Runs forward passes of the embedded SmolLM2-135M through gateau's own `RowRunner` (response-only logits; with and
without the attention probe) on random token rows of several widths, each pass about ``--tokens`` tokens, and fits
seconds per pass = tokens × (a + b × width) + c by least squares, per row type. Writes the coefficients, the
measurements, the machine and its load average to src/gateau/pipeline/throughput_cpu.json (or --out).

    python bench/plan_throughput.py                       # widths 128..2048, ~2 min on an idle 2-core machine
    python bench/plan_throughput.py --widths 128,512 --repeats 1 --out /tmp/fit.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from gateau.measure.rows import RowRequest
from gateau.measure.runner import RowRunner
from gateau.models import load_model
from gateau.pipeline.cost_model import THROUGHPUT_FILE, ModelShape

RESPONSE_TOKENS = 32


def measure(runner: RowRunner, vocab: int, width: int, tokens: int, attention: bool, repeats: int,
            rng: np.random.Generator) -> dict:
    """Best of ``repeats`` timings of one pass of max(1, tokens // width) rows of ``width`` tokens."""
    rows = max(1, tokens // width)
    reqs = [RowRequest(tuple(int(t) for t in rng.integers(3, vocab, width)), width - RESPONSE_TOKENS, attention)
            for _ in range(rows)]
    runner.token_budget = rows * width
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        runner.run(reqs)
        best = min(best, time.perf_counter() - start)
    return {"width": width, "rows": rows, "tokens": rows * width, "attention": attention, "seconds": best}


def fit(points: list[dict]) -> dict[str, float]:
    """Least squares of seconds = tokens × (a + b × width) + c."""
    x = np.array([[p["tokens"], p["tokens"] * p["width"], 1.0] for p in points])
    y = np.array([p["seconds"] for p in points])
    (a, b, c), *_ = np.linalg.lstsq(x, y, rcond=None)
    return {"a": float(a), "b": float(b), "c": float(max(c, 0.0))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", default="128,256,512,1024,2048")
    ap.add_argument("--tokens", type=int, default=4096, help="tokens per pass (default 4096)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=THROUGHPUT_FILE)
    args = ap.parse_args()
    lm = load_model("default", device="cpu", dtype="float32")
    shape = ModelShape.from_config(lm.model.config)
    runner = RowRunner(lm.model, lm.tokenizer.pad_token_id, args.tokens)
    rng = np.random.default_rng(0)
    measure(runner, shape.vocab, 128, 512, False, 1, rng)  # warm-up
    points = [measure(runner, shape.vocab, w, args.tokens, attention, args.repeats, rng)
              for attention in (False, True) for w in map(int, args.widths.split(","))]
    for p in points:
        print(f"width {p['width']:5d} attention {p['attention']!s:5} {p['tokens'] / p['seconds']:7.0f} tok/s")
    payload = {
        "model": "default (SmolLM2-135M-Instruct, fp32)", "shape": asdict(shape),
        "formula": "seconds per pass = tokens * (a + b * width) + c",
        "plain": fit([p for p in points if not p["attention"]]),
        "attention": fit([p for p in points if p["attention"]]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "load_average_1m": os.getloadavg()[0], "torch": torch.__version__},
        "measured": time.strftime("%Y-%m-%d"), "points": points,
        "command": "python bench/plan_throughput.py " + f"--widths {args.widths} --tokens {args.tokens} "
                   f"--repeats {args.repeats}",
    }
    args.out.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
