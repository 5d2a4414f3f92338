"""One signal policy for every command: SIGTERM (what Slurm and Kubernetes send) is handled like SIGINT (Ctrl-C).

`install` runs first thing in `gateau.cli.main`, before any heavy import. Both signals raise KeyboardInterrupt in
the main thread; SIGTERM goes through whatever SIGINT handler is active at that moment, so the scoring executors'
stop flag (`gateau.pipeline.progress.StopFlag`, which replaces the SIGINT handler while a run scores) sees SIGTERM
too. The command's boundary prints one line and exits with `exit_code`: 128 + the signal's number (130 for SIGINT,
143 for SIGTERM), the shell's convention. While that line is printed (`finishing`), a second signal ends the
process at once with the same code instead of a traceback.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator

_received: list[int] = []


def _on_sigint(signum: int, frame: Any) -> None:
    _received.append(signum)
    raise KeyboardInterrupt


def _on_sigterm(signum: int, frame: Any) -> None:
    _received.append(signum)
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler) and handler is not _on_sigint:
        handler(signum, frame)  # e.g. the executors' stop flag: it sets itself and raises KeyboardInterrupt
    raise KeyboardInterrupt


def install() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt (main thread only; an ignored SIGINT stays ignored)."""
    if threading.current_thread() is not threading.main_thread():
        return
    _received.clear()
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _on_sigint)
    signal.signal(signal.SIGTERM, _on_sigterm)


def exit_code() -> int:
    """The exit status for the interruption: 128 + the first signal received (130 when none was recorded)."""
    return 128 + (_received[0] if _received else signal.SIGINT)


def _exit_now(signum: int, frame: Any) -> None:
    os._exit(exit_code())


@contextmanager
def finishing() -> Iterator[None]:
    """While the interrupted command prints its last line: a further SIGINT/SIGTERM exits at once, silently."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _exit_now) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
