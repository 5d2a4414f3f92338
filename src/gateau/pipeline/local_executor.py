"""The local executor: one process runs the `Scorer` over the chunks in order and stores each as it finishes; a
chunk's texts are read just before it is scored and dropped after."""

from __future__ import annotations

from ..store import RunStore
from .executors import Executor
from .progress import Progress, StopFlag
from .run_plan import RunPlan
from .scorer import Models, Scorer, base_row, load_models


class LocalExecutor(Executor):
    """Every chunk in this process, longest first."""

    name = "local"

    def run(self, plan: RunPlan, store: RunStore, models: Models | None = None) -> int:
        """Score and store every chunk; returns the model tokens run. ``models``: already loaded models to reuse
        (else loaded here, only if some sample can be measured)."""
        chunks, config = plan.chunks, plan.config
        scorer = None
        if any(s.ok for chunk in chunks for s in chunk):
            scorer = Scorer(config, *(models or load_models(config)), measure=plan.measure, fp=plan.fingerprint)
        with StopFlag() as stop, Progress(plan.n_samples, config.execution.progress) as progress:
            for chunk in chunks:
                before = scorer.forward_tokens if scorer else 0
                rows = (scorer.score_batch(plan.reader.read(chunk), progress.partial) if scorer
                        else [base_row(s, plan.fingerprint) for s in chunk])
                store.write_shard(rows, plan.schema)
                progress.chunk_done(len(chunk), (scorer.forward_tokens if scorer else 0) - before, stop)
        return progress.tokens


EXECUTOR = LocalExecutor()
