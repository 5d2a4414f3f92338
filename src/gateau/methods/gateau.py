"""The GATEAU score: α·Norm(HMP) + (1−α)·Norm(CAS), Norm across the dataset.

Samples whose CAS is undefined (context shorter than two segments) fall back to HMG: their CAS term is set to the
dataset mean of Norm(CAS), so only their HMG term moves them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..measure.rows import RowRequest, RowResult
from .base import BenchVariant, Measured, MeasureSettings, Method, RowKey, SampleEncoding, merge_requests, option
from .cam import CAM, CAMOptions, cas_scores
from .hmg import BENCH_NORMS, HMG, HMGOptions, hmp, inner_outer
from .normalize import NORMS, normalize
from .presets import PRESETS

BENCH_ALPHAS = (0.5, 0.7, 0.8, 0.9)
BENCH_CAM = tuple((a, s) for a in ("softmax", "sum") for s in (0, 4))  # (attn_norm, sink); importance softmax


@dataclass(frozen=True)
class GateauOptions(HMGOptions, CAMOptions):
    """HMG's and CAM's options plus the mix: ``alpha`` weighs Norm(HMP); ``cas_outer`` overrides the outer
    normalisation of CAS (the official rank script uses ``raw``)."""

    alpha: float = option(0.8, "weight of HMG in the gateau score (default 0.8; the paper: 0.8 real-world, "
                          "0.7 limited short data)")
    cas_outer: str | None = option(None, "gateau: outer normalisation of CAS (default: that of --norm)", NORMS)

    def __post_init__(self) -> None:
        HMGOptions.__post_init__(self)
        CAMOptions.__post_init__(self)
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"--alpha must be in [0, 1], got {self.alpha}")
        if self.cas_outer is not None and self.cas_outer not in NORMS:
            raise ValueError(f"unknown --cas-outer {self.cas_outer!r}; choose one of {NORMS}")


class Gateau(Method):
    name = "gateau"
    help = "GATEAU: alpha * Norm(HMP) + (1 - alpha) * Norm(CAS)"
    columns = {**HMG.columns, **CAM.columns}
    window_columns = HMG.window_columns
    Options = GateauOptions
    presets = PRESETS

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

    def score(self, table: dict[str, Any], options: GateauOptions, k: int | None = None) -> np.ndarray:
        _, outer = inner_outer(options.norm)
        t = options.temperature
        h = normalize(hmp(table, options), outer, t)
        cas = normalize(cas_scores(table, options), options.cas_outer or outer, t)
        valid = np.isfinite(cas)
        cas = np.where(valid, cas, np.nanmean(cas)) if valid.any() else np.zeros_like(cas)
        return options.alpha * h + (1.0 - options.alpha) * cas

    def components(self, table: dict[str, Any], options: GateauOptions) -> dict[str, np.ndarray]:
        return {**HMG().components(table, options), "hmp": hmp(table, options), "cas": cas_scores(table, options)}

    def notes(self, table: dict[str, Any], options: GateauOptions, score: np.ndarray, chosen: np.ndarray,
              k: int | None = None) -> list[str]:
        fallback = np.isfinite(score) & ~np.isfinite(cas_scores(table, options))
        if not fallback.any():
            return []
        return [f"cas undefined -> ranked by hmg alone: {int(fallback.sum())} samples "
                f"({int(fallback[chosen].sum())} selected)"]

    @classmethod
    def bench_variants(cls) -> list[BenchVariant]:
        default = GateauOptions()
        out = [BenchVariant(preset=p, main=True) for p in ("paper", "official")]
        for norm, t in BENCH_NORMS:
            for alpha in BENCH_ALPHAS:
                for attn_norm, sink in BENCH_CAM:
                    main = t == 1.0 and alpha == default.alpha and (attn_norm, sink) == (
                        default.attn_norm, default.attn_sink_tokens) and norm in (default.norm, "zscore")
                    out.append(BenchVariant({"norm": norm, "temperature": t, "alpha": alpha, "attn_norm": attn_norm,
                                             "attn_sink_tokens": sink}, main=main))
        return out
