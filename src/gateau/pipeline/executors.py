"""The executor seam: every executor schedules the chunks of one `RunPlan` on the same `Scorer` and writes the same
store, and is looked up by name.

An executor named ``NAME`` is the module ``gateau.pipeline.NAME_executor`` holding ``EXECUTOR``, an instance of an
`Executor` subclass: adding one is one module (and its test), nothing to register. This module imports nothing
heavy, so `gateau.config` can check an executor name without importing torch or Ray.

What differs between executors is only *where* chunks run and *which* of them this invocation takes (`share`);
what a run's bookkeeping is follows from `finishes`: a finishing executor holds the run's lock alone, (re)writes
``config.json``, consolidates ``scores.parquet`` and appends to ``history.jsonl``; a non-finishing one (the shard
worker) holds the lock shared with its sibling workers, creates ``config.json`` only if it is absent, and writes
nothing but its own chunks and its own files under ``RUN/workers/``.
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Iterator

from ..errors import UsageError

if TYPE_CHECKING:
    from ..config import ExecutionConfig
    from ..data import SampleRef
    from ..store import RunStore
    from .run_plan import RunPlan
    from .scorer import Models

MODULE_SUFFIX = "_executor"


class Executor(ABC):
    """How the chunks of a plan are scheduled. Subclasses set `name` and implement `run`."""

    name: ClassVar[str]
    finishes: ClassVar[bool] = True  # holds the run alone; writes config.json, scores.parquet, history.jsonl

    def share(self, samples: list[SampleRef], done: set[str], execution: ExecutionConfig) -> list[list[SampleRef]]:
        """The chunks this invocation scores: every sample not ``done``, length-sorted, longest first."""
        from .run_plan import plan_chunks

        return plan_chunks([s for s in samples if s.id not in done], execution.chunk_size)

    @contextmanager
    def hold(self, store: RunStore, execution: ExecutionConfig) -> Iterator[None]:
        """Hold what this executor needs of the run directory while it runs (the run's lock, exclusively)."""
        with store.lock():
            yield

    def worker(self, execution: ExecutionConfig) -> str | None:
        """The name of this invocation's own files under ``RUN/workers/`` (None: it writes the run's files)."""
        return None

    @abstractmethod
    def run(self, plan: RunPlan, store: RunStore, models: Models | None = None) -> int:
        """Score and store every chunk of ``plan.chunks``; returns the model tokens run. ``models``: already
        loaded (long, short) models that an in-process executor may reuse."""


def executor_names() -> tuple[str, ...]:
    """Names of the executors found in this package (modules ``*_executor``), sorted."""
    here = [str(Path(__file__).parent)]
    return tuple(sorted(m.name[: -len(MODULE_SUFFIX)] for m in pkgutil.iter_modules(here)
                        if m.name.endswith(MODULE_SUFFIX)))


def get_executor(name: str) -> Executor:
    """The executor called ``name`` (UsageError naming the known ones)."""
    if name not in executor_names():
        raise UsageError(f"unknown --executor {name!r}; choose one of {executor_names()}")
    return importlib.import_module(f"{__package__}.{name}{MODULE_SUFFIX}").EXECUTOR
