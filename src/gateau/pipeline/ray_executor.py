"""The Ray executor: one actor per worker loads the models once; chunks go out longest first, one per idle actor,
and the driver stores each returned chunk atomically in the same run store as the local executor. The driver sends
an actor the chunk's `SampleRef`s (ids, content hashes, where each record is), not its texts: each actor reads its
samples itself from the input (`SampleReader`), so the input path must be readable by the workers (the same machine,
or a filesystem every node mounts at that path; a hub dataset: each node loads it from the hub or its cache).

So a run can start under one executor and finish under the other, a killed worker is restarted by Ray and its
chunk retried, and a killed driver loses only the chunks in flight (re-running resumes). Workers return rows to
the driver, which alone writes: ``--out`` must be a path the *driver* can write (workers never touch it).

Without ``ray_address`` a Ray instance is started on this machine (all its CPUs and GPUs); with it, the driver
joins that cluster, whose workers must have gateau and the models' files (or hub access) installed.
"""

from __future__ import annotations

import os
from typing import Any

from ..config import ScoreConfig
from ..data import SampleReader, SampleRef
from ..errors import GateauError
from ..store import RunStore
from .executors import Executor
from .progress import Progress, StopFlag
from .run_plan import RunPlan
from .scorer import Models

ACTOR_RESTARTS = 3  # a worker process that dies is restarted (and its chunk retried) up to this many times


class ExecutorError(GateauError, RuntimeError):
    """The executor could not finish (a worker kept dying, Ray is missing or unreachable)."""


def _ray():
    try:
        import ray
    except ImportError as exc:
        raise ExecutorError("--executor ray needs Ray: pip install 'gateau[ray]'") from exc
    return ray


class _Worker:
    """A Ray actor's state: the run's `Scorer`, built once from the serialised config and the plan's measurement
    settings and fingerprint (not computed again on the worker), and its own `SampleReader` of the input."""

    def __init__(self, config: dict[str, Any], measure: dict[str, Any], fp: str, reader: SampleReader):
        from .scorer import Scorer, load_models

        cfg = ScoreConfig.from_dict(config)
        self.scorer = Scorer(cfg, *load_models(cfg), measure=measure, fp=fp)
        self.reader = reader

    def score(self, refs: list[SampleRef]) -> tuple[list[dict[str, Any]], int]:
        """(rows, model tokens this chunk ran), the chunk's samples read here from the input."""
        before = self.scorer.forward_tokens
        rows = self.scorer.score_batch(self.reader.read(refs))
        return rows, self.scorer.forward_tokens - before

    def pid(self) -> int:
        return os.getpid()


def start_ray(config: ScoreConfig) -> Any:
    """Join ``ray_address``, or start a local instance with at least one CPU per worker; returns the module."""
    ray = _ray()
    ex = config.execution
    if not ray.is_initialized():
        if ex.ray_address:
            ray.init(address=ex.ray_address, log_to_driver=False)
        else:
            ray.init(num_cpus=max(os.cpu_count() or 1, ex.workers), include_dashboard=False, log_to_driver=False)
    return ray


def start_workers(plan: RunPlan) -> list[Any]:
    """One actor per worker, each loading the models once."""
    ray = start_ray(plan.config)
    ex = plan.config.execution
    actor = ray.remote(_Worker).options(num_cpus=1, num_gpus=ex.gpus_per_worker, max_restarts=ACTOR_RESTARTS,
                                        max_task_retries=ACTOR_RESTARTS)
    payload = plan.config.to_dict()
    reader = plan.reader.absolute()  # an actor's working directory is not the driver's
    return [actor.remote(payload, plan.measure, plan.fingerprint, reader) for _ in range(ex.workers)]


class RayExecutor(Executor):
    """Chunks handed out longest first, one per idle Ray actor; the driver stores what comes back."""

    name = "ray"

    def run(self, plan: RunPlan, store: RunStore, models: Models | None = None) -> int:
        """Score and store every chunk on Ray workers; returns the model tokens run (``models`` is not used: each
        actor loads its own)."""
        return _run_ray(plan, store)


def _run_ray(plan: RunPlan, store: RunStore) -> int:
    config, chunks, schema = plan.config, plan.chunks, plan.schema
    ray = start_ray(config)
    queue = list(reversed(chunks))  # pop() hands out the longest first
    workers = start_workers(plan) if chunks else []
    in_flight: dict[Any, tuple[Any, list[SampleRef]]] = {}

    def hand_out(worker: Any) -> None:
        if queue:
            chunk = queue.pop()
            in_flight[worker.score.remote(chunk)] = (worker, chunk)

    with StopFlag() as stop, Progress(plan.n_samples, config.execution.progress) as progress:
        for worker in workers:
            hand_out(worker)
        while in_flight:
            (ref,), _ = ray.wait(list(in_flight), num_returns=1)
            worker, chunk = in_flight.pop(ref)
            try:
                rows, tokens = ray.get(ref)
            except ray.exceptions.RayError as exc:
                raise ExecutorError(f"a Ray worker failed on a chunk of {len(chunk)} samples after "
                                    f"{ACTOR_RESTARTS} restarts ({type(exc).__name__}: {exc}); the chunks stored so "
                                    "far are kept: run the same command to resume") from exc
            store.write_shard(rows, schema)
            progress.chunk_done(len(chunk), tokens, stop)
            hand_out(worker)
    return progress.tokens


EXECUTOR = RayExecutor()
