"""bench/gpu_check.py dry run: the whole check (throughput with both attention implementations and the GQA shape,
a random-weight model saved and scored, selected and trained for 2 steps) on CPU with tiny shapes, within its
budget, written as JSON and Markdown. flash-attention is absent on CPU: those rows must say so, not stop the
check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "gpu_check.py"


@pytest.mark.slow
def test_dry_run_on_cpu_with_tiny_shapes(tmp_path):
    out = tmp_path / "check"
    env = {**os.environ, "GATEAU_GPU_CHECK_TINY": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--out", str(out), "--budget-s", "900"],
                          env=env, capture_output=True, text=True, timeout=1200)
    report = json.loads((out / "gpu_check.json").read_text())
    steps = {s["name"]: s for s in report["steps"]}
    assert report["tiny"] and [s["status"] for s in report["steps"]] == ["ok"] * len(steps), done.stdout
    assert done.returncode == 0
    assert list(steps) == ["throughput tiny flash_attention_2 256", "random model", "synthetic data", "gateau score",
                           "gateau select", "gateau train --max-steps 2", "throughput tiny sdpa 256",
                           "throughput tiny-gqa flash_attention_2 256"]
    # the score step's numbers are the run's own: every sample scored, its model tokens as history.jsonl has them
    run = out / "work" / "run"
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert steps["gateau score"]["result"]["forward_tokens"] == history[-1]["forward_tokens"] > 0
    assert set(pq.read_table(run / "scores.parquet").column("status").to_pylist()) == {"ok"}
    train = json.loads((out / "work" / "train" / "train_summary.json").read_text())
    assert steps["gateau train --max-steps 2"]["result"]["steps"] == train["steps"] == 2
    rows = {(r["shape"], r["attn"]): r for r in report["throughput"]}
    sdpa = rows[("tiny", "sdpa")]
    raw = json.loads((out / "work" / "tp-tiny-sdpa-256.json").read_text())[0]
    assert sdpa["fused"] == pytest.approx(raw["plain_s"] / raw["fused_s"])
    assert sdpa["segments"] == pytest.approx(raw["segment_tok_s"] / raw["plain_tok_s"])
    assert sdpa["peak_gb"] == pytest.approx(raw["peak_mb"] / 1024) and sdpa["fits_80gb"]
    flash = rows[("tiny", "flash_attention_2")]
    assert ("error" in flash) == (report["environment"]["flash_attn"] == "absent")
    md = (out / "gpu_check.md").read_text()
    assert md.count("\n| tiny | ") == 2 and "| tiny-gqa | flash_attention_2 | 256 |" in md
    assert f"| tiny | sdpa | 256 | {sdpa['fused']:.2f}x | {sdpa['segments']:.2f}x |" in md
