"""Helpers for the `gateau train` tests: tiny records in every shape, a tiny saved model, file writers, and the
small training runs several tests share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import build_tiny_model, build_tiny_tokenizer
from helpers import write_jsonl  # noqa: F401 (the shared JSONL writer, imported from here by the train tests)

SRC = Path(__file__).resolve().parents[1] / "src"
WORDS = ("the quick brown fox jumps over the lazy dog while the archive keeps every essay in order "
         "startups grow when founders talk to users write code and keep costs low").split()


def context_text(i: int, n_words: int) -> str:
    """Deterministic filler context of ``n_words`` words."""
    return " ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(n_words))


def long_records(n: int = 8, words: int = 40) -> list[dict]:
    """``n`` single-turn LongAlign ``messages`` records with distinct answers of 1-3 sentences (the shape of a
    `gateau select` output)."""
    return [{"id": f"s{i}", "messages": [
        {"role": "user", "content": context_text(i, words + 3 * i) + "\n\nWhat is the secret number?"},
        {"role": "assistant",
         "content": f"The secret number is {1000 + 37 * i}." + " The archive keeps it." * (i % 3)}],
        "gateau": {"score": float(n - i), "rank": i + 1}} for i in range(n)]


def sharegpt_records(n: int, empty_every: int = 0) -> list[dict]:
    """ShareGPT ``conversations`` records, multi-turn for odd i; every ``empty_every``-th has an empty reply."""
    out = []
    for i in range(n):
        turns = [{"from": "human", "value": f"Summarise paragraph {i}."},
                 {"from": "gpt", "value": "" if empty_every and i % empty_every == 0 else f"Founders talk {i}."}]
        if i % 2:
            turns += [{"from": "human", "value": "Explain why."}, {"from": "gpt", "value": "Users keep costs low."}]
        out.append({"id": f"c{i}", "conversations": turns})
    return out


def write_json(path: Path, records: list[dict]) -> Path:
    path.write_text(json.dumps(records, indent=1))
    return path


def save_tiny_model(path: Path, seed: int = 1) -> Path:
    """A tiny random Llama + the tiny ChatML tokenizer, saved as a model folder."""
    tok = build_tiny_tokenizer()
    build_tiny_model("llama", len(tok), seed=seed).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def cli_env() -> dict[str, str]:
    """Environment for running ``python -m gateau`` from the source tree, offline, on few threads."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def gateau_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateau", *args]


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``gateau ARGS`` in a subprocess; returns the completed process (text output)."""
    return subprocess.run(gateau_cmd(*args), env=cli_env(), capture_output=True, text=True, timeout=timeout)


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``gateau ARGS`` in this process; returns (exit code, stdout, stderr)."""
    from gateau.cli import main

    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(autouse=True)
def one_thread():
    """Train on one CPU thread: on a shared 2-core machine two OpenMP threads wait on each other for most of
    every step (measured 5-10x slower), and one thread also makes runs bitwise reproducible across processes."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
