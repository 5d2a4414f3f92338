"""The whole score's cost over a plain forward, per context length, with and without the CAM cascade.

For each length (one process each, results appended to --out as they finish, so a rerun skips lengths already
measured): --samples samples of essay text (`bench/throughput.py`'s `make_samples`, --response tokens of
response), the embedded model, window mode W = --window, and

- plain: one forward over a sample's full row (``logits_to_keep=1``, no probe): the cost floor of any scorer;
- score: `Scorer.score_batch` of every row the default methods (gateau = HMG + CAM) need, per sample;
- cascade: the cascade's phase 1 (`cascade_phase="hmg"`: full row with the attention probe + window row) and
  phase 2 (``"cam"``: the segment rows) of the same samples, timed apart; per sample the cascade at fraction F
  costs phase 1 + F × phase 2 (every sample runs phase 1, a fraction F of them phase 2).

Printed: seconds per sample and the ratios score / plain and cascade(F) / plain. Measuring only (models loaded
and warmed up before; no parquet writes, which are milliseconds).

    python bench/score_ratio.py --out /tmp/score_ratio.json [--lengths 1024,2048,4096,8192] [--fraction 0.4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def worker(length: int, samples: int, response: int, window: int, repeats: int) -> dict:
    import torch
    from throughput import build_model, make_samples, row_width

    from gateau.config import ScoreConfig
    from gateau.methods.hmg import FULL
    from gateau.pipeline.scorer import Scorer

    torch.manual_seed(0)
    lm = build_model("default", "cpu", "auto", "sdpa")
    data = make_samples(lm.tokenizer, length, samples, response)
    config = ScoreConfig.from_flat(data="-", out="-", methods="gateau", short_window=window,
                                   max_length=row_width(length), progress=False, device="cpu")
    scorers = {phase: Scorer(replace(config, cascade_phase=phase), lm) for phase in (None, "hmg", "cam")}
    warm = make_samples(lm.tokenizer, 256, 1, response)
    for scorer in scorers.values():
        scorer.score_batch(warm)
    ids = torch.tensor([scorers[None].plan(data[0], {})[1][FULL].ids])
    with torch.no_grad():
        lm.model(input_ids=ids, logits_to_keep=1, use_cache=False)
        t = time.perf_counter()
        for _ in range(repeats):
            lm.model(input_ids=ids, logits_to_keep=1, use_cache=False)
        plain = (time.perf_counter() - t) / repeats
    out = {"length": length, "samples": samples, "full_row_tokens": len(ids[0]), "plain_s": plain}
    for phase, name in ((None, "score"), ("hmg", "phase1"), ("cam", "phase2")):
        scorer = scorers[phase]
        before = scorer.forward_tokens
        t = time.perf_counter()
        rows = scorer.score_batch(data)
        out[f"{name}_s"] = (time.perf_counter() - t) / samples
        out[f"{name}_tokens"] = (scorer.forward_tokens - before) / samples
        assert all(r["status"] == "ok" for r in rows), [r["error"] for r in rows]
    out["load_end"] = os.getloadavg()[0]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--lengths", default="1024,2048,4096,8192")
    ap.add_argument("--samples", type=int, default=1)
    ap.add_argument("--response", type=int, default=64)
    ap.add_argument("--window", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--fraction", type=float, default=0.4, help="the cascade's F for the cascade column")
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.samples, args.response, args.window, args.repeats)))
        return
    results = json.loads(args.out.read_text()) if args.out.is_file() else []
    done = {r["length"] for r in results}
    for length in (int(x) for x in args.lengths.split(",")):
        if length in done:
            continue
        load = os.getloadavg()[0]
        cmd = [sys.executable, __file__, "--out", str(args.out), "--worker", str(length), "--samples",
               str(args.samples), "--response", str(args.response), "--window", str(args.window), "--repeats",
               str(args.repeats)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if proc.returncode != 0:
            raise SystemExit(f"length {length}: {proc.stderr.strip().splitlines()[-3:]}")
        results.append({**json.loads(proc.stdout.strip().splitlines()[-1]), "load_start": load})
        args.out.write_text(json.dumps(results, indent=1) + "\n")
        print(json.dumps(results[-1]), flush=True)
    f = args.fraction
    print(f"\n| context tokens | full row tokens | plain forward s | score s/sample | score / plain | phase 1 s | "
          f"phase 2 s | cascade F={f:g} / plain | load avg. |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in sorted(results, key=lambda r: r["length"]):
        cascade = r["phase1_s"] + f * r["phase2_s"]
        print(f"| {r['length']} | {r['full_row_tokens']} | {r['plain_s']:.2f} | {r['score_s']:.2f} | "
              f"{r['score_s'] / r['plain_s']:.2f} | {r['phase1_s']:.2f} | {r['phase2_s']:.2f} | "
              f"{cascade / r['plain_s']:.2f} | {r['load_start']:.0f}–{r['load_end']:.0f} |")


if __name__ == "__main__":
    main()
