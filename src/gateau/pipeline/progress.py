"""The driver's progress bar, shared by the executors: whole samples done (measured ones count while their chunk
runs), tokens/s and the ETA (tqdm's estimate over samples)."""

from __future__ import annotations

import time

from tqdm import tqdm

from ..util import interrupts


class StopFlag:
    """Set by Ctrl-C (SIGINT) while a run is scoring: the handler raises KeyboardInterrupt at once, and the flag
    stays set, so an executor also stops at the next chunk boundary if that exception was swallowed (a SIGINT
    landing in a finaliser or native callback is otherwise only printed as "Exception ignored")."""

    def __init__(self) -> None:
        self.set = False

    def check(self) -> None:
        """KeyboardInterrupt if Ctrl-C was pressed (or a signal was recorded whose KeyboardInterrupt was swallowed)."""
        interrupts.raise_if_received()
        if self.set:
            raise KeyboardInterrupt

    def __enter__(self) -> StopFlag:
        import signal
        import threading

        self._previous = None
        if threading.current_thread() is threading.main_thread():
            def handler(signum, frame):
                self.set = True
                raise KeyboardInterrupt

            self._previous = signal.signal(signal.SIGINT, handler)
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class Progress:
    """A tqdm bar over ``total`` samples, counting whole samples: `partial` adds measured fractions of the running
    chunk (shown rounded down), `chunk_done` sets the exact count when a chunk is stored."""

    def __init__(self, total: int, enabled: bool = True, desc: str = "scoring"):
        self.bar = tqdm(total=total, unit="sample", desc=desc, disable=not enabled or total == 0, dynamic_ncols=True,
                        bar_format="{l_bar}{bar}| {n}/{total} [{elapsed}<{remaining}{postfix}]")
        self.start = time.perf_counter()
        self.stored = 0
        self.measured = 0.0  # samples of the running chunk measured so far (fractions while its rows run)
        self.tokens = 0

    def partial(self, samples: float) -> None:
        """``samples`` more (a fraction of a chunk) are measured, not yet stored."""
        self.measured += samples
        shown = min(self.bar.total, self.stored + int(self.measured))
        if shown != self.bar.n:
            self.bar.update(shown - self.bar.n)

    def chunk_done(self, samples: int, tokens: int, stop: StopFlag | None = None) -> None:
        """A chunk of ``samples`` is stored; ``tokens`` more model tokens were run for it. ``stop``: raise
        KeyboardInterrupt here if Ctrl-C was pressed during the chunk."""
        if stop is not None:
            stop.check()
        self.stored += samples
        self.measured = 0.0
        self.tokens += tokens
        self.bar.n = self.stored
        elapsed = time.perf_counter() - self.start
        if self.tokens:
            self.bar.set_postfix(tok_s=f"{self.tokens / elapsed:.0f}")
        self.bar.refresh()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
