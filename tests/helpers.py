"""Helpers shared by the tests that score small datasets: record text from a word list, JSONL files, and the
scoring settings a tiny CPU model needs (the models themselves are fixtures in conftest.py)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from gateau.config import ScoreConfig

# Settings every tiny CPU scoring run shares: short sequences, fp32 on the CPU, no progress bar.
TINY_SCORE: dict[str, Any] = dict(max_length=256, device="cpu", dtype="float32", progress=False)
# CAM segments and the HMG window scaled to the tiny sequences (16 tokens a segment, a 32-token short window).
TINY_WINDOWS: dict[str, Any] = dict(segment_len=16, short_window=32)


def random_words(rng: random.Random, words: list[str], n: int) -> str:
    """``n`` words drawn with ``rng.choice`` from ``words``, joined by spaces."""
    return " ".join(rng.choice(words) for _ in range(n))


def write_jsonl(path: Path, records: list[dict]) -> Path:
    """Write ``records`` one JSON object a line (ASCII-escaped, as ``json.dumps`` does by default); returns ``path``."""
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def score_config(data: str | Path, out: str | Path, **settings: Any) -> ScoreConfig:
    """`ScoreConfig.from_flat` with the tiny CPU settings (`TINY_SCORE`) under ``settings``."""
    return ScoreConfig.from_flat(str(data), str(out), **{**TINY_SCORE, **settings})
