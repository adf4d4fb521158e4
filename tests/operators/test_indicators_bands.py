"""Tests for WMA (moving_averages.py), MACD (oscillators.py), Bollinger Bands and the Donchian
channel (bands.py): TA-Lib / numpy parity, incremental == batch, properties, parameters."""

from __future__ import annotations

import functools
import pickle
from pathlib import Path

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

import gridflow
from gridflow.data.candle_files import read_candle_file
from gridflow.operators.indicators import bands, moving_averages
from gridflow.operators.indicators import oscillators as macd_mod
from gridflow.operators.indicators.bands import (
    BollingerState,
    DonchianState,
    _bb_step,
    _donchian_step,
    bbands,
    donchian,
)
from gridflow.operators.indicators.moving_averages import WMAState, _wma_step, wma
from gridflow.operators.indicators.oscillators import MACDState, _macd_step, macd

CANDLE_DIR = Path(gridflow.__file__).parent / "data" / "candles"
SYMBOLS = ["ADA", "BTC", "ETH", "SOL", "XRP"]
MACD_PARAMS = [(12, 26, 9), (5, 35, 5), (3, 10, 16)]
BB_PARAMS = [(20, 2.0), (5, 1.5)]


@functools.cache
def load_hlc(symbol: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = read_candle_file(CANDLE_DIR / f"binance_{symbol}_USDT_1h.csv.gz")
    return d["high"], d["low"], d["close"]


def assert_matches_talib(ours: np.ndarray, ref: np.ndarray, first_valid: int) -> None:
    """Identical NaN positions (NaN exactly before ``first_valid``), 1e-9 relative."""
    assert ours.dtype == np.float64 and ours.shape == ref.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    np.testing.assert_array_equal(np.isnan(ours), np.arange(ours.shape[0]) < first_valid)
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=0.0)


def assert_same(a, b) -> None:
    """Bit-identical, NaN in the same places (stronger than the 1e-12 contract)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    assert np.array_equal(a, b, equal_nan=True), np.flatnonzero(~((a == b) | np.isnan(a)))[:5]


def window_reference(x: np.ndarray, period: int, fn) -> np.ndarray:
    out = np.full(x.shape[0], np.nan)
    if x.shape[0] >= period:
        out[period - 1 :] = fn(sliding_window_view(x, period), axis=1)
    return out


# ---------------------------------------------------------------- reference parity


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_wma_matches_talib(symbol: str) -> None:
    close = load_hlc(symbol)[2]
    for period in (1, 2, 9, 24, 200):
        assert_matches_talib(wma(close, period), talib.WMA(close, period), period - 1)


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("fast, slow, signal", MACD_PARAMS)
def test_macd_matches_talib(symbol: str, fast: int, slow: int, signal: int) -> None:
    close = load_hlc(symbol)[2]
    ours, ref = macd(close, fast, slow, signal), talib.MACD(close, fast, slow, signal)
    assert len(ours) == 3
    for o, r in zip(ours, ref):  # line, signal, hist
        assert_matches_talib(o, r, slow + signal - 2)


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("period, nbdev", BB_PARAMS)
def test_bbands_matches_talib(symbol: str, period: int, nbdev: float) -> None:
    close = load_hlc(symbol)[2]
    ours, ref = bbands(close, period, nbdev), talib.BBANDS(close, period, nbdev, nbdev, 0)
    for o, r in zip(ours, ref):  # upper, middle, lower
        assert_matches_talib(o, r, period - 1)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_donchian_matches_numpy_reference(symbol: str) -> None:
    high, low, _ = load_hlc(symbol)
    for period in (1, 2, 20, 55, 200):
        upper, lower = donchian(high, low, period)
        assert_same(upper, window_reference(high, period, np.max))
        assert_same(lower, window_reference(low, period, np.min))
        if period >= 2:  # TA-Lib has MAX / MIN (not period 1)
            assert_same(upper, talib.MAX(high, period))
            assert_same(lower, talib.MIN(low, period))


@pytest.mark.parametrize("n", [0, 1, 2, 5, 9, 10, 23, 24, 25, 40])
def test_short_series_warmup_matches_talib(n: int) -> None:
    high, low, close = (a[:n] for a in load_hlc("SOL"))
    pairs = [
        (wma(close, 10), talib.WMA(close, 10)),
        *zip(macd(close, 3, 10, 16), talib.MACD(close, 3, 10, 16)),
        *zip(bbands(close, 10, 2.0), talib.BBANDS(close, 10, 2.0, 2.0, 0)),
        (donchian(high, low, 10)[0], window_reference(high, 10, np.max)),
    ]
    for ours, ref in pairs:
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
        np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=0.0)


def test_running_sums_do_not_drift() -> None:
    # A 1e12 spike passes through 1e-3 values: plain running sums would keep ~1e-4 of
    # rounding error forever; the recompute at each ring wrap removes it.
    x = np.full(5_000, 1e-3)
    x[100] = 1e12
    np.testing.assert_allclose(wma(x, 10)[130:], 1e-3, rtol=1e-14)
    upper, middle, lower = bbands(x, 10, 2.0)
    np.testing.assert_allclose(middle[130:], 1e-3, rtol=1e-14)
    assert_same(upper[130:], middle[130:])  # flat window: sd exactly 0
    assert_same(lower[130:], middle[130:])


def test_bollinger_is_accurate_at_high_price_levels() -> None:
    # sd 1e-3 on a 1e4 price: E[x^2] - E[x]^2 would lose everything; shifted sums don't.
    rng = np.random.default_rng(7)
    x = 1e4 + rng.standard_normal(3_000) * 1e-3
    upper, middle, lower = bbands(x, 20, 1.0)
    ref_sd = window_reference(x - 1e4, 20, np.std)  # x - 1e4 is exact here
    np.testing.assert_allclose((upper - lower)[19:] / 2, ref_sd[19:], rtol=1e-6)
    np.testing.assert_allclose(middle, window_reference(x, 20, np.mean), rtol=1e-14)


def test_flat_window_after_volatility_gives_zero_width() -> None:
    rng = np.random.default_rng(3)
    x = np.concatenate([50_000 + rng.standard_normal(57) * 300, np.full(30, 50_123.45)])
    for period in (3, 7, 20):
        upper, middle, lower = bbands(x, period, 2.0)
        flat = slice(57 + period - 1, None)  # windows of the constant tail only
        assert (middle[flat] == 50_123.45).all()
        assert_same(upper[flat], middle[flat])
        assert_same(lower[flat], middle[flat])


# ---------------------------------------------------------- incremental == batch


def make_states():
    """(name, fresh state factory, batch function, takes high/low) per indicator."""
    return [
        ("wma", lambda: WMAState(24), lambda h, lo, c: wma(c, 24), False),
        ("macd", lambda: MACDState(12, 26, 9), lambda h, lo, c: macd(c, 12, 26, 9), False),
        ("macd3", lambda: MACDState(3, 10, 16), lambda h, lo, c: macd(c, 3, 10, 16), False),
        ("bb", lambda: BollingerState(20, 2.0), lambda h, lo, c: bbands(c, 20, 2.0), False),
        ("bb5", lambda: BollingerState(5, 1.5), lambda h, lo, c: bbands(c, 5, 1.5), False),
        ("donchian", lambda: DonchianState(20), lambda h, lo, c: donchian(h, lo, 20), True),
    ]


def as_rows(result) -> np.ndarray:
    """Batch result (one array or a tuple of them) as an (n, outputs) array."""
    return np.column_stack(result) if isinstance(result, tuple) else result[:, None]


def test_update_one_by_one_equals_batch_with_pickle() -> None:
    high, low, close = (a[:5000] for a in load_hlc("ETH"))
    for name, factory, batch, hl in make_states():
        expected = as_rows(batch(high, low, close))
        state = factory()
        got = np.empty_like(expected)
        for i in range(close.shape[0]):
            if i in (7, 2500):  # mid warm-up and mid stream
                state = pickle.loads(pickle.dumps(state))
            out = state.update(high[i], low[i]) if hl else state.update(close[i])
            got[i] = out
            assert all(type(v) is float for v in (out if isinstance(out, tuple) else (out,)))
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0.0, err_msg=name)
        assert_same(got, expected)


@pytest.mark.parametrize("seed", [1, 2])
def test_update_many_random_chunks_equals_batch(seed: int) -> None:
    rng = np.random.default_rng(seed)
    high, low, close = load_hlc("XRP")
    for name, factory, batch, hl in make_states():
        expected = as_rows(batch(high, low, close))
        state, parts, start = factory(), [], 0
        while start < close.shape[0]:
            stop = min(start + int(rng.choice([0, 1, 2, 7, 20, 26, 500, 4000])), close.shape[0])
            if rng.random() < 0.2:
                state = pickle.loads(pickle.dumps(state))
            if stop == start + 1 and rng.random() < 0.5:  # mix in single updates
                args = (high[start], low[start]) if hl else (close[start],)
                parts.append(np.atleast_1d(state.update(*args))[None, :])
            else:
                args = (high[start:stop], low[start:stop]) if hl else (close[start:stop],)
                parts.append(as_rows(state.update_many(*args)))
            start = stop
        assert_same(np.concatenate(parts), expected)


def run_step(step, rows, state, *params) -> np.ndarray:
    """Run a plain-Python step over ``rows`` (tuples of inputs); ``state`` = arrays the
    step mutates followed by its scalar state. Returns the outputs, one row per candle."""
    n_arrays = sum(isinstance(v, np.ndarray) for v in state)
    arrays, scalars = state[:n_arrays], state[n_arrays:]
    out = []
    for x in rows:
        r = step(*x, *arrays, *scalars, *params)
        k = len(r) - len(scalars)
        out.append(r[:k])
        scalars = r[k:]
    return np.array(out, dtype=np.float64).reshape(len(out), -1)


def test_uncompiled_steps_equal_the_kernels() -> None:
    # The plain-Python steps are the definitions numba compiles: run them as Python.
    high, low, close = (a[:700] for a in load_hlc("BTC"))
    rows = [(c,) for c in close]
    got = run_step(_wma_step, rows, (np.zeros(9), 0, 0, 0.0, 0.0), 9, 45.0)
    assert_same(got[:, 0], wma(close, 9))
    m = MACDState(3, 10, 4)  # its Python fma is exact rational arithmetic: keep it short
    got = run_step(_macd_step, rows[:200], (0,) + (0.0,) * 6, 3, 10, 4, m.kf, m.ks, m.kg)
    assert_same(got, as_rows(macd(close[:200], 3, 10, 4)))
    got = run_step(_bb_step, rows, (np.zeros(7), 0, 0, 0.0, 0.0, 0.0, 0.0), 7, 1 / 7, 2.0)
    assert_same(got, as_rows(bbands(close, 7, 2.0)))
    state = (DonchianState(11)._buf.copy(), 0, 0, -np.inf, np.inf)
    got = run_step(_donchian_step, list(zip(high, low)), state, 11)
    assert_same(got, as_rows(donchian(high, low, 11)))


def test_update_many_accepts_lists_and_noncontiguous() -> None:
    high, low, close = (a[:300] for a in load_hlc("BTC"))
    assert_same(WMAState(5).update_many(list(close)), wma(close, 5))
    strided = np.repeat(close, 2)[::2]
    assert not strided.flags.c_contiguous
    assert_same(as_rows(MACDState(3, 8, 4).update_many(strided)), as_rows(macd(close, 3, 8, 4)))
    assert_same(as_rows(BollingerState(5, 2).update_many(close.astype(np.float32))),
                as_rows(bbands(close.astype(np.float32), 5, 2.0)))
    assert_same(as_rows(DonchianState(4).update_many(list(high), low[::-1][::-1])),
                as_rows(donchian(high, low, 4)))


# -------------------------------------------------------------------- registry


def test_kinds_registry() -> None:
    kinds = {**moving_averages.KINDS, **macd_mod.KINDS, **bands.KINDS}
    close = load_hlc("ADA")[2][:100]
    high, low = load_hlc("ADA")[0][:100], load_hlc("ADA")[1][:100]
    fields = {"close": close, "high": high, "low": low}
    cases = {"wma": (24,), "macd": (12, 26, 9), "bbands": (20, 2.0), "donchian": (20,)}
    for name, params in cases.items():
        kind = kinds[name]
        assert [t for _, t in kind.params] == [type(p) for p in params]
        out = kind.factory(*params).update_many(*(fields[f] for f in kind.inputs))
        outs = out if isinstance(out, tuple) else (out,)
        assert len(outs) == max(1, len(kind.outputs))
    assert macd_mod.KINDS["macd"].params == (("fast", int), ("slow", int), ("signal", int))
    assert macd_mod.KINDS["macd"].outputs == ("line", "signal", "hist")
    assert bands.KINDS["bbands"].params == (("period", int), ("nbdev", float))
    assert bands.KINDS["bbands"].outputs == ("upper", "middle", "lower")
    assert bands.KINDS["donchian"].inputs == ("high", "low")
    assert bands.KINDS["donchian"].outputs == ("upper", "lower")


# ----------------------------------------------------------------- parameters


BAD_PERIODS = [0, -1, 2.5, 14.0, "14", None, True, np.float64(3)]


@pytest.mark.parametrize("bad", BAD_PERIODS)
@pytest.mark.parametrize(
    "match, make",
    [
        ("wma period", WMAState),
        ("wma period", lambda p: wma(np.ones(3), p)),
        ("bbands period", lambda p: BollingerState(p, 2.0)),
        ("bbands period", lambda p: bbands(np.ones(3), p)),
        ("donchian period", DonchianState),
        ("donchian period", lambda p: donchian(np.ones(3), np.ones(3), p)),
        ("macd fast period", lambda p: MACDState(p, 26, 9)),
        ("macd slow period", lambda p: MACDState(1, p, 9)),
        ("macd signal period", lambda p: macd(np.ones(3), 12, 26, p)),
    ],
)
def test_bad_period_raises_naming_parameter(match: str, make, bad) -> None:
    with pytest.raises(ValueError, match=rf"^{match} must be"):
        make(bad)


@pytest.mark.parametrize("fast, slow", [(12, 12), (26, 12), (2, 1)])
def test_macd_fast_must_be_below_slow(fast: int, slow: int) -> None:
    with pytest.raises(ValueError, match=r"^macd fast period must be < slow period"):
        MACDState(fast, slow, 9)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), -0.5, "2", None, True])
def test_bad_nbdev_raises_naming_parameter(bad) -> None:
    with pytest.raises(ValueError, match=r"^bbands nbdev must be"):
        BollingerState(20, bad)
    with pytest.raises(ValueError, match=r"^bbands nbdev must be"):
        bbands(np.ones(30), 20, bad)


def test_accepted_parameter_types_and_reprs() -> None:
    assert BollingerState(np.int64(5), 2).nbdev == 2.0
    assert BollingerState(5, np.float32(1.5)).nbdev == 1.5
    assert repr(MACDState(12, 26, 9)) == "MACDState(12, 26, 9)"
    assert repr(BollingerState(20, 2)) == "BollingerState(20, 2.0)"
    assert repr(DonchianState(20)) == "DonchianState(20)"
    with pytest.raises(ValueError, match="1-D"):
        bbands(np.ones((3, 2)), 2)
    with pytest.raises(ValueError, match="equal lengths"):
        DonchianState(2).update_many(np.ones(3), np.ones(4))


# ------------------------------------------------------------------ properties


@st.composite
def ohlc_series(draw):
    n = draw(st.integers(0, 120))
    scale = draw(st.sampled_from([1e-6, 1e-2, 1.0, 3e4, 1e8]))
    unit = st.floats(0.01, 100.0, allow_nan=False, allow_infinity=False)
    frac = st.floats(0.0, 0.9, allow_nan=False)
    o = np.array(draw(st.lists(unit, min_size=n, max_size=n)), dtype=np.float64) * scale
    c = np.array(draw(st.lists(unit, min_size=n, max_size=n)), dtype=np.float64) * scale
    up = np.array(draw(st.lists(frac, min_size=n, max_size=n)), dtype=np.float64)
    down = np.array(draw(st.lists(frac, min_size=n, max_size=n)), dtype=np.float64)
    return np.maximum(o, c) * (1.0 + up), np.minimum(o, c) * (1.0 - down), c


@settings(max_examples=120, deadline=None)
@given(data=ohlc_series(), period=st.integers(1, 30), extra=st.integers(1, 15),
       split=st.integers(0, 120))
def test_property_valid_ohlc(data, period: int, extra: int, split: int) -> None:
    high, low, close = data
    n, s = close.shape[0], min(split, close.shape[0])
    idx = np.arange(n)
    results = {
        "wma": ((wma(close, period),), period - 1),
        "macd": (macd(close, period, period + extra, extra), period + 2 * extra - 2),
        "bbands": (bbands(close, period, 2.0), period - 1),
        "donchian": (donchian(high, low, period), period - 1),
    }
    for name, (outs, first_valid) in results.items():
        for out in outs:
            assert out.shape == (n,) and not np.isinf(out).any(), name
            np.testing.assert_array_equal(np.isnan(out), idx < first_valid, err_msg=name)
    w = results["wma"][0][0]
    lo_w, hi_w = window_reference(close, period, np.min), window_reference(close, period, np.max)
    assert (w[period - 1 :] >= lo_w[period - 1 :] * (1 - 1e-12)).all()
    assert (w[period - 1 :] <= hi_w[period - 1 :] * (1 + 1e-12)).all()
    line, signal, hist = results["macd"][0]
    assert_same(hist, line - signal)
    upper, middle, lower = results["bbands"][0]
    assert (upper[period - 1 :] >= middle[period - 1 :]).all()
    assert (middle[period - 1 :] >= lower[period - 1 :]).all()
    dh, dl = results["donchian"][0]
    assert_same(dh, window_reference(high, period, np.max))
    assert (dh[period - 1 :] >= dl[period - 1 :]).all()
    # Two chunks split anywhere continue exactly like the batch.
    for factory, args in (
        (lambda: MACDState(period, period + extra, extra), (close,)),
        (lambda: BollingerState(period, 2.0), (close,)),
        (lambda: DonchianState(period), (high, low)),
        (lambda: WMAState(period), (close,)),
    ):
        state = factory()
        a = as_rows(state.update_many(*(x[:s] for x in args)))
        b = as_rows(state.update_many(*(x[s:] for x in args)))
        assert_same(np.concatenate([a, b]), as_rows(factory().update_many(*args)))


@settings(max_examples=80, deadline=None)
@given(value=st.floats(1e-8, 1e8, allow_nan=False), period=st.integers(1, 40),
       n=st.integers(0, 100), nbdev=st.sampled_from([0.0, 1.0, 2.0, 3.5]))
def test_property_constant_series_bands_equal_middle(value, period, n, nbdev) -> None:
    upper, middle, lower = bbands(np.full(n, value), period, nbdev)
    valid = np.arange(n) >= period - 1
    np.testing.assert_array_equal(np.isnan(middle), ~valid)
    assert (middle[valid] == value).all()
    assert_same(upper, middle)
    assert_same(lower, middle)
