"""The fake exchange's Binance spot dialect driven by the real ``ccxt.binance`` over HTTP.

Candles are the bundled real BTC/ETH 1h data around 2024-01-01 (the first forming BTC
candle: open 42283.58, high 42554.57, low 42261.02, close 42475.23, a green one, so its
path is open -> low -> high -> close), except for the gap test, which builds its own.
Filters are the real Binance spot ones (``binance_spot_symbols.json``): BTC tick 0.01 /
step 0.00001, ETH tick 0.01 / step 0.0001, min notional 5 USDT; fees 0.001 both sides,
a buy's in base, a sell's in quote. Prices in quote (USDT), amounts in base, times in
ms UTC.
"""

from __future__ import annotations

import ccxt
import numpy as np
import pytest
from fakex_window import HOUR, START, row, tick_floor, window

from gridflow.fakex import FakeExchange, FaultPlan
from gridflow.fakex.spot_markets import binance_spot_filters

BTC, ETH = "BTC/USDT", "ETH/USDT"
EXACT = 1e-12


@pytest.fixture(scope="module")
def candles() -> dict[str, np.ndarray]:
    """200 history candles and 60 to come, per symbol."""
    return window()


@pytest.fixture
def make(candles):
    """``make(client=None, data=None, **fx_kwargs) -> (fx, ex)``: a started spot fake
    (on ``data`` or the bundled window) and a ``ccxt.binance`` client configured by
    ``fx.ccxt_config()`` (plus ``client``)."""
    started = []

    def _make(client: dict | None = None, data: dict | None = None, **kw):
        fx = FakeExchange(data or candles, timeframe="1h", start_ms=START, dialect="binance",
                          **kw)
        fx.start()
        started.append(fx)
        cfg = fx.ccxt_config()
        cfg["options"]["fetchOpenOrders"] = {"warnWithoutSymbol": False}
        ex = ccxt.binance({**cfg, "enableRateLimit": False, **(client or {})})
        return fx, ex

    yield _make
    for fx in started:
        fx.stop()


def bal(fx: FakeExchange, asset: str) -> tuple[float, float, float]:
    b = fx.balances()[asset]
    return b["free"], b["locked"], b["total"]


def near(got: tuple, want: tuple) -> bool:
    return all(abs(g - w) <= EXACT for g, w in zip(got, want, strict=True))


def test_markets_carry_the_captured_spot_filters_and_time(make, candles):
    fx, ex = make(markets={"ETH/USDT": {"min_notional": 10.0}})
    m = ex.load_markets()
    assert sorted(m) == [BTC, ETH]
    btc, eth = m[BTC], m[ETH]
    assert (btc["spot"], btc["type"], btc["id"], btc["active"]) == (True, "spot", "BTCUSDT", True)
    assert btc["precision"]["amount"] == 0.00001 and btc["precision"]["price"] == 0.01
    assert eth["precision"]["amount"] == 0.0001 and eth["precision"]["price"] == 0.01
    assert btc["limits"]["amount"] == {"min": 0.00001, "max": 9000.0}
    assert btc["limits"]["price"] == {"min": 0.01, "max": 1000000.0}
    assert btc["limits"]["cost"]["min"] == 5.0 and eth["limits"]["cost"]["min"] == 10.0
    assert btc["limits"]["market"]["max"] == 128.52621715
    assert "STOP_LOSS_LIMIT" in btc["info"]["orderTypes"]
    assert binance_spot_filters("SOL/USDT") == {"price_tick": 0.01, "amount_step": 0.001,
                                                "min_amount": 0.001, "min_notional": 5.0}
    assert binance_spot_filters("XRP/USDT")["amount_step"] == 1.0
    assert binance_spot_filters("DOGE/USDT") is None
    assert ex.fetch_time() == START == fx.now_ms()
    assert ex.fetch_ticker(BTC)["last"] == row(candles, 0)[0]
    assert [(r["path"], r["weight"]) for r in fx.request_log] == [
        ("/api/v3/exchangeInfo", 20), ("/api/v3/time", 1), ("/api/v3/ticker/24hr", 2)]
    with pytest.raises(ccxt.BadRequest):  # -1120: only the fake's timeframe
        ex.fetch_ohlcv(BTC, "4h", limit=2)


def test_ohlcv_and_prices_follow_the_path(make, candles):
    fx, ex = make()
    o0, h0, l0, c0 = row(candles, 0)
    bars = ex.fetch_ohlcv(BTC, "1h", limit=3)
    assert [b[0] for b in bars] == [START - 2 * HOUR, START - HOUR, START]
    assert bars[-1][1:] == [o0, o0, o0, o0, 0.0]
    fx.substep(4, 12)  # a third in: the path is at the low
    assert ex.fetch_ohlcv(BTC, "1h", limit=1)[0][1:5] == [o0, o0, l0, l0]
    assert float(ex.publicGetTickerPrice({"symbol": "BTCUSDT"})["price"]) == l0
    assert ex.fetch_bids_asks([BTC])[BTC]["bid"] == l0
    fx.step()
    assert ex.fetch_ohlcv(BTC, "1h", limit=2)[0][1:5] == [o0, h0, l0, c0]
    with pytest.raises(ccxt.BadRequest):  # spot klines: at most 1000
        ex.publicGetKlines({"symbol": "BTCUSDT", "interval": "1h", "limit": 1001})


def test_limit_buy_locks_quote_fills_as_maker_and_pays_commission_in_base(make, candles):
    fx, ex = make()
    o0, _, l0, _ = row(candles, 0)
    p, q = tick_floor((o0 + l0) / 2, 0.01), 0.01  # inside the first leg (open -> low)
    o = ex.create_order(BTC, "limit", "buy", q, p, {"clientOrderId": "sp-b1"})
    assert (o["id"], o["clientOrderId"], o["status"], o["type"]) == (
        "1000001", "sp-b1", "open", "limit")
    cost = round(p * q, 8)
    assert near(bal(fx, "USDT"), (10_000 - cost, cost, 10_000))
    b = ex.fetch_balance()
    assert (b["USDT"]["free"], b["USDT"]["used"]) == (pytest.approx(10_000 - cost), cost)
    (rest,) = ex.fetch_open_orders(BTC)
    assert (rest["clientOrderId"], rest["price"], rest["info"]["isWorking"]) == (
        "sp-b1", p, True)
    fx.step()
    done = ex.fetch_order(None, BTC, {"clientOrderId": "sp-b1"})
    assert (done["status"], done["filled"], done["average"]) == ("closed", q, p)
    (t,) = ex.fetch_my_trades(BTC)
    fee = q * 0.001
    assert (t["order"], t["side"], t["takerOrMaker"], t["price"], t["amount"]) == (
        "1000001", "buy", "maker", p, q)
    assert t["fee"] == {"currency": "BTC", "cost": fee} and t["cost"] == cost
    assert START < t["timestamp"] < START + HOUR // 3
    assert near(bal(fx, "USDT"), (10_000 - cost, 0.0, 10_000 - cost))
    assert near(bal(fx, "BTC"), (q - fee, 0.0, q - fee))
    assert fx.balance() == pytest.approx(10_000 - cost, abs=EXACT)
    assert fx.positions() == {BTC: {"amount": pytest.approx(q - fee, abs=EXACT),
                                    "entry_price": p}}
    (rec,) = fx.trades()
    assert (rec["clientOrderId"], rec["side"], rec["price"], rec["qty"], rec["maker"]) == (
        "sp-b1", "buy", p, q, True)
    assert (rec["commission"], rec["commissionAsset"]) == (pytest.approx(fee), "BTC")
    assert fx.accepted_client_ids() == {"sp-b1": 1}


def test_market_orders_move_balances_exactly(make, candles):
    fx, ex = make(spot_balances={"ETH": 2.0})
    o0 = row(candles, 0)[0]
    buy = ex.create_order(BTC, "market", "buy", 0.02)
    assert (buy["status"], buy["filled"], buy["average"]) == ("closed", 0.02, o0)
    assert buy["fee"] == {"currency": "BTC", "cost": 0.00002}
    sell = ex.create_order(BTC, "market", "sell", 0.01)
    proceeds = round(0.01 * o0, 8)
    sell_fee = round(proceeds * 0.001, 8)
    assert sell["trades"][0]["fee"] == {"currency": "USDT", "cost": sell_fee}
    usdt = round(10_000 - round(0.02 * o0, 8) + proceeds - sell_fee, 8)  # 8 decimals kept
    assert near(bal(fx, "USDT"), (usdt, 0.0, usdt))
    assert near(bal(fx, "BTC"), (0.02 - 0.00002 - 0.01, 0.0, 0.00998))
    e0 = row(candles, 0, "ETH/USDT")[0]
    by_cost = ex.create_market_buy_order_with_cost(ETH, 100.0)  # quoteOrderQty
    qty = np.floor(100.0 / e0 / 0.0001) * 0.0001
    assert by_cost["filled"] == pytest.approx(qty) and by_cost["cost"] <= 100.0
    assert by_cost["info"]["origQuoteOrderQty"] == "100.00000000"
    assert near(bal(fx, "ETH"), (2.0 + by_cost["filled"] * 0.999, 0.0,
                                 2.0 + by_cost["filled"] * 0.999))
    assert fx.positions()["ETH/USDT"]["amount"] == pytest.approx(qty * 0.999, abs=EXACT)
    assert fx.equity() == pytest.approx(fx.balance() + sum(
        bal(fx, a)[2] * fx.price(f"{a}/USDT") for a in ("BTC", "ETH")))


def test_cancel_releases_the_lock_and_unknown_orders_are_not_found(make):
    fx, ex = make(spot_balances={"BTC": 0.3})
    ex.create_order(BTC, "limit", "sell", 0.2, 45_000, {"clientOrderId": "sp-s1"})
    assert near(bal(fx, "BTC"), (0.1, 0.2, 0.3))
    assert ex.fetch_order(None, BTC, {"clientOrderId": "sp-s1"})["status"] == "open"
    c = ex.cancel_order(None, BTC, {"clientOrderId": "sp-s1"})
    assert (c["id"], c["status"], c["info"]["origClientOrderId"]) == ("1000001", "canceled",
                                                                      "sp-s1")
    assert near(bal(fx, "BTC"), (0.3, 0.0, 0.3))
    assert ex.fetch_order("1000001", BTC)["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound, match="-2011"):
        ex.cancel_order(None, BTC, {"clientOrderId": "sp-s1"})
    with pytest.raises(ccxt.OrderNotFound, match="-2013"):
        ex.fetch_order(None, BTC, {"clientOrderId": "nope"})
    with pytest.raises(ccxt.OrderNotFound, match="-2013"):
        ex.fetch_order("999", ETH)
    assert [o["status"] for o in ex.fetch_orders(BTC)] == ["canceled"]


def test_insufficient_balance_and_duplicate_open_client_ids(make):
    fx, ex = make(balance_usdt=1_000.0, spot_balances={"BTC": 0.01})
    with pytest.raises(ccxt.InsufficientFunds):  # 0.03 * 40000 = 1200 USDT > 1000
        ex.create_order(BTC, "limit", "buy", 0.03, 40_000)
    with pytest.raises(ccxt.InsufficientFunds):  # no short selling
        ex.create_order(BTC, "market", "sell", 0.02)
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order(ETH, "limit", "sell", 0.1, 3_000)
    ex.create_order(BTC, "limit", "buy", 0.02, 40_000, {"clientOrderId": "sp-d1"})
    with pytest.raises(ccxt.InsufficientFunds):  # 800 of the 1000 USDT are locked
        ex.create_order(BTC, "limit", "buy", 0.01, 40_000)
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent") as dup:
        ex.create_order(BTC, "limit", "buy", 0.001, 39_000, {"clientOrderId": "sp-d1"})
    assert type(dup.value) is ccxt.InvalidOrder  # -2010, no message of its own in ccxt
    ex.create_order(ETH, "limit", "buy", 0.01, 2_000, {"clientOrderId": "sp-d1"})  # other pair
    ex.cancel_order(None, BTC, {"clientOrderId": "sp-d1"})
    ex.create_order(BTC, "limit", "buy", 0.001, 39_000, {"clientOrderId": "sp-d1"})
    assert fx.accepted_client_ids() == {"sp-d1": 3}
    assert ex.fetch_open_orders(BTC)[0]["price"] == 39_000
    assert fx.balances()["USDT"]["locked"] == pytest.approx(39.0 + 20.0, abs=EXACT)


def test_filters_and_order_type_rules(make):
    fx, ex = make()
    ex.load_markets()
    req = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    post = ex.privatePostOrder
    with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):  # off the 0.00001 step
        post({**req, "quantity": "0.000015", "price": "40000"})
    with pytest.raises(ccxt.InvalidOrder, match="PRICE_FILTER"):  # off the 0.01 tick
        post({**req, "quantity": "0.001", "price": "40000.005"})
    with pytest.raises(ccxt.BadRequest, match="NOTIONAL"):  # 0.0001 * 40000 < 5 USDT
        post({**req, "quantity": "0.0001", "price": "40000"})
    with pytest.raises(ccxt.InvalidOrder, match="PERCENT_PRICE_BY_SIDE"):  # < 0.2 x price
        post({**req, "quantity": "1", "price": "8000"})
    with pytest.raises(ccxt.OrderImmediatelyFillable):  # LIMIT_MAKER above the price
        ex.create_order(BTC, "limit", "buy", 0.001, 43_000, {"postOnly": True})
    ex.create_order(BTC, "limit", "buy", 0.001, 42_000, {"postOnly": True})
    with pytest.raises(ccxt.BadRequest, match="-1106"):  # timeInForce on a MARKET order
        post({**req, "type": "MARKET", "quantity": "0.001"})
    with pytest.raises(ccxt.BadRequest, match="-1102"):
        post({**req, "quantity": "0.001"})
    (mk,) = ex.fetch_open_orders(BTC)
    assert (mk["type"], mk["postOnly"], mk["info"]["type"]) == ("limit", True, "LIMIT_MAKER")
    ioc = ex.create_order(BTC, "limit", "buy", 0.001, 40_000, {"timeInForce": "IOC"})
    assert (ioc["status"], ioc["filled"]) == ("expired", 0.0)
    assert fx.balances()["USDT"]["locked"] == pytest.approx(42.0, abs=EXACT)


def test_stop_loss_limit_locks_base_triggers_on_the_path_and_fills(make, candles):
    """ccxt's unified ``triggerPrice`` on a spot limit order is a STOP_LOSS_LIMIT. A sell
    stop at T with its limit at T fills at its limit as soon as the path reaches T; one
    with its limit above T rests once triggered (``isWorking``) and fills at its limit,
    as maker, when the path climbs back there."""
    fx, ex = make(spot_balances={"BTC": 0.5})
    o0, h0, l0, _ = row(candles, 0)
    trig = tick_floor((o0 + l0) / 2, 0.01)  # crossed on the first leg (falling)
    above = tick_floor((o0 + h0) / 2, 0.01)  # reached on the second leg (rising)
    s1 = ex.create_order(BTC, "limit", "sell", 0.1, trig, {"triggerPrice": trig,
                                                            "clientOrderId": "sp-sl1"})
    s2 = ex.create_order(BTC, "STOP_LOSS_LIMIT", "sell", 0.2, above,
                         {"stopPrice": trig, "clientOrderId": "sp-sl2"})
    assert s1["info"]["type"] == s2["info"]["type"] == "STOP_LOSS_LIMIT"
    assert (s1["triggerPrice"], s1["status"], s1["info"]["workingTime"]) == (trig, "open", -1)
    assert near(bal(fx, "BTC"), (0.2, 0.3, 0.5))
    assert [o["info"]["isWorking"] for o in ex.fetch_open_orders(BTC)] == [False, False]
    fx.substep(4, 12)  # the first leg: open -> low, through the trigger
    first = ex.fetch_order(s1["id"], BTC)
    assert (first["status"], first["filled"], first["average"]) == ("closed", 0.1, trig)
    w = ex.fetch_order(None, BTC, {"clientOrderId": "sp-sl2"})
    assert (w["id"], w["status"], w["filled"], w["info"]["isWorking"]) == (
        s2["id"], "open", 0.0, True)
    assert START < w["info"]["workingTime"] < START + HOUR // 3
    assert near(bal(fx, "BTC"), (0.2, 0.2, 0.4))  # still locked once working
    fx.step()
    second = ex.fetch_order(s2["id"], BTC)
    assert (second["status"], second["filled"], second["average"]) == ("closed", 0.2, above)
    t1, t2 = fx.trades()
    assert (t1["clientOrderId"], t1["price"], t1["maker"]) == ("sp-sl1", trig, False)
    assert (t2["clientOrderId"], t2["price"], t2["maker"]) == ("sp-sl2", above, True)
    got = round(0.1 * trig, 8) * 0.999 + round(0.2 * above, 8) * 0.999
    assert near(bal(fx, "BTC"), (0.2, 0.0, 0.2))
    assert fx.balance() == pytest.approx(10_000 + got, abs=1e-8)
    avg = (0.1 * trig + 0.2 * above) / 0.3  # of the net amount sold from the initial 0.5
    assert fx.positions() == {BTC: {"amount": pytest.approx(-0.3),
                                    "entry_price": pytest.approx(avg)}}


def gap_candles() -> dict[str, np.ndarray]:
    """BTC/USDT 1h rows: 5 calm history candles at 42000, the first forming one (START)
    calm too, then a candle that opens 2000 lower and stays there."""
    rows = [(START + k * HOUR, 42_000.0, 42_100.0, 41_900.0, 42_000.0, 10.0)
            for k in range(-5, 1)]
    rows += [(START + k * HOUR, 40_000.0, 40_200.0, 39_800.0, 40_100.0, 10.0)
             for k in (1, 2)]
    return {BTC: np.array(rows)}


def test_a_gap_through_the_limit_leaves_the_triggered_stop_open_unfilled(make):
    fx, ex = make(data=gap_candles(), spot_balances={"BTC": 0.5})
    s = ex.create_order(BTC, "limit", "sell", 0.1, 41_400, {"triggerPrice": 41_500,
                                                            "clientOrderId": "sp-gap"})
    fx.step()  # the calm candle: low 41900 stays above the trigger
    assert ex.fetch_order(s["id"], BTC)["info"]["isWorking"] is False
    fx.step(2)  # opens at 40000, below trigger and limit; never climbs back to 41400
    o = ex.fetch_order(None, BTC, {"clientOrderId": "sp-gap"})
    assert (o["status"], o["filled"], o["price"], o["triggerPrice"]) == (
        "open", 0.0, 41_400.0, 41_500.0)
    assert (o["info"]["isWorking"], o["info"]["workingTime"]) == (True, START + HOUR)
    assert fx.trades() == [] and near(bal(fx, "BTC"), (0.4, 0.1, 0.5))
    assert [x["id"] for x in ex.fetch_open_orders(BTC)] == [s["id"]]


def test_stops_the_price_has_already_crossed_are_refused(make, candles):
    fx, ex = make(spot_balances={"BTC": 0.5})
    o0 = row(candles, 0)[0]
    with pytest.raises(ccxt.OrderImmediatelyFillable, match="would trigger immediately"):
        ex.create_order(BTC, "limit", "sell", 0.1, o0 + 100, {"triggerPrice": o0 + 100})
    with pytest.raises(ccxt.OrderImmediatelyFillable):  # a buy stop below the price
        ex.create_order(BTC, "limit", "buy", 0.001, o0 - 100, {"triggerPrice": o0 - 100})
    tp = ex.create_order(BTC, "limit", "sell", 0.1, o0 + 100, {"takeProfitPrice": o0 + 100})
    assert (tp["info"]["type"], tp["takeProfitPrice"]) == ("TAKE_PROFIT_LIMIT", o0 + 100)
    for k in range(4):  # MAX_NUM_ALGO_ORDERS: 5 stop-limits per symbol
        ex.create_order(BTC, "limit", "sell", 0.01, 40_000, {"triggerPrice": 40_000 - k})
    with pytest.raises(ccxt.BadRequest, match="MAX_NUM_ALGO_ORDERS"):
        ex.create_order(BTC, "limit", "sell", 0.01, 39_000, {"triggerPrice": 39_000})
    assert len(fx.accepted_client_ids()) == 5


def test_my_trades_paging_with_since_and_limit(make, candles):
    fx, ex = make()
    for _ in range(4):  # a market buy at each candle's open
        ex.create_order(BTC, "market", "buy", 0.001)
        fx.step()
    times = [START + k * HOUR for k in range(4)]
    assert [t["timestamp"] for t in ex.fetch_my_trades(BTC)] == times
    page = ex.fetch_my_trades(BTC, since=times[1], limit=2)
    assert [t["timestamp"] for t in page] == times[1:3]
    page = ex.fetch_my_trades(BTC, since=page[-1]["timestamp"] + 1, limit=2)
    assert [t["timestamp"] for t in page] == times[3:]
    assert [t["timestamp"] for t in ex.fetch_my_trades(BTC, limit=2)] == times[2:]
    assert [t["id"] for t in ex.fetch_my_trades(BTC, params={"fromId": 2})] == ["2", "3", "4"]
    with pytest.raises(ccxt.BadRequest, match="-1127"):  # more than 24 h apart
        ex.fetch_my_trades(BTC, since=START - 48 * HOUR, params={"until": START})
    assert [t["price"] for t in ex.fetch_my_trades(BTC)] == [row(candles, k)[0]
                                                             for k in range(4)]
    ex.fetch_open_orders(BTC)
    ex.fetch_open_orders()
    weights = {(r["path"], r["weight"]) for r in fx.request_log}
    assert {("/api/v3/myTrades", 20), ("/api/v3/order", 1), ("/api/v3/openOrders", 6),
            ("/api/v3/openOrders", 80)} <= weights


def test_seeded_faults_on_order_writes(make):
    plan = FaultPlan(hang_s=0.6, script=[("rate_limit", "POST /api/v3/order"),
                                         ("server_error", "POST /api/v3/order"),
                                         ("timeout_after", "POST /api/v3/order"),
                                         ("partial_fill", "sp-f2")])
    fx, ex = make(client={"timeout": 300}, faults=plan)
    ex.load_markets()
    with pytest.raises(ccxt.DDoSProtection, match="-1003"):  # HTTP 429
        ex.create_order(BTC, "limit", "buy", 0.01, 40_000, {"clientOrderId": "sp-f1"})
    with pytest.raises(ccxt.ExchangeNotAvailable):  # 503
        ex.create_order(BTC, "limit", "buy", 0.01, 40_000, {"clientOrderId": "sp-f1"})
    assert fx.orders() == []
    with pytest.raises(ccxt.RequestTimeout):  # executed, the answer comes too late
        ex.create_order(BTC, "limit", "buy", 0.01, 40_000, {"clientOrderId": "sp-f1"})
    assert ex.fetch_order(None, BTC, {"clientOrderId": "sp-f1"})["status"] == "open"
    m = ex.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "sp-f2"})
    assert (m["status"], m["filled"]) == ("expired", 0.005)  # a market rest expires
    assert [(f["kind"], f["client_order_id"]) for f in fx.fault_log] == [
        ("rate_limit", "sp-f1"), ("server_error", "sp-f1"), ("timeout_after", "sp-f1"),
        ("partial_fill", "sp-f2")]
    assert [r["status"] for r in fx.request_log if r["client_order_id"] == "sp-f1"][:3] == [
        429, 503, 200]
    assert fx.accepted_client_ids() == {"sp-f1": 1, "sp-f2": 1}
    fx.set_faults(FaultPlan(seed=3, reject=1.0))
    with pytest.raises(ccxt.InsufficientFunds):  # a random reject: -2010
        ex.create_order(BTC, "limit", "buy", 0.01, 40_000)
    assert ex.fetch_balance()["USDT"]["used"] == 400.0  # reads are not faulted
    with pytest.raises(ValueError, match="spot_balances"):
        FakeExchange(window(), start_ms=START, spot_balances={"BTC": 1.0})
