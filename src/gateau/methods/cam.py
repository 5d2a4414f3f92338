"""Contextual Awareness Measurement (CAM), on the long model B.

The (left-truncated) context is cut into segments of L tokens (the last may be shorter). For each segment s_i:
- importance: PPL_B(y | s_i, x), from a row ``head + s_i + middle + response`` (all rows of a sample have the same
  length but for the last segment, so they batch without padding);
- attention: the mean, over the segment's tokens, of the attention weight the response tokens pay to that token
  (averaged over response tokens, heads and layers), measured inside B's full-context pass.
IS = Norm_i(PPL_i), Attn = Norm_i(seg_attn), CAS = cos(IS, Attn): high when attention sits on segments that do
not help (high PPL), i.e. the model is not yet aware of the right context. Stored raw: ``seg_nll`` (mean response
NLL in nats per segment row; PPL_i = exp), ``seg_attn``,
``attn_head`` (the first `ATTN_HEAD_TOKENS` context tokens' attention, so sink tokens can be left out later),
``seg_tokens`` and ``cas`` (paper normalisation). CAS is undefined (NaN, with a note) when the context has fewer
than two segments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from ..measure.rows import RowRequest, RowResult
from .base import LONG, BenchVariant, Measured, MeasureSettings, Method, RowKey, SampleEncoding, option, require
from .hmg import FULL, full_request
from .normalize import normalize, normalize_groups
from .presets import PRESETS

ATTN_HEAD_TOKENS = 16
IN_SAMPLE_NORMS = ("softmax", "sum", "minmax", "rank", "zscore")
BENCH_TEMPERATURES = (0.1, 10.0)  # extra in-sample softmax temperatures the benchmark tries for CAM alone


@dataclass(frozen=True)
class CAMOptions:
    """In-sample normalisations of CAM's two profiles, their softmax temperature, and attention sinks."""

    is_norm: str = option("softmax", "CAM: normalisation of segment importance inside a sample (default softmax)",
                          IN_SAMPLE_NORMS)
    attn_norm: str = option("softmax", "CAM: normalisation of segment attention inside a sample (default softmax)",
                            IN_SAMPLE_NORMS)
    segment_temperature: float = option(1.0, "CAM: softmax temperature inside a sample (default 1)")
    attn_sink_tokens: int = option(0, "CAM: leave the first K context tokens out of the attention profile "
                                   f"(attention sinks; default 0, at most {ATTN_HEAD_TOKENS})")

    def __post_init__(self) -> None:
        for flag, value in (("--is-norm", self.is_norm), ("--attn-norm", self.attn_norm)):
            if value not in IN_SAMPLE_NORMS:
                raise ValueError(f"unknown {flag} {value!r}; choose one of {IN_SAMPLE_NORMS}")
        if not self.segment_temperature > 0:
            raise ValueError(f"--segment-temperature must be positive, got {self.segment_temperature}")
        if not 0 <= self.attn_sink_tokens <= ATTN_HEAD_TOKENS:
            raise ValueError(f"--attn-sink-tokens must be in [0, {ATTN_HEAD_TOKENS}], got {self.attn_sink_tokens}")


def segment_key(i: int) -> RowKey:
    return RowKey(LONG, f"seg{i}")


def segment_attention(context_attn: np.ndarray, spans: list[tuple[int, int]]) -> list[float]:
    """Mean attention per segment. context_attn: (n_context,) per-token mass; spans: [start, end) token spans."""
    return [float(context_attn[s:e].mean()) for s, e in spans]


def cas_value(seg_ppl: np.ndarray, seg_attn: np.ndarray, is_norm: str = "softmax", attn_norm: str = "softmax",
              temperature: float = 1.0) -> float:
    """cos(Norm(seg_ppl), Norm(seg_attn)); NaN with fewer than two segments."""
    if len(seg_ppl) < 2:
        return float("nan")
    a = normalize(np.asarray(seg_ppl), is_norm, temperature)
    b = normalize(np.asarray(seg_attn), attn_norm, temperature)
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / denom) if denom > 0 else float("nan")


def drop_sink(seg_attn: list[float], attn_head: list[float], seg_tokens: list[int], sink: int) -> np.ndarray:
    """Segment attention with the first ``sink`` context tokens left out of segment 0's mean."""
    out = np.asarray(seg_attn, dtype=np.float64).copy()
    if sink <= 0 or len(out) == 0:
        return out
    if sink > len(attn_head):
        raise ValueError(f"--attn-sink-tokens {sink} exceeds the {len(attn_head)} head tokens stored per sample")
    n0 = seg_tokens[0]
    if sink >= n0:
        raise ValueError(f"--attn-sink-tokens {sink} would empty the first segment ({n0} tokens)")
    out[0] = (out[0] * n0 - float(np.sum(attn_head[:sink]))) / (n0 - sink)
    return out


class CAM(Method):
    name = "cam"
    columns = {
        "seg_nll": pa.list_(pa.float64()),
        "seg_attn": pa.list_(pa.float64()),
        "seg_tokens": pa.list_(pa.int64()),
        "seg_starts": pa.list_(pa.int64()),
        "attn_head": pa.list_(pa.float64()),
        "cas": pa.float64(),
    }
    help = "Contextual Awareness Measurement: cos(softmax(segment PPL), softmax(segment attention))"
    Options = CAMOptions
    presets = PRESETS

    def components(self, table: dict[str, Any], options: CAMOptions) -> dict[str, np.ndarray]:
        return {"cas": cas_scores(table, options)}

    def requests(self, enc: SampleEncoding, settings: MeasureSettings) -> dict[RowKey, RowRequest]:
        reqs = {FULL: full_request(enc, attention=True)}
        spans = settings.segments(enc.long)
        if len(spans) >= 2:
            for i, (s, e) in enumerate(spans):
                ids, start = enc.long.row(enc.long.context[s:e])
                reqs[segment_key(i)] = RowRequest(tuple(ids), start)
        return reqs

    def measure(self, enc: SampleEncoding, results: dict[RowKey, RowResult], settings: MeasureSettings) -> Measured:
        spans = settings.segments(enc.long)
        if len(spans) < 2:
            return Measured({"cas": None}, note=(
                f"cas undefined: context has {len(enc.long.context)} tokens, fewer than two full segments of "
                f"{settings.segment_len}; gateau falls back to hmg"))
        full = require(results, FULL)
        head = len(enc.long.head)
        context_attn = full.attention[head: head + len(enc.long.context)]
        seg_nll = [require(results, segment_key(i)).nll for i in range(len(spans))]
        seg_attn = segment_attention(context_attn, spans)
        return Measured({
            "seg_nll": seg_nll,
            "seg_attn": seg_attn,
            "seg_tokens": [e - s for s, e in spans],
            "seg_starts": [s for s, _ in spans],
            "attn_head": [float(v) for v in context_attn[:ATTN_HEAD_TOKENS]],
            "cas": cas_value(np.exp(seg_nll), np.asarray(seg_attn)),
        })

    def score(self, table: dict[str, Any], options: CAMOptions, k: int | None = None) -> np.ndarray:
        return cas_scores(table, options)

    @classmethod
    def bench_variants(cls) -> list[BenchVariant]:
        out = []
        for is_norm in ("softmax", "sum"):
            for attn_norm in ("softmax", "sum"):
                for sink in (0, 4):
                    paper = (is_norm, attn_norm, sink) == ("softmax", "softmax", 0)
                    out.append(BenchVariant({"is_norm": is_norm, "attn_norm": attn_norm, "attn_sink_tokens": sink},
                                            main=paper or (attn_norm, sink) == ("sum", 4),
                                            preset="paper" if paper else None))
        out.extend(BenchVariant({"segment_temperature": t}) for t in BENCH_TEMPERATURES)
        return out


def cas_scores(table: dict[str, Any], options: CAMOptions) -> np.ndarray:
    """CAS per sample recomputed from the stored segment columns with ``options``' in-sample normalisations;
    vectorised over samples (equal to `cas_value` per sample, with `drop_sink` applied)."""
    seg_nll, seg_attn = table["seg_nll"], table["seg_attn"]
    out = np.full(len(seg_nll), np.nan)
    rows = [i for i, (p, a) in enumerate(zip(seg_nll, seg_attn)) if p is not None and a is not None and len(p) >= 2]
    if not rows:
        return out
    lengths = np.array([len(seg_nll[i]) for i in rows])
    firsts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    ppl = np.exp(np.concatenate([seg_nll[i] for i in rows]).astype(np.float64))
    attn = np.concatenate([seg_attn[i] for i in rows]).astype(np.float64)
    if options.attn_sink_tokens:
        attn[firsts] = [drop_sink(seg_attn[i], table["attn_head"][i], table["seg_tokens"][i],
                                  options.attn_sink_tokens)[0] for i in rows]
    a = normalize_groups(ppl, lengths, options.is_norm, options.segment_temperature)
    b = normalize_groups(attn, lengths, options.attn_norm, options.segment_temperature)
    dot, aa, bb = (np.add.reduceat(v, firsts) for v in (a * b, a * a, b * b))
    denom = np.sqrt(aa) * np.sqrt(bb)
    out[rows] = np.where(denom > 0, dot / np.where(denom > 0, denom, 1.0), np.nan)
    return out
