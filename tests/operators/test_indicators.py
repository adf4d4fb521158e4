"""Tests for gridflow.operators.indicators: TA-Lib parity, incremental == batch, properties."""

from __future__ import annotations

import functools
import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

import gridflow
from gridflow.operators.indicators import (
    ATRState,
    EMAState,
    IndicatorBank,
    SMAState,
    TrueRangeState,
    atr,
    ema,
    parse_indicator,
    sma,
    true_range,
)

CANDLE_DIR = Path(gridflow.__file__).parent / "data" / "candles"
SYMBOLS = ["BTC", "ETH", "SOL", "XRP", "ADA"]
PERIODS = [1, 2, 14, 24, 200]


@functools.cache
def load_hlc(symbol: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """High, low, close of a bundled 1h candle file (gzip CSV with a header row)."""
    path = CANDLE_DIR / f"binance_{symbol}_USDT_1h.csv.gz"
    with gzip.open(path, "rt") as fh:
        header = fh.readline().strip().split(",")
        assert header == ["timestamp", "open", "high", "low", "close", "volume"]
        data = np.loadtxt(fh, delimiter=",", dtype=np.float64)
    return data[:, 2].copy(), data[:, 3].copy(), data[:, 4].copy()


def assert_matches_talib(ours: np.ndarray, ref: np.ndarray, first_valid: int) -> None:
    assert ours.dtype == np.float64 and ours.shape == ref.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    assert not np.isnan(ours[first_valid:]).any()
    assert np.isnan(ours[:first_valid]).all()
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=0.0)


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    """Bit-identical, NaN in the same places (stronger than the 1e-12 contract)."""
    assert a.shape == b.shape
    assert np.array_equal(a, b, equal_nan=True), np.flatnonzero(~((a == b) | np.isnan(a)))[:5]


# ---------------------------------------------------------------- TA-Lib parity


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("period", PERIODS)
def test_batch_matches_talib(symbol: str, period: int) -> None:
    high, low, close = load_hlc(symbol)
    assert_matches_talib(sma(close, period), talib.SMA(close, period), period - 1)
    assert_matches_talib(ema(close, period), talib.EMA(close, period), period - 1)
    assert_matches_talib(atr(high, low, close, period), talib.ATR(high, low, close, period), period)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_true_range_matches_talib(symbol: str) -> None:
    high, low, close = load_hlc(symbol)
    ours = true_range(high, low, close)
    assert_matches_talib(ours, talib.TRANGE(high, low, close), 1)
    assert_same(ours, atr(high, low, close, 1))  # ATR(1) is the true range


@pytest.mark.parametrize("period", [1, 2, 3, 5])
@pytest.mark.parametrize("n", range(0, 8))
def test_short_series_warmup_matches_talib(n: int, period: int) -> None:
    high, low, close = (a[:n] for a in load_hlc("SOL"))
    pairs = [
        (sma(close, period), talib.SMA(close, period)),
        (ema(close, period), talib.EMA(close, period)),
        (atr(high, low, close, period), talib.ATR(high, low, close, period)),
        (true_range(high, low, close), talib.TRANGE(high, low, close)),
    ]
    for ours, ref in pairs:
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
        np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=0.0)


def test_sma_compensated_sum_does_not_drift() -> None:
    # One huge value passes through the window; a plain running sum would keep its
    # rounding error forever (~1e-5 absolute here), the compensated one recovers.
    x = np.full(10_000, 1e-3)
    x[100] = 1e12
    out = sma(x, 10)
    np.testing.assert_allclose(out[200:], 1e-3, rtol=1e-12)


# ---------------------------------------------------------- incremental == batch


def make_states(period: int):
    """(name, fresh state factory, batch function, takes_hlc) for every indicator."""
    return [
        ("sma", lambda: SMAState(period), lambda h, lo, c: sma(c, period), False),
        ("ema", lambda: EMAState(period), lambda h, lo, c: ema(c, period), False),
        ("atr", lambda: ATRState(period), lambda h, lo, c: atr(h, lo, c, period), True),
        ("trange", TrueRangeState, lambda h, lo, c: true_range(h, lo, c), True),
    ]


@pytest.mark.parametrize("period", [1, 3, 14, 200])
def test_update_one_by_one_equals_batch_with_pickle(period: int) -> None:
    high, low, close = (a[:6000] for a in load_hlc("ETH"))
    for name, factory, batch, hlc in make_states(period):
        expected = batch(high, low, close)
        state = factory()
        got = np.empty_like(close)
        for i in range(close.shape[0]):
            if i in (period // 2, 2500):  # mid warm-up and mid stream
                state = pickle.loads(pickle.dumps(state))
            args = (high[i], low[i], close[i]) if hlc else (close[i],)
            got[i] = state.update(*args)
            assert isinstance(got[i], float)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0.0, err_msg=name)
        assert_same(got, expected)


@pytest.mark.parametrize("period", [1, 2, 14, 24, 200])
def test_update_many_random_chunks_equals_batch(period: int) -> None:
    rng = np.random.default_rng(period)
    high, low, close = load_hlc("XRP")
    for name, factory, batch, hlc in make_states(period):
        expected = batch(high, low, close)
        state = factory()
        parts, start = [], 0
        while start < close.shape[0]:
            stop = start + int(rng.choice([0, 1, 2, 7, period, 500, 4000]))
            sl = slice(start, stop)
            if rng.random() < 0.2:
                state = pickle.loads(pickle.dumps(state))
            if rng.random() < 0.1 and stop == start + 1:  # mix in single updates
                args = (high[start], low[start], close[start]) if hlc else (close[start],)
                parts.append(np.array([state.update(*args)]))
            else:
                args = (high[sl], low[sl], close[sl]) if hlc else (close[sl],)
                parts.append(state.update_many(*args))
            start = min(stop, close.shape[0])
        assert_same(np.concatenate(parts), expected)


def test_update_many_accepts_lists_and_noncontiguous() -> None:
    high, low, close = (a[:400] for a in load_hlc("BTC"))
    assert_same(SMAState(5).update_many(list(close)), sma(close, 5))
    strided = np.repeat(close, 2)[::2]
    assert not strided.flags.c_contiguous
    assert_same(EMAState(5).update_many(strided), ema(close, 5))
    assert_same(ATRState(5).update_many(high, low, close.astype(np.float32)),
                atr(high, low, close.astype(np.float32), 5))


# -------------------------------------------------------------------- bank


def test_indicator_bank_chunks_pickle_and_duplicates() -> None:
    high, low, close = load_hlc("ADA")
    ts = np.arange(close.shape[0], dtype=np.int64) * 3_600_000
    names = ["sma_24", "ema_50", "atr_14", "trange", "sma_24", "ema_2"]
    bank = IndicatorBank(names)
    assert bank.names == ["sma_24", "ema_50", "atr_14", "trange", "ema_2"]
    parts: dict[str, list[np.ndarray]] = {n: [] for n in bank.names}
    for k, start in enumerate(range(0, close.shape[0], 3333)):
        sl = slice(start, start + 3333)
        out = bank.update(ts[sl], close[sl], high[sl], low[sl], close[sl])
        assert list(out) == bank.names
        for n, v in out.items():
            assert v.dtype == np.float64 and v.shape == close[sl].shape
            parts[n].append(v)
        if k == 3:
            bank = pickle.loads(pickle.dumps(bank))
    got = {n: np.concatenate(v) for n, v in parts.items()}
    assert_same(got["sma_24"], sma(close, 24))
    assert_same(got["ema_50"], ema(close, 50))
    assert_same(got["ema_2"], ema(close, 2))
    assert_same(got["atr_14"], atr(high, low, close, 14))
    assert_same(got["trange"], true_range(high, low, close))
    empty = bank.update(ts[:0], close[:0], high[:0], low[:0], close[:0])
    assert all(v.shape == (0,) for v in empty.values())


def test_parse_indicator() -> None:
    assert parse_indicator("sma_24") == ("sma", (24,), None)
    assert parse_indicator("ema_1") == ("ema", (1,), None)
    assert parse_indicator("atr_14") == ("atr", (14,), None)
    assert parse_indicator("trange") == ("trange", (), None)
    assert parse_indicator("atr_14@4h") == ("atr", (14,), "4h")
    assert parse_indicator("atr_14@4h").name == "atr_14@4h"


@pytest.mark.parametrize(
    "name, match",
    [
        ("nosuch_14", "unknown indicator"),
        ("sma", "unknown indicator"),
        ("sma_", "unknown indicator"),
        ("sma_x", "unknown indicator"),
        ("sma_-3", "unknown indicator"),
        ("SMA_24", "unknown indicator"),
        ("sma_24 ", "unknown indicator"),
        ("trange_3", "takes 0 parameter"),
        ("sma_24@", "unknown indicator"),
        ("sma_24@4x", "unknown indicator"),
        ("sma_0", "period must be >= 1"),
        ("atr_014", "leading zeros"),
        (14, "unknown indicator"),
    ],
)
def test_parse_indicator_rejects(name, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_indicator(name)
    with pytest.raises(ValueError, match=match):
        IndicatorBank(["sma_2", name])


def test_bank_rejects_bad_config_and_inputs() -> None:
    with pytest.raises(ValueError, match="at least one"):
        IndicatorBank([])
    with pytest.raises(ValueError, match="not a single str"):
        IndicatorBank("sma_24")
    bank = IndicatorBank(["sma_3"])
    x = np.ones(5)
    with pytest.raises(ValueError, match="ts has shape"):
        bank.update(np.arange(4), x, x, x, x)
    with pytest.raises(ValueError, match="equal lengths"):
        bank.update(np.arange(5), x, x, x[:4], x)


# ----------------------------------------------------------------- parameters


@pytest.mark.parametrize("bad", [0, -1, 2.5, 14.0, "14", None, True, np.float64(3)])
@pytest.mark.parametrize(
    "kind, make",
    [
        ("sma", SMAState),
        ("ema", EMAState),
        ("atr", ATRState),
        ("sma", lambda p: sma(np.ones(3), p)),
        ("ema", lambda p: ema(np.ones(3), p)),
        ("atr", lambda p: atr(np.ones(3), np.ones(3), np.ones(3), p)),
    ],
)
def test_bad_period_raises_naming_parameter(kind: str, make, bad) -> None:
    with pytest.raises(ValueError, match=rf"^{kind} period must be"):
        make(bad)


def test_numpy_int_period_accepted_and_message_text() -> None:
    assert SMAState(np.int64(3)).period == 3
    with pytest.raises(ValueError, match=r"^sma period must be >= 1, got 0$"):
        SMAState(0)


def test_bad_input_shapes_raise() -> None:
    with pytest.raises(ValueError, match="1-D"):
        sma(np.ones((3, 2)), 2)
    with pytest.raises(ValueError, match="1-D"):
        SMAState(2).update_many(5.0)
    with pytest.raises(ValueError, match="equal lengths"):
        true_range(np.ones(3), np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match="equal lengths"):
        ATRState(2).update_many(np.ones(3), np.ones(3), np.ones(4))


# ------------------------------------------------------------------ property


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
    high = np.maximum(o, c) * (1.0 + up)
    low = np.minimum(o, c) * (1.0 - down)
    return high, low, c


@settings(max_examples=150, deadline=None)
@given(data=ohlc_series(), period=st.integers(1, 40), split=st.integers(0, 120))
def test_property_valid_ohlc(data, period: int, split: int) -> None:
    high, low, close = data
    n = close.shape[0]
    results = {
        "sma": (sma(close, period), period - 1),
        "ema": (ema(close, period), period - 1),
        "atr": (atr(high, low, close, period), period),
        "trange": (true_range(high, low, close), 1),
    }
    warm = np.arange(n)
    for name, (out, first_valid) in results.items():
        assert out.shape == (n,), name
        assert not np.isinf(out).any(), name
        np.testing.assert_array_equal(np.isnan(out), warm < first_valid, err_msg=name)
        assert (out[first_valid:] >= 0).all(), name
    # Two chunks split anywhere continue exactly like the batch.
    s = min(split, n)
    st_atr = ATRState(period)
    both = np.concatenate([st_atr.update_many(high[:s], low[:s], close[:s]),
                           st_atr.update_many(high[s:], low[s:], close[s:])])
    assert_same(both, results["atr"][0])
    st_sma = SMAState(period)
    both = np.concatenate([st_sma.update_many(close[:s]), st_sma.update_many(close[s:])])
    assert_same(both, results["sma"][0])
