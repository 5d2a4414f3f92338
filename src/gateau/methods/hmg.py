"""Homologous Models' Guidance (HMG): response PPL under a short-window model A and a long-window model B.

HMP = Norm(PPL_A) − Norm(PPL_B), Norm across the dataset (paper: softmax). High HMP: model A (without the long
context) finds the response much harder than model B (with it), so the response needs long-range context.
In window mode model A is model B restricted to the last W context tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import UsageError
from ..measure.rows import RowRequest, RowResult
from .base import (LONG, SHORT, BenchVariant, Measured, MeasureSettings, Method, RowKey, SampleEncoding, option,
                   require)
from .normalize import normalize
from .presets import PRESETS

FULL = RowKey(LONG, "full")
DATASET_NORMS = ("log-rank", "rank", "softmax", "minmax-softmax", "zscore", "raw")
# (dataset normalisation, softmax temperature) settings the benchmark compares; T only applies to a softmax.
BENCH_NORMS: tuple[tuple[str, float], ...] = (
    ("softmax", 0.1), ("softmax", 1.0), ("softmax", 10.0),
    ("minmax-softmax", 0.1), ("minmax-softmax", 1.0), ("minmax-softmax", 10.0),
    ("log-rank", 1.0), ("rank", 1.0), ("zscore", 1.0))


@dataclass(frozen=True)
class HMGOptions:
    """``norm``: Norm across the dataset; ``temperature``: its softmax temperature."""

    norm: str = option("log-rank", "normalisation across the dataset (default log-rank: HMP = log PPL_A - log PPL_B, "
                       "ranks in the gateau mix; the paper uses softmax; raw: PPL_A - PPL_B)", DATASET_NORMS)
    temperature: float = option(1.0, "softmax temperature across the dataset (default 1)")

    def __post_init__(self) -> None:
        if self.norm not in DATASET_NORMS:
            raise UsageError(f"unknown --norm {self.norm!r}; choose one of {DATASET_NORMS}")
        if not self.temperature > 0:
            raise UsageError(f"--temperature must be positive, got {self.temperature}")


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


def hmp(table: dict[str, Any], options: HMGOptions) -> np.ndarray:
    """HMP per sample: Norm(PPL_A) − Norm(PPL_B) with the inner normalisation of ``options.norm``; PPL = exp of
    the stored mean response NLL (nats/token)."""
    inner, _ = inner_outer(options.norm)
    t = options.temperature
    return normalize(np.exp(table["nll_short"]), inner, t) - normalize(np.exp(table["nll_long"]), inner, t)


class HMG(Method):
    name = "hmg"
    help = "Homologous Models' Guidance: Norm(PPL_short) - Norm(PPL_long)"
    columns = {"nll_short": pa.float64(), "nll_long": pa.float64(), "n_short_context": pa.int64()}
    window_columns = ("nll_short", "nll_long", "n_short_context")
    Options = HMGOptions
    presets = PRESETS

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
            "nll_short": require(results, short_key(settings)).nll,
            "nll_long": require(results, FULL).nll,
            "n_short_context": n_short,
        })

    def score(self, table: dict[str, Any], options: HMGOptions, k: int | None = None) -> np.ndarray:
        return hmp(table, options)

    def components(self, table: dict[str, Any], options: Any) -> dict[str, np.ndarray]:
        """The two perplexities, PPL = exp(mean NLL)."""
        return {"ppl_short": np.exp(table["nll_short"]), "ppl_long": np.exp(table["nll_long"])}

    @classmethod
    def bench_variants(cls) -> list[BenchVariant]:
        default = HMGOptions()
        out: list[BenchVariant] = []
        seen: set[tuple[str, float]] = set()
        for norm, t in BENCH_NORMS:
            key = (norm, t if norm == "softmax" else 1.0)  # HMG alone: only the inner softmax has a temperature
            if key in seen:
                continue
            seen.add(key)
            preset = {"softmax": "paper", "minmax-softmax": "official"}.get(norm) if key[1] == 1.0 else None
            out.append(BenchVariant({"norm": norm, "temperature": key[1]}, main=key[1] == 1.0 or norm == default.norm,
                                    preset=preset))
        out.append(BenchVariant({"norm": "raw"}))
        return out
