"""The run directory: ``config.json`` (resolved settings + fingerprint) and Parquet shards of per-sample rows.

Each finished chunk of samples is written atomically as ``shards/part-NNNNNN.parquet`` (write to a temporary
name, then rename), so a run killed at any moment loses at most the chunk in progress. ``scores.parquet`` is the
consolidated table, one row per input sample in input order, rewritten at the end of every run; readers that
find shards newer than it consolidate again. Resume: ids already stored with the same fingerprint and a final
status are skipped; rows stored with a retryable status (out of memory) are measured again, the newest row of
an id wins.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .status import RETRYABLE

SCORES_FILE = "scores.parquet"
CONFIG_FILE = "config.json"
SHARD_DIR = "shards"

BASE_COLUMNS: dict[str, pa.DataType] = {
    "index": pa.int64(),
    "id": pa.string(),
    "status": pa.string(),
    "error": pa.string(),
    "note": pa.string(),
    "n_context": pa.int64(),
    "n_instruction": pa.int64(),
    "n_response": pa.int64(),
    "n_truncated": pa.int64(),
    "fingerprint": pa.string(),
}


class RunError(RuntimeError):
    """The run directory is missing, incomplete, or was made with other settings."""


def fingerprint(settings: dict[str, Any]) -> str:
    """A short stable hash of the settings that determine the measured numbers."""
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class RunStore:
    """Reads and writes one run directory."""

    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)

    @property
    def config_path(self) -> Path:
        return self.dir / CONFIG_FILE

    @property
    def scores_path(self) -> Path:
        return self.dir / SCORES_FILE

    def read_config(self) -> dict[str, Any]:
        if not self.config_path.is_file():
            raise RunError(f"{self.dir} is not a gateau run (no {CONFIG_FILE}); create one with `gateau score`")
        return json.loads(self.config_path.read_text())

    def open(self, config: dict[str, Any], overwrite: bool = False) -> None:
        """Create the run or check that an existing one was made with the same measurement settings."""
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / SHARD_DIR).mkdir(exist_ok=True)
        if self.config_path.is_file() and not overwrite:
            old = self.read_config()
            if old.get("fingerprint") != config["fingerprint"]:
                changed = sorted(k for k in set(old["measure"]) | set(config["measure"])
                                 if old["measure"].get(k) != config["measure"].get(k))
                raise RunError(
                    f"{self.dir} holds a run with other settings (changed: {', '.join(changed)}); "
                    "pass the same options to resume, or use --overwrite or another --out")
        if overwrite:
            for shard in (self.dir / SHARD_DIR).glob("*.parquet"):
                shard.unlink()
            self.scores_path.unlink(missing_ok=True)
        _atomic_write_bytes(self.config_path, json.dumps(config, indent=2, sort_keys=True).encode())

    def _shards(self) -> list[Path]:
        return sorted((self.dir / SHARD_DIR).glob("part-*.parquet"))

    def write_shard(self, rows: list[dict[str, Any]], schema: pa.Schema) -> Path:
        """Atomically write ``rows`` (one dict per sample) as the next shard."""
        existing = self._shards()
        number = int(existing[-1].stem.split("-")[1]) + 1 if existing else 0
        path = self.dir / SHARD_DIR / f"part-{number:06d}.parquet"
        table = pa.Table.from_pylist(rows, schema=schema)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        _atomic_write_bytes(path, sink.getvalue().to_pybytes())
        return path

    def stored_rows(self) -> pa.Table | None:
        """Every stored row, newest row per id, sorted by input index; None if nothing is stored."""
        tables = [pq.read_table(p) for p in self._shards()]
        if not tables:
            return None
        table = pa.concat_tables(tables, promote_options="default")
        newest: dict[str, int] = {}
        for i, sid in enumerate(table.column("id").to_pylist()):
            newest[sid] = i
        keep = sorted(newest.values(), key=lambda i: table.column("index")[i].as_py())
        return table.take(pa.array(keep, type=pa.int64()))

    def done_ids(self, fp: str) -> set[str]:
        """Ids stored with fingerprint ``fp`` and a final (non-retryable) status."""
        table = self.stored_rows()
        if table is None:
            return set()
        return {sid for sid, f, st in zip(table.column("id").to_pylist(), table.column("fingerprint").to_pylist(),
                                          table.column("status").to_pylist())
                if f == fp and st not in RETRYABLE}

    def consolidate(self) -> pa.Table:
        """Write ``scores.parquet`` from the shards and return it."""
        table = self.stored_rows()
        if table is None:
            raise RunError(f"{self.dir}: no scored samples yet")
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        _atomic_write_bytes(self.scores_path, sink.getvalue().to_pybytes())
        return table

    def read_scores(self) -> pa.Table:
        """The consolidated table (re-consolidated if shards are newer than scores.parquet)."""
        self.read_config()  # a clear error if this is not a run directory
        shards = self._shards()
        if self.scores_path.is_file() and all(p.stat().st_mtime <= self.scores_path.stat().st_mtime for p in shards):
            return pq.read_table(self.scores_path)
        return self.consolidate()
