"""The shard executor (`gateau score --shard I/N`): deterministic disjoint shares of the chunk plan, N workers
writing one run directory (never one file), a SIGKILLed worker re-run, and a plain run that finishes: the rows
equal a local run's, each sample stored once. Plus the executor registry of the seam."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from gateau.config import ExecutionConfig, ScoreConfig
from gateau.data import Sample
from gateau.pipeline.executors import Executor, executor_names, get_executor
from gateau.pipeline.run import run_score
from gateau.store import RunError, RunStore

WORDS = ("the harbour keeps a blue lighthouse and the archive holds every essay while founders talk to users "
         "and write code the secret number is kept by the red boats").split()
N_RECORDS, CHUNK = 12, 2


def make_records(n: int = N_RECORDS) -> list[dict]:
    rng = random.Random(11)
    return [{"id": f"r{i:02d}", "context": " ".join(rng.choice(WORDS) for _ in range(15 + 7 * ((5 * i) % n))),
             "instruction": "What is the secret number?", "response": " ".join(rng.choice(WORDS) for _ in range(4))}
            for i in range(n)]


def score_args(data: Path, out: Path, model_dir: Path) -> list[str]:
    return ["score", str(data), "--out", str(out), "--methods", "gateau,ifd", "--long-model", str(model_dir),
            "--max-length", "256", "--segment-len", "16", "--short-window", "32", "--chunk-size", str(CHUNK),
            "--token-budget", "4096", "--device", "cpu", "--dtype", "float32", "--no-progress"]


def config(data: Path, out: Path, model_dir: Path, **kw) -> ScoreConfig:
    args = dict(methods="gateau,ifd", long_model=str(model_dir), max_length=256, segment_len=16, short_window=32,
                chunk_size=CHUNK, token_budget=4096, device="cpu", dtype="float32", progress=False)
    args.update(kw)
    return ScoreConfig.from_flat(data, out, **args)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in make_records()))
    return path


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, data, tiny_model_dir) -> Path:
    out = tmp_path_factory.mktemp("runs") / "local"
    assert run_score(config(data, out, tiny_model_dir)).statuses == {"ok": N_RECORDS}
    return out


def rows(out: Path) -> dict[str, dict]:
    return {r["id"]: r for r in pq.read_table(out / "scores.parquet").to_pylist()}


def assert_equal_rows(a: dict[str, dict], b: dict[str, dict], tol: float = 1e-6) -> None:
    """Same ids in the same order and equal values per column (floats within ``tol``: other processes may run torch
    with other thread counts)."""
    assert list(a) == list(b)
    for sid in a:
        assert set(a[sid]) == set(b[sid])
        for name, x in a[sid].items():
            y = b[sid][name]
            if isinstance(x, float) or (isinstance(x, list) and x and isinstance(x[0], float)):
                assert y == pytest.approx(x, rel=tol, abs=tol), (sid, name)
            else:
                assert x == y, (sid, name)


def stored_ids(out: Path) -> list[str]:
    """Every id in every stored chunk (duplicates kept), sorted."""
    return sorted(i for p in (out / "shards").glob("part-*.parquet") for i in pq.read_table(p).column("id").to_pylist())


def samples(n: int) -> list[Sample]:
    rng = random.Random(3)
    return [Sample(index=i, id=f"s{i}", context="x" * rng.randrange(1, 50), instruction="q", response="a")
            for i in range(n)]


def test_executors_are_found_by_name():
    assert executor_names() == ("local", "ray", "shard")
    for name in executor_names():
        executor = get_executor(name)
        assert isinstance(executor, Executor) and executor.name == name
    with pytest.raises(ValueError, match="unknown --executor 'slurm'"):
        get_executor("slurm")
    with pytest.raises(ValueError, match="unknown --executor 'slurm'"):
        ExecutionConfig(executor="slurm")


@pytest.mark.parametrize("spec", ["3", "3/3", "-1/2", "a/b", "1/0", "1/"])
def test_bad_shard_specs_are_refused(spec):
    with pytest.raises(ValueError, match="--shard must be I/N"):
        ExecutionConfig(shard=spec)


def test_shard_cannot_combine_with_ray_overwrite_or_repair():
    assert ExecutionConfig(shard="1/4").executor == "shard"
    with pytest.raises(ValueError, match="--executor ray"):
        ExecutionConfig(shard="0/2", executor="ray")
    with pytest.raises(ValueError, match="needs --shard"):
        ExecutionConfig(executor="shard")
    for flag in ("overwrite", "repair"):
        with pytest.raises(ValueError, match=f"--{flag}"):
            ScoreConfig.from_flat("d", "o", shard="0/2", **{flag: True})


@pytest.mark.parametrize("n_samples, chunk, count", [(25, 3, 4), (7, 2, 3), (5, 4, 8), (1, 1, 2)])
def test_shares_partition_the_chunk_plan_round_robin(n_samples, chunk, count):
    group = samples(n_samples)
    shard = get_executor("shard")
    shares = [shard.share(group, set(), ExecutionConfig(shard=f"{i}/{count}", chunk_size=chunk))
              for i in range(count)]
    # naive reference: sort longest first (ties by index), cut into chunks, deal chunk k to worker k mod N
    order = sorted(range(n_samples), key=lambda i: (-(len(group[i].context) + 2), i))
    chunks = [order[k: k + chunk] for k in range(0, n_samples, chunk)]
    for i, share in enumerate(shares):
        assert [[s.index for s in c] for c in share] == [c for k, c in enumerate(chunks) if k % count == i]
    assert sorted(s.index for share in shares for c in share for s in c) == list(range(n_samples))
    # done samples leave a share; a share whose samples are all done is empty
    done = {s.id for c in shares[0] for s in c[:1]}
    again = shard.share(group, done, ExecutionConfig(shard=f"0/{count}", chunk_size=chunk))
    assert [s.id for c in again for s in c] == [s.id for c in shares[0] for s in c if s.id not in done]


def test_shards_then_a_plain_run_finish_and_equal_a_local_run(tmp_path, data, tiny_model_dir, local_run):
    out = tmp_path / "sharded"
    first = run_score(config(data, out, tiny_model_dir, shard="0/3"))
    assert first.total == first.measured_now == 4 and set(first.statuses) == {"ok"}
    assert not (out / "scores.parquet").exists() and not (out / "history.jsonl").exists()
    assert json.loads((out / "config.json").read_text())["config"]["execution"]["shard"] is None
    config_bytes = (out / "config.json").read_bytes()
    run_score(config(data, out, tiny_model_dir, shard="2/3"))
    assert (out / "config.json").read_bytes() == config_bytes  # created once, never rewritten by a worker
    again = run_score(config(data, out, tiny_model_dir, shard="2/3"))
    assert again.measured_now == 0 and again.skipped_done == 4
    # shard 1/3 never ran: the plain run scores exactly its 4 samples and consolidates
    finish = run_score(config(data, out, tiny_model_dir))
    assert finish.measured_now == 4 and finish.skipped_done == 8 and finish.statuses == {"ok": N_RECORDS}
    assert_equal_rows(rows(out), rows(local_run))
    assert stored_ids(out) == sorted(r["id"] for r in make_records())
    history = RunStore(out).read_history()
    assert sorted(e.get("shard", "-") for e in history) == ["-", "0/3", "2/3", "2/3"]
    assert sorted(p.name for p in (out / "workers").iterdir()) == [
        "shard-0-of-3.jsonl", "shard-0-of-3.lock", "shard-2-of-3.jsonl", "shard-2-of-3.lock"]


def test_workers_and_a_plain_run_exclude_each_other(tmp_path, data, tiny_model_dir):
    out = tmp_path / "locks"
    store = RunStore(out)
    with store.lock(shared=True):  # a worker of another shard runs: a sibling may start, a plain run may not
        with pytest.raises(RunError, match="is being scored by another process"):
            run_score(config(data, out, tiny_model_dir, methods="length"))
        assert run_score(config(data, out, tiny_model_dir, methods="length", shard="1/3")).measured_now == 4
        with store.worker_lock("shard-0-of-3"):  # the same shard twice at once is refused
            with pytest.raises(RunError, match=r"shard-0-of-3 of .* is being scored by gateau score --shard \(pid"):
                run_score(config(data, out, tiny_model_dir, methods="length", shard="0/3"))
    with store.lock():  # a plain run holds the run: no worker may start
        with pytest.raises(RunError, match=r"is being scored by gateau score \(pid \d+\)"):
            run_score(config(data, out, tiny_model_dir, methods="length", shard="0/3"))
    assert run_score(config(data, out, tiny_model_dir, methods="length")).measured_now == 8


KILL_AT_SECOND_CHUNK = """
import os, signal, sys
from gateau.store import RunStore
original, written = RunStore.write_shard, []
def write_or_die(self, rows, schema):
    if written:
        os.kill(os.getpid(), signal.SIGKILL)  # preempted: the second chunk was measured but is never stored
    written.append(1)
    return original(self, rows, schema)
RunStore.write_shard = write_or_die
from gateau.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow  # run by name in make test (Makefile SLOW_TESTS)
def test_three_worker_processes_one_sigkilled_and_rerun(tmp_path, data, tiny_model_dir, local_run):
    out = tmp_path / "three"
    base = score_args(data, out, tiny_model_dir)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", KILL_AT_SECOND_CHUNK, *base, "--shard", "0/3"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    procs += [subprocess.Popen([sys.executable, "-m", "gateau", *base, "--shard", f"{i}/3"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in (1, 2)]
    results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    assert results[0][0] == -9, results[0]  # SIGKILL
    for rc, stdout, stderr in results[1:]:
        assert rc == 0, stderr
        assert "measured now 4, already done 0" in stdout and "shard" in stdout
    assert len(stored_ids(out)) == 2 * 4 + CHUNK  # the killed worker stored its first chunk only
    assert not (out / "scores.parquet").exists()

    rerun = subprocess.run([sys.executable, "-m", "gateau", *base, "--shard", "0/3"], env=env, capture_output=True,
                           text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"measured now {4 - CHUNK}, already done {CHUNK}" in rerun.stdout
    finish = subprocess.run([sys.executable, "-m", "gateau", *base], env=env, capture_output=True, text=True,
                            timeout=600)
    assert finish.returncode == 0, finish.stderr
    assert f"measured now 0, already done {N_RECORDS}" in finish.stdout
    assert_equal_rows(rows(out), rows(local_run))
    assert stored_ids(out) == sorted(r["id"] for r in make_records())  # each sample stored exactly once
