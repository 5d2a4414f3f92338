"""Wall time of `gateau select` on a large stored run (synthetic rows: no model is needed to make or select them).

    python bench/select_speed.py --n 10000 --segments 32

Writes a data file of N small records and a run directory whose rows hold plausible gateau columns (PPLs,
N_seg segment PPLs and attention values, CAS), then times ``gateau select RUN --ratio 0.3 --out F`` as a fresh
process (interpreter start and imports included), once per method given, and checks that torch was not imported.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from gateau.config import ScoreConfig
from gateau.data import load_samples
from gateau.pipeline.scorer import base_row, output_schema
from gateau.store import RunStore

FAKE_FINGERPRINT = "synthetic-rows"


def make_run(root: Path, n: int, segments: int, seed: int = 0) -> Path:
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
    samples = load_samples(data)
    for lo in range(0, n, 1000):
        rows = []
        for s in samples[lo: lo + 1000]:
            row = base_row(s, FAKE_FINGERPRINT)
            long = float(rng.uniform(1.5, 6.0))
            row.update(n_context=segments * 128, n_instruction=8, n_response=12, n_truncated=0,
                       ppl_long=long, ppl_short=long * float(rng.uniform(0.9, 3.0)), n_short_context=128,
                       seg_ppl=rng.uniform(1.5, 9.0, segments).tolist(),
                       seg_attn=rng.uniform(1e-4, 3e-3, segments).tolist(), seg_tokens=[128] * segments,
                       seg_starts=list(range(0, 128 * segments, 128)), attn_head=rng.uniform(0, 1e-2, 16).tolist(),
                       cas=float(rng.uniform(0.3, 0.9)), nll_long=float(np.log(long)),
                       nll_alone=float(rng.uniform(1.0, 3.0)))
            row["ifd"] = row["nll_long"] / row["nll_alone"]
            rows.append(row)
        store.write_shard(rows, schema)
    store.consolidate()
    return Path(config.out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--segments", type=int, default=32, help="CAM segments per row (32 x 128 tokens = a 4k context)")
    p.add_argument("--methods", default="gateau,hmg,ifd,random")
    p.add_argument("--out", default="/tmp/gateau-select-bench")
    args = p.parse_args()
    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    run = make_run(root, args.n, args.segments)
    print(f"made a {args.n}-row run with {args.segments} segments per row in {time.perf_counter() - t0:.1f} s")
    code = ("import sys, time\nt = time.perf_counter()\nfrom gateau.cli import main\n"
            "rc = main(sys.argv[1:])\nprint('torch imported:', 'torch' in sys.modules, file=sys.stderr)\n"
            "sys.exit(rc)")
    for method in args.methods.split(","):
        out = root / f"selected-{method}.jsonl"
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code, "select", str(run), "--method", method, "--ratio", "0.3",
                               "--out", str(out)], capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        torch_line = done.stderr.strip().splitlines()[-1]
        print(f"gateau select --method {method} --ratio 0.3 --out: {wall:.2f} s wall "
              f"({len(out.read_text().splitlines())} records written; {torch_line})")


if __name__ == "__main__":
    main()
