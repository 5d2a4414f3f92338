"""The driver's progress bar, shared by the executors: samples done (fractions while a chunk runs), tokens/s and
the ETA (tqdm's estimate over samples)."""

from __future__ import annotations

import time

from tqdm import tqdm


class Progress:
    """A tqdm bar over ``total`` samples; `chunk_done` sets the exact count when a chunk is stored."""

    def __init__(self, total: int, enabled: bool = True, desc: str = "scoring"):
        self.bar = tqdm(total=total, unit="sample", desc=desc, disable=not enabled or total == 0, dynamic_ncols=True,
                        bar_format="{l_bar}{bar}| {n:.1f}/{total} [{elapsed}<{remaining}{postfix}]")
        self.start = time.perf_counter()
        self.stored = 0
        self.tokens = 0

    def partial(self, samples: float) -> None:
        """``samples`` more (a fraction of a chunk) are measured, not yet stored."""
        self.bar.update(samples)

    def chunk_done(self, samples: int, tokens: int) -> None:
        """A chunk of ``samples`` is stored; ``tokens`` more model tokens were run for it."""
        self.stored += samples
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
