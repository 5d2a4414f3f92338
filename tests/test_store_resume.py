"""`run_score` end to end on a tiny in-process model: the run store, crash + resume, settings changes, bad records."""

from __future__ import annotations

import json
import math
import random
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from conftest import build_tiny_model
from helpers import TINY_WINDOWS, random_words, score_config, write_jsonl

from gateau.data import FieldMap
from gateau.models import LoadedModel, ModelLoadError
from gateau.config import ScoreConfig
from gateau.pipeline.run import run_score
from gateau.pipeline.scorer import resolved_max_length
from gateau.store import RunError, RunStore

WORDS = ("the quick brown fox jumps over lazy dog archive keeps every essay in order startups grow when founders "
         "talk to users write code and keep costs low secret number of blue lighthouse is red harbour boats").split()
MAX_LENGTH = 256


def make_records() -> list[dict]:
    rng = random.Random(0)

    def text(n: int) -> str:
        return random_words(rng, WORDS, n)

    recs = []
    for i in range(9):
        recs.append({"id": f"s{i:02d}", "context": text(12 + 7 * i), "instruction": text(4) + "?",
                     "response": text(3 + i % 4) + "."})
    recs.insert(2, {"id": "empty", "context": "some context", "instruction": "why?", "response": ""})
    recs.insert(5, {"id": "missing", "context": "some context", "instruction": "why?"})
    recs.insert(7, {"id": "toolong", "context": "ctx", "instruction": text(120), "response": "ok."})
    recs.append({"id": "short", "context": "tiny", "instruction": "what?", "response": "fine."})  # < 2 segments
    recs.append({"id": "truncated", "context": text(150), "instruction": "where?", "response": "here."})
    return recs


STATUSES = {"empty": "empty_response", "missing": "missing_field", "toolong": "too_long"}


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("data") / "data.jsonl"
    return write_jsonl(p, make_records())


def config(data, out, **kw) -> ScoreConfig:
    return score_config(data, out, **{"methods": "gateau", "long_model": "tiny", "max_length": MAX_LENGTH,
                                      **TINY_WINDOWS, "chunk_size": 3, "token_budget": 2048, **kw})


def models(tokenizer):
    """A fresh tiny llama each time (same seed = same weights), as a new process would load it."""
    model = build_tiny_model("llama", len(tokenizer), seed=3)
    return LoadedModel(model, tokenizer, spec="tiny", device=torch.device("cpu")), None


def read(out) -> dict[str, list]:
    return pq.read_table(out / "scores.parquet").to_pydict()


def assert_same_numbers(a: dict[str, list], b: dict[str, list], tol: float = 1e-9) -> None:
    assert set(a) == set(b)
    for name in a:
        for x, y in zip(a[name], b[name], strict=True):
            if isinstance(x, float) or isinstance(y, float):
                assert x == pytest.approx(y, abs=tol, rel=tol) if x is not None and y is not None else x is y, name
            elif isinstance(x, list) and x and isinstance(x[0], float):
                np.testing.assert_allclose(x, y, atol=tol, rtol=tol, err_msg=name)
            else:
                assert x == y, name


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory, data_file, tiny_tokenizer):
    """An uninterrupted run (shared: tests that need to modify a run copy it first)."""
    out = tmp_path_factory.mktemp("runs") / "clean"
    summary = run_score(config(data_file, out), models=models(tiny_tokenizer))
    return out, summary


def test_clean_run(clean_run):
    out, summary = clean_run
    records = make_records()
    table = read(out)
    assert table["id"] == [r["id"] for r in records]  # one row per input sample, input order
    assert table["index"] == list(range(len(records)))
    assert summary.total == summary.measured_now == len(records) and summary.skipped_done == 0
    for sid, status, error, note, ps, pl, cas in zip(table["id"], table["status"], table["error"], table["note"],
                                                     table["nll_short"], table["nll_long"], table["cas"]):
        assert status == STATUSES.get(sid, "ok"), (sid, status, error)
        if status == "ok":
            assert math.isfinite(ps) and math.isfinite(pl) and ps > 0 and pl > 0  # mean NLLs in nats
            if sid == "short":
                assert cas is None and "falls back to hmg" in note
            else:
                assert -1 <= cas <= 1 and not note
        else:
            assert error and ps is None and pl is None
    by_id = {sid: i for i, sid in enumerate(table["id"])}
    assert table["n_truncated"][by_id["truncated"]] > 0
    assert table["n_context"][by_id["truncated"]] - table["n_truncated"][by_id["truncated"]] > 0
    assert len(set(table["fingerprint"])) == 1
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["fingerprint"] == table["fingerprint"][0] and cfg["measure"]["max_length"] == MAX_LENGTH
    assert summary.statuses == {"ok": 11, "empty_response": 1, "missing_field": 1, "too_long": 1}
    assert summary.notes == 1 and summary.forward_tokens > 0


@pytest.mark.parametrize("crash_after", [1, 3])
def test_crash_and_resume_gives_the_uninterrupted_result(tmp_path, data_file, tiny_tokenizer, clean_run,
                                                         monkeypatch, crash_after):
    out = tmp_path / "crashy"
    original = RunStore.write_shard
    written = []

    def flaky(self, rows, schema):
        if len(written) >= crash_after:
            raise RuntimeError("simulated preemption")
        written.append([r["id"] for r in rows])
        return original(self, rows, schema)

    with monkeypatch.context() as m:
        m.setattr(RunStore, "write_shard", flaky)
        with pytest.raises(RuntimeError, match="simulated preemption"):
            run_score(config(data_file, out), models=models(tiny_tokenizer))
    assert not (out / "scores.parquet").exists()
    assert len(list((out / "shards").glob("part-*.parquet"))) == crash_after

    summary = run_score(config(data_file, out), models=models(tiny_tokenizer))
    done_before = sum(len(ids) for ids in written)
    assert summary.skipped_done == done_before and summary.measured_now == summary.total - done_before
    resumed, clean = read(out), read(clean_run[0])
    assert resumed["id"] == [r["id"] for r in make_records()]  # every sample exactly once, input order
    assert_same_numbers(resumed, clean)

    # a finished run re-run measures nothing and needs no model at all
    again = run_score(config(data_file, out))
    assert again.measured_now == 0 and again.forward_tokens == 0
    assert_same_numbers(read(out), clean)


def test_oom_rows_are_measured_again_on_resume(tmp_path, data_file, tiny_tokenizer, clean_run):
    out = tmp_path / "oom"
    long_model, _ = models(tiny_tokenizer)
    original = long_model.model.forward

    def forward(*args, **kwargs):
        if kwargs["input_ids"].shape[1] > 200:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return original(*args, **kwargs)

    long_model.model.forward = forward
    run_score(config(data_file, out), models=(long_model, None))
    first = read(out)
    oom = [sid for sid, st in zip(first["id"], first["status"]) if st == "oom"]
    assert oom and all("out of memory" in e for e, st in zip(first["error"], first["status"]) if st == "oom")

    summary = run_score(config(data_file, out), models=models(tiny_tokenizer))
    assert summary.measured_now == len(oom)
    # other rows batch differently now, so compare at float32 noise level rather than bit for bit
    assert_same_numbers(read(out), read(clean_run[0]), tol=1e-5)


def test_changed_measurement_setting_refuses_to_resume(tmp_path, data_file, tiny_tokenizer, clean_run):
    out = tmp_path / "copy"
    shutil.copytree(clean_run[0], out)
    before = (out / "scores.parquet").read_bytes()
    old_fp = json.loads((out / "config.json").read_text())["fingerprint"]
    with pytest.raises(RunError, match="segment_len"):
        run_score(config(data_file, out, segment_len=32), models=models(tiny_tokenizer))
    with pytest.raises(RunError, match="short_window"):
        run_score(config(data_file, out, short_window=64), models=models(tiny_tokenizer))
    with pytest.raises(RunError, match="fields"):
        run_score(config(data_file, out, fields=FieldMap(splitter="\n")), models=models(tiny_tokenizer))
    assert (out / "scores.parquet").read_bytes() == before  # nothing touched

    # settings that do not change the numbers (batching, chunking, progress) resume fine
    same = run_score(config(data_file, out, token_budget=999, chunk_size=5), models=models(tiny_tokenizer))
    assert same.measured_now == 0

    fresh = run_score(config(data_file, out, segment_len=32, overwrite=True), models=models(tiny_tokenizer))
    assert fresh.measured_now == fresh.total and fresh.skipped_done == 0
    table = read(out)
    assert table["id"] == [r["id"] for r in make_records()]
    assert json.loads((out / "config.json").read_text())["measure"]["segment_len"] == 32
    assert set(table["fingerprint"]) == {json.loads((out / "config.json").read_text())["fingerprint"]} != {old_fp}
    assert all(st in ("ok", "too_long", "empty_response", "missing_field") for st in table["status"])


def test_resolved_max_length(tmp_path, tiny_tokenizer):
    assert resolved_max_length(config("d", "o")) == MAX_LENGTH
    with pytest.raises(ValueError, match="at least 16"):
        config("d", "o", max_length=8)
    # unset: the long model's context window, read from its config alone
    model_dir = tmp_path / "model"
    build_tiny_model("llama", len(tiny_tokenizer)).config.save_pretrained(model_dir)
    assert resolved_max_length(config("d", "o", max_length=None, long_model=str(model_dir))) == 4096
    # a bare label is then looked up as a hub id, which cannot work offline
    with pytest.raises(ModelLoadError):
        resolved_max_length(config("d", "o", max_length=None, long_model="tiny"))


def test_store_read_errors(tmp_path):
    with pytest.raises(RunError, match="not a gateau run"):
        RunStore(tmp_path / "nothing").read_config()
    with pytest.raises(RunError, match="not a gateau run"):
        RunStore(tmp_path / "nothing").read_scores()
    store = RunStore(tmp_path / "empty_run")
    store.open({"fingerprint": "x", "measure": {}})
    with pytest.raises(RunError, match="no scored samples"):
        store.read_scores()
