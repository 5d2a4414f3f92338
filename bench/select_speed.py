"""Wall time of `gateau select` on a large stored run (synthetic rows: no model is needed to make or select them).

    python bench/select_speed.py --n 10000 --segments 32 --response-tokens 256

Writes a data file of N small records and a run directory whose rows hold plausible gateau columns (mean NLLs,
N_seg segment NLLs and attention values with the neutral response's profile, CAS, and ``--response-tokens``
per-token NLLs of each pass), then times ``gateau select RUN --ratio 0.3 --out F`` as a fresh process, once per
selection given (medians of ``--repeats``): the wall time (interpreter start and imports included) and the time
inside the command once its modules are imported (reading, ranking, export check, writing), and checks that
torch was not imported. ``--no-tokens`` leaves the per-token and neutral-profile columns out of the run (the
layout before they existed), to measure what they add to every selection.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from gateau.config import ScoreConfig
from gateau.data import load_samples
from gateau.pipeline.scorer import base_row, output_schema
from gateau.store import RunStore

FAKE_FINGERPRINT = "synthetic-rows"
TOKEN_FREE = ("tok_nll_long", "tok_nll_short", "seg_attn_neutral", "attn_head_neutral")  # left out by --no-tokens


def make_run(root: Path, n: int, segments: int, response_tokens: int = 256, tokens: bool = True,
             seed: int = 0) -> Path:
    """A finished run of ``n`` synthetic rows under ``root`` (``root/run``); returns its directory."""
    rng = np.random.default_rng(seed)
    data = root / "data.jsonl"
    with data.open("w") as handle:
        for i in range(n):
            handle.write(json.dumps({"id": f"s{i:05d}", "context": f"context {i} " * 20,
                                     "instruction": "What is it?", "response": f"It is {i}."}) + "\n")
    config = ScoreConfig.from_flat(data, root / "run", methods="gateau,ifd", overwrite=True)
    store = RunStore(config.out)
    store.open({"fingerprint": FAKE_FINGERPRINT, "measure": {}, "data": {"path": str(data.resolve()),
                "fields": vars(config.data.fields)}, "n_records": n}, overwrite=True)
    schema = output_schema(config)
    if not tokens:
        schema = pa.schema([f for f in schema if f.name not in TOKEN_FREE])
    samples = load_samples(data)
    for lo in range(0, n, 1000):
        rows = []
        for s in samples[lo: lo + 1000]:
            row = base_row(s, FAKE_FINGERPRINT)
            # per-token NLLs (nats): the long pass, and the short pass losing up to ~3 nats on a fifth of the tokens
            tok_long = rng.exponential(rng.uniform(0.4, 1.8), response_tokens).astype(np.float32)
            tok_short = (tok_long + rng.exponential(rng.uniform(0.1, 3.0), response_tokens)
                         * (rng.random(response_tokens) < 0.2)).astype(np.float32)
            row.update(n_context=segments * 128, n_instruction=8, n_response=response_tokens, n_truncated=0,
                       nll_long=float(tok_long.mean()), nll_short=float(tok_short.mean()), n_short_context=128,
                       seg_nll=rng.uniform(0.4, 2.2, segments).tolist(),
                       seg_attn=rng.uniform(1e-4, 3e-3, segments).tolist(), seg_tokens=[128] * segments,
                       seg_starts=list(range(0, 128 * segments, 128)), attn_head=rng.uniform(0, 1e-2, 16).tolist(),
                       cas=float(rng.uniform(0.3, 0.9)), nll_alone=float(rng.uniform(1.0, 3.0)))
            if tokens:
                row.update(tok_nll_long=tok_long, tok_nll_short=tok_short,
                           seg_attn_neutral=rng.uniform(1e-4, 3e-3, segments).tolist(),
                           attn_head_neutral=rng.uniform(0, 1e-2, 16).tolist())
            row["ifd"] = row["nll_long"] / row["nll_alone"]
            rows.append(row)
        store.write_shard(rows, schema)
    store.consolidate()
    return Path(config.out)


def time_select(run: Path, out: Path, flags: list[str], repeats: int) -> tuple[float, float, str, int]:
    """(median wall seconds, median seconds inside the command once its modules are imported, the torch line,
    records written) of ``gateau select RUN --ratio 0.3 --out F FLAGS`` in a fresh process."""
    code = ("import sys, time\nimport gateau.cli, gateau.select, gateau.methods, pyarrow.parquet, scipy.stats\n"
            "t = time.perf_counter()\nrc = gateau.cli.main(sys.argv[1:])\n"
            "print('work:', time.perf_counter() - t, file=sys.stderr)\n"
            "print('torch imported:', 'torch' in sys.modules, file=sys.stderr)\nsys.exit(rc)")
    walls, works = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code, "select", str(run), "--ratio", "0.3", "--out", str(out),
                               *flags], capture_output=True, text=True)
        walls.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        lines = done.stderr.strip().splitlines()
        works.append(float(lines[-2].split()[-1]))
    return (float(np.median(walls)), float(np.median(works)), lines[-1], len(out.read_text().splitlines()))


DEFAULT_SELECTIONS = ("--method gateau", "--method hmg", "--method ifd", "--method random",
                      "--method hmg-tokens", "--method gateau --token-weight 0.5",
                      "--method gateau --attn-calibration divide --attn-norm sum")


def _needs_new_columns(flags: str) -> bool:
    """Whether a selection reads columns that --no-tokens leaves out (gateau and hmg-tokens store the per-token
    NLLs; calibration reads the neutral profile)."""
    return any(word in flags for word in ("gateau", "hmg-tokens", "calibration"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--segments", type=int, default=32, help="CAM segments per row (32 x 128 tokens = a 4k context)")
    p.add_argument("--response-tokens", type=int, default=256, help="response tokens per row (per-token columns)")
    p.add_argument("--no-tokens", action="store_true", help="leave the per-token and neutral-profile columns out")
    p.add_argument("--select", action="append", help="flags of one selection to time (repeatable; default: "
                   + "; ".join(DEFAULT_SELECTIONS) + ")")
    p.add_argument("--repeats", type=int, default=3, help="timings per selection (the median is printed)")
    p.add_argument("--out", default="/tmp/gateau-select-bench")
    args = p.parse_args()
    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    run = make_run(root, args.n, args.segments, args.response_tokens, tokens=not args.no_tokens)
    size = sum(f.stat().st_size for f in (run / "shards").glob("*.parquet"))
    print(f"made a {args.n}-row run with {args.segments} segments per row"
          + ("" if args.no_tokens else f" and {args.response_tokens} response tokens") +
          f" in {time.perf_counter() - t0:.1f} s ({size / 1e6:.1f} MB of chunks)")
    selections = args.select or [s for s in DEFAULT_SELECTIONS if not args.no_tokens or not _needs_new_columns(s)]
    for i, flags in enumerate(selections):
        wall, work, torch_line, records = time_select(run, root / f"selected-{i}.jsonl", flags.split(),
                                                      args.repeats)
        print(f"gateau select {flags} --ratio 0.3 --out: {wall:.2f} s wall, {work:.2f} s after imports "
              f"(medians of {args.repeats}; {records} records written; {torch_line})")


if __name__ == "__main__":
    main()
