"""RULER's scoring: predictions cleaned as its evaluate.py does, then its per-sample string-match metric (0-100)."""

from __future__ import annotations

import re
from typing import Any

from .sources import task_configs


def postprocess(prediction: str | None) -> str:
    """RULER evaluate.py postprocess_pred: strip, control characters → newline, strip."""
    if prediction is None:
        return ""
    return re.sub(r"[\x00-\x1f]", "\n", prediction.strip()).strip()


def score_sample(metrics: dict[str, Any], task: str, prediction: str, outputs: list[str]) -> float:
    """One prediction's score, 0–100, by the task family's ``metric_fn_per_sample`` from RULER's ``metrics``
    table (niah/vt/cwe/fwe: share of the references found; qa: any reference)."""
    fn = metrics[task_configs()[task]["task"]]["metric_fn_per_sample"]
    return float(fn([postprocess(prediction)], [outputs])[0])
