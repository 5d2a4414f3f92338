"""Atomic file writes: a file appears complete or not at all.

Every output gateau writes (scores chunks, config.json, selections, reports, e2e results) goes through here. The
bytes are written to a temporary name beside the target (``.NAME.tmpPID``) and renamed over it, so a reader or a
killed writer never leaves a half-written file. A symlinked target is followed: the link's *target* is replaced and
the link kept. Temporaries left by a killed writer (its pid no longer alive) are removed on the next write to the
same target. A failed write leaves nothing behind and raises `WriteError` naming the path.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from ..errors import GateauError
from . import interrupts

_TMP_MARK = ".tmp"


class WriteError(GateauError, OSError):
    """An output file cannot be written (permissions, a directory in the way, a full disk)."""


def write_target(path: str | Path) -> Path:
    """The file a write to ``path`` really replaces: symlinks resolved (a dangling link gives its target)."""
    return Path(os.path.realpath(path))


def temporary_path(target: Path) -> Path:
    """This process's temporary name for ``target`` (same directory, so the rename stays on one filesystem)."""
    return target.with_name(f".{target.name}{_TMP_MARK}{os.getpid()}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove ``.NAME.tmpPID`` files beside ``target`` whose writer is no longer running; returns what it removed."""
    prefix = f".{target.name}{_TMP_MARK}"
    removed = []
    try:  # listed by prefix, not globbed: a name may hold glob characters ("[", "*")
        candidates = [target.parent / name for name in os.listdir(target.parent) if name.startswith(prefix)]
    except OSError:
        return removed
    for tmp in candidates:
        pid = tmp.name[len(prefix):]
        if not pid.isdigit() or _pid_alive(int(pid)):  # this process's own is another thread's write in progress
            continue
        try:
            tmp.unlink()
            removed.append(tmp)
        except OSError:
            pass
    return removed


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file for writing; on a clean exit it is renamed over ``path`` (its symlink target), on an
    exception it is removed and the old file stays as it was. ``mode`` is ``"w"`` (text) or ``"wb"``."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode 'w' or 'wb', not {mode!r}")
    target = write_target(path)
    if target.is_dir():
        raise WriteError(f"cannot write {path}: it is a directory; give a file name")
    remove_stale_temporaries(target)
    tmp = temporary_path(target)
    try:
        with open(tmp, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        interrupts.raise_if_received()  # an interrupted command publishes nothing, even if its interrupt was swallowed
        os.replace(tmp, target)
    except OSError as exc:
        raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def atomic_write(path: str | Path, data: bytes | str, encoding: str = "utf-8") -> Path:
    """Write ``data`` (bytes, or text in ``encoding``) to ``path`` atomically; returns the real path written."""
    payload = data.encode(encoding) if isinstance(data, str) else data
    with atomic_open(path, "wb") as handle:
        handle.write(payload)
    return write_target(path)
