"""The one runner of every generate-then-score evaluation: model, resume log, generation, outputs, table.

``run(Evaluation, settings, judge)`` validates the settings, loads the model (or takes a loaded generator), opens
``OUT/NAME.items.jsonl`` (``results.ItemLog``: a re-run with the same settings skips the answers stored there),
generates each stage's missing items, lets the evaluation score and summarise them, and writes ``NAME.json``
(summary + rows), ``NAME.csv``, ``NAME.md`` and the evaluation's figures.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .generate import GenRequest, HFGenerator, VLLMGenerator, load_generator
from .results import EvalError, ItemLog, write_outputs
from .task import Evaluation, Item, RunStats


def generate_items(generator: HFGenerator | VLLMGenerator, log: ItemLog, items: Sequence[Item], *,
                   temperature: float = 0.0, seed: int = 0, desc: str = "generating") -> int:
    """Generate every item whose key ``log`` lacks and store it at once as
    ``{**meta, "answer", "prompt_tokens", "new_tokens"}``. Returns how many were generated now."""
    todo = [it for it in items if it.key not in log]
    requests = [GenRequest(it.ids, it.max_new_tokens) for it in todo]
    for i, gen in generator.generate_iter(requests, temperature=temperature, seed=seed, desc=desc):
        it = todo[i]
        log.add(it.key, {**it.meta, "answer": gen.text, "prompt_tokens": gen.prompt_tokens,
                         "new_tokens": gen.new_tokens})
    return len(todo)


def run(evaluation: type[Evaluation], settings: Any, judge: Any = None, *,
        generator: Any = None) -> dict[str, Any]:
    """Run ``evaluation`` with ``settings``; returns the stored summary plus ``files`` (paths by kind) and
    ``table``. ``judge``: a ``judge.Judge`` or None. ``generator``: an already loaded generator (default: load
    ``settings.model``)."""
    if evaluation.judge == "required" and judge is None:
        raise EvalError(evaluation.judge_needed)
    settings.validate()
    start = time.perf_counter()
    gen = generator or load_generator(settings.model)
    task = evaluation(settings, gen)
    out = Path(settings.out)
    log = ItemLog(out / f"{evaluation.name}.items.jsonl", task.log_settings(), overwrite=settings.overwrite)
    generated = 0
    for desc, items in task.stages(log):
        generated += generate_items(gen, log, items, desc=desc)
    rows = task.score(log, judge)
    stats = RunStats(generated, round(time.perf_counter() - start, 1), round(gen.stats.tokens_per_second, 1))
    summary = task.summarize(rows, stats, judge)
    table = task.table(rows)
    stored = summary.to_json()
    paths = write_outputs(out, evaluation.name, rows, columns=evaluation.columns, summary=stored, table=table)
    paths.update(task.figures(rows, summary, out))
    return {**stored, "files": {k: str(v) for k, v in paths.items()}, "table": table}
