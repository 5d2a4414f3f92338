"""Read raw records from JSON, JSONL, Parquet files or HuggingFace datasets, with file:line locations for errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from ..errors import GateauError
from ..util.jsonl import iter_jsonl

EXPECTED_SHAPES_HELP = (
    "expected one of: LongAlign {'messages': [{'role','content'}...]}, "
    "ShareGPT {'conversations': [{'from','value'}...]}, Alpaca {'instruction','input','output'}, "
    "explicit {'context','instruction','response'}"
)


class DataError(GateauError, ValueError):
    """The input cannot be read or a record's shape is not recognised."""


def iter_records(source: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (location, record) from a JSON/JSONL/Parquet file or an HF `datasets` name/path.

    ``location`` is "file:line" (JSONL), "file[i]" (JSON, Parquet, datasets) for error messages.
    """
    path = Path(source)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in (".jsonl", ".ndjson"):
            yield from _iter_jsonl(path)
        elif suffix == ".json":
            yield from _iter_json(path)
        elif suffix in (".parquet", ".pq"):
            yield from _iter_parquet(path)
        else:
            raise DataError(f"{path}: unknown file type {suffix!r}; expected .json, .jsonl or .parquet")
        return
    yield from _iter_hf_dataset(str(source))


def _iter_jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for lineno, record in iter_jsonl(path, error=DataError):
        if not isinstance(record, dict):
            raise DataError(f"{path}:{lineno}: a record must be a JSON object; {EXPECTED_SHAPES_HELP}")
        yield f"{path}:{lineno}", record


def _iter_json(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8-sig"))  # a leading BOM is read past
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from exc
    if isinstance(payload, dict):
        payload = payload.get("data", payload.get("train", [payload]))
    if not isinstance(payload, list):
        raise DataError(f"{path}: expected a JSON list of records")
    for i, record in enumerate(payload):
        if not isinstance(record, dict):
            raise DataError(f"{path}[{i}]: a record must be a JSON object; {EXPECTED_SHAPES_HELP}")
        yield f"{path}[{i}]", record


def _iter_parquet(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several exception types for bad files
        raise DataError(f"{path}: cannot read Parquet ({exc})") from exc
    for i, record in enumerate(table.to_pylist()):
        yield f"{path}[{i}]", record


def _iter_hf_dataset(name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        import datasets
    except ImportError as exc:
        raise DataError(
            f"{name}: not a local file; loading a HuggingFace dataset needs `pip install datasets`") from exc
    try:
        if Path(name).is_dir():
            ds = datasets.load_from_disk(name)
        else:
            ds = datasets.load_dataset(name, split="train")
    except Exception as exc:
        raise DataError(
            f"{name}: no such .json/.jsonl/.parquet file, and not a loadable HuggingFace dataset ({exc})") from exc
    if isinstance(ds, datasets.DatasetDict):
        ds = ds["train"] if "train" in ds else next(iter(ds.values()))
    for i, record in enumerate(ds):
        yield f"{name}[{i}]", dict(record)


