"""Normalisations, presets and dataset-level ranking against numbers written by hand from DESIGN §3.

HMP = Norm(PPL_short) − Norm(PPL_long); CAS = cos(softmax_i(seg_ppl), softmax_i(seg_attn));
gateau = α·Norm(HMP) + (1−α)·Norm(CAS); non-ok samples get rank 0; undefined CAS → the dataset mean of Norm(CAS).
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from gateau.methods import method_options
from gateau.methods.gateau import GateauOptions
from gateau.methods.presets import PRESETS
from gateau.select.rank import rank_table
from gateau.methods.normalize import NORMS, normalize

nan = float("nan")


# ---------------------------------------------------------------------------------------------------------------
# normalize


def test_softmax_by_hand():
    np.testing.assert_allclose(normalize([0.0, math.log(3.0)], "softmax"), [0.25, 0.75], rtol=0, atol=1e-15)
    # T = 2 halves the logits: [0, ln 9] / 2 = [0, ln 3]
    np.testing.assert_allclose(normalize([0.0, math.log(9.0)], "softmax", temperature=2.0), [0.25, 0.75], atol=1e-15)
    # T = 0.5 doubles them: [0, ln 3] · 2 = [0, ln 9] → [0.1, 0.9]
    np.testing.assert_allclose(normalize([0.0, math.log(3.0)], "softmax", temperature=0.5), [0.1, 0.9], atol=1e-15)
    np.testing.assert_allclose(normalize([1000.0, 1000.0, 1000.0], "softmax"), [1 / 3] * 3, atol=1e-15)  # stable
    for t in (0.0, -1.0):
        with pytest.raises(ValueError, match="temperature"):
            normalize([1.0, 2.0], "softmax", temperature=t)


def test_minmax_sum_rank_zscore_raw_by_hand():
    np.testing.assert_allclose(normalize([2.0, 4.0, 6.0], "minmax"), [0.0, 0.5, 1.0], atol=1e-15)
    np.testing.assert_allclose(normalize([3.0, 3.0], "minmax"), [0.5, 0.5], atol=0)
    np.testing.assert_allclose(normalize([1.0, 3.0], "sum"), [0.25, 0.75], atol=1e-15)
    with pytest.raises(ValueError):
        normalize([0.0, 0.0], "sum")
    # ranks 2, 3.5, 3.5, 1 (ties averaged) over 4 values
    np.testing.assert_allclose(normalize([10.0, 20.0, 20.0, 5.0], "rank"), [0.5, 0.875, 0.875, 0.25], atol=1e-15)
    # mean 2, population std √(2/3): ∓√(3/2)
    np.testing.assert_allclose(normalize([1.0, 2.0, 3.0], "zscore"), [-math.sqrt(1.5), 0.0, math.sqrt(1.5)],
                               atol=1e-12)
    np.testing.assert_allclose(normalize([4.0, 4.0], "zscore"), [0.0, 0.0], atol=0)
    np.testing.assert_array_equal(normalize([3, -1.5, 7], "raw"), [3.0, -1.5, 7.0])


def test_log_is_the_natural_log_and_rejects_non_positive_values():
    np.testing.assert_allclose(normalize([1.0, math.e, nan], "log"), [0.0, 1.0, nan])
    with pytest.raises(ValueError, match="non-positive"):
        normalize([1.0, 0.0], "log")


def test_log_rank_hmp_is_the_nll_difference():
    """--norm log-rank: HMP = log PPL_short − log PPL_long (nats/token), ranks in the gateau mix."""
    from gateau.methods.hmg import HMG

    table = {"nll_short": np.log([4.0, 2.0, 9.0]), "nll_long": np.log([2.0, 2.0, 3.0])}
    hmp = HMG().score(table, method_options("hmg", None, norm="log-rank"))
    np.testing.assert_allclose(hmp, [math.log(2.0), 0.0, math.log(3.0)])


@pytest.mark.parametrize("name", NORMS)
def test_nan_passes_through(name):
    x = [0.5, nan, math.log(3.0), nan]
    out = normalize(x, name)
    assert out.dtype == np.float64 and out.shape == (4,)
    assert np.isnan(out[[1, 3]]).all()
    # the finite entries are normalised among themselves, as if the NaNs were absent
    np.testing.assert_allclose(out[[0, 2]], normalize([0.5, math.log(3.0)], name), atol=1e-15)
    assert np.isnan(normalize([nan, nan], name)).all()


def test_unknown_normalisation():
    with pytest.raises(ValueError, match="unknown normalisation"):
        normalize([1.0], "l2")


# ---------------------------------------------------------------------------------------------------------------
# method options and presets


def test_presets():
    paper = method_options("gateau", "paper")
    assert (paper.norm, paper.temperature, paper.alpha, paper.cas_outer, paper.is_norm, paper.attn_norm,
            paper.attn_sink_tokens) == ("softmax", 1.0, 0.8, None, "softmax", "softmax", 0)
    official = method_options("gateau", "official")
    assert (official.norm, official.cas_outer, official.alpha, official.temperature) == ("minmax-softmax", "raw",
                                                                                        0.8, 1.0)
    assert method_options("gateau") == GateauOptions()
    assert set(PRESETS) == {"paper", "paper-limited", "official"}
    limited = method_options("gateau", "paper-limited")  # the paper's limited-short-data setting: α = 0.7
    assert limited == method_options("gateau", "paper", alpha=0.7) and limited.alpha == 0.7
    hmg = method_options("hmg", "paper")  # a method takes the preset fields it has
    assert (hmg.norm, hmg.temperature) == ("softmax", 1.0) and not hasattr(hmg, "alpha")


def test_overrides():
    opts = method_options("gateau", "paper", alpha=0.7, temperature=None, norm=None, attn_sink_tokens=4)
    assert (opts.alpha, opts.temperature, opts.norm, opts.attn_sink_tokens) == (0.7, 1.0, "softmax", 4)
    assert method_options("gateau", "official", norm="rank").cas_outer == "raw"
    assert method_options("gateau", None, alpha=0.0).alpha == 0.0
    assert method_options("gateau", None, alpha=1.0).alpha == 1.0
    # an option of another method: refused when strict, ignored otherwise
    with pytest.raises(ValueError, match="--alpha does not apply to method 'hmg'"):
        method_options("hmg", None, alpha=0.5)
    assert method_options("hmg", None, strict=False, alpha=0.5) == method_options("hmg")


@pytest.mark.parametrize("kwargs, match", [
    (dict(preset="mine"), "has no preset"),
    (dict(norm="minmax"), "unknown --norm"),
    (dict(alpha=1.5), "alpha"),
    (dict(alpha=-0.1), "alpha"),
    (dict(beta=0.3), "--beta does not apply"),
    (dict(temperature=0.0), "temperature must be positive"),
    (dict(attn_sink_tokens=17), "attn-sink-tokens"),
])
def test_option_errors(kwargs, match):
    preset = kwargs.pop("preset", None)
    with pytest.raises(ValueError, match=match):
        method_options("gateau", preset, **kwargs)


# ---------------------------------------------------------------------------------------------------------------
# rank_table on a hand-built table

# id, status, ppl_short, ppl_long, seg_ppl, seg_attn (None: CAS undefined / not measured)
ROWS = [
    ("a", "ok", 2.0, 1.1, [3.0, 5.0, 4.0], [0.5, 0.2, 0.3]),
    ("b", "ok", 1.5, 1.4, [2.0, 2.5], [0.1, 0.9]),
    ("c", "too_long", None, None, None, None),
    ("d", "ok", 2.4, 1.0, None, None),  # context shorter than two segments: CAS undefined
    ("e", "ok", 1.2, 1.3, [4.0, 1.0, 2.0, 3.0], [0.4, 0.3, 0.2, 0.1]),
    ("f", "oom", 9.0, 0.5, [1.0, 9.0], [0.9, 0.1]),  # stale numbers on a failed row must not count
    ("g", "ok", 1.8, 0.9, [1.0, 2.0], [0.5, 0.5]),
]
OK = [0, 1, 3, 4, 6]


def log(v: float | None) -> float | None:
    return None if v is None else math.log(v)


def hand_table(rows=ROWS) -> pa.Table:
    n = len(rows)

    def segs(v):
        return None if v is None else list(v)

    return pa.table({
        "index": pa.array(range(n), pa.int64()),
        "id": [r[0] for r in rows],
        "status": [r[1] for r in rows],
        "error": ["" if r[1] == "ok" else "x" for r in rows],
        "note": ["cas undefined: ...; gateau falls back to hmg" if r[4] is None and r[1] == "ok" else "" for r in rows],
        "n_context": pa.array([100] * n, pa.int64()),
        "nll_short": pa.array([log(r[2]) for r in rows], pa.float64()),  # stored: mean NLL = log PPL
        "nll_long": pa.array([log(r[3]) for r in rows], pa.float64()),
        "n_short_context": pa.array([32] * n, pa.int64()),
        "seg_nll": pa.array([None if r[4] is None else [math.log(v) for v in r[4]] for r in rows],
                            pa.list_(pa.float64())),
        "seg_attn": pa.array([segs(r[5]) for r in rows], pa.list_(pa.float64())),
        "seg_tokens": pa.array([None if r[4] is None else [4] * len(r[4]) for r in rows], pa.list_(pa.int64())),
        "seg_starts": pa.array([None if r[4] is None else [4 * i for i in range(len(r[4]))] for r in rows],
                               pa.list_(pa.int64())),
        "attn_head": pa.array([None if r[4] is None else [0.0] * 4 for r in rows], pa.list_(pa.float64())),
        "cas": pa.array([None] * n, pa.float64()),  # stored value is not what ranking uses
        # measured only with --calibrate-attention / used only with --token-weight > 0: absent values here
        "seg_attn_neutral": pa.array([None] * n, pa.list_(pa.float64())),
        "attn_head_neutral": pa.array([None] * n, pa.list_(pa.float64())),
        "tok_nll_long": pa.array([None] * n, pa.list_(pa.float32())),
        "tok_nll_short": pa.array([None] * n, pa.list_(pa.float32())),
    })


def sm(v) -> np.ndarray:
    e = np.exp(np.asarray(v, dtype=np.float64))
    return e / e.sum()


def mm(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return (v - v.min()) / (v.max() - v.min())


def cos(a, b) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def ranks_from(score: dict[int, float], n: int) -> list[int]:
    """1-based ranks by descending score (ties: input order), 0 for rows not in ``score``."""
    order = sorted(score, key=lambda i: (-score[i], i))
    out = [0] * n
    for r, i in enumerate(order, 1):
        out[i] = r
    return out


PS = np.array([ROWS[i][2] for i in OK])
PL = np.array([ROWS[i][3] for i in OK])
CAS_ROWS = [0, 1, 4, 6]  # ok rows with a defined CAS
CAS = {i: cos(sm(ROWS[i][4]), sm(ROWS[i][5])) for i in CAS_ROWS}


def _check(ranking, expected: dict[int, float], n=len(ROWS)):
    for i in range(n):
        if i in expected:
            assert ranking.score[i] == pytest.approx(expected[i], abs=1e-12, rel=1e-12), i
        else:
            assert np.isnan(ranking.score[i]), i
    assert list(ranking.rank) == ranks_from(expected, n)
    assert list(ranking.order) == sorted(expected, key=lambda i: (-expected[i], i))


def test_rank_hmg_paper():
    hmp = sm(PS) - sm(PL)
    expected = dict(zip(OK, hmp))
    _check(rank_table(hand_table(), "hmg", method_options("hmg", "paper")), expected)


def test_rank_ppl():
    expected = dict(zip(OK, PL))
    r = rank_table(hand_table(), "ppl")
    _check(r, expected)
    assert [ROWS[i][0] for i in r.order] == ["b", "e", "a", "d", "g"]
    assert r.agreement()["ppl_long"] == pytest.approx(1.0)


def test_rank_cam_paper():
    _check(rank_table(hand_table(), "cam", method_options("cam", "paper")), dict(CAS))
    # a hand value: cos(softmax([2, 2.5]), softmax([0.1, 0.9]))
    a = np.array([1.0, math.exp(0.5)]) / (1 + math.exp(0.5))
    b = np.array([1.0, math.exp(0.8)]) / (1 + math.exp(0.8))
    assert CAS[1] == pytest.approx(float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)), abs=1e-15)


@pytest.mark.parametrize("alpha", [0.8, 0.7, 0.0, 1.0])
def test_rank_gateau_paper(alpha):
    hmp = dict(zip(OK, sm(sm(PS) - sm(PL))))
    cas_norm = dict(zip(CAS_ROWS, sm([CAS[i] for i in CAS_ROWS])))
    cas_norm[3] = 1.0 / len(CAS_ROWS)  # undefined CAS: the dataset mean of softmax(CAS) = 1/4
    expected = {i: alpha * hmp[i] + (1 - alpha) * cas_norm[i] for i in OK}
    ranking = rank_table(hand_table(), "gateau", method_options("gateau", "paper", alpha=alpha))
    _check(ranking, expected)
    assert ranking.rank[2] == 0 and ranking.rank[5] == 0  # too_long and oom rows are never ranked
    np.testing.assert_allclose(ranking.components["hmp"][OK], sm(PS) - sm(PL), atol=1e-15)


def test_rank_gateau_paper_limited():
    hmp = dict(zip(OK, sm(sm(PS) - sm(PL))))
    cas_norm = dict(zip(CAS_ROWS, sm([CAS[i] for i in CAS_ROWS])))
    cas_norm[3] = 1.0 / len(CAS_ROWS)
    expected = {i: 0.7 * hmp[i] + 0.3 * cas_norm[i] for i in OK}
    _check(rank_table(hand_table(), "gateau", method_options("gateau", "paper-limited")), expected)


def test_rank_gateau_official():
    hmp = dict(zip(OK, sm(mm(PS) - mm(PL))))
    cas_raw = dict(CAS)
    cas_raw[3] = float(np.mean([CAS[i] for i in CAS_ROWS]))
    expected = {i: 0.8 * hmp[i] + 0.2 * cas_raw[i] for i in OK}
    _check(rank_table(hand_table(), "gateau", method_options("gateau", "official")), expected)


def pct(v) -> np.ndarray:
    """Percentile rank in (0, 1], ties averaged, by counting: (#smaller + (#equal + 1) / 2) / n."""
    v = np.asarray(v, dtype=np.float64)
    return np.array([((v < x).sum() + ((v == x).sum() + 1) / 2) / len(v) for x in v])


def test_rank_gateau_rank_norm():
    hmp = dict(zip(OK, pct(pct(PS) - pct(PL))))
    cas = dict(zip(CAS_ROWS, pct([CAS[i] for i in CAS_ROWS])))
    cas[3] = float(np.mean(list(cas.values())))
    expected = {i: 0.8 * hmp[i] + 0.2 * cas[i] for i in OK}
    _check(rank_table(hand_table(), "gateau", method_options("gateau", None, norm="rank")), expected)


def test_sink_tokens_and_in_sample_norms():
    # one sample, three segments of 4 tokens; per-token attention of the first 4 tokens (the first segment)
    head = [0.9, 0.1, 0.2, 0.3]
    rows = [("a", "ok", 2.0, 1.0, [3.0, 5.0, 4.0], [float(np.mean(head)), 0.2, 0.3]),
            ("b", "ok", 1.0, 1.0, [1.0, 2.0], [0.6, 0.4])]
    table = hand_table(rows)
    table = table.set_column(table.column_names.index("attn_head"), "attn_head",
                             pa.array([head, [0.6] * 4], pa.list_(pa.float64())))
    r = rank_table(table, "cam", method_options("cam", None, attn_sink_tokens=2))
    # segment 0's mean without its first two tokens: (0.2 + 0.3) / 2
    assert r.score[0] == pytest.approx(cos(sm([3.0, 5.0, 4.0]), sm([0.25, 0.2, 0.3])), abs=1e-15)
    r = rank_table(table, "cam", method_options("cam", None, is_norm="sum", attn_norm="minmax"))
    assert r.score[0] == pytest.approx(cos(np.array([3, 5, 4]) / 12, mm([0.375, 0.2, 0.3])), abs=1e-15)
    assert r.score[1] == pytest.approx(cos(np.array([1, 2]) / 3, [1.0, 0.0]), abs=1e-15)


def test_ties_are_broken_by_input_order():
    rows = [(x, "ok", 1.0, 2.0, None, None) for x in "pqrs"]
    r = rank_table(hand_table(rows), "ppl")
    assert list(r.order) == [0, 1, 2, 3] and list(r.rank) == [1, 2, 3, 4]


def test_all_cas_undefined_ranks_by_hmg():
    rows = [(x, "ok", p, 1.0, None, None) for x, p in zip("pqr", (1.0, 3.0, 2.0))]
    r = rank_table(hand_table(rows), "gateau")
    assert [rows[i][0] for i in r.order] == ["q", "r", "p"]


def test_missing_columns_for_method():
    table = hand_table().drop(["seg_nll", "seg_attn"])
    with pytest.raises(ValueError, match="seg_nll"):
        rank_table(table, "gateau")
    with pytest.raises(ValueError, match="unknown method"):
        rank_table(hand_table(), "nope")


@pytest.mark.parametrize("name", ["softmax", "sum", "minmax", "zscore", "rank", "raw"])
def test_grouped_normalisation_equals_per_group(name):
    from gateau.methods.normalize import normalize_groups

    rng = np.random.default_rng(1)
    lengths = np.array([2, 5, 1, 3, 7])
    x = rng.uniform(0.1, 4.0, lengths.sum())
    x[7:10] = 2.5  # a constant group (minmax -> 0.5, zscore -> 0)
    expected, lo = [], 0
    for n in lengths:
        expected.append(normalize(x[lo: lo + n], name, 0.7))
        lo += n
    np.testing.assert_allclose(normalize_groups(x, lengths, name, 0.7), np.concatenate(expected), atol=1e-15)


@pytest.mark.parametrize("is_norm, attn_norm, sink", [("softmax", "softmax", 0), ("sum", "minmax", 2),
                                                      ("zscore", "sum", 4), ("rank", "softmax", 1)])
def test_vectorised_cas_equals_the_per_sample_definition(is_norm, attn_norm, sink):
    from gateau.methods.cam import cas_scores, drop_sink

    rng = np.random.default_rng(2)
    n_seg = [3, 2, 1, 6, 4]
    table = {"seg_nll": [rng.uniform(0.1, 2.2, k).tolist() for k in n_seg],
             "seg_attn": [rng.uniform(1e-4, 3e-3, k).tolist() for k in n_seg],
             "seg_tokens": [[8] * k for k in n_seg], "attn_head": [rng.uniform(0, 1e-2, 16).tolist() for _ in n_seg]}
    table["seg_nll"].append(None)
    table["seg_attn"].append(None)
    options = method_options("cam", None, is_norm=is_norm, attn_norm=attn_norm, attn_sink_tokens=sink,
                             segment_temperature=0.5)
    got = cas_scores(table, options)
    for i, k in enumerate(n_seg):
        if k < 2:
            assert np.isnan(got[i])
            continue
        attn = drop_sink(table["seg_attn"][i], table["attn_head"][i], table["seg_tokens"][i], sink)
        expected = cos(normalize(np.exp(table["seg_nll"][i]), is_norm, 0.5), normalize(attn, attn_norm, 0.5))
        assert got[i] == pytest.approx(expected, abs=1e-12)
    assert np.isnan(got[-1])
