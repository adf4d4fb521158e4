"""The fake Binance USDⓈ-M exchange driven by real ccxt (``binanceusdm``) over HTTP.

Candles are the bundled real BTC/ETH 1h data around 2024-01-01; expected prices are
computed from those rows. BTC tick 0.1 / step 0.001, ETH tick 0.01 / step 0.001.
"""

from __future__ import annotations

import json
import time
import urllib.request

import ccxt
import numpy as np
import pytest
from fakex_window import BTC, ETH, HOUR, START, row, tick_floor, window
from pydantic import SecretStr

from gridflow.config.live import ExchangeConfig
from gridflow.exchange.client import make_exchange
from gridflow.fakex import FakeExchange, FaultPlan

@pytest.fixture(scope="module")
def candles() -> dict[str, np.ndarray]:
    """200 history candles and 60 to come, per symbol."""
    return window()


@pytest.fixture
def make(candles):
    """``make(**fx_kwargs) -> (fx, ex)``: a started fake exchange and a ccxt client."""
    started = []

    def _make(client: dict | None = None, **kw):
        fx = FakeExchange(candles, timeframe="1h", start_ms=START, **kw)
        fx.start()
        started.append(fx)
        cfg = {"api_key": SecretStr("test-key"), "secret": SecretStr("test-secret"),
               "urls": fx.ccxt_urls(), "rate_limit_ms": 1,
               "options": {"fetchOpenOrders": {"warnWithoutSymbol": False}}, **(client or {})}
        return fx, make_exchange(ExchangeConfig(id="binanceusdm", **cfg))

    yield _make
    for fx in started:
        fx.stop()


def test_markets_precision_and_only_futures_endpoints(make):
    fx, ex = make()
    m = ex.load_markets()
    btc, eth = m[BTC], m[ETH]
    assert (btc["swap"], btc["linear"], btc["settle"], btc["id"]) == (True, True, "USDT", "BTCUSDT")
    assert btc["precision"]["price"] == 0.1 and btc["precision"]["amount"] == 0.001
    assert eth["precision"]["price"] == 0.01 and eth["precision"]["amount"] == 0.001
    assert btc["limits"]["amount"]["min"] == 0.001 and btc["limits"]["cost"]["min"] == 5.0
    assert ex.price_to_precision(BTC, 42000.1234) == "42000.1"
    assert all(r["path"].startswith("/fapi/") for r in fx.request_log)


def test_time_and_klines_with_forming_candle(make, candles):
    fx, ex = make()
    assert ex.fetch_time() == START == fx.now_ms()
    bars = ex.fetch_ohlcv(BTC, "1h", limit=3)
    o0 = row(candles, 0)[0]
    assert [b[0] for b in bars] == [START - 2 * HOUR, START - HOUR, START]
    assert bars[-1][1:] == [o0, o0, o0, o0, 0.0]  # forming: its open only
    assert bars[-2][1:5] == list(candles["BTC/USDT"][199, 1:5])
    since = ex.fetch_ohlcv(BTC, "1h", since=START - 10 * HOUR, limit=4)
    assert [b[0] for b in since] == [START - (10 - i) * HOUR for i in range(4)]
    until = ex.fetch_ohlcv(BTC, "1h", limit=2, params={"until": START - 5 * HOUR})
    assert [b[0] for b in until] == [START - 6 * HOUR, START - 5 * HOUR]
    assert len(ex.fetch_ohlcv(BTC, "1h")) == 201  # default limit 500: all visible rows
    assert fx.step() == 59
    bars = ex.fetch_ohlcv(BTC, "1h", limit=2)
    assert bars[0][1:5] == list(row(candles, 0)) and bars[1][0] == START + HOUR
    with pytest.raises(ccxt.BadRequest):
        ex.fetch_ohlcv(BTC, "4h", limit=2)


def test_place_fetch_cancel_by_client_id(make, candles):
    fx, ex = make()
    o = ex.create_order(BTC, "limit", "buy", 0.01, 40000, {"clientOrderId": "gf-a1",
                                                           "timeInForce": "GTC"})
    assert (o["clientOrderId"], o["status"], o["price"], o["amount"]) == ("gf-a1", "open",
                                                                          40000.0, 0.01)
    got = ex.fetch_order(None, BTC, {"clientOrderId": "gf-a1"})
    assert got["id"] == o["id"] and got["status"] == "open"
    assert ex.fetch_order(o["id"], BTC)["clientOrderId"] == "gf-a1"
    e = ex.create_order(ETH, "limit", "sell", 0.01, 2500, {"clientOrderId": "gf-e1"})
    assert [x["clientOrderId"] for x in ex.fetch_open_orders(BTC)] == ["gf-a1"]
    assert {x["clientOrderId"] for x in ex.fetch_open_orders()} == {"gf-a1", "gf-e1"}
    c = ex.cancel_order(None, BTC, {"clientOrderId": "gf-a1"})
    assert c["status"] == "canceled"
    assert ex.fetch_order(None, BTC, {"clientOrderId": "gf-a1"})["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order(None, BTC, {"clientOrderId": "gf-a1"})
    with pytest.raises(ccxt.OrderNotFound):
        ex.fetch_order(None, BTC, {"clientOrderId": "nope"})
    assert ex.cancel_order(e["id"], ETH)["status"] == "canceled"
    assert ex.fetch_open_orders() == []
    assert max(fx.accepted_client_ids().values()) == 1


def test_limit_fills_in_step_as_maker(make, candles):
    fx, ex = make()
    o0, _, l0, _ = row(candles, 0)
    p = tick_floor((o0 + l0) / 2)  # inside the first leg (open -> low)
    ex.create_order(BTC, "limit", "buy", 0.02, p, {"clientOrderId": "gf-m1"})
    fx.step()
    order = ex.fetch_order(None, BTC, {"clientOrderId": "gf-m1"})
    assert order["status"] == "closed" and order["average"] == p and order["filled"] == 0.02
    (t,) = ex.fetch_my_trades(BTC, since=START)
    fee = p * 0.02 * 0.0002
    assert t["takerOrMaker"] == "maker" and t["price"] == p
    assert t["fee"]["cost"] == pytest.approx(fee) and t["fee"]["currency"] == "USDT"
    assert START < t["timestamp"] < START + HOUR
    assert fx.balance() == pytest.approx(10_000 - fee)
    assert fx.positions() == {"BTC/USDT": {"amount": 0.02, "entry_price": p}}


def test_marketable_limit_and_market_fill_now_as_taker(make, candles):
    fx, ex = make()
    o0 = round(row(candles, 0)[0], 1)
    a = ex.create_order(BTC, "limit", "buy", 0.01, o0 + 100, {"clientOrderId": "gf-t1"})
    b = ex.create_order(BTC, "market", "sell", 0.004, None, {"clientOrderId": "gf-t2"})
    assert a["status"] == b["status"] == "closed"
    assert a["average"] == b["average"] == o0
    assert [t["maker"] for t in fx.trades()] == [False, False]
    assert fx.positions()["BTC/USDT"]["amount"] == pytest.approx(0.006)


def test_stop_trigger_cancel_and_immediate_trigger(make, candles):
    fx, ex = make(stop_slippage=0.001)
    o0, _, l0, _ = row(candles, 0)
    ex.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "gf-b1"})
    trig = tick_floor(l0 + 5)
    s = ex.create_order(BTC, "market", "sell", 0.01, None,
                        {"stopPrice": trig, "reduceOnly": True, "clientOrderId": "gf-sl1"})
    assert (s["status"], s["triggerPrice"], s["clientOrderId"]) == ("open", trig, "gf-sl1")
    s2 = ex.create_order(BTC, "market", "sell", 0.01, None,
                         {"stopPrice": trig - 500, "reduceOnly": True, "clientOrderId": "gf-sl2"})
    got = ex.fetch_order(None, BTC, {"clientOrderId": "gf-sl1", "trigger": True})
    assert got["id"] == s["id"] and got["status"] == "open" and got["reduceOnly"] is True
    opened = ex.fetch_open_orders(BTC, params={"trigger": True})
    assert {x["clientOrderId"] for x in opened} == {"gf-sl1", "gf-sl2"}
    assert ex.cancel_order(None, BTC, {"clientOrderId": "gf-sl2", "trigger": True})["id"] == s2["id"]
    assert ex.fetch_order(None, BTC, {"clientOrderId": "gf-sl2", "trigger": True})["status"] \
        == "canceled"
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        ex.create_order(BTC, "market", "sell", 0.01, None,
                        {"stopPrice": round(o0 + 50, 1), "reduceOnly": True,
                         "clientOrderId": "gf-sl3"})
    fx.step()
    algo = ex.fetch_order(None, BTC, {"clientOrderId": "gf-sl1", "trigger": True})
    assert algo["status"] == "closed" and algo["info"]["algoStatus"] == "FINISHED"
    child = ex.fetch_order(None, BTC, {"clientOrderId": "gf-sl1"})  # the MARKET it placed
    fill = round(trig * 0.999, 1)
    assert str(child["id"]) == algo["info"]["actualOrderId"]
    assert child["status"] == "closed" and child["average"] == pytest.approx(fill)
    assert child["info"]["origType"] == "STOP_MARKET"
    assert fx.positions() == {}
    trades = fx.trades()
    assert trades[-1]["realizedPnl"] == pytest.approx(0.01 * (fill - round(o0, 1)))
    assert ex.fetch_open_orders(BTC, params={"trigger": True}) == []
    assert fx.accepted_client_ids()["gf-sl1"] == 1


def test_reduce_only_expires_when_flat(make, candles):
    fx, ex = make()
    _, h0, _, _ = row(candles, 0)
    with pytest.raises(ccxt.InvalidOrder):  # -2022: nothing to reduce
        ex.create_order(BTC, "limit", "sell", 0.01, 50000, {"reduceOnly": True})
    ex.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "gf-r0"})
    tp = tick_floor(h0 - 10)
    ex.create_order(BTC, "limit", "sell", 0.01, tp, {"reduceOnly": True, "clientOrderId": "gf-r1"})
    ex.create_order(BTC, "market", "sell", 0.01, None, {"reduceOnly": True,
                                                        "clientOrderId": "gf-r2"})
    assert fx.positions() == {}
    fx.step()
    o = ex.fetch_order(None, BTC, {"clientOrderId": "gf-r1"})
    assert o["status"] == "expired" and o["filled"] == 0
    assert len(fx.trades()) == 2


def test_a_reduce_only_limit_behind_orders_that_close_everything_is_refused(make, candles):
    """Binance refuses a reduce-only limit that resting reduce-only limits filling before
    it (at a better or equal price) would find already closed; one ahead of them, or
    behind orders that close only part, is taken."""
    fx, ex = make()
    _, h0, _, _ = row(candles, 0)
    ex.create_order(BTC, "market", "buy", 0.02, None, {"clientOrderId": "gf-q0"})
    tp = tick_floor(h0 + 500)
    ex.create_order(BTC, "limit", "sell", 0.01, tp, {"reduceOnly": True, "clientOrderId": "gf-q1"})
    # behind a part: taken (the two close 0.03 of 0.02: the exchange caps the fills)
    ex.create_order(BTC, "limit", "sell", 0.02, tp, {"reduceOnly": True, "clientOrderId": "gf-q2"})
    with pytest.raises(ccxt.InvalidOrder, match="-2022"):  # behind 0.03 >= 0.02: refused
        ex.create_order(BTC, "limit", "sell", 0.02, tick_floor(tp + 100), {"reduceOnly": True})
    ex.create_order(BTC, "limit", "sell", 0.02, tick_floor(tp - 100),  # ahead: taken
                    {"reduceOnly": True, "clientOrderId": "gf-q3"})
    ex.cancel_order(None, BTC, {"origClientOrderId": "gf-q2"})
    ex.cancel_order(None, BTC, {"origClientOrderId": "gf-q3"})
    ex.create_order(BTC, "limit", "sell", 0.02, tick_floor(tp + 100), {"reduceOnly": True})


def test_margin_and_filter_rejections(make):
    fx, ex = make(balance_usdt=1_000.0)
    with pytest.raises(ccxt.InsufficientFunds):  # -2019, 1x leverage
        ex.create_order(BTC, "market", "buy", 0.03, None)
    with pytest.raises(ccxt.InvalidOrder):  # -4164: 0.001 ETH is about 2.3 USDT
        ex.create_order(ETH, "limit", "buy", 0.001, 2000)
    base = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    with pytest.raises(ccxt.InvalidOrder, match="PRICE_FILTER"):
        ex.fapiPrivatePostOrder({**base, "quantity": "0.010", "price": "40000.05"})
    with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):
        ex.fapiPrivatePostOrder({**base, "quantity": "0.0105", "price": "40000"})
    with pytest.raises(ccxt.BadSymbol):
        ex.fapiPrivatePostOrder({**base, "symbol": "DOGEUSDT", "quantity": "1", "price": "1"})
    assert fx.orders() == []


def test_duplicate_client_id_refused_even_after_cancel(make):
    fx, ex = make()
    o = ex.create_order(BTC, "limit", "buy", 0.01, 40000, {"clientOrderId": "gf-d1"})
    with pytest.raises(ccxt.InvalidOrder, match="-4116"):
        ex.create_order(BTC, "limit", "buy", 0.01, 40000, {"clientOrderId": "gf-d1"})
    ex.cancel_order(o["id"], BTC)
    with pytest.raises(ccxt.InvalidOrder, match="-4116"):
        ex.create_order(BTC, "market", "sell", 0.01, 40000,
                        {"clientOrderId": "gf-d1", "stopPrice": 39000})
    assert fx.accepted_client_ids() == {"gf-d1": 1}


@pytest.mark.parametrize("kind, exc, executed", [
    ("rate_limit", ccxt.DDoSProtection, False),
    ("server_error", ccxt.ExchangeNotAvailable, False),
    ("reject", ccxt.InsufficientFunds, False),
    ("drop_before", ccxt.NetworkError, False),
    ("drop_after", ccxt.NetworkError, True),
    ("timeout_before", ccxt.RequestTimeout, False),
    ("timeout_after", ccxt.RequestTimeout, True),
])
def test_order_write_faults_map_to_ccxt_errors(make, kind, exc, executed):
    plan = FaultPlan(script=[(kind, "POST /fapi/v1/order")], hang_s=1.0)
    fx, ex = make(faults=plan, client={"timeout_ms": 300})
    ex.load_markets()
    with pytest.raises(exc):
        ex.create_order(BTC, "limit", "buy", 0.01, 40000, {"clientOrderId": "gf-f1"})
    assert [f["kind"] for f in fx.fault_log] == [kind]
    assert fx.fault_log[0]["client_order_id"] == "gf-f1"
    assert fx.accepted_client_ids()["gf-f1"] == (1 if executed else 0)
    if executed:  # the outcome the client could not see is found by client id
        assert ex.fetch_order(None, BTC, {"clientOrderId": "gf-f1"})["status"] == "open"
    else:
        ex.create_order(BTC, "limit", "buy", 0.01, 40000, {"clientOrderId": "gf-f1"})
    assert max(fx.accepted_client_ids().values()) == 1


def test_read_faults_and_seeded_determinism(make):
    fx, ex = make(faults=FaultPlan(script=[("rate_limit", "/klines")], apply_to=("read",)))
    ex.load_markets()
    with pytest.raises(ccxt.DDoSProtection):
        ex.fetch_ohlcv(BTC, "1h", limit=2)
    assert len(ex.fetch_ohlcv(BTC, "1h", limit=2)) == 2
    assert fx.request_log[-2]["status"] == 429 and fx.request_log[-1]["status"] == 200

    def outcomes(seed: int) -> list[str]:
        plan = FaultPlan(seed=seed, server_error=0.3, rate_limit=0.2, apply_to=("read",))
        _, ex2 = make(faults=plan)
        out = []
        for _ in range(20):
            try:
                ex2.fetch_time()
                out.append("ok")
            except ccxt.NetworkError as e:
                out.append(type(e).__name__)
        return out

    first = outcomes(7)
    assert first == outcomes(7) and set(first) == {"ok", "ExchangeNotAvailable", "DDoSProtection"}


def test_partial_fills(make, candles):
    fx, ex = make(faults=FaultPlan(script=[("partial_fill", "gf-p1")]))
    o = ex.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "gf-p1"})
    assert o["status"] == "open" and o["filled"] == 0.005
    assert [f["kind"] for f in fx.fault_log] == ["partial_fill"]
    fx.step()  # the rest fills when the forming candle is walked: at its open
    o = ex.fetch_order(None, BTC, {"clientOrderId": "gf-p1"})
    assert o["status"] == "closed" and o["filled"] == 0.01
    o0 = round(row(candles, 0)[0], 1)
    assert [(t["qty"], t["price"], t["maker"]) for t in fx.trades()] == [
        (0.005, o0, False), (0.005, o0, False)]

    fx.set_faults(FaultPlan(partial_fill=1.0))
    o1, _, l1, _ = row(candles, 1)
    ex.create_order(BTC, "limit", "buy", 0.004, tick_floor((o1 + l1) / 2),
                    {"clientOrderId": "gf-p2"})
    fx.step()
    assert ex.fetch_order(None, BTC, {"clientOrderId": "gf-p2"})["filled"] in (0.002, 0.003,
                                                                              0.004)


def test_wrong_credentials_raise_authentication_error(make):
    fx, ex = make(client={"secret": SecretStr("wrong-secret")})
    assert ex.fetch_time() == START  # public: unsigned
    with pytest.raises(ccxt.AuthenticationError):
        ex.fetch_balance()
    assert fx.request_log[-1]["status"] == 400
    _, ex2 = make(client={"api_key": SecretStr("other-key")})
    with pytest.raises(ccxt.AuthenticationError):
        ex2.fetch_balance()


def test_my_trades_positions_and_balance(make, candles):
    fx, ex = make(leverage=2)
    o0 = round(row(candles, 0)[0], 1)
    for i in range(3):
        ex.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": f"gf-q{i}"})
    ex.create_order(ETH, "market", "sell", 0.1, None, {"clientOrderId": "gf-e9"})
    trades = ex.fetch_my_trades(BTC, since=START)
    assert [t["amount"] for t in trades] == [0.01] * 3
    assert len(ex.fetch_my_trades(BTC, since=START, limit=2)) == 2
    ids = [t["id"] for t in trades]
    assert [t["id"] for t in ex.fetch_my_trades(BTC, params={"fromId": ids[1]})] == ids[1:]
    pos = {p["symbol"]: p for p in ex.fetch_positions([BTC, ETH])}
    assert pos[BTC]["side"] == "long" and pos[BTC]["contracts"] == pytest.approx(0.03)
    assert pos[BTC]["entryPrice"] == pytest.approx(o0)
    assert pos[ETH]["side"] == "short" and pos[ETH]["contracts"] == pytest.approx(0.1)
    fees = sum(t["commission"] for t in fx.trades())
    bal = ex.fetch_balance()["USDT"]
    assert fx.balance() == pytest.approx(10_000 - fees)
    assert bal["total"] == pytest.approx(fx.balance())  # no move yet: upnl 0
    assert bal["used"] == pytest.approx((0.03 * o0 + 0.1 * round(row(candles, 0, "ETH/USDT")[0],
                                                                    2)) / 2)
    fx.step()
    ex.create_order(BTC, "market", "sell", 0.03, None, {"reduceOnly": True})
    o1 = round(row(candles, 1)[0], 1)
    assert fx.trades()[-1]["realizedPnl"] == pytest.approx(0.03 * (o1 - o0))
    assert set(fx.positions()) == {"ETH/USDT"}


def test_control_endpoints_realtime_clock_and_end_of_data(candles):
    short = {s: a[:203] for s, a in candles.items()}  # 3 candles to come
    with FakeExchange(short, start_ms=START) as fx:
        url = fx.start()
        req = urllib.request.Request(f"{url}/_fakex/step?n=1", method="POST")
        assert json.load(urllib.request.urlopen(req)) == {"left": 2, "now": START + HOUR}
        state = json.load(urllib.request.urlopen(f"{url}/_fakex/state"))
        assert state["now"] == START + HOUR and state["balance"] == 10_000.0
        assert fx.step(10) == 0 and fx.step() == 0 and fx.now_ms() == START + 3 * HOUR
    with FakeExchange(candles, start_ms=START, clock="realtime", seconds_per_candle=0.05) as fx:
        fx.start()
        time.sleep(0.4)
        assert fx.now_ms() >= START + 2 * HOUR
