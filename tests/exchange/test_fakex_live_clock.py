"""The fake exchange's sub-candle clock and mark price, driven by real ccxt.

Walking a candle in sub-steps must give the same fills as one whole step; inside a
candle the clock, the forming kline, the mark price, positions and balance follow the
price path ``open -> low -> high -> close`` (green) or ``open -> high -> low -> close``
(red), three straight legs of a third of the candle each.
"""

from __future__ import annotations

import json
import math
import urllib.request

import numpy as np
import pytest
from helpers import bundled_window
from pydantic import SecretStr

from gridflow.config.live import ExchangeConfig
from gridflow.exchange.client import make_exchange
from gridflow.fakex import FakeExchange

START = 1704067200000  # 2024-01-01 00:00 UTC
HOUR = 3_600_000
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"


@pytest.fixture(scope="module")
def candles() -> dict[str, np.ndarray]:
    """50 history candles and 12 to come, per symbol."""
    return bundled_window(START, 50, 12)


@pytest.fixture
def make():
    """``make(candles, **fx_kwargs) -> (fx, ex)``: a started fake exchange and ccxt."""
    started = []

    def _make(cs, **kw):
        kw.setdefault("start_ms", START)
        fx = FakeExchange(cs, timeframe="1h", **kw)
        fx.start()
        started.append(fx)
        ex = make_exchange(ExchangeConfig(
            id="binanceusdm", api_key=SecretStr("test-key"), secret=SecretStr("test-secret"),
            urls=fx.ccxt_urls(), rate_limit_ms=1,
            options={"fetchOpenOrders": {"warnWithoutSymbol": False}}))
        return fx, ex

    yield _make
    for fx in started:
        fx.stop()


def path_of(o: float, h: float, lo: float, c: float) -> list[float]:
    return [o, lo, h, c] if c >= o else [o, h, lo, c]


def path_price(path: list[float], u: float, tf: int = HOUR) -> float:
    """The test's own reading of the documented path: linear along three equal legs."""
    i = min(int(u / (tf / 3)), 2)
    frac = (u - i * tf / 3) / (tf / 3)
    return path[i] + (path[i + 1] - path[i]) * frac


def walked(path: list[float], u: float, tf: int = HOUR) -> list[float]:
    """Prices the path has passed through by ``u``: its vertices so far and the price now."""
    return [path[i] for i in range(3) if i * tf / 3 <= u] + [path_price(path, u, tf)]


def tick(x: float, t: float = 0.1, up: bool = False) -> float:
    f = math.ceil if up else math.floor
    return round(f(x / t - 1e-9 if up else x / t + 1e-9) * t, 8)


def place_book(ex, candles) -> None:
    """A long position, limit ladders on both sides, a stop-market and a take-profit,
    spread over the range of the next 6 BTC candles (and one ETH ladder)."""
    rows = candles["BTC/USDT"][50:56]
    o0, lo, hi = float(rows[0, 1]), float(rows[:, 3].min()), float(rows[:, 2].max())
    ex.create_order(BTC, "market", "buy", 0.1, None, {"clientOrderId": "pos"})
    for i, f in enumerate(np.linspace(0.15, 1.0, 6)):
        ex.create_order(BTC, "limit", "buy", 0.01, tick(o0 - f * (o0 - lo), up=True),
                        {"clientOrderId": f"b{i}"})
        ex.create_order(BTC, "limit", "sell", 0.01, tick(o0 + f * (hi - o0)),
                        {"clientOrderId": f"s{i}"})
    ex.create_order(BTC, "market", "sell", 0.02, None,
                    {"stopPrice": tick(o0 - 0.4 * (o0 - lo)), "reduceOnly": True,
                     "clientOrderId": "sl"})
    ex.create_order(BTC, "market", "sell", 0.02, None,
                    {"takeProfitPrice": tick(o0 + 0.7 * (hi - o0)), "reduceOnly": True,
                     "clientOrderId": "tp"})
    e = candles["ETH/USDT"][50:56]
    e0, elo = float(e[0, 1]), float(e[:, 3].min())
    for i, f in enumerate((0.3, 0.6, 0.9)):
        ex.create_order(ETH, "limit", "buy", 0.1, tick(e0 - f * (e0 - elo), 0.01, up=True),
                        {"clientOrderId": f"e{i}"})


def outcome(fx) -> tuple:
    """Fills per symbol in the order they happened (across symbols a whole step walks
    one symbol after the other, sub-steps interleave them: trade ids differ)."""
    trades = [(t["symbol"], t["clientOrderId"], t["side"], t["price"], t["qty"], t["time"],
               t["maker"], round(t["realizedPnl"], 9)) for t in fx.trades()]
    trades.sort(key=lambda t: t[0])  # stable: keeps each symbol's order
    orders = [(o["clientOrderId"], o["status"], o["executedQty"]) for o in fx.orders()]
    return trades, orders, round(fx.balance(), 9), fx.positions()


@pytest.mark.parametrize("of", [2, 3, 7, 12, 60])
def test_substeps_fill_exactly_like_whole_steps(make, candles, of):
    whole, ex_w = make(candles, leverage=5)
    place_book(ex_w, candles)
    whole.step(6)
    sub, ex_s = make(candles, leverage=5)
    place_book(ex_s, candles)
    for _ in range(6 * of):
        sub.substep(1, of)
    assert sub.now_ms() == whole.now_ms() == START + 6 * HOUR
    ref = outcome(whole)
    assert len(ref[0]) >= 12  # the walk did act: ladders, stop and take-profit
    assert {"sl", "tp"} <= {t[1] for t in ref[0]}
    assert outcome(sub) == ref


def test_clock_kline_mark_and_pnl_move_inside_a_candle(make, candles):
    fx, ex = make(candles)
    o, h, lo, c = (float(x) for x in candles["BTC/USDT"][50, 1:5])
    path = path_of(o, h, lo, c)
    ex.create_order(BTC, "market", "buy", 0.1, None)
    entry = fx.positions()["BTC/USDT"]["entry_price"]
    seen = []
    for j in range(1, 12):
        fx.substep(1, 12)
        u = j * HOUR / 12
        px = path_price(path, u)
        assert ex.fetch_time() == fx.now_ms() == START + int(u)
        bar = ex.fetch_ohlcv(BTC, "1h", limit=2)[-1]
        so_far = walked(path, u)
        assert bar[0] == START and bar[1] == o
        assert bar[2] == pytest.approx(max(so_far)) and bar[3] == pytest.approx(min(so_far))
        assert bar[4] == pytest.approx(px, abs=1e-6)
        mark = ex.fetch_mark_price(BTC)
        assert mark["markPrice"] == pytest.approx(px, abs=1e-6) and mark["timestamp"] == \
            START + int(u)
        assert ex.fetch_mark_prices()[BTC]["markPrice"] == mark["markPrice"]
        (pos,) = ex.fetch_positions([BTC])
        assert pos["markPrice"] == pytest.approx(px, abs=1e-6)
        assert pos["unrealizedPnl"] == pytest.approx(0.1 * (px - entry), abs=1e-6)
        bal = ex.fetch_balance()
        assert float(bal["info"]["totalUnrealizedProfit"]) == pytest.approx(fx.unrealized(),
                                                                          abs=1e-6)
        assert bal["USDT"]["total"] == pytest.approx(fx.equity(), abs=1e-6)
        assert fx.equity() == pytest.approx(fx.balance() + 0.1 * (px - entry))
        assert fx.positions(mark=True)["BTC/USDT"]["mark"] == pytest.approx(px)
        seen.append(mark["markPrice"])
    assert len(set(seen)) > 5  # the mark did move
    assert fx.substep(1, 12) == 11  # the 12th piece closes the candle
    assert fx.now_ms() == START + HOUR
    bars = ex.fetch_ohlcv(BTC, "1h", limit=2)
    assert bars[0][1:5] == [o, h, lo, c]
    o1 = float(candles["BTC/USDT"][51, 1])
    assert bars[1][1:] == [o1, o1, o1, o1, 0.0]
    assert ex.fetch_mark_price(BTC)["markPrice"] == pytest.approx(o1)


def test_step_finishes_a_candle_begun_in_substeps(make, candles):
    fx, _ = make(candles)
    fx.substep(5, 12)
    assert fx.now_ms() == START + 5 * HOUR // 12
    fx.advance_ms(60_000)
    assert fx.now_ms() == START + 5 * HOUR // 12 + 60_000
    assert fx.step() == 11 and fx.now_ms() == START + HOUR
    assert fx.substep(13, 12) == 10 and fx.now_ms() == START + 2 * HOUR + HOUR // 12
    assert fx.advance_ms(0) == 10
    with pytest.raises(ValueError):
        fx.substep(1, 0)
    post = lambda q: json.load(urllib.request.urlopen(urllib.request.Request(
        f"{fx.url}/_fakex/{q}", method="POST")))
    assert post("substep?k=2&of=12") == {"left": 10, "now": START + 2 * HOUR + HOUR // 4}
    assert post("advance?ms=1000") == {"left": 10, "now": START + 2 * HOUR + HOUR // 4 + 1000}
    assert post("step") == {"left": 9, "now": START + 3 * HOUR}


def synthetic() -> dict[str, np.ndarray]:
    """Flat candles at 100, one red candle 100 -> 100 -> 70 -> 75, then flat at 75."""
    n_hist, rows = 10, []
    for k in range(n_hist + 6):
        o, h, lo, c = (100, 100, 100, 100) if k < n_hist + 2 else (75, 75, 75, 75)
        if k == n_hist + 2:
            o, h, lo, c = 100, 100, 70, 75
        rows.append([START + (k - n_hist) * HOUR, o, h, lo, c, 10.0])
    return {"BTC/USDT": np.array(rows, dtype=np.float64)}


def test_ladder_fills_progressively_inside_a_crash_candle(make):
    markets = {"BTC/USDT": {"price_tick": 0.1, "amount_step": 0.001, "min_amount": 0.001,
                            "min_notional": 5.0}}
    fx, ex = make(synthetic(), markets=markets)
    ladder = [95.0, 90.0, 85.0, 80.0, 75.0, 70.0, 65.0]
    for p in ladder:
        ex.create_order(BTC, "limit", "buy", 1.0, p, {"clientOrderId": f"L{int(p)}"})
    fx.step(2)  # flat candles: nothing fills
    assert fx.trades() == []
    t0, path = START + 2 * HOUR, [100.0, 100.0, 70.0, 75.0]
    filled_counts, prev_lows = [], 100.0
    for j in range(1, 12):
        fx.substep(1, 12)
        u = j * HOUR / 12
        px = path_price(path, u)
        assert ex.fetch_time() == t0 + int(u)
        trades = ex.fetch_my_trades(BTC, since=t0)
        filled = sorted((t["price"] for t in trades), reverse=True)
        assert filled == [p for p in ladder if p >= min(walked(path, u))]
        for t in trades:
            assert t0 < t["timestamp"] <= t0 + int(u)
            want = t0 + HOUR / 3 + (100 - t["price"]) / 30 * HOUR / 3
            assert abs(t["timestamp"] - want) <= 1 and t["takerOrMaker"] == "maker"
        stamps = [t["timestamp"] for t in sorted(trades, key=lambda t: -t["price"])]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
        low = ex.fetch_ohlcv(BTC, "1h", limit=1)[0][3]
        assert low <= prev_lows and low == pytest.approx(min(px, prev_lows))
        prev_lows = low
        filled_counts.append(len(filled))
    assert filled_counts == [0, 0, 0, 0, 1, 3, 4, 6, 6, 6, 6]
    fx.substep()
    assert fx.now_ms() == t0 + HOUR and len(fx.trades()) == 6
    assert ex.fetch_order(None, BTC, {"clientOrderId": "L65"})["status"] == "open"
    assert fx.positions()["BTC/USDT"]["amount"] == pytest.approx(6.0)
