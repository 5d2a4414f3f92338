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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .flags import flag, names, numbers, token_counts
from .generate import Prompt, render
from .registry import register
from .results import EvalError, ItemLog, format_table, mean, pivot
from .runner import run
from .task import EvalSettings, Evaluation, Item, RunStats, Summary
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


@dataclass(frozen=True, kw_only=True)
class NeedleConfig(EvalSettings):
    """Settings of ``gateau eval needle``.

    ``lengths``: prompt lengths in tokens (None: ``default_lengths``). ``depths``: needle depths in percent of
    the haystack. ``key_phrases``: offline scoring phrases (None: ``default_key_phrases``). ``max_new_tokens``:
    answer limit. ``system``: system turn ("" for none).
    """

    lengths: tuple[int, ...] | None = flag("prompt lengths in tokens, e.g. 512,1k,2k,4k,8k (default: powers of two "
                                           "from 1k up to the model's window)", None, parse=token_counts)
    depths: tuple[float, ...] = flag("needle depths in percent", DEFAULT_DEPTHS, parse=numbers)
    needle: str = flag("the needle sentence (default: the paper's San Francisco sentence)", NEEDLE,
                       show_default=False)
    question: str = flag("the retrieval question (default: the paper's)", QUESTION, show_default=False)
    system: str = flag("system turn ('' for none; default: LongAlign's needle-test system prompt)", SYSTEM,
                       show_default=False)
    key_phrases: tuple[str, ...] | None = flag("comma-separated phrases for offline recall scoring (default: the "
                                               "needle's words the question does not give away)", None, parse=names)
    max_new_tokens: int = flag("answer limit", 64, parse=int)

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


@dataclass(frozen=True)
class NeedleSummary(Summary):
    """The needle test's result: ``mean_score`` over every cell (0-1 recall, or the judge's 1-10), per length
    ``by_length``; ``key_phrases`` with recall scoring (None with a judge)."""

    model: str
    scorer: str
    key_phrases: list[str] | None
    mean_score: float | None
    lengths: list[int]
    depths: list[float]
    by_length: dict[str, float | None]
    run: RunStats
    malformed_judgments: int
    judge_usage: dict[str, Any] | None

    @property
    def score(self) -> float | None:
        return self.mean_score

    def to_json(self) -> dict[str, Any]:
        out = {"model": self.model, "scorer": self.scorer, "key_phrases": self.key_phrases,
               "mean_score": self.mean_score, "lengths": self.lengths, "depths": self.depths,
               "by_length": self.by_length, **vars(self.run), "malformed_judgments": self.malformed_judgments}
        if self.judge_usage is not None:
            out["judge_usage"] = self.judge_usage
        return out


@register
class NeedleEvaluation(Evaluation):
    """The needle test on the task interface: one item per (length, depth)."""

    command = "needle"
    name = "needle"
    help = "needle in a haystack: heatmap of score over length x depth"
    description = ("The paper's needle test (Appendix C.4): Paul Graham essays as haystack, the San Francisco "
                   "needle at a sentence boundary at each depth, greedy answers with the chat template, scored by "
                   "key-phrase recall (0-1) or an LLM judge (1-10). Writes OUT/needle.csv, needle.json, needle.md "
                   "and the heatmap needle.png.")
    settings_type = NeedleConfig
    judge = "optional"
    columns = ("length", "depth", "score", "answer", "depth_actual", "prompt_tokens", "new_tokens")

    def __init__(self, settings: NeedleConfig, generator: Any) -> None:
        super().__init__(settings, generator)
        c = settings
        self.lengths = c.lengths or default_lengths(generator.context_window, c.max_new_tokens)
        window = generator.context_window
        if window and max(self.lengths) + c.max_new_tokens > window:
            print(f"gateau eval needle: warning: lengths up to {max(self.lengths)} + {c.max_new_tokens} new "
                  f"tokens exceed the model's window of {window} tokens")
        self.phrases = c.key_phrases or default_key_phrases(c.needle, c.question)
        self.scorer, self.value_range, self.malformed = "keyphrase-recall", (0.0, 1.0), 0

    def log_settings(self) -> dict[str, Any]:
        c = self.settings
        return {**c.model.fingerprint(), "needle": c.needle, "question": c.question, "system": c.system,
                "template": USER_TEMPLATE, "max_new_tokens": c.max_new_tokens}

    def stages(self, log: ItemLog) -> Iterator[tuple[str, list[Item]]]:
        builder = NeedleBuilder(self.tokenizer, self.settings)
        items = []
        for length in self.lengths:
            for depth in self.settings.depths:
                if _key(length, depth) in log:
                    continue
                case = builder.case(length, depth)
                items.append(Item(_key(length, depth), case.ids, self.settings.max_new_tokens,
                                  {"length": length, "depth": depth, "depth_actual": round(case.depth_actual, 2)}))
        yield "needle", items

    def score(self, log: ItemLog, judge: Any) -> list[dict[str, Any]]:
        c = self.settings
        stored = [log.get(_key(n, d)) for n in self.lengths for d in c.depths]
        if judge is not None:
            from .judge import JudgeRequest
            from .judge_prompts import NEEDLE_CRITERIA, NEEDLE_SYSTEM, NEEDLE_USER

            requests = [JudgeRequest.user(NEEDLE_USER.format(criteria=NEEDLE_CRITERIA, reference=c.needle,
                                                             input=c.question, prediction=s["answer"].strip()),
                                          system=NEEDLE_SYSTEM, low=1, high=10) for s in stored]
            verdicts = judge.judge(requests, desc="judging needle")
            scores = [v.rating for v in verdicts]
            self.scorer, self.value_range = judge.name, (1.0, 10.0)
            self.malformed = sum(v.malformed for v in verdicts)
        else:
            scores = [keyphrase_recall(s["answer"], self.phrases) for s in stored]
        return [{"length": s["length"], "depth": s["depth"], "score": sc, "answer": s["answer"],
                 "depth_actual": s["depth_actual"], "prompt_tokens": s["prompt_tokens"],
                 "new_tokens": s["new_tokens"]} for s, sc in zip(stored, scores)]

    def summarize(self, rows: list[dict[str, Any]], stats: RunStats, judge: Any) -> NeedleSummary:
        return NeedleSummary(
            model=self.settings.model.model, scorer=self.scorer,
            key_phrases=list(self.phrases) if judge is None else None, mean_score=mean(r["score"] for r in rows),
            lengths=list(self.lengths), depths=list(self.settings.depths),
            by_length={str(n): mean(r["score"] for r in rows if r["length"] == n) for n in self.lengths},
            run=stats, malformed_judgments=self.malformed,
            judge_usage=vars(judge.usage).copy() if judge is not None else None)

    def table(self, rows: list[dict[str, Any]]) -> str:
        labelled = [{**r, "depth": f"{r['depth']:g}"} for r in rows]
        return format_table(*pivot(labelled, "depth", "length", "score", row_label="depth % \\ length"))

    def figures(self, rows: list[dict[str, Any]], summary: NeedleSummary, out: Path) -> dict[str, Path]:
        from gateau.models import DEFAULT_MODEL

        from .plot import needle_heatmap

        model = self.settings.model.model
        name = "SmolLM2-135M-Instruct (default)" if model == DEFAULT_MODEL else model
        title = (f"needle: {name} ({summary.scorer}), mean {summary.mean_score:.2f}"
                 if summary.mean_score is not None else f"needle: {name}")
        vmin, vmax = self.value_range
        return {"png": needle_heatmap(rows, out / "needle.png", vmin=vmin, vmax=vmax, title=title)}

    @classmethod
    def report_line(cls, summary: dict[str, Any]) -> str:
        return f"mean score {summary['mean_score']:.3f} ({summary['scorer']}), {summary['wall_seconds']} s"


def run_needle(config: NeedleConfig, judge: Any = None, *, generator: Any = None) -> dict[str, Any]:
    """Run the needle test; returns the summary written to ``needle.json`` plus ``files`` and ``table``.
    ``judge``: a ``judge.Judge`` (None: key-phrase recall). ``generator``: an already loaded generator (default:
    load ``config.model``)."""
    return run(NeedleEvaluation, config, judge, generator=generator)
