"""Evaluation of one model in `gateau bench e2e`: held-out QA (LongBench's qa_f1 and exact match after
LongBench's answer normalisation) and the needle test, both through `gateau.eval` (resumable item logs)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ...eval.generate import Item, ModelSettings, Prompt, generate_items, load_generator, render
from ...eval.longbench import _lm_eval_longbench, score_item
from ...eval.needle import NeedleConfig, run_needle
from ...eval.results import ItemLog
from .pool import eval_prompt


def exact_match(prediction: str, answers: list[str]) -> float:
    """1 when the normalised prediction (LongBench's `normalize_answer`) equals a normalised answer."""
    normalize = _lm_eval_longbench()[0].normalize_answer
    pred = normalize(prediction)
    return float(any(pred == normalize(a) for a in answers))


def first_line(text: str) -> str:
    return text.strip().split("\n")[0].strip()


def evaluate_model(model: str, out: Path, eval_items: list[dict[str, Any]], *, device: str = "cpu",
                   max_new_tokens: int = 32, needle_lengths: tuple[int, ...] = (1024, 2048),
                   needle_depths: tuple[float, ...] = (25.0, 75.0), progress: bool = False) -> dict[str, Any]:
    """QA F1/EM per item and overall/by source, and the needle mean; answers stored in ``out`` (resumable)."""
    start = time.perf_counter()
    settings = ModelSettings(model=model, device=device, progress=progress)
    gen = load_generator(settings)
    log = ItemLog(out / "qa.items.jsonl", {**settings.fingerprint(), "max_new_tokens": max_new_tokens,
                                          "prompt": "context\\n\\nQuestion: q"})
    items = [Item(it["id"], render(gen.tokenizer, Prompt.user(eval_prompt(it))), max_new_tokens,
                  {"id": it["id"], "source": it["source"], "answers": it["answers"]}) for it in eval_items]
    generate_items(gen, log, items, desc="qa")
    per_item = {}
    for it in eval_items:
        answer = first_line(log.get(it["id"])["answer"])
        per_item[it["id"]] = {"source": it["source"], "f1": score_item("hotpotqa", answer, it["answers"], None),
                              "em": exact_match(answer, it["answers"]), "answer": answer}
    needle = run_needle(NeedleConfig(out=str(out / "needle"), model=settings, lengths=tuple(needle_lengths),
                                     depths=tuple(needle_depths), max_new_tokens=max_new_tokens), generator=gen)

    def avg(key: str, source: str | None = None) -> float:
        vals = [v[key] for v in per_item.values() if source is None or v["source"] == source]
        return 100 * sum(vals) / len(vals) if vals else float("nan")

    return {"qa_f1": avg("f1"), "qa_em": avg("em"), "hotpotqa_f1": avg("f1", "hotpotqa"),
            "squad_f1": avg("f1", "squad"), "needle": 100 * needle["mean_score"], "per_item": per_item,
            "eval_seconds": round(time.perf_counter() - start, 1)}
