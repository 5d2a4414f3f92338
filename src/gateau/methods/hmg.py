"""Homologous Models' Guidance (HMG): response PPL under a short-window model A and a long-window model B.

HMP = Norm(PPL_A) − Norm(PPL_B), Norm across the dataset (paper: softmax). High HMP: model A (without the long
context) finds the response much harder than model B (with it), so the response needs long-range context.
In window mode model A is model B restricted to the last W context tokens.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..measure.runner import RowRequest, RowResult
from .normalize import normalize
from .base import (LONG, SHORT, Measured, MeasureSettings, Method, RowKey, SampleEncoding, ScoreOptions, nll_to_ppl,
                   require)

FULL = RowKey(LONG, "full")


def full_request(enc: SampleEncoding, attention: bool = False) -> RowRequest:
    """Model B's pass over the whole (left-truncated) sample; shared by HMG, PPL, IFD and CAM."""
    ids, start = enc.long.row()
    return RowRequest(tuple(ids), start, attention)


def short_key(settings: MeasureSettings) -> RowKey:
    if settings.short_window is None:
        return RowKey(SHORT, "full")
    return RowKey(LONG, f"window{settings.short_window}")


def inner_outer(norm: str) -> tuple[str, str]:
    """The (inner, outer) normalisations a --norm name stands for: ``minmax-softmax`` = min-max each PPL list,
    then softmax of the difference (official code); ``log-rank`` = HMP = log PPL_A − log PPL_B (the mean per-token
    log-likelihood gain from the long context, in nats), ranks in the gateau mix; the other names use the same
    normalisation at both levels."""
    if norm == "minmax-softmax":
        return "minmax", "softmax"
    if norm == "log-rank":
        return "log", "rank"
    return norm, norm


class HMG(Method):
    name = "hmg"
    columns = {"ppl_short": pa.float64(), "ppl_long": pa.float64(), "n_short_context": pa.int64()}
    help = "Homologous Models' Guidance: Norm(PPL_short) - Norm(PPL_long)"

    def requests(self, enc: SampleEncoding, settings: MeasureSettings) -> dict[RowKey, RowRequest]:
        if settings.short_window is not None:
            ids, start = enc.long.window_row(settings.short_window)
        else:
            ids, start = enc.short.row()
        return {FULL: full_request(enc), short_key(settings): RowRequest(tuple(ids), start)}

    def measure(self, enc: SampleEncoding, results: dict[RowKey, RowResult], settings: MeasureSettings) -> Measured:
        if settings.short_window is None:
            n_short = len(enc.short.context)
        else:
            n_short = min(settings.short_window, len(enc.long.context))
        return Measured({
            "ppl_short": nll_to_ppl(require(results, short_key(settings)).nll),
            "ppl_long": nll_to_ppl(require(results, FULL).nll),
            "n_short_context": n_short,
        })

    @staticmethod
    def score(table: dict[str, np.ndarray], options: ScoreOptions) -> np.ndarray:
        inner, _ = inner_outer(options.norm)
        t = options.temperature
        return normalize(table["ppl_short"], inner, t) - normalize(table["ppl_long"], inner, t)
