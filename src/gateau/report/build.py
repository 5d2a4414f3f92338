"""Build the report page and write it to a file."""

from __future__ import annotations

from pathlib import Path

from ..store import RunError, RunStore
from ..util.atomic import atomic_write
from ..util.outputs import check_output_file
from .config import ReportConfig
from .gather import gather
from .render import render


def build_report(config: ReportConfig) -> str:
    """The report page for ``config`` as one HTML string."""
    return render(gather(config))


def report_inputs(config: ReportConfig) -> list[str]:
    """The data files recorded in the runs ``config`` reports on (a run whose config cannot be read is left to the
    report itself to name)."""
    paths = []
    for spec in (config.main, *config.others):
        try:
            paths.append(RunStore(spec.run).read_config()["data"]["path"])
        except (RunError, KeyError, TypeError):
            continue
    return paths


def write_report(config: ReportConfig, out: str | Path) -> int:
    """Write the report to ``out`` (complete or not at all: a temporary name, then a rename); returns its size in
    bytes. ``out`` is refused (`OutputError`) when it is the data of a run reported on, inside a run or a
    directory."""
    check_output_file(out, "--out", inputs=(config.data, *report_inputs(config)))
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    page = build_report(config).encode("utf-8")
    atomic_write(out_path, page)
    return len(page)

