"""Loading SFT records: every shape from every container, ids, bad files and bad records."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gateau.data import DataError, FieldMap, Sample, judge_view, load_records_by_id, load_samples, record_to_sample
from gateau.status import Status
from gateau.train.data import record_to_messages

# (record, expected (context, instruction, response, shape)) per input shape; every record is usable.
LONGALIGN = {"messages": [
    {"role": "user", "content": "Paragraph one about the harbour.\n\nParagraph two: the code is 7481.\n\n"
                                "What is the code?"},
    {"role": "assistant", "content": "The code is 7481."}]}
LONGALIGN_EXPECTED = ("Paragraph one about the harbour.\n\nParagraph two: the code is 7481.", "What is the code?",
                      "The code is 7481.", "messages")

SHAREGPT = {"conversations": [
    {"from": "human", "value": "An essay on startups.\n\nSummarise it."},
    {"from": "gpt", "value": "Talk to users."}]}
SHAREGPT_EXPECTED = ("An essay on startups.", "Summarise it.", "Talk to users.", "conversations")

ALPACA = {"instruction": "Explain the essay.", "input": "The essay says costs matter.", "output": "Keep costs low."}
ALPACA_EXPECTED = ("The essay says costs matter.", "Explain the essay.", "Keep costs low.", "alpaca")

EXPLICIT = {"context": "A long archive.", "instruction": "Which boat?", "response": "The red one."}
EXPLICIT_EXPECTED = ("A long archive.", "Which boat?", "The red one.", "explicit")

SHAPES = {
    "longalign": ([LONGALIGN], LONGALIGN_EXPECTED),
    "sharegpt": ([SHAREGPT], SHAREGPT_EXPECTED),
    "alpaca": ([ALPACA], ALPACA_EXPECTED),
    "explicit": ([EXPLICIT], EXPLICIT_EXPECTED),
}


def _with_ids(records: list[dict], n: int = 3, ids: bool = False) -> list[dict]:
    """``n`` copies of the record (so positions matter), optionally with explicit ids."""
    out = []
    for i in range(n):
        rec = json.loads(json.dumps(records[0]))
        if ids:
            rec = {"id": f"rec-{10 - i}", **rec}
        out.append(rec)
    return out


def write(path: Path, records: list[dict], fmt: str) -> str:
    """Write ``records`` as ``fmt`` at ``path`` (stem) and return the source string to load."""
    if fmt == "jsonl":
        p = path.with_suffix(".jsonl")
        p.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    elif fmt == "json":
        p = path.with_suffix(".json")
        p.write_text(json.dumps(records, indent=1), encoding="utf-8")
    elif fmt == "json-data":
        p = path.with_suffix(".json")
        p.write_text(json.dumps({"data": records}), encoding="utf-8")
    elif fmt == "parquet":
        p = path.with_suffix(".parquet")
        pq.write_table(pa.Table.from_pylist(records), p)
    elif fmt == "hf":
        import datasets

        p = path.with_name(path.name + "_hf")
        datasets.Dataset.from_list(records).save_to_disk(str(p))
    elif fmt == "hf-dict":
        import datasets

        p = path.with_name(path.name + "_hfdict")
        datasets.DatasetDict({"train": datasets.Dataset.from_list(records)}).save_to_disk(str(p))
    else:
        raise ValueError(fmt)
    return str(p)


FORMATS = ["jsonl", "json", "json-data", "parquet", "hf", "hf-dict"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("ids", [False, True])
def test_every_shape_from_every_container(tmp_path, fmt, shape, ids):
    records, (context, instruction, response, shape_name) = SHAPES[shape]
    records = _with_ids(records, ids=ids)
    samples = load_samples(write(tmp_path / "data", records, fmt))
    assert [s.index for s in samples] == [0, 1, 2]
    assert [s.id for s in samples] == (["rec-10", "rec-9", "rec-8"] if ids else ["0", "1", "2"])
    for s in samples:
        assert (s.context, s.instruction, s.response, s.shape) == (context, instruction, response, shape_name)
        assert s.ok and s.status == "ok" and s.error == ""


def test_records_by_id_are_the_raw_records(tmp_path):
    records = [dict(EXPLICIT, id=5), dict(ALPACA), dict(LONGALIGN, id="x")]
    by_id = load_records_by_id(write(tmp_path / "d", records, "jsonl"))
    assert by_id == {"5": (0, records[0]), "1": (1, records[1]), "x": (2, records[2])}
    assert [s.id for s in load_samples(write(tmp_path / "d", records, "jsonl"))] == ["5", "1", "x"]


def test_longalign_multi_turn_and_system():
    """Earlier turns (system, first exchange) are prepended to the context of the last user turn."""
    rec = {"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "First question?"},
        {"role": "assistant", "content": "First answer."},
        {"role": "user", "content": "Doc part A.\n\nDoc part B.\n\nSecond question?"},
        {"role": "assistant", "content": "Second answer."}]}
    s = record_to_sample(rec, 0, "mem[0]")
    assert s.ok
    assert s.instruction == "Second question?"
    assert s.response == "Second answer."
    assert s.context == "Be brief.\n\nFirst question?\n\nFirst answer.\n\nDoc part A.\n\nDoc part B."


def test_instruction_is_the_last_paragraph_only(tmp_path):
    rec = {"messages": [{"role": "user", "content": "A.\n\nB.\n\nC.\n\nQ: which letter?"},
                        {"role": "assistant", "content": "C"}]}
    (s,) = load_samples(write(tmp_path / "d", [rec], "jsonl"))
    assert (s.context, s.instruction) == ("A.\n\nB.\n\nC.", "Q: which letter?")


def test_field_overrides(tmp_path):
    renamed = [{"uid": "u1", "doc": "Doc text.", "question": "Why?", "answer": "Because."},
               {"uid": "u2", "doc": "Other doc.", "question": "How?", "answer": "Like so."}]
    fm = FieldMap(id_field="uid", context="doc", instruction="question", response="answer")
    for fmt in ("jsonl", "parquet"):
        samples = load_samples(write(tmp_path / f"r{fmt}", renamed, fmt), fm)
        assert [(s.id, s.context, s.instruction, s.response, s.shape) for s in samples] == [
            ("u1", "Doc text.", "Why?", "Because.", "explicit"), ("u2", "Other doc.", "How?", "Like so.", "explicit")]

    # a custom splitter for chat shapes
    rec = {"messages": [{"role": "user", "content": "Part 1\n\nPart 2\n###\nThe question"},
                        {"role": "assistant", "content": "Answer"}]}
    (s,) = load_samples(write(tmp_path / "split", [rec], "jsonl"), FieldMap(splitter="\n###\n"))
    assert (s.context, s.instruction) == ("Part 1\n\nPart 2", "The question")

    # a forced shape wins over auto-detection (this record would otherwise be read as explicit)
    both = {"instruction": "Explain.", "input": "Ctx.", "output": "Out.", "response": "not this", "context": "nor this"}
    (s,) = load_samples(write(tmp_path / "forced", [both], "jsonl"), FieldMap(shape="alpaca"))
    assert (s.shape, s.context, s.instruction, s.response) == ("alpaca", "Ctx.", "Explain.", "Out.")
    (s,) = load_samples(write(tmp_path / "auto", [both], "jsonl"))
    assert (s.shape, s.context, s.response) == ("explicit", "nor this", "not this")


def test_limit(tmp_path):
    samples = load_samples(write(tmp_path / "d", _with_ids([EXPLICIT], n=5), "jsonl"), limit=2)
    assert [s.id for s in samples] == ["0", "1"]


# ---------------------------------------------------------------------------------------------------------------
# Bad files


def test_invalid_json_line_names_file_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps(EXPLICIT) + "\n\n" + json.dumps(ALPACA) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.jsonl:4: invalid JSON"):
        load_samples(p)


def test_invalid_json_file(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('[\n {"context": "a",\n oops}\n]', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.json:3: invalid JSON"):
        load_samples(p)


def test_unknown_extension(tmp_path):
    p = tmp_path / "data.csv"
    p.write_text("context,instruction,response\na,b,c\n")
    with pytest.raises(DataError, match=r"data\.csv.*unknown file type '\.csv'"):
        load_samples(p)


def test_non_object_records(tmp_path):
    p = tmp_path / "list.jsonl"
    p.write_text(json.dumps(EXPLICIT) + "\n" + json.dumps(["a", "b"]) + "\n")
    with pytest.raises(DataError, match=r"list\.jsonl:2: a record must be a JSON object"):
        load_samples(p)
    p = tmp_path / "list.json"
    p.write_text(json.dumps([EXPLICIT, "just a string"]))
    with pytest.raises(DataError, match=r"list\.json\[1\]: a record must be a JSON object"):
        load_samples(p)
    p = tmp_path / "scalar.json"
    p.write_text("42")
    with pytest.raises(DataError, match="expected a JSON list"):
        load_samples(p)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_unrecognised_shape_lists_expected_shapes(tmp_path, fmt):
    records = [dict(EXPLICIT), {"title": "x", "body": "y"}]
    if fmt == "parquet":  # columnar files give every row every column; keep the shapes apart
        records = [{"title": "x", "body": "y"}]
    with pytest.raises(DataError) as info:
        load_samples(write(tmp_path / "d", records, fmt))
    msg = str(info.value)
    assert "unrecognised record shape" in msg and "body" in msg and "title" in msg
    assert ("d.jsonl:2" in msg) if fmt == "jsonl" else ("d.parquet[0]" in msg)
    for expected in ("messages", "conversations", "Alpaca", "explicit"):
        assert expected in msg


def test_duplicate_ids(tmp_path):
    records = [dict(EXPLICIT, id="a"), dict(EXPLICIT, id="b"), dict(EXPLICIT, id="a")]
    with pytest.raises(DataError, match=r"d\.jsonl:3: duplicate id 'a' \(first at .*d\.jsonl:1\)"):
        load_samples(write(tmp_path / "d", records, "jsonl"))
    # a record id that equals another record's position is a duplicate too
    with pytest.raises(DataError, match="duplicate id '1'"):
        load_samples(write(tmp_path / "e", [dict(EXPLICIT, id=1), dict(EXPLICIT)], "jsonl"))


def test_empty_and_missing_files(tmp_path):
    p = tmp_path / "empty.jsonl"
    p.write_text("\n\n")
    with pytest.raises(DataError, match="no records"):
        load_samples(p)
    with pytest.raises(DataError, match="missing.jsonl"):
        load_samples(tmp_path / "missing.jsonl")


# ---------------------------------------------------------------------------------------------------------------
# Bad records: a status code, never dropped

BAD_RECORDS = [
    (dict(EXPLICIT, id="good"), "ok", ""),
    ({"id": "empty-resp", "context": "c", "instruction": "i", "response": "   "}, "empty_response", "empty"),
    ({"id": "missing", "context": "c", "instruction": "i"}, "missing_field", "response"),
    ({"id": "null", "instruction": "i", "input": "c", "output": None}, "missing_field", "null"),
    ({"id": "not-str", "context": "c", "instruction": "i", "response": 5}, "missing_field", "string"),
    ({"id": "empty-ctx", "context": "", "instruction": "i", "response": "r"}, "empty_context", "context"),
    ({"id": "alpaca-no-input", "instruction": "i", "output": "r"}, "empty_context", "context"),
    ({"id": "no-split", "messages": [{"role": "user", "content": "just a question"},
                                     {"role": "assistant", "content": "r"}]}, "empty_context", "context"),
    ({"id": "empty-ins", "messages": [{"role": "user", "content": "ctx\n\n"},
                                      {"role": "assistant", "content": "r"}]}, "empty_instruction", "instruction"),
    ({"id": "no-assistant", "messages": [{"role": "user", "content": "ctx\n\nq"}]}, "missing_field", "assistant"),
    ({"id": "no-user", "conversations": [{"from": "gpt", "value": "r"}]}, "missing_field", "user"),
    ({"id": "bad-turn", "conversations": [{"from": "human"}, {"from": "gpt", "value": "r"}]}, "missing_field",
     "turn 0"),
    ({"id": "null-turn", "messages": [{"role": "user", "content": None},
                                      {"role": "assistant", "content": "r"}]}, "missing_field", "null"),
    (dict(ALPACA, id="good2"), "ok", ""),
]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "hf"])
def test_bad_records_get_status_codes(tmp_path, fmt):
    records = [r for r, _, _ in BAD_RECORDS]
    if fmt == "hf":  # Arrow gives every row every column (absent keys read back as null): one shape, one type
        records = [r for r in records if set(r) <= {"id", "context", "instruction", "response"} and r["id"] != "not-str"]
    samples = load_samples(write(tmp_path / "bad", records, fmt))
    expected = {r["id"]: (status, hint) for r, status, hint in BAD_RECORDS}
    assert [s.id for s in samples] == [r["id"] for r in records]  # nothing dropped, input order
    assert [s.index for s in samples] == list(range(len(records)))
    for s in samples:
        status, hint = expected[s.id]
        assert s.status == status, (s.id, s.status, s.error)
        assert s.ok == (status == "ok")
        assert hint in s.error
        if status != "ok":
            assert s.error


def test_sample_ok_property():
    assert Sample(0, "0", "c", "i", "r").ok
    assert not Sample(0, "0", "c", "i", "", status="empty_response").ok


# ---------------------------------------------------------------------------------------------------------------
# The views of one record: scoring Sample, training messages, judge view (expectations written out by hand)

SHAREGPT_MULTI = {"conversations": [
    {"from": "system", "value": "Be brief."},
    {"from": "human", "value": "Doc A.\n\nQ1?"}, {"from": "chatgpt", "value": "A1."},
    {"from": "human", "value": "Doc B.\n\nQ2?"}, {"from": "chatgpt", "value": "A2."}]}
ALPACA_NO_INPUT = {"instruction": "Name a colour.", "output": "Red."}

# record -> ((context, instruction, response) scored and judged, training messages)
VIEWS = {
    "longalign": (LONGALIGN, LONGALIGN_EXPECTED[:3], [
        {"role": "user", "content": LONGALIGN["messages"][0]["content"]},
        {"role": "assistant", "content": "The code is 7481."}]),
    "sharegpt": (SHAREGPT, SHAREGPT_EXPECTED[:3], [
        {"role": "user", "content": "An essay on startups.\n\nSummarise it."},
        {"role": "assistant", "content": "Talk to users."}]),
    "alpaca": (ALPACA, ALPACA_EXPECTED[:3], [
        {"role": "user", "content": "The essay says costs matter.\n\nExplain the essay."},
        {"role": "assistant", "content": "Keep costs low."}]),
    "alpaca-no-input": (ALPACA_NO_INPUT, ("", "Name a colour.", "Red."), [
        {"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Red."}]),
    "explicit": (EXPLICIT, EXPLICIT_EXPECTED[:3], [
        {"role": "user", "content": "A long archive.\n\nWhich boat?"},
        {"role": "assistant", "content": "The red one."}]),
    # scoring and judging: the last user turn before the last assistant turn, every earlier turn in the context;
    # training: every turn. ``chatgpt`` is an assistant in all three views.
    "sharegpt-multi-turn": (SHAREGPT_MULTI, ("Be brief.\n\nDoc A.\n\nQ1?\n\nA1.\n\nDoc B.", "Q2?", "A2."), [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Doc A.\n\nQ1?"},
        {"role": "assistant", "content": "A1."}, {"role": "user", "content": "Doc B.\n\nQ2?"},
        {"role": "assistant", "content": "A2."}]),
}


@pytest.mark.parametrize("name", list(VIEWS))
def test_the_views_of_every_shape(name):
    record, texts, messages = VIEWS[name]
    sample = record_to_sample(record, 0, "r:1")
    assert (sample.context, sample.instruction, sample.response) == texts
    assert judge_view(record, "r:1") == texts
    assert record_to_messages(record) == (messages, False)


@pytest.mark.parametrize("role", ["assistant", "gpt", "model", "bot", "chatgpt", "GPT", "ChatGPT"])
def test_every_assistant_role_name_is_the_response(role):
    record = {"messages": [{"role": "Human", "content": "ctx\n\nq"}, {"role": role, "content": "a"}]}
    assert record_to_sample(record, 0, "r").status == Status.OK
    assert judge_view(record, "r") == ("ctx", "q", "a")
    assert record_to_messages(record)[0] == [{"role": "user", "content": "ctx\n\nq"},
                                             {"role": "assistant", "content": "a"}]


def test_judge_view_honours_the_field_map_and_refuses_unreadable_records():
    fields = FieldMap(context="doc", instruction="q", response="ans")
    assert judge_view({"doc": "D", "q": "Q", "ans": "A"}, "r", fields) == ("D", "Q", "A")
    assert judge_view({"messages": [{"role": "user", "content": "ctx;q"}, {"role": "assistant", "content": "a"}]},
                      "r", FieldMap(splitter=";")) == ("ctx", "q", "a")
    with pytest.raises(DataError, match=r"f.jsonl:3: turn 0 must have 'role' and 'content'"):
        judge_view({"messages": [{"role": "user"}, {"role": "assistant", "content": "a"}]}, "f.jsonl:3")
    with pytest.raises(DataError, match="unrecognised record shape"):
        judge_view({"text": "no shape"}, "f.jsonl:4")
