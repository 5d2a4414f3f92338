"""hmg-tokens: per-token NLLs through the scorer against naive full-logit references, the aggregations against
per-sample loops written from their definitions, the gateau token mix, LongCE weights, options and flags."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
import torch
from transformers import AutoModelForCausalLM

from gateau.cli import build_parser
from gateau.config import ScoreConfig
from gateau.data import Sample
from gateau.measure.rows import RowResult
from gateau.methods import METHODS, method_options
from gateau.methods.base import SampleEncoding
from gateau.methods.hmg import FULL, short_key
from gateau.methods.hmg_tokens import TOKEN_AGGREGATES, longce_weights, token_columns
from gateau.models import LoadedModel
from gateau.pipeline.scorer import Scorer
from gateau.prompt import EncodedSample, PromptEncoder
from gateau.select.rank import rank_table
from naive import response_token_nll as naive_token_nll

CONTEXT = " ".join(f"The harbour of town {i} shelters {i * 7 % 50} boats and keeps a blue lighthouse." for i in range(9))
SAMPLE = Sample(index=0, id="s", context=CONTEXT, instruction="How many boats does town 3 shelter?",
                response="Town 3 shelters 21 boats, the text says.")
WINDOW = 16


@pytest.fixture(scope="module")
def lm(tiny_tokenizer, tiny_model_dir) -> LoadedModel:
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    return LoadedModel(model=model, tokenizer=tiny_tokenizer, spec="tiny", device=torch.device("cpu"))


def test_per_token_nlls_are_stored_from_hmgs_two_rows_and_match_naive(lm, tiny_tokenizer):
    config = ScoreConfig.from_flat(data="-", out="-", methods="hmg-tokens", max_length=2048, short_window=WINDOW,
                                   token_budget=4096, progress=False)
    scorer = Scorer(config, lm)
    row = scorer.score_batch([SAMPLE])[0]
    enc = PromptEncoder(tiny_tokenizer, "plain", 2048).encode(SAMPLE)
    full, window = enc.row(), enc.window_row(WINDOW)
    want_long, want_short = naive_token_nll(lm.model, *full), naive_token_nll(lm.model, *window)
    assert row["status"] == "ok" and len(row["tok_nll_long"]) == len(enc.response) > 5
    np.testing.assert_allclose(row["tok_nll_long"], want_long, atol=1e-5)
    np.testing.assert_allclose(row["tok_nll_short"], want_short, atol=1e-5)
    assert row["nll_long"] == pytest.approx(float(want_long.mean()), abs=1e-5)
    assert row["nll_short"] == pytest.approx(float(want_short.mean()), abs=1e-5)
    # no second pass: exactly HMG's full row and window row went through the model
    assert scorer.forward_tokens == len(full[0]) + len(window[0])


def _fake_encoding(long_response: list[int], short_response: list[int]) -> SampleEncoding:
    long = EncodedSample(head=[0], context=[5, 6, 7], middle=[8], response=long_response)
    short = long if short_response == long_response else EncodedSample([0], [5, 6, 7], [8], short_response)
    return SampleEncoding(long=long, short=short, alone=([0, *long_response], 1))


def test_two_tokenizers_leave_the_gains_undefined():
    """Pair mode with two tokenizers: the responses' tokens differ, so per-token gains cannot be aligned."""
    from gateau.methods.base import MeasureSettings

    settings = MeasureSettings(short_window=None, segment_len=128, last_segment="drop", max_segments=None, seed=0)
    results = {FULL: RowResult(1.0, token_nll=np.array([1.0, 1.0], np.float32)),
               short_key(settings): RowResult(2.0, token_nll=np.array([2.0, 2.0], np.float32))}
    same = token_columns(_fake_encoding([3, 4], [3, 4]), results, settings)
    assert same.note == "" and list(same.columns["tok_nll_short"]) == [2.0, 2.0]
    other = token_columns(_fake_encoding([3, 4], [9, 4]), results, settings)
    assert other.columns["tok_nll_short"] is None and "tokenise the response differently" in other.note


# ---------------------------------------------------------------------------------------------------------------
# aggregations against per-sample loops


def naive_aggregate(long: list[float], short: list[float], agg: str, k: int = 5, gain_t: float = 2.0,
                    logp_t: float = -2.0) -> float:
    """One sample's aggregate, written from the definitions with plain Python."""
    gains = [s - lo for lo, s in zip(long, short)]
    key = [g for g, lo in zip(gains, long) if g > gain_t and -lo > logp_t]
    if agg == "topk":
        top = sorted(gains, reverse=True)[:k]
        return sum(top) / len(top)
    if agg == "mean":
        return sum(gains) / len(gains)
    if agg == "positive-sum":
        return sum(g for g in gains if g > 0)
    if agg == "key-count":
        return float(len(key))
    if agg == "key-gain":
        return sum(key)
    if agg == "key-share":
        return len(key) / len(gains)
    raise ValueError(agg)


def token_table(longs: list, shorts: list) -> pa.Table:
    n = len(longs)
    f32 = pa.list_(pa.float32())
    return pa.table({"index": pa.array(range(n), pa.int64()), "id": [f"t{i}" for i in range(n)],
                     "status": ["ok"] * n, "n_context": pa.array([100] * n, pa.int64()),
                     "n_response": pa.array([0 if v is None else len(v) for v in longs], pa.int64()),
                     "nll_short": pa.array([np.nan if v is None else float(np.mean(v)) for v in shorts]),
                     "nll_long": pa.array([np.nan if v is None else float(np.mean(v)) for v in longs]),
                     "n_short_context": pa.array([16] * n, pa.int64()),
                     "tok_nll_long": pa.array(longs, f32), "tok_nll_short": pa.array(shorts, f32)})


def random_tokens(seed: int, n: int = 12) -> tuple[list, list]:
    rng = np.random.default_rng(seed)
    longs, shorts = [], []
    for i in range(n):
        m = int(rng.integers(1, 15))
        long = rng.exponential(1.5, m)
        short = long + rng.choice([0.0, 0.5, 3.0, -1.0], m) * rng.uniform(0.5, 2.0, m)
        # float32 first: the naive side sees exactly the stored values
        longs.append(long.astype(np.float32).tolist())
        shorts.append(np.maximum(short, 0.0).astype(np.float32).tolist())
    return longs, shorts


@pytest.mark.parametrize("agg", TOKEN_AGGREGATES)
@pytest.mark.parametrize("k", [1, 3, 20])
def test_aggregates_equal_per_sample_definitions(agg, k):
    longs, shorts = random_tokens(seed=k)
    options = method_options("hmg-tokens", token_aggregate=agg, top_k=k)
    ranking = rank_table(token_table(longs, shorts), "hmg-tokens", options)
    want = [naive_aggregate(lo, s, agg, k) for lo, s in zip(longs, shorts)]
    np.testing.assert_allclose(ranking.score, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("k", [1, 7, 64])
def test_top_k_means_across_width_buckets(k):
    """Groups of 1..300 values (several power-of-two buckets, ties included) against sorting each group."""
    from gateau.methods.hmg_tokens import top_k_means

    rng = np.random.default_rng(k)
    lengths = np.concatenate([[1, 2, 64, 65, 128, 300], rng.integers(1, 300, 40)])
    groups = [np.round(rng.normal(0, 2, n), 1) for n in lengths]  # rounded: many ties
    got = top_k_means(np.concatenate(groups), lengths, k)
    want = [np.sort(g)[::-1][:k].mean() for g in groups]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_key_thresholds_are_options():
    longs, shorts = random_tokens(seed=4)
    opts = method_options("hmg-tokens", token_aggregate="key-count", key_gain=0.5, key_logp=-6.0)
    got = rank_table(token_table(longs, shorts), "hmg-tokens", opts).score
    want = [naive_aggregate(lo, s, "key-count", gain_t=0.5, logp_t=-6.0) for lo, s in zip(longs, shorts)]
    np.testing.assert_allclose(got, want)
    assert not np.allclose(got, rank_table(token_table(longs, shorts), "hmg-tokens",
                                           method_options("hmg-tokens", token_aggregate="key-count")).score)


def test_hand_values_and_missing_or_mismatched_tokens():
    # gains [3, 0, -1] (first token: log p_long = -0.5 > -2: a key token), [0.5]; row 2 missing, row 3 misaligned
    longs = [[0.5, 1.0, 1.0], [2.0], None, [1.0, 1.0]]
    shorts = [[3.5, 1.0, 0.0], [2.5], None, [1.0]]
    table = token_table(longs, shorts)
    score = lambda **o: rank_table(table, "hmg-tokens", method_options("hmg-tokens", **o)).score  # noqa: E731
    np.testing.assert_allclose(score(token_aggregate="topk", top_k=2)[:2], [1.5, 0.5])
    np.testing.assert_allclose(score(token_aggregate="key-share")[:2], [1 / 3, 0.0])
    np.testing.assert_allclose(score(token_aggregate="key-gain")[:2], [3.0, 0.0])
    np.testing.assert_allclose(score(token_aggregate="positive-sum")[:2], [3.0, 0.5])
    np.testing.assert_allclose(score(token_aggregate="mean")[:2], [2 / 3, 0.5])
    assert np.isnan(score()[2:]).all()
    r = rank_table(table, "hmg-tokens")
    assert list(r.rank) == [1, 2, 0, 0]
    np.testing.assert_allclose(r.components["key_share"][:2], [1 / 3, 0.0])
    assert any("key tokens" in line for line in r.notes(r.order))


def test_mean_aggregate_is_hmg_log_rank_hmp():
    longs, shorts = random_tokens(seed=9)
    table = token_table(longs, shorts)
    mean = rank_table(table, "hmg-tokens", method_options("hmg-tokens", token_aggregate="mean")).score
    hmp = rank_table(table, "hmg", method_options("hmg", norm="log-rank")).score
    np.testing.assert_allclose(mean, hmp, atol=1e-6)


def test_longce_weights():
    w = longce_weights(np.array([1.0, 1.0, 1.0]), np.array([1.0, 1.0 + math.log(3.0), 40.0]))
    np.testing.assert_allclose(w, [1.0, 3.0, 5.0])


# ---------------------------------------------------------------------------------------------------------------
# gateau's token mix


def gateau_table(longs, shorts) -> pa.Table:
    """A token table with the CAM columns of gateau (CAS undefined everywhere: the CAS term is a constant)."""
    t = token_table(longs, shorts)
    n = t.num_rows
    for name in ("seg_nll", "seg_attn", "attn_head", "seg_attn_neutral", "attn_head_neutral"):
        t = t.append_column(name, pa.array([None] * n, pa.list_(pa.float64())))
    for name in ("seg_tokens", "seg_starts"):
        t = t.append_column(name, pa.array([None] * n, pa.list_(pa.int64())))
    return t.append_column("cas", pa.array([None] * n, pa.float64()))


def pct(v) -> np.ndarray:
    """Percentile rank in (0, 1], ties averaged: (#smaller + (#equal + 1) / 2) / n."""
    v = np.asarray(v, dtype=np.float64)
    return np.array([((v < x).sum() + ((v == x).sum() + 1) / 2) / len(v) for x in v])


@pytest.mark.parametrize("w", [0.0, 0.5, 1.0])
def test_gateau_token_weight_mixes_ranks(w):
    longs, shorts = random_tokens(seed=2)
    longs[3], shorts[3] = [1.0, 2.0], [1.5]  # misaligned: this row keeps Norm(HMP) alone
    table = gateau_table(longs, shorts)
    opts = method_options("gateau", alpha=1.0, token_aggregate="topk", top_k=3, token_weight=w)
    got = rank_table(table, "gateau", opts)
    hmp = pct([np.mean(s) - np.mean(lo) for lo, s in zip(longs, shorts)])
    rows = [i for i in range(len(longs)) if i != 3]
    tok = np.full(len(longs), np.nan)
    tok[rows] = pct([naive_aggregate(longs[i], shorts[i], "topk", 3) for i in rows])
    want = np.where(np.isfinite(tok), (1 - w) * hmp + w * np.nan_to_num(tok), hmp)
    np.testing.assert_allclose(got.score, want, atol=1e-6)
    assert ("tokens" in got.components) == (w > 0)
    assert any("token gains undefined" in line for line in got.notes(got.order)) == (w > 0)


def test_presets_keep_the_paper_and_hmg_tokens_has_none():
    for preset in ("paper", "official"):
        opts = method_options("gateau", preset)
        assert opts.token_weight == 0.0 and opts.attn_calibration == "none"
    assert METHODS["hmg-tokens"].presets == {}
    with pytest.raises(ValueError, match="no preset"):
        method_options("hmg-tokens", "paper")


def test_options_become_select_flags_and_are_checked(capsys):
    args = build_parser().parse_args(["select", "RUN", "--ratio", "0.3", "--method", "hmg-tokens",
                                      "--token-aggregate", "key-share", "--top-k", "3", "--key-gain", "1.5",
                                      "--key-logp", "-3"])
    assert (args.token_aggregate, args.top_k, args.key_gain, args.key_logp) == ("key-share", 3, 1.5, -3.0)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["select", "RUN", "--ratio", "0.3", "--token-aggregate", "median"])
    with pytest.raises(ValueError, match="--top-k"):
        method_options("hmg-tokens", top_k=0)
    with pytest.raises(ValueError, match="--token-weight"):
        method_options("gateau", token_weight=1.5)
    with pytest.raises(ValueError, match="does not apply to method 'hmg'"):
        method_options("hmg", token_aggregate="topk")
