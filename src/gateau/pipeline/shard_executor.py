"""The shard executor (`gateau score --shard I/N`): one of N independent workers (a Slurm array task, a process
per GPU) that share a run directory on a shared filesystem, without Ray and without talking to each other.

Every worker plans the same chunks (`plan_chunks` over *all* samples is deterministic: length-sorted, ties by
input position) and takes chunks I, I+N, I+2N, ... (round robin over the longest-first order, so the shares cost
about the same); inside its share it skips samples already stored, so a killed or preempted worker re-run with the
same command resumes its own share. No two workers ever write one file:

- each chunk is a new uniquely named ``shards/part-*.parquet`` (written to a temporary name, then renamed);
- ``config.json`` is created by whichever worker comes first, with exclusive create (every worker would write the
  same bytes); the others check it as a resumed run does;
- ``scores.parquet`` and ``history.jsonl`` are left alone: each worker records its summary in its own
  ``workers/shard-I-of-N.jsonl`` (read back with the run's history) and holds ``workers/shard-I-of-N.lock``, so
  the same share cannot run twice at once;
- the run's lock ``.lock`` is held *shared* by the workers: a plain `gateau score` (the finish step) and readers
  that would consolidate need it exclusively, so they wait for, or are refused while, workers run.

Afterwards a plain `gateau score` with the same options checks completeness, scores whatever is missing (a share
whose worker never ran or died for good) and consolidates ``scores.parquet``.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

from .executors import Executor
from .local_executor import LocalExecutor
from .run_plan import plan_chunks

if TYPE_CHECKING:
    from ..config import ExecutionConfig
    from ..data import SampleRef
    from ..store import RunStore


class ShardExecutor(LocalExecutor):
    """The local loop over share I of N of the chunk plan."""

    name = "shard"
    finishes = False

    def share(self, samples: list[SampleRef], done: set[str], execution: ExecutionConfig
              ) -> list[list[SampleRef]]:
        """Chunks I, I+N, ... of the plan over every sample, without the samples already ``done``."""
        index, count = execution.shard_part
        mine = plan_chunks(samples, execution.chunk_size)[index::count]
        return [left for chunk in mine if (left := [s for s in chunk if s.id not in done])]

    @contextmanager
    def hold(self, store: RunStore, execution: ExecutionConfig) -> Iterator[None]:
        """The run's lock shared with the sibling workers, and this share's own lock exclusively."""
        with store.lock(shared=True), store.worker_lock(self.worker(execution)):
            yield

    def worker(self, execution: ExecutionConfig) -> str:
        index, count = execution.shard_part
        return f"shard-{index}-of-{count}"


EXECUTOR: Executor = ShardExecutor()
