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

Calibration (beyond the paper; DESIGN §3 "Attention sinks and recency"): the raw profile mostly measures position
(the first tokens are a sink, the last segment gets a recency bump). With ``gateau score --calibrate-attention``
one more attention row per sample, ``head + context + middle + neutral`` with a content-free response in the
response's place, stores that response's profile over the same segments (``seg_attn_neutral``,
``attn_head_neutral``); ``--attn-calibration divide|subtract`` then uses seg_attn / seg_attn_neutral or
seg_attn − seg_attn_neutral as the attention profile (in the spirit of "Found in the Middle": the part of the
attention that the response adds beyond what any answer at that place would pay).

Cascade (`gateau score --cam-top F`, `gateau.pipeline.cascade`): CAM's segment rows run only on the top fraction F
of samples by HMG. Its ``hmg`` phase runs the full row with the attention probe for every sample (the attention
profile is measured there, once, in HMG's full pass), its ``cam`` phase only the segment rows (and the neutral
row) of the top samples. Such runs store ``cam_cascade`` per sample: ``top`` (CAM measured), ``rest`` (outside
the top F: no segment NLLs and no CAS, ranked by HMG below every ``top`` sample by `gateau`, unranked by ``cam``)
or ``pending`` (HMG and the attention profile measured, the run stopped before its CAM phase).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import UsageError
from ..measure.rows import RowRequest, RowResult
from .base import LONG, BenchVariant, Measured, MeasureSettings, Method, RowKey, SampleEncoding, option, require
from .hmg import FULL, full_request
from .normalize import normalize, normalize_groups
from .presets import PRESETS

ATTN_HEAD_TOKENS = 16
IN_SAMPLE_NORMS = ("softmax", "sum", "minmax", "rank", "zscore")
CALIBRATIONS = ("none", "divide", "subtract")
CASCADE_COLUMN = "cam_cascade"  # per sample in a cascaded run: "top", "rest" or "pending" (see the docstring)
CASCADE_TOP, CASCADE_REST, CASCADE_PENDING = "top", "rest", "pending"
SEGMENT_PHASE_COLUMNS = ("seg_nll", "seg_attn_neutral", "attn_head_neutral")  # what a cascade's cam phase measures
NEUTRAL = RowKey(LONG, "neutral")  # the content-free response's attention row (only with --calibrate-attention)
BENCH_TEMPERATURES = (0.1, 10.0)  # extra in-sample softmax temperatures the benchmark tries for CAM alone
BENCH_CALIBRATED = (("divide", "softmax"), ("divide", "sum"), ("divide", "zscore"), ("subtract", "softmax"),
                    ("subtract", "zscore"), ("subtract", "minmax"))  # (attn_calibration, attn_norm), IS softmax


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
    attn_calibration: str = option("none", "CAM: calibrate the attention profile by a content-free response's "
                                   "profile on the same context (measured with `gateau score --calibrate-attention`): "
                                   "divide (ratio) or subtract (difference); default none (the paper)", CALIBRATIONS)

    def __post_init__(self) -> None:
        if self.attn_calibration not in CALIBRATIONS:
            raise UsageError(f"unknown --attn-calibration {self.attn_calibration!r}; choose one of {CALIBRATIONS}")
        if self.attn_calibration == "subtract" and self.attn_norm == "sum":
            raise UsageError("--attn-calibration subtract gives negative values, which --attn-norm sum cannot "
                             "normalise; use softmax, minmax, rank or zscore")
        for flag, value in (("--is-norm", self.is_norm), ("--attn-norm", self.attn_norm)):
            if value not in IN_SAMPLE_NORMS:
                raise UsageError(f"unknown {flag} {value!r}; choose one of {IN_SAMPLE_NORMS}")
        if not self.segment_temperature > 0:
            raise UsageError(f"--segment-temperature must be positive, got {self.segment_temperature}")
        if not 0 <= self.attn_sink_tokens <= ATTN_HEAD_TOKENS:
            raise UsageError(f"--attn-sink-tokens must be in [0, {ATTN_HEAD_TOKENS}], got {self.attn_sink_tokens}")


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
        raise UsageError(f"--attn-sink-tokens {sink} exceeds the {len(attn_head)} head tokens stored per sample")
    n0 = seg_tokens[0]
    if sink >= n0:
        raise UsageError(f"--attn-sink-tokens {sink} would empty the first segment ({n0} tokens)")
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
        "seg_attn_neutral": pa.list_(pa.float64()),
        "attn_head_neutral": pa.list_(pa.float64()),
    }
    help = "Contextual Awareness Measurement: cos(softmax(segment PPL), softmax(segment attention))"
    Options = CAMOptions
    presets = PRESETS

    def components(self, table: dict[str, Any], options: CAMOptions) -> dict[str, np.ndarray]:
        return {"cas": cas_scores(table, options)}

    def extra_columns(self, settings: MeasureSettings) -> dict[str, pa.DataType]:
        return {CASCADE_COLUMN: pa.string()} if settings.cam_top < 1 else {}

    def notes(self, table: dict[str, Any], options: CAMOptions, score: np.ndarray, chosen: np.ndarray,
              k: int | None = None) -> list[str]:
        return cascade_notes(table, ranked=False)

    def requests(self, enc: SampleEncoding, settings: MeasureSettings) -> dict[RowKey, RowRequest]:
        """The full row with the attention probe (not in a cascade's ``cam`` phase: phase 1 ran it) and, with two
        segments or more, the segment rows and the optional neutral row (not in the ``hmg`` phase)."""
        reqs = {} if settings.cascade_phase == "cam" else {FULL: full_request(enc, attention=True)}
        spans = settings.segments(enc.long)
        if len(spans) < 2 or settings.cascade_phase == "hmg":
            return reqs
        for i, (s, e) in enumerate(spans):
            ids, start = enc.long.row(enc.long.context[s:e])
            reqs[segment_key(i)] = RowRequest(tuple(ids), start)
        if enc.neutral is not None:
            ids, start = replace(enc.long, response=enc.neutral).row()
            reqs[NEUTRAL] = RowRequest(tuple(ids), start, attention=True)
        return reqs

    def measure(self, enc: SampleEncoding, results: dict[RowKey, RowResult], settings: MeasureSettings) -> Measured:
        """All of CAM's columns; in a cascade's ``hmg`` phase only the attention profile (from the full row, marked
        ``pending``), in its ``cam`` phase only the segment rows' columns (`SEGMENT_PHASE_COLUMNS`: the cascade
        completes the stored row with them, `gateau.pipeline.cascade.complete_row`)."""
        spans = settings.segments(enc.long)
        if len(spans) < 2:
            if settings.cascade_phase == "cam":
                return Measured()  # phase 1 stored the undefined cas and its note
            measured = Measured({"cas": None}, note=(
                f"cas undefined: context has {len(enc.long.context)} tokens, fewer than two full segments of "
                f"{settings.segment_len}; gateau falls back to hmg"))
        elif settings.cascade_phase == "cam":
            return self._segment_columns(enc, results, settings, spans)
        else:
            measured = Measured(self._attention_columns(enc, results, spans))
            if settings.cascade_phase is None:
                segments = self._segment_columns(enc, results, settings, spans)
                measured.columns.update(segments.columns)
                measured.columns["cas"] = cas_value(np.exp(segments.columns["seg_nll"]),
                                                    np.asarray(measured.columns["seg_attn"]))
                measured.note = segments.note
        if settings.cascade_phase == "hmg":
            measured.columns[CASCADE_COLUMN] = CASCADE_PENDING
        return measured

    @staticmethod
    def _attention_columns(enc: SampleEncoding, results: dict[RowKey, RowResult],
                           spans: list[tuple[int, int]]) -> dict[str, Any]:
        """The response's attention profile over the segments, from the full row's probe."""
        head = len(enc.long.head)
        context_attn = require(results, FULL).attention[head: head + len(enc.long.context)]
        return {"seg_attn": segment_attention(context_attn, spans), "seg_tokens": [e - s for s, e in spans],
                "seg_starts": [s for s, _ in spans], "attn_head": [float(v) for v in context_attn[:ATTN_HEAD_TOKENS]]}

    @staticmethod
    def _segment_columns(enc: SampleEncoding, results: dict[RowKey, RowResult], settings: MeasureSettings,
                         spans: list[tuple[int, int]]) -> Measured:
        """The segment rows' NLLs and the neutral response's profile (`SEGMENT_PHASE_COLUMNS`)."""
        head = len(enc.long.head)
        seg_nll = [require(results, segment_key(i)).nll for i in range(len(spans))]
        neutral, note = None, ""
        if NEUTRAL in results:
            neutral = require(results, NEUTRAL).attention[head: head + len(enc.long.context)]
        elif settings.neutral_response is not None:
            note = "attention calibration undefined: the neutral response cannot be encoded for this sample"
        return Measured({
            "seg_nll": seg_nll,
            "seg_attn_neutral": None if neutral is None else segment_attention(neutral, spans),
            "attn_head_neutral": None if neutral is None else [float(v) for v in neutral[:ATTN_HEAD_TOKENS]],
        }, note=note)

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
        for calibration, attn_norm in BENCH_CALIBRATED:
            out.append(BenchVariant({"attn_norm": attn_norm, "attn_calibration": calibration},
                                    main=(calibration, attn_norm) in (("divide", "sum"), ("subtract", "zscore")),
                                    requires=("seg_attn_neutral",)))
        return out


def phase_methods(methods: list[Method], settings: MeasureSettings) -> list[Method]:
    """The methods whose rows a run measures: all of ``methods``, except in a cascade's ``cam`` phase, which measures
    CAM's segment rows alone (the other methods' rows were stored in its ``hmg`` phase)."""
    return [CAM()] if settings.cascade_phase == "cam" else methods


def cascade_tiers(table: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(rest, pending): (n,) bool masks of a cascaded run's samples outside CAM's top F and of those whose CAM phase
    has not run yet; all False for a run without a cascade."""
    marks = table.get(CASCADE_COLUMN)
    if marks is None:
        n = len(table["status"])
        return np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    return (np.array([m == CASCADE_REST for m in marks], dtype=bool),
            np.array([m == CASCADE_PENDING for m in marks], dtype=bool))


def cascade_notes(table: dict[str, Any], ranked: bool) -> list[str]:
    """Summary lines about a cascaded run's samples that CAM did not measure (``ranked``: the method ranks them by
    HMG below the measured ones; else they are unranked)."""
    rest, pending = cascade_tiers(table)
    lines = []
    if rest.any():
        how = "ranked by hmg below every cam-measured sample" if ranked else "unranked"
        lines.append(f"cascade: {int(rest.sum())} samples outside cam's top fraction by hmg (--cam-top) -> {how}")
    if pending.any():
        lines.append(f"cascade unfinished: {int(pending.sum())} samples await cam -> unranked; finish the run with "
                     "the same `gateau score` command")
    return lines


def cas_scores(table: dict[str, Any], options: CAMOptions) -> np.ndarray:
    """CAS per sample recomputed from the stored segment columns with ``options``' in-sample normalisations;
    vectorised over samples (equal to `cas_value` per sample, with `drop_sink` applied to the profile and, under
    ``attn_calibration``, to the neutral profile it is divided by or reduced by). Samples without a neutral
    profile get NaN under calibration; ValueError when no sample of the table has one."""
    seg_nll, seg_attn = table["seg_nll"], table["seg_attn"]
    out = np.full(len(seg_nll), np.nan)
    rows = [i for i, (p, a) in enumerate(zip(seg_nll, seg_attn)) if p is not None and a is not None and len(p) >= 2]
    calibrate = options.attn_calibration != "none"
    if calibrate:
        neutral = table.get("seg_attn_neutral")
        if neutral is None or all(v is None for v in neutral):
            raise UsageError("--attn-calibration needs the neutral response's attention profile, which this run did "
                             "not measure; score it again with `gateau score --calibrate-attention`")
        rows = [i for i in rows if neutral[i] is not None and min(neutral[i]) > 0]
    if not rows:
        return out
    lengths = np.array([len(seg_nll[i]) for i in rows])
    firsts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    ppl = np.exp(np.concatenate([seg_nll[i] for i in rows]).astype(np.float64))
    attn = _profile(table, "seg_attn", "attn_head", rows, firsts, options.attn_sink_tokens)
    if calibrate:
        base = _profile(table, "seg_attn_neutral", "attn_head_neutral", rows, firsts, options.attn_sink_tokens)
        attn = attn / base if options.attn_calibration == "divide" else attn - base
    a = normalize_groups(ppl, lengths, options.is_norm, options.segment_temperature)
    b = normalize_groups(attn, lengths, options.attn_norm, options.segment_temperature)
    dot, aa, bb = (np.add.reduceat(v, firsts) for v in (a * b, a * a, b * b))
    denom = np.sqrt(aa) * np.sqrt(bb)
    out[rows] = np.where(denom > 0, dot / np.where(denom > 0, denom, 1.0), np.nan)
    return out


def _profile(table: dict[str, Any], column: str, head_column: str, rows: list[int], firsts: np.ndarray,
             sink: int) -> np.ndarray:
    """The segment attention of ``rows`` from ``column``, flat (sum of segments,), with the first ``sink`` context
    tokens (from ``head_column``) left out of each sample's first segment (`drop_sink`)."""
    values = table[column]
    flat = np.concatenate([values[i] for i in rows]).astype(np.float64)
    if sink:
        flat[firsts] = [drop_sink(values[i], table[head_column][i], table["seg_tokens"][i], sink)[0] for i in rows]
    return flat
