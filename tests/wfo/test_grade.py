"""Letter grade and in-sample window score of gridflow.wfo.grade."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gridflow.wfo.grade import GRADE_RULES, HARD_FAILS, grade, window_score

GOOD = {"dsr": 0.97, "mc_pvalue": 0.01, "consistency": 0.75, "oos_is_ratio": 0.7,
        "stability": 0.8, "oos_max_drawdown": 0.15, "oos_sharpe": 1.6, "oos_trades": 120}
# a failing value for each counted rule that leaves the hard fails alone
FAILING = {"dsr": 0.9, "mc_pvalue": 0.2, "consistency": 0.5, "oos_is_ratio": 0.3,
           "stability": 0.4, "oos_max_drawdown": 0.45, "oos_sharpe": 0.8}


def report(**changes):
    return {**GOOD, **changes}


def failing(*keys):
    return report(**{k: FAILING[k] for k in keys})


def test_rule_table():
    assert [(r.number, r.key, r.op, r.threshold) for r in GRADE_RULES] == [
        (1, "dsr", ">=", 0.95),
        (2, "mc_pvalue", "<=", 0.05),
        (3, "consistency", ">=", 0.6),
        (4, "oos_is_ratio", ">=", 0.5),
        (5, "stability", ">=", 0.6),
        (6, "oos_max_drawdown", "<=", 0.30),
        (7, "oos_sharpe", ">=", 1.0),
    ]
    assert {r.key for r in HARD_FAILS} == {"oos_sharpe", "oos_trades"}


@pytest.mark.parametrize(
    ("keys", "letter"),
    [
        ((), "A"),
        (("stability",), "B"),
        (("stability", "dsr"), "C"),
        (("stability", "dsr", "mc_pvalue"), "D"),
        (("stability", "dsr", "mc_pvalue", "consistency"), "D"),
        (("stability", "dsr", "mc_pvalue", "consistency", "oos_is_ratio"), "F"),
        (tuple(FAILING), "F"),
    ],
)
def test_each_letter(keys, letter):
    got, reasons = grade(failing(*keys))
    assert got == letter
    rule_lines = [r for r in reasons if r.startswith("rule ")]
    assert len(rule_lines) == len(keys)
    for key in keys:
        assert any(key in line for line in rule_lines)
    assert any("rules passed" in r for r in reasons) == (len(keys) > 4)


@pytest.mark.parametrize("rule", GRADE_RULES, ids=lambda r: r.key)
def test_each_rule_alone_costs_one_letter_and_is_named(rule):
    letter, reasons = grade(failing(rule.key))
    assert letter == "B"
    assert len(reasons) == 1
    assert reasons[0].startswith(f"rule {rule.number} ") and rule.key in reasons[0]


@pytest.mark.parametrize("rule", GRADE_RULES, ids=lambda r: r.key)
def test_nan_fails_its_rule(rule):
    letter, reasons = grade(report(**{rule.key: math.nan}))
    assert rule.key in reasons[0] and "nan" in reasons[0]
    # a NaN Sharpe is also a hard fail; every other NaN costs one letter
    assert letter == ("F" if rule.key == "oos_sharpe" else "B")


def test_thresholds_are_inclusive():
    edge = {"dsr": 0.95, "mc_pvalue": 0.05, "consistency": 0.6, "oos_is_ratio": 0.5,
            "stability": 0.6, "oos_max_drawdown": 0.30, "oos_sharpe": 1.0, "oos_trades": 10}
    assert grade(edge) == ("A", [])


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
    bad = dict(GOOD)
    del bad["dsr"]
    with pytest.raises(ValueError, match="dsr"):
        grade(bad)


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


def test_the_transfer_rule_counts_only_when_measured():
    from gridflow.wfo.grade import TRANSFER_RULE

    assert (TRANSFER_RULE.number, TRANSFER_RULE.key, TRANSFER_RULE.op,
            TRANSFER_RULE.threshold) == (8, "transfer_ratio", ">=", 0.5)
    assert grade(report())[0] == "A"
    assert grade(report(transfer_ratio=0.9))[0] == "A"
    letter, reasons = grade(report(transfer_ratio=0.2))
    assert letter == "B" and reasons[0].startswith("rule 8 ")
    assert grade(report(transfer_ratio=math.nan))[0] == "B"  # research Sharpe <= 0
    # eight rules: F once five fail
    assert grade(failing("stability", "dsr", "mc_pvalue", "consistency") | {
        "transfer_ratio": 0.1})[0] == "F"
