"""Evaluation of one model in `gateau bench e2e`, every part through `gateau.eval` (resumable item logs in ``out``):

- held-out long QA: LongBench's qa_f1 and exact match after LongBench's answer normalisation;
- the needle test (``needle_lengths`` × ``needle_depths``) and RULER (``ruler_tasks`` at ``ruler_lengths``);
- the short-instruction checks of `short_checks`: held-out ShareGPT reply NLL and MT-Bench ROUGE-L.

RULER and MT-Bench are the costly parts; `gateau bench e2e` runs them only for the arms marked ``heavy_eval``.
With a `PrefixStore` every generation takes the layers the model shares with the base from it (`shared_prefix`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...eval.generate import ModelSettings, Prompt, load_generator, render
from ...eval.longbench import lm_eval_longbench, score_item
from ...eval.needle import NeedleConfig, run_needle
from ...eval.results import ItemLog
from ...eval.ruler import RulerConfig, run_ruler
from ...eval.runner import generate_items
from ...eval.task import Item
from ...hub import NO_HUB_OPTIONS, HubOptions
from .pool import eval_prompt
from .shared_prefix import PrefixStore, SharedPrefixGenerator
from .short_checks import chat_nll

# RULER tasks that fit 1–2k tokens and answer in a few words; the QA tasks are left out because they draw on the
# same SQuAD/HotpotQA files as the pool and the held-out QA.
RULER_TASKS = ("niah_single_2", "niah_multikey_1", "vt")


@dataclass(frozen=True)
class EvalPlan:
    """What each trained model is evaluated on (lengths in tokens; ``max_new_tokens`` for QA and the needle)."""

    max_new_tokens: int = 32
    needle_lengths: tuple[int, ...] = (512, 1024)
    needle_depths: tuple[float, ...] = (25.0, 75.0)
    ruler_lengths: tuple[int, ...] = (512, 1024)
    ruler_tasks: tuple[str, ...] = RULER_TASKS
    mtbench_new_tokens: int = 96
    max_batch: int = 16
    max_padding: float = 0.25
    """Batching of the shared-prefix generator (`shared_prefix`): decoding is greedy and runs every layer, so wider
    batches of a little more padding cost less per prompt (40 held-out prompts, a trained arm: 33.3 s at 8 rows and
    10% padding, 20.4 s at 16 and 25%, 25.2 s at 32 and 40%)."""


def exact_match(prediction: str, answers: list[str]) -> float:
    """1 when the normalised prediction (LongBench's `normalize_answer`) equals a normalised answer."""
    normalize = lm_eval_longbench()[0].normalize_answer
    pred = normalize(prediction)
    return float(any(pred == normalize(a) for a in answers))


def first_line(text: str) -> str:
    return text.strip().split("\n")[0].strip()


def _qa(gen: Any, settings: ModelSettings, out: Path, eval_items: list[dict[str, Any]],
        max_new_tokens: int) -> dict[str, dict[str, Any]]:
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
    return per_item


def _mtbench_rouge(gen: Any, settings: ModelSettings, out: Path, items: list[dict[str, Any]],
                   max_new_tokens: int) -> float:
    """Mean ROUGE-L F1 (0–100) of greedy answers to MT-Bench first turns against GPT-4's reference answers."""
    rouge = lm_eval_longbench()[0].rouge_score
    log = ItemLog(out / "mtbench.items.jsonl", {**settings.fingerprint(), "max_new_tokens": max_new_tokens})
    generate_items(gen, log, [Item(it["id"], render(gen.tokenizer, Prompt.user(it["question"])), max_new_tokens,
                                   {"id": it["id"]}) for it in items], desc="mt-bench")
    scores = [float(rouge(log.get(it["id"])["answer"], it["reference"])) for it in items]
    return 100 * sum(scores) / len(scores) if scores else float("nan")


def qa_scores(per_item: dict[str, dict[str, Any]]) -> dict[str, float]:
    """QA F1 and EM (0–100) over every item and by source (NaN for a source without items)."""

    def avg(key: str, source: str | None = None) -> float:
        vals = [v[key] for v in per_item.values() if source is None or v["source"] == source]
        return 100 * sum(vals) / len(vals) if vals else float("nan")

    return {"qa_f1": avg("f1"), "qa_em": avg("em"), "hotpotqa_f1": avg("f1", "hotpotqa"),
            "squad_f1": avg("f1", "squad")}


def _settings(model: str, device: str, progress: bool, hub: HubOptions) -> ModelSettings:
    return ModelSettings(model=model, device=device, progress=progress, revision=hub.revision,
                         trust_remote_code=hub.trust_remote_code)


def _generator(settings: ModelSettings, store: PrefixStore | None, plan: EvalPlan) -> Any:
    """The loaded generator; with ``store``, taking the layers it shares with the base from it (``plan``'s
    batching)."""
    gen = load_generator(settings)
    if store is None:
        return gen
    return SharedPrefixGenerator.wrap(gen, store, max_batch=plan.max_batch, max_padding=plan.max_padding)


def evaluate_qa(model: str, out: Path, eval_items: list[dict[str, Any]], *, max_new_tokens: int = 32,
                device: str = "cpu", progress: bool = False, store: PrefixStore | None = None,
                hub: HubOptions = NO_HUB_OPTIONS, plan: EvalPlan | None = None) -> dict[str, Any]:
    """QA only (a user's own held-out set, `--extra-eval`): per item and the scores of `qa_scores`, answers
    stored under ``out`` (a re-run generates only what is missing); ``store`` and ``hub`` as for
    `evaluate_model`."""
    start = time.perf_counter()
    settings = _settings(model, device, progress, hub)
    gen = _generator(settings, store, plan or EvalPlan())
    per_item = _qa(gen, settings, out, eval_items, max_new_tokens)
    return {**qa_scores(per_item), "per_item": per_item, "eval_seconds": round(time.perf_counter() - start, 1)}


def evaluate_model(model: str, out: Path, eval_items: list[dict[str, Any]], chats: list[dict[str, Any]],
                   mtbench: list[dict[str, Any]], plan: EvalPlan, *, device: str = "cpu",
                   progress: bool = False, heavy: bool = True, store: PrefixStore | None = None,
                   hub: HubOptions = NO_HUB_OPTIONS) -> dict[str, Any]:
    """Every metric of one model (QA per item and by source, needle, chat NLL; with ``heavy`` also RULER and
    MT-Bench ROUGE-L, else NaN), answers stored under ``out``; a re-run generates only what is missing.
    ``seconds`` holds the wall time of each part (model loading under ``load``), for the time estimate;
    ``shared_layers`` the layers taken from ``store`` (0: none). ``hub``: the model's revision and
    trust_remote_code (`gateau.hub.HubOptions`)."""
    start = time.perf_counter()
    seconds: dict[str, float] = {}

    def timed(name: str, fn):
        t = time.perf_counter()
        value = fn()
        seconds[name] = round(time.perf_counter() - t, 2)
        return value

    settings = _settings(model, device, progress, hub)
    gen = timed("load", lambda: _generator(settings, store, plan))
    per_item = timed("qa", lambda: _qa(gen, settings, out, eval_items, plan.max_new_tokens))
    needle = timed("needle", lambda: run_needle(
        NeedleConfig(out=str(out / "needle"), model=settings, lengths=tuple(plan.needle_lengths),
                     depths=tuple(plan.needle_depths), max_new_tokens=plan.max_new_tokens), generator=gen))
    shares = isinstance(gen, SharedPrefixGenerator) and gen.uses_store
    chat = timed("chat", lambda: chat_nll(gen.loaded, chats, frozen=(store.frozen, store.layers) if shares else None))
    ruler, rouge = {"mean_score": float("nan"), "scores": {}}, float("nan")
    if heavy:
        ruler = timed("ruler", lambda: run_ruler(
            RulerConfig(out=str(out / "ruler"), model=settings, lengths=tuple(plan.ruler_lengths),
                        tasks=tuple(plan.ruler_tasks), samples=1), generator=gen))
        rouge = timed("mtbench", lambda: _mtbench_rouge(gen, settings, out, mtbench, plan.mtbench_new_tokens))
    return {**qa_scores(per_item), "needle": 100 * needle["mean_score"], "ruler": ruler["mean_score"],
            "ruler_scores": ruler["scores"], "chat_nll": chat, "mtbench_rouge": rouge, "per_item": per_item,
            "eval_seconds": round(time.perf_counter() - start, 1), "seconds": seconds,
            "shared_layers": store.layers if shares else 0}
