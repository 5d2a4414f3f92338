"""Read raw records from JSON, JSONL, Parquet files or HuggingFace datasets, with file:line locations for errors.

A `RecordSource` names the input (a path or a dataset name, and for datasets the split, subset and streaming).
`RecordSource.scan` reads it once, record by record, in input order, with each record's *pointer*: the line number
and byte offset of a JSONL line, else the row position. A `RecordReader` (`RecordSource.reader`) reads records back
by pointer without the rest of the input, so a caller can keep pointers instead of texts: a JSONL line is read at
its offset, a Parquet row from its row group, a `datasets` row by position (a streamed dataset is iterated again,
forward). JSON arrays are parsed whole (the reader keeps the parsed list): use JSONL or Parquet for large sets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

from ..errors import GateauError, UsageError
from ..util.jsonl import iter_jsonl_offsets, open_jsonl, read_jsonl_line

EXPECTED_SHAPES_HELP = (
    "expected one of: LongAlign {'messages': [{'role','content'}...]}, "
    "ShareGPT {'conversations': [{'from','value'}...]}, Alpaca {'instruction','input','output'}, "
    "explicit {'context','instruction','response'}"
)
JSONL_SUFFIXES = (".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet", ".pq")
# a folder written by `datasets`' save_to_disk holds one of these (a DatasetDict, or one Dataset)
SAVED_DATASET_FILES = ("dataset_dict.json", "state.json")

Pointer = tuple[int, int]  # (position, offset): JSONL (line number, byte offset); others (row, row)


class DataError(GateauError, ValueError):
    """The input cannot be read or a record's shape is not recognised."""


@dataclass(frozen=True)
class RecordSource:
    """The input: a .json/.jsonl/.parquet file, a `datasets` folder (``save_to_disk``), or a HuggingFace dataset
    name or data folder (``load_dataset``). ``split``: the split of a dataset with several (needed when it has
    more than one); ``subset``: a hub dataset's configuration name; ``streaming``: iterate a hub dataset without
    downloading it whole (``load_dataset(..., streaming=True)``)."""

    path: str
    split: str | None = None
    subset: str | None = None
    streaming: bool = False

    @property
    def is_file(self) -> bool:
        return Path(self.path).is_file()

    def absolute(self) -> RecordSource:
        """This source with a local path made absolute (for a worker process whose working directory differs)."""
        return replace(self, path=str(Path(self.path).resolve())) if Path(self.path).exists() else self

    @property
    def forward_only(self) -> bool:
        """Read forward only (a streamed hub dataset or data folder): no random access to its rows."""
        return self.streaming and not self.is_file and not _is_saved(self)

    def check(self) -> None:
        """UsageError when a dataset option is given for a plain file."""
        if self.is_file:
            given = [flag for flag, on in (("--split", self.split is not None), ("--subset", self.subset is not None),
                                           ("--streaming", self.streaming)) if on]
            if given:
                raise UsageError(f"{self.path}: {', '.join(given)} applies to a HuggingFace dataset (a name, a "
                                 "save_to_disk folder or a data folder), not to a file: leave it out")

    def resolved(self) -> RecordSource:
        """This source with its split chosen: for a dataset without ``split``, its only split (a UsageError listing
        the splits when it has several); an unknown ``split`` is a UsageError listing the splits. Files: itself."""
        self.check()
        if self.is_file:
            return self
        names = _split_names(self)
        if names is None:  # a saved Dataset (no splits)
            if self.split is not None:
                raise UsageError(f"{self.path}: a saved Dataset without splits; leave --split out")
            return self
        shown = ", ".join(repr(n) for n in names)
        if self.split is None:
            if len(names) > 1:
                raise UsageError(f"{self.path}: a dataset with {len(names)} splits ({shown}): choose one with "
                                 "--split NAME")
            return replace(self, split=names[0])
        if self.split not in names:
            raise UsageError(f"{self.path}: no split {self.split!r} (--split); its splits are {shown}")
        return self

    def location(self, pointer: Pointer) -> str:
        """"file:line" (JSONL) or "name[i]" (JSON, Parquet, datasets), for messages."""
        sep = ":{}" if Path(self.path).suffix.lower() in JSONL_SUFFIXES else "[{}]"
        return self.path + sep.format(pointer[0])

    def scan(self) -> Iterator[tuple[Pointer, dict[str, Any]]]:
        """Yield (pointer, record) for every record, in input order (use `resolved` first for datasets)."""
        path = Path(self.path)
        if path.is_file():
            suffix = path.suffix.lower()
            if suffix in JSONL_SUFFIXES:
                yield from _scan_jsonl(self, path)
            elif suffix == ".json":
                for i, record in enumerate(_json_records(path)):
                    _check_object(self, (i, i), record)
                    yield (i, i), record
            elif suffix in PARQUET_SUFFIXES:
                yield from _scan_parquet(path)
            else:
                raise DataError(f"{path}: unknown file type {suffix!r}; expected .json, .jsonl or .parquet")
            return
        for i, record in enumerate(_open_dataset(self)):
            yield (i, i), dict(record)

    def reader(self) -> RecordReader:
        """A reader of records by pointer (open it where the records are needed: a worker builds its own)."""
        path = Path(self.path)
        if path.is_file():
            suffix = path.suffix.lower()
            if suffix in JSONL_SUFFIXES:
                return _JsonlReader(self)
            if suffix in PARQUET_SUFFIXES:
                return _ParquetReader(self)
            return _ListReader(self, _json_records(path))
        return _DatasetReader(self)


def iter_records(source: str | Path | RecordSource) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (location, record) from a JSON/JSONL/Parquet file or an HF `datasets` name/path (a `RecordSource`
    for a dataset's split, subset or streaming; a dataset with several splits needs its split).

    ``location`` is "file:line" (JSONL), "file[i]" (JSON, Parquet, datasets) for error messages.
    """
    src = (source if isinstance(source, RecordSource) else RecordSource(str(source))).resolved()
    for pointer, record in src.scan():
        yield src.location(pointer), record


class RecordReader:
    """Reads records of one `RecordSource` back by pointer."""

    def __init__(self, source: RecordSource):
        self.source = source

    def fetch(self, pointers: list[Pointer]) -> list[dict[str, Any]]:
        """The records at ``pointers``, in the order given."""
        raise NotImplementedError

    def close(self) -> None:
        """Release open files (a reader may be used again after closing: it opens them again)."""


# ---------------------------------------------------------------------------------------------------------------
# JSONL


def _scan_jsonl(source: RecordSource, path: Path) -> Iterator[tuple[Pointer, dict[str, Any]]]:
    for lineno, offset, record in iter_jsonl_offsets(path, error=DataError):
        _check_object(source, (lineno, offset), record)
        yield (lineno, offset), record


def _check_object(source: RecordSource, pointer: Pointer, record: Any) -> None:
    if not isinstance(record, dict):
        raise DataError(f"{source.location(pointer)}: a record must be a JSON object; {EXPECTED_SHAPES_HELP}")


class _JsonlReader(RecordReader):
    """Seeks to each line's byte offset."""

    def __init__(self, source: RecordSource):
        super().__init__(source)
        self._handle: Any = None

    def fetch(self, pointers: list[Pointer]) -> list[dict[str, Any]]:
        path = Path(self.source.path)
        if self._handle is None:
            self._handle = open_jsonl(path, DataError)
        out = []
        for pointer in pointers:
            record = read_jsonl_line(self._handle, path, pointer[0], pointer[1], DataError)
            _check_object(self.source, pointer, record)
            out.append(record)
        return out

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


# ---------------------------------------------------------------------------------------------------------------
# JSON arrays (parsed whole)


def _json_records(path: Path) -> list[Any]:
    """The parsed list of a JSON file (a ``{"data": [...]}`` or ``{"train": [...]}`` object: its list; another
    object: a list of itself); its elements are checked as they are scanned."""
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
    return payload


class _ListReader(RecordReader):
    """Records already in memory, by position."""

    def __init__(self, source: RecordSource, records: list[dict[str, Any]]):
        super().__init__(source)
        self._records = records

    def fetch(self, pointers: list[Pointer]) -> list[dict[str, Any]]:
        return [self._records[row] for row, _ in pointers]


# ---------------------------------------------------------------------------------------------------------------
# Parquet (record batches to scan, row groups to read back)

PARQUET_BATCH_ROWS = 256  # rows per record batch while scanning (memory: this many records at a time)


def _parquet_file(path: Path) -> Any:
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several exception types for bad files
        raise DataError(f"{path}: cannot read Parquet ({exc})") from exc


def _scan_parquet(path: Path) -> Iterator[tuple[Pointer, dict[str, Any]]]:
    batches = _parquet_file(path).iter_batches(batch_size=PARQUET_BATCH_ROWS)
    row = 0
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except Exception as exc:  # a damaged page or row group
            raise DataError(f"{path}: cannot read Parquet ({exc})") from exc
        for record in batch.to_pylist():
            yield (row, row), record
            row += 1


class _ParquetReader(RecordReader):
    """Reads the row group that holds each row (the last group read is kept: memory is one row group)."""

    def __init__(self, source: RecordSource):
        super().__init__(source)
        self._file: Any = None
        self._starts: list[int] = []
        self._group: tuple[int, Any] | None = None

    def fetch(self, pointers: list[Pointer]) -> list[dict[str, Any]]:
        import bisect

        if self._file is None:
            self._file = _parquet_file(Path(self.source.path))
            meta, start = self._file.metadata, 0
            self._starts = []
            for g in range(meta.num_row_groups):
                self._starts.append(start)
                start += meta.row_group(g).num_rows
        by_group: dict[int, list[int]] = {}
        for i, (row, _) in enumerate(pointers):
            by_group.setdefault(bisect.bisect_right(self._starts, row) - 1, []).append(i)
        out: list[dict[str, Any] | None] = [None] * len(pointers)
        for group, positions in by_group.items():
            table = self._row_group(group)
            local = [pointers[i][0] - self._starts[group] for i in positions]
            for i, record in zip(positions, table.take(local).to_pylist()):
                out[i] = record
        return out  # type: ignore[return-value]

    def _row_group(self, group: int) -> Any:
        if self._group is None or self._group[0] != group:
            try:
                self._group = (group, self._file.read_row_group(group))
            except Exception as exc:
                raise DataError(f"{self.source.path}: cannot read Parquet row group {group} ({exc})") from exc
        return self._group[1]

    def close(self) -> None:
        self._file, self._group = None, None


# ---------------------------------------------------------------------------------------------------------------
# HuggingFace datasets


def _datasets(source: RecordSource) -> Any:
    try:
        import datasets
    except ImportError as exc:
        raise DataError(f"{source.path}: not a local file; loading a HuggingFace dataset needs "
                        "`pip install datasets`") from exc
    return datasets


def _is_saved(source: RecordSource) -> bool:
    """A folder written by `datasets`' ``save_to_disk`` (read with ``load_from_disk``)."""
    return Path(source.path).is_dir() and any((Path(source.path) / f).is_file() for f in SAVED_DATASET_FILES)


def _not_loadable(source: RecordSource, exc: Exception) -> DataError:
    return DataError(f"{source.path}: no such .json/.jsonl/.parquet file, and not a loadable HuggingFace dataset "
                     f"({exc})")


def _split_names(source: RecordSource) -> list[str] | None:
    """The dataset's split names (None: a saved Dataset, which has none)."""
    datasets = _datasets(source)
    if _is_saved(source):
        if source.subset is not None:
            raise UsageError(f"{source.path}: --subset names a hub dataset's configuration; a save_to_disk folder "
                             "has none: leave it out")
        ds = _load_saved(source)
        return list(ds) if isinstance(ds, datasets.DatasetDict) else None
    try:
        return list(datasets.get_dataset_split_names(source.path, source.subset))
    except Exception as exc:
        raise _not_loadable(source, exc) from exc


def _load_saved(source: RecordSource) -> Any:
    try:
        return _datasets(source).load_from_disk(source.path)
    except Exception as exc:
        raise _not_loadable(source, exc) from exc


def _open_dataset(source: RecordSource) -> Any:
    """The dataset of ``source`` (resolved: ``split`` chosen): a (memory-mapped) Dataset or, streaming, an
    IterableDataset."""
    datasets = _datasets(source)
    if _is_saved(source):
        ds = _load_saved(source)
        return ds[source.split] if isinstance(ds, datasets.DatasetDict) else ds
    try:
        return datasets.load_dataset(source.path, source.subset, split=source.split, streaming=source.streaming)
    except Exception as exc:
        raise _not_loadable(source, exc) from exc


class _DatasetReader(RecordReader):
    """Rows by position: indexed in a (memory-mapped) Dataset; a streamed one is iterated forward, again from its
    start when a row before the current position is asked for."""

    def __init__(self, source: RecordSource):
        super().__init__(source)
        self._ds: Any = None
        self._stream: Iterator[tuple[int, Any]] | None = None
        self._at: tuple[int, Any] | None = None  # the streamed row read last

    def fetch(self, pointers: list[Pointer]) -> list[dict[str, Any]]:
        if self._ds is None:
            self._ds = _open_dataset(self.source)
        if not self.source.forward_only:
            return [dict(self._ds[int(row)]) for row, _ in pointers]
        wanted = sorted({row for row, _ in pointers})
        found = {row: self._streamed(row) for row in wanted}
        return [found[row] for row, _ in pointers]

    def _streamed(self, row: int) -> dict[str, Any]:
        if self._stream is None or self._at is None or self._at[0] > row:
            self._stream, self._at = enumerate(self._ds), None
        while self._at is None or self._at[0] < row:
            try:
                self._at = next(self._stream)
            except StopIteration:
                raise DataError(f"{self.source.location((row, row))}: the dataset ended before this row; did it "
                                "change while being scored?") from None
        return dict(self._at[1])

    def close(self) -> None:
        self._ds, self._stream, self._at = None, None, None
