"""Records -> messages, cleaning, streamed JSON arrays, and the short-data loader (ShareGPT-shaped files)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from train_fixtures import sharegpt_records, write_json, write_jsonl

from gateau.config import FieldMap
from gateau.train.data import (
    SKIP_BAD_FIELD,
    SKIP_NO_RESPONSE,
    SKIP_UNKNOWN_ROLE,
    SampleSkip,
    TrainDataError,
    load_long,
    load_short,
    record_to_messages,
)
from gateau.train.jsonarray import StreamState, iter_json_array


def test_every_shape_becomes_messages():
    u, a = "user", "assistant"
    assert record_to_messages({"context": "C", "instruction": "I", "response": "R"})[0] == [
        {"role": u, "content": "C\n\nI"}, {"role": a, "content": "R"}]
    assert record_to_messages({"instruction": "I", "input": "C", "output": "R"})[0] == [
        {"role": u, "content": "C\n\nI"}, {"role": a, "content": "R"}]
    assert record_to_messages({"instruction": "I", "input": "", "output": "R"})[0] == [
        {"role": u, "content": "I"}, {"role": a, "content": "R"}]
    conv = {"conversations": [{"from": "system", "value": "S"}, {"from": "human", "value": "q1"},
                              {"from": "gpt", "value": "a1"}, {"from": "human", "value": "q2"},
                              {"from": "gpt", "value": "a2"}]}
    assert [m["role"] for m in record_to_messages(conv)[0]] == ["system", u, a, u, a]
    fields = FieldMap(context="doc", instruction="q", response="ans")
    assert record_to_messages({"doc": "D", "q": "Q", "ans": "A"}, fields)[0][0]["content"] == "D\n\nQ"


def test_cleaning_rules():
    # a leading assistant turn is dropped; the conversation is cut before its first empty assistant turn
    msgs, cut = record_to_messages({"messages": [
        {"role": "assistant", "content": "hello"}, {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"}, {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "  "}, {"role": "user", "content": "q3"},
        {"role": "assistant", "content": "a3"}]})
    assert cut and msgs == [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}]
    # trailing unanswered user turns go
    msgs, cut = record_to_messages({"messages": [{"role": "user", "content": "q"},
                                                 {"role": "assistant", "content": "a"},
                                                 {"role": "user", "content": "more?"}]})
    assert not cut and msgs[-1] == {"role": "assistant", "content": "a"}
    for record, reason in [({"context": "C", "instruction": "I", "response": ""}, SKIP_NO_RESPONSE),
                           ({"messages": [{"role": "user", "content": "q"}]}, SKIP_NO_RESPONSE),
                           ({"conversations": [{"from": "human", "value": "q"}, {"from": "bing", "value": "a"}]},
                            SKIP_UNKNOWN_ROLE),
                           ({"messages": [{"role": "user", "content": ["parts"]},
                                          {"role": "assistant", "content": "a"}]}, SKIP_BAD_FIELD)]:
        with pytest.raises(SampleSkip) as info:
            record_to_messages(record)
        assert info.value.reason == reason
    with pytest.raises(TrainDataError, match="unrecognised record shape"):
        record_to_messages({"text": "no shape"})


def test_json_array_stream_matches_json_load_and_survives_a_cut(tmp_path):
    records = sharegpt_records(40)
    path = write_json(tmp_path / "a.json", records)
    state = StreamState()
    assert list(iter_json_array(path, state, chunk_chars=64)) == json.loads(path.read_text())
    assert state.complete and state.elements == 40
    text = path.read_text()
    cut = tmp_path / "cut.json"
    cut.write_text(text[: text.index('"c17"') + 20])  # ends inside record 17
    state = StreamState()
    got = list(iter_json_array(cut, state, chunk_chars=50))
    assert got == records[:17] and not state.complete


def test_short_loader_filters_empty_responses_and_applies_limited(tmp_path):
    records = sharegpt_records(40, empty_every=4)  # i % 4 == 0: first reply empty -> nothing left (skipped)
    path = write_json(tmp_path / "short.json", records)
    usable = [r["id"] for i, r in enumerate(records) if i % 4]
    real = load_short(str(path), "real-world")
    assert [c.id for c in real.conversations] == [f"short:{i}" for i in usable]
    assert real.skips.counts == {SKIP_NO_RESPONSE: 10} and real.read == 40
    assert all(m["content"].strip() for c in real.conversations for m in c.messages if m["role"] == "assistant")
    limited = load_short(str(path), "limited")
    assert [c.id for c in limited.conversations] == [f"short:{i}" for i in usable[:math.ceil(len(usable) / 10)]]
    assert any(len(c.messages) == 4 for c in real.conversations)  # multi-turn kept whole
    jsonl = load_short(str(write_jsonl(tmp_path / "short.jsonl", records)), "real-world")
    assert [c.id for c in jsonl.conversations] == [c.id for c in real.conversations]
    (tmp_path / "wrapped.json").write_text(json.dumps({"data": records}))  # a {"data": [...]} file, as iter_records
    wrapped = load_short(str(tmp_path / "wrapped.json"))
    assert [c.id for c in wrapped.conversations] == [c.id for c in real.conversations]


def test_bad_sources_give_clear_errors(tmp_path):
    with pytest.raises(TrainDataError, match="no such file"):
        load_short(str(tmp_path / "missing.json"))
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(TrainDataError, match="no records found"):
        load_long(tmp_path / "empty.jsonl")
    (tmp_path / "empty.json").write_text("  ")
    with pytest.raises(TrainDataError, match="empty"):
        load_long(tmp_path / "empty.json")
    write_jsonl(tmp_path / "noresp.jsonl", [{"context": "C", "instruction": "I", "response": ""}])
    with pytest.raises(TrainDataError, match="none of its 1 records"):
        load_long(tmp_path / "noresp.jsonl")


def test_short_count_keeps_the_first_n_trained_sequences(tmp_path, tiny_tokenizer):
    from train_fixtures import long_records

    from gateau.train.prepare import build_training_set
    from gateau.train.recipe import TrainConfig

    records = sharegpt_records(30, empty_every=4)
    records[5]["conversations"][0]["value"] = "word " * 400  # its prompt alone exceeds --max-length
    short = write_json(tmp_path / "short.json", records)
    data = write_jsonl(tmp_path / "long.jsonl", long_records(3, words=5))
    config = TrainConfig(data=str(data), out="o", short_data=str(short), short_count=6, max_length=200)
    built = build_training_set(config, tiny_tokenizer)
    expected = [f"short:c{i}" for i in (1, 2, 3, 6, 7, 9)]  # 0, 4, 8: empty reply; 5: prompt too long
    assert [i for i in built.ids if i.startswith("short:")] == expected
    stats = built.stats["short"]
    assert (stats.read, stats.kept) == (10, 6)  # reading stopped after the sixth usable one
    assert stats.skips.counts == {"no_response": 3, "no_response_token": 1}
    few = build_training_set(TrainConfig(data=str(data), out="o", short_data=str(short), short_count=99,
                                         max_length=200), tiny_tokenizer)
    assert few.stats["short"].kept == 21 and any("only 21 short" in n for n in few.notes)


def test_sharegpt_wheel_streams(tiny_tokenizer):
    import tempfile

    from gateau.train.prepare import build_training_set
    from gateau.train.recipe import TrainConfig

    with tempfile.TemporaryDirectory() as tmp:
        data = write_jsonl(Path(tmp) / "long.jsonl", [{"context": "C", "instruction": "I", "response": "R"}])
        built = build_training_set(TrainConfig(data=str(data), out="o", short_data="sharegpt", short_count=50,
                                               max_length=4096), tiny_tokenizer)
    assert built.stats["short"].kept == 50 and built.ids[-1].startswith("short:")
