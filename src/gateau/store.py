"""The run directory: ``config.json`` (resolved settings + fingerprint) and Parquet chunks of per-sample rows.

Each finished chunk of samples is written atomically as ``shards/part-<time ns>-<random>.parquet`` (a temporary
name, then a rename), so a run killed at any moment loses at most the chunks in progress, and several writers
(executors, workers) never collide. Names sort by write time: when an id is stored twice (a retried out-of-memory
sample, or a re-scored edited record) the newest row wins. ``scores.parquet`` is the consolidated table, one row
per input sample in input order, rewritten at the end of every run; readers that find shards newer than it
consolidate again, writing it only while they hold the run's lock (else they consolidate in memory): a read never
races a writer.

Locks (``fcntl.flock``; on NFS, Linux maps them onto byte-range locks): ``RUN/.lock`` is held exclusively by a
`gateau score` and by a reader while it rewrites ``scores.parquet``, and shared by the workers of a sharded run
(`gateau score --shard I/N`), each of which also holds its own ``RUN/workers/shard-I-of-N.lock`` and records its
summary in ``RUN/workers/shard-I-of-N.jsonl`` rather than in ``history.jsonl``.

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
WORKER_DIR = "workers"  # per-worker files of a sharded run: NAME.lock (held while it runs), NAME.jsonl (history)
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


def _create_exclusively(path: Path, data: bytes) -> None:
    """Create ``path`` holding ``data`` whole, unless it exists (another writer was first): write a uniquely named
    temporary, then hard-link it to ``path`` (atomic, and never replaces a file, also on NFS)."""
    tmp = path.with_name(f".{path.name}.new-{uuid.uuid4().hex}")
    try:
        tmp.write_bytes(data)
        os.link(tmp, path)
    except FileExistsError:
        pass
    except OSError as exc:
        raise RunError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


REPAIR_HINT = "run the same `gateau score` command (without --shard) with --repair"


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
        """The run's settings; RunError if this is no run, the file is damaged, or of another layout."""
        if not self.config_path.is_file():
            raise RunError(f"{self.dir} is not a gateau run (no {CONFIG_FILE}); create one with `gateau score`")
        config = self._parse_config()
        if config is None:
            raise RunError(f"{self.config_path} is damaged (not a complete JSON object); {REPAIR_HINT} to write it "
                           "again from that command's settings (the stored chunks are kept)")
        if config.get("layout") != LAYOUT_VERSION:
            raise RunError(f"{self.dir} was made by an older gateau (run layout {config.get('layout', 1)}, this "
                           f"version reads {LAYOUT_VERSION}); score it again with --overwrite")
        return config

    def _parse_config(self) -> dict[str, Any] | None:
        """``config.json`` as a dict, or None when it is not a complete JSON object (truncated, corrupt)."""
        try:
            config = json.loads(self.config_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None
        return config if isinstance(config, dict) else None

    def open(self, config: dict[str, Any], overwrite: bool = False, repair: bool = False,
             create_only: bool = False) -> None:
        """Create the run, or check that an existing one was made with the same measurement settings and data.
        ``config`` must hold ``fingerprint``, ``measure`` (the fingerprinted settings) and ``data`` (its path).
        ``repair``: set damaged chunks aside (renamed ``*.damaged``) so that their samples are scored again, and
        drop a damaged ``config.json`` (written again from ``config``) or ``scores.parquet`` (consolidated again).
        ``create_only`` (a shard worker): write ``config.json`` only if it does not exist yet, never replace it."""
        config = {**config, "layout": LAYOUT_VERSION}
        blob = json.dumps(config, indent=2, sort_keys=True).encode()
        self._make_dirs()
        if repair:
            self._set_damaged_aside()
        if create_only:
            _create_exclusively(self.config_path, blob)
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
        if not create_only:
            _atomic_write_bytes(self.config_path, blob)

    def _set_damaged_aside(self) -> None:
        """`open(repair=True)`: rename unreadable chunks ``*.damaged``; remove an unreadable ``config.json`` or
        ``scores.parquet`` (both are written again by this run)."""
        for shard in self._shards():
            try:
                pq.read_metadata(shard)
            except (pa.ArrowInvalid, OSError):
                shard.rename(shard.with_suffix(".damaged"))
        if self.config_path.is_file() and self._parse_config() is None:
            self.config_path.unlink()
        if self.scores_path.is_file():
            try:
                pq.read_metadata(self.scores_path)
            except (pa.ArrowInvalid, OSError):
                self.scores_path.unlink()

    def append_history(self, entry: dict[str, Any], worker: str | None = None) -> None:
        """Add one invocation's summary to ``history.jsonl`` (appended whole in one write), or with ``worker`` to
        that worker's own ``workers/WORKER.jsonl`` (workers of a sharded run never write one file together)."""
        path = self.dir / HISTORY_FILE if worker is None else self._worker_dir() / f"{worker}.jsonl"
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, sort_keys=True, default=str) + "\n")

    def read_history(self) -> list[dict[str, Any]]:
        """Every invocation's summary (``history.jsonl`` and the workers' files), oldest first ([] for a run
        without history)."""
        paths = [self.dir / HISTORY_FILE, *sorted((self.dir / WORKER_DIR).glob("*.jsonl"))]
        entries = [json.loads(line) for path in paths if path.is_file()
                   for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return sorted(entries, key=lambda e: str(e.get("finished", "")))

    def _make_dirs(self) -> None:
        try:
            (self.dir / SHARD_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"cannot create the run directory {self.dir}: {exc.strerror or exc}") from exc

    def _worker_dir(self) -> Path:
        path = self.dir / WORKER_DIR
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"cannot create {path}: {exc.strerror or exc}") from exc
        return path

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
    def lock(self, shared: bool = False) -> Iterator[None]:
        """Hold the run's writer lock (``RUN/.lock``): exclusively for a `gateau score` process (its pid is written
        into the file), or ``shared`` by the workers of a sharded run (nothing written). RunError if it is held in
        a conflicting mode."""
        self._make_dirs()
        path = self.dir / LOCK_FILE
        with self._open_lock(path) as handle:
            if not _try_flock(handle, shared):
                handle.seek(0)
                holder = handle.read().strip() or "another process (a `gateau score --shard` worker or a reader)"
                raise RunError(f"{self.dir} is being scored by {holder}; wait for it to finish (or stop it), "
                               "then run the command again") from None
            if not shared:
                handle.seek(0)
                handle.truncate()
                handle.write(f"gateau score (pid {os.getpid()})")
                handle.flush()
            try:
                yield
            finally:
                if not shared:
                    handle.truncate(0)
                _unlock(handle)

    @contextmanager
    def worker_lock(self, worker: str) -> Iterator[None]:
        """Hold ``workers/WORKER.lock`` exclusively (its pid written there): one process per shard at a time."""
        path = self._worker_dir() / f"{worker}.lock"
        with self._open_lock(path) as handle:
            if not _try_flock(handle, shared=False):
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise RunError(f"{worker} of {self.dir} is being scored by {holder}; wait for it to finish (or "
                               "stop it), then run the command again") from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"gateau score --shard (pid {os.getpid()}, host {os.uname().nodename})")
            handle.flush()
            try:
                yield
            finally:
                handle.truncate(0)
                _unlock(handle)

    @staticmethod
    @contextmanager
    def _open_lock(path: Path) -> Iterator[Any]:
        try:
            handle = path.open("a+")
        except OSError as exc:
            raise RunError(f"cannot open the lock {path}: {exc.strerror or exc}; scoring into a run needs write "
                           "access to its directory") from exc
        with handle:
            yield handle

    @contextmanager
    def _reader_lock(self) -> Iterator[bool]:
        """Try to take ``RUN/.lock`` exclusively without waiting, for a reader that would rewrite
        ``scores.parquet``: yields True while held, False when a writer holds it or the run is read-only."""
        try:
            handle = (self.dir / LOCK_FILE).open("a+")
        except OSError:
            yield False
            return
        with handle:
            if not _try_flock(handle, shared=False):
                yield False
                return
            try:
                yield True
            finally:
                _unlock(handle)

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
        """The consolidated table. When shards are newer than ``scores.parquet`` it is consolidated again: written
        only while this reader holds the run's lock, else (a `gateau score` is running) built in memory."""
        self.read_config()  # a clear error if this is not a run directory
        shards = self._shards()
        if self.scores_path.is_file() and all(p.stat().st_mtime <= self.scores_path.stat().st_mtime for p in shards):
            try:
                return pq.read_table(self.scores_path)
            except (pa.ArrowInvalid, OSError) as exc:
                raise RunError(f"{self.scores_path} is damaged ({exc}); {REPAIR_HINT} to consolidate it again from "
                               "the stored chunks") from exc
        with self._reader_lock() as held:
            if held:
                return self.consolidate()
        table = self.stored_rows()
        if table is None:
            raise RunError(f"{self.dir}: no scored samples yet")
        return table


def _try_flock(handle: Any, shared: bool) -> bool:
    """Take ``flock`` on ``handle`` without waiting (shared or exclusive); False if it is held in a conflicting mode."""
    import fcntl

    try:
        fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock(handle: Any) -> None:
    import fcntl

    fcntl.flock(handle, fcntl.LOCK_UN)
