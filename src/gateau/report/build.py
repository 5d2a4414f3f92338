"""Build the report page and write it to a file."""

from __future__ import annotations

from pathlib import Path

from ..util.atomic import atomic_write
from .config import ReportConfig
from .gather import gather
from .render import render


def build_report(config: ReportConfig) -> str:
    """The report page for ``config`` as one HTML string."""
    return render(gather(config))


def write_report(config: ReportConfig, out: str | Path) -> int:
    """Write the report to ``out`` (complete or not at all: a temporary name, then a rename); returns its size in
    bytes."""
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    page = build_report(config).encode("utf-8")
    atomic_write(out_path, page)
    return len(page)

