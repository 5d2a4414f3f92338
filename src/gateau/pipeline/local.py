"""The local executor: one process runs the `Scorer` over the chunks in order and stores each as it finishes."""

from __future__ import annotations

from ..config import ScoreConfig
from ..data import Sample
from ..store import RunStore
from .progress import Progress, StopFlag
from .scorer import Models, Scorer, base_row, load_models, output_schema


def run_local(config: ScoreConfig, chunks: list[list[Sample]], store: RunStore, fp: str,
              models: Models | None = None) -> int:
    """Score and store every chunk (longest first); returns the model tokens run. ``models``: already loaded
    models to reuse (else loaded here, only if some sample can be measured)."""
    scorer = None
    if any(s.ok for chunk in chunks for s in chunk):
        scorer = Scorer(config, *(models or load_models(config)))
    schema = output_schema(config)
    with StopFlag() as stop, Progress(sum(map(len, chunks)), config.execution.progress) as progress:
        for chunk in chunks:
            before = scorer.forward_tokens if scorer else 0
            rows = scorer.score_batch(chunk, progress.partial) if scorer else [base_row(s, fp) for s in chunk]
            store.write_shard(rows, schema)
            progress.chunk_done(len(chunk), (scorer.forward_tokens if scorer else 0) - before, stop)
    return progress.tokens
