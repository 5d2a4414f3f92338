"""`gateau score`: load the data, open the run store, plan what is left as length-sorted chunks, and hand them to
an executor (local loop or Ray actors); every chunk is stored atomically, so any run resumes where it stopped."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import __version__
from ..config import ScoreConfig
from ..data import Sample, load_samples
from ..store import RunStore, fingerprint
from .scorer import Models, measurement_fields


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

    def lines(self) -> list[str]:
        rate = self.forward_tokens / self.measure_s if self.measure_s > 0 else 0.0
        out = [f"samples: {self.total} (measured now {self.measured_now}, already done {self.skipped_done})",
               "status: " + ", ".join(f"{k}={v}" for k, v in sorted(self.statuses.items()))]
        if self.notes:
            out.append(f"notes: {self.notes} samples have a note (see the `note` column)")
        if self.forward_tokens:
            out.append(f"model tokens: {self.forward_tokens} in {self.measure_s:.1f} s of measuring "
                       f"({rate:.0f} tok/s)")
        out.append(f"wall time: {self.wall_s:.1f} s (loading included)")
        return out


def plan_chunks(samples: list[Sample], chunk_size: int) -> list[list[Sample]]:
    """Chunks of ``chunk_size`` samples of similar length, longest first (so parallel workers finish together
    and batches pad little). Length = characters of context + instruction + response: cheap, no tokenizer."""
    order = sorted(samples, key=lambda s: (-(len(s.context) + len(s.instruction) + len(s.response)), s.index))
    return [order[i: i + chunk_size] for i in range(0, len(order), chunk_size)]


def run_score(config: ScoreConfig, models: Models | None = None) -> ScoreSummary:
    """Score ``config.data`` into ``config.out``; resumes an interrupted run with the same settings and data.
    ``models``: already loaded (long, short) models for the local executor."""
    start = time.perf_counter()
    samples = load_samples(config.data.path, config.data.fields, config.data.limit)
    store = RunStore(config.out)
    with store.lock():
        return _run_locked(config, samples, store, start, models)


def _run_locked(config: ScoreConfig, samples: list[Sample], store: RunStore, start: float,
                models: Models | None) -> ScoreSummary:
    measure = measurement_fields(config)
    fp = fingerprint(measure)
    data_path = Path(config.data.path)
    data = {**asdict(config.data), "path": str(data_path.resolve()) if data_path.exists() else config.data.path}
    store.open({"gateau_version": __version__, "data": data, "fingerprint": fp, "measure": measure,
                "config": config.to_dict(), "n_records": len(samples)}, overwrite=config.overwrite,
               repair=config.repair)
    done = store.done_ids(fp, {s.id: s.content_hash for s in samples})
    todo = [s for s in samples if s.id not in done]
    measure_start = time.perf_counter()
    if config.measure.cam_top < 1:
        from .cascade import run_cascade

        tokens = run_cascade(config, samples, todo, store, fp,
                             lambda cfg, chunks: _execute(cfg, chunks, store, fp, models))
    else:
        tokens = _execute(config, plan_chunks(todo, config.execution.chunk_size), store, fp, models)
    measure_s = time.perf_counter() - measure_start
    # without --limit the table is exactly the input's records (a removed record leaves it); with --limit the
    # stored rows beyond the limit are kept, and the summary counts what the limit covers
    table = store.consolidate(None if config.data.limit else [s.id for s in samples])
    mine = {s.id for s in samples}
    statuses = Counter(st for sid, st in zip(table.column("id").to_pylist(), table.column("status").to_pylist())
                       if sid in mine)
    notes = sum(1 for sid, n in zip(table.column("id").to_pylist(), table.column("note").to_pylist())
                if n and sid in mine)
    summary = ScoreSummary(total=len(samples), measured_now=len(todo), skipped_done=len(samples) - len(todo),
                           statuses=dict(statuses), notes=notes, forward_tokens=tokens, measure_s=measure_s,
                           wall_s=time.perf_counter() - start)
    store.append_history({"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "executor": config.execution.executor,
                          "workers": config.execution.workers, "versions": library_versions(), **asdict(summary)})
    return summary


def _execute(config: ScoreConfig, chunks: list[list[Sample]], store: RunStore, fp: str,
             models: Models | None) -> int:
    """Score and store ``chunks`` with the configured executor; the model tokens run."""
    if config.execution.executor == "ray":
        from .ray_executor import run_ray

        return run_ray(config, chunks, store, fp)
    from .local import run_local

    return run_local(config, chunks, store, fp, models)


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
