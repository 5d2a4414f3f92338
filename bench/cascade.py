"""The CAM cascade on a labelled benchmark set: for F in --fractions, the model tokens (from each run's
history.jsonl), wall time (with the load average), AUROC, P@30% and the Jaccard of the 30% selection against the
complete run (F = 1).

Needs DIR/data.jsonl + DIR/labels.jsonl (`gateau bench synth`, or `write_synthetic_set`). Each F is a real
`gateau score DIR/data.jsonl --out DIR/f<F> --methods gateau --short-window 128 --chunk-size 4 [--cam-top F]`
(the benchmark's main window); re-running the script resumes every run where it stopped and only reads the
finished ones, so it can be killed at any point. The load average is recorded at the start and end of every
invocation of each run (DIR/f<F>/bench-load.jsonl). --replay F,... adds rows for fractions replayed on the complete
run instead (`gateau.bench.benchmark.cascade.replay`, no model: the tokens are the planner's for the replayed top
set, phase 1 + `cascade_phase2`, which tests/test_cascade.py checks equal to a real cascade's history; the wall
time is then the complete run's seconds per token times those tokens, an estimate).

    python bench/cascade.py DIR [--fractions 1,0.6,0.4] [--replay 0.5] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from gateau.bench.benchmark.cascade import replay
from gateau.bench.benchmark.stats import label_arrays, metrics, top_count
from gateau.bench.synth.build import read_labels
from gateau.cli import main as gateau
from gateau.config import ScoreConfig
from gateau.data import load_samples
from gateau.pipeline.token_plan import cascade_phase2, plan_tokens
from gateau.select.rank import rank_table
from gateau.store import RunStore

SCORE_FLAGS = ("--methods", "gateau", "--short-window", "128", "--chunk-size", "4", "--no-progress")


def run_dir(root: Path, fraction: float) -> Path:
    return root / f"f{fraction:g}"


def score(root: Path, fraction: float) -> RunStore:
    """Run or resume (a finished run: nothing to measure) the scoring of ``root``'s set at cascade fraction
    ``fraction``; the load average around an invocation that measured something goes to bench-load.jsonl."""
    out = run_dir(root, fraction)
    before = os.getloadavg()
    cascade = ["--cam-top", f"{fraction:g}"] if fraction < 1 else []
    code = gateau(["score", str(root / "data.jsonl"), "--out", str(out), *SCORE_FLAGS, *cascade])
    if code != 0:
        raise SystemExit(f"gateau score exited {code} for {out}")
    store = RunStore(out)
    if store.read_history()[-1]["forward_tokens"] > 0:
        with (out / "bench-load.jsonl").open("a") as handle:
            handle.write(json.dumps({"finished": time.strftime("%H:%M:%S"), "load_start": before,
                                     "load_end": os.getloadavg()}) + "\n")
    return store


def selection(table, k: int) -> set[str]:
    ranking = rank_table(table, "gateau")
    ids = table.column("id").to_pylist()
    return {ids[i] for i in ranking.order[:k]}


def loads(out: Path) -> str:
    path = out / "bench-load.jsonl"
    if not path.is_file():
        return "n/a"
    values = [v for line in path.read_text().splitlines() if line for key in ("load_start", "load_end")
              for v in [json.loads(line)[key][0]]]
    return f"{min(values):.0f}–{max(values):.0f}" if values else "n/a"


def row(fraction: float, table, tokens: int, wall_s: float, how: str, load: str, positive, types, reference,
        k: int, full_tokens: int) -> dict[str, Any]:
    m = metrics(rank_table(table, "gateau").score, positive, types)
    chosen = selection(table, k)
    return {"F": fraction, "tokens": tokens, "token_share": tokens / full_tokens, "wall_s": wall_s, "wall": how,
            "load": load, "auroc": m["auroc"], "auroc_se": m["auroc_se"], "p30": m["p30"],
            "jaccard30": len(chosen & reference) / len(chosen | reference)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", type=Path)
    ap.add_argument("--fractions", default="1,0.6,0.4", help="fractions scored for real (1 is always scored)")
    ap.add_argument("--replay", default="", help="fractions replayed on the complete run (no model)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    fractions = sorted({1.0, *map(float, args.fractions.split(","))}, reverse=True)
    stores = {f: score(args.dir, f) for f in fractions}
    full_store = stores[1.0]
    full = full_store.read_scores()
    labels = read_labels(args.dir / "labels.jsonl")
    ids = full.column("id").to_pylist()
    positive, types = label_arrays(ids, labels)
    k = top_count(0.3, len(ids))
    reference = selection(full, k)
    history = {f: s.read_history() for f, s in stores.items()}
    full_tokens = sum(h["forward_tokens"] for h in history[1.0])
    full_s = sum(h["measure_s"] for h in history[1.0])
    rows = []
    for f in fractions:
        table = stores[f].read_scores()
        assert table.column("id").to_pylist() == ids
        rows.append(row(f, table, sum(h["forward_tokens"] for h in history[f]),
                        sum(h["measure_s"] for h in history[f]), "measured", loads(run_dir(args.dir, f)),
                        positive, types, reference, k, full_tokens))
    config = ScoreConfig.from_dict({**full_store.read_config()["config"], "out": str(run_dir(args.dir, 1.0))})
    for f in (map(float, args.replay.split(",")) if args.replay else []):
        table, top = replay(full, f)
        cascade = replace(config, measure=replace(config.measure, cam_top=f))
        phase1 = plan_tokens(cascade).cascade["phase1_tokens"]
        tokens = phase1 + cascade_phase2(config, load_samples(config.data.path), top).total_tokens
        rows.append(row(f, table, tokens, full_s / full_tokens * tokens, "estimated (replay)", "", positive, types,
                        reference, k, full_tokens))
    print(f"{args.dir}: n={len(ids)}, top 30% = {k} samples")
    print("| F | model tokens | share of F=1 | measuring wall (load avg.) | AUROC ± SE | P@30% | Jaccard@30% vs F=1 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        load = f", load {r['load']}" if r["load"] else ""
        print(f"| {r['F']:g} | {r['tokens']:,} | {r['token_share']:.0%} | {r['wall_s']:.0f} s ({r['wall']}{load}) | "
              f"{r['auroc']:.3f} ± {r['auroc_se']:.3f} | {r['p30']:.0%} | {r['jaccard30']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
