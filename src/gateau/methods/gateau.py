"""The GATEAU score: α·Norm(HMP) + (1−α)·Norm(CAS), Norm across the dataset.

Samples whose CAS is undefined (context shorter than two segments) fall back to HMG: their CAS term is set to the
dataset mean of Norm(CAS), so only their HMG term moves them.

A cascaded run (`gateau score --cam-top F`) measured CAM only on the top fraction F of samples by HMG: the samples
outside it rank by their HMG term below every sample CAM measured (CAS cannot lift them; with α = 0.8 and rank
normalisation it could not have lifted a sample by more than (1 − α)/α = 0.25 of the ranking anyway, see the
README's cascade section), and samples still awaiting their CAM phase are unranked.

Beyond the paper, the HMG term can mix in a token-level aggregate of the long-context gain (`hmg_tokens`):
H = (1 − w)·Norm(HMP) + w·Norm(token aggregate), w = ``token_weight`` (0 in the paper and the presets). Samples
without per-token gains keep H = Norm(HMP). CAM's options include the calibrated attention profile
(``attn_calibration``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UsageError
from ..measure.rows import RowRequest, RowResult
from .base import BenchVariant, Measured, MeasureSettings, Method, RowKey, SampleEncoding, merge_requests, option
from .cam import CAM, CAMOptions, cas_scores, cascade_notes, cascade_tiers
from .hmg import BENCH_NORMS, HMG, HMGOptions, hmp, inner_outer
from .hmg_tokens import TOKEN_COLUMNS, HMGTokens, TokenOptions, token_rows, token_scores
from .normalize import NORMS, normalize
from .presets import PRESETS

BENCH_ALPHAS = (0.5, 0.7, 0.8, 0.9)
BENCH_CAM = tuple((a, s) for a in ("softmax", "sum") for s in (0, 4))  # (attn_norm, sink); importance softmax
# The token / calibration grid (norm log-rank): α × token aggregate × token weight × CAM profile.
BENCH_TOKEN_ALPHAS = (0.5, 0.7, 0.8, 0.9, 1.0)
BENCH_TOKEN_AGGREGATES = (("topk", 10), ("topk", 5), ("key-share", 10), ("key-gain", 10), ("positive-sum", 10))
BENCH_TOKEN_WEIGHTS = (0.5, 1.0)
BENCH_PROFILES = (("softmax", 0, "none"), ("sum", 4, "none"), ("sum", 0, "divide"), ("zscore", 0, "subtract"),
                  ("softmax", 0, "divide"))  # (attn_norm, sink, attn_calibration)


@dataclass(frozen=True)
class GateauOptions(HMGOptions, CAMOptions, TokenOptions):
    """HMG's, CAM's and hmg-tokens' options plus the mix: ``alpha`` weighs the HMG term; ``cas_outer`` overrides
    the outer normalisation of CAS (the official rank script uses ``raw``); ``token_weight`` mixes the token
    aggregate into the HMG term."""

    alpha: float = option(0.8, "weight of HMG in the gateau score (default 0.8; the paper: 0.8 real-world, "
                          "0.7 limited short data)")
    cas_outer: str | None = option(None, "gateau: outer normalisation of CAS (default: that of --norm)", NORMS)
    token_weight: float = option(0.0, "gateau: weight w of the token-level gain (--token-aggregate) in the HMG term: "
                                 "(1 - w) Norm(HMP) + w Norm(tokens) (default 0: the paper's HMP)")

    def __post_init__(self) -> None:
        HMGOptions.__post_init__(self)
        CAMOptions.__post_init__(self)
        TokenOptions.__post_init__(self)
        if not 0.0 <= self.token_weight <= 1.0:
            raise UsageError(f"--token-weight must be in [0, 1], got {self.token_weight}")
        if not 0.0 <= self.alpha <= 1.0:
            raise UsageError(f"--alpha must be in [0, 1], got {self.alpha}")
        if self.cas_outer is not None and self.cas_outer not in NORMS:
            raise UsageError(f"unknown --cas-outer {self.cas_outer!r}; choose one of {NORMS}")


class Gateau(Method):
    name = "gateau"
    help = "GATEAU: alpha * Norm(HMP) + (1 - alpha) * Norm(CAS)"
    columns = {**HMG.columns, **CAM.columns, **TOKEN_COLUMNS}
    window_columns = (*HMG.window_columns, *TOKEN_COLUMNS)
    Options = GateauOptions
    presets = PRESETS

    def __init__(self) -> None:
        self.parts = (HMGTokens(), CAM())  # HMG's columns and the per-token NLLs (same rows), then CAM's

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

    def required_columns(self, options: GateauOptions) -> tuple[str, ...]:
        """HMG's and CAM's columns; the per-token NLLs only when ``token_weight`` > 0 mixes them in, so a run scored
        with ``--methods hmg,cam`` (the paper's two components) ranks by gateau at the default weight 0."""
        return tuple(c for c in self.columns if options.token_weight > 0 or c not in TOKEN_COLUMNS)

    def extra_columns(self, settings: MeasureSettings) -> dict[str, Any]:
        return self.parts[1].extra_columns(settings)

    def score(self, table: dict[str, Any], options: GateauOptions, k: int | None = None) -> np.ndarray:
        _, outer = inner_outer(options.norm)
        t = options.temperature
        h = hmg_term(table, options, outer)
        cas = normalize(cas_scores(table, options), options.cas_outer or outer, t)
        valid = np.isfinite(cas)
        cas = np.where(valid, cas, np.nanmean(cas)) if valid.any() else np.zeros_like(cas)
        score = options.alpha * h + (1.0 - options.alpha) * cas
        rest, pending = cascade_tiers(table)
        score[pending] = np.nan
        return below_measured(score, h, rest) if rest.any() else score

    def components(self, table: dict[str, Any], options: GateauOptions) -> dict[str, np.ndarray]:
        out = {**HMG().components(table, options), "hmp": hmp(table, options), "cas": cas_scores(table, options)}
        if options.token_weight > 0:
            out["tokens"] = token_scores(table, options)
        return out

    def notes(self, table: dict[str, Any], options: GateauOptions, score: np.ndarray, chosen: np.ndarray,
              k: int | None = None) -> list[str]:
        lines = cascade_notes(table, ranked=True)
        rest, _ = cascade_tiers(table)
        fallback = np.isfinite(score) & ~np.isfinite(cas_scores(table, options)) & ~rest
        if fallback.any():
            lines.append(f"cas undefined -> ranked by hmg alone: {int(fallback.sum())} samples "
                         f"({int(fallback[chosen].sum())} selected)")
        if options.token_weight > 0:
            no_tokens = np.isfinite(score) & ~token_rows(table)
            if no_tokens.any():
                lines.append(f"token gains undefined -> hmg term is Norm(HMP) alone: {int(no_tokens.sum())} samples "
                             f"({int(no_tokens[chosen].sum())} selected)")
        return lines

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
        return out + cls._token_variants()

    @classmethod
    def _token_variants(cls) -> list[BenchVariant]:
        """log-rank × α × (no tokens | token aggregate × weight) × attention profile (raw, sink-free, calibrated);
        variants with a calibrated profile need the neutral profile (`gateau score --calibrate-attention`)."""
        default = GateauOptions()
        tokens = [(None, 10, 0.0)] + [(agg, k, w) for agg, k in BENCH_TOKEN_AGGREGATES for w in BENCH_TOKEN_WEIGHTS]
        out = []
        for alpha in BENCH_TOKEN_ALPHAS:
            for agg, k, w in tokens:
                for attn_norm, sink, calibration in BENCH_PROFILES:
                    if agg is None and calibration == "none":
                        continue  # already in the grid above
                    settings: dict[str, Any] = {"norm": "log-rank", "alpha": alpha, "attn_norm": attn_norm,
                                                "attn_sink_tokens": sink, "attn_calibration": calibration}
                    if agg is not None:
                        settings.update(token_aggregate=agg, top_k=k, token_weight=w)
                    raw_profile = (attn_norm, sink, calibration) == (default.attn_norm, default.attn_sink_tokens,
                                                                     default.attn_calibration)
                    main = alpha == default.alpha and (
                        (agg is None and (attn_norm, calibration) in (("sum", "divide"), ("zscore", "subtract")))
                        or (agg in ("topk", "key-share") and k == default.top_k and raw_profile))
                    needs = ("seg_attn_neutral",) if calibration != "none" else ()
                    out.append(BenchVariant(settings, main=main, requires=needs))
        return out


def below_measured(score: np.ndarray, h: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """``score`` with the ``rest`` rows (outside a cascade's CAM) moved below every other finite score, ordered among
    themselves by their HMG term ``h``: score_rest = min(score_measured) − 1 − (max(h_rest) − h_rest)."""
    out = score.copy()
    measured = np.isfinite(score) & ~rest
    floor = np.min(score[measured]) if measured.any() else 0.0
    h_rest = np.where(rest, h, np.nan)
    top = np.nanmax(h_rest) if np.isfinite(h_rest).any() else 0.0
    out[rest] = floor - 1.0 - (top - h[rest])
    return out


def hmg_term(table: dict[str, Any], options: GateauOptions, outer: str) -> np.ndarray:
    """The HMG term of the mix: Norm(HMP), or (1 − w)·Norm(HMP) + w·Norm(token aggregate) with w =
    ``token_weight`` > 0 (rows without per-token gains keep Norm(HMP)); Norm = ``outer`` across the dataset."""
    t = options.temperature
    h = normalize(hmp(table, options), outer, t)
    if options.token_weight == 0:
        return h
    tok = normalize(token_scores(table, options), outer, t)
    return np.where(np.isfinite(tok), (1.0 - options.token_weight) * h + options.token_weight * tok, h)
