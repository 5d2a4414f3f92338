"""Bad input and faults: each gets a clear error naming what is wrong, or a per-sample status, never a traceback
or a silent loss."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from conftest import build_tiny_model
from helpers import TINY_WINDOWS, score_config, write_jsonl

from gateau.cli import main
from gateau.config import ModelConfig, ScoreConfig
from gateau.data import DataError, load_samples
from gateau.models import LoadedModel, load_model
from gateau.pipeline.run import run_score
from gateau.store import RunError, RunStore
from gateau.util import atomic

WORDS = "the harbour keeps a blue lighthouse and the archive holds every essay in order".split()


def records(n: int = 6) -> list[dict]:
    return [{"id": f"r{i}", "context": " ".join(WORDS[(i + j) % len(WORDS)] for j in range(30 + 5 * i)),
             "instruction": "What does the harbour keep?", "response": "A blue lighthouse."} for i in range(n)]


def config(data: Path, out: Path, model_dir: Path, **kw) -> ScoreConfig:
    return score_config(data, out, **{"methods": "gateau", "long_model": str(model_dir), **TINY_WINDOWS,
                                      "chunk_size": 2, **kw})


def score_cmd(data: Path, out: Path, model_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "gateau.cli", "score", str(data), "--out", str(out), "--long-model", str(model_dir),
            "--max-length", "256", "--segment-len", "16", "--short-window", "32", "--device", "cpu", "--dtype",
            "float32", "--no-progress", *extra]


def temp_files(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if ".tmp" in p.name]


def test_untokenisable_text_is_a_per_sample_status_and_the_run_goes_on(tmp_path, tiny_model_dir):
    recs = records(4)
    recs[1]["response"] = "a lone surrogate \ud800 in the answer"
    data = write_jsonl(tmp_path / "d.jsonl", recs)
    summary = run_score(config(data, tmp_path / "run", tiny_model_dir))
    assert summary.statuses == {"ok": 3, "bad_text": 1}
    table = pq.read_table(tmp_path / "run" / "scores.parquet").to_pydict()
    assert table["status"][1] == "bad_text" and "cannot be tokenised" in table["error"][1]
    again = run_score(config(data, tmp_path / "run", tiny_model_dir))  # final status: not retried forever
    assert again.measured_now == 0


def test_nonfinite_nll_is_recorded_and_counted(tmp_path, tiny_tokenizer):
    model = build_tiny_model("llama", len(tiny_tokenizer), seed=2)
    with torch.no_grad():
        model.lm_head.weight[5] = float("inf")  # every logit row holds an inf: log-softmax gives NaN
    data = write_jsonl(tmp_path / "d.jsonl", records(3))
    lm = LoadedModel(model, tiny_tokenizer, spec="tiny", device=torch.device("cpu"))
    summary = run_score(config(data, tmp_path / "run", Path("tiny")), models=(lm, None))
    assert summary.statuses == {"nonfinite": 3}
    table = pq.read_table(tmp_path / "run" / "scores.parquet").to_pydict()
    assert all("non-finite NLL" in e for e in table["error"])
    assert main(["select", str(tmp_path / "run"), "--ratio", "1"]) == 0  # unranked, counted in the summary


@pytest.mark.slow  # run by name in make test (Makefile SLOW_TESTS)
def test_ctrl_c_prints_one_line_exits_130_and_leaves_no_partial_file(tmp_path, tiny_model_dir):
    data = write_jsonl(tmp_path / "d.jsonl", records(120))  # enough work (seconds) that SIGINT lands mid-run
    out = tmp_path / "run"
    proc = subprocess.Popen(score_cmd(data, out, tiny_model_dir, "--chunk-size", "1"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    deadline = time.time() + 120
    while time.time() < deadline and not list((out / "shards").glob("part-*.parquet")) and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    line = [x for x in err.splitlines() if x.startswith("interrupted")]
    assert len(line) == 1 and f"samples stored in {out}; run the same command to resume" in line[0]
    assert not temp_files(out) and not (out / "scores.parquet").exists()
    assert subprocess.run(score_cmd(data, out, tiny_model_dir, "--chunk-size", "1"), capture_output=True).returncode == 0
    assert len(pq.read_table(out / "scores.parquet")) == 120


def test_a_full_disk_names_the_path_and_leaves_no_temp_file(tmp_path, tiny_model_dir, monkeypatch, capsys):
    data = write_jsonl(tmp_path / "d.jsonl", records(4))
    out = tmp_path / "run"

    class FullDisk:
        """A file handle that writes the first 10 bytes, then fails as a full disk does."""

        def __init__(self, handle):
            self.handle = handle

        def write(self, payload):
            self.handle.write(payload[:10])  # a partial temp file, as a full disk leaves it
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.handle.__exit__(*exc)

    def full(file, *args, **kwargs):
        handle = open(file, *args, **kwargs)
        return FullDisk(handle) if Path(file).name.startswith(".part-") else handle

    monkeypatch.setattr(atomic, "open", full, raising=False)  # the module's `open`: every atomic write uses it
    with pytest.raises(RunError, match=r"cannot write .*part-.*: No space left on device"):
        run_score(config(data, out, tiny_model_dir))
    assert not temp_files(out) and not list((out / "shards").glob("*.parquet"))
    assert main(["score", str(data), "--out", str(out), "--long-model", str(tiny_model_dir), "--max-length", "256",
                 "--segment-len", "16", "--short-window", "32", "--device", "cpu", "--dtype", "float32",
                 "--no-progress"]) == 2
    assert "No space left on device" in capsys.readouterr().err


def test_an_unwritable_out_is_a_clear_error(tmp_path, tiny_model_dir):
    data = write_jsonl(tmp_path / "d.jsonl", records(2))
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(RunError, match="cannot create the run directory"):
        run_score(config(data, blocker / "run", tiny_model_dir))


def test_a_damaged_chunk_is_named_and_repair_rescores_it(tmp_path, tiny_model_dir):
    data = write_jsonl(tmp_path / "d.jsonl", records(6))
    out = tmp_path / "run"
    run_score(config(data, out, tiny_model_dir))
    clean = pq.read_table(out / "scores.parquet").to_pydict()
    shard = sorted((out / "shards").glob("part-*.parquet"))[1]
    shard.write_bytes(b"PAR1 this is not a parquet file")
    with pytest.raises(RunError, match=rf"{shard.name} is damaged .*--repair"):
        run_score(config(data, out, tiny_model_dir))
    summary = run_score(config(data, out, tiny_model_dir, repair=True))
    assert summary.measured_now == 2 and summary.statuses == {"ok": 6}
    assert shard.with_suffix(".damaged").exists()
    assert pq.read_table(out / "scores.parquet").to_pydict()["nll_long"] == pytest.approx(clean["nll_long"])


def test_scoring_another_file_into_a_run_is_refused_unless_overwrite(tmp_path, tiny_model_dir):
    out = tmp_path / "run"
    run_score(config(write_jsonl(tmp_path / "a.jsonl", records(2)), out, tiny_model_dir))
    other = write_jsonl(tmp_path / "b.jsonl", records(3))
    with pytest.raises(RunError, match=r"holds a run of .*a\.jsonl, not .*b\.jsonl"):
        run_score(config(other, out, tiny_model_dir))
    assert run_score(config(other, out, tiny_model_dir, overwrite=True)).statuses == {"ok": 3}


def test_select_refuses_an_unfinished_run_with_counts(tmp_path, tiny_model_dir, monkeypatch, capsys):
    data = write_jsonl(tmp_path / "d.jsonl", records(6))
    out = tmp_path / "run"
    original, calls = RunStore.write_shard, []

    def crash(self, rows, schema):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return original(self, rows, schema)

    monkeypatch.setattr(RunStore, "write_shard", crash)
    with pytest.raises(KeyboardInterrupt):
        run_score(config(data, out, tiny_model_dir))
    monkeypatch.undo()
    assert main(["select", str(out), "--ratio", "0.5"]) == 2
    assert "only 2 of 6 samples are scored" in capsys.readouterr().err
    assert main(["select", str(out), "--ratio", "0.5", "--allow-partial"]) == 0


def test_a_second_scorer_on_the_same_run_is_refused(tmp_path, tiny_model_dir):
    data = write_jsonl(tmp_path / "d.jsonl", records(2))
    out = tmp_path / "run"
    with RunStore(out).lock():
        with pytest.raises(RunError, match=r"is being scored by gateau score \(pid \d+\)"):
            run_score(config(data, out, tiny_model_dir))
    assert run_score(config(data, out, tiny_model_dir)).statuses == {"ok": 2}  # the lock is released


@pytest.mark.parametrize("argv, flag", [
    (["score", "D", "--out", "O", "--token-budget", "0"], "--token-budget"),
    (["score", "D", "--out", "O", "--segment-len", "-4"], "--segment-len"),
    (["score", "D", "--out", "O", "--chunk-size", "0"], "--chunk-size"),
    (["score", "D", "--out", "O", "--limit", "0"], "--limit"),
    (["score", "D", "--out", "O", "--short-window", "0"], "--short-window"),
    (["score", "D", "--out", "O", "--workers", "0"], "--workers"),
    (["select", "R", "--ratio", "0"], "--ratio"),
    (["select", "R", "--ratio", "1.5"], "--ratio"),
    (["select", "R", "--count", "-3"], "--count"),
    (["select", "R", "--ratio", "0.3", "--alpha", "2"], "--alpha"),
    (["select", "R", "--ratio", "0.3", "--temperature", "0"], "--temperature"),
    (["select", "R", "--ratio", "0.3", "--segment-temperature", "-1"], "--segment-temperature"),
    (["select", "R", "--ratio", "0.3", "--method", "hmg", "--alpha", "0.5"], "--alpha"),
])
def test_numeric_options_are_validated(argv, flag, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert flag in err and "Traceback" not in err


def test_binary_and_malformed_jsonl_name_the_file_and_line(tmp_path):
    binary = tmp_path / "blob.jsonl"
    binary.write_bytes(json.dumps(records(1)[0]).encode() + b"\n\xff\xfe\x00\x81garbage\n")
    with pytest.raises(DataError, match=r"blob\.jsonl:2: not UTF-8 text"):
        load_samples(binary)
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(records(1)[0]) + "\n{\"id\": \"x\", \"context\": \n")
    with pytest.raises(DataError, match=r"broken\.jsonl:2: invalid JSON"):
        load_samples(broken)


def test_limit_on_a_finished_run_counts_what_the_limit_covers(tmp_path, tiny_model_dir):
    data = write_jsonl(tmp_path / "d.jsonl", records(6))
    out = tmp_path / "run"
    run_score(config(data, out, tiny_model_dir))
    limited = run_score(config(data, out, tiny_model_dir, limit=2))
    assert limited.total == 2 and limited.statuses == {"ok": 2} and limited.measured_now == 0
    assert len(pq.read_table(out / "scores.parquet")) == 6  # rows beyond the limit are kept


def test_short_rope_theta_applies_to_flat_and_per_layer_type_configs(tmp_path, tiny_tokenizer, tiny_model_dir):
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    wide = load_model(str(tiny_model_dir), device="cpu", dtype="float32", rope_theta=2_000_000.0)
    assert wide.model.config.rope_parameters["rope_theta"] == 2_000_000.0
    torch.manual_seed(0)
    cfg = Gemma3TextConfig(vocab_size=len(tiny_tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=16, sliding_window=8,
                           max_position_embeddings=512, layer_types=["sliding_attention", "full_attention"])
    gemma_dir = tmp_path / "gemma"
    Gemma3ForCausalLM(cfg).save_pretrained(gemma_dir)
    tiny_tokenizer.save_pretrained(gemma_dir)
    base = load_model(str(gemma_dir), device="cpu", dtype="float32")
    widened = load_model(str(gemma_dir), device="cpu", dtype="float32", rope_theta=5_000_000.0)
    params = widened.model.config.rope_parameters
    assert {kind: p["rope_theta"] for kind, p in params.items()} == {"sliding_attention": 5e6, "full_attention": 5e6}
    ids = torch.tensor([list(range(5, 60))])
    with torch.no_grad():
        assert not torch.allclose(base.model(ids).logits, widened.model(ids).logits)  # the override takes effect


def test_each_measurement_default_is_written_once(tmp_path, tiny_model_dir):
    data = write_jsonl(tmp_path / "d.jsonl", records(2))
    assert main(["score", str(data), "--out", str(tmp_path / "run"), "--long-model", str(tiny_model_dir),
                 "--max-length", "256", "--device", "cpu", "--no-progress"]) == 0
    measure = json.loads((tmp_path / "run" / "config.json").read_text())["measure"]
    library = ScoreConfig.from_flat(data, tmp_path / "x")
    assert measure["short_window"] == ModelConfig.short_window == library.models.window
    assert measure["segment_len"] == library.measure.segment_len and measure["last_segment"] == "drop"


def test_a_run_of_an_older_layout_is_refused_with_what_to_do(tmp_path):
    run = tmp_path / "old"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"fingerprint": "x", "measure": {}, "data": "d.jsonl"}))
    with pytest.raises(RunError, match=r"older gateau \(run layout 1.*--overwrite"):
        RunStore(run).read_scores()


def test_a_rope_override_on_a_model_without_rope_is_refused():
    from transformers import GPT2Config

    from gateau.models import ModelLoadError, _set_rope_theta

    with pytest.raises(ModelLoadError, match="no RoPE base to override"):
        _set_rope_theta(GPT2Config(), 1e6)
