"""The plan of one `gateau score` invocation, built once and handed to an executor: the settings, the measurement
settings and their fingerprint, the output schema, and the chunks of samples to score."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from ..config import ScoreConfig
from ..data import Sample


@dataclass(frozen=True)
class RunPlan:
    """What an executor needs: ``measure`` (the settings that change the numbers) and ``fingerprint`` (their hash,
    computed once), ``schema`` of the stored rows, and ``chunks`` (lists of samples, longest first) to score."""

    config: ScoreConfig
    measure: dict[str, Any]
    fingerprint: str
    schema: pa.Schema
    chunks: list[list[Sample]]

    @property
    def n_samples(self) -> int:
        return sum(map(len, self.chunks))


def plan_chunks(samples: list[Sample], chunk_size: int) -> list[list[Sample]]:
    """Chunks of ``chunk_size`` samples of similar length, longest first (so parallel workers finish together
    and batches pad little). Length = characters of context + instruction + response: cheap, no tokenizer."""
    order = sorted(samples, key=lambda s: (-(len(s.context) + len(s.instruction) + len(s.response)), s.index))
    return [order[i: i + chunk_size] for i in range(0, len(order), chunk_size)]
