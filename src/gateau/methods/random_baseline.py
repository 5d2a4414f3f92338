"""Random baseline: a seeded uniform score in [0, 1) per sample, from a hash of (seed, sample id).

The score of a sample depends only on its ``seed`` option (``gateau select --seed``) and its id, not on the row
order or on the other samples, so a re-run, a resumed run or a subset ranks the same samples the same way. No
model and no stored column beyond ``id``: ``gateau select --method random`` works on any run.
"""

from __future__ import annotations

import hashlib

import numpy as np

from dataclasses import dataclass
from typing import Any

from .base import Method, option


@dataclass(frozen=True)
class RandomOptions:
    seed: int = option(0, "seed of the random baseline (default 0)")


def uniform_from_id(seed: int, sample_id: str) -> float:
    """A uniform float in [0, 1) from blake2b(seed, id); stable across processes and platforms."""
    digest = hashlib.blake2b(f"{seed}\x00{sample_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


class Random(Method):
    name = "random"
    uses_model = False
    help = "seeded uniform random score per sample id (--seed); no model"

    Options = RandomOptions

    def score(self, table: dict[str, Any], options: RandomOptions, k: int | None = None) -> np.ndarray:
        return np.array([np.nan if sid is None else uniform_from_id(options.seed, sid) for sid in table["id"]],
                        dtype=np.float64)
