"""gridflow.metrics: a hand-worked example, the one edge-case rule, and the returns form
equal to the running-sums form (the sweep kernel's) on random data."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gridflow import metrics as gm

D = 86_400_000
H = 3_600_000
NAN = math.nan


def _moments(r) -> tuple[int, float, float, float]:
    """n, Σr, Σr², Σmin(r, 0)² accumulated one return at a time, as the sweep kernel."""
    n = s1 = s2 = d2 = 0.0
    for x in r:
        n += 1
        s1 += x
        s2 += x * x
        if x < 0.0:
            d2 += x * x
    return n, s1, s2, d2


def isnan(x) -> bool:
    return isinstance(x, float) and math.isnan(x)


# ---------------------------------------------------------------- by hand


def test_worked_example():
    # day 0 closes at 100, day 1 at 110 (after an intraday dip to 88), day 2 at 99,
    # day 3 at 108.9: returns +10 %, -10 %, +10 %
    d0 = 19_000 * D
    ts = [d0 + H, d0 + 23 * H, d0 + D + H, d0 + D + 5 * H, d0 + D + 20 * H,
          d0 + 2 * D + 23 * H, d0 + 3 * D]
    eq = [90.0, 100.0, 120.0, 88.0, 110.0, 99.0, 108.9]
    days, r = gm.daily_returns(ts, eq)
    assert days.tolist() == [d0 + D, d0 + 2 * D, d0 + 3 * D]
    np.testing.assert_allclose(r, [0.1, -0.1, 0.1], rtol=0, atol=1e-12)
    # mean 1/30, deviations 1/15, -2/15, 1/15: var(ddof 1) = (6/225) / 2 = 1/75
    # Sharpe per day = (1/30) * sqrt(75) = sqrt(3) / 6
    assert gm.sharpe(r, 1) == pytest.approx(math.sqrt(3) / 6, rel=1e-12)
    assert gm.daily_sharpe(ts, eq) == pytest.approx(math.sqrt(3) / 6 * math.sqrt(365), rel=1e-12)
    # downside: mean(min(r, 0)²) = 0.01 / 3, Sortino per day = (1/30) / (0.1 / sqrt(3))
    assert gm.sortino(r, 1) == pytest.approx(math.sqrt(3) / 3, rel=1e-12)
    # the same from sums: n 3, Σr 0.1, Σr² 0.03, Σ negative² 0.01
    assert gm.sharpe_from_moments(3, 0.1, 0.03, 1) == pytest.approx(math.sqrt(3) / 6, rel=1e-9)
    assert gm.sortino_from_moments(3, 0.1, 0.01, 1) == pytest.approx(math.sqrt(3) / 3, rel=1e-12)
    # peak 120 (intraday), trough 88: (120 - 88) / 120; after that the dip to 99 is 17.5 %
    assert gm.max_drawdown(eq) == pytest.approx(32 / 120, rel=1e-12)
    assert gm.worst_drawdown(eq) == (pytest.approx(32 / 120), 2, 3)
    np.testing.assert_allclose(gm.drawdown([100, 120, 90, 130]), [0, 0, 0.25, 0])
    # +21 % over two years is 10 % a year; over a 20 % drawdown Calmar 0.5
    assert gm.annualised_return(0.21, 730) == pytest.approx(0.1, rel=1e-12)
    assert gm.calmar(0.21, 730, 0.2) == pytest.approx(0.5, rel=1e-12)
    assert gm.annualised_return(-1.5, 10) == -1.0  # more than everything lost: -100 %


def test_matches_the_statistics_module():
    r = [0.012, -0.004, 0.007, 0.015, -0.009, 0.003, 0.011, -0.002, 0.006, 0.001]
    want = statistics.mean(r) / statistics.stdev(r)
    assert gm.sharpe(r, 1) == pytest.approx(want, rel=1e-12)
    assert gm.sharpe(r) == pytest.approx(want * math.sqrt(365), rel=1e-12)


# ---------------------------------------------------------------- the one rule


@pytest.mark.parametrize("r", [[], [0.01], [0.01] * 10, [0.0, 0.0, 0.0], [0.01, NAN, 0.02],
                               [0.01, math.inf, 0.0], [1 / 3] * 200])
def test_sharpe_nan_when_undefined(r):
    assert isnan(gm.sharpe(r))
    n, s1, s2, _ = _moments(r)
    assert isnan(gm.sharpe_from_moments(n, s1, s2))


@pytest.mark.parametrize("r", [[], [-0.01], [0.01, 0.02, 0.0], [0.0, 0.0], [-0.01, NAN]])
def test_sortino_nan_when_undefined(r):
    assert isnan(gm.sortino(r))
    n, s1, _, d2 = _moments(r)
    assert isnan(gm.sortino_from_moments(n, s1, d2))


def test_drawdown_rule():
    assert isnan(gm.max_drawdown([]))
    assert gm.max_drawdown([100.0]) == 0.0
    assert gm.max_drawdown([1.0, 2.0, 3.0]) == 0.0
    assert gm.worst_drawdown([1.0, 2.0, 3.0]) == (0.0, 0, 0)
    for bad in ([0.0, 1.0], [-1.0, 2.0], [1.0, NAN], [1.0, math.inf, 1.0]):
        assert isnan(gm.max_drawdown(bad))
        assert np.isnan(gm.drawdown(bad)).all()
    depth, peak, trough = gm.worst_drawdown([])
    assert isnan(depth) and (peak, trough) == (-1, -1)
    assert gm.max_drawdown([100.0, 120.0, -12.0]) == pytest.approx(1.1)  # below zero
    assert gm.drawdown([]).shape == (0,)


def test_calmar_rule():
    assert isnan(gm.calmar(0.1, 365, 0.0))  # no drawdown
    assert isnan(gm.calmar(0.1, 365, NAN))
    assert isnan(gm.calmar(0.1, 0, 0.2))  # no time
    assert isnan(gm.annualised_return(0.1, -1))
    assert gm.calmar(-1.0, 100, 1.0) == -1.0
    got = gm.calmar(np.array([0.21, 0.21, 0.1]), np.array([730, 730, 0]),
                    np.array([0.2, 0.0, 0.1]))
    np.testing.assert_allclose(got, [0.5, NAN, NAN])


def test_daily_returns_rule():
    d0 = 20_000 * D
    _, r = gm.daily_returns([d0, d0 + D, d0 + 2 * D, d0 + 3 * D], [100.0, 0.0, 50.0, 60.0])
    np.testing.assert_allclose(r, [-1.0, NAN, 0.2])  # a return off 0 equity is undefined
    assert isnan(gm.daily_sharpe([d0, d0 + D, d0 + 2 * D, d0 + 3 * D], [100, 0, 50, 60]))
    assert gm.daily_returns([], [])[1].shape == (0,)
    assert gm.daily_returns([d0, d0 + H], [1.0, 2.0])[1].shape == (0,)  # one day
    assert isnan(gm.daily_sharpe([], []))
    assert isnan(gm.daily_sharpe([d0, d0 + D], [1.0, 2.0]))  # one return
    with pytest.raises(ValueError, match="non-decreasing"):
        gm.daily_returns([d0 + D, d0], [1.0, 2.0])
    with pytest.raises(ValueError, match="same length"):
        gm.daily_returns([d0], [1.0, 2.0])


def test_misuse_raises():
    for f in (gm.sharpe, gm.sortino):
        with pytest.raises(ValueError, match="periods_per_year"):
            f([0.01, 0.02], 0)
        with pytest.raises(ValueError, match="axis"):
            f(0.01)
    with pytest.raises(ValueError, match="periods_per_year"):
        gm.sharpe_from_moments(3, 0.1, 0.03, -1)
    with pytest.raises(ValueError, match="1-D"):
        gm.max_drawdown([[1.0, 2.0]])


def test_shapes_and_types():
    assert type(gm.sharpe([0.01, 0.02])) is float
    assert type(gm.sharpe_from_moments(2, 0.03, 0.0005)) is float
    x = np.random.default_rng(0).normal(0.001, 0.01, (4, 30))
    x[2] = 0.0
    rows = gm.sharpe(x)
    assert rows.shape == (4,) and np.isnan(rows[2])
    for i in (0, 1, 3):
        assert rows[i] == pytest.approx(gm.sharpe(x[i]), rel=1e-14)
    assert gm.sharpe(np.zeros((3, 1))).shape == (3,)
    mom = [_moments(row) for row in x]
    n, s1, s2, d2 = (np.array(c) for c in zip(*mom, strict=True))
    np.testing.assert_allclose(gm.sharpe_from_moments(n, s1, s2), rows, rtol=1e-9)
    np.testing.assert_allclose(gm.sortino_from_moments(n, s1, d2), gm.sortino(x), rtol=1e-12)


# ---------------------------------------------------------------- two forms, one metric

returns = arrays(np.float64, st.integers(0, 60),
                 elements=st.one_of(st.just(0.0), st.floats(-0.5, 0.5), st.just(0.003)))


@settings(max_examples=300, deadline=None)
@given(r=returns)
def test_moment_form_equals_returns_form(r):
    n, s1, s2, d2 = _moments(r)
    if r.size >= 2:
        ms = float(np.mean(r * r))
        rel = float(np.var(r, ddof=1)) / ms if ms > 0 else 0.0
        # between "identical" and "well conditioned" the one-pass variance loses digits
        assume(not gm.VAR_RTOL / 100 < rel < 1e-6)
    a, b = gm.sharpe(r), gm.sharpe_from_moments(n, s1, s2)
    assert isnan(a) == isnan(b)
    if not isnan(a):
        assert b == pytest.approx(a, rel=1e-7, abs=1e-12)
    a, b = gm.sortino(r), gm.sortino_from_moments(n, s1, d2)
    assert isnan(a) == isnan(b)
    if not isnan(a):
        assert b == pytest.approx(a, rel=1e-12, abs=1e-14)


@settings(max_examples=100, deadline=None)
@given(steps=arrays(np.float64, st.integers(1, 40), elements=st.floats(-0.2, 0.2)),
       gaps=st.lists(st.integers(1, 40), min_size=40, max_size=40))
def test_curve_form_equals_moments_of_its_daily_closes(steps, gaps):
    eq = 1_000.0 * np.cumprod(1.0 + steps)
    ts = 19_000 * D + np.cumsum(np.array(gaps[: eq.size]) * H)
    day = ts // D
    closes = eq[np.append(day[1:] != day[:-1], True)]
    r = closes[1:] / closes[:-1] - 1.0
    n, s1, s2, d2 = _moments(r)
    a, b = gm.daily_sharpe(ts, eq), gm.sharpe_from_moments(n, s1, s2)
    assert isnan(a) == isnan(b)
    if not isnan(a):
        assert b == pytest.approx(a, rel=1e-7)
    assert gm.sortino(gm.daily_returns(ts, eq)[1]) == pytest.approx(
        gm.sortino_from_moments(n, s1, d2), rel=1e-12, nan_ok=True)


@settings(max_examples=100, deadline=None)
@given(v=arrays(np.float64, st.integers(1, 40), elements=st.floats(0.01, 1000)))
def test_max_drawdown_is_the_deepest_fall(v):
    want = max([0.0] + [1 - v[j] / v[i] for i in range(len(v)) for j in range(i, len(v))])
    assert gm.max_drawdown(v) == pytest.approx(want, abs=1e-12)
