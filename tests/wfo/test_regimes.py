"""Regime labels of gridflow.wfo.regimes on hand-built price paths."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gridflow.wfo.regimes import (
    CRASH_DAYS,
    CRASH_DRAWDOWN,
    REGIME_RULES,
    REGIMES,
    TREND_RETURN,
    regime_label,
    regime_labels,
)

DAY = 86_400_000
HOUR = 3_600_000


def path(*legs):
    """Piecewise-linear closes: ``path(100, (65, 10))`` goes 100 → 65 in 10 candles."""
    out = [float(legs[0])]
    for target, steps in legs[1:]:
        out.extend(np.linspace(out[-1], target, steps + 1)[1:])
    return np.array(out)


def test_constants_and_rule_table():
    assert (CRASH_DRAWDOWN, CRASH_DAYS, TREND_RETURN) == (0.30, 30, 0.15)
    for word in ("crash", "bull", "bear", "range", "CRASH_DRAWDOWN", "TREND_RETURN"):
        assert word in REGIME_RULES


@pytest.mark.parametrize(
    ("close", "label"),
    [
        (path(100, (120, 60)), "bull"),
        (path(100, (80, 100)), "bear"),  # -20 %, drawdown 20 % < 30 %
        (path(100, (110, 20), (95, 20), (105, 20)), "range"),
        (path(100, (100, 5), (65, 10)), "crash"),
        (path(100, (60, 5), (130, 60)), "crash"),  # +30 % total but crash is checked first
        (path(100, (110, 30), (70, 20), (90, 40)), "crash"),  # 36 % fall in 20 days
        (np.array([100.0]), "range"),
    ],
)
def test_hand_built_paths(close, label):
    assert regime_label(close, DAY) == label


def test_35_percent_drop_speed_decides_crash():
    assert regime_label(path(100, (65, 40)), DAY) == "bear"  # 40 days: not a crash
    assert regime_label(path(100, (65, 40), (90, 10)), DAY) == "range"  # total -10 %
    assert regime_label(path(100, (65, 10)), DAY) == "crash"  # 10 days
    assert regime_label(path(100, (65, 10), (100, 30)), DAY) == "crash"
    # the same number of candles at 1h is a 10-hour fall: crash; 40 days of hours: bear
    assert regime_label(path(100, (65, 40)), HOUR) == "crash"
    assert regime_label(path(100, (65, 40 * 24)), HOUR) == "bear"
    assert regime_label(path(100, (65, 10 * 24)), HOUR) == "crash"


def test_only_the_worst_drawdown_is_timed():
    # a fast 25 % leg then a slow grind to a 40 % drawdown over 62 days: not a crash
    assert regime_label(path(100, (75, 2), (60, 60)), DAY) == "bear"


@pytest.mark.parametrize(
    ("close", "label"),
    [
        ([100.0, 115.0], "bull"),  # exactly +15 %
        ([100.0, 114.99], "range"),
        ([100.0, 85.0], "bear"),  # exactly -15 %
        ([100.0, 85.01], "range"),
        ([200.0, 230.0], "bull"),
        ([0.7, 0.805], "bull"),  # +15 % with awkward floating point
        ([100.0, 70.0], "crash"),  # exactly 30 % in one day
        ([100.0, 70.01], "bear"),  # 29.99 %
        ([100.0, 70.0, 101.0], "crash"),
    ],
)
def test_boundaries(close, label):
    assert regime_label(close, DAY) == label


def test_crash_span_boundary_is_inclusive():
    assert regime_label(path(100, (70, 30)), DAY) == "crash"  # peak-to-trough 30 days
    assert regime_label(path(100, (70, 31)), DAY) == "bear"  # 31 days
    assert regime_label(path(100, (70, 30 * 24)), HOUR) == "crash"
    assert regime_label(path(100, (70, 30 * 24 + 1)), HOUR) == "bear"


@pytest.mark.parametrize("bad", [[], [100.0, 0.0], [100.0, np.nan], [[100.0, 101.0]]])
def test_rejects_bad_prices(bad):
    with pytest.raises(ValueError):
        regime_label(bad, DAY)


def test_regime_labels_half_open_windows():
    close = np.concatenate([path(100, (120, 30)), path(120, (70, 10))[1:], [70.0, 70.0, 84.0]])
    ts = 1_700_000_000_000 - 1_700_000_000_000 % DAY + DAY * np.arange(close.size)
    t = ts.tolist()
    windows = [
        (t[0], t[31]),  # 31 candles 100 → 120: bull
        (t[30], t[41]),  # 120 → 70 in 10 days: crash
        (t[40], t[43]),  # 70, 70, 70: range (end candle excluded)
        (t[40], t[43] + 1),  # 70 → 84: bull once the end candle is included
    ]
    assert regime_labels(ts, close, windows) == ["bull", "crash", "range", "bull"]
    with pytest.raises(ValueError, match="holds no candle"):
        regime_labels(ts, close, [(t[-1] + 1, t[-1] + DAY)])
    with pytest.raises(ValueError, match="strictly increasing"):
        regime_labels(ts[::-1], close, windows)


def test_regime_labels_timeframe_from_smallest_gap():
    close = path(100, (65, 10))
    ts = HOUR * np.arange(close.size)
    assert regime_labels(ts, close, [(0, int(ts[-1]) + 1)]) == ["crash"]
    assert regime_labels(ts, close, [(0, int(ts[-1]) + 1)], tf_ms=5 * DAY) == ["bear"]


@settings(max_examples=200, deadline=None)
@given(c=arrays(np.float64, st.integers(1, 80), elements=st.floats(1.0, 1000.0)),
       e=st.integers(-20, 20), tf=st.sampled_from([HOUR, 4 * HOUR, DAY]))
def test_label_is_known_and_scale_free(c, e, tf):
    label = regime_label(c, tf)
    assert label in REGIMES
    assert regime_label(c * 2.0**e, tf) == label  # exact rescaling keeps every ratio
    if label == "bull":
        assert c[-1] / c[0] > 1.14
    if label == "bear":
        assert c[-1] / c[0] < 0.86
