"""LongBench-Chat (the paper's Appendix C.1): long-context queries answered by the model, rated 1–10 by a judge.

The data are LongBench-Chat's own files (LongAlign's ``LongBench_Chat/``, not shipped offline): ``test_cases.json``
(a list of ``{"idx", "prompt", "query", "answer"}``) and ``few_shots.json`` (for each case, in ``idx`` order, three
``{"answer", "score"}`` examples). As its ``eval.py``: the prompt is cut from the middle to ``max_length`` tokens,
the model answers (up to 1024 new tokens; greedy here, LongBench-Chat samples at temperature 1), and the judge
gets the paper's prompt with the reference answer and the three rated examples, under LongBench-Chat's system
prompt. Each answer is judged ``--judge-times`` times and averaged.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .generate import (
    Item,
    ModelSettings,
    Prompt,
    generate_items,
    load_generator,
    render,
)
from .judge import JudgeRequest
from .judge_prompts import LONGBENCH_CHAT
from .longbench import truncate_middle
from .results import EvalError, ItemLog, format_table, mean, write_outputs

SYSTEM = "You're a good assistant at evaluating the quality of texts."


def load_cases(cases: str | Path, few_shots: str | Path) -> list[dict[str, Any]]:
    """The test cases, each with its three few-shot ``{"answer", "score"}`` examples under ``few_shots``."""
    try:
        items = json.loads(Path(cases).read_text(encoding="utf-8"))
        shots = json.loads(Path(few_shots).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise EvalError(f"cannot read LongBench-Chat files: {exc}") from exc
    out = []
    for n, case in enumerate(items, start=1):
        missing = [k for k in ("idx", "prompt", "query", "answer") if k not in case]
        if missing:
            raise EvalError(f"{cases}: case {n} lacks {', '.join(missing)}")
        examples = shots[case["idx"] - 1] if 0 < case["idx"] <= len(shots) else None
        if not examples or len(examples) != 3 or not all({"answer", "score"} <= set(x) for x in examples):
            raise EvalError(f"{few_shots}: case idx {case['idx']} needs three {{answer, score}} examples")
        out.append({**case, "few_shots": examples})
    return out


def judge_request(case: dict[str, Any], prediction: str) -> JudgeRequest:
    """The paper's C.1 prompt for one answer, under LongBench-Chat's judge system prompt."""
    shots = case["few_shots"]
    prompt = LONGBENCH_CHAT.format(
        question=case["query"], reference=case["answer"], answer=prediction,
        example_answer_1=shots[0]["answer"], example_rating_1=shots[0]["score"],
        example_answer_2=shots[1]["answer"], example_rating_2=shots[1]["score"],
        example_answer_3=shots[2]["answer"], example_rating_3=shots[2]["score"])
    return JudgeRequest.user(prompt, system=SYSTEM, low=1, high=10)


@dataclass(frozen=True)
class LongBenchChatConfig:
    """Settings of ``gateau eval longbench-chat``: the two data files, prompt limit ``max_length`` (tokens; None:
    the model's window minus ``max_new_tokens``), answer limit ``max_new_tokens``."""

    cases: str
    few_shots: str
    out: str
    model: ModelSettings = field(default_factory=ModelSettings)
    max_length: int | None = None
    max_new_tokens: int = 1024
    overwrite: bool = False


def run_longbench_chat(config: LongBenchChatConfig, judge: Any, *, generator: Any = None) -> dict[str, Any]:
    """Answer every case (resumable), judge each answer and write ``longbench_chat.csv/.json/.md``."""
    if judge is None:
        raise EvalError("LongBench-Chat is rated by a judge: give --judge-model (and --judge-url for an endpoint)")
    cases = load_cases(config.cases, config.few_shots)
    start = time.perf_counter()
    gen = generator or load_generator(config.model)
    limit = config.max_length or (gen.context_window or 4096) - config.max_new_tokens
    out = Path(config.out)
    log = ItemLog(out / "longbench_chat.items.jsonl", {**config.model.fingerprint(), "max_length": limit,
                                                        "max_new_tokens": config.max_new_tokens},
                  overwrite=config.overwrite)
    items = [Item(str(c["idx"]), render(gen.tokenizer, Prompt.user(truncate_middle(gen.tokenizer, c["prompt"],
                                                                                     limit))),
                  config.max_new_tokens, {"idx": c["idx"]}) for c in cases if str(c["idx"]) not in log]
    generated = generate_items(gen, log, items, desc="longbench-chat")
    answers = [log.get(str(c["idx"]))["answer"].strip() for c in cases]
    verdicts = judge.judge([judge_request(c, a) for c, a in zip(cases, answers)], desc="judging longbench-chat")
    rows = [{"idx": c["idx"], "score": v.rating, "ratings": v.ratings, "malformed": v.malformed, "answer": a}
            for c, a, v in zip(cases, answers, verdicts)]
    summary = {"model": config.model.model, **judge.describe(), "cases": len(cases),
               "mean_score": mean(r["score"] for r in rows), "malformed_judgments": sum(r["malformed"] for r in rows),
               "judge_usage": vars(judge.usage).copy(), "generated_now": generated,
               "wall_seconds": round(time.perf_counter() - start, 1)}
    table = format_table(["cases", "mean score (1-10)", "malformed"],
                         [[len(cases), summary["mean_score"], summary["malformed_judgments"]]])
    paths = write_outputs(out, "longbench_chat", rows, columns=["idx", "score", "malformed", "answer"],
                          summary=summary, table=table)
    summary["files"] = {k: str(v) for k, v in paths.items()}
    summary["table"] = table
    return summary
