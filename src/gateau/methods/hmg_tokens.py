"""Token-level HMG: aggregate the per-token long-context gain instead of averaging it.

HMG compares mean response NLLs, so a short answer that needs a far fact, wrapped in template words that need
nothing ("According to the passages, the answer is ..."), is diluted by the words around it. Here the two passes
HMG already runs (model A: short window or short model; model B: full context) also store the NLL of every
response token (``tok_nll_short``, ``tok_nll_long``: float32 lists, nats, one forward each, shared with HMG), and
the score aggregates the per-token gain

    gain_t = log p_B(y_t | c, x, y_<t) − log p_A(y_t | window, x, y_<t) = tok_nll_short[t] − tok_nll_long[t]

at select time (no model). Aggregations (``--token-aggregate``):

- ``topk``: mean gain of the ``--top-k`` tokens with the largest gain (all tokens when the response is shorter);
- ``key-share``: share of *key tokens*, LongPPL's rule (Fang et al., ICLR 2025, ``PKU-ML/LongPPL``): gain >
  ``--key-gain`` and log p_B > ``--key-logp`` (LongPPL's defaults 2 and −2: the long context makes the token much
  more likely, and the long model predicts it well);
- ``key-count``: number of key tokens; ``key-gain``: sum of the key tokens' gains (nats);
- ``positive-sum``: sum of the positive gains (nats);
- ``mean``: the mean gain = nll_short − nll_long (HMG's ``log-rank`` HMP; a check, not a new signal).

The same gains give LongCE's token weights for training (`longce_weights`). When the two models tokenise the
response differently (pair mode, two tokenizers) per-token gains are undefined: ``tok_nll_short`` is stored empty
(None) with a note and the score is NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import UsageError
from ..measure.rows import RowResult
from .base import BenchVariant, Measured, MeasureSettings, SampleEncoding, option, require
from .hmg import FULL, HMG, short_key

TOKEN_AGGREGATES = ("topk", "key-share", "key-count", "key-gain", "positive-sum", "mean")
TOKEN_COLUMNS: dict[str, pa.DataType] = {"tok_nll_long": pa.list_(pa.float32()),
                                         "tok_nll_short": pa.list_(pa.float32())}
LONGCE_CAP = 5.0  # LongCE's cap on a token weight exp(gain)
# (aggregate, top_k, key_gain, key_logp) settings the benchmark compares; the first of each aggregate is its main.
BENCH_TOKENS: tuple[tuple[str, int, float, float], ...] = (
    ("topk", 10, 2.0, -2.0), ("topk", 1, 2.0, -2.0), ("topk", 3, 2.0, -2.0), ("topk", 5, 2.0, -2.0),
    ("key-share", 5, 2.0, -2.0), ("key-share", 5, 1.0, -2.0), ("key-share", 5, 2.0, -4.0),
    ("key-count", 5, 2.0, -2.0), ("key-gain", 5, 2.0, -2.0), ("key-gain", 5, 1.0, -4.0),
    ("positive-sum", 5, 2.0, -2.0), ("mean", 5, 2.0, -2.0))


@dataclass(frozen=True)
class TokenOptions:
    """How per-token gains become one number per sample (see the module docstring)."""

    token_aggregate: str = option("topk", "hmg-tokens: aggregation of the per-token gain log p_long - log p_short "
                                  "(default topk)", TOKEN_AGGREGATES)
    top_k: int = option(10, "hmg-tokens: tokens averaged by --token-aggregate topk (default 10; all of them in a "
                        "shorter response)")
    key_gain: float = option(2.0, "hmg-tokens: a key token's gain must exceed this, in nats (LongPPL: 2)")
    key_logp: float = option(-2.0, "hmg-tokens: a key token's log p_long must exceed this, in nats (LongPPL: -2)")

    def __post_init__(self) -> None:
        if self.token_aggregate not in TOKEN_AGGREGATES:
            raise UsageError(f"unknown --token-aggregate {self.token_aggregate!r}; choose one of {TOKEN_AGGREGATES}")
        if not self.top_k >= 1:
            raise UsageError(f"--top-k must be at least 1, got {self.top_k}")


@dataclass
class TokenGains:
    """The per-token gains of the rows that have them, flat. ``rows``: (m,) row positions; ``lengths``: (m,)
    response tokens per row; ``gain`` and ``logp_long``: (sum(lengths),) float64 nats, row after row."""

    rows: np.ndarray
    lengths: np.ndarray
    gain: np.ndarray
    logp_long: np.ndarray

    @property
    def group(self) -> np.ndarray:
        """(sum(lengths),) the index (into ``rows``) of the row each token belongs to."""
        return np.repeat(np.arange(len(self.rows)), self.lengths)


def token_gains(table: dict[str, Any]) -> TokenGains:
    """Gather the rows whose long and short per-token NLLs are both stored, non-empty and of equal length."""
    longs, shorts = table["tok_nll_long"], table["tok_nll_short"]
    rows = np.flatnonzero(token_rows(table)).tolist()
    if not rows:
        empty = np.zeros(0)
        return TokenGains(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), empty, empty)
    long = np.concatenate([np.asarray(longs[i], dtype=np.float64) for i in rows])
    short = np.concatenate([np.asarray(shorts[i], dtype=np.float64) for i in rows])
    lengths = np.array([len(longs[i]) for i in rows], dtype=np.int64)
    return TokenGains(np.asarray(rows, dtype=np.int64), lengths, short - long, -long)


def top_k_means(values: np.ndarray, lengths: np.ndarray, k: int) -> np.ndarray:
    """(m,) the mean of the ``k`` largest values of each consecutive group (all of a group's values when it has at
    most ``k``). values: (sum(lengths),) float64; lengths: (m,) positive group sizes. Linear time: groups longer
    than ``k`` are padded, by width bucket (the next power of two), into matrices whose rows are partitioned."""
    lengths = np.asarray(lengths, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    out = np.empty(len(lengths))
    small = lengths <= k
    if small.any():
        out[small] = np.add.reduceat(values, starts)[small] / lengths[small]
    widths = 1 << np.ceil(np.log2(np.maximum(lengths, 1))).astype(np.int64)
    for width in np.unique(widths[~small]):
        rows = np.flatnonzero(~small & (widths == width))
        columns = np.arange(width)
        inside = columns[None, :] < lengths[rows, None]
        matrix = np.full((len(rows), width), -np.inf)
        matrix[inside] = values[(starts[rows, None] + columns[None, :])[inside]]
        out[rows] = np.partition(matrix, width - k, axis=1)[:, width - k:].sum(axis=1) / k
    return out


def token_rows(table: dict[str, Any]) -> np.ndarray:
    """(n,) bool: the rows whose per-token gains are defined (both lists stored, non-empty, of equal length)."""
    return np.array([a is not None and b is not None and len(a) == len(b) and len(a) > 0
                     for a, b in zip(table["tok_nll_long"], table["tok_nll_short"])], dtype=bool)


def key_tokens(g: TokenGains, options: TokenOptions) -> np.ndarray:
    """(sum(lengths),) bool: LongPPL's key tokens (gain > key_gain and log p_long > key_logp)."""
    return (g.gain > options.key_gain) & (g.logp_long > options.key_logp)


def token_scores(table: dict[str, Any], options: TokenOptions) -> np.ndarray:
    """One aggregate per row of ``table`` (NaN where per-token gains are missing), vectorised over rows."""
    n = len(table["tok_nll_long"])
    out = np.full(n, np.nan)
    g = token_gains(table)
    if not len(g.rows):
        return out
    group, m = g.group, len(g.rows)
    agg = options.token_aggregate
    if agg == "topk":
        value = top_k_means(g.gain, g.lengths, options.top_k)
    elif agg == "mean":
        value = np.bincount(group, weights=g.gain, minlength=m) / g.lengths
    elif agg == "positive-sum":
        value = np.bincount(group, weights=np.maximum(g.gain, 0.0), minlength=m)
    else:
        key = key_tokens(g, options)
        if agg == "key-gain":
            value = np.bincount(group, weights=np.where(key, g.gain, 0.0), minlength=m)
        else:
            value = np.bincount(group, weights=key.astype(np.float64), minlength=m)
            if agg == "key-share":
                value = value / g.lengths
    out[g.rows] = value
    return out


def key_share(table: dict[str, Any], options: TokenOptions) -> np.ndarray:
    """Share of key tokens per row under ``options``' thresholds (NaN where gains are missing)."""
    return token_scores(table, TokenOptions(token_aggregate="key-share", key_gain=options.key_gain,
                                            key_logp=options.key_logp))


def longce_weights(tok_nll_long: np.ndarray, tok_nll_short: np.ndarray, cap: float = LONGCE_CAP) -> np.ndarray:
    """LongCE's per-token loss weights min(exp(gain), cap) for one response, from its stored per-token NLLs
    ((n_response,) nats each); (n_response,) float64, for a training recipe that weights tokens by long dependency."""
    gain = np.asarray(tok_nll_short, dtype=np.float64) - np.asarray(tok_nll_long, dtype=np.float64)
    return np.exp(np.minimum(gain, np.log(cap)))


def token_columns(enc: SampleEncoding, results: dict[Any, RowResult], settings: MeasureSettings) -> Measured:
    """The per-token NLL columns of one sample from HMG's two rows (``tok_nll_short`` None, with a note, when the
    two models tokenise the response differently)."""
    long = require(results, FULL).token_nll
    short = require(results, short_key(settings)).token_nll
    if enc.short.response != enc.long.response:
        return Measured({"tok_nll_long": long, "tok_nll_short": None}, note=(
            "token gains undefined: the short and the long model tokenise the response differently"))
    return Measured({"tok_nll_long": long, "tok_nll_short": short})


class HMGTokens(HMG):
    """HMG's rows and columns plus the per-token NLLs; scored by a token-level aggregate of the gain."""

    name = "hmg-tokens"
    help = ("token-level HMG: aggregate the per-token gain log p_long - log p_short (top-k mean, LongPPL key "
            "tokens: gain > 2 and log p_long > -2)")
    columns = {**HMG.columns, **TOKEN_COLUMNS}
    window_columns = tuple(columns)
    Options = TokenOptions
    presets = {}

    def measure(self, enc: SampleEncoding, results: dict[Any, RowResult], settings: MeasureSettings) -> Measured:
        out = super().measure(enc, results, settings)
        tokens = token_columns(enc, results, settings)
        out.columns.update(tokens.columns)
        out.note = tokens.note
        return out

    def score(self, table: dict[str, Any], options: TokenOptions, k: int | None = None) -> np.ndarray:
        return token_scores(table, options)

    def components(self, table: dict[str, Any], options: TokenOptions) -> dict[str, np.ndarray]:
        """The two perplexities, the mean gain (nats) and the share of key tokens."""
        mean = token_scores(table, TokenOptions(token_aggregate="mean"))
        return {**super().components(table, options), "mean_gain": mean, "key_share": key_share(table, options)}

    def notes(self, table: dict[str, Any], options: TokenOptions, score: np.ndarray, chosen: np.ndarray,
              k: int | None = None) -> list[str]:
        share = key_share(table, options)
        if not np.isfinite(share).any():
            return ["hmg-tokens: no sample has per-token gains"]
        chosen_share = share[chosen][np.isfinite(share[chosen])]
        return [f"hmg-tokens: share of key tokens (gain > {options.key_gain:g}, log p_long > {options.key_logp:g}) "
                f"per response: {np.nanmean(share):.1%} on average, "
                f"{chosen_share.mean() if len(chosen_share) else float('nan'):.1%} in the selection"]

    @classmethod
    def bench_variants(cls) -> list[BenchVariant]:
        out, seen = [], set()
        for agg, k, gain, logp in BENCH_TOKENS:
            main = agg not in seen
            seen.add(agg)
            out.append(BenchVariant({"token_aggregate": agg, "top_k": k, "key_gain": gain, "key_logp": logp},
                                    main=main))
        return out
