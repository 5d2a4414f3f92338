"""Line-numbered JSONL reading: every error names ``file:line``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import GateauError


class JsonlError(GateauError, ValueError):
    """A JSONL file that cannot be read, or a line that is not JSON."""


def iter_jsonl(path: str | Path, error: Callable[[str], Exception] = JsonlError) -> Iterator[tuple[int, Any]]:
    """Yield (line number, parsed value) for each non-blank line (1-based numbers; blank lines skipped; a UTF-8
    byte-order mark at the start of the file is skipped, as editors on Windows write one).

    ``error`` builds the exception raised for an unreadable file, a line that is not UTF-8, or invalid JSON (so a
    caller can raise its own error type); the message always names ``path:line``.
    """
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc})") from exc
    with handle:
        for number, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")  # a leading BOM is read past
            except UnicodeDecodeError as exc:
                raise error(f"{path}:{number}: not UTF-8 text (byte {exc.start}: "
                            f"{raw[exc.start:exc.start + 1]!r}); is this a binary file?") from None
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise error(f"{path}:{number}: invalid JSON ({exc.msg} at column {exc.colno})") from None
