"""The fake exchange's Bitget v2 USDT-M dialect driven by the real ``ccxt.bitget`` over HTTP.

Candles are the bundled real BTC/ETH 1h data around 2024-01-01 (the first forming BTC
candle: open 42283.58, high 42554.57, low 42261.02, close 42475.23, a green one, so its
path is open -> low -> high -> close); funding rates are the bundled Binance BTC ones
(settlement at START + 8 h: 0.00027213). Contract filters are the real Bitget ones:
BTC tick 0.1 / step 0.001 / min 0.001, ETH tick 0.01 / step 0.01 / min 0.01, min
notional 5 USDT. Prices in quote (USDT), amounts in base, times in ms UTC.
"""

from __future__ import annotations


import ccxt
import numpy as np
import pytest
from fakex_window import BTC, ETH, HOUR, START, row, tick_floor, window

from gridflow.data.funding import bundled_funding_files, read_funding
from gridflow.fakex import FakeExchange, FaultPlan

@pytest.fixture(scope="module")
def candles() -> dict[str, np.ndarray]:
    """200 history candles and 60 to come, per symbol."""
    return window()


@pytest.fixture
def make(candles):
    """``make(client=None, **fx_kwargs) -> (fx, ex)``: a started Bitget fake and a
    ``ccxt.bitget`` client configured by ``fx.ccxt_config()`` (plus ``client``)."""
    started = []

    def _make(client: dict | None = None, **kw):
        fx = FakeExchange(candles, timeframe="1h", start_ms=START, dialect="bitget", **kw)
        fx.start()
        started.append(fx)
        ex = ccxt.bitget({**fx.ccxt_config(), "enableRateLimit": False, **(client or {})})
        return fx, ex

    yield _make
    for fx in started:
        fx.stop()


def test_markets_follow_real_bitget_contracts_and_time(make):
    fx, ex = make()
    m = ex.load_markets()
    assert sorted(m) == [BTC, ETH]
    btc, eth = m[BTC], m[ETH]
    assert (btc["swap"], btc["linear"], btc["settle"], btc["id"]) == (True, True, "USDT", "BTCUSDT")
    assert btc["precision"] == {"amount": 0.001, "price": 0.1}
    assert eth["precision"] == {"amount": 0.01, "price": 0.01}
    assert btc["limits"]["amount"]["min"] == 0.001 and eth["limits"]["amount"]["min"] == 0.01
    assert btc["limits"]["cost"]["min"] == 5.0 == eth["limits"]["cost"]["min"]
    assert (btc["maker"], btc["taker"]) == (0.0002, 0.0006)
    assert btc["limits"]["leverage"]["max"] == 125 and eth["limits"]["leverage"]["max"] == 100
    assert btc["info"]["fundInterval"] == "8" and btc["info"]["pricePlace"] == "1"
    assert ex.price_to_precision(BTC, 42000.1234) == "42000.1"
    assert ex.fetch_time() == START == fx.now_ms()
    paths = [r["path"] for r in fx.request_log]
    assert paths.count("/api/v2/mix/market/contracts") == 6  # every productType asked
    assert all(p.startswith("/api/v2/mix/") or p == "/api/v2/public/time" for p in paths)


def test_default_client_probes_coins_and_uta_then_works(make, candles):
    """Without the config's shortcuts ccxt also asks the spot coin list and probes the
    unified-account API (refused: a classic account) before trading."""
    fx, _ = make()
    ex = ccxt.bitget({"apiKey": "test-key", "secret": "test-secret",
                      "password": "test-passphrase", "enableRateLimit": False,
                      "urls": {"api": fx.ccxt_urls()},
                      "options": {"defaultType": "swap", "fetchMarkets": {"types": ["swap"]}}})
    assert set(fx.ccxt_urls()) >= {"spot", "mix", "user", "common", "uta", "margin"}
    ex.load_markets()
    assert ex.fetch_balance()["USDT"]["total"] == 10_000.0
    log = [(r["path"], r["status"]) for r in fx.request_log]
    assert ("/api/v2/spot/public/coins", 200) in log
    assert ("/api/v3/account/settings", 400) in log and ex.options["uta"] is False


def test_ohlcv_paging_equals_bundled_candles(make, candles):
    fx, ex = make()
    bars = ex.fetch_ohlcv(BTC, "1h", limit=3)
    o0 = row(candles, 0)[0]
    assert [b[0] for b in bars] == [START - 2 * HOUR, START - HOUR, START]
    assert bars[-1][1:] == [o0, o0, o0, o0, 0.0]  # forming: its open only
    got, since = [], START - 200 * HOUR
    while since < START:  # old data: ccxt pages through history-candles
        page = ex.fetch_ohlcv(BTC, "1h", since=since, limit=50)
        assert page and page[0][0] == since
        got += page
        since = page[-1][0] + HOUR
    want = candles["BTC/USDT"][:200]
    assert [b[0] for b in got] == want[:, 0].astype(int).tolist()
    assert np.array_equal(np.array([b[1:5] for b in got]), want[:, 1:5])
    assert [r["path"] for r in fx.request_log].count("/api/v2/mix/market/history-candles") == 4
    until = ex.fetch_ohlcv(BTC, "1h", limit=2, params={"until": START - 5 * HOUR})
    assert [b[0] for b in until] == [START - 7 * HOUR, START - 6 * HOUR]  # end exclusive
    fx.step()
    last = ex.fetch_ohlcv(BTC, "1h", limit=2)
    assert last[0][1:5] == list(row(candles, 0)) and last[1][0] == START + HOUR
    with pytest.raises(ccxt.BadRequest):
        ex.fetch_ohlcv(BTC, "4h", limit=2)


def test_limit_buy_fills_as_maker_and_shows_a_one_way_long(make, candles):
    fx, ex = make()
    o0, _, l0, _ = row(candles, 0)
    p = tick_floor((o0 + l0) / 2)  # inside the first leg (open -> low)
    o = ex.create_order(BTC, "limit", "buy", 0.01, p, {"clientOrderId": "gb-m1"})
    assert (o["id"], o["clientOrderId"]) == ("1000001", "gb-m1")
    (rest,) = ex.fetch_open_orders(BTC)
    assert (rest["clientOrderId"], rest["status"], rest["price"]) == ("gb-m1", "open", p)
    assert ex.fetch_positions([BTC]) == []
    fx.step()
    order = ex.fetch_order(None, BTC, {"clientOrderId": "gb-m1"})
    assert order["status"] == "closed" and order["average"] == p and order["filled"] == 0.01
    (t,) = ex.fetch_my_trades(BTC)
    fee = p * 0.01 * 0.0002
    assert (t["order"], t["side"], t["takerOrMaker"], t["price"], t["amount"]) == (
        "1000001", "buy", "maker", p, 0.01)
    assert t["fee"]["cost"] == pytest.approx(fee) and t["fee"]["currency"] == "USDT"
    assert START < t["timestamp"] < START + HOUR
    (pos,) = ex.fetch_positions([BTC])
    assert (pos["side"], pos["contracts"], pos["entryPrice"], pos["hedged"]) == (
        "long", 0.01, p, False)
    assert pos["marginMode"] == "cross" and pos["markPrice"] == row(candles, 0)[3]
    assert fx.positions() == {"BTC/USDT": {"amount": 0.01, "entry_price": p}}
    assert fx.balance() == pytest.approx(10_000 - fee)
    assert fx.accepted_client_ids() == {"gb-m1": 1}
    assert fx.trades()[0]["clientOrderId"] == "gb-m1"


def test_reduce_only_limit_and_plan_stop_rest_then_stop_closes(make, candles):
    fx, ex = make()
    o0, h0, l0, _ = row(candles, 0)
    ex.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "gb-open"})
    entry = round(o0, 1)
    assert fx.positions()["BTC/USDT"] == {"amount": 0.01, "entry_price": entry}
    tp = tick_floor(h0 + 150)  # above the candle: keeps resting
    stop = tick_floor((o0 + l0) / 2)  # crossed on the first leg
    ex.create_order(BTC, "limit", "sell", 0.01, tp, {"clientOrderId": "gb-tp",
                                                     "reduceOnly": True})
    s = ex.create_order(BTC, "market", "sell", 0.01, None, {
        "triggerPrice": stop, "reduceOnly": True, "clientOrderId": "gb-stop"})
    assert s["id"] == "5000001"
    assert [x["clientOrderId"] for x in ex.fetch_open_orders(BTC)] == ["gb-tp"]
    (w,) = ex.fetch_open_orders(BTC, params={"trigger": True})
    assert (w["clientOrderId"], w["triggerPrice"], w["status"], w["reduceOnly"]) == (
        "gb-stop", stop, "open", True)
    found = ex.fetch_open_orders(BTC, params={"trigger": True, "clientOrderId": "gb-stop"})
    assert [x["id"] for x in found] == ["5000001"]
    fx.step()
    assert fx.positions() == {}
    assert ex.fetch_open_orders(BTC, params={"trigger": True}) == []
    (done,) = ex.fetch_canceled_and_closed_orders(BTC, params={"trigger": True})
    assert (done["clientOrderId"], done["status"]) == ("gb-stop", "closed")
    close = fx.trades()[-1]
    assert (close["side"], close["price"], close["maker"], close["qty"]) == (
        "sell", stop, False, 0.01)
    assert close["realizedPnl"] == pytest.approx(0.01 * (stop - entry))
    trades = ex.fetch_my_trades(BTC)
    assert [t["side"] for t in trades] == ["buy", "sell"]
    assert trades[1]["fee"]["cost"] == pytest.approx(stop * 0.01 * 0.0006)
    assert float(trades[1]["info"]["profit"]) == pytest.approx(0.01 * (stop - entry))
    assert ex.fetch_positions([BTC]) == []


def test_stop_loss_price_uses_tpsl_and_closes_the_position(make, candles):
    fx, ex = make()
    o0, _, l0, _ = row(candles, 0)
    with pytest.raises(ccxt.ExchangeError):  # no position to protect: 43023
        ex.create_order(BTC, "market", "sell", 0.01, None, {"stopLossPrice": 42000})
    ex.create_order(BTC, "market", "buy", 0.02, None)
    with pytest.raises(ccxt.InvalidOrder):  # a long's stop must lie below the mark: 40917
        ex.create_order(BTC, "market", "sell", 0.02, None, {"stopLossPrice": 43000})
    sl = tick_floor((o0 + l0) / 2)
    ex.create_order(BTC, "market", "sell", 0.02, None, {"stopLossPrice": sl,
                                                        "clientOrderId": "gb-sl"})
    assert ex.fetch_open_orders(BTC, params={"trigger": True}) == []  # normal_plan only
    (w,) = ex.fetch_open_orders(BTC, params={"planType": "profit_loss"})
    assert (w["clientOrderId"], w["info"]["planType"], w["stopLossPrice"]) == (
        "gb-sl", "pos_loss", sl)
    fx.step()
    assert fx.positions() == {} and fx.trades()[-1]["price"] == sl
    assert [o["status"] for o in fx.orders() if o["algo"]] == ["FINISHED"]


def test_cancel_fetch_by_client_oid_and_duplicates(make):
    fx, ex = make()
    ex.create_order(BTC, "limit", "buy", 0.01, 40000, {"clientOrderId": "gb-c1"})
    e = ex.create_order(ETH, "limit", "sell", 0.05, 2500, {"clientOrderId": "gb-e1"})
    assert ex.fetch_order(None, BTC, {"clientOrderId": "gb-c1"})["status"] == "open"
    assert {x["clientOrderId"] for x in ex.fetch_open_orders(ETH)} == {"gb-e1"}
    c = ex.cancel_order(None, BTC, {"clientOrderId": "gb-c1"})
    assert (c["id"], c["clientOrderId"]) == ("1000001", "gb-c1")
    assert ex.fetch_order(None, BTC, {"clientOrderId": "gb-c1"})["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):  # 40768
        ex.cancel_order(None, BTC, {"clientOrderId": "gb-c1"})
    with pytest.raises(ccxt.OrderNotFound):  # 40109
        ex.fetch_order(None, BTC, {"clientOrderId": "nope"})
    with pytest.raises(ccxt.ExchangeError, match="40786") as dup:  # Duplicate clientOid
        ex.create_order(BTC, "limit", "buy", 0.01, 39000, {"clientOrderId": "gb-c1"})
    assert not isinstance(dup.value, (ccxt.InvalidOrder, ccxt.BadRequest))
    assert ex.cancel_order(e["id"], ETH)["id"] == e["id"]
    closed = ex.fetch_canceled_and_closed_orders(BTC)
    assert [(o["clientOrderId"], o["status"]) for o in closed] == [("gb-c1", "canceled")]
    assert fx.accepted_client_ids() == {"gb-c1": 1, "gb-e1": 1}
    assert [r["status"] for r in fx.request_log if r["client_order_id"] == "gb-c1"] == [
        200, 200, 200, 200, 400, 400]


def test_bad_credentials_are_authentication_errors(make):
    fx, good = make()
    for bad in ({"secret": "wrong"}, {"password": "wrong"}, {"apiKey": "other"}):
        ex = ccxt.bitget({**fx.ccxt_config(), "enableRateLimit": False, **bad})
        ex.load_markets()  # public: no credentials checked
        with pytest.raises(ccxt.AuthenticationError):
            ex.create_order(BTC, "limit", "buy", 0.01, 40000)
    codes = [r for r in fx.request_log if r["path"].endswith("place-order")]
    assert [r["status"] for r in codes] == [400, 400, 400]
    assert fx.orders() == [] and good.fetch_balance()["USDT"]["free"] == 10_000.0


def test_size_price_and_notional_filters_are_invalid_orders(make):
    fx, ex = make(markets={"ETH/USDT": {"min_notional": 100.0}})
    ex.load_markets()
    assert ex.market(ETH)["limits"]["cost"]["min"] == 100.0
    req = {"symbol": "BTCUSDT", "productType": "USDT-FUTURES", "marginMode": "crossed",
           "marginCoin": "USDT", "side": "buy", "orderType": "limit", "force": "gtc"}
    with pytest.raises(ccxt.InvalidOrder, match="40808"):  # size scale
        ex.privateMixPostV2MixOrderPlaceOrder({**req, "size": "0.0005", "price": "40000"})
    with pytest.raises(ccxt.InvalidOrder, match="41103"):  # price scale
        ex.privateMixPostV2MixOrderPlaceOrder({**req, "size": "0.001", "price": "40000.05"})
    with pytest.raises(ccxt.InvalidOrder, match="45110"):  # 0.02 ETH * 2000 < 100 USDT
        ex.create_order(ETH, "limit", "buy", 0.02, 2000)
    with pytest.raises(ccxt.InvalidOrder):  # below the step: ccxt refuses before sending
        ex.create_order(BTC, "limit", "buy", 0.0001, 40000)
    assert fx.orders() == [] and len([r for r in fx.request_log
                                      if r["path"].endswith("place-order")]) == 3


def test_insufficient_margin(make):
    fx, ex = make(balance_usdt=1_000.0)
    with pytest.raises(ccxt.InsufficientFunds):  # 40762
        ex.create_order(BTC, "limit", "buy", 0.1, 40000)  # 4000 USDT at 1x
    ex.set_leverage(5, BTC)
    ex.create_order(BTC, "limit", "buy", 0.1, 40000)  # 800 USDT of margin at 5x
    assert [o["origQty"] for o in fx.orders()] == [0.1]
    assert ex.fetch_balance()["USDT"]["free"] == pytest.approx(200.0)
    with pytest.raises(ccxt.ExchangeError):  # above maxLever 125
        ex.set_leverage(200, BTC)
    assert ex.set_position_mode(False)["data"]["posMode"] == "one_way_mode"
    with pytest.raises(ccxt.BadRequest):  # no hedge mode in the fake
        ex.set_position_mode(True)
    ex.set_margin_mode("isolated", ETH)
    assert ex.fetch_leverage(ETH)["marginMode"] == "isolated"


def test_scripted_5xx_and_429_are_network_errors(make):
    plan = FaultPlan(script=[("server_error", "POST /api/v2/mix/order/place-order"),
                             ("rate_limit", "/api/v2/mix/order/place-order"),
                             ("server_error", "GET /api/v2/mix/order/detail")])
    fx, ex = make(faults=plan)
    ex.load_markets()
    with pytest.raises(ccxt.ExchangeNotAvailable):
        ex.create_order(BTC, "limit", "buy", 0.01, 40000, {"clientOrderId": "gb-f1"})
    with pytest.raises(ccxt.DDoSProtection) as limited:  # Bitget's "429" body
        ex.create_order(BTC, "limit", "buy", 0.01, 40000, {"clientOrderId": "gb-f1"})
    assert isinstance(limited.value, ccxt.NetworkError)
    assert fx.orders() == []
    ex.create_order(BTC, "limit", "buy", 0.01, 40000, {"clientOrderId": "gb-f1"})
    with pytest.raises(ccxt.NetworkError):
        ex.fetch_order(None, BTC, {"clientOrderId": "gb-f1"})
    assert [(f["kind"], f["method"], f["client_order_id"]) for f in fx.fault_log] == [
        ("server_error", "POST", "gb-f1"), ("rate_limit", "POST", "gb-f1"),
        ("server_error", "GET", "gb-f1")]
    assert [r["status"] for r in fx.request_log if r["client_order_id"] == "gb-f1"] == [
        503, 429, 200, 503]
    assert fx.accepted_client_ids() == {"gb-f1": 1}


def test_random_order_write_faults_hit_bitget_order_endpoints(make):
    fx, ex = make(faults=FaultPlan(seed=3, reject=1.0, apply_to=("order_write",)))
    ex.load_markets()
    with pytest.raises(ccxt.InsufficientFunds):  # a random reject: 40762
        ex.create_order(BTC, "limit", "buy", 0.01, 40000)
    assert ex.fetch_balance()["USDT"]["total"] == 10_000.0  # reads are not faulted
    assert [(f["kind"], f["path"]) for f in fx.fault_log] == [
        ("reject", "/api/v2/mix/order/place-order")]


def test_funding_settlement_in_funding_history_and_rate_history(make, candles):
    files = bundled_funding_files()
    fd = {s: read_funding(files[s]) for s in ("BTC/USDT", "ETH/USDT")}
    fx, ex = make(funding=fd, leverage=5)
    ex.create_order(BTC, "market", "buy", 0.01, None)
    assert ex.fetch_funding_rate(BTC)["fundingTimestamp"] == START + 8 * HOUR
    fx.step(8)  # the settlement at START + 8 h is paid at candle 7's close
    (pay,) = fx.funding_payments()
    close7 = row(candles, 7)[3]
    ts, rates = fd["BTC/USDT"]
    rate = float(rates[int(np.searchsorted(ts, START + 8 * HOUR))])
    assert (pay["time"], pay["rate"]) == (START + 8 * HOUR, rate)
    assert pay["paid"] == pytest.approx(0.01 * close7 * rate)
    (h,) = ex.fetch_funding_history(BTC)
    assert (h["timestamp"], h["code"], h["symbol"]) == (START + 8 * HOUR, "USDT", BTC)
    assert h["amount"] == pytest.approx(-pay["paid"])
    assert h["info"]["businessType"] == "contract_settle_fee"
    hist = ex.fetch_funding_rate_history(BTC, limit=3)
    assert [(r["timestamp"], r["fundingRate"]) for r in hist][-1] == (START + 8 * HOUR,
                                                                    pytest.approx(rate))
    assert [r["timestamp"] for r in hist] == [START - 8 * HOUR, START, START + 8 * HOUR]
    fr = ex.fetch_funding_rate(BTC)
    assert (fr["fundingTimestamp"], fr["fundingRate"]) == (START + 16 * HOUR,
                                                          pytest.approx(rate))
    bal = ex.fetch_balance()["USDT"]["total"]
    assert bal == pytest.approx(fx.equity())
