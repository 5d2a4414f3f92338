"""The run directory: ``config.json`` (resolved settings + fingerprint) and Parquet chunks of per-sample rows.

Each finished chunk of samples is written atomically as ``shards/part-<time ns>-<random>.parquet`` (a temporary
name, then a rename), so a run killed at any moment loses at most the chunks in progress, and several writers
(executors, workers) never collide. Names sort by write time: when an id is stored twice (a retried out-of-memory
sample, or a re-scored edited record) the newest row wins. ``scores.parquet`` is the consolidated table, one row
per input sample in input order, rewritten at the end of every run; readers that find shards newer than it
consolidate again.

Resume: a sample is done when a row is stored for its id with the run's settings fingerprint, the same content
hash as the record now has, and a final (non-retryable) status.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import GateauError
from .status import RETRYABLE
from .util.atomic import WriteError, atomic_write
from .util.settings_hash import settings_hash as fingerprint  # noqa: F401 (re-exported: a run's settings fingerprint)

SCORES_FILE = "scores.parquet"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.jsonl"  # one line per `gateau score` invocation: what it measured, how long, how fast
SHARD_DIR = "shards"
LOCK_FILE = ".lock"
LAYOUT_VERSION = 4  # config.json layout; runs of other layouts are refused with a clear message (4: per-token
# NLL columns in gateau runs, CAM's neutral-profile columns)

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
    "content_hash": pa.string(),
    "fingerprint": pa.string(),
}


class RunError(GateauError, RuntimeError):
    """The run directory is missing, incomplete, damaged, or was made with other settings or data."""


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """`atomic_write` for the run directory: a failed write (read-only directory, full disk) leaves nothing behind
    and raises RunError naming the path."""
    try:
        atomic_write(path, data)
    except WriteError as exc:
        raise RunError(str(exc)) from exc


def _table_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


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
        config = json.loads(self.config_path.read_text())
        if config.get("layout") != LAYOUT_VERSION:
            raise RunError(f"{self.dir} was made by an older gateau (run layout {config.get('layout', 1)}, this "
                           f"version reads {LAYOUT_VERSION}); score it again with --overwrite")
        return config

    def open(self, config: dict[str, Any], overwrite: bool = False, repair: bool = False) -> None:
        """Create the run, or check that an existing one was made with the same measurement settings and data.
        ``config`` must hold ``fingerprint``, ``measure`` (the fingerprinted settings) and ``data`` (its path).
        ``repair``: set damaged chunks aside (renamed ``*.damaged``) so that their samples are scored again."""
        config = {**config, "layout": LAYOUT_VERSION}
        self._make_dirs()
        if repair:
            for shard in self._shards():
                try:
                    pq.read_metadata(shard)
                except (pa.ArrowInvalid, OSError):
                    shard.rename(shard.with_suffix(".damaged"))
        if self.config_path.is_file() and not overwrite:
            old = self.read_config()
            if old.get("fingerprint") != config["fingerprint"]:
                changed = sorted(k for k in set(old["measure"]) | set(config["measure"])
                                 if old["measure"].get(k) != config["measure"].get(k))
                raise RunError(
                    f"{self.dir} holds a run with other settings (changed: {', '.join(changed)}); "
                    "pass the same options to resume, or use --overwrite or another --out")
            if old["data"]["path"] != config["data"]["path"]:
                raise RunError(f"{self.dir} holds a run of {old['data']['path']}, not {config['data']['path']}; "
                               "use --overwrite or another --out")
        if overwrite:
            for shard in (self.dir / SHARD_DIR).glob("*.parquet"):
                shard.unlink()
            self.scores_path.unlink(missing_ok=True)
        _atomic_write_bytes(self.config_path, json.dumps(config, indent=2, sort_keys=True).encode())

    def append_history(self, entry: dict[str, Any]) -> None:
        """Add one invocation's summary to ``history.jsonl`` (appended whole in one write)."""
        with (self.dir / HISTORY_FILE).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, sort_keys=True, default=str) + "\n")

    def read_history(self) -> list[dict[str, Any]]:
        """Every invocation's summary, oldest first ([] for a run without history)."""
        path = self.dir / HISTORY_FILE
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def _make_dirs(self) -> None:
        try:
            (self.dir / SHARD_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"cannot create the run directory {self.dir}: {exc.strerror or exc}") from exc

    def _shards(self) -> list[Path]:
        return sorted((self.dir / SHARD_DIR).glob("part-*.parquet"))

    def write_shard(self, rows: list[dict[str, Any]], schema: pa.Schema) -> Path:
        """Atomically write ``rows`` (one dict per sample) as a new chunk; safe with concurrent writers."""
        path = self.dir / SHARD_DIR / f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
        _atomic_write_bytes(path, _table_bytes(pa.Table.from_pylist(rows, schema=schema)))
        return path

    def _read_shard(self, path: Path) -> pa.Table:
        try:
            return pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise RunError(f"{path} is damaged ({exc}); run the same `gateau score` command with --repair to "
                           "set damaged chunks aside and score their samples again") from exc

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's writer lock (``RUN/.lock``) for a `gateau score` process; RunError if another holds it."""
        import fcntl

        self._make_dirs()
        path = self.dir / LOCK_FILE
        with path.open("a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise RunError(f"{self.dir} is being scored by {holder}; wait for it to finish (or stop it), "
                               "then run the command again") from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"gateau score (pid {os.getpid()})")
            handle.flush()
            try:
                yield
            finally:
                handle.truncate(0)
                fcntl.flock(handle, fcntl.LOCK_UN)

    def stored_rows(self) -> pa.Table | None:
        """Every stored row, newest row per id, sorted by input index; None if nothing is stored."""
        tables = [self._read_shard(p) for p in self._shards()]
        if not tables:
            return None
        table = pa.concat_tables(tables, promote_options="default")
        newest: dict[str, int] = {}
        for i, sid in enumerate(table.column("id").to_pylist()):
            newest[sid] = i
        index = table.column("index").to_pylist()
        keep = sorted(newest.values(), key=lambda i: index[i])
        return table.take(pa.array(keep, type=pa.int64()))

    def done_ids(self, fp: str, content: dict[str, str]) -> set[str]:
        """Ids stored with fingerprint ``fp``, the content hash ``content[id]`` and a final status."""
        table = self.stored_rows()
        if table is None:
            return set()
        cols = (table.column(c).to_pylist() for c in ("id", "fingerprint", "content_hash", "status"))
        return {sid for sid, f, h, st in zip(*cols) if f == fp and content.get(sid) == h and st not in RETRYABLE}

    def consolidate(self, ids: list[str] | None = None) -> pa.Table:
        """Write ``scores.parquet`` from the shards and return it; with ``ids``, only rows of those ids (the
        current input's), so a record removed from the input leaves the table."""
        table = self.stored_rows()
        if table is None:
            raise RunError(f"{self.dir}: no scored samples yet")
        if ids is not None:
            wanted = set(ids)
            table = table.filter(pa.array([sid in wanted for sid in table.column("id").to_pylist()]))
        _atomic_write_bytes(self.scores_path, _table_bytes(table))
        return table

    def read_scores(self) -> pa.Table:
        """The consolidated table (re-consolidated if shards are newer than scores.parquet)."""
        self.read_config()  # a clear error if this is not a run directory
        shards = self._shards()
        if self.scores_path.is_file() and all(p.stat().st_mtime <= self.scores_path.stat().st_mtime for p in shards):
            return pq.read_table(self.scores_path)
        return self.consolidate()
