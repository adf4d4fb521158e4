"""Tests for gridflow.operators.indicators.regime: the streaming ``regime_<window>`` equals
gridflow.wfo.regimes.regime_label of every trailing window, is causal, chunk-invariant and
picklable; its worst drawdown matches gridflow.metrics bit for bit."""

from __future__ import annotations

import functools
import itertools
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gridflow
from gridflow import metrics
from gridflow.data.candle_files import read_candle_file
from gridflow.operators.indicators import KINDS, IndicatorBank, parse_indicator
from gridflow.operators.indicators import regime as regime_mod
from gridflow.operators.indicators.regime import (
    REGIME_CODES,
    RegimeState,
    market_regime,
    regime_code,
    window_worst_drawdown,
)
from gridflow.wfo import regimes as wfo_regimes
from gridflow.wfo.regimes import REGIMES, regime_label

CANDLE_DIR = Path(gridflow.__file__).parent / "data" / "candles"
H = 3_600_000
DAY = 86_400_000


@functools.cache
def btc() -> tuple[np.ndarray, np.ndarray]:
    d = read_candle_file(CANDLE_DIR / "binance_BTC_USDT_1h.csv.gz")
    return np.asarray(d["ts"]), np.asarray(d["close"], dtype=np.float64)


def reference(close: np.ndarray, w: int, tf_ms: int) -> np.ndarray:
    """regime_label of every trailing window, as codes; NaN in the warm-up."""
    out = np.full(close.shape[0], np.nan)
    for t in range(w - 1, close.shape[0]):
        out[t] = REGIME_CODES[regime_label(close[t - w + 1:t + 1], tf_ms)]
    return out


def walk(seed: int, n: int, kind: str) -> np.ndarray:
    """Random closes: a log random walk, with crash-like drops, flat, or on a coarse tick
    grid (many equal closes: ties of the running maximum)."""
    rng = np.random.default_rng(seed)
    if kind == "flat":
        return np.full(n, 123.45)
    steps = rng.normal(0.0, 0.02, n)
    if kind == "crash":  # a few sharp falls (-30 % .. -50 % over 2-20 candles) and rebounds
        for start in rng.integers(0, n - 40, 4):
            k = int(rng.integers(2, 21))
            steps[start:start + k] += math.log(rng.uniform(0.5, 0.7)) / k
    c = 100.0 * np.exp(np.cumsum(steps))
    if kind == "ticks":
        c = np.maximum(np.round(c / 5.0) * 5.0, 5.0)
        c[n // 3:n // 3 + 30] = c[n // 3]  # a flat stretch inside a moving series
    return c


# ------------------------------------------------------------ the rule and the drawdown

def test_codes_follow_the_wfo_labels_and_constants_are_one_definition():
    assert REGIME_CODES == {"crash": 0, "bull": 1, "bear": 2, "range": 3}
    assert tuple(REGIME_CODES) == REGIMES
    for name in ("CRASH_DRAWDOWN", "CRASH_DAYS", "TREND_RETURN", "_EPS", "REGIMES"):
        assert getattr(wfo_regimes, name) is getattr(regime_mod, name), name
    assert "CRASH_DRAWDOWN" in wfo_regimes.REGIME_RULES and "range" in wfo_regimes.REGIME_RULES


@pytest.mark.parametrize(("depth", "span", "total", "code"), [
    (0.30, 30 * DAY, 0.5, 0),  # both crash bounds inclusive; crash before bull
    (0.30 - 0.5e-9, 0, 0.0, 0),  # within the slack
    (0.30 - 2e-9, 0, 0.0, 3),
    (0.30, 30 * DAY + 1, 0.0, 3),  # too slow: not a crash
    (0.30, 30 * DAY + 1, -0.2, 2),
    (0.0, 0, 0.15, 1),
    (0.0, 0, 0.15 - 2e-9, 3),
    (0.0, 0, -0.15, 2),
    (0.0, 0, -0.15 + 2e-9, 3),
    (math.nan, 0, math.nan, 3),
])
def test_regime_code_rule(depth, span, total, code):
    assert regime_code(depth, span, total) == code


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([1.0, 2.0, 3.0, 3.5, 4.0, 7.0, 0.1 + 0.2, 0.3]),
                min_size=1, max_size=40) | st.lists(st.floats(1e-3, 1e6), min_size=1,
                                                     max_size=40))
def test_worst_drawdown_matches_metrics_bit_for_bit(values):
    x = np.array(values, dtype=np.float64)
    depth, peak, trough = window_worst_drawdown(x)
    want = metrics.worst_drawdown(x)
    assert (depth, peak, trough) == want
    assert np.float64(depth).tobytes() == np.float64(want[0]).tobytes()


def test_worst_drawdown_tie_rules():
    # two equal peaks before the trough: the later one; two equal troughs: the first
    assert window_worst_drawdown(np.array([5.0, 3.0, 5.0, 2.0, 4.0, 2.0])) == (0.6, 2, 3)
    assert window_worst_drawdown(np.array([1.0, 2.0, 3.0])) == (0.0, 0, 0)
    assert window_worst_drawdown(np.array([4.0, 4.0, 4.0])) == (0.0, 0, 0)


# ------------------------------------------------------- equality with regime_label

@pytest.mark.parametrize("kind", ["walk", "crash", "flat", "ticks"])
@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize(("w", "tf_ms"), [(2, DAY), (5, DAY), (48, H), (48, DAY), (168, H)])
def test_equals_regime_label_on_random_walks(kind, seed, w, tf_ms):
    close = walk(seed, 600, kind)
    got = market_regime(close, w, tf_ms)
    np.testing.assert_array_equal(got, reference(close, w, tf_ms))
    if kind == "flat":
        assert set(got[w - 1:]) == {3.0}


def test_random_walks_reach_every_regime():
    """The random-walk cases above are not vacuous: every code occurs."""
    seen = set()
    for kind in ("walk", "crash"):
        for seed in (0, 1, 7):
            for w, tf_ms in ((48, H), (48, DAY), (168, H)):
                seen |= set(market_regime(walk(seed, 600, kind), w, tf_ms)[w - 1:].tolist())
    assert seen == {0.0, 1.0, 2.0, 3.0}


@pytest.mark.parametrize("w", [48, 168, 720])
def test_equals_regime_label_on_bundled_btc(w):
    # 3000 hourly candles around the March 2020 crash (BTC -50 % in two days)
    ts, c = btc()
    lo = int(np.searchsorted(ts, 1_580_515_200_000))  # 2020-02-01 UTC
    close = c[lo:lo + 3000]
    bank = IndicatorBank([f"regime_{w}"], "1h")
    got = bank.update(ts[lo:lo + 3000], close, close, close, close)[f"regime_{w}"]
    want = reference(close, w, H)
    np.testing.assert_array_equal(got, want)
    assert {0.0, 1.0, 2.0} <= set(got[w - 1:].tolist())  # crash, bull and bear all occur


@pytest.mark.parametrize(("close", "label"), [
    ([100.0, 115.0], "bull"),  # exactly +15 %
    ([100.0, 114.99], "range"),
    ([100.0, 85.0], "bear"),
    ([0.7, 0.805], "bull"),  # +15 % with awkward floating point
    ([100.0, 70.0], "crash"),  # exactly 30 %
    ([100.0, 70.01], "bear"),
])
def test_boundaries_as_regime_label(close, label):
    assert regime_label(close, DAY) == label
    assert market_regime(np.array(close), 2, DAY)[1] == REGIME_CODES[label]


def test_crash_span_uses_the_timeframe():
    close = np.linspace(100.0, 70.0, 32)  # a 30 % fall over 31 candles
    assert market_regime(close, 32, DAY)[-1] == REGIME_CODES["bear"]  # 31 days
    assert market_regime(close, 32, H)[-1] == REGIME_CODES["crash"]  # 31 hours
    assert market_regime(close[1:], 31, DAY)[-1] == REGIME_CODES["bear"]  # < 30 % now
    assert market_regime(np.linspace(100.0, 70.0, 31), 31, DAY)[-1] == REGIME_CODES["crash"]


# ---------------------------------------------------------- streaming properties

@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), kind=st.sampled_from(["walk", "crash", "ticks"]),
       w=st.integers(2, 60), cuts=st.lists(st.integers(0, 400), max_size=6))
def test_chunk_invariance_and_pickle_mid_stream(seed, kind, w, cuts):
    close = walk(seed, 400, kind)
    whole = market_regime(close, w, H)
    state, parts = RegimeState(w, H), []
    bounds = [0, *sorted(cuts), 400]
    for a, b in itertools.pairwise(bounds):
        parts.append(state.update_many(close[a:b]))
        state = pickle.loads(pickle.dumps(state))  # a snapshot between every two chunks
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    single = RegimeState(w, H)
    np.testing.assert_array_equal([single.update(x) for x in close], whole)


def test_bank_pickle_round_trip_mid_stream():
    ts, c = btc()
    ts, c = ts[:2000], c[:2000]
    names = ["regime_48", "regime_168", "regime_24@4h"]
    whole = IndicatorBank(names, "1h").update(ts, c, c, c, c)
    bank = IndicatorBank(names, "1h")
    first = bank.update(ts[:777], c[:777], c[:777], c[:777], c[:777])
    bank = pickle.loads(pickle.dumps(bank))
    second = bank.update(ts[777:], c[777:], c[777:], c[777:], c[777:])
    for key in names:
        np.testing.assert_array_equal(np.concatenate([first[key], second[key]]), whole[key])
    assert np.isfinite(whole["regime_24@4h"][-1000:]).all()


@pytest.mark.parametrize("seed", [0, 3])
def test_no_look_ahead(seed):
    rng = np.random.default_rng(seed)
    close = walk(seed, 500, "crash")
    w = 40
    full = market_regime(close, w, H)
    for t in rng.integers(0, 499, 25):
        other = close.copy()
        other[t + 1:] = close[t] * np.exp(np.cumsum(rng.normal(0.0, 0.2, 499 - t)))
        changed = market_regime(other, w, H)
        np.testing.assert_array_equal(changed[:t + 1], full[:t + 1])
        assert not np.array_equal(changed, full) or t + 1 >= 499 - w  # the tail did change


def test_invalid_close_gives_nan_for_the_windows_holding_it():
    close = walk(0, 100, "walk")
    w = 10
    good = market_regime(close, w, H)
    for bad in (np.nan, np.inf, 0.0, -1.0):
        c = close.copy()
        c[50] = bad
        got = market_regime(c, w, H)
        assert np.isnan(got[50:50 + w]).all()
        np.testing.assert_array_equal(got[:50], good[:50])
        np.testing.assert_array_equal(got[50 + w:], reference(np.where(np.isfinite(c) & (c > 0),
                                                                       c, 1.0), w, H)[50 + w:])


# --------------------------------------------------------- bank: warm-up and errors

def test_bank_warm_up_and_codes():
    ts, c = btc()
    ts, c = ts[:1000], c[:1000]
    bank = IndicatorBank(["regime_168"], "1h")
    assert bank.outputs == ["regime_168"]
    out = bank.update(ts, c, c, c, c)["regime_168"]
    assert out.dtype == np.float64 and out.shape == (1000,)
    assert np.isnan(out[:167]).all() and np.isfinite(out[167:]).all()
    assert set(out[167:].tolist()) <= {0.0, 1.0, 2.0, 3.0}
    assert KINDS["regime"].params == (("window", int),)
    assert KINDS["regime"].inputs == ("close",) and KINDS["regime"].outputs == ()
    assert KINDS["regime"].context == ("timeframe_ms",)
    assert parse_indicator("regime_720").name == "regime_720"


@pytest.mark.parametrize("name", ["regime_1", "regime_0"])
def test_bank_rejects_a_window_below_two(name):
    with pytest.raises(ValueError, match=r"regime window must be >= 2"):
        IndicatorBank([name], "1h")


def test_bad_parameters():
    with pytest.raises(ValueError, match="needs the bank's timeframe"):
        IndicatorBank(["regime_168"])
    with pytest.raises(ValueError, match="takes 1 parameter"):
        IndicatorBank(["regime_24_2"], "1h")
    with pytest.raises(ValueError, match="window must be an int"):
        RegimeState(2.5, H)
    with pytest.raises(ValueError, match="window must be an int"):
        RegimeState(True, H)
    with pytest.raises(ValueError, match="timeframe_ms must be >= 1"):
        RegimeState(24, 0)
    with pytest.raises(ValueError, match="1-D"):
        RegimeState(24, H).update_many(np.ones((3, 2)))
    assert repr(RegimeState(24, H)) == "RegimeState(24, timeframe_ms=3600000)"
