"""What a report shows: the selections and how much of each sample (light: the CLI imports it to build its parser)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import SelectConfig
from ..errors import UsageError


@dataclass(frozen=True)
class SelectionSpec:
    """One selection to report: a run directory and the select settings to rank it with."""

    run: str
    config: SelectConfig


@dataclass(frozen=True)
class ReportConfig:
    """What `gateau report` draws. ``main``: the selection the page explains; ``others``: selections compared with
    it (other runs with the same settings, or the same run with other methods or options); ``top``: how many of
    the best and of the worst ranked samples are shown in full; ``data``: the input file to read the samples' text
    from (default: the path recorded in the run); ``excerpt_chars``: response characters shown per sample."""

    main: SelectionSpec
    others: tuple[SelectionSpec, ...] = ()
    top: int = 5
    data: str | None = None
    allow_partial: bool = False
    excerpt_chars: int = 600

    def __post_init__(self) -> None:
        if self.top < 0:
            raise UsageError(f"--top must be >= 0, got {self.top}")
        if self.excerpt_chars < 1:
            raise UsageError(f"--excerpt-chars must be >= 1, got {self.excerpt_chars}")
