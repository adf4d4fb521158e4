"""Tests for RSI (momentum.py), ADX / +DI / -DI and Supertrend (trend.py): TA-Lib parity,
incremental == batch, an independent Supertrend reference, properties, parameters."""

from __future__ import annotations

import functools
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

import gridflow
from gridflow.data.candle_files import read_candle_file
from gridflow.operators.indicators.momentum import KINDS as MOMENTUM_KINDS
from gridflow.operators.indicators.momentum import RSIState, rsi
from gridflow.operators.indicators.trend import KINDS as TREND_KINDS
from gridflow.operators.indicators.trend import (
    ADXState,
    SupertrendState,
    _adx_step,
    adx,
    supertrend,
)
from gridflow.operators.indicators.volatility import atr

CANDLE_DIR = Path(gridflow.__file__).parent / "data" / "candles"
SYMBOLS = ["ADA", "BTC", "ETH", "SOL", "XRP"]


@functools.cache
def load_hlc(symbol: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = read_candle_file(CANDLE_DIR / f"binance_{symbol}_USDT_1h.csv.gz")
    return d["high"], d["low"], d["close"]


def assert_close_to_talib(ours: np.ndarray, ref: np.ndarray, first_valid: int) -> None:
    """Identical NaN positions; ``|a - b| <= 1e-9 * max(1, |b|)``: relative, except near 0
    (a DI or RSI of exactly 0 next to a ~1e-300 one), where it is 1e-9 points absolute."""
    assert ours.dtype == np.float64 and ours.shape == ref.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    n = ours.shape[0]
    np.testing.assert_array_equal(np.isnan(ours), np.arange(n) < first_valid)
    ok = np.isnan(ref) | (np.abs(ours - ref) <= 1e-9 * np.maximum(1.0, np.abs(ref)))
    assert ok.all(), np.flatnonzero(~ok)[:5]


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    """Bit-identical, NaN in the same places (stronger than the 1e-12 contract)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    assert np.array_equal(a, b, equal_nan=True), np.flatnonzero(~((a == b) | np.isnan(a)))[:5]


def supertrend_reference(high, low, close, period, multiplier, atr_values):
    """The documented Supertrend, written out plainly, on a given ATR series."""
    n = len(close)
    value, direction = [math.nan] * n, [math.nan] * n
    fu = fl = d = None
    for t in range(period, n):
        hl2 = (high[t] + low[t]) / 2
        bu = hl2 + multiplier * atr_values[t]
        bl = hl2 - multiplier * atr_values[t]
        if t == period:
            new_fu, new_fl, d = bu, bl, -1  # first valid candle: basic bands, down
        else:
            new_fu = bu if (bu < fu or close[t - 1] > fu) else fu
            new_fl = bl if (bl > fl or close[t - 1] < fl) else fl
            if close[t] > fu:
                d = 1
            elif close[t] < fl:
                d = -1
        fu, fl = new_fu, new_fl
        value[t] = fl if d == 1 else fu
        direction[t] = float(d)
    return np.array(value), np.array(direction)


# ---------------------------------------------------------------- TA-Lib parity


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("period", [2, 14, 30])
def test_rsi_adx_di_match_talib(symbol: str, period: int) -> None:
    high, low, close = load_hlc(symbol)
    assert_close_to_talib(rsi(close, period), talib.RSI(close, period), period)
    a, p, m = adx(high, low, close, period)
    assert_close_to_talib(a, talib.ADX(high, low, close, period), 2 * period - 1)
    assert_close_to_talib(p, talib.PLUS_DI(high, low, close, period), period)
    assert_close_to_talib(m, talib.MINUS_DI(high, low, close, period), period)


@pytest.mark.parametrize("period", [2, 3, 5])
@pytest.mark.parametrize("n", range(13))
def test_short_series_warmup_matches_talib(n: int, period: int) -> None:
    high, low, close = (x[:n] for x in load_hlc("SOL"))
    a, p, m = adx(high, low, close, period)
    pairs = [(rsi(close, period), talib.RSI(close, period)),
             (a, talib.ADX(high, low, close, period)),
             (p, talib.PLUS_DI(high, low, close, period)),
             (m, talib.MINUS_DI(high, low, close, period))]
    for ours, ref in pairs:
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
        np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=0.0)
    v, d = supertrend(high, low, close, period, 3.0)
    assert np.array_equal(np.isnan(v), np.arange(n) < period)
    assert np.array_equal(np.isnan(d), np.arange(n) < period)


def test_constant_and_flat_series_match_talib() -> None:
    c = np.full(60, 123.25)
    assert_close_to_talib(rsi(c, 14), talib.RSI(c, 14), 14)
    assert (rsi(c, 14)[14:] == 0.0).all()  # TA-Lib's 0/0 answer, not NaN
    for out, ref, first in zip(adx(c, c, c, 5), (talib.ADX, talib.PLUS_DI, talib.MINUS_DI),
                               (9, 5, 5)):
        assert_close_to_talib(out, ref(c, c, c, 5), first)
        assert (out[first:] == 0.0).all()
    # Moves, then a long flat stretch (TR decays but the DI ratio stays), then moves.
    rng = np.random.default_rng(7)
    c = np.r_[100 + np.cumsum(rng.normal(size=40)), np.full(200, 90.0),
              90 + np.cumsum(rng.normal(size=40))]
    h, lo = c + np.r_[rng.random(40), np.zeros(200), rng.random(40)], c.copy()
    for out, ref in zip(adx(h, lo, c, 7), (talib.ADX, talib.PLUS_DI, talib.MINUS_DI)):
        r = ref(h, lo, c, 7)
        assert_close_to_talib(out, r, int(np.isnan(r).sum()))
    assert_close_to_talib(rsi(c, 7), talib.RSI(c, 7), 7)
    c = np.full(30, 7.5)  # ATR 0: both bands on the price, no crossing, stays down
    v, d = supertrend(c, c, c, 3, 2.0)
    assert (v[3:] == 7.5).all() and (d[3:] == -1.0).all()


# ----------------------------------------------------------------- Supertrend


def test_supertrend_hand_built_example() -> None:
    # period 1 (ATR = true range from index 1), multiplier 1; worked by hand:
    # t1: TR 2, hl2 10, bands 12 / 8, first valid -> down, value 12
    # t2: TR 2, basic 13 / 9 -> FU stays 12, FL 9; close 11 inside -> down, 12
    # t3: TR 3, basic 16 / 10 -> FU 12, FL 10; close 13 > prev FU 12 -> UP, value FL 10
    # t4: TR 2, basic 14 / 10; prev close 13 > 12 -> FU resets to 14, FL 10; up, 10
    # t5: TR 4, basic 13 / 5 -> FU 13, FL 10; close 8.5 < prev FL 10 -> DOWN, value 13
    # t6: TR 2, basic 10 / 6 -> FU 10; prev close 8.5 < 10 -> FL resets to 6; down, 10
    high = [10.0, 11.0, 12.0, 14.0, 13.0, 10.0, 9.0]
    low = [8.0, 9.0, 10.0, 12.0, 11.0, 8.0, 7.0]
    close = [9.0, 10.0, 11.0, 13.0, 12.0, 8.5, 8.0]
    nan = math.nan
    v, d = supertrend(high, low, close, period=1, multiplier=1.0)
    assert_same(v, [nan, 12.0, 12.0, 10.0, 10.0, 13.0, 10.0])
    assert_same(d, [nan, -1.0, -1.0, 1.0, 1.0, -1.0, -1.0])
    ref = supertrend_reference(high, low, close, 1, 1.0, atr(high, low, close, 1))
    assert_same(v, ref[0])
    assert_same(d, ref[1])


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("period, multiplier", [(10, 3.0), (1, 1.5), (14, 2.0), (30, 0.5)])
def test_supertrend_matches_reference(symbol: str, period: int, multiplier: float) -> None:
    high, low, close = load_hlc(symbol)
    v, d = supertrend(high, low, close, period, multiplier)
    # With gridflow's ATR (TA-Lib ATR to ~1e-13): the same operations, bit for bit.
    ref_v, ref_d = supertrend_reference(high, low, close, period, multiplier,
                                        atr(high, low, close, period))
    assert_same(v, ref_v)
    assert_same(d, ref_d)
    assert set(np.unique(d[period:])) <= {-1.0, 1.0} and (np.diff(d[period:]) != 0).any()
    # With TA-Lib's own ATR: same directions, values within 1e-9 relative.
    tv, td = supertrend_reference(high, low, close, period, multiplier,
                                  talib.ATR(high, low, close, period))
    assert_same(d, td)
    np.testing.assert_allclose(v, tv, rtol=1e-9, atol=0.0)


# ---------------------------------------------------------- incremental == batch


def make_states(period: int):
    """(name, fresh state factory, batch function, takes_hlc)."""
    return [
        ("rsi", lambda: RSIState(period), lambda h, lo, c: rsi(c, period), False),
        ("adx", lambda: ADXState(period), lambda h, lo, c: adx(h, lo, c, period), True),
        ("supertrend", lambda: SupertrendState(period, 2.5),
         lambda h, lo, c: supertrend(h, lo, c, period, 2.5), True),
    ]


def as_matrix(result) -> np.ndarray:
    """A batch result (one array or a tuple of arrays) as shape (n, k)."""
    return np.column_stack(result if isinstance(result, tuple) else (result,))


@pytest.mark.parametrize("period", [2, 14, 30])
def test_update_one_by_one_equals_batch_with_pickle(period: int) -> None:
    high, low, close = (x[:4000] for x in load_hlc("ETH"))
    for name, factory, batch, hlc in make_states(period):
        expected = as_matrix(batch(high, low, close))
        state = factory()
        got = np.empty_like(expected)
        for i in range(close.shape[0]):
            if i in (period // 2, period + 3, 2000):  # mid warm-up(s) and mid stream
                state = pickle.loads(pickle.dumps(state))
            args = (high[i], low[i], close[i]) if hlc else (close[i],)
            out = state.update(*args)
            out = out if isinstance(out, tuple) else (out,)
            assert all(type(x) is float for x in out), name
            got[i] = out
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0.0, err_msg=name)
        assert_same(got, expected)


def test_pure_python_adx_step_equals_kernel() -> None:
    # ADXState.update calls the compiled step; the plain one must still agree bit for bit.
    high, low, close = (x[:3000] for x in load_hlc("SOL"))
    expected = as_matrix(adx(high, low, close, 14))
    got, state = np.empty_like(expected), (0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    for i in range(close.shape[0]):
        out = _adx_step(float(high[i]), float(low[i]), float(close[i]), *state, 14)
        got[i], state = out[:3], out[3:]
    assert_same(got, expected)


@pytest.mark.parametrize("period", [2, 14, 30])
def test_update_many_random_chunks_equals_batch(period: int) -> None:
    rng = np.random.default_rng(period)
    high, low, close = load_hlc("XRP")
    for name, factory, batch, hlc in make_states(period):
        expected = as_matrix(batch(high, low, close))
        state = factory()
        parts, start = [], 0
        while start < close.shape[0]:
            stop = start + int(rng.choice([0, 1, 2, 7, period, 2 * period, 500, 9000]))
            sl = slice(start, stop)
            if rng.random() < 0.2:
                state = pickle.loads(pickle.dumps(state))
            if rng.random() < 0.1 and stop == start + 1:  # mix in single updates
                args = (high[start], low[start], close[start]) if hlc else (close[start],)
                parts.append(np.atleast_2d(state.update(*args)))
            else:
                args = (high[sl], low[sl], close[sl]) if hlc else (close[sl],)
                parts.append(as_matrix(state.update_many(*args)))
            start = min(stop, close.shape[0])
        assert_same(np.concatenate(parts), expected)


def test_kinds_registry() -> None:
    kind = MOMENTUM_KINDS["rsi"]
    assert (kind.params, kind.inputs, kind.outputs) == ((("period", int),), ("close",), ())
    kind = TREND_KINDS["adx"]
    assert kind.inputs == ("high", "low", "close")
    assert kind.outputs == ("adx", "plus_di", "minus_di")
    kind = TREND_KINDS["supertrend"]
    assert kind.params == (("period", int), ("multiplier", float))
    assert kind.outputs == ("value", "direction")
    high, low, close = (x[:300] for x in load_hlc("BTC"))
    for got, want in zip(kind.factory(10, 3.0).update_many(high, low, close),
                         supertrend(high, low, close)):
        assert_same(got, want)
    assert_same(TREND_KINDS["adx"].factory(14).update_many(high, low, close)[0],
                adx(high, low, close)[0])
    assert_same(MOMENTUM_KINDS["rsi"].factory(14).update_many(close), rsi(close))


# ----------------------------------------------------------------- parameters


@pytest.mark.parametrize("bad", [0, 1, -1, 2.5, 14.0, "14", None, True, np.float64(3)])
@pytest.mark.parametrize("kind, make", [
    ("rsi", RSIState),
    ("adx", ADXState),
    ("rsi", lambda p: rsi(np.ones(3), p)),
    ("adx", lambda p: adx(np.ones(3), np.ones(3), np.ones(3), p)),
])
def test_bad_period_raises_naming_parameter(kind: str, make, bad) -> None:
    with pytest.raises(ValueError, match=rf"^{kind} period must be"):
        make(bad)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "10", None, True, np.float64(3)])
def test_supertrend_bad_period(bad) -> None:
    with pytest.raises(ValueError, match=r"^supertrend period must be"):
        SupertrendState(bad, 3.0)
    with pytest.raises(ValueError, match=r"^supertrend period must be"):
        supertrend(np.ones(3), np.ones(3), np.ones(3), bad, 3.0)


@pytest.mark.parametrize("bad", [0, 0.0, -1.0, math.nan, math.inf, -math.inf, "3", None,
                                 True, [3.0]])
def test_supertrend_bad_multiplier(bad) -> None:
    with pytest.raises(ValueError, match=r"^supertrend multiplier must be"):
        SupertrendState(10, bad)
    with pytest.raises(ValueError, match=r"^supertrend multiplier must be"):
        supertrend(np.ones(3), np.ones(3), np.ones(3), 10, bad)


def test_parameter_edges_accepted() -> None:
    assert RSIState(np.int64(2)).period == 2 and ADXState(2).period == 2
    st_ = SupertrendState(np.int32(1), 3)
    assert st_.multiplier == 3.0 and type(st_.multiplier) is float
    assert SupertrendState(1, np.float32(0.25)).multiplier == 0.25
    with pytest.raises(ValueError, match=r"^adx period must be >= 2 \(TA-Lib's range\), got 1$"):
        ADXState(1)
    with pytest.raises(ValueError, match="equal lengths"):
        adx(np.ones(3), np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match="1-D"):
        rsi(np.ones((3, 2)))


# ------------------------------------------------------------------ property


@st.composite
def ohlc_series(draw):
    """Valid OHLC (low <= open, close <= high), with flat candles, constant runs and
    prices on a coarse grid (exact ties between +DM and -DM, zero changes)."""
    n = draw(st.integers(0, 90))
    scale = draw(st.sampled_from([1e-6, 1e-2, 1.0, 3e4, 1e8]))
    style = draw(st.sampled_from(["random", "grid", "constant"]))
    if style == "constant":
        c = np.full(n, draw(st.floats(0.01, 100.0))) * scale
        return c.copy(), c.copy(), c
    unit = (st.floats(0.01, 100.0, allow_nan=False) if style == "random"
            else st.sampled_from([1.0, 2.0, 3.0]))
    frac = st.sampled_from([0.0, 0.0, 0.1, 0.5]) if style == "grid" else st.floats(0.0, 0.9)
    o = np.array(draw(st.lists(unit, min_size=n, max_size=n)), dtype=np.float64) * scale
    c = np.array(draw(st.lists(unit, min_size=n, max_size=n)), dtype=np.float64) * scale
    up = np.array(draw(st.lists(frac, min_size=n, max_size=n)), dtype=np.float64)
    down = np.array(draw(st.lists(frac, min_size=n, max_size=n)), dtype=np.float64)
    flat = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    o[flat] = c[flat]
    up[flat] = down[flat] = 0.0  # flat candle: open == high == low == close
    return np.maximum(o, c) * (1.0 + up), np.minimum(o, c) * (1.0 - down), c


@settings(max_examples=200, deadline=None)
@given(data=ohlc_series(), period=st.integers(2, 30), split=st.integers(0, 90),
       multiplier=st.floats(0.1, 10.0))
def test_property_valid_ohlc(data, period: int, split: int, multiplier: float) -> None:
    high, low, close = data
    n = close.shape[0]
    warm = np.arange(n)
    r = rsi(close, period)
    a, p, m = adx(high, low, close, period)
    v, d = supertrend(high, low, close, period, multiplier)
    for out, first in [(r, period), (a, 2 * period - 1), (p, period), (m, period),
                       (v, period), (d, period)]:
        assert out.shape == (n,) and not np.isinf(out).any()
        np.testing.assert_array_equal(np.isnan(out), warm < first)  # NaN only in warm-up
    for out in (r, a, p, m):
        assert ((out[~np.isnan(out)] >= 0) & (out[~np.isnan(out)] <= 100)).all()
    assert set(np.unique(d[period:])) <= {-1.0, 1.0}
    assert_close_to_talib(r, talib.RSI(close, period), period)
    assert_close_to_talib(a, talib.ADX(high, low, close, period), 2 * period - 1)
    assert_close_to_talib(p, talib.PLUS_DI(high, low, close, period), period)
    assert_close_to_talib(m, talib.MINUS_DI(high, low, close, period), period)
    ref = supertrend_reference(high, low, close, period, multiplier,
                               atr(high, low, close, period))
    assert_same(v, ref[0])
    assert_same(d, ref[1])
    # Two chunks split anywhere continue exactly like the batch.
    s = min(split, n)
    for state, whole in [(ADXState(period), (a, p, m)),
                         (SupertrendState(period, multiplier), (v, d))]:
        first = state.update_many(high[:s], low[:s], close[:s])
        second = state.update_many(high[s:], low[s:], close[s:])
        for x, y, w in zip(first, second, whole):
            assert_same(np.concatenate([x, y]), w)
    state = RSIState(period)
    assert_same(np.concatenate([state.update_many(close[:s]), state.update_many(close[s:])]), r)
