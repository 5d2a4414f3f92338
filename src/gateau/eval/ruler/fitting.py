"""RULER prompts fitted to a length: each task's haystack size is the largest (in RULER's increments) whose
prompt, chat template and answer prefix included, plus the task's answer budget, fits the requested length.

RULER grows the size linearly; this searches it by bisection (same result), and applies the same rule to fwe. The
size is fitted on sample 0 of a (task, length) and reused for every sample, shrunk while a sample does not fit.
"""

from __future__ import annotations

import random
from typing import Any

from ..generate import Prompt, render
from ..results import EvalError
from .generators import Context, Sample, cwe, fwe, niah, np_rng, qa, vt_icl, vt_text
from .scoring import score_sample
from .sources import essay_words, hotpotqa, squad, task_configs, vocabulary, wheel_tables


def increment(family: str, args: dict[str, Any], length: int) -> tuple[int, int | None]:
    """RULER's step of the haystack size for a task and its upper bound (None: unbounded)."""
    if family == "niah":
        if args["type_haystack"] == "essay":
            return 500, len(essay_words())
        return (25 if length >= 4096 else 5), None
    if family == "variable_tracking":
        return 10, None
    if family == "common_words_extraction":
        v = vocabulary()[0]
        return 10, len(set(v["nouns"] + v["adjs"] + v["verbs"]))
    if family == "freq_words_extraction":
        return max(1, length // 32), None
    if family == "qa":
        return 10, len(squad()[1] if args["dataset"] == "squad" else hotpotqa()[1])
    raise EvalError(f"unknown RULER task family {family!r}")


class RulerBuilder:
    """Builds RULER prompts for one tokenizer (sizes fitted per task and length, then reused for every sample)."""

    def __init__(self, tokenizer: Any, seed: int = 42) -> None:
        self.tok = tokenizer
        self.seed = seed
        self.templates, self.metrics = wheel_tables()
        self._sizes: dict[tuple[str, int], int] = {}
        self._icl: dict[str, str] = {}

    def _ntokens(self, text: str) -> int:
        return len(self.tok(text, add_special_tokens=False)["input_ids"])

    def budget(self, task: str) -> int:
        """The task's answer budget in tokens (RULER's tokens_to_generate)."""
        return int(self.templates[task_configs()[task]["task"]]["tokens_to_generate"])

    def sample(self, task: str, length: int, index: int, size: int | None = None) -> tuple[Sample, list[int]]:
        """Sample ``index`` of ``task`` at ``length`` and its prompt ids (size: fitted unless given)."""
        conf = task_configs()[task]
        family, args = conf["task"], conf["args"]
        tpl = self.templates[family]
        template, prefix = tpl["template"], tpl["answer_prefix"]
        seed_text = f"{self.seed}:{task}:{length}:{index}"
        ctx = Context(random.Random(seed_text), np_rng(seed_text), self.seed, length, index)
        if size is None:
            size = self.fitted_size(task, length)
        if family == "niah":
            s = niah(args, size, ctx, template, prefix)
        elif family == "variable_tracking":
            if seed_text not in self._icl:  # the one-shot example does not depend on the size
                icl_ctx = Context(random.Random(seed_text + ":icl"), np_rng(seed_text + ":icl"), self.seed, length,
                                  index)
                self._icl[seed_text] = vt_icl(args, icl_ctx, template, prefix, self._ntokens)
            icl = self._icl[seed_text]
            user, pre, answer = vt_text(size, args, ctx, template, prefix, is_icl=False)
            s = Sample(icl + "\n\n" + user, pre, answer)
        elif family == "common_words_extraction":
            s = cwe(args, size, ctx, template, prefix)
        elif family == "freq_words_extraction":
            s = fwe(args, size, ctx, template, prefix)
        elif family == "qa":
            s = qa(args, size, ctx, template, prefix)
        else:
            raise EvalError(f"unknown RULER task family {family!r}")
        s = Sample(s.user, s.prefix.lstrip(), s.outputs)
        return s, render(self.tok, Prompt.user(s.user, assistant_prefix=s.prefix))

    def fits(self, task: str, length: int, index: int, size: int) -> bool:
        return len(self.sample(task, length, index, size)[1]) + self.budget(task) <= length

    def fitted_size(self, task: str, length: int) -> int | None:
        """The largest haystack size, in RULER's steps, whose sample 0 fits ``length`` (in steps of 1 below one
        step, where RULER itself cannot go; None when not even the smallest sample fits)."""
        key = (task, length)
        if key not in self._sizes:
            conf = task_configs()[task]
            step, upper = increment(conf["task"], conf["args"], length)
            cap = (upper // step) if upper is not None else None
            unit = self._largest(task, length, step, cap)
            self._sizes[key] = unit * step if unit else self._largest(task, length, 1, step - 1) or None
        return self._sizes[key]

    def _largest(self, task: str, length: int, step: int, cap: int | None) -> int:
        """Largest k ≤ cap with sample 0 at size k·step fitting ``length`` (0 if k = 1 does not fit)."""
        if (cap is not None and cap < 1) or not self.fits(task, length, 0, step):
            return 0
        lo, hi = 1, 2
        while (cap is None or hi <= cap) and self.fits(task, length, 0, hi * step):
            lo, hi = hi, hi * 2
        if cap is not None:
            hi = min(hi, cap + 1)
        while hi - lo > 1:  # lo fits; hi does not, or is past the cap
            mid = (lo + hi) // 2
            if self.fits(task, length, 0, mid * step):
                lo = mid
            else:
                hi = mid
        return lo

    def item(self, task: str, length: int, index: int) -> tuple[Sample, list[int]] | None:
        """Sample ``index`` at the fitted size, shrunk while it does not fit (as RULER does); None when the task
        cannot fit ``length`` at all."""
        conf = task_configs()[task]
        step, _ = increment(conf["task"], conf["args"], length)
        size = self.fitted_size(task, length)
        if size is None:
            return None
        while True:
            s, ids = self.sample(task, length, index, size)
            if len(ids) + self.budget(task) <= length or size <= 1:
                return s, ids
            size = size - step if size > step else size - 1

    def score(self, task: str, prediction: str, outputs: list[str]) -> float:
        """RULER's per-sample string-match score, 0–100 (niah/vt/cwe/fwe: all references; qa: any)."""
        return score_sample(self.metrics, task, prediction, outputs)

