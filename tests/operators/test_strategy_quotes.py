"""Envelope DCA, multi-timeframe grid and trend grid: exact quotes from hand-built
indicator arrays, tick rounding, warm-up, and the names <-> keys contract on real data."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import gridflow
from gridflow.config.strategies import EnvelopeDcaParams, GridMultiTfParams, GridTrendParams
from gridflow.data.candle_files import read_candle_file
from gridflow.operators.indicators.bank import IndicatorBank, parse_indicator
from gridflow.operators.strategies import STRATEGIES as EXTRA

NAN = np.nan
A = np.array
CANDLES = Path(gridflow.__file__).parent / "data" / "candles" / "binance_BTC_USDT_1h.csv.gz"


def close(x, y):
    np.testing.assert_allclose(np.asarray(x, float), np.asarray(y, float), rtol=0, atol=1e-9)


# ---------------------------------------------------------------- envelope DCA
def test_envelope_long_exact_with_ticks():
    p = EnvelopeDcaParams(sma_period=2, offsets=(0.03, 0.05))
    q = EXTRA["envelope_dca"][1](p, {"sma_2": A([NAN, 100.0, 200.5])}, 0.1)
    close(q.levels, [[NAN, NAN], [97.0, 95.0], [194.4, 190.4]])  # 194.485 / 190.475 down
    close(q.take_profit, [NAN, 100.0, 200.5])
    assert q.side.tolist() == [0, 1, 1] and q.side.dtype == np.int64
    assert np.isnan(q.trail).all()
    q = EXTRA["envelope_dca"][1](p, {"sma_2": A([100.04])}, 0.1)
    close(q.take_profit, [100.1])  # TP toward the long grid: up


def test_envelope_short_exact_with_ticks():
    p = EnvelopeDcaParams(side="short", sma_period=2, offsets=(0.03, 0.05))
    q = EXTRA["envelope_dca"][1](p, {"sma_2": A([NAN, 100.0, 100.04])}, 0.01)
    # 100 / 0.97 = 103.0928 -> 103.10, 100 / 0.95 = 105.263 -> 105.27 (sells up)
    close(q.levels[:2], [[NAN, NAN], [103.10, 105.27]])
    close(q.take_profit, [NAN, 100.0, 100.04])
    q = EXTRA["envelope_dca"][1](p, {"sma_2": A([100.047])}, 0.01)
    close(q.take_profit, [100.04])  # TP toward the short grid: down
    assert EXTRA["envelope_dca"][1](p, {"sma_2": A([NAN, 1.0])}).side.tolist() == [0, -1]


@settings(max_examples=200, deadline=None)
@given(
    offs=st.lists(st.floats(0.001, 0.9), min_size=1, max_size=6, unique=True),
    sma=st.floats(1e-4, 1e7),
)
def test_envelope_symmetric_in_log_return(offs, sma):
    offs = tuple(sorted(offs))
    assume(all(b - a > 1e-6 for a, b in pairwise(offs)))
    vals = {"sma_24": A([sma])}
    lo = EXTRA["envelope_dca"][1](EnvelopeDcaParams(offsets=offs), vals).levels[0]
    hi = EXTRA["envelope_dca"][1](EnvelopeDcaParams(side="short", offsets=offs), vals).levels[0]
    np.testing.assert_allclose(np.log(hi / sma), -np.log(lo / sma), rtol=1e-9, atol=1e-12)
    upper = 1.0 / (1.0 - np.asarray(offs)) - 1.0
    np.testing.assert_allclose(hi, sma * (1.0 + upper), rtol=1e-12)
    assert (np.diff(lo) < 0).all() and (np.diff(hi) > 0).all()  # level 0 nearest


# ---------------------------------------------------------------- multi-timeframe grid
MTF = GridMultiTfParams(sma_period=2, atr_period=1, levels=2, atr_start=1.0, atr_step=0.5)
DIR = "supertrend_10_3.0@4h.direction"


def test_multi_tf_follows_htf_direction_with_flip():
    vals = {
        DIR: A([NAN, NAN, 1.0, 1.0, -1.0, -1.0, 1.0]),
        "sma_2": A([NAN, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0]),
        "atr_1": A([4.0, 4.0, NAN, 4.0, 4.0, 3.0, 4.0]),
    }
    q = EXTRA["grid_multi_tf"][1](MTF, vals, 1.0)
    assert q.side.tolist() == [0, 0, 0, 1, -1, -1, 1]
    close(q.levels, [[NAN, NAN]] * 3 + [[96.0, 94.0], [104.0, 106.0],
                                        [103.0, 105.0], [96.0, 94.0]])
    close(q.take_profit, [NAN, NAN, NAN, 100.0, 100.0, 100.0, 100.0])
    assert np.isnan(q.trail).all()


def test_multi_tf_tick_rounding():
    vals = {DIR: A([1.0, -1.0]), "sma_2": A([100.3, 100.3]), "atr_1": A([1.0, 1.0])}
    q = EXTRA["grid_multi_tf"][1](MTF, vals, 1.0)
    # long: 99.3 / 98.8 down; TP 100.3 up. short: 101.3 / 101.8 up; TP down.
    close(q.levels, [[99.0, 98.0], [102.0, 102.0]])
    close(q.take_profit, [101.0, 100.0])


def test_multi_tf_names_other_htf():
    p = GridMultiTfParams(htf="1d", supertrend_period=7, supertrend_multiplier=2)
    assert EXTRA["grid_multi_tf"][0](p) == ["supertrend_7_2.0@1d", "sma_24", "atr_14"]


# ---------------------------------------------------------------- trend grid
TR = GridTrendParams(ema_fast=2, ema_slow=3, adx_period=2, adx_threshold=25.0, atr_period=1,
                     levels=2, atr_start=0.5, atr_step=1.0, trail_atr=3.0)


def trend_vals(fast, slow, adx, atr):
    return {"ema_2": A(fast, float), "ema_3": A(slow, float), "adx_2.adx": A(adx, float),
            "atr_1": A(atr, float)}


def test_trend_exact_quotes_and_warmup():
    v = trend_vals([NAN, 100, 100, 100, 100], [NAN, 90, 110, 100, 90],
                   [NAN, 30, 30, 30, 25], [2, 2, 2, 2, NAN])
    q = EXTRA["grid_trend"][1](TR, v, 0.0)
    assert q.side.tolist() == [0, 1, -1, 0, 0]  # equal EMAs -> 0; ATR unknown -> warm-up
    close(q.levels, [[NAN, NAN], [99.0, 97.0], [101.0, 103.0], [NAN, NAN], [NAN, NAN]])
    assert np.isnan(q.take_profit).all()
    close(q.trail, [NAN, 6.0, 6.0, 6.0, NAN])


def test_trend_adx_filter_blanks_levels_keeps_side():
    v = trend_vals([100, 100, 100, 100], [90, 90, 110, 90], [24.99, 25.0, 10.0, NAN], [2] * 4)
    q = EXTRA["grid_trend"][1](TR, v, 0.0)
    assert q.side.tolist() == [1, 1, -1, 0]
    assert np.isnan(q.levels[[0, 2, 3]]).all()
    close(q.levels[1], [99.0, 97.0])
    close(q.trail, [6.0, 6.0, 6.0, NAN])


def test_trend_tick_rounding():
    v = trend_vals([100.3, 100.3], [90, 110], [50, 50], [0.5, 0.5])
    q = EXTRA["grid_trend"][1](TR, v, 0.5)
    # long 100.05 / 99.55 -> down to 100.0 / 99.5; short 100.55 / 101.05 -> up
    close(q.levels, [[100.0, 99.5], [101.0, 101.5]])
    close(q.trail, [1.5, 1.5])  # a distance, not rounded


# ---------------------------------------------------------------- names <-> keys, real data
class _Spy(dict):
    def __init__(self, *a):
        super().__init__(*a)
        self.read: set[str] = set()

    def __getitem__(self, k):
        self.read.add(k)
        return super().__getitem__(k)


@pytest.fixture(scope="module")
def candles():
    return read_candle_file(CANDLES)


@pytest.mark.parametrize("name,p,warm", [
    ("envelope_dca", EnvelopeDcaParams(), 23),
    ("envelope_dca", EnvelopeDcaParams(side="short", sma_period=50), 49),
    ("grid_multi_tf", GridMultiTfParams(), 4 * 12),
    ("grid_multi_tf", GridMultiTfParams(htf="1d", supertrend_period=3), 24 * 5),
    ("grid_trend", GridTrendParams(), 50),
])
def test_names_are_the_keys_read_on_real_data(candles, name, p, warm):
    ind, quotes = EXTRA[name]
    names = ind(p)
    bank = IndicatorBank(names, timeframe="1h")
    c = candles
    vals = _Spy(bank.update(c["ts"], c["open"], c["high"], c["low"], c["close"], c["volume"]))
    q = quotes(p, vals, 0.01)
    assert vals.read <= set(bank.outputs)
    owner = {k: nm for nm in names for k in parse_indicator(nm).outputs}
    assert vals.read <= set(owner)  # only outputs of the requested names ...
    assert {owner[k] for k in vals.read} == set(names) == set(bank.names)  # ... all used
    n = len(c["close"])
    assert q.side.shape == q.take_profit.shape == q.trail.shape == (n,)
    assert q.levels.shape == (n, p.levels_count)
    assert (q.side[:5] == 0).all() and np.isnan(q.levels[:5]).all()
    after = slice(warm + 24, None)  # a margin past the longest warm-up
    if name == "grid_trend":
        assert (q.side[after] != 0).mean() > 0.99 and np.isfinite(q.trail[after]).all()
        gate = vals["adx_14.adx"][after] >= p.adx_threshold
        gate &= q.side[after] != 0
        assert gate.any() and np.isfinite(q.levels[after][gate]).all()
        assert np.isnan(q.levels[after][~gate]).all()
        assert np.isnan(q.take_profit).all()
    else:
        assert np.isin(q.side[after], (-1, 1)).all()
        assert np.isfinite(q.levels[after]).all() and np.isfinite(q.take_profit[after]).all()
    if name == "grid_multi_tf":
        assert {-1, 1} <= set(q.side[after].tolist())  # the HTF trend flips on real data
