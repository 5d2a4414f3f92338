"""One signal policy: SIGINT and SIGTERM end every command with one line and 128 + the signal, never a traceback.

Real processes (`python -m gateau ...`) and real signals; slow (each starts torch), run with ``-m slow``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

WORDS = "the archive keeps every essay in order while founders talk to users and write code".split()


def default_sigint() -> None:
    """In the child: SIGINT back to its default. A shell starts background jobs (nohup, `&`) with SIGINT ignored,
    which the child would inherit, and gateau rightly keeps an inherited SIG_IGN."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def write_records(path: Path, n: int) -> Path:
    records = [{"id": f"r{i:02d}", "context": " ".join(WORDS[(i + j) % len(WORDS)] for j in range(60 + i)),
                "instruction": "what does the archive keep?", "response": "every essay, in order."}
               for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def score_command(data: Path, out: Path, model: Path) -> list[str]:
    return [sys.executable, "-m", "gateau", "score", str(data), "--out", str(out), "--long-model", str(model),
            "--methods", "gateau", "--max-length", "256", "--segment-len", "16", "--short-window", "32",
            "--chunk-size", "2", "--device", "cpu", "--dtype", "float32", "--no-progress"]


def stored_rows(out: Path) -> int:
    return sum(pq.read_metadata(p).num_rows for p in (out / "shards").glob("part-*.parquet"))


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_score_stops_on_a_signal_says_what_is_stored_and_resumes(tmp_path, tiny_model_dir, sig, code):
    data, out = write_records(tmp_path / "data.jsonl", 40), tmp_path / "run"
    cmd = score_command(data, out, tiny_model_dir)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=default_sigint)
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None and not list((out / "shards").glob("part-*.parquet")):
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before the first chunk was stored: make it longer"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "Traceback" not in err, err
    found = re.search(r"interrupted: (\d+) samples stored in (.+); run the same command to resume", err)
    assert found and found.group(2) == str(out), err
    stored = int(found.group(1))
    assert 1 <= stored < 40 and stored == stored_rows(out)
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert pq.read_table(out / "scores.parquet").num_rows == 40


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_the_imports_is_one_line(tmp_path, tiny_model_dir, sig, code):
    """The first seconds of `score` import torch and transformers: a signal there is one line too."""
    data, out = write_records(tmp_path / "data.jsonl", 4), tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(score_command(data, out, tiny_model_dir), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                                preexec_fn=default_sigint)
    time.sleep(1.0)  # python and gateau.cli start in ~0.1 s; torch's import takes seconds
    assert proc.poll() is None, "the command ended before the signal"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "Traceback" not in err and "interrupted" in err, err
