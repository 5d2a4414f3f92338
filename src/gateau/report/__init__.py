"""`gateau report`: one self-contained HTML page that explains a scored run and a selection of it.

`config` says what to report (`ReportConfig`), `gather` collects what the page shows (torch-free, from the run
directory and `gateau.select`), `figures` draws it with matplotlib, `render` writes the HTML (every run and record
text escaped), `build` writes the file, `cli` adds the command. The headless-Chromium page check used by the tests
lives in `tests/browser.py`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Public names -> the submodule that defines them; imported on first use, so that `gateau.report.config` (which
# the `gateau` parser imports) stays light.
_EXPORTS = {"ReportConfig": "config", "ReportData": "gather", "SelectionSpec": "config", "gather": "gather",
            "render": "render", "build_report": "build", "write_report": "build"}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)


__all__ = ["ReportConfig", "ReportData", "SelectionSpec", "build_report", "gather", "render", "write_report"]
