"""The order gateway on Binance spot (real ``ccxt.binance`` over HTTP against the local
exchange's spot dialect): a sell replacing a stop-limit that filled in part before its
cancel sells only the rest, never the owner's base."""

from __future__ import annotations

import random

from test_gateway import FAST, PRICES, START, candles, intent

from gridflow.config.live import ExchangeConfig
from gridflow.exchange.client import make_exchange
from gridflow.exchange.gateway import OrderGateway
from gridflow.fakex import FakeExchange, FaultPlan

KEY, SECRET = "spot-test-key", "spot-test-secret"


def test_a_sell_replacing_a_part_filled_stop_sells_only_the_rest():
    fx = FakeExchange(candles={s: candles(p) for s, p in PRICES.items()}, timeframe="1h",
                      start_ms=START, api_key=KEY, secret=SECRET, clock="manual",
                      dialect="binance", spot_balances={"BTC": 0.05},
                      faults=FaultPlan(script=[("partial_fill", "gs-stop")]))
    fx.start()
    try:
        ex = make_exchange(ExchangeConfig(id="binance", api_key=KEY, secret=SECRET,
                                          urls=fx.ccxt_urls(), timeout_ms=10_000,
                                          rate_limit_ms=0))
        ex.load_markets()
        gw = OrderGateway(ex, "spot", FAST, secrets=(KEY, SECRET), rng=random.Random(1))
        stop = intent("gs-stop", tag="SL", side="sell", type="stop_limit", price=29_800.0,
                      stop_price=29_900.0, amount=0.02, reduce_only=True)
        assert gw.execute(stop)[0].status == "sent"
        fx.step()  # the candle's low (29,850) triggers it; the fault fills half
        filled = sum(t["qty"] for t in fx.trades() if t["clientOrderId"] == "gs-stop")
        assert 0.0 < filled < 0.02
        tp = intent("gs-tp", tag="TP", side="sell", type="market", price=None, amount=0.02,
                    reduce_only=True, cancel_first="gs-stop")
        cancel, place = gw.execute(tp)
        assert (cancel.status, place.status) == ("canceled", "sent")
        sold = sum(t["qty"] for t in fx.trades() if t["clientOrderId"] == "gs-tp")
        assert abs(sold - (0.02 - filled)) < 1e-9  # the rest of the position, no more
        base = fx.balances()["BTC"]["total"]
        assert abs(base - (0.05 - 0.02)) < 1e-9  # the owner's 0.03 BTC untouched
    finally:
        fx.stop()
