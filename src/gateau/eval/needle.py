"""Needle in a haystack (the paper's Appendix C.4, gkamradt's test with LongAlign's prompt).

A prompt of ``length`` tokens (chat template included) holds Paul Graham essays with the needle sentence put in
at ``depth`` percent of the haystack's tokens, moved back to the nearest sentence boundary (gkamradt moves back to
the previous period). The model answers greedily; each cell is scored offline by key-phrase recall (the share of
the needle's key words found in the answer, inflections allowed, 0–1) or by an LLM judge (LongAlign's 1–10 prompt with the needle as
ground truth). Outputs in DIR: ``needle.items.jsonl`` (resumable answers), ``needle.csv`` / ``needle.json`` /
``needle.md`` (depth × length table) and the heatmap ``needle.png``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
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
from .results import EvalError, ItemLog, format_table, mean, pivot, write_outputs
from .text import TokenMap, paul_graham_essays, sentence_ends

NEEDLE = "The best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a sunny day."
QUESTION = "What is the best thing to do in San Francisco? Here is the most relevant sentence in the context:"
# LongAlign Needle_test/prompt.py: the system turn and the user turn around the context.
SYSTEM = "You are a helpful AI bot that answers questions for a user. Keep your response short and direct"
USER_TEMPLATE = "{context}\n\nRead the document and answer: {question}"
DEFAULT_DEPTHS: tuple[float, ...] = tuple(float(d) for d in range(0, 101, 10))
_STOPWORDS = frozenset(["a", "an", "the", "and", "or", "of", "to", "in", "on", "at", "is", "are", "was", "for", "with", "by", "as", "it", "its", "this", "that", "be", "do"])


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def default_key_phrases(needle: str, question: str) -> tuple[str, ...]:
    """The needle's words that the question does not give away, minus stop words (for the default needle:
    eat, sandwich, sit, dolores, park, sunny, day)."""
    asked = set(_words(question))
    return tuple(dict.fromkeys(w for w in _words(needle) if w not in asked and w not in _STOPWORDS))


_INFLECTIONS = ("", "s", "es", "d", "ed", "ing", "ting", "ning", "ping")


def _same_word(word: str, key: str) -> bool:
    """``word`` is ``key`` or ``key`` plus a common English inflection (sandwiches, eating, sitting)."""
    return word.startswith(key) and word[len(key):] in _INFLECTIONS


def keyphrase_recall(answer: str, phrases: Sequence[str]) -> float:
    """Share of ``phrases`` found in ``answer``, 0–1: case-insensitive, word by word, each word whole or with a
    common inflection ("eating a sandwich" has eat and sandwich; "sandwichmaker" has no sandwich)."""
    if not phrases:
        raise EvalError("no key phrases to score the needle with; give --key-phrases")
    words = _words(answer)

    def found(phrase: str) -> bool:
        keys = _words(phrase)
        return bool(keys) and any(all(_same_word(words[i + j], k) for j, k in enumerate(keys))
                                  for i in range(len(words) - len(keys) + 1))

    return sum(found(p) for p in phrases) / len(phrases)


def default_lengths(window: int | None, max_new_tokens: int) -> tuple[int, ...]:
    """Powers of two from 1k up to the model's window, the last one shrunk to leave room for the answer."""
    cap = (window or 8192) - max_new_tokens
    grid = [n for n in (2 ** k for k in range(10, 21)) if n <= cap]
    return tuple(sorted(set(grid + [cap]))) if cap >= 1024 else (cap,)


@dataclass(frozen=True)
class NeedleConfig:
    """Settings of ``gateau eval needle``.

    ``lengths``: prompt lengths in tokens (None: ``default_lengths``). ``depths``: needle depths in percent of
    the haystack. ``key_phrases``: offline scoring phrases (None: ``default_key_phrases``). ``max_new_tokens``:
    answer limit. ``system``: system turn ("" for none).
    """

    out: str
    model: ModelSettings = field(default_factory=ModelSettings)
    lengths: tuple[int, ...] | None = None
    depths: tuple[float, ...] = DEFAULT_DEPTHS
    needle: str = NEEDLE
    question: str = QUESTION
    system: str = SYSTEM
    key_phrases: tuple[str, ...] | None = None
    max_new_tokens: int = 64
    overwrite: bool = False

    def validate(self) -> None:
        if self.lengths is not None and (not self.lengths or min(self.lengths) < 16):
            raise EvalError("--lengths must be token counts of at least 16")
        if not self.depths or any(not 0 <= d <= 100 for d in self.depths):
            raise EvalError("--depths must be percentages between 0 and 100")
        if not self.needle.strip() or not self.question.strip():
            raise EvalError("--needle and --question must not be empty")
        if self.max_new_tokens < 1:
            raise EvalError("--max-new-tokens must be at least 1")


@dataclass
class NeedleCase:
    """One (length, depth) prompt: token ids, the context text, where the needle starts in it (characters), and
    the needle's actual depth: haystack tokens before it / all haystack tokens, in percent."""

    length: int
    depth: float
    ids: list[int]
    context: str
    needle_start: int
    depth_actual: float


class NeedleBuilder:
    """Builds needle prompts for one tokenizer. The haystack is tokenized once per size needed: a prefix of the
    essays long enough for the longest prompt so far (the essays repeat when a length needs more text than they
    hold, as gkamradt's tester does)."""

    def __init__(self, tokenizer: Any, config: NeedleConfig, haystack: str | None = None) -> None:
        self.tok = tokenizer
        self.config = config
        self._source = haystack if haystack is not None else paul_graham_essays()
        if not self._source.strip():
            raise EvalError("the haystack is empty")
        self._map = TokenMap.build(tokenizer, self._source[:4096])

    def _haystack(self, n_tokens: int) -> TokenMap:
        """A token map of at least ``n_tokens`` (+16, so the cut never touches the tokens used) haystack tokens."""
        while len(self._map.ids) < n_tokens + 16:
            chars = max(2 * len(self._map.text), 8 * (n_tokens + 16))
            text = self._source * (chars // len(self._source) + 1)
            self._map = TokenMap.build(self.tok, text[:chars])
        return self._map

    def prompt(self, context: str) -> Prompt:
        c = self.config
        return Prompt.user(USER_TEMPLATE.format(context=context, question=c.question), system=c.system or None)

    def case(self, length: int, depth: float) -> NeedleCase:
        """The prompt of ``length`` tokens (±1%, usually exact) with the needle at ``depth`` percent."""
        overhead = len(render(self.tok, self.prompt(self.config.needle)))
        n = length - overhead
        if n < 1:
            raise EvalError(f"length {length} is too short: the template, question and needle alone take "
                            f"{overhead} tokens")
        best: NeedleCase | None = None
        for _ in range(6):  # joining text at the cut and around the needle shifts a few tokens: correct for it
            built = self._build(length, depth, max(1, n))
            if best is None or abs(len(built.ids) - length) < abs(len(best.ids) - length):
                best = built
            diff = length - len(built.ids)
            if diff == 0:
                break
            n += diff
        assert best is not None
        return best

    def _build(self, length: int, depth: float, n: int) -> NeedleCase:
        hay = self._haystack(n)
        text = hay.text[: hay.char_end(n)]
        target = hay.char_start(round(n * depth / 100))
        if depth >= 100:
            cut = len(text)
        else:  # back to the sentence boundary at or before the target position
            ends = [e for e in sentence_ends(text[: target + 1]) if e <= target]
            cut = ends[-1] if ends else 0
        before, after = text[:cut].rstrip(), text[cut:].lstrip()
        context = " ".join(p for p in (before, self.config.needle, after) if p)
        start = len(before) + (1 if before else 0)
        ids = render(self.tok, self.prompt(context))
        depth_actual = 100.0 * hay.tokens_before(cut) / n
        return NeedleCase(length, depth, ids, context, start, depth_actual)


def _key(length: int, depth: float) -> str:
    return f"{length}|{depth:g}"


def run_needle(config: NeedleConfig, judge: Any = None, *, generator: Any = None) -> dict[str, Any]:
    """Run the needle test; returns the summary written to ``needle.json``. ``judge``: a ``judge.Judge`` (None:
    key-phrase recall). ``generator``: an already loaded generator (default: load ``config.model``)."""
    config.validate()
    start = time.perf_counter()
    gen = generator or load_generator(config.model)
    lengths = config.lengths or default_lengths(gen.context_window, config.max_new_tokens)
    window = gen.context_window
    if window and max(lengths) + config.max_new_tokens > window:
        print(f"gateau eval needle: warning: lengths up to {max(lengths)} + {config.max_new_tokens} new tokens "
              f"exceed the model's window of {window} tokens")
    phrases = config.key_phrases or default_key_phrases(config.needle, config.question)
    settings = {**config.model.fingerprint(), "needle": config.needle, "question": config.question,
                "system": config.system, "template": USER_TEMPLATE, "max_new_tokens": config.max_new_tokens}
    out = Path(config.out)
    log = ItemLog(out / "needle.items.jsonl", settings, overwrite=config.overwrite)
    builder = NeedleBuilder(gen.tokenizer, config)
    items = []
    for length in lengths:
        for depth in config.depths:
            if _key(length, depth) in log:
                continue
            case = builder.case(length, depth)
            items.append(Item(_key(length, depth), case.ids, config.max_new_tokens,
                              {"length": length, "depth": depth, "depth_actual": round(case.depth_actual, 2)}))
    generated = generate_items(gen, log, items, desc="needle")
    stored = [log.get(_key(n, d)) for n in lengths for d in config.depths]
    if judge is not None:
        from .judge import JudgeRequest
        from .judge_prompts import NEEDLE_CRITERIA, NEEDLE_SYSTEM, NEEDLE_USER

        requests = [JudgeRequest.user(NEEDLE_USER.format(criteria=NEEDLE_CRITERIA, reference=config.needle,
                                                         input=config.question, prediction=s["answer"].strip()),
                                      system=NEEDLE_SYSTEM, low=1, high=10) for s in stored]
        verdicts = judge.judge(requests, desc="judging needle")
        scores = [v.rating for v in verdicts]
        scorer, vmin, vmax = judge.name, 1.0, 10.0
        malformed = sum(v.malformed for v in verdicts)
    else:
        scores = [keyphrase_recall(s["answer"], phrases) for s in stored]
        scorer, vmin, vmax, malformed = "keyphrase-recall", 0.0, 1.0, 0
    rows = [{"length": s["length"], "depth": s["depth"], "score": sc, "answer": s["answer"],
             "depth_actual": s["depth_actual"], "prompt_tokens": s["prompt_tokens"], "new_tokens": s["new_tokens"]}
            for s, sc in zip(stored, scores)]
    labelled = [{**r, "depth": f"{r['depth']:g}"} for r in rows]
    header, body = pivot(labelled, "depth", "length", "score", row_label="depth % \\ length")
    table = format_table(header, body)
    wall = time.perf_counter() - start
    summary = {"model": config.model.model, "scorer": scorer, "key_phrases": list(phrases) if judge is None else None,
               "mean_score": mean(scores), "lengths": list(lengths), "depths": list(config.depths),
               "by_length": {str(n): mean(r["score"] for r in rows if r["length"] == n) for n in lengths},
               "generated_now": generated, "wall_seconds": round(wall, 1),
               "generation_tokens_per_second": round(gen.stats.tokens_per_second, 1),
               "malformed_judgments": malformed}
    if judge is not None:
        summary["judge_usage"] = vars(judge.usage).copy()
    paths = write_outputs(out, "needle", rows, columns=["length", "depth", "score", "answer", "depth_actual",
                                                        "prompt_tokens", "new_tokens"], summary=summary, table=table)
    from .plot import needle_heatmap

    from gateau.models import DEFAULT_MODEL

    name = "SmolLM2-135M-Instruct (default)" if config.model.model == DEFAULT_MODEL else config.model.model
    title = (f"needle: {name} ({scorer}), mean {summary['mean_score']:.2f}"
             if summary["mean_score"] is not None else f"needle: {name}")
    paths["png"] = needle_heatmap(rows, out / "needle.png", vmin=vmin, vmax=vmax, title=title)
    summary["files"] = {k: str(v) for k, v in paths.items()}
    summary["table"] = table
    return summary


