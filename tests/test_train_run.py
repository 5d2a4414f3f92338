"""Whole runs on a tiny random Llama: overfitting, outputs, kill + --resume, two processes under accelerate,
and the command line's errors for bad input."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
import torch
from safetensors.torch import load_file
from train_fixtures import (cli_env, gateau_cmd, long_records, one_thread, read_log, run_cli, run_main,  # noqa: F401
                            save_tiny_model, sharegpt_records, write_json, write_jsonl)

from gateau.train.recipe import TrainConfig
from gateau.train.trainer import train


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny-train") / "model")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_jsonl(tmp_path_factory.mktemp("train-data") / "selected.jsonl", long_records(8, words=12))


def test_tiny_llama_overfits_and_writes_every_output(tmp_path, model_dir, data):
    out = tmp_path / "out"
    start = time.time()
    summary = train(TrainConfig(data=str(data), out=str(out), model=str(model_dir), max_length=256, epochs=30,
                                lr=3e-3, warmup_ratio=0.0, lr_scheduler="constant", batch_size=8, grad_accum=1,
                                gradient_checkpointing=False, progress=False, save_steps=1000))
    assert time.time() - start < 60
    log = read_log(out)
    assert [row["step"] for row in log] == list(range(1, 31))
    assert log[-1]["loss"] <= 0.5 * log[0]["loss"], (log[0]["loss"], log[-1]["loss"])
    assert all(set(row) >= {"step", "loss", "lr", "tokens_seen"} for row in log)
    tokens = [row["tokens_seen"] for row in log]
    assert tokens == [(i + 1) * tokens[0] for i in range(30)]  # the same 8 unpadded sequences every step
    assert summary.tokens_trained == tokens[-1] and summary.tokens_per_second > 0 and summary.peak_memory_mb > 0
    saved = json.loads((out / "train_config.json").read_text())
    assert saved["lr"] == 3e-3 and saved["max_length"] == 256 and saved["data"] == str(data)
    assert (out / "loss.png").stat().st_size > 1000
    # a HuggingFace model folder that from_pretrained loads, holding the trained weights
    for name in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json"):
        assert (out / name).is_file(), name
    before, after = _response_nll(model_dir, data), _response_nll(out, data)
    assert after == pytest.approx(log[-1]["loss"], rel=0.2) and after < 0.5 * before
    from gateau.models import load_model

    assert load_model(str(out), device="cpu").model.config.vocab_size == 300  # what gateau score/eval use


def _response_nll(model_path, data) -> float:
    """Mean response-token NLL of the training records under the model saved in ``model_path``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gateau.train.data import load_long
    from gateau.train.encode import ConversationEncoder

    tok = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path).eval()
    encoder = ConversationEncoder(tok, "chat", 256)
    total, count = 0.0, 0
    with torch.no_grad():
        for conv in load_long(data).conversations:
            enc = encoder.encode(conv.messages)
            labels = torch.tensor([enc.labels])
            out = model(torch.tensor([enc.input_ids]), labels=labels)
            n = int((labels[:, 1:] != -100).sum())
            total, count = total + out.loss.item() * n, count + n
    return total / count


def _kill_at_checkpoint(cmd, out, step, timeout=240):
    """Start ``cmd``; SIGKILL it as soon as ``out/checkpoint-<step>`` is complete. True if it was still running."""
    proc = subprocess.Popen(cmd, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + timeout
    marker = out / f"checkpoint-{step}" / "trainer_state.json"
    while time.time() < deadline and proc.poll() is None and not marker.exists():
        time.sleep(0.005)
    alive = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    assert marker.exists(), err[-3000:]
    return alive


@pytest.mark.slow  # run by name in make test (Makefile SLOW_TESTS)
def test_kill_and_resume_reach_the_same_weights(tmp_path, model_dir, data, capsys):
    args = [str(data), "--model", str(model_dir), "--max-length", "256", "--max-steps", "40", "--lr", "1e-3",
            "--batch-size", "2", "--grad-accum", "2", "--save-steps", "3", "--no-gradient-checkpointing",
            "--no-progress"]
    killed = tmp_path / "killed"
    assert _kill_at_checkpoint(gateau_cmd("train", *args, "--out", str(killed)), killed, 3), \
        "the run finished before it could be killed"
    assert not (killed / "model.safetensors").exists()
    code, _, err = run_main(capsys, "train", *args, "--out", str(killed))
    assert code == 2 and "pass --resume" in err  # never overwrites a run silently
    code, out, err = run_main(capsys, "train", *args, "--out", str(killed), "--resume")
    assert code == 0, err[-3000:]
    assert "resumed from" in out
    full = tmp_path / "full"
    code, _, err = run_main(capsys, "train", *args, "--out", str(full))
    assert code == 0, err[-3000:]
    a, b = load_file(str(full / "model.safetensors")), load_file(str(killed / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6, rtol=0), name
    assert [r["step"] for r in read_log(killed)] == list(range(1, 41))
    assert [r["loss"] for r in read_log(killed)] == pytest.approx([r["loss"] for r in read_log(full)], abs=1e-6)


@pytest.mark.slow  # run by name in make test (Makefile SLOW_TESTS)
def test_two_processes_give_the_one_process_loss_curve(tmp_path, model_dir, data):
    common = [str(data), "--model", str(model_dir), "--max-length", "256", "--max-steps", "3", "--lr", "1e-3",
              "--batch-size", "1", "--save-steps", "100", "--no-progress"]
    two = run_cli("train", *common, "--grad-accum", "2", "--num-processes", "2", "--out", str(tmp_path / "two"))
    assert two.returncode == 0, (two.stdout[-2000:], two.stderr[-3000:])
    assert json.loads((tmp_path / "two" / "train_config.json").read_text())["world_size"] == 2
    train(TrainConfig(data=str(data), out=str(tmp_path / "one"), model=str(model_dir), max_length=256, max_steps=3,
                      lr=1e-3, batch_size=1, grad_accum=4, save_steps=100, progress=False))
    one_log, two_log = read_log(tmp_path / "one"), read_log(tmp_path / "two")
    assert len(one_log) == 3
    assert [r["loss"] for r in two_log] == pytest.approx([r["loss"] for r in one_log], abs=1e-5)
    assert [r["tokens_seen"] for r in two_log] == [r["tokens_seen"] for r in one_log]


def test_lora_saves_the_adapter_and_a_merged_model(tmp_path, model_dir, data):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "lora"
    train(TrainConfig(data=str(data), out=str(out), model=str(model_dir), max_length=256, max_steps=3, lr=1e-2,
                      warmup_ratio=0.0, batch_size=4, grad_accum=1, lora_r=4, progress=False, save_steps=100))
    assert (out / "adapter" / "adapter_config.json").is_file()
    merged = AutoModelForCausalLM.from_pretrained(out).state_dict()
    base = AutoModelForCausalLM.from_pretrained(model_dir).state_dict()
    assert merged.keys() == base.keys()  # a plain model, no LoRA layers left
    changed = [k for k in base if not torch.equal(base[k], merged[k])]
    assert changed and all("proj" in k for k in changed)  # LoRA touched the linear layers only
    assert len(read_log(out)) == 3


@pytest.mark.parametrize("checkpointing", [False, True])
def test_train_last_layers_changes_only_those_layers_and_the_final_norm(tmp_path, model_dir, data, checkpointing):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "last"
    train(TrainConfig(data=str(data), out=str(out), model=str(model_dir), max_length=256, max_steps=2, lr=1e-2,
                      warmup_ratio=0.0, batch_size=4, grad_accum=1, train_last_layers=1, progress=False,
                      gradient_checkpointing=checkpointing, save_steps=100))
    base = AutoModelForCausalLM.from_pretrained(model_dir)
    trained = AutoModelForCausalLM.from_pretrained(out).state_dict()
    last = base.config.num_hidden_layers - 1
    trainable = {k for k in trained if k.startswith((f"model.layers.{last}.", "model.norm."))}
    changed = {k for k, v in base.state_dict().items() if not torch.equal(v, trained[k])}
    assert changed and changed <= trainable, sorted(changed - trainable)
    assert any(".mlp." in k for k in changed) and any(".self_attn." in k for k in changed)


def test_bad_input_gives_clear_errors(tmp_path, model_dir, data, capsys):
    def err(*args, model=model_dir):
        code, _, stderr = run_main(capsys, "train", *args, "--model", str(model), "--out", str(tmp_path / "o"),
                                   "--max-steps", "1", "--no-progress")
        assert code == 2, stderr[-2000:]
        line = stderr.strip().splitlines()[-1]
        assert line.startswith("gateau train: error: "), line
        return line

    (tmp_path / "empty.jsonl").write_text("")
    assert "no records found" in err(str(tmp_path / "empty.jsonl"))
    write_jsonl(tmp_path / "noresp.jsonl", [{"context": "C", "instruction": "I", "response": " "}])
    assert "none of its 1 records can be trained on (no_response: 1)" in err(str(tmp_path / "noresp.jsonl"))
    assert "no such file" in err(str(data), "--short-data", str(tmp_path / "missing.json"))
    assert "below the prompt length of every sample" in err(str(data), "--max-length", "8")
    assert "the model has 2 decoder layers" in err(str(data), "--train-last-layers", "5")
    assert "DeepSpeed needs CUDA" in err(str(data), "--deepspeed", "zero3-offload")
    assert "Liger kernels need a CUDA GPU" in err(str(data), "--liger")
    assert "not one of zero2, zero3, zero3-offload and no such file" in err(str(data), "--deepspeed", "zero9")
    bare = save_tiny_model(tmp_path / "bare")
    config = json.loads((bare / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (bare / "tokenizer_config.json").write_text(json.dumps(config))
    (bare / "chat_template.jinja").unlink(missing_ok=True)
    assert "has none; use --template plain" in err(str(data), model=bare)
    assert not (tmp_path / "o").exists()  # nothing was written for refused runs


def test_mixed_short_data_and_per_sample_skips_are_counted(tmp_path, model_dir, capsys):
    records = long_records(4, words=12) + [{"id": "bad", "context": "C", "instruction": "I", "response": ""}]
    long = write_jsonl(tmp_path / "long.jsonl", records)
    short = write_json(tmp_path / "short.json", sharegpt_records(10, empty_every=5))
    code, out, err = run_main(capsys, "train", str(long), "--model", str(model_dir), "--out", str(tmp_path / "o"),
                              "--max-steps", "1", "--short-data", str(short), "--max-length", "256", "--no-progress",
                              "--template", "plain")
    assert code == 0, err[-3000:]
    assert "long skipped (no_response): 1" in out
    assert "short skipped (no_response): 2" in out
    assert "mix long:short = 4:8 samples" in out
    summary = json.loads((tmp_path / "o" / "train_summary.json").read_text())
    assert summary["data"]["long"]["kept"] == 4 and summary["data"]["short"]["kept"] == 8
