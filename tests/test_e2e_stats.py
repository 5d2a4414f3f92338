"""`gateau bench e2e` statistics: the hierarchical bootstrap against a plain loop over the same draws and against
the variance it must have when only seeds (or only items) vary; the smallest detectable difference."""

from __future__ import annotations

import numpy as np
import pytest

from gateau.bench.e2e.stats import MDE_FACTOR, hierarchical_bootstrap, paired_bootstrap


def _naive(a, b, n_boot, seed):
    """Plain loops over the documented draws: items (shared), then a's seeds, then b's seeds."""
    rng = np.random.default_rng(seed)
    n = len(a[0])
    items = rng.integers(0, n, size=(n_boot, n))
    sa = rng.integers(0, len(a), size=(n_boot, len(a)))
    sb = rng.integers(0, len(b), size=(n_boot, len(b)))
    out = []
    for r in range(n_boot):
        ma = sum(a[s][i] for s in sa[r] for i in items[r]) / (len(a) * n)
        mb = sum(b[s][i] for s in sb[r] for i in items[r]) / (len(b) * n)
        out.append(ma - mb)
    return np.array(out)


def test_hierarchical_bootstrap_equals_a_plain_loop():
    rng = np.random.default_rng(5)
    a = rng.uniform(0, 1, size=(5, 7)).round(2).tolist()
    b = rng.uniform(0, 1, size=(3, 7)).round(2).tolist()
    got = hierarchical_bootstrap(a, b, n_boot=300, seed=11)
    diffs = _naive(a, b, 300, 11)
    assert got["diff"] == pytest.approx(np.mean(a) - np.mean(b))
    assert got["lo"] == pytest.approx(np.quantile(diffs, 0.025))
    assert got["hi"] == pytest.approx(np.quantile(diffs, 0.975))
    assert got["se"] == pytest.approx(diffs.std(ddof=1))
    assert got["mde"] == pytest.approx(MDE_FACTOR * diffs.std(ddof=1))
    assert got["p_le_0"] == pytest.approx((diffs <= 0).mean())
    assert (got["n"], got["seeds_a"], got["seeds_b"]) == (7, 5, 3)
    assert MDE_FACTOR == pytest.approx(2.8, abs=0.01)


def test_seed_spread_widens_the_interval_as_it_must():
    # every item scores the seed's value: only the seeds vary. A bootstrap over items alone sees no spread at all;
    # resampling s seeds with replacement has variance var_pop(seed values) / s for each arm.
    a_seeds, b_seeds = np.array([0.1, 0.5, 0.2, 0.9, 0.4]), np.array([0.3, 0.3, 0.6])
    a = np.repeat(a_seeds[:, None], 20, axis=1)
    b = np.repeat(b_seeds[:, None], 20, axis=1)
    got = hierarchical_bootstrap(a, b, n_boot=20000, seed=0)
    expected_se = np.sqrt(a_seeds.var() / 5 + b_seeds.var() / 3)
    assert got["se"] == pytest.approx(expected_se, rel=0.03)
    items_only = paired_bootstrap(a.mean(0), b.mean(0), n_boot=2000, seed=0)
    assert items_only["hi"] - items_only["lo"] == pytest.approx(0.0, abs=1e-12)
    assert got["hi"] - got["lo"] > 2 * expected_se


def test_item_spread_alone_matches_the_paired_item_bootstrap():
    # one seed per arm: the seed draw is trivial and the resample is the paired bootstrap over items
    rng = np.random.default_rng(2)
    a, b = rng.uniform(size=(1, 40)), rng.uniform(size=(1, 40))
    got = hierarchical_bootstrap(a, b, n_boot=20000, seed=1)
    d = a[0] - b[0]
    assert got["se"] == pytest.approx(d.std() / np.sqrt(40), rel=0.03)  # the SE of a mean of 40 paired diffs
    same = hierarchical_bootstrap(a, a, n_boot=200, seed=1)
    assert same["diff"] == 0.0 and same["se"] == pytest.approx(0.0, abs=1e-12)


def test_hierarchical_bootstrap_refuses_mismatched_items():
    with pytest.raises(ValueError, match="same items"):
        hierarchical_bootstrap(np.zeros((2, 3)), np.zeros((2, 4)))
