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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .flags import flag
from .generate import Prompt
from .judge import JudgeRequest
from .judge_prompts import LONGBENCH_CHAT
from .longbench import truncate_middle
from .registry import register
from .results import EvalError, ItemLog, format_table, mean
from .runner import run
from .task import EvalSettings, Evaluation, Item, RunStats, Summary

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


@dataclass(frozen=True, kw_only=True)
class LongBenchChatConfig(EvalSettings):
    """Settings of ``gateau eval longbench-chat``: the two data files, prompt limit ``max_length`` (tokens; None:
    the model's window minus ``max_new_tokens``), answer limit ``max_new_tokens``."""

    cases: str = flag("LongBench-Chat test_cases.json (idx, prompt, query, answer)")
    few_shots: str = flag("LongBench-Chat few_shots.json (three answer+score per case)")
    max_length: int | None = flag("prompt tokens (default: the model's window minus the answer)", None, parse=int)
    max_new_tokens: int = flag("answer limit", 1024, parse=int)

    def validate(self) -> None:
        load_cases(self.cases, self.few_shots)

    def inputs(self) -> tuple[str | None, ...]:
        return (self.model.model, self.cases, self.few_shots)


@dataclass(frozen=True)
class LongBenchChatSummary(Summary):
    """LongBench-Chat's result: the judge's mean rating (1-10) over the cases."""

    model: str
    judge: dict[str, Any]
    cases: int
    mean_score: float | None
    malformed_judgments: int
    judge_usage: dict[str, Any]
    run: RunStats

    @property
    def score(self) -> float | None:
        return self.mean_score

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, **self.judge, "cases": self.cases, "mean_score": self.mean_score,
                "malformed_judgments": self.malformed_judgments, "judge_usage": self.judge_usage,
                "generated_now": self.run.generated_now, "wall_seconds": self.run.wall_seconds}


@register
class LongBenchChat(Evaluation):
    """LongBench-Chat on the task interface: one item per case, rated by the judge."""

    command = "longbench-chat"
    name = "longbench_chat"
    help = "LongBench-Chat: long queries answered, rated 1-10 by a judge"
    description = ("LongBench-Chat (the paper's Appendix C.1) on its own files: the prompts are cut from the "
                   "middle to --max-length, answered with the chat template, and rated 1-10 by the judge with the "
                   "reference answer and three rated examples per query. Writes OUT/longbench_chat.*.")
    settings_type = LongBenchChatConfig
    judge = "required"
    judge_needed = "LongBench-Chat is rated by a judge: give --judge-model (and --judge-url for an endpoint)"
    columns = ("idx", "score", "malformed", "answer")

    def __init__(self, settings: LongBenchChatConfig, generator: Any) -> None:
        super().__init__(settings, generator)
        self.cases = load_cases(settings.cases, settings.few_shots)
        self.limit = settings.max_length or (generator.context_window or 4096) - settings.max_new_tokens

    def log_settings(self) -> dict[str, Any]:
        return {**self.settings.model.fingerprint(), "max_length": self.limit,
                "max_new_tokens": self.settings.max_new_tokens}

    def stages(self, log: ItemLog) -> Iterator[tuple[str, list[Item]]]:
        yield "longbench-chat", [
            Item(str(c["idx"]), self.render(Prompt.user(truncate_middle(self.tokenizer, c["prompt"], self.limit))),
                 self.settings.max_new_tokens, {"idx": c["idx"]}) for c in self.cases if str(c["idx"]) not in log]

    def score(self, log: ItemLog, judge: Any) -> list[dict[str, Any]]:
        answers = [log.get(str(c["idx"]))["answer"].strip() for c in self.cases]
        verdicts = judge.judge([judge_request(c, a) for c, a in zip(self.cases, answers)],
                               desc="judging longbench-chat")
        return [{"idx": c["idx"], "score": v.rating, "ratings": v.ratings, "malformed": v.malformed, "answer": a}
                for c, a, v in zip(self.cases, answers, verdicts)]

    def summarize(self, rows: list[dict[str, Any]], stats: RunStats, judge: Any) -> LongBenchChatSummary:
        return LongBenchChatSummary(model=self.settings.model.model, judge=judge.describe(), cases=len(self.cases),
                                    mean_score=mean(r["score"] for r in rows),
                                    malformed_judgments=sum(r["malformed"] for r in rows),
                                    judge_usage=vars(judge.usage).copy(), run=stats)

    def table(self, rows: list[dict[str, Any]]) -> str:
        return format_table(["cases", "mean score (1-10)", "malformed"],
                            [[len(self.cases), mean(r["score"] for r in rows), sum(r["malformed"] for r in rows)]])


def run_longbench_chat(config: LongBenchChatConfig, judge: Any, *, generator: Any = None) -> dict[str, Any]:
    """Answer every case (resumable), judge each answer and write ``longbench_chat.csv/.json/.md``."""
    return run(LongBenchChat, config, judge, generator=generator)
