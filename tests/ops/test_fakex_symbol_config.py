"""The local exchange's per-symbol margin type and leverage, through real ccxt:
``fetch_leverages`` / ``fetch_margin_modes`` (``GET /fapi/v1/symbolConfig``) and
``set_margin_mode`` (``POST /fapi/v1/marginType``) with Binance's refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import ccxt
import pytest
from live_harness import KEY, SECRET, start_exchange

from gridflow.config.live import ExchangeConfig
from gridflow.exchange.client import make_exchange

START = int(datetime(2024, 3, 4, tzinfo=UTC).timestamp() * 1000)
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"


@pytest.fixture
def ex():
    fx = start_exchange(START, leverage=2)
    yield make_exchange(ExchangeConfig(urls=fx.ccxt_urls(), api_key=KEY, secret=SECRET,
                                       rate_limit_ms=0)), fx
    fx.stop()


def test_margin_type_and_leverage_read_set_and_refused_as_binance_does(ex):
    ex, fx = ex
    modes = ex.fetch_margin_modes([BTC, ETH])
    assert {s: m["marginMode"] for s, m in modes.items()} == {BTC: "cross", ETH: "cross"}
    assert ex.set_margin_mode("isolated", BTC) == {"code": 200, "msg": "success"}
    ex.set_leverage(7, BTC)
    rows = ex.fetch_leverages([BTC, ETH])
    assert {s: (r["marginMode"], r["longLeverage"]) for s, r in rows.items()} == {
        BTC: ("isolated", 7), ETH: ("cross", 2)}
    assert rows[BTC]["info"] == {"symbol": "BTCUSDT", "marginType": "ISOLATED",
                                 "isAutoAddMargin": "false", "leverage": 7,
                                 "maxNotionalValue": "1000000000"}
    with pytest.raises(ccxt.MarginModeAlreadySet):  # -4046 No need to change margin type.
        ex.set_margin_mode("isolated", BTC)
    # the v2 position rows carry it too
    v2 = ex.fapiPrivateV2GetPositionRisk({"symbol": "BTCUSDT"})
    assert v2[0]["marginType"] == "isolated" and v2[0]["leverage"] == "7"
    # open orders (-4047) and a position (-4048) block a change
    ex.create_order(ETH, "limit", "buy", 0.5, 1000.0)
    with pytest.raises(ccxt.ExchangeError, match="-4047"):
        ex.set_margin_mode("isolated", ETH)
    ex.cancel_all_orders(ETH)
    ex.create_order(ETH, "market", "buy", 0.5)
    with pytest.raises(ccxt.ExchangeError, match="-4048"):
        ex.set_margin_mode("isolated", ETH)
    assert ex.fetch_margin_mode(ETH)["marginMode"] == "cross"
    weights = {(r["method"], r["path"]): r["weight"] for r in fx.request_log}
    assert weights[("GET", "/fapi/v1/symbolConfig")] == 5
    assert weights[("POST", "/fapi/v1/marginType")] == 1
