"""Line-numbered JSONL reading: every error names ``file:line``; each line's byte offset, to read it again alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

from ..errors import GateauError


class JsonlError(GateauError, ValueError):
    """A JSONL file that cannot be read, or a line that is not JSON."""


def iter_jsonl(path: str | Path, error: Callable[[str], Exception] = JsonlError) -> Iterator[tuple[int, Any]]:
    """Yield (line number, parsed value) for each non-blank line (1-based numbers; blank lines skipped; a UTF-8
    byte-order mark at the start of the file is skipped, as editors on Windows write one).

    ``error`` builds the exception raised for an unreadable file, a line that is not UTF-8, or invalid JSON (so a
    caller can raise its own error type); the message always names ``path:line``.
    """
    for number, _, value in iter_jsonl_offsets(path, error):
        yield number, value


def iter_jsonl_offsets(path: str | Path, error: Callable[[str], Exception] = JsonlError
                       ) -> Iterator[tuple[int, int, Any]]:
    """`iter_jsonl` with each line's byte offset in the file: (line number, offset, parsed value), so
    `read_jsonl_line` can read that line again without the rest of the file."""
    path = Path(path)
    with open_jsonl(path, error) as handle:
        offset = 0
        for number, raw in enumerate(handle, 1):
            start, offset = offset, offset + len(raw)
            line = _decode(path, number, raw, error)
            if line.strip():
                yield number, start, _parse(path, number, line, error)


def open_jsonl(path: Path, error: Callable[[str], Exception] = JsonlError) -> BinaryIO:
    """``path`` opened for binary reading; ``error`` (naming the file) when it cannot be opened."""
    try:
        return path.open("rb")
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc})") from exc


def read_jsonl_line(handle: BinaryIO, path: Path, number: int, offset: int,
                    error: Callable[[str], Exception] = JsonlError) -> Any:
    """The parsed value of line ``number`` of ``path``, which starts at byte ``offset`` of the open ``handle``."""
    handle.seek(offset)
    return _parse(path, number, _decode(path, number, handle.readline(), error), error)


def _decode(path: Path, number: int, raw: bytes, error: Callable[[str], Exception]) -> str:
    """Line ``number`` as text (a BOM at the start of line 1 is read past); ``error`` naming ``path:number``."""
    try:
        return raw.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}:{number}: not UTF-8 text (byte {exc.start}: "
                    f"{raw[exc.start:exc.start + 1]!r}); is this a binary file?") from None


def _parse(path: Path, number: int, line: str, error: Callable[[str], Exception]) -> Any:
    """One line's JSON value; ``error`` naming ``path:number``."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise error(f"{path}:{number}: invalid JSON ({exc.msg} at column {exc.colno})") from None
