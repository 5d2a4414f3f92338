"""`gateau score`: index the data (a `SampleRef` per sample, no texts kept), open the run store, plan what is left as length-sorted chunks (a `RunPlan`, built
once), and hand it to an executor looked up by name (`gateau.pipeline.executors`: local loop, Ray actors, one shard
of N); every chunk is stored atomically, so any run resumes where it stopped."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import __version__
from ..config import ScoreConfig
from ..data import SampleIndex, index_samples, source_of
from ..status import status_examples
from ..store import RunStore, fingerprint
from .executors import Executor, get_executor
from .run_plan import RunPlan
from .scorer import Models, measurement_fields, output_schema


@dataclass
class ScoreSummary:
    """What a run did: status counts over all samples, samples measured now, tokens and wall time."""

    total: int
    measured_now: int
    skipped_done: int
    statuses: dict[str, int]
    notes: int
    forward_tokens: int
    measure_s: float
    wall_s: float
    examples: list[str] = field(default_factory=list)  # `status_examples` lines: not-ok ids with their reasons
    data_note: str = ""  # what was chosen of the input for the user (`SampleIndex.note`: the only split)

    def lines(self) -> list[str]:
        rate = self.forward_tokens / self.measure_s if self.measure_s > 0 else 0.0
        out = [f"data: {self.data_note}"] if self.data_note else []
        out += [f"samples: {self.total} (measured now {self.measured_now}, already done {self.skipped_done})",
               "status: " + ", ".join(f"{k}={v}" for k, v in sorted(self.statuses.items())), *self.examples]
        if self.notes:
            out.append(f"notes: {self.notes} samples have a note (see the `note` column)")
        if self.forward_tokens:
            out.append(f"model tokens: {self.forward_tokens} in {self.measure_s:.1f} s of measuring "
                       f"({rate:.0f} tok/s)")
        out.append(f"wall time: {self.wall_s:.1f} s (loading included)")
        return out


def run_score(config: ScoreConfig, models: Models | None = None) -> ScoreSummary:
    """Score ``config.data`` into ``config.out``; resumes an interrupted run with the same settings and data.
    ``models``: already loaded (long, short) models for an in-process executor.

    The executor is looked up and the measurement settings resolved (unknown methods refused) before anything is
    created in ``config.out``."""
    start = time.perf_counter()
    executor = get_executor(config.execution.executor)
    index = index_samples(source_of(config.data), config.data.fields, config.data.limit)
    measure = measurement_fields(config)
    if config.measure.cam_top < 1:
        from .cascade import check_cascade

        check_cascade(config)
    store = RunStore(config.out)
    with executor.hold(store, config.execution):
        return _run_held(config, executor, measure, index, store, start, models)


def _run_held(config: ScoreConfig, executor: Executor, measure: dict[str, Any], index: SampleIndex,
              store: RunStore, start: float, models: Models | None) -> ScoreSummary:
    samples = index.refs
    fp = fingerprint(measure)
    data_path = Path(config.data.path)
    data = {**asdict(config.data), "path": str(data_path.resolve()) if data_path.exists() else config.data.path}
    # what every invocation of this run (a worker of any shard, or the finish step) records identically
    recorded = config.with_execution(executor="local", shard=None) if not executor.finishes else config
    store.open({"gateau_version": __version__, "data": data, "fingerprint": fp, "measure": measure,
                "config": recorded.to_dict(), "n_records": len(samples)}, overwrite=config.overwrite,
               repair=config.repair, create_only=not executor.finishes)
    done = store.done_ids(fp, {s.id: s.content_hash for s in samples})
    plan = RunPlan(config=config, measure=measure, fingerprint=fp, schema=output_schema(config),
                   chunks=executor.share(samples, done, config.execution), reader=index.reader())
    measure_start = time.perf_counter()
    try:
        if config.measure.cam_top < 1:
            from .cascade import run_cascade

            todo = [s for s in samples if s.id not in done]
            tokens = run_cascade(config, samples, todo, store, fp, lambda cfg, chunks, into: executor.run(
                replace(plan, config=cfg, schema=output_schema(cfg), chunks=chunks), into, models))
        else:
            tokens = executor.run(plan, store, models)
    finally:
        plan.reader.close()
    measure_s = time.perf_counter() - measure_start
    if executor.finishes:
        # without --limit the table is exactly the input's records (a removed record leaves it); with --limit the
        # stored rows beyond the limit are kept, and the summary counts what the limit covers
        table = store.consolidate(None if config.data.limit else [s.id for s in samples])
        share = samples
    else:  # a worker reads, never writes, the run's tables; it counts its own share
        table = store.stored_rows()
        share = [s for chunk in executor.share(samples, set(), config.execution) for s in chunk]
    mine = {s.id for s in share}
    columns = ("id", "status", "note", "error")
    ids, statuses_col, notes_col, errors_col = ((table.column(c).to_pylist() for c in columns)
                                                if table is not None else ([], [], [], []))
    statuses = Counter(st for sid, st in zip(ids, statuses_col) if sid in mine)
    notes = sum(1 for sid, n in zip(ids, notes_col) if n and sid in mine)
    rows = [(sid, st, e) for sid, st, e in zip(ids, statuses_col, errors_col) if sid in mine]
    examples = status_examples([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    measured = plan.n_samples
    summary = ScoreSummary(total=len(share), measured_now=measured, skipped_done=len(share) - measured,
                           statuses=dict(statuses), notes=notes, forward_tokens=tokens, measure_s=measure_s,
                           wall_s=time.perf_counter() - start, examples=examples, data_note=index.note)
    # the reasons are in scores.parquet, the split in config.json
    history = {k: v for k, v in asdict(summary).items() if k not in ("examples", "data_note")}
    entry = {"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "executor": config.execution.executor,
             "workers": config.execution.workers, "versions": library_versions(), **history}
    if config.execution.shard is not None:
        entry["shard"] = config.execution.shard
    store.append_history(entry, worker=executor.worker(config.execution))
    return summary


def library_versions() -> dict[str, str]:
    """Versions of gateau and the libraries that decide the numbers."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"gateau": __version__}
    for name in ("torch", "transformers", "tokenizers", "pyarrow"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out
