"""``gateau eval lm-eval``: lm-evaluation-harness on the same model, its results stored beside ours.

The model is loaded by ``gateau.models.load_model`` (so ``default``, folders, hub ids and .gguf files all work)
and handed to lm-eval's ``HFLM`` wrapper; ``simple_evaluate`` runs the tasks (most download their data from the
hub: users with hub access; ``include_path`` adds local task YAMLs). Outputs in DIR: ``lm_eval/results.json``
(lm-eval's own results) and ``lm_eval.csv/.json/.md`` (task × metric table).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .flags import flag, names
from .registry import register
from .results import EvalError, format_table, write_outputs
from .task import EvalSettings, Evaluation


@dataclass(frozen=True, kw_only=True)
class LMEvalConfig(EvalSettings):
    """Settings of ``gateau eval lm-eval``: lm-eval task names, ``limit`` (samples per task or a fraction),
    ``batch_size`` (int or "auto"), ``num_fewshot``, ``include_path`` (a folder of extra task YAMLs)."""

    tasks: tuple[str, ...] = flag("lm-eval task names, e.g. longbench_hotpotqa", (), parse=names, required=True)
    limit: float | None = flag("lm-eval --limit (samples per task, or a fraction)", None, parse=float)
    batch_size: str = flag("lm-eval batch size", "1")
    num_fewshot: int | None = flag("lm-eval few-shot count", None, parse=int)
    include_path: str | None = flag("folder of extra lm-eval task YAMLs (e.g. tasks on local files)", None)

    def inputs(self) -> tuple[str | None, ...]:
        return (self.model.model, self.include_path)


def result_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """lm-eval's ``results`` section flattened to rows of ``task``, ``metric``, ``filter``, ``value``, ``stderr``."""
    rows = []
    for task, metrics in results.items():
        for key, value in metrics.items():
            if "," not in key or "_stderr," in key or not isinstance(value, (int, float)):  # metric,filter keys
                continue
            metric, _, filt = key.partition(",")
            stderr = metrics.get(f"{metric}_stderr,{filt}")
            rows.append({"task": task, "metric": metric, "filter": filt, "value": value,
                         "stderr": stderr if isinstance(stderr, (int, float)) else None})
    return rows


def run_lm_eval(config: LMEvalConfig) -> dict[str, Any]:
    """Run lm-eval on ``config.model`` and store its results; returns the summary."""
    if not config.tasks:
        raise EvalError("--tasks needs at least one lm-eval task name")
    if config.model.backend != "hf":
        raise EvalError("gateau eval lm-eval runs lm-eval's HF backend; drop --backend vllm")
    try:
        import lm_eval
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager
    except ImportError as exc:
        raise EvalError(f"gateau eval lm-eval needs lm-evaluation-harness: pip install 'lm-eval==0.4.13' ({exc})") \
            from exc
    from gateau.models import load_model

    start = time.perf_counter()
    manager = TaskManager(include_path=config.include_path) if config.include_path else TaskManager()
    unknown = [t for t in config.tasks if t not in manager.all_tasks]
    if unknown:
        raise EvalError(f"unknown lm-eval task(s): {', '.join(unknown)} (list them with `lm-eval ls tasks`)")
    loaded = load_model(config.model.model, device=config.model.device, dtype=config.model.dtype,
                        attn_impl=config.model.attn_impl, hub=config.model.hub, progress=config.model.progress)
    batch: int | str = int(config.batch_size) if config.batch_size.isdigit() else config.batch_size
    lm = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=batch, device=str(loaded.device))
    limit = config.limit if config.limit is None or config.limit < 1 else int(config.limit)
    output = lm_eval.simple_evaluate(model=lm, tasks=list(config.tasks), num_fewshot=config.num_fewshot,
                                     limit=limit, task_manager=manager, log_samples=False)
    if output is None:
        raise EvalError("lm-eval returned no results")
    out = Path(config.out)
    raw = out / "lm_eval" / "results.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(output, indent=2, default=str, ensure_ascii=False) + "\n", encoding="utf-8")
    rows = result_rows(output.get("results", {}))
    table = format_table(["task", "metric", "filter", "value", "stderr"],
                         [[r["task"], r["metric"], r["filter"], r["value"], r["stderr"]] for r in rows])
    summary = {"model": config.model.model, "tasks": list(config.tasks), "limit": config.limit,
               "results": output.get("results", {}), "wall_seconds": round(time.perf_counter() - start, 1)}
    paths = write_outputs(out, "lm_eval", rows, columns=["task", "metric", "filter", "value", "stderr"],
                          summary=summary, table=table)
    paths["lm_eval_raw"] = raw
    summary["files"] = {k: str(v) for k, v in paths.items()}
    summary["table"] = table
    return summary


@register
class LMEval(Evaluation):
    """The lm-eval bridge in the registry: lm-eval does its own generation and scoring, so it overrides
    ``execute`` (no item log of ours)."""

    command = "lm-eval"
    name = "lm_eval"
    help = "run lm-evaluation-harness on the model; results stored beside ours"
    description = ("Run lm-evaluation-harness (the optional eval extra) with its HF backend on MODEL for --tasks "
                   "and store its results JSON in OUT/lm_eval/ plus OUT/lm_eval.csv/.md.")
    settings_type = LMEvalConfig

    @classmethod
    def execute(cls, settings: LMEvalConfig, judge: Any = None, *, generator: Any = None) -> dict[str, Any]:
        return run_lm_eval(settings)
