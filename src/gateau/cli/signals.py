"""One signal policy for every command: SIGTERM (what Slurm and Kubernetes send) is handled like SIGINT (Ctrl-C).

`install` runs first thing in `gateau.cli.main`, before any heavy import. Both signals raise KeyboardInterrupt in
the main thread; SIGTERM goes through whatever SIGINT handler is active at that moment, so the scoring executors'
stop flag (`gateau.pipeline.progress.StopFlag`, which replaces the SIGINT handler while a run scores) sees SIGTERM
too. The command's boundary prints one line and exits with `exit_code`: 128 + the signal's number (130 for SIGINT,
143 for SIGTERM), the shell's convention. While that line is printed (`finishing`), a second signal ends the
process at once with the same code instead of a traceback. Each signal is also recorded in
`gateau.util.interrupts`, so an interruption whose KeyboardInterrupt was swallowed where it landed (in a finaliser,
an extension's callback) still stops the command before it publishes an output.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator

from ..util import interrupts


def _on_sigint(signum: int, frame: Any) -> None:
    interrupts.record(signum)
    raise KeyboardInterrupt


def _on_sigterm(signum: int, frame: Any) -> None:
    interrupts.record(signum)
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler) and handler is not _on_sigint:
        handler(signum, frame)  # e.g. the executors' stop flag: it sets itself and raises KeyboardInterrupt
    raise KeyboardInterrupt


def install() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt (main thread only; an ignored SIGINT stays ignored)."""
    if threading.current_thread() is not threading.main_thread():
        return
    interrupts.clear()
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _on_sigint)
    signal.signal(signal.SIGTERM, _on_sigterm)


def exit_code() -> int:
    """The exit status for the interruption: 128 + the first signal received (130 when none was recorded)."""
    return 128 + (interrupts.first() or signal.SIGINT)


def forget_unhandled_interrupt() -> None:
    """Make the interpreter forget a KeyboardInterrupt it saw end a piece of code run through its ``PyRun_*`` C API.

    CPython remembers such an ending and, at the end of ``python -m gateau``, kills itself with SIGINT, replacing
    the exit status chosen here: a SIGTERM during the imports gave -2 (death by SIGINT) instead of 143, once in a
    few tries at 0.6 s and 1.8 s after the start. Running an empty string through ``PyRun_SimpleString`` resets
    that memory (it is cleared at the start of each such run)."""
    ctypes.pythonapi.PyRun_SimpleString(b"")


def _exit_now(signum: int, frame: Any) -> None:
    os._exit(exit_code())


@contextmanager
def finishing() -> Iterator[None]:
    """While the interrupted command prints its last line: a further SIGINT/SIGTERM exits at once, silently; the
    exit status it then returns stands (`forget_unhandled_interrupt`)."""
    forget_unhandled_interrupt()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _exit_now) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
