"""Letter grade and in-sample window score of gridflow.wfo.grade."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gridflow.wfo.grade import (
    CRITERIA,
    DRAWDOWN_CAP,
    HARD_FAILS,
    LETTER_FLOORS,
    TRADE_CAPS,
    grade,
    grade_score,
    window_score,
)

# every criterion at full points (transfer measured), no cap, no hard fail
PERFECT = {"dsr": 0.97, "mc_pvalue": 0.005, "consistency": 0.85, "oos_is_ratio": 1.1,
           "stability": 0.9, "transfer_ratio": 1.2, "oos_max_drawdown": 0.15,
           "oos_sharpe": 1.6, "oos_trades": 120}


def report(**changes):
    return {**PERFECT, **changes}


def test_criteria_table_adds_up_to_100():
    assert [(c.key, c.points, c.zero, c.full) for c in CRITERIA] == [
        ("oos_is_ratio", 20, 0.0, 1.0), ("mc_pvalue", 20, 0.20, 0.01),
        ("consistency", 20, 0.4, 0.8), ("dsr", 15, 0.5, 0.95),
        ("stability", 10, 0.3, 0.8), ("transfer_ratio", 15, 0.0, 1.0)]
    assert sum(c.points for c in CRITERIA) == 100
    assert {r.key for r in HARD_FAILS} == {"oos_sharpe", "oos_trades"}
    assert TRADE_CAPS == ((30, 60.0), (50, 80.0)) and DRAWDOWN_CAP == (0.30, 69.0)


def test_a_perfect_report_scores_100_and_a():
    g = grade_score(report())
    assert (g.score, g.letter, g.reasons) == (100.0, "A", [])
    assert grade(report()) == ("A", [])


def test_points_by_hand():
    """Half way up each ramp earns half its points: 10 + 10 + 10 + 7.5 + 5 + 7.5."""
    half = report(oos_is_ratio=0.5, mc_pvalue=0.105, consistency=0.6, dsr=0.725,
                  stability=0.55, transfer_ratio=0.5)
    g = grade_score(half)
    assert g.points == pytest.approx({"oos_is_ratio": 10, "mc_pvalue": 10, "consistency": 10,
                                      "dsr": 7.5, "stability": 5, "transfer_ratio": 7.5})
    assert g.score == pytest.approx(50.0) and g.letter == "D"
    assert len(g.reasons) == 6 and all("/ " in r for r in g.reasons)


def test_transfer_not_measured_scores_zero_and_says_so():
    no_transfer = {k: v for k, v in report().items() if k != "transfer_ratio"}
    g = grade_score(no_transfer)
    assert g.points["transfer_ratio"] == 0.0 and g.score == 85.0 and g.letter == "A"
    assert g.reasons == ["transfer_ratio: not measured (no second venue's data): 0 / 15 points"]
    # a NaN ratio (research Sharpe <= 0: nothing to transfer) is measured, earns nothing
    assert grade_score(report(transfer_ratio=math.nan)).score == 85.0


@pytest.mark.parametrize("c", CRITERIA, ids=lambda c: c.key)
def test_nan_and_worse_than_zero_earn_nothing_better_than_full_earns_all(c):
    assert grade_score(report(**{c.key: math.nan})).points[c.key] == 0.0
    worse = c.zero - (c.full - c.zero)
    assert grade_score(report(**{c.key: worse})).points[c.key] == 0.0
    better = c.full + (c.full - c.zero)
    assert grade_score(report(**{c.key: better})).points[c.key] == c.points
    g = grade_score(report(**{c.key: math.nan}))
    assert g.score == 100 - c.points and c.key in g.reasons[0]


@pytest.mark.parametrize(("trades", "cap"), [(29, 60.0), (30, 80.0), (49, 80.0), (50, 100.0)])
def test_few_trades_cap_the_score(trades, cap):
    g = grade_score(report(oos_trades=trades))
    assert g.score == cap
    assert any("fewer than" in r for r in g.reasons) == (cap < 100)


def test_a_deep_drawdown_caps_at_c():
    g = grade_score(report(oos_max_drawdown=0.31))
    assert (g.score, g.letter) == (69.0, "C")
    assert grade_score(report(oos_max_drawdown=0.30)).score == 100.0
    assert grade_score(report(oos_max_drawdown=math.nan)).score == 69.0


@pytest.mark.parametrize(("score", "letter"), [(85, "A"), (84.9, "B"), (70, "B"), (69.9, "C"),
                                               (55, "C"), (54.9, "D"), (40, "D"), (39.9, "F")])
def test_letter_floors(score, letter):
    assert next((lt for lt, f in LETTER_FLOORS if score >= f), "F") == letter
    # reached through the consistency criterion alone: 100 - 20 * (1 - t)
    t = 1 - (100 - score) / 20
    if 0 <= t <= 1:
        g = grade_score(report(consistency=0.4 + 0.4 * t))
        assert g.letter == letter and g.score == pytest.approx(score)


@pytest.mark.parametrize(
    ("changes", "keys"),
    [
        ({"oos_sharpe": 0.0}, ["oos_sharpe"]),
        ({"oos_sharpe": -0.4}, ["oos_sharpe"]),
        ({"oos_trades": 9}, ["oos_trades"]),
        ({"oos_trades": math.nan}, ["oos_trades"]),
        ({"oos_sharpe": -1.0, "oos_trades": 0}, ["oos_sharpe", "oos_trades"]),
    ],
)
def test_hard_fails(changes, keys):
    letter, reasons = grade(report(**changes))
    assert letter == "F"
    hard = [r for r in reasons if r.startswith("hard fail")]
    assert len(hard) == len(keys)
    for line, key in zip(hard, keys):
        assert key in line


def test_missing_key_is_an_error():
    bad = dict(PERFECT)
    del bad["dsr"]
    with pytest.raises(ValueError, match="dsr"):
        grade(bad)


metric = st.floats(-2, 2, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_better_figure_never_lowers_the_score(data):
    base = {c.key: data.draw(metric) for c in CRITERIA}
    base |= {"oos_max_drawdown": data.draw(st.floats(0, 1)), "oos_sharpe": 1.0,
             "oos_trades": data.draw(st.integers(10, 200))}
    c = data.draw(st.sampled_from(CRITERIA))
    step = data.draw(st.floats(0, 1))
    better = base | {c.key: base[c.key] + (step if c.full > c.zero else -step)}
    a, b = grade_score(base), grade_score(better)
    assert b.score >= a.score - 1e-9
    assert 0 <= a.score <= 100


# ---------------------------------------------------------------- window_score


def test_window_score_by_hand():
    # 5 of 10 trades: factor 0.5; drawdown 35 % is 10 % over the 25 % allowance
    assert window_score(0.2, 0.35, 5, 2.0) == pytest.approx(2.0 * math.sqrt(0.5) - 0.5)
    assert window_score(-0.1, 0.20, 5, -1.0) == pytest.approx(-1.0 / math.sqrt(0.5))
    assert window_score(0.1, 0.25, 40, 1.3) == pytest.approx(1.3)
    assert window_score(0.1, 0.10, 20, 0.0) == 0.0
    assert window_score(0.1, 0.10, 4, 1.0, min_trades=16) == pytest.approx(0.5)
    assert isinstance(window_score(0.1, 0.1, 20, 1.0), float)


@pytest.mark.parametrize(
    "args",
    [(0.1, 0.1, 0, 2.0), (0.1, 0.1, -3, 2.0), (0.1, 0.1, 20, math.nan),
     (0.1, math.nan, 20, 2.0), (math.nan, 0.1, 20, 2.0), (0.1, 0.1, 20, math.inf)],
)
def test_window_score_minus_inf(args):
    assert window_score(*args) == -math.inf


def test_window_score_bad_min_trades():
    with pytest.raises(ValueError):
        window_score(0.1, 0.1, 20, 1.0, min_trades=0)


sharpes = st.floats(-10, 10)
dds = st.floats(0, 1)


@settings(max_examples=300, deadline=None)
@given(sr=sharpes, dd=dds, t1=st.integers(0, 50), dt=st.integers(0, 50), m=st.integers(1, 30))
def test_fewer_trades_never_score_better(sr, dd, t1, dt, m):
    few = window_score(0.1, dd, t1, sr, min_trades=m)
    more = window_score(0.1, dd, t1 + dt, sr, min_trades=m)
    assert few <= more


@settings(max_examples=200, deadline=None)
@given(sr=sharpes, dd=dds, ddd=dds, t=st.integers(1, 50))
def test_deeper_drawdown_never_scores_better(sr, dd, ddd, t):
    assert window_score(0.1, dd + ddd, t, sr) <= window_score(0.1, dd, t, sr)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 20), data=st.data())
def test_window_score_array_matches_scalars(n, data):
    def arr(elements):
        return data.draw(arrays(np.float64, n, elements=elements))

    pnl = arr(st.floats(-1, 1) | st.just(math.nan))
    dd = arr(st.floats(0, 1))
    trades = data.draw(arrays(np.int64, n, elements=st.integers(0, 40)))
    sr = arr(st.floats(-5, 5) | st.just(math.nan))
    got = window_score(pnl, dd, trades, sr)
    assert isinstance(got, np.ndarray) and got.shape == (n,)
    want = [window_score(float(a), float(b), int(c), float(d))
            for a, b, c, d in zip(pnl, dd, trades, sr)]
    assert got.tolist() == want
    # broadcasting a scalar against the arrays
    assert window_score(0.1, 0.2, trades, 1.5).tolist() == [
        window_score(0.1, 0.2, int(c), 1.5) for c in trades]
