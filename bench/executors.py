"""Local vs Ray executor on the same file: wall time of each and whether the stored rows agree.

    python bench/executors.py --n 200 --words 150 --workers 2 --out /tmp/exec-bench

Builds N samples from the Paul Graham essays (a context of ``--words`` words, a question, the sentence that
follows the excerpt as the response), scores them with the embedded model (``gateau score`` defaults: gateau,
window mode) once with ``--executor local`` and once with ``--executor ray --workers W``, then compares every
stored column. Prints a small table; ``--json`` writes it too.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import pyarrow.parquet as pq

from gateau.config import ScoreConfig
from gateau.pipeline.run import run_score
from gateau.bench.synth import essay_dir


def build(path: Path, n: int, words: int) -> Path:
    text = " ".join(p.read_text(encoding="utf-8", errors="replace") for p in sorted(essay_dir().glob("*.txt")))
    tokens = text.split()
    step = max(words + 30, len(tokens) // n)
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            lo = i * step % max(1, len(tokens) - words - 30)
            context, response = " ".join(tokens[lo: lo + words]), " ".join(tokens[lo + words: lo + words + 20])
            handle.write(json.dumps({"id": f"pg{i:04d}", "context": context,
                                     "instruction": "Continue the text.", "response": response}) + "\n")
    return path


def max_difference(a: list[dict], b: list[dict]) -> tuple[float, int]:
    """(largest absolute difference over every float value, number of non-float values that differ)."""
    worst, mismatches = 0.0, 0
    for ra, rb in zip(a, b, strict=True):
        for name, x in ra.items():
            y = rb[name]
            xs, ys = (x, y) if isinstance(x, list) or isinstance(y, list) else ([x], [y])
            if xs is None or ys is None:
                mismatches += xs is not ys
                continue
            for u, v in zip(xs, ys, strict=True):
                if isinstance(u, float) and isinstance(v, float):
                    worst = max(worst, abs(u - v)) if math.isfinite(u) and math.isfinite(v) else worst
                elif u != v:
                    mismatches += 1
    return worst, mismatches


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--words", type=int, default=150)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default="/tmp/gateau-exec-bench")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    data = build(root / "data.jsonl", args.n, args.words)
    results = {}
    for name, kw in (("local", {}), ("ray", {"executor": "ray", "workers": args.workers})):
        config = ScoreConfig.from_flat(data, root / name, overwrite=True, progress=False, **kw)
        t0 = time.perf_counter()
        summary = run_score(config)
        results[name] = {"wall_s": time.perf_counter() - t0, "statuses": summary.statuses,
                         "tokens": summary.forward_tokens}
        print(f"{name}: {results[name]['wall_s']:.1f} s wall, {summary.forward_tokens} model tokens, "
              f"{summary.statuses}", flush=True)
    drop = {"fingerprint"}
    a, b = ([{k: v for k, v in r.items() if k not in drop} 
             for r in pq.read_table(root / n / "scores.parquet").to_pylist()]
            for n in ("local", "ray"))
    worst, mismatches = max_difference(a, b)
    results["comparison"] = {"rows": len(a), "max_abs_float_difference": worst, "other_mismatches": mismatches}
    print(f"rows: {len(a)} vs {len(b)}; max |difference| over float values: {worst:.3g}; "
          f"other values differing: {mismatches}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
