"""The process's record of the SIGINT/SIGTERM it received, below every layer that writes.

gateau's handlers (`gateau.cli.signals`) raise KeyboardInterrupt wherever the main thread happens to be. When that
is inside C code that calls back into Python (a finaliser, a callback of an extension module), the exception can be
swallowed there ("Exception ignored in ..."), and the command would go on as if nothing had happened. So the
handlers also record the signal here, and the places that must not go on after an interruption ask: an atomic
write does not publish its file (`gateau.util.atomic`), a scoring run stops at its next chunk
(`gateau.pipeline.progress.StopFlag`) and the command's boundary ends with the interrupted line (`gateau.cli`).
"""

from __future__ import annotations

_received: list[int] = []


def record(signum: int) -> None:
    """Note that signal ``signum`` arrived (called from a signal handler)."""
    _received.append(signum)


def clear() -> None:
    """Forget earlier signals (a new command starts)."""
    _received.clear()


def first() -> int | None:
    """The first signal received since `clear`, or None."""
    return _received[0] if _received else None


def raise_if_received() -> None:
    """KeyboardInterrupt if a signal arrived, even one whose KeyboardInterrupt was swallowed where it landed."""
    if _received:
        raise KeyboardInterrupt
