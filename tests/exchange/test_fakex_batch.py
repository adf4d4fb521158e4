"""The local exchange's batch endpoints (Binance USDⓈ-M ``POST`` / ``DELETE
/fapi/v1/batchOrders``) through real ccxt: each item handled as its single-order
endpoint would, a refused item answered by an error object in its place without
stopping the others, the venue's item limits, and the request weight."""

from __future__ import annotations

import ccxt
import pytest
from helpers import bundled_window
from pydantic import SecretStr

from gridflow.config.live import ExchangeConfig
from gridflow.exchange.client import make_exchange
from gridflow.fakex import FakeExchange

BTC = "BTC/USDT:USDT"
START = 1_704_067_200_000  # 2024-01-01


@pytest.fixture
def fx_ex():
    candles = bundled_window(START, 48, 48)
    fx = FakeExchange(candles, timeframe="1h", start_ms=START)
    fx.start()
    cfg = {"api_key": SecretStr("test-key"), "secret": SecretStr("test-secret"),
           "urls": fx.ccxt_urls(), "rate_limit_ms": 1}
    yield fx, make_exchange(ExchangeConfig(id="binanceusdm", **cfg))
    fx.stop()


def item(cid: str, price: float, qty: str = "0.001") -> dict:
    return {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": qty, "price": f"{price:.1f}", "newClientOrderId": cid}


def test_batch_place_answers_each_item_in_order_and_refusals_stop_nothing(fx_ex) -> None:
    fx, ex = fx_ex
    ex.load_markets()
    px = fx.price("BTC/USDT")
    items = [item("gfb0", px * 0.95), item("gfb0", px * 0.94),  # the id again
             item("gfb1", px * 0.93, qty="0.0001"),  # under the lot step
             item("gfb2", px * 0.92)]
    raw = ex.fapiPrivatePostBatchOrders({"batchOrders": items})
    assert [r.get("clientOrderId") for r in raw] == ["gfb0", None, None, "gfb2"]
    assert [r.get("code") for r in raw] == [None, -4116, raw[2]["code"], None]
    assert raw[2]["code"] < 0
    assert sorted((o["clientOrderId"], o["status"]) for o in fx.orders()) == [
        ("gfb0", "NEW"), ("gfb2", "NEW")]
    placed = ex.create_orders([{"symbol": BTC, "type": "limit", "side": "buy",
                                "amount": 0.001, "price": round(px * 0.9, 1),
                                "params": {"newClientOrderId": "gfb3"}}])
    assert [o["clientOrderId"] for o in placed] == ["gfb3"]
    post = [r for r in fx.request_log if r["path"] == "/fapi/v1/batchOrders"]
    assert [(r["method"], r["weight"]) for r in post] == [("POST", 5), ("POST", 5)]
    with pytest.raises(ccxt.BadRequest):  # six items: more than the venue takes
        ex.fapiPrivatePostBatchOrders({"batchOrders": (
            [item(f"gfx{i}", px * 0.9) for i in range(6)])})
    assert not any(o["clientOrderId"].startswith("gfx") for o in fx.orders())


def test_batch_cancel_by_client_ids_with_an_unknown_one_in_its_place(fx_ex) -> None:
    fx, ex = fx_ex
    ex.load_markets()
    px = fx.price("BTC/USDT")
    ex.fapiPrivatePostBatchOrders({"batchOrders": (
        [item(f"gfc{i}", px * (0.95 - 0.01 * i)) for i in range(3)])})
    # the key lower-cased and the list as ccxt's cancel_orders sends them
    raw = ex.fapiPrivateDeleteBatchOrders({"symbol": "BTCUSDT", "origclientorderidlist":
                                           ["gfc0", "nope", "gfc2"]})
    assert [(r.get("clientOrderId"), r.get("status"), r.get("code")) for r in raw] == [
        ("gfc0", "CANCELED", None), (None, None, -2011), ("gfc2", "CANCELED", None)]
    # ccxt's unified call
    done = ex.cancel_orders([], BTC, {"origClientOrderIdList": ["gfc1"]})
    assert [o["clientOrderId"] for o in done] == ["gfc1"]
    assert {o["clientOrderId"]: o["status"] for o in fx.orders()} == {
        "gfc0": "CANCELED", "gfc1": "CANCELED", "gfc2": "CANCELED"}
    with pytest.raises(ccxt.BadRequest):  # neither list
        ex.fapiPrivateDeleteBatchOrders({"symbol": "BTCUSDT"})
