"""Lazy input: a run keeps a `SampleRef` per sample (pointers, ids, content hashes), never the texts, and reads each
chunk back just before scoring. Checked against eager references: whole-file reads split by hand, `load_samples`,
and the `Scorer` run on eagerly loaded chunks."""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers import TINY_WINDOWS, random_words, score_config, write_jsonl

from gateau.data import DataError, RecordSource, index_samples, load_samples
from gateau.errors import UsageError
from gateau.pipeline.run import run_score
from gateau.pipeline.run_plan import plan_chunks
from gateau.pipeline.scorer import Scorer, load_models, output_schema
from gateau.util.jsonl import iter_jsonl_offsets, open_jsonl, read_jsonl_line

WORDS = "harbour lighthouse archive essay founder user code secret number red boat blue".split()


def make_records(n: int, seed: int = 3) -> list[dict]:
    rng = random.Random(seed)
    return [{"id": f"s{i}", "context": random_words(rng, WORDS, 10 + 7 * ((i * 5) % n)),
             "instruction": "Which number?", "response": random_words(rng, WORDS, 3)} for i in range(n)]


def test_line_offsets_survive_crlf_bom_and_blank_lines(tmp_path):
    records = make_records(6)
    lines = [json.dumps(r, ensure_ascii=False).encode() for r in records]
    raw = (b"\xef\xbb\xbf" + lines[0] + b"\r\n" + b"\r\n" + lines[1] + b"\n" + b"   \t\r\n" + lines[2] + b"\r\n"
           + b"\n\n" + lines[3] + b"\n" + "\u00a0\n".encode() + lines[4] + b"\r\n" + lines[5])  # no final newline
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(raw)
    # naive reference: the whole file split at b"\n", offsets summed by hand, blank lines (after decoding) skipped
    expected, offset = [], 0
    for number, piece in enumerate(raw.split(b"\n"), 1):
        text = piece.decode("utf-8-sig" if number == 1 else "utf-8")
        if text.strip():
            expected.append((number, offset, json.loads(text)))
        offset += len(piece) + 1
    got = list(iter_jsonl_offsets(path))
    assert got == expected
    assert [v for _, _, v in got] == records
    with open_jsonl(path) as handle:  # each line read back alone, in another order
        for number, offset, value in reversed(expected):
            assert read_jsonl_line(handle, path, number, offset) == value


def _write(path: Path, records: list[dict], fmt: str) -> Path:
    if fmt == "jsonl":  # CRLF, a BOM and blank lines: offsets must still point at the records
        path = path.with_suffix(".jsonl")
        path.write_bytes(b"\xef\xbb\xbf" + b"\r\n\r\n".join(json.dumps(r).encode() for r in records) + b"\r\n")
    elif fmt == "json":
        path = path.with_suffix(".json")
        path.write_text(json.dumps(records))
    elif fmt == "parquet":  # several row groups, so rows are read back from different groups
        path = path.with_suffix(".parquet")
        pq.write_table(pa.Table.from_pylist(records), path, row_group_size=3)
    else:
        import datasets

        datasets.Dataset.from_list(records).save_to_disk(str(path))
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "json", "parquet", "saved"])
def test_reading_refs_back_equals_the_eager_samples(tmp_path, fmt):
    records = make_records(11)
    records[4] = {"id": "s4", "context": "x", "instruction": "q", "response": ""}  # a status other than ok
    path = _write(tmp_path / "data", records, fmt)
    eager = load_samples(path)
    index = index_samples(path)
    assert [(r.index, r.id, r.status, r.error, r.content_hash) for r in index.refs] == [
        (s.index, s.id, s.status, s.error, s.content_hash) for s in eager]
    assert [r.sort_length for r in index.refs] == [len(s.context) + len(s.instruction) + len(s.response)
                                                   for s in eager]
    shuffled = list(index.refs)
    random.Random(0).shuffle(shuffled)
    reader = index.reader()
    assert reader.read(shuffled) == [eager[r.index] for r in shuffled]
    assert reader.read(index.refs[:2]) == eager[:2]  # again, after a read further on
    reader.close()


def test_refs_and_reader_pickle_without_the_texts(tmp_path):
    """What the Ray executor sends an actor: a chunk's refs and the reader, which reads the texts itself."""
    records = make_records(5)
    records[2]["context"] += " uniquemarkerword"
    path = _write(tmp_path / "data", records, "jsonl")
    index = index_samples(path)
    reader = index.reader()
    reader.read(index.refs)  # an open file handle is not part of the payload
    payload = pickle.dumps((index.refs, reader))
    assert b"uniquemarkerword" not in payload and b"harbour" not in payload
    refs, copy = pickle.loads(payload)
    assert copy.read(refs) == load_samples(path)


@pytest.mark.parametrize("same_length", [True, False])  # the content hash differs; the offsets after it move
def test_a_record_changed_during_the_run_is_refused(tmp_path, same_length):
    records = make_records(4)
    path = write_jsonl(tmp_path / "d.jsonl", records)
    index = index_samples(path)
    old = records[0]["response"]
    records[0]["response"] = "y" * len(old) if same_length else old + " and more"
    write_jsonl(path, records)
    with pytest.raises(DataError, match="changed while this command ran"):
        index.reader().read(index.refs if same_length else index.refs[1:])


@pytest.mark.parametrize("bad, where", [(b"{not json}", 3), (b"[1, 2]", 3), (b"\xff\xfe", 3)])
def test_bad_lines_are_named_by_file_and_line_in_a_run(tmp_path, bad, where):
    lines = [json.dumps(r).encode() for r in make_records(3)]
    path = tmp_path / "bad.jsonl"
    path.write_bytes(lines[0] + b"\r\n\r\n" + bad + b"\r\n" + lines[1])
    with pytest.raises(DataError, match=f"{path}:{where}: "):
        run_score(score_config(path, tmp_path / "run", methods="length"))
    assert not (tmp_path / "run").exists()


def eager_rows(data: Path, cfg) -> list[dict]:
    """The reference: every sample loaded with its text (`load_samples`), scored chunk by chunk as planned."""
    long, short = load_models(cfg)
    scorer = Scorer(cfg, long, short)
    rows = [row for chunk in plan_chunks(load_samples(data), cfg.execution.chunk_size)
            for row in scorer.score_batch(chunk)]
    table = pa.Table.from_pylist(rows, schema=output_schema(cfg))
    return sorted(table.to_pylist(), key=lambda r: r["index"])


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_a_lazy_run_stores_the_rows_of_an_eager_reference(tmp_path, tiny_model_dir, fmt):
    records = make_records(7)
    records[5]["response"] = ""
    data = _write(tmp_path / "data", records, fmt)
    cfg = score_config(data, tmp_path / "run", methods="hmg,length", long_model=str(tiny_model_dir),
                       chunk_size=3, **TINY_WINDOWS)
    summary = run_score(cfg)
    assert summary.statuses == {"ok": 6, "empty_response": 1}
    assert pq.read_table(tmp_path / "run" / "scores.parquet").to_pylist() == eager_rows(data, cfg)


# -- datasets input: DatasetDict splits, subsets, streaming --------------------------------------------------------


@pytest.fixture(scope="module")
def two_splits(tmp_path_factory) -> Path:
    import datasets

    path = tmp_path_factory.mktemp("dd") / "two"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(make_records(4)),
                          "test": datasets.Dataset.from_list(make_records(3, seed=9))}).save_to_disk(str(path))
    return path


def test_a_dataset_dict_with_several_splits_needs_split(two_splits):
    with pytest.raises(UsageError, match=r"2 splits \('train', 'test'\): choose one with --split"):
        index_samples(two_splits)
    with pytest.raises(UsageError, match=r"no split 'dev' \(--split\); its splits are 'train', 'test'"):
        index_samples(RecordSource(str(two_splits), split="dev"))
    index = index_samples(RecordSource(str(two_splits), split="test"))
    assert [r.id for r in index.refs] == [r["id"] for r in make_records(3, seed=9)] and index.note == ""
    assert index.reader().read(index.refs) == load_samples(RecordSource(str(two_splits), split="test"))


def test_a_single_split_is_used_and_named(tmp_path, tiny_model_dir):
    import datasets

    path = tmp_path / "one"
    datasets.DatasetDict({"validation": datasets.Dataset.from_list(make_records(3))}).save_to_disk(str(path))
    summary = run_score(score_config(path, tmp_path / "run", methods="length", long_model=str(tiny_model_dir)))
    assert summary.lines()[0] == f"data: split 'validation' (the only split of {path})"
    assert summary.statuses == {"ok": 3}


def test_dataset_options_on_a_file_are_refused(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", make_records(2))
    with pytest.raises(UsageError, match="--split, --streaming applies to a HuggingFace dataset"):
        index_samples(RecordSource(str(path), split="train", streaming=True))


def test_a_streamed_data_folder_is_read_in_input_order(tmp_path, tiny_model_dir):
    """``load_dataset(FOLDER, split=..., streaming=True)`` over a folder of Parquet files (offline): the same samples
    as the files read eagerly, chunks in input order, the same rows as the eager run of the file."""
    records = make_records(8)
    folder = tmp_path / "folder"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist(records[:5]), folder / "train-00000.parquet")
    pq.write_table(pa.Table.from_pylist(records[5:]), folder / "train-00001.parquet")
    source = RecordSource(str(folder), split="train", streaming=True)
    index = index_samples(source)
    assert [r.id for r in index.refs] == [r["id"] for r in records]
    assert all(r.sort_length == 0 for r in index.refs)
    chunks = plan_chunks(index.refs, 3)
    assert [r.index for chunk in chunks for r in chunk] == list(range(8))
    reader = index.reader()
    flat = _write(tmp_path / "flat", records, "jsonl")
    assert [reader.read(c) for c in reversed(chunks)] == [
        [load_samples(flat)[r.index] for r in c] for c in reversed(chunks)]
    cfg = score_config(str(folder), tmp_path / "run", methods="length", long_model=str(tiny_model_dir),
                       split="train", streaming=True, chunk_size=3)
    run_score(cfg)
    stored = pq.read_table(tmp_path / "run" / "scores.parquet").drop(["fingerprint"]).to_pylist()
    reference = score_config(flat, tmp_path / "flat-run", methods="length", long_model=str(tiny_model_dir))
    run_score(reference)
    assert stored == pq.read_table(tmp_path / "flat-run" / "scores.parquet").drop(["fingerprint"]).to_pylist()


def test_a_subset_of_a_data_folder_is_chosen_by_name(tmp_path):
    """``--subset``: a configuration name, as ``load_dataset(FOLDER, SUBSET, split=...)`` reads it (configurations
    declared in the folder's README.md, offline), streamed or not."""
    records = make_records(6)
    for name, part in (("first", records[:2]), ("second", records[2:])):
        (tmp_path / name).mkdir()
        pq.write_table(pa.Table.from_pylist(part), tmp_path / name / "train-0.parquet")
    (tmp_path / "README.md").write_text("---\nconfigs:\n" + "".join(
        f"- config_name: {name}\n  data_files:\n  - split: train\n    path: {name}/*.parquet\n"
        for name in ("first", "second")) + "---\n")
    for streaming in (False, True):
        source = RecordSource(str(tmp_path), subset="second", streaming=streaming)
        index = index_samples(source)
        assert index.note == f"split 'train' (the only split of {tmp_path})"
        assert [s.id for s in index.reader().read(index.refs)] == [r["id"] for r in records[2:]]
