"""`gateau score` then `gateau select` through `gateau.cli.main`, with a tiny llama saved to disk."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pyarrow.parquet as pq
import pytest
from helpers import random_words, write_jsonl

from gateau.cli import main

WORDS = ("the quick brown fox jumps over lazy dog archive keeps every essay in order startups grow when founders "
         "talk to users write code and keep costs low secret number of blue lighthouse is red harbour boats").split()


def make_records() -> list[dict]:
    rng = random.Random(1)

    def text(n: int) -> str:
        return random_words(rng, WORDS, n)

    recs = []
    for i in range(6):  # mixed shapes, explicit ids on some
        ctx, ins, rsp = text(15 + 9 * i), text(4) + "?", text(3 + i % 3) + "."
        if i % 3 == 0:
            recs.append({"id": f"la{i}", "messages": [{"role": "user", "content": ctx + "\n\n" + ins},
                                                      {"role": "assistant", "content": rsp}], "source": "longalign"})
        elif i % 3 == 1:
            recs.append({"instruction": ins, "input": ctx, "output": rsp, "meta": {"n": i}})
        else:
            recs.append({"id": i * 100, "context": ctx, "instruction": ins, "response": rsp})
    recs.insert(3, {"id": "bad", "context": "c", "instruction": "q?", "response": ""})
    return recs


def record_id(rec: dict, position: int) -> str:
    return str(rec["id"]) if "id" in rec else str(position)


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir):
    return tiny_model_dir


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory, model_dir):
    root = tmp_path_factory.mktemp("cli")
    data = write_jsonl(root / "data.jsonl", make_records())
    run = root / "run"
    code = main(["score", str(data), "--out", str(run), "--long-model", str(model_dir), "--methods", "gateau",
                 "--max-length", "512", "--no-progress", "--segment-len", "16"])
    assert code == 0
    return data, run


def sm(v):
    e = np.exp(np.asarray(v, dtype=np.float64))
    return e / e.sum()


def expected_gateau(table: dict[str, list], alpha: float = 0.8) -> dict[str, float]:
    """The paper's score from the stored raw columns, by hand: α·softmax(HMP) + (1−α)·softmax(CAS)."""
    ok = [i for i, s in enumerate(table["status"]) if s == "ok"]
    hmp = sm(np.exp([table["nll_short"][i] for i in ok])) - sm(np.exp([table["nll_long"][i] for i in ok]))
    cas = []
    for i in ok:
        a, b = sm(np.exp(table["seg_nll"][i])), sm(table["seg_attn"][i])
        cas.append(float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)))
    score = alpha * sm(hmp) + (1 - alpha) * sm(cas)
    return {table["id"][i]: float(s) for i, s in zip(ok, score)}


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_score_writes_a_run(scored_run, capsys):
    _, run = scored_run
    table = pq.read_table(run / "scores.parquet").to_pydict()
    recs = make_records()
    assert table["id"] == [record_id(r, i) for i, r in enumerate(recs)]
    assert table["status"] == ["ok"] * 3 + ["empty_response"] + ["ok"] * 3
    ok = [i for i, s in enumerate(table["status"]) if s == "ok"]
    assert all(len(table["seg_nll"][i]) >= 2 and len(table["seg_attn"][i]) == len(table["seg_nll"][i]) for i in ok)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["measure"]["max_length"] == 512 and cfg["measure"]["segment_len"] == 16
    assert cfg["measure"]["short_window"] == 128  # window mode, default W


@pytest.mark.parametrize("preset", [None, "paper"])
@pytest.mark.parametrize("ratio, k", [("0.5", 4), ("1", 6)])
def test_select_exports_ranked_records(scored_run, tmp_path, capsys, ratio, k, preset):
    data, run = scored_run
    out = tmp_path / "sel.jsonl"
    assert main(["select", str(run), "--ratio", ratio, "--out", str(out)] + (["--preset", preset] if preset else [])) == 0
    stdout = capsys.readouterr().out
    assert f"wrote {k} records" in stdout and "selected: " + str(k) in stdout

    exported = read_jsonl(out)
    table = pq.read_table(run / "scores.parquet").to_pydict()
    inputs = {record_id(r, i): r for i, r in enumerate(make_records())}
    # ratio 0.5 of 7 samples = ceil(3.5) = 4; ratio 1 = every ranked (ok) sample; the bad one is never exported
    assert len(exported) == k
    got_ids, scores = [], []
    for rank, rec in enumerate(exported, 1):
        meta = rec.pop("gateau")
        assert set(meta) >= {"score", "rank", "method", "components"}
        sid = next(s for s, r in inputs.items() if r == rec)  # the record is the input record, unchanged
        got_ids.append(sid)
        scores.append(meta["score"])
        assert meta["rank"] == rank and meta["method"] == "gateau"
        pos = table["id"].index(sid)
        comps = meta["components"]
        assert comps["ppl_short"] == pytest.approx(math.exp(table["nll_short"][pos]), rel=1e-12)
        assert comps["ppl_long"] == pytest.approx(math.exp(table["nll_long"][pos]), rel=1e-12)
        assert {"hmp", "cas"} <= set(comps)
    assert "bad" not in got_ids and len(set(got_ids)) == k
    assert scores == sorted(scores, reverse=True)
    if preset == "paper":  # the exact equations, recomputed by hand from the stored raw columns
        expected = expected_gateau(table)
        order = sorted(expected, key=lambda sid: -expected[sid])
        assert got_ids == order[:k]
        assert scores == pytest.approx([expected[sid] for sid in got_ids], rel=1e-9, abs=1e-12)
    # the top-k is the head of the full ranking
    full = tmp_path / "all.jsonl"
    assert main(["select", str(run), "--ratio", "1", "--out", str(full)] + (["--preset", preset] if preset else [])) == 0
    assert [r["gateau"]["rank"] for r in read_jsonl(full)] == list(range(1, 7))
    assert [r["gateau"]["score"] for r in read_jsonl(full)][:k] == scores


def test_select_options_change_the_ranking_without_a_model(scored_run, tmp_path):
    _, run = scored_run
    out = tmp_path / "hmg.jsonl"
    assert main(["select", str(run), "--count", "2", "--method", "ppl", "--out", str(out)]) == 0
    table = pq.read_table(run / "scores.parquet").to_pydict()
    ok = [i for i, s in enumerate(table["status"]) if s == "ok"]
    top = sorted(ok, key=lambda i: -table["nll_long"][i])[:2]
    exported = read_jsonl(out)
    assert [r["gateau"]["score"] for r in exported] == pytest.approx([math.exp(table["nll_long"][i]) for i in top])
    assert [r["gateau"]["rank"] for r in exported] == [1, 2]


def test_missing_data_file(tmp_path, model_dir, capsys):
    missing = tmp_path / "nope" / "missing.jsonl"
    code = main(["score", str(missing), "--out", str(tmp_path / "run"), "--long-model", str(model_dir),
                 "--max-length", "512", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("gateau score: error:") and "missing.jsonl" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("kind", ["empty_dir", "absent_dir"])
def test_select_on_a_non_run_dir(tmp_path, capsys, kind):
    run = tmp_path / "not_a_run"
    if kind == "empty_dir":
        run.mkdir()
        (run / "notes.txt").write_text("hello")
    code = main(["select", str(run), "--ratio", "0.5", "--out", str(tmp_path / "sel.jsonl")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("gateau select: error:") and str(run) in err
    assert not (tmp_path / "sel.jsonl").exists()
    assert not (run / "shards").exists()  # reading must not create anything
    assert "Traceback" not in err


def test_select_bad_ratio(scored_run, capsys):
    _, run = scored_run
    assert main(["select", str(run), "--ratio", "1.5"]) == 2
    assert "ratio" in capsys.readouterr().err


def test_select_on_a_non_run_dir_says_so(tmp_path, capsys):
    run = tmp_path / "not_a_run"
    run.mkdir()
    assert main(["select", str(run), "--ratio", "0.5"]) == 2
    assert "not a gateau run" in capsys.readouterr().err


def test_unloadable_long_model(tmp_path, scored_run, capsys):
    data, _ = scored_run
    code = main(["score", str(data), "--out", str(tmp_path / "run"), "--long-model", str(tmp_path / "no_model"),
                 "--max-length", "512", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("gateau score: error:") and "no_model" in err


def test_select_from_another_directory_after_a_relative_data_path(tmp_path, model_dir, monkeypatch, capsys):
    work = tmp_path / "work"
    (work / "elsewhere").mkdir(parents=True)
    write_jsonl(work / "data.jsonl", make_records()[:3])
    monkeypatch.chdir(work)
    assert main(["score", "data.jsonl", "--out", "run", "--long-model", str(model_dir), "--methods", "ppl",
                 "--max-length", "512", "--no-progress"]) == 0
    monkeypatch.chdir(work / "elsewhere")
    code = main(["select", "../run", "--ratio", "1", "--method", "ppl", "--out", "sel.jsonl"])
    assert code == 0, capsys.readouterr().err
    assert len(read_jsonl(work / "elsewhere" / "sel.jsonl")) == 3
