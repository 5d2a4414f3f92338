"""gateau: select influential samples of long-context SFT data (GATEAU, arXiv 2410.15633).

Python API (the CLI is a thin map onto the same objects)::

    import gateau
    from gateau.config import ScoreConfig, SelectConfig

    summary = gateau.score(ScoreConfig.from_flat("data.jsonl", out="run", methods="gateau"))
    selection = gateau.select("run", SelectConfig(method="gateau", ratio=0.3))
    gateau.export(selection, "run", "selected.jsonl")

Importing this package is light: torch is loaded only by `score`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .config import ScoreConfig, SelectConfig
    from .pipeline.run import ScoreSummary
    from .select.choose import Selection


def score(config: ScoreConfig) -> ScoreSummary:
    """Measure ``config.data`` into the run directory ``config.out`` (resumable); see `gateau.pipeline.run`."""
    from .pipeline.run import run_score

    return run_score(config)


def select(run: str, config: SelectConfig, allow_partial: bool = False) -> Selection:
    """Rank a scored run and keep the top ratio/count (no model, no torch); see `gateau.select.choose`."""
    from .select.choose import select as choose

    return choose(run, config, allow_partial=allow_partial)


def export(selection: Selection, run: str, out: str, data: str | None = None) -> int:
    """Write the selected records (checked against the scored data) to a JSONL file; returns the count."""
    from .select.choose import export_jsonl

    return export_jsonl(selection, run, out, data=data)
