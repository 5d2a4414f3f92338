"""The local and Ray executors write the same store: equal rows, interrupted runs finished by either executor,
killed workers and a killed driver, content fingerprints, data checks at export, and a torch-free `select`."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from helpers import TINY_WINDOWS, random_words, score_config, write_jsonl

from gateau.cli import main
from gateau.config import ScoreConfig
from gateau.pipeline.run import run_score
from gateau.store import RunStore

ray = pytest.importorskip("ray")

WORDS = ("the harbour keeps a blue lighthouse and the archive holds every essay while founders talk to users "
         "and write code the secret number is kept by the red boats").split()


def make_records(n: int = 12) -> list[dict]:
    rng = random.Random(5)
    return [{"id": f"r{i:02d}", "context": random_words(rng, WORDS, 20 + 9 * i),
             "instruction": "What is the secret number?", "response": random_words(rng, WORDS, 4)} for i in range(n)]


def config(data: Path, out: Path, model_dir: Path, **kw) -> ScoreConfig:
    return score_config(data, out, **{"methods": "gateau,ifd", "long_model": str(model_dir), **TINY_WINDOWS,
                                      "chunk_size": 3, "token_budget": 4096, "workers": 2, **kw})


def rows(out: Path) -> dict[str, dict]:
    """Stored rows by id, without the columns that say nothing about the measurement."""
    table = pq.read_table(out / "scores.parquet").to_pylist()
    return {r["id"]: r for r in table}


def assert_equal_rows(a: dict[str, dict], b: dict[str, dict], tol: float = 1e-6) -> None:
    """Same ids and, per column, equal values (floats within ``tol``: Ray workers run torch with other thread
    counts, so fp32 sums may differ in the last bits)."""
    assert list(a) == list(b)
    for sid in a:
        for name, x in a[sid].items():
            y = b[sid][name]
            if isinstance(x, float):
                assert y == pytest.approx(x, rel=tol, abs=tol), (sid, name)
            elif isinstance(x, list) and x and isinstance(x[0], float):
                assert y == pytest.approx(x, rel=tol, abs=tol), (sid, name)
            else:
                assert x == y, (sid, name)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("data") / "data.jsonl", make_records())


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, data, tiny_model_dir) -> Path:
    out = tmp_path_factory.mktemp("runs") / "local"
    summary = run_score(config(data, out, tiny_model_dir))
    assert summary.statuses == {"ok": 12}
    return out


def stored_ids(out: Path) -> list[str]:
    """Every id in every stored chunk (duplicates kept), sorted."""
    return sorted(i for p in (out / "shards").glob("part-*.parquet") for i in pq.read_table(p).column("id").to_pylist())


def crash_after(monkeypatch, n: int) -> None:
    """Make the store fail (a simulated preemption of the driver) after ``n`` chunks are written."""
    original = RunStore.write_shard
    written: list[int] = []

    def flaky(self, rows, schema):
        if len(written) >= n:
            raise KeyboardInterrupt
        written.append(len(rows))
        return original(self, rows, schema)

    monkeypatch.setattr(RunStore, "write_shard", flaky)


@pytest.mark.slow  # run by name in make test (Makefile SLOW_TESTS)
def test_ray_rows_equal_local_rows(local_ray, tmp_path, data, tiny_model_dir, local_run):
    out = tmp_path / "ray"
    summary = run_score(config(data, out, tiny_model_dir, executor="ray"))
    assert summary.statuses == {"ok": 12} and summary.measured_now == 12 and summary.forward_tokens > 0
    assert_equal_rows(rows(out), rows(local_run))


@pytest.mark.slow  # run by name in make test (Makefile SLOW_TESTS)
@pytest.mark.parametrize("first, second", [("local", "ray"), ("ray", "local")])
def test_a_run_started_with_one_executor_is_finished_by_the_other(local_ray, tmp_path, data, tiny_model_dir,
                                                                  local_run, monkeypatch, first, second):
    out = tmp_path / f"{first}-then-{second}"
    with monkeypatch.context() as m:
        crash_after(m, 2)
        with pytest.raises(KeyboardInterrupt):
            run_score(config(data, out, tiny_model_dir, executor=first))
    assert len(list((out / "shards").glob("part-*.parquet"))) == 2
    summary = run_score(config(data, out, tiny_model_dir, executor=second))
    assert summary.skipped_done == 6 and summary.measured_now == 6
    assert stored_ids(out) == sorted(r["id"] for r in make_records())
    assert_equal_rows(rows(out), rows(local_run))


@pytest.mark.slow  # run by name in make test (Makefile SLOW_TESTS)
def test_a_killed_worker_is_restarted_and_every_sample_stored_once(local_ray, tmp_path, data, tiny_model_dir,
                                                                   local_run, monkeypatch):
    from gateau.pipeline import ray_executor

    out = tmp_path / "killed-worker"
    original = ray_executor.start_workers
    killed: list[int] = []

    def start_and_kill_one(cfg):
        workers = original(cfg)
        pid = ray.get(workers[0].pid.remote())
        os.kill(pid, signal.SIGKILL)  # dies before (or while) taking its first chunk
        killed.append(pid)
        return workers

    monkeypatch.setattr(ray_executor, "start_workers", start_and_kill_one)
    summary = run_score(config(data, out, tiny_model_dir, executor="ray"))
    assert killed and summary.statuses == {"ok": 12}
    assert stored_ids(out) == sorted(r["id"] for r in make_records())  # each sample stored exactly once
    again = run_score(config(data, out, tiny_model_dir, executor="ray"))
    assert again.measured_now == 0
    assert_equal_rows(rows(out), rows(local_run))


@pytest.mark.slow  # run by name in make test (Makefile SLOW_TESTS)
def test_a_killed_driver_loses_only_chunks_in_flight(tmp_path, data, tiny_model_dir, local_run):
    out = tmp_path / "killed-driver"
    cmd = [sys.executable, "-m", "gateau.cli", "score", str(data), "--out", str(out), "--methods", "gateau,ifd",
           "--long-model", str(tiny_model_dir), "--max-length", "256", "--segment-len", "16", "--short-window", "32",
           "--chunk-size", "3", "--token-budget", "4096", "--device", "cpu", "--dtype", "float32", "--no-progress",
           "--executor", "ray", "--workers", "2"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    shards = out / "shards"
    deadline = time.time() + 120
    while time.time() < deadline and not list(shards.glob("part-*.parquet")) and proc.poll() is None:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    stored_before = len(list(shards.glob("part-*.parquet")))
    assert 1 <= stored_before < 4, "the driver should be killed mid-run (4 chunks in all)"
    assert not (out / "scores.parquet").exists()
    cmd[cmd.index("ray")] = "local"
    assert subprocess.run(cmd, env=env, capture_output=True).returncode == 0
    assert_equal_rows(rows(out), rows(local_run))
    assert stored_ids(out) == sorted(r["id"] for r in make_records())  # each sample stored exactly once


def test_editing_a_record_rescores_only_that_sample_and_export_checks_the_data(tmp_path, tiny_model_dir):
    records = make_records(6)
    data = write_jsonl(tmp_path / "data.jsonl", records)
    out = tmp_path / "run"
    run_score(config(data, out, tiny_model_dir))
    before = rows(out)
    edited = [dict(r) for r in records]
    edited[4]["response"] = "a different answer"
    write_jsonl(data, edited)
    summary = run_score(config(data, out, tiny_model_dir))
    assert summary.measured_now == 1 and summary.skipped_done == 5
    after = rows(out)
    assert after["r04"]["content_hash"] != before["r04"]["content_hash"]
    assert after["r04"]["nll_long"] != before["r04"]["nll_long"]
    assert all(after[s] == before[s] for s in before if s != "r04")

    sel = tmp_path / "sel.jsonl"
    assert main(["select", str(out), "--ratio", "0.5", "--out", str(sel)]) == 0
    assert len(sel.read_text().splitlines()) == 3
    stale = write_jsonl(tmp_path / "stale.jsonl", records)  # the file before the edit
    assert main(["select", str(out), "--ratio", "0.5", "--out", str(tmp_path / "x.jsonl"), "--data", str(stale)]) == 2
    assert not (tmp_path / "x.jsonl").exists()
    moved = write_jsonl(tmp_path / "moved.jsonl", [edited[1], edited[0], *edited[2:]])
    assert main(["select", str(out), "--ratio", "0.5", "--out", str(tmp_path / "y.jsonl"), "--data", str(moved)]) == 2
    no_ids = [{k: v for k, v in r.items() if k != "id"} for r in edited]
    plain = write_jsonl(tmp_path / "plain.jsonl", no_ids)
    assert main(["select", str(out), "--ratio", "0.5", "--out", str(tmp_path / "z.jsonl"), "--data", str(plain)]) == 2


def test_export_errors_name_the_first_mismatching_id(tmp_path, tiny_model_dir, capsys):
    records = make_records(4)
    data = write_jsonl(tmp_path / "data.jsonl", records)
    out = tmp_path / "run"
    run_score(config(data, out, tiny_model_dir))
    edited = [dict(r) for r in records]
    edited[2]["context"] += " one more word"
    write_jsonl(tmp_path / "edited.jsonl", edited)
    main(["select", str(out), "--ratio", "1", "--out", str(tmp_path / "e.jsonl"), "--data",
          str(tmp_path / "edited.jsonl")])
    assert "sample 'r02' differs" in capsys.readouterr().err
    write_jsonl(tmp_path / "swapped.jsonl", [records[1], records[0], records[2], records[3]])
    main(["select", str(out), "--ratio", "1", "--out", str(tmp_path / "s.jsonl"), "--data",
          str(tmp_path / "swapped.jsonl")])
    assert "sample 'r00' was record 0 when scored but is record 1" in capsys.readouterr().err
    write_jsonl(tmp_path / "fewer.jsonl", records[1:])
    main(["select", str(out), "--ratio", "1", "--out", str(tmp_path / "f.jsonl"), "--data",
          str(tmp_path / "fewer.jsonl")])
    assert "sample 'r00' was scored but is not in" in capsys.readouterr().err


def test_select_never_imports_torch(local_run, tmp_path):
    out = tmp_path / "sel.jsonl"
    code = ("import sys\nfrom gateau.cli import main\n"
            f"rc = main(['select', {str(local_run)!r}, '--ratio', '0.5', '--out', {str(out)!r}])\n"
            "assert rc == 0, rc\nassert 'torch' not in sys.modules, 'select imported torch'\nprint('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("ok") and len(out.read_text().splitlines()) == 6
