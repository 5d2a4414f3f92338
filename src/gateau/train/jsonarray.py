"""Stream the elements of a top-level JSON array without loading the whole file (ShareGPT V3 is 125 MB)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import GateauError

_CHUNK_CHARS = 1 << 20
_WHITESPACE = " \t\n\r"


class JSONArrayError(GateauError, ValueError):
    """The file is not a JSON array of objects (location in the message)."""


@dataclass
class StreamState:
    """Filled while streaming: ``complete`` is False when the file ended inside an element (a truncated file);
    ``elements`` counts the complete elements read."""

    elements: int = 0
    complete: bool = True


def iter_json_array(path: str | Path, state: StreamState | None = None,
                    chunk_chars: int = _CHUNK_CHARS) -> Iterator[dict]:
    """Yield each object of the JSON array in ``path``, reading ``chunk_chars`` characters at a time.

    Memory stays at about one chunk plus the largest element. A file that ends inside an element (cut short) stops
    the iteration after the last complete element and sets ``state.complete = False``; any other malformed content
    raises `JSONArrayError` with the element's index.
    """
    state = state if state is not None else StreamState()
    decoder = json.JSONDecoder()
    path = Path(path)
    try:
        handle = path.open("r", encoding="utf-8")
    except OSError as exc:
        raise JSONArrayError(f"{path}: cannot read ({exc})") from exc
    with handle:
        buf, pos, eof = "", 0, False

        def fill(min_more: int) -> bool:
            nonlocal buf, pos, eof
            more = handle.read(max(chunk_chars, min_more))
            buf, pos = buf[pos:] + more, 0
            eof = not more
            return bool(more)

        def skip_space() -> None:
            nonlocal pos
            while True:
                while pos < len(buf) and buf[pos] in _WHITESPACE:
                    pos += 1
                if pos < len(buf) or not fill(0):
                    return

        skip_space()
        if pos >= len(buf):
            raise JSONArrayError(f"{path}: the file is empty; expected a JSON array of records")
        if buf[pos] != "[":
            raise JSONArrayError(f"{path}: expected a JSON array of records, found {buf[pos]!r} first")
        pos += 1
        first = True
        while True:
            skip_space()
            if pos >= len(buf):
                state.complete = False
                return
            if buf[pos] == "]":
                return
            if not first:
                if buf[pos] != ",":
                    raise JSONArrayError(f"{path}[{state.elements}]: expected ',' or ']' between records")
                pos += 1
                skip_space()
                if pos >= len(buf):
                    state.complete = False
                    return
            while True:
                try:
                    obj, end = decoder.raw_decode(buf, pos)
                    break
                except json.JSONDecodeError as exc:
                    if eof:
                        if exc.pos >= len(buf) - 1 or "Unterminated" in exc.msg:
                            state.complete = False
                            return
                        raise JSONArrayError(f"{path}[{state.elements}]: invalid JSON ({exc.msg})") from exc
                    fill(len(buf))  # the element may continue in the next chunk; grow geometrically
            if not isinstance(obj, dict):
                raise JSONArrayError(f"{path}[{state.elements}]: a record must be a JSON object, "
                                     f"got {type(obj).__name__}")
            pos, first = end, False
            state.elements += 1
            yield obj
            if pos > chunk_chars:
                buf, pos = buf[pos:], 0
