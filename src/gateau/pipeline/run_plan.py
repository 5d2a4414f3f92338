"""The plan of one `gateau score` invocation, built once and handed to an executor: the settings, the measurement
settings and their fingerprint, the output schema, the chunks of samples to score (as `SampleRef`s: ids, statuses,
content hashes and where each record is, never the texts) and the `SampleReader` that reads a chunk's texts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence, TypeVar

import pyarrow as pa

from ..config import ScoreConfig
from ..data import Sample, SampleReader, SampleRef

S = TypeVar("S", Sample, SampleRef)


@dataclass(frozen=True)
class RunPlan:
    """What an executor needs: ``measure`` (the settings that change the numbers) and ``fingerprint`` (their hash,
    computed once), ``schema`` of the stored rows, ``chunks`` (lists of sample refs, longest first) to score, and
    ``reader``, which reads a chunk's samples just before they are scored (a worker process may build its own)."""

    config: ScoreConfig
    measure: dict[str, Any]
    fingerprint: str
    schema: pa.Schema
    chunks: list[list[SampleRef]]
    reader: SampleReader

    @property
    def n_samples(self) -> int:
        return sum(map(len, self.chunks))


def plan_chunks(samples: Sequence[S], chunk_size: int) -> list[list[S]]:
    """Chunks of ``chunk_size`` samples of similar length, longest first (so parallel workers finish together
    and batches pad little). Length = ``sort_length`` (characters of context + instruction + response: cheap, no
    tokenizer; 0 for a streamed dataset, whose chunks so keep input order)."""
    order = sorted(samples, key=lambda s: (-s.sort_length, s.index))
    return [order[i: i + chunk_size] for i in range(0, len(order), chunk_size)]
