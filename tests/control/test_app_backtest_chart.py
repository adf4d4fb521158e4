"""The Backtest page's strategy chart data (:mod:`gridflow.control.app.chart_data`).

The thinning rules are property-tested; the lines are checked against real replays: every
entry fill lies on a level line the chart draws, every take profit and stop exit on the
chart's take-profit and stop lines (or at the candle's open, a gap), so the chart shows
what the engine did, not a look-alike.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridflow.config import DEFAULT_CONFIG
from gridflow.config.models import AccountConfig
from gridflow.control.app.chart_data import (
    MAX_BARS,
    aggregate_ohlc,
    bar_last,
    bar_starts,
    build_chart,
    position_lines,
    valid_candles,
)
from gridflow.data import CANDLES_DIR
from gridflow.data.candle_files import read_candle_file
from gridflow.journal.store import list_runs, read_fills, read_orders

PRESETS = DEFAULT_CONFIG.parent / "presets"


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 5000), max_bars=st.integers(1, 400), seed=st.integers(0, 2**31))
def test_bars_aggregate_every_candle_once(n: int, max_bars: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    c = 100 + np.cumsum(rng.normal(0, 1, n))
    o = np.r_[100.0, c[:-1]]
    h, lo = np.maximum(o, c) + rng.random(n), np.minimum(o, c) - rng.random(n)
    starts = bar_starts(n, max_bars)
    assert 1 <= len(starts) <= max_bars and starts[0] == 0 and np.all(np.diff(starts) > 0)
    sizes = np.diff(np.r_[starts, n])
    assert np.all(sizes[:-1] == sizes[0]) and 1 <= sizes[-1] <= sizes[0]
    bo, bh, bl, bc = aggregate_ohlc(o, h, lo, c, starts)
    for b, (a, e) in enumerate(zip(starts, np.r_[starts[1:], n])):
        assert (bo[b], bh[b], bl[b], bc[b]) == (o[a], h[a:e].max(), lo[a:e].min(), c[e - 1])


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 500), max_bars=st.integers(1, 60), seed=st.integers(0, 2**31))
def test_a_bar_shows_its_last_known_value(n: int, max_bars: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, 3))
    v[rng.random((n, 3)) < 0.6] = np.nan
    starts = bar_starts(n, max_bars)
    got = bar_last(v, starts)
    assert got.shape == (len(starts), 3)
    for b, (a, e) in enumerate(zip(starts, np.r_[starts[1:], n])):
        for j in range(3):
            known = v[a:e, j][~np.isnan(v[a:e, j])]
            assert (np.isnan(got[b, j]) and not known.size) or got[b, j] == known[-1]
    np.testing.assert_array_equal(bar_last(v[:, 0], starts), got[:, 0])


def test_rows_validation_refuses_are_not_drawn() -> None:
    c = {"ts": np.array([0, 10, 10, 5, 20, 30, -1, 40]),
         "open": np.array([1, 1, 1, 1, np.nan, 1, 1, 1.0]),
         "high": np.array([1, 1, 1, 1, 1, 1, 1, 1.0]),
         "low": np.array([1, 1, 1, 1, 1, -1, 1, 1.0]),
         "close": np.array([1, 1, 1, 1, 1, 1, 1, 1.0])}
    assert valid_candles(c).tolist() == [0, 1, 7]  # duplicate, out of order, NaN, <0, ts -1


def test_take_profit_and_stop_follow_the_kernel_rules() -> None:
    """A long grid fills L0 at 100 and L1 at 90 (avg 95), exits at the take profit; a
    short with a trailing distance of 5 is stopped by its trailing leg."""
    ts = np.arange(8) * 10
    o = np.array([100, 100, 95, 96, 99, 100, 98, 96.0])
    h = np.array([101, 100, 97, 99, 101, 101, 100, 97.0])
    lo = np.array([99, 89, 94, 95, 98, 97, 95, 94.0])
    c = np.array([100, 95, 96, 99, 100, 98, 96, 95.0])
    tp = np.array([np.nan, 102, 101, 100, 99, 98, 97, 96.0])
    fills = [{"ts_ms": 10, "price": 100.0, "amount": 1.0, "side": "buy", "kind": "entry"},
             {"ts_ms": 10, "price": 90.0, "amount": 1.0, "side": "buy", "kind": "entry"},
             {"ts_ms": 40, "price": 99.0, "amount": 2.0, "side": "sell", "kind": "exit"}]
    got_tp, stop = position_lines(ts, o, h, lo, c, fills, 0.1, tp, np.full(8, np.nan))
    np.testing.assert_array_equal(np.isnan(stop), [1, 0, 0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(stop[1:5], 95 * 0.9)
    np.testing.assert_array_equal(got_tp[1:5], tp[1:5])
    trail = np.full(8, 5.0)
    short = [{"ts_ms": 50, "price": 100.0, "amount": 1.0, "side": "sell", "kind": "entry"},
             {"ts_ms": 70, "price": 96.0, "amount": 1.0, "side": "buy", "kind": "exit"}]
    _, stop = position_lines(ts, o, h, lo, c, short, 0.5, tp, trail)
    # candle 5 opens the short at 100 (stop 100 + 5), then falls (open, high, low 97,
    # close): best 97, stop 102 in candle 6, whose low 95 makes it 100 in candle 7
    np.testing.assert_allclose(stop[5:], [105.0, 102.0, 100.0])
    assert np.isnan(stop[:5]).all()


def _replay(tmp: Path, preset: Path, end: str) -> tuple[str, dict, str]:
    db = f"sqlite:///{tmp / (preset.stem + '.db')}"
    subprocess.run([sys.executable, "-m", "gridflow.cli", "replay", "--config", str(preset),
                    "--db", db, "--start", "2024-01-01", "--end", end, "--no-progress"],
                   check=True, capture_output=True, timeout=300)
    (run,) = list_runs(db)
    return db, json.loads(run["config_json"]), run["run_id"]


@pytest.fixture(scope="module")
def replays(tmp_path_factory) -> dict[str, tuple[str, dict, str]]:
    """Two finished replays: the default preset (grid ATR and envelope DCA, take
    profits) over two months and grid_trend (trailing stops, flips) over three."""
    tmp = tmp_path_factory.mktemp("charts")
    return {"default": _replay(tmp, DEFAULT_CONFIG, "2024-03-01"),
            "grid_trend": _replay(tmp, PRESETS / "grid_trend.toml", "2024-04-01")}


@pytest.mark.parametrize(("name", "symbol", "exits"), [
    ("default", "BTC/USDT", {"TP"}), ("default", "ADA/USDT", {"TP"}),
    ("grid_trend", "ETH/USDT", {"SL", "FLIP"})])
def test_fills_lie_on_the_lines_the_chart_draws(replays, name: str, symbol: str,
                                                exits: set[str]) -> None:
    db, cfg, run_id = replays[name]
    orders = {o["client_order_id"]: o for o in read_orders(db, run_id)}
    tags = {k: o["tag"] for k, o in orders.items()}
    market = (cfg["markets"].get(symbol) or {})
    chart = build_chart(AccountConfig.model_validate(cfg["accounts"][0]), symbol,
                        read_candle_file(CANDLES_DIR / f"binance_{symbol.replace('/', '_')}"
                                         "_1h.csv.gz"),
                        cfg["start_ms"], cfg["end_ms"], read_fills(db, run_id), tags,
                        timeframe="1h", price_tick=market.get("price_tick", 0.0),
                        max_bars=10**9)
    assert chart.per_bar == 1 and chart.strategy  # every candle, the symbol's strategy
    checked: dict[str, int] = {}
    for f in (f for f in read_fills(db, run_id) if f["symbol"] == symbol):
        o, i = orders[f["client_order_id"]], int(np.searchsorted(chart.ts_ms, f["ts_ms"]))
        assert chart.ts_ms[i] == f["ts_ms"]
        tag, gap = o["tag"], np.isclose(o["price"], chart.open[i], rtol=1e-12)
        if tag.startswith("L"):
            line = chart.levels[i, int(tag[1:])]
        elif tag == "TP":
            line = chart.take_profit[i]
        elif tag == "SL":
            line = chart.stop[i]
        else:  # a flip closes at the open
            assert gap, (tag, o)
            line = o["price"]
        assert gap or np.isclose(o["price"], line, rtol=1e-12), (tag, o["price"], line)
        key = "L" if tag.startswith("L") else tag
        checked[key] = checked.get(key, 0) + 1
    assert set(checked) == {"L"} | exits, checked
    assert np.isnan(chart.stop).any() and np.isfinite(chart.stop).any()  # flat, then not
    kinds = {m["kind"] for m in chart.marks}
    assert kinds == {"entry", "exit"}


def test_a_long_window_is_thinned_to_its_envelope(replays) -> None:
    """The whole BTC/USDT file (seven years of 1h candles) in at most MAX_BARS bars that
    keep the extremes; the grid_trend indicators: EMAs over the candles, ADX and ATR
    in panels."""
    _db, cfg, _run = replays["grid_trend"]
    candles = read_candle_file(CANDLES_DIR / "binance_BTC_USDT_1h.csv.gz")
    chart = build_chart(AccountConfig.model_validate(cfg["accounts"][0]), "BTC/USDT", candles,
                        None, None, [], {}, timeframe="1h")
    assert chart.candles == len(candles["ts"]) > 20 * MAX_BARS
    assert len(chart.ts_ms) <= MAX_BARS and chart.per_bar > 1
    assert chart.high.max() == candles["high"].max() and chart.low.min() == candles["low"].min()
    assert list(chart.overlays) == ["ema_20", "ema_50"]
    assert set(chart.panels) == {"adx_14.adx", "adx_14.plus_di", "adx_14.minus_di", "atr_14"}
    assert chart.levels.shape == (len(chart.ts_ms), 1) and np.isfinite(chart.levels).any()
    assert not chart.marks and np.isnan(chart.stop).all()
    assert build_chart(None, "BTC/USDT", candles, 0, 1, [], {}) is None  # nothing inside


def test_a_funding_grid_run_is_charted_from_its_fills() -> None:
    """The chart has no funding series: a grid_funding account gets its candles and
    indicators drawn (no quoted levels), never an error."""
    from gridflow.config.strategies import GridFundingParams

    candles = read_candle_file(CANDLES_DIR / "binance_BTC_USDT_1h.csv.gz")
    acct = AccountConfig(name="f", symbols=("BTC/USDT",), strategy=GridFundingParams())
    chart = build_chart(acct, "BTC/USDT", candles, None, None, [], {}, timeframe="1h")
    assert chart.candles == len(candles["ts"]) and "sma_24" in chart.overlays
    assert np.isnan(chart.levels).all()
