"""The CAM cascade on a labelled benchmark set: for F in --fractions, the model tokens, wall time, AUROC, P@30% and
the Jaccard of the 30% selection against the complete run (F = 1).

Needs DIR/data.jsonl + DIR/labels.jsonl (`gateau bench synth`) and a complete run of it in DIR/f1 scored with
`gateau score DIR/data.jsonl --out DIR/f1 --methods gateau --short-window 128` (the bench's main window). Each
F < 1 is the cascade replayed on that run (`gateau.bench.benchmark.cascade.replay`: a real cascade stores the same
numbers, tests/test_cascade.py checks it), with its tokens counted exactly by the planner for the replayed top set
(phase 1 for every sample + phase 2 for the top set, the batches `gateau score` runs), and its wall time the
complete run's measured seconds per model token times those tokens (an estimate; --real F runs the cascade
instead and times it). A complete run stopped early counts the samples it stored (longest first).

    python bench/cascade.py DIR [--fractions 1,0.6,0.4] [--real 0.4] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from gateau.bench.benchmark.cascade import replay
from gateau.bench.benchmark.stats import label_arrays, metrics, top_count
from gateau.bench.synth.build import read_labels
from gateau.config import ScoreConfig
from gateau.data import load_samples
from gateau.pipeline.run import plan_chunks, run_score
from gateau.pipeline.scorer import Scorer
from gateau.pipeline.token_plan import TokenPlan, add_chunks, planning_scorer
from gateau.select.rank import rank_table
from gateau.store import RunStore


def planned_tokens(config: ScoreConfig, ids: set[str], top: list[str] | None) -> int:
    """Model tokens of scoring the samples ``ids`` of the data: a complete run (``top`` None), or a cascade whose
    top set is ``top``: phase 1 on every sample, phase 2 on ``top``."""
    samples = [s for s in load_samples(config.data.path, config.data.fields, config.data.limit) if s.id in ids]
    plan = TokenPlan(samples=len(samples), statuses={})
    if top is None:
        add_chunks(plan, planning_scorer(config), plan_chunks(samples, config.execution.chunk_size))
        return plan.total_tokens
    first = planning_scorer(replace(config, cascade_phase="hmg"))
    second = Scorer(replace(config, cascade_phase="cam"), first.long, first.short)
    add_chunks(plan, first, plan_chunks(samples, config.execution.chunk_size))
    chosen = set(top)
    add_chunks(plan, second, plan_chunks([s for s in samples if s.id in chosen], config.execution.chunk_size))
    return plan.total_tokens


def complete_run_cost(store: RunStore, config: ScoreConfig, ids: set[str]) -> tuple[int, float, str]:
    """(model tokens, seconds, how) of the complete run: from its history when it finished, else (a run stopped
    early: only its stored samples count) the planner's tokens for those samples and the time from config.json to
    the newest stored chunk."""
    history = store.read_history()
    if history:
        return (sum(h["forward_tokens"] for h in history), sum(h["measure_s"] for h in history), "measured")
    newest = max(p.stat().st_mtime for p in (store.dir / "shards").glob("part-*.parquet"))
    return (planned_tokens(config, ids, None), newest - store.config_path.stat().st_mtime,
            "measured, stopped early: config.json to the last stored chunk")


def selection(table, k: int) -> set[str]:
    ranking = rank_table(table, "gateau")
    ids = table.column("id").to_pylist()
    return {ids[i] for i in ranking.order[:k]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", type=Path)
    ap.add_argument("--fractions", default="1,0.6,0.4")
    ap.add_argument("--real", help="comma-separated fractions to also score for real (timed)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    store = RunStore(args.dir / "f1")
    saved = store.read_config()
    config = ScoreConfig.from_dict({**saved["config"], "out": str(args.dir / "f1")})
    full = store.read_scores() if store.read_history() else store.stored_rows()
    labels = read_labels(args.dir / "labels.jsonl")
    ids = full.column("id").to_pylist()
    full_tokens, full_s, full_how = complete_run_cost(store, config, set(ids))
    positive, types = label_arrays(ids, labels)
    k = top_count(0.3, len(ids))
    reference = selection(full, k)
    rows = []
    for fraction in map(float, args.fractions.split(",")):
        if fraction == 1:
            table, tokens, wall, how = full, full_tokens, full_s, full_how
        else:
            table, top = replay(full, fraction)
            tokens = planned_tokens(config, set(ids), top)
            wall, how = full_s / full_tokens * tokens, "estimated"
        m = metrics(rank_table(table, "gateau").score, positive, types)
        chosen = selection(table, k)
        rows.append({"F": fraction, "tokens": tokens, "token_share": tokens / full_tokens, "wall_s": wall,
                     "wall": how, "auroc": m["auroc"], "auroc_se": m["auroc_se"], "p30": m["p30"],
                     "jaccard30": len(chosen & reference) / len(chosen | reference)})
    for fraction in map(float, (args.real or "").split(",") if args.real else []):
        out = args.dir / f"real-{fraction:g}"
        cfg = replace(config, out=str(out), measure=replace(config.measure, cam_top=fraction))
        start = time.perf_counter()
        summary = run_score(cfg)
        table = RunStore(out).read_scores()
        m = metrics(rank_table(table, "gateau").score, *label_arrays(table.column("id").to_pylist(), labels))
        chosen = selection(table, k)
        rows.append({"F": fraction, "tokens": summary.forward_tokens, "token_share": summary.forward_tokens / full_tokens,
                     "wall_s": time.perf_counter() - start, "wall": "measured (real cascade)", "auroc": m["auroc"],
                     "auroc_se": m["auroc_se"], "p30": m["p30"],
                     "jaccard30": len(chosen & reference) / len(chosen | reference)})
    print(f"{args.dir}: n={len(ids)}, top 30% = {k} samples; complete run {full_tokens} tokens in {full_s:.0f} s")
    print("| F | model tokens | share of F=1 | wall | AUROC ± SE | P@30% | Jaccard@30% vs F=1 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['F']:g} | {r['tokens']} | {r['token_share']:.0%} | {r['wall_s']:.0f} s ({r['wall']}) | "
              f"{r['auroc']:.3f} ± {r['auroc_se']:.3f} | {r['p30']:.0%} | {r['jaccard30']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
