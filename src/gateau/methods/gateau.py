"""The GATEAU score: α·Norm(HMP) + (1−α)·Norm(CAS), Norm across the dataset.

Samples whose CAS is undefined (context shorter than two segments) fall back to HMG: their CAS term is set to the
dataset mean of Norm(CAS), so only their HMG term moves them.
"""

from __future__ import annotations

import numpy as np

from ..measure.runner import RowRequest, RowResult
from .normalize import normalize
from .base import Measured, MeasureSettings, Method, RowKey, SampleEncoding, ScoreOptions
from .cam import CAM
from .hmg import HMG, inner_outer


class Gateau(Method):
    name = "gateau"
    columns = {**HMG.columns, **CAM.columns}
    help = "GATEAU: alpha * Norm(HMP) + (1 - alpha) * Norm(CAS)"

    def __init__(self) -> None:
        self.parts = (HMG(), CAM())

    def requests(self, enc: SampleEncoding, settings: MeasureSettings) -> dict[RowKey, RowRequest]:
        reqs: dict[RowKey, RowRequest] = {}
        for part in self.parts:
            reqs = merge_requests(reqs, part.requests(enc, settings))
        return reqs

    def measure(self, enc: SampleEncoding, results: dict[RowKey, RowResult], settings: MeasureSettings) -> Measured:
        merged = Measured()
        for part in self.parts:
            m = part.measure(enc, results, settings)
            merged.columns.update(m.columns)
            merged.note = "; ".join(n for n in (merged.note, m.note) if n)
        return merged

    @staticmethod
    def score(table: dict[str, np.ndarray], options: ScoreOptions) -> np.ndarray:
        _, outer = inner_outer(options.norm)
        t = options.temperature
        hmp = normalize(HMG.score(table, options), outer, t)
        cas = normalize(CAM.score(table, options), options.cas_outer or outer, t)
        valid = np.isfinite(cas)
        if valid.any():
            cas = np.where(valid, cas, np.nanmean(cas))
        else:
            cas = np.zeros_like(cas)
        return options.alpha * hmp + (1.0 - options.alpha) * cas


def merge_requests(a: dict[RowKey, RowRequest], b: dict[RowKey, RowRequest]) -> dict[RowKey, RowRequest]:
    """Union of two request maps; a row asked for with and without attention is run once, with attention."""
    out = dict(a)
    for key, req in b.items():
        if key in out and out[key].ids != req.ids:
            raise ValueError(f"two methods ask for different rows under the same key {key}")
        if key not in out or req.attention:
            out[key] = req
    return out
