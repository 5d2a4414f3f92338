"""examples/slurm/submit.sh on a real Slurm (skipped unless `sbatch` reaches a running controller): a 3-task array
of `gateau score --shard I/3` and the dependent finish step give the rows of a local run, each sample stored once.

Single-node set-up used here (as root, Debian 12): `apt-get install slurm-wlm`, start `munged`, write a
slurm.conf with one node (`slurmd -C`), ProctrackType=proctrack/linuxproc and TaskPlugin=task/none, then start
`slurmctld` and `slurmd`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_shard_executor import N_RECORDS, assert_equal_rows, config, make_records, rows, stored_ids

from gateau.pipeline.run import run_score

SUBMIT = Path(__file__).resolve().parents[1] / "examples" / "slurm" / "submit.sh"


def slurm_running() -> bool:
    if not shutil.which("sbatch") or not shutil.which("sinfo"):
        return False
    try:
        return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.slow
@pytest.mark.skipif(not slurm_running(), reason="no running Slurm controller (sbatch/sinfo)")
def test_array_job_and_finish_step_equal_a_local_run(tmp_path, tiny_model_dir):
    data = tmp_path / "data.jsonl"
    import json

    data.write_text("".join(json.dumps(r) + "\n" for r in make_records()))
    out, local = tmp_path / "slurm-run", tmp_path / "local"
    run_score(config(data, local, tiny_model_dir))
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "DATA": str(data), "OUT": str(out), "N": "3", "HF_HUB_OFFLINE": "1",
           "GATEAU": f"{sys.executable} -m gateau",
           "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
    options = ["--methods", "gateau,ifd", "--long-model", str(tiny_model_dir), "--max-length", "256",
               "--segment-len", "16", "--short-window", "32", "--chunk-size", "2", "--token-budget", "4096",
               "--device", "cpu", "--dtype", "float32"]
    done = subprocess.run([str(SUBMIT), *options, "--", "--cpus-per-task=1", f"--chdir={tmp_path}"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    words = done.stdout.split()
    array, finish = words[words.index("job") + 1], words[-1]
    deadline = time.time() + 900
    while time.time() < deadline:
        queued = subprocess.run(["squeue", "-h", "-j", f"{array},{finish}"], capture_output=True, text=True)
        if not queued.stdout.strip():
            break
        time.sleep(2)
    logs = {p.name: p.read_text() for p in tmp_path.glob("gateau-*.out")}
    assert len(logs) == 4, logs
    finish_log = logs[f"gateau-finish-{finish}.out"]
    assert f"measured now 0, already done {N_RECORDS}" in finish_log, finish_log
    assert_equal_rows(rows(out), rows(local))
    assert stored_ids(out) == sorted(r["id"] for r in make_records())
