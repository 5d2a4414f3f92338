"""RULER's sample generators, followed function by function from the wheel's scripts (niah.py,
variable_tracking.py, common_words_extraction.py, freq_words_extraction.py, qa.py).

Each generator builds one sample of a haystack ``size`` (the unit is the task's own: words, lines, list words or
documents) from a ``Context`` of seeded random sources. The essay haystack is split into sentences by
``sentences.sentence_splitter`` (punkt's English parameters, as RULER's nltk ``sent_tokenize``).
"""

from __future__ import annotations

import hashlib
import random
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..results import EvalError
from .sentences import sentence_splitter
from .sources import essay_words, hotpotqa, squad, vocabulary

REPEAT_NOISE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
NIAH_NEEDLE = "One of the special magic {type_needle_v} for {key} is: {value}."
DOCUMENT_PROMPT = "Document {i}:\n{document}"
DEPTHS = [round(100 * i / 39) for i in range(40)]  # np.round(np.linspace(0, 100, 40)), RULER's needle depths


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


def niah(args: dict[str, Any], size: int, ctx: Context, template: str, prefix: str) -> Sample:
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
        sents = sentence_splitter()[0](" ".join(essay_words()[:size]).strip())
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


def vt_text(num_noises: int, args: dict[str, Any], ctx: Context, template: str, prefix: str,
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


def vt_icl(args: dict[str, Any], ctx: Context, template: str, prefix: str, tokens: Callable[[str], int]) -> str:
    """variable_tracking.py main(): a one-shot example that fits 500 tokens (noise in steps of 5), its variable
    names then re-drawn (randomize_icl)."""
    best = None
    for n in range(5, 500, 5):
        user, pre, answer = vt_text(n, args, ctx, template, prefix, is_icl=True)
        if tokens(user + pre + " " + " ".join(answer)) + 30 > 500:
            break
        best = (user, pre, answer)
    if best is None:
        best = vt_text(5, args, ctx, template, prefix, is_icl=True)
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


def cwe(args: dict[str, Any], size: int, ctx: Context, template: str, prefix: str) -> Sample:
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


def fwe(args: dict[str, Any], size: int, ctx: Context, template: str, prefix: str) -> Sample:
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


def qa(args: dict[str, Any], size: int, ctx: Context, template: str, prefix: str) -> Sample:
    """qa.py generate_input_output: ``size`` = documents (the gold ones, then same-article, then random)."""
    qas, docs = squad() if args["dataset"] == "squad" else hotpotqa()
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



def np_rng(seed_text: str):
    """numpy's legacy ``RandomState`` seeded from ``seed_text`` (RULER draws some values with numpy)."""
    import numpy as np

    return np.random.RandomState(int(hashlib.sha256(seed_text.encode()).hexdigest()[:8], 16))
