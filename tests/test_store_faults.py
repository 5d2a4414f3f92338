"""Run-store faults (issue 23, items 3, 6, 8): a damaged config.json or scores.parquet names the file and the
command that recovers, and `--repair` recovers it; an unknown --methods creates nothing; reading a run rewrites
scores.parquet only while it holds the run's lock."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gateau.cli import main
from gateau.store import RunStore

RECORDS = [{"id": f"r{i}", "context": "the blue lighthouse keeps the secret number " * (i + 1),
            "instruction": "What is the number?", "response": f"It is {i}."} for i in range(5)]


@pytest.fixture()
def run(tmp_path, tiny_model_dir) -> tuple[list[str], Path]:
    """(score argv, run dir) of a finished `--methods length` run."""
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    out = tmp_path / "run"
    argv = ["score", str(data), "--out", str(out), "--methods", "length", "--long-model", str(tiny_model_dir),
            "--chunk-size", "2", "--no-progress"]
    assert main(argv) == 0
    return argv, out


def table_rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def test_a_truncated_config_names_the_file_and_repair_rewrites_it(run, capsys):
    argv, out = run
    before = json.loads((out / "config.json").read_text())
    scores = table_rows(out / "scores.parquet")
    (out / "config.json").write_text((out / "config.json").read_text()[:98])
    capsys.readouterr()
    assert main(["select", str(out), "--method", "length", "--ratio", "0.5"]) == 2
    err = capsys.readouterr().err
    assert f"{out / 'config.json'} is damaged" in err and "--repair" in err and len(err.strip().splitlines()) == 1
    assert main(argv) == 2  # a plain score says the same, and changes nothing
    assert f"{out / 'config.json'} is damaged" in capsys.readouterr().err
    assert (out / "config.json").read_text() == json.dumps(before, indent=2, sort_keys=True)[:98]

    assert main([*argv, "--repair"]) == 0
    assert "measured now 0, already done 5" in capsys.readouterr().out  # the stored rows are kept
    after = json.loads((out / "config.json").read_text())
    assert {k: after[k] for k in ("fingerprint", "measure", "data", "n_records")} == \
        {k: before[k] for k in ("fingerprint", "measure", "data", "n_records")}
    assert table_rows(out / "scores.parquet") == scores
    assert main(["select", str(out), "--method", "length", "--ratio", "0.5"]) == 0


def test_a_corrupt_scores_table_names_the_file_and_repair_rebuilds_it(run, capsys):
    argv, out = run
    scores = table_rows(out / "scores.parquet")
    (out / "scores.parquet").write_bytes(b"PAR1 not really parquet")
    capsys.readouterr()
    assert main(["select", str(out), "--method", "length", "--ratio", "0.5"]) == 2
    err = capsys.readouterr().err
    assert f"{out / 'scores.parquet'} is damaged" in err and "--repair" in err and len(err.strip().splitlines()) == 1
    assert main([*argv, "--repair"]) == 0
    assert table_rows(out / "scores.parquet") == scores
    assert main(["select", str(out), "--method", "length", "--ratio", "0.5"]) == 0


@pytest.mark.parametrize("methods", ["bogus", "length,bogus"])
def test_an_unknown_method_creates_nothing(tmp_path, tiny_model_dir, capsys, methods):
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps(RECORDS[0]) + "\n")
    out = tmp_path / "run"
    assert main(["score", str(data), "--out", str(out), "--methods", methods, "--long-model",
                 str(tiny_model_dir)]) == 2
    assert "bogus" in capsys.readouterr().err
    assert not out.exists()


def test_reading_a_run_rewrites_scores_only_under_the_lock(run):
    _, out = run
    store = RunStore(out)
    old = table_rows(out / "scores.parquet")
    # a writer stores one more chunk: a newer row for r1 (the newest row per id wins)
    newer = dict(old[1], n_response=999)
    store.write_shard([newer], pq.read_schema(next((out / "shards").glob("part-*.parquet"))))
    expected = [newer if r["id"] == "r1" else r for r in old]
    stamp = (out / "scores.parquet").stat().st_mtime_ns, (out / "scores.parquet").read_bytes()
    with store.lock():  # a `gateau score` holds the run: the read is served from the shards, nothing written
        assert store.read_scores().to_pylist() == expected
        assert ((out / "scores.parquet").stat().st_mtime_ns, (out / "scores.parquet").read_bytes()) == stamp
    with store.lock(shared=True):  # shard workers run: the same
        assert store.read_scores().to_pylist() == expected
        assert (out / "scores.parquet").read_bytes() == stamp[1]
    assert store.read_scores().to_pylist() == expected  # unlocked: consolidated and written
    assert table_rows(out / "scores.parquet") == expected
    assert isinstance(store.read_scores(), pa.Table)
