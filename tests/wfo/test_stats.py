"""Sharpe / PSR / DSR, block bootstrap, drawdown and daily returns of gridflow.wfo.stats."""

from __future__ import annotations

import itertools
import math
import statistics

import numpy as np
import pytest
import scipy.stats
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gridflow.wfo import stats
from gridflow.wfo.stats import (
    annualised_sharpe,
    block_bootstrap_pvalue,
    daily_returns,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    max_drawdown,
    probabilistic_sharpe_ratio,
    sharpe_ratio,
    worst_drawdown,
)

GAMMA = 0.5772156649015329
DAY = 86_400_000


def phi(z: float) -> float:
    """Standard normal CDF through math.erf."""
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


# ---------------------------------------------------------------- Sharpe


def test_sharpe_ratio_by_hand():
    # mean 0.02, std(ddof=1) = sqrt((0.01² + 0.01²) / 1) = 0.01·sqrt(2)
    assert sharpe_ratio([0.01, 0.03]) == pytest.approx(0.02 / (0.01 * math.sqrt(2)), abs=1e-12)
    assert annualised_sharpe([0.01, 0.03], 365) == pytest.approx(
        math.sqrt(2) * math.sqrt(365), abs=1e-9
    )


@pytest.mark.parametrize("r", [[], [0.01], [0.01] * 10, [0.0, 0.0, 0.0]])
def test_sharpe_ratio_nan_when_undefined(r):
    assert math.isnan(sharpe_ratio(r))


# ---------------------------------------------------------------- PSR


def test_psr_by_hand():
    # SR 0.1 vs 0.02 over 252 periods, skew -0.5, kurtosis 5:
    # variance term = 1 - (-0.5)(0.1) + (5 - 1)/4 · 0.01 = 1 + 0.05 + 0.01 = 1.06
    z = 0.08 * math.sqrt(251) / math.sqrt(1.06)
    assert probabilistic_sharpe_ratio(0.1, 0.02, 252, -0.5, 5.0) == pytest.approx(
        phi(z), abs=1e-12
    )
    # normal returns (skew 0, kurtosis 3): variance term 1 + SR²/2
    z = (0.05 - 0.0) * math.sqrt(99) / math.sqrt(1 + 0.05**2 / 2)
    assert probabilistic_sharpe_ratio(0.05, 0.0, 100, 0.0, 3.0) == pytest.approx(
        scipy.stats.norm.cdf(z), abs=1e-12
    )
    assert probabilistic_sharpe_ratio(0.3, 0.3, 50, 1.0, 9.0) == pytest.approx(0.5, abs=1e-15)


def test_psr_nan_cases():
    assert math.isnan(probabilistic_sharpe_ratio(math.nan, 0.0, 100, 0.0, 3.0))
    assert math.isnan(probabilistic_sharpe_ratio(0.1, 0.0, 1, 0.0, 3.0))
    # 1 - 20·0.1 + 0 < 0: the variance term is negative
    assert math.isnan(probabilistic_sharpe_ratio(0.1, 0.0, 100, 20.0, 1.0))


# ---------------------------------------------------------------- E[max SR]


def test_expected_max_sharpe_worked_number():
    # N = 100, V = 0.25: sqrt(V) = 0.5
    # Φ⁻¹(0.99) = 2.326348, Φ⁻¹(1 - 1/(100e)) = 2.680...
    want = 0.5 * (
        (1 - GAMMA) * scipy.stats.norm.ppf(1 - 1 / 100)
        + GAMMA * scipy.stats.norm.ppf(1 - 1 / (100 * math.e))
    )
    assert expected_max_sharpe(0.25, 100) == pytest.approx(want, abs=1e-12)
    assert expected_max_sharpe(0.25, 100) == pytest.approx(1.2653, abs=1e-4)
    assert expected_max_sharpe(0.25, 1) == 0.0
    assert expected_max_sharpe(0.0, 100) == 0.0


def test_expected_max_sharpe_grows_with_trials_and_rejects_bad_input():
    values = [expected_max_sharpe(0.04, n) for n in (2, 5, 10, 100, 1000, 10**6)]
    assert all(a < b for a, b in itertools.pairwise(values))
    with pytest.raises(ValueError):
        expected_max_sharpe(0.04, 0)
    with pytest.raises(ValueError):
        expected_max_sharpe(-0.01, 10)


# ---------------------------------------------------------------- DSR by hand


def _dsr_by_hand(sr, sr0, n, skew, kurt):
    var_term = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr
    return phi((sr - sr0) * math.sqrt(n - 1) / math.sqrt(var_term))


def test_dsr_by_hand_ten_returns_five_trials():
    r = [0.012, -0.004, 0.007, 0.015, -0.009, 0.003, 0.011, -0.002, 0.006, 0.001]
    # in units of 0.001: sum 40, mean 4, deviations:
    dev = [8, -8, 3, 11, -13, -1, 7, -6, 2, -3]
    assert [round(x * 1000) - 4 for x in r] == dev
    s2, s3, s4 = 526, -732, 55270  # Σd², Σd³, Σd⁴ worked out on paper
    assert (sum(d**2 for d in dev), sum(d**3 for d in dev), sum(d**4 for d in dev)) == (
        s2, s3, s4)
    sr = 4 / math.sqrt(s2 / 9)  # mean / std(ddof=1), unit-free
    m2, m3, m4 = s2 / 10, s3 / 10, s4 / 10
    skew = m3 / m2**1.5
    kurt = m4 / m2**2
    # trials 0.1, 0.3, -0.2, 0.0, 0.2 (NaN ignored): mean 0.08, Σ dev² = 0.148, V = 0.037
    trials = [0.1, 0.3, -0.2, 0.0, 0.2, math.nan]
    v = 0.148 / 4
    sr0 = math.sqrt(v) * (
        (1 - GAMMA) * scipy.stats.norm.ppf(1 - 1 / 5)
        + GAMMA * scipy.stats.norm.ppf(1 - 1 / (5 * math.e))
    )
    res = deflated_sharpe_ratio(r, trials)
    assert (res.n_trials, res.n_obs) == (5, 10)
    assert res.sr == pytest.approx(sr, abs=1e-12)
    assert res.skew == pytest.approx(skew, abs=1e-12)
    assert res.kurtosis == pytest.approx(kurt, abs=1e-12)
    assert res.sr0 == pytest.approx(sr0, abs=1e-12)
    assert res.dsr == pytest.approx(_dsr_by_hand(sr, sr0, 10, skew, kurt), abs=1e-12)
    assert 0.7 < res.dsr < 0.9  # ≈ 0.7926: a decent SR, but 5 trials deflate it


def test_dsr_by_hand_eight_returns_single_trial():
    r = [0.03, -0.01, 0.02, 0.09, -0.02, 0.01, 0.04, 0.00]
    # units of 0.01: sum 16, mean 2, deviations 1 -3 0 7 -4 -1 2 -2
    s2, s3, s4 = 84, 252, 2772
    sr = 2 / math.sqrt(s2 / 7)
    skew = (s3 / 8) / (s2 / 8) ** 1.5
    kurt = (s4 / 8) / (s2 / 8) ** 2
    res = deflated_sharpe_ratio(r, [0.4])  # one trial: SR0 = 0, DSR = PSR(SR, 0)
    assert res.sr0 == 0.0 and res.n_trials == 1
    assert res.skew == pytest.approx(skew, abs=1e-12)
    assert res.kurtosis == pytest.approx(kurt, abs=1e-12)
    assert res.dsr == pytest.approx(_dsr_by_hand(sr, 0.0, 8, skew, kurt), abs=1e-12)


def test_dsr_by_hand_twelve_returns_twenty_trials():
    r = [0.005, -0.003, 0.008, -0.012, 0.006, 0.002, -0.001, 0.009, 0.004, -0.007, 0.010,
         0.003]
    # units of 0.001: sum 24, mean 2; deviations 3 -5 6 -14 4 0 -3 7 2 -9 8 1
    s2, s3, s4 = 490, -2454, 53830
    sr = 2 / math.sqrt(s2 / 11)
    skew = (s3 / 12) / (s2 / 12) ** 1.5
    kurt = (s4 / 12) / (s2 / 12) ** 2
    # trials -0.05, -0.04, ..., 0.14: an arithmetic sequence of 20 with step h = 0.01,
    # so var(ddof=1) = h² · n(n+1)/12 = 1e-4 · 35 = 0.0035
    trials = [0.01 * k for k in range(-5, 15)]
    sr0 = math.sqrt(0.0035) * (
        (1 - GAMMA) * scipy.stats.norm.ppf(1 - 1 / 20)
        + GAMMA * scipy.stats.norm.ppf(1 - 1 / (20 * math.e))
    )
    res = deflated_sharpe_ratio(r, trials)
    assert res.sr0 == pytest.approx(sr0, abs=1e-12)
    assert res.dsr == pytest.approx(_dsr_by_hand(sr, sr0, 12, skew, kurt), abs=1e-12)


@pytest.mark.parametrize("seed", [3, 17])
def test_dsr_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    r = 0.002 + 0.01 * rng.standard_t(4, size=250)
    trials = 0.05 * rng.standard_normal(40) + 0.02
    sd = np.std(r, ddof=1)
    sr = r.mean() / sd
    skew = scipy.stats.skew(r, bias=True)
    kurt = scipy.stats.kurtosis(r, fisher=False, bias=True)
    v = np.var(trials, ddof=1)
    sr0 = math.sqrt(v) * ((1 - GAMMA) * scipy.stats.norm.ppf(1 - 1 / 40)
                          + GAMMA * scipy.stats.norm.ppf(1 - 1 / (40 * math.e)))
    z = (sr - sr0) * math.sqrt(249) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    res = deflated_sharpe_ratio(r, trials)
    assert res.skew == pytest.approx(skew, abs=1e-12)
    assert res.kurtosis == pytest.approx(kurt, abs=1e-10)
    assert res.sr0 == pytest.approx(sr0, abs=1e-12)
    assert res.dsr == pytest.approx(scipy.stats.norm.cdf(z), abs=1e-12)


def test_dsr_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 3 returns"):
        deflated_sharpe_ratio([0.01, 0.02], [0.1])
    with pytest.raises(ValueError, match="NaN or inf"):
        deflated_sharpe_ratio([0.01, math.nan, 0.02], [0.1])
    with pytest.raises(ValueError, match="no finite"):
        deflated_sharpe_ratio([0.01, 0.0, 0.02], [math.nan])


def _trials(n: int, variance: float) -> np.ndarray:
    """n trial Sharpes with sample variance (ddof=1) equal to ``variance``."""
    z = np.arange(n, dtype=float)
    return math.sqrt(variance) * (z - z.mean()) / z.std(ddof=1)


returns_st = arrays(np.float64, st.integers(5, 60), elements=st.floats(-0.05, 0.05))


@settings(max_examples=150, deadline=None)
@given(r=returns_st, n=st.integers(2, 50), extra=st.integers(1, 500),
       v=st.floats(1e-4, 0.5))
def test_dsr_falls_as_trials_grow(r, n, extra, v):
    assume(np.ptp(r) > 1e-6)
    few = deflated_sharpe_ratio(r, _trials(n, v))
    many = deflated_sharpe_ratio(r, _trials(n + extra, v))
    assume(math.isfinite(few.dsr))
    assert many.sr0 > few.sr0
    assert many.dsr <= few.dsr + 1e-12


@settings(max_examples=150, deadline=None)
@given(r=returns_st, n=st.integers(2, 50), v=st.floats(1e-4, 0.5), k=st.floats(1.01, 10))
def test_dsr_falls_as_trial_variance_grows(r, n, v, k):
    assume(np.ptp(r) > 1e-6)
    low = deflated_sharpe_ratio(r, _trials(n, v))
    high = deflated_sharpe_ratio(r, _trials(n, v * k))
    assume(math.isfinite(low.dsr))
    assert high.sr0 > low.sr0
    assert high.dsr <= low.dsr + 1e-12
    assert 0.0 <= high.dsr <= 1.0


# ---------------------------------------------------------------- block bootstrap


def _replay(r, block, n_boot, seed):
    """The documented algorithm, one value at a time with the statistics module."""
    n = len(r)
    mean = math.fsum(r) / n
    x = [v - mean for v in r]
    observed = statistics.mean(r) / statistics.stdev(r)
    k = math.ceil(n / block)
    starts = np.random.default_rng(seed).integers(0, n, size=(n_boot, k))
    hits = 0
    for b in range(n_boot):
        sample = []
        for j in range(k):
            for i in range(block):
                sample.append(x[(int(starts[b, j]) + i) % n])
        sample = sample[:n]
        hits += statistics.mean(sample) / statistics.stdev(sample) >= observed
    return hits, (1 + hits) / (1 + n_boot)


@pytest.mark.parametrize(
    ("r", "block", "n_boot", "seed"),
    [
        ([0.02, -0.01, 0.03, -0.02, -0.03, 0.02], 2, 5, 7),
        ([0.011, -0.004, 0.006, -0.013, -0.009, 0.002, 0.012], 3, 6, 11),
        ([0.01, 0.02, -0.03, 0.005, 0.0, 0.015, -0.01, 0.012], None, 9, 2),
        # 3 blocks of 4 cut to 10 values: the block-by-block order matters here
        ([0.004, -0.012, 0.009, 0.001, -0.006, 0.015, -0.003, 0.007, -0.010, 0.002], 4, 40, 3),
    ],
)
def test_block_bootstrap_replayed_by_hand(r, block, n_boot, seed):
    blk = block if block is not None else 2  # round(8 ** (1/3)) = 2
    hits, want = _replay(r, blk, n_boot, seed)
    assert 0 < hits < n_boot  # the case separates stats on both sides of the observed one
    assert block_bootstrap_pvalue(r, block=block, n_boot=n_boot, seed=seed) == want


def test_block_bootstrap_chunks_do_not_change_the_result(monkeypatch):
    r = np.random.default_rng(5).normal(0.001, 0.01, 100)
    full = block_bootstrap_pvalue(r, n_boot=300, seed=4)
    monkeypatch.setattr(stats, "_CHUNK_ELEMS", 50)
    assert block_bootstrap_pvalue(r, n_boot=300, seed=4) == full


def test_block_bootstrap_detects_drift_and_not_noise():
    r = 0.005 + 0.01 * np.random.default_rng(1).standard_normal(365)
    assert block_bootstrap_pvalue(r, seed=0) < 0.05
    assert block_bootstrap_pvalue(-r, seed=0) > 0.95
    for seed in range(5):
        e = np.random.default_rng(100 + seed).normal(0.0, 0.01, 365)
        e -= e.mean()
        assert block_bootstrap_pvalue(e, seed=seed) > 0.1


def test_block_bootstrap_constant_series():
    assert block_bootstrap_pvalue([0.01] * 10, n_boot=99) == 1 / 100
    assert block_bootstrap_pvalue([0.0] * 10, n_boot=99) == 1.0


def test_block_bootstrap_deterministic_per_seed():
    e = np.random.default_rng(9).normal(0.0005, 0.01, 200)
    ps = [block_bootstrap_pvalue(e, n_boot=500, seed=s) for s in range(4)]
    assert ps == [block_bootstrap_pvalue(e, n_boot=500, seed=s) for s in range(4)]
    assert len(set(ps)) > 1


@settings(max_examples=60, deadline=None)
@given(r=arrays(np.float64, st.integers(3, 80), elements=st.floats(-0.1, 0.1)),
       n_boot=st.integers(1, 60), block=st.one_of(st.none(), st.integers(1, 20)))
def test_block_bootstrap_pvalue_range(r, n_boot, block):
    p = block_bootstrap_pvalue(r, block=block, n_boot=n_boot, seed=3)
    assert 0.0 < p <= 1.0
    hits = p * (1 + n_boot) - 1
    assert hits == pytest.approx(round(hits), abs=1e-9) and 0 <= round(hits) <= n_boot


def test_block_bootstrap_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 3"):
        block_bootstrap_pvalue([0.01, 0.02])
    with pytest.raises(ValueError, match="NaN or inf"):
        block_bootstrap_pvalue([0.01, math.inf, 0.02])
    with pytest.raises(ValueError, match="block"):
        block_bootstrap_pvalue([0.01, 0.0, 0.02], block=0)
    with pytest.raises(ValueError, match="n_boot"):
        block_bootstrap_pvalue([0.01, 0.0, 0.02], n_boot=0)


# ---------------------------------------------------------------- drawdown, daily returns


def test_drawdown_by_hand():
    assert max_drawdown([100, 120, 90, 130, 65, 70]) == pytest.approx(0.5, abs=1e-15)
    # equal peaks: the latest one is the drawdown's peak
    assert worst_drawdown([100, 120, 90, 120, 60, 80]) == (pytest.approx(0.5), 3, 4)
    assert worst_drawdown([1, 2, 3]) == (0.0, 0, 0)
    assert max_drawdown([100.0]) == 0.0
    # undefined (gridflow.metrics rule): NaN, no longer ValueError
    assert math.isnan(max_drawdown([0.0, 1.0])) and math.isnan(max_drawdown([]))


@settings(max_examples=100, deadline=None)
@given(v=arrays(np.float64, st.integers(1, 40), elements=st.floats(0.01, 1000)))
def test_drawdown_matches_brute_force(v):
    want = max([0.0] + [1 - v[j] / v[i] for i in range(len(v)) for j in range(i, len(v))])
    depth, peak, trough = worst_drawdown(v)
    assert depth == pytest.approx(want, abs=1e-12)
    if depth > 0:
        assert peak < trough and 1 - v[trough] / v[peak] == pytest.approx(depth, abs=1e-12)


def test_daily_returns_by_hand():
    d0 = 19_000 * DAY
    ts = [d0, d0 + 12 * 3_600_000, d0 + DAY - 60_000, d0 + DAY + 6 * 3_600_000,
          d0 + 3 * DAY + 3_600_000, d0 + 3 * DAY + 2 * 3_600_000]
    eq = [100, 101, 102, 105, 99, 110]
    days, rets = daily_returns(ts, eq)
    assert days.tolist() == [d0 + DAY, d0 + 3 * DAY]  # day 2 has no sample
    assert rets == pytest.approx([105 / 102 - 1, 110 / 105 - 1], abs=1e-15)
    assert daily_returns([d0], [100.0])[1].size == 0
    with pytest.raises(ValueError, match="non-decreasing"):
        daily_returns([d0 + DAY, d0], [1.0, 2.0])
