"""The exchange-state source reads every trade of a window however the venue pages:
Binance serves the oldest ``limit`` trades of a window, Bitget the newest 100. Real
ccxt over HTTP against the local exchange's dialects."""

from __future__ import annotations

import ccxt
import pytest

from gridflow.dataflows import live_state
from gridflow.dataflows.live_state import ExchangeStatePartition
from gridflow.fakex import FakeExchange

H = 3_600_000


@pytest.fixture(scope="module")
def rows():
    from helpers import bundled_window

    return bundled_window(1704067200000, 50, 130)


def _trade(fx_dialect: str, rows, n_candles: int, per_candle: int):
    start = 1704067200000
    fx = FakeExchange({"BTC/USDT": rows["BTC/USDT"]}, timeframe="1h", start_ms=start,
                      dialect=fx_dialect, balance_usdt=100_000.0)
    fx.start()
    cls = ccxt.bitget if fx_dialect == "bitget" else ccxt.binanceusdm
    ex = cls({**fx.ccxt_config(), "enableRateLimit": False})
    sym = "BTC/USDT:USDT"
    for k in range(n_candles):
        for j in range(per_candle):
            ex.create_order(sym, "market", "buy" if (k + j) % 2 == 0 else "sell", 0.001)
        fx.step()
    return fx, ex, start


@pytest.mark.parametrize("venue,page", [("bitget", None), ("binanceusdm", 20)])
def test_every_trade_of_a_window_is_read_whatever_the_venue_pages(rows, monkeypatch, venue,
                                                                   page):
    """150 trades (Bitget: more than its page of 100) or 60 (Binance, its page made 20
    here), spread over 50 / 20 hours in one window: every one reported once, in time
    order."""
    if page is not None:
        monkeypatch.setitem(live_state.TRADES_PAGE, venue, page)
    n, per = (50, 3) if venue == "bitget" else (20, 3)
    fx, ex, start = _trade(venue, rows, n, per)
    try:
        part = ExchangeStatePartition(ex, "acc", ["BTC/USDT"], "swap", poll_s=0.01,
                                      since_ms=start)
        (upd,) = part.next_batch()
        theirs = sorted(f"trade-{t['id']}" for t in fx.trades())
        assert len(theirs) == n * per
        assert sorted(r.report_id for r in upd.reports) == theirs
        assert [r.ts_ms for r in upd.reports] == sorted(r.ts_ms for r in upd.reports)
        calls = [r for r in fx.request_log
                 if r["path"].endswith(("/order/fills", "/fill-history", "/userTrades"))]
        assert len(calls) >= 3  # the full first page was split
    finally:
        fx.stop()


def test_every_bitget_funding_payment_is_read_beyond_its_page(rows):
    """A long held 120 hours through hourly settlements: 120 payments, more than a Bitget
    bill page (100), all read once."""
    import numpy as np

    start = 1704067200000
    times = np.arange(start + H, start + 121 * H, H, dtype=np.int64)
    fx = FakeExchange({"BTC/USDT": rows["BTC/USDT"]}, timeframe="1h", start_ms=start,
                      dialect="bitget", balance_usdt=100_000.0,
                      funding={"BTC/USDT": (times, np.full(len(times), 0.0001))})
    fx.start()
    try:
        ex = ccxt.bitget({**fx.ccxt_config(), "enableRateLimit": False})
        ex.create_order("BTC/USDT:USDT", "market", "buy", 0.01)
        for _ in range(121):
            fx.step()
        part = ExchangeStatePartition(ex, "acc", ["BTC/USDT"], "swap", poll_s=0.01,
                                      since_ms=start)
        (upd,) = part.next_batch()
        paid = fx.funding_payments()
        assert len(paid) == 120
        assert sorted(r["ts_ms"] for r in upd.funding) == sorted(p["time"] for p in paid)
        assert len({r["id"] for r in upd.funding}) == 120
    finally:
        fx.stop()
