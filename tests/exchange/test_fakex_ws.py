"""The fake exchange's Binance USDⓈ-M websockets, read by real ccxt.pro (``binanceusdm``).

Candles are the bundled BTC/ETH 1h data around 2024-01-01 (see ``test_fakex.py``). Every
test runs its client in ``asyncio.run`` bounded by :data:`BOUND_S`; waits poll a
condition with a bound, they never sleep to assert.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from contextlib import asynccontextmanager, suppress

import aiohttp
import ccxt
import ccxt.pro
import pytest
from helpers import bundled_window

from gridflow.fakex import FakeExchange, FaultPlan

START = 1704067200000  # 2024-01-01 00:00 UTC: open of the first forming candle
HOUR = 3_600_000
BTC = "BTC/USDT:USDT"
KEY, SECRET = "ws-test-key", "ws-test-secret"
BOUND_S = 20.0


@pytest.fixture(scope="module")
def candles():
    return bundled_window(START, 200, 60)


@pytest.fixture
def make(candles):
    """``make(**kw) -> fx``: a started fake exchange on the bundled candles."""
    started = []

    def _make(**kw):
        fx = FakeExchange(candles, timeframe="1h", start_ms=START, api_key=KEY, secret=SECRET,
                          **kw)
        fx.start()
        started.append(fx)
        return fx

    yield _make
    for fx in started:
        fx.stop()


def on_client(body):
    """Test decorator: ``body(fx, ex)`` gets a started fake exchange and a ccxt.pro client
    on it, and runs bounded by :data:`BOUND_S`."""

    def test(make):
        fx = make()

        async def go():
            async with pro(fx) as ex:
                await body(fx, ex)

        run(go())

    test.__name__, test.__doc__ = body.__name__, body.__doc__
    return test


def run(coro):
    """Run ``coro`` on a fresh loop, bounded by :data:`BOUND_S`."""
    return asyncio.run(asyncio.wait_for(coro, BOUND_S))


@asynccontextmanager
async def pro(fx):
    """A ccxt.pro binanceusdm client on ``fx`` (markets loaded)."""
    ex = ccxt.pro.binanceusdm({"apiKey": KEY, "secret": SECRET, "options": {
        "fetchCurrencies": False, "adjustForTimeDifference": False, "defaultType": "swap"}})
    ex.urls["api"] = {**ex.urls["api"], **fx.ccxt_urls(),
                      "ws": {**ex.urls["api"]["ws"], **fx.ccxt_ws_urls()}}
    try:
        await ex.load_markets()
        yield ex
    finally:
        await ex.close()


async def until(cond, what: str, timeout: float = 5.0) -> None:
    """Poll ``cond()`` until true; AssertionError after ``timeout`` seconds."""
    end = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class Pump:
    """Calls ``watch()`` in a loop, keeping what it returns (or the error that ended it)."""

    def __init__(self, watch):
        self.got: list = []
        self.error: Exception | None = None
        self.task = asyncio.get_running_loop().create_task(self._run(watch))

    async def _run(self, watch):
        while True:
            try:
                out = await watch()
            except ccxt.BaseError as e:  # the test inspects it
                self.error = e
                return
            self.got.extend(out if isinstance(out, list) else [out])

    async def stop(self):
        self.task.cancel()
        with suppress(asyncio.CancelledError):
            await self.task


def spy(ex) -> list:
    """Keep every message ccxt's parser gets (before it parses it)."""
    raw: list = []
    parse = ex.handle_message

    def handle(client, message):
        raw.append(message)
        return parse(client, message)

    ex.handle_message = handle
    return raw


async def place(ex, orders: Pump, cid: str, price: float = 40000, **params) -> None:
    """A limit buy of 0.01 BTC, then wait until ``orders`` (a watch_orders pump) has it."""
    await ex.create_order(BTC, "limit", "buy", 0.01, price, {"clientOrderId": cid, **params})
    await until(lambda: any(o["clientOrderId"] == cid for o in orders.got), f"order {cid}")


def rest_client(fx, **options) -> ccxt.binanceusdm:
    """A synchronous ccxt REST client on ``fx`` (no rate limiter)."""
    ex = ccxt.binanceusdm({"apiKey": KEY, "secret": SECRET, "enableRateLimit": False,
                           "options": {"fetchCurrencies": False,
                                       "adjustForTimeDifference": False, **options}})
    ex.urls["api"] = {**ex.urls["api"], **fx.ccxt_urls()}
    return ex


# --------------------------------------------------------------- market streams
@on_client
async def test_ohlcv_and_mark_price_equal_rest(fx, ex):
    bars = Pump(lambda: ex.watch_ohlcv(BTC, "1h"))
    marks = Pump(lambda: ex.watch_mark_price(BTC))
    await until(lambda: {"btcusdt@kline_1h", "btcusdt@markPrice@1s"}
                <= set(fx.ws_streams()), "subscriptions")
    cache = lambda: {c[0]: c for c in ex.ohlcvs.get(BTC, {}).get("1h", [])}
    for i in range(4):
        fx.step()
        nxt = START + (i + 1) * HOUR
        await until(lambda nxt=nxt: nxt in cache(), f"forming candle {nxt}")
        closed = cache()[START + i * HOUR]
        assert closed == (await ex.fetch_ohlcv(BTC, "1h", since=START + i * HOUR,
                                               limit=1))[0]
        assert cache()[nxt] == (await ex.fetch_ohlcv(BTC, "1h", limit=1))[0]
        await until(lambda: ex.tickers.get(BTC, {}).get("timestamp") == fx.now_ms(),
                    "mark price at the clock")
    for k in (3, 5):  # inside the candle: forming kline and mark follow the path
        fx.substep(k, 12)
        now = fx.now_ms()
        await until(lambda now=now: ex.tickers.get(BTC, {}).get("timestamp") == now, "mark")
        rest = await ex.fapiPublicGetPremiumIndex({"symbol": "BTCUSDT"})
        assert ex.tickers[BTC]["info"]["p"] == rest["markPrice"]
        assert ex.tickers[BTC]["markPrice"] == pytest.approx(fx.price("BTC/USDT"))
        await until(lambda: cache()[START + 4 * HOUR][4] == fx.price("BTC/USDT"),
                    "forming close")
        assert cache()[START + 4 * HOUR] == (await ex.fetch_ohlcv(BTC, "1h",
                                                                  limit=1))[0]
    assert bars.error is None and marks.error is None
    await bars.stop()
    await marks.stop()


def test_raw_bodies_requests_and_one_ordered_connection(make):
    """Binance request answers, kline/mark bodies equal to REST, and a market connection
    that subscribes the listen key: a clock move's fills come before its kline close."""
    fx = make()
    rest = rest_client(fx)

    async def go():
        async with aiohttp.ClientSession() as s, s.ws_connect(f"{fx.ws_url}/ws") as ws:
            async def ask(method, params=None, rid=1):
                await ws.send_json({"method": method, "params": params or [], "id": rid})
                return await ws.receive_json(timeout=5)

            assert await ask("SUBSCRIBE", ["btcusdt@kline_1h", "btcusdt@markPrice"]) == {
                "result": None, "id": 1}
            assert await ask("LIST_SUBSCRIPTIONS", rid=2) == {
                "result": ["btcusdt@kline_1h", "btcusdt@markPrice"], "id": 2}
            bad = await ask("SUBSCRIBE", ["dogeusdt@kline_1h"], rid=3)
            assert bad["id"] == 3 and bad["error"]["code"] == 2
            assert fx.ws_stats()["bad_request"] == 1
            key = rest.fapiPrivatePostListenKey()["listenKey"]
            assert rest.fapiPrivatePostListenKey()["listenKey"] == key  # active: same key
            assert await ask("SUBSCRIBE", [key], rid=4) == {"result": None, "id": 4}
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await s.ws_connect(f"{fx.ws_url}/private/ws?listenKey=nope")
            assert fx.ws_stats()["handshake_refused"] == 1
            classic = await s.ws_connect(f"{fx.ws_url}/ws/{key}")  # the classic user URL
            await until(lambda: fx.ws_connections()["user"] == 1, "user stream")
            rest.load_markets()
            rest.create_order(BTC, "limit", "buy", 0.01, 42270, {"clientOrderId": "raw-1"})
            fx.step()
            msgs = []
            while not any(m.get("e") == "markPriceUpdate" for m in msgs):
                msgs.append(await ws.receive_json(timeout=5))
            kinds = [(m["e"], m.get("o", {}).get("x") or m.get("k", {}).get("x")) for m in msgs]
            assert kinds == [("ORDER_TRADE_UPDATE", "NEW"), ("ORDER_TRADE_UPDATE", "TRADE"),
                             ("ACCOUNT_UPDATE", None), ("kline", True), ("kline", False),
                             ("markPriceUpdate", None)]
            times = [m["E"] for m in msgs]
            assert times == sorted(times) and times[-1] == fx.now_ms() == START + HOUR
            trade = rest.fetch_my_trades(BTC)[0]
            assert msgs[1]["o"]["t"] == int(trade["id"]) and msgs[1]["o"]["c"] == "raw-1"
            assert msgs[1]["o"]["i"] == int(trade["order"])
            (row,) = rest.fapiPublicGetKlines({"symbol": "BTCUSDT", "interval": "1h",
                                               "startTime": START, "limit": 1})
            k = msgs[3]["k"]
            assert [k[x] for x in "tohlcvTq"] == [row[i] for i in (0, 1, 2, 3, 4, 5, 6, 7)]
            mark = rest.fapiPublicGetPremiumIndex({"symbol": "BTCUSDT"})
            assert msgs[5]["p"] == mark["markPrice"] and msgs[5]["T"] == mark["nextFundingTime"]
            assert [await classic.receive_json(timeout=5) for _ in range(3)] == msgs[:3]
            await classic.close()
            assert await ask("UNSUBSCRIBE", ["btcusdt@markPrice", key], rid=5) == {
                "result": None, "id": 5}
            assert await ask("LIST_SUBSCRIPTIONS", rid=6) == {"result": ["btcusdt@kline_1h"],
                                                             "id": 6}
            assert fx.ws_streams() == ["btcusdt@kline_1h"]

    run(go())


def test_funding_account_update_comes_before_the_candle_close(make):
    """A settlement at a candle's close: its ACCOUNT_UPDATE (FUNDING_FEE) is published
    before that candle's final kline, with the wallet REST shows."""
    fx = make(funding={"BTC/USDT": ([START + 2 * HOUR], [0.001])})
    rest = rest_client(fx)
    key = rest.fapiPrivatePostListenKey()["listenKey"]

    async def go():
        async with aiohttp.ClientSession() as s, s.ws_connect(f"{fx.ws_url}/ws") as ws:
            await ws.send_json({"method": "SUBSCRIBE", "params": [key, "btcusdt@kline_1h"],
                                "id": 1})
            assert await ws.receive_json(timeout=5) == {"result": None, "id": 1}
            rest.create_order(BTC, "market", "buy", 0.01)
            fx.step()
            fx.step()  # the candle closing at START + 2h settles funding
            msgs = [await ws.receive_json(timeout=5) for _ in range(7)]
            kinds = [(m["e"], m.get("a", {}).get("m") or m.get("k", {}).get("t")) for m in msgs]
            assert kinds == [("ORDER_TRADE_UPDATE", None), ("ORDER_TRADE_UPDATE", None),
                             ("ACCOUNT_UPDATE", "ORDER"), ("kline", START), ("kline", START + HOUR),
                             ("ACCOUNT_UPDATE", "FUNDING_FEE"), ("kline", START + HOUR)]
            (paid,) = fx.funding_payments()
            (b,) = msgs[5]["a"]["B"]
            assert float(b["bc"]) == pytest.approx(-paid["paid"]) and msgs[5]["a"]["P"] == []
            wallet = rest.fapiPrivateV3GetAccount()["assets"][0]["walletBalance"]
            assert b["wb"] == wallet and msgs[5]["E"] == START + 2 * HOUR

    run(go())


# ------------------------------------------------------------------ user data
@on_client
async def test_orders_trades_positions_balance_follow_fills(fx, ex):
    sym = "BTC/USDT"
    raw = spy(ex)
    orders = Pump(lambda: ex.watch_orders())
    trades = Pump(lambda: ex.watch_my_trades())
    positions = Pump(lambda: ex.watch_positions([BTC]))
    balance = Pump(lambda: ex.watch_balance())
    await until(lambda: fx.ws_connections()["user"] == 1, "user stream")
    await ex.create_order(BTC, "limit", "buy", 0.02, 42270, {"clientOrderId": "b1"})
    await until(lambda: any(o["clientOrderId"] == "b1" for o in orders.got), "NEW")
    first = next(o for o in orders.got if o["clientOrderId"] == "b1")
    assert (first["status"], first["filled"], first["price"]) == ("open", 0.0, 42270.0)
    fx.step()  # the low (42261.02) reaches the buy
    await until(lambda: orders.got[-1]["status"] == "closed", "fill")
    assert orders.got[-1]["filled"] == 0.02 and orders.got[-1]["average"] == 42270.0
    # a stop below the next candle's open: its low leg (42431.65) triggers it
    await ex.create_order(BTC, "market", "sell", 0.01, None, {
        "stopPrice": 42450, "reduceOnly": True, "clientOrderId": "s1"})
    await until(lambda: any(o["info"].get("aid") for o in orders.got), "ALGO_UPDATE")
    fx.step()
    await until(lambda: len(trades.got) == 2, "stop fill")
    await until(lambda: ex.balance.get("linear", {}).get("USDT", {}).get("total")
                == pytest.approx(fx.balance()), "wallet after the stop")
    user = [m for m in raw if m.get("e") in ("ORDER_TRADE_UPDATE", "ALGO_UPDATE",
                                              "ACCOUNT_UPDATE")]
    assert [m["E"] for m in user] == sorted(m["E"] for m in user)
    algo = [ex.parse_ws_order(m["o"]) for m in user if m["e"] == "ALGO_UPDATE"]
    assert [a["info"]["X"] for a in algo] == ["NEW", "TRIGGERED", "FINISHED"]
    assert [a["status"] for a in algo] == ["open", "closed", "closed"]
    assert {a["id"] for a in algo} == {str(fx.orders()[1]["algoId"])}
    assert (algo[0]["clientOrderId"], algo[0]["triggerPrice"]) == ("s1", 42450.0)
    cached = ex.orders.hashmap[BTC]
    assert cached[algo[0]["id"]]["status"] == "closed"
    child = cached[algo[1]["info"]["ai"]]
    assert child["id"] == (await ex.fetch_order(None, BTC, {"clientOrderId": "s1"}))["id"]
    assert (child["clientOrderId"], child["status"], child["filled"], child["average"]) \
        == ("s1", "closed", 0.01, 42450.0)
    rest_trades = await ex.fetch_my_trades(BTC)
    key = lambda t: (t["id"], t["order"], t["side"], t["price"], t["amount"],
                     t["fee"]["cost"], t["takerOrMaker"], t["timestamp"])
    assert [key(t) for t in trades.got] == [key(t) for t in rest_trades]
    cids = [(await ex.fetch_order(t["order"], BTC))["clientOrderId"]
            for t in rest_trades]
    assert [t["info"]["c"] for t in trades.got] == cids == ["b1", "s1"]
    await until(lambda: positions.got and positions.got[-1]["contracts"] == 0.01,
                "position after the stop")
    (rp,) = await ex.fetch_positions([BTC])
    ws_pos = positions.got[-1]
    assert (ws_pos["contracts"], ws_pos["side"], ws_pos["entryPrice"]) == (
        rp["contracts"], rp["side"], rp["entryPrice"]) == (0.01, "long", 42270.0)
    rb = await ex.fetch_balance()
    wallet = float(rb["info"]["assets"][0]["walletBalance"])
    assert ex.balance["linear"]["USDT"]["total"] == wallet == pytest.approx(
        fx.balance())
    assert fx.positions()[sym]["amount"] == 0.01
    for p in (orders, trades, positions, balance):
        assert p.error is None
        await p.stop()


@on_client
async def test_listen_key_expiry_is_detected_and_reauth_works(fx, ex):
    pending = asyncio.ensure_future(ex.watch_orders())
    await until(lambda: fx.ws_connections()["user"] == 1, "user stream")
    old = ex.options["linear"]["listenKey"]
    assert fx.expire_listen_key() == old
    with pytest.raises(ccxt.NetworkError):
        await pending
    assert fx.ws_connections()["user"] == 0
    assert [f["kind"] for f in fx.fault_log] == ["listen_key_expired"]
    with pytest.raises(ccxt.BaseError, match="-1125"):  # keep-alive of a dead key
        await ex.fapiPrivatePutListenKey()
    await ex.keep_alive_listen_key()  # ccxt's own path: it forgets the key
    assert ex.options["linear"]["listenKey"] is None
    orders = Pump(lambda: ex.watch_orders())
    await until(lambda: fx.ws_connections()["user"] == 1, "user stream again")
    assert ex.options["linear"]["listenKey"] not in (None, old)
    await place(ex, orders, "k2")
    await orders.stop()


@on_client
async def test_cancels_and_expiries_reach_watch_orders(fx, ex):
    raw = spy(ex)
    orders = Pump(lambda: ex.watch_orders())
    await until(lambda: fx.ws_connections()["user"] == 1, "user stream")
    await place(ex, orders, "c1")
    await ex.cancel_order(None, BTC, {"clientOrderId": "c1"})
    await place(ex, orders, "ioc", timeInForce="IOC")  # far from the price: expires
    await ex.create_order(BTC, "market", "buy", 0.01, None, {"stopPrice": 50000,
                                                             "clientOrderId": "a1"})
    await ex.cancel_order(None, BTC, {"clientOrderId": "a1", "trigger": True})
    events = lambda: [(m["o"].get("c") or m["o"]["caid"], m["o"].get("x") or m["o"]["X"])
                      for m in raw if m.get("e") in ("ORDER_TRADE_UPDATE", "ALGO_UPDATE")]
    await until(lambda: len(events()) == 6, "six order events")
    assert events() == [("c1", "NEW"), ("c1", "CANCELED"), ("ioc", "NEW"),
                        ("ioc", "EXPIRED"), ("a1", "NEW"), ("a1", "CANCELED")]
    await until(lambda: len(orders.got) and orders.got[-1]["clientOrderId"] == "a1"
                and orders.got[-1]["status"] == "canceled", "algo canceled in ccxt")
    status = {o["clientOrderId"]: o["status"] for o in ex.orders}
    assert status == {"c1": "canceled", "ioc": "expired", "a1": "canceled"}
    await orders.stop()


# ---------------------------------------------------------------------- faults
@on_client
async def test_ws_drop_raises_network_error_and_watch_reconnects(fx, ex):
    bars = asyncio.ensure_future(ex.watch_ohlcv(BTC, "1h"))
    mine = asyncio.ensure_future(ex.watch_orders())
    await until(lambda: fx.ws_connections() == {"market": 1, "user": 1}, "streams")
    assert fx.ws_drop("all") == 2
    for pending in (bars, mine):
        with pytest.raises(ccxt.NetworkError):
            await pending
    assert fx.ws_connections() == {"market": 0, "user": 0}
    bars = Pump(lambda: ex.watch_ohlcv(BTC, "1h"))
    orders = Pump(lambda: ex.watch_orders())
    await until(lambda: fx.ws_connections() == {"market": 1, "user": 1}
                and fx.ws_streams() == ["btcusdt@kline_1h"], "reconnected")
    fx.step()
    await until(lambda: any(c[0] == START + HOUR for c in bars.got), "kline")
    await place(ex, orders, "d1")
    assert [f["kind"] for f in fx.fault_log] == ["ws_drop"]
    await bars.stop()
    await orders.stop()


@on_client
async def test_ws_silence_withholds_then_resumes(fx, ex):
    bars = Pump(lambda: ex.watch_ohlcv(BTC, "1h"))
    await until(lambda: fx.ws_streams() == ["btcusdt@kline_1h"], "subscription")
    assert fx.ws_silence("market", True) == 1
    fx.step()
    await until(lambda: fx.ws_stats().get("withheld", 0) == 2, "withheld klines")
    done, _ = await asyncio.wait({bars.task}, timeout=0.5)  # bounds the silence
    assert not done and bars.got == [] and fx.ws_connections()["market"] == 1
    fx.ws_silence("market", False)
    fx.step()
    await until(lambda: any(c[0] == START + 2 * HOUR for c in bars.got), "resumed")
    ts = sorted({c[0] for c in ex.ohlcvs[BTC]["1h"]})
    assert ts == [START + HOUR, START + 2 * HOUR]  # the silenced candle is lost
    assert [f["kind"] for f in fx.fault_log] == ["ws_silence", "ws_silence"]
    assert [f["on"] for f in fx.fault_log] == [True, False]
    await bars.stop()


STREAMS = ["btcusdt@kline_1h", "ethusdt@kline_1h", "btcusdt@markPrice@1s", "ethusdt@markPrice"]


async def _collect(fx, steps: int) -> list[str]:
    """Raw messages of :data:`STREAMS` over ``steps`` candles (up to a request barrier)."""
    async with aiohttp.ClientSession() as s, s.ws_connect(f"{fx.ws_url}/market/ws/0") as ws:
        await ws.send_json({"method": "SUBSCRIBE", "params": STREAMS, "id": 1})
        assert await ws.receive_json(timeout=5) == {"result": None, "id": 1}
        for _ in range(steps):
            fx.step()
        await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 2})  # after every batch
        out = []
        while True:
            text = await ws.receive_str(timeout=5)
            if json.loads(text).get("id") == 2:
                return out
            out.append(text)


def _undo(faulted: list[str], clean: list[str]) -> tuple[int, int]:
    """``(duplicates, swaps)`` that turn ``clean`` into ``faulted`` (AssertionError if
    ``faulted`` is anything else)."""
    i = j = dups = swaps = 0
    last = None
    while j < len(faulted):
        if faulted[j] == last:
            dups, j = dups + 1, j + 1
        elif faulted[j] == clean[i]:
            last, i, j = clean[i], i + 1, j + 1
        else:
            assert faulted[j] == clean[i + 1], f"message {j} is neither next nor swapped"
            swaps, j = swaps + 1, j + 1
            while faulted[j] == clean[i + 1]:
                dups, j = dups + 1, j + 1
            assert faulted[j] == clean[i]
            last, i, j = clean[i], i + 2, j + 1
    assert i == len(clean)
    return dups, swaps


def test_duplicate_and_reorder_faults_at_seeded_rates(make):
    steps = 30
    clean = run(_collect(make(), steps))
    assert len(clean) == steps * 6
    plan = FaultPlan(seed=7, ws_duplicate=0.1, ws_reorder=0.1)
    runs = []
    for _ in range(2):
        fx = make(faults=plan)
        faulted = run(_collect(fx, steps))
        counts = {k: sum(f["kind"] == k for f in fx.fault_log)
                  for k in ("ws_duplicate", "ws_reorder")}
        assert _undo(faulted, clean) == (counts["ws_duplicate"], counts["ws_reorder"])
        runs.append([(f["kind"], f["time_ms"]) for f in fx.fault_log])
    n = len(clean)
    assert 0.05 * n <= counts["ws_duplicate"] <= 0.15 * n
    assert 0.04 * n <= counts["ws_reorder"] <= 0.15 * n  # a batch's last message stays put
    assert runs[0] == runs[1]  # seeded: the same faults on the same messages


# ------------------------------------------------------------------ REST weight
def test_rest_weight_counts_binance_weights(make):
    fx = make()
    ex = rest_client(fx, fetchOpenOrders={"warnWithoutSymbol": False})
    ex.load_markets()
    calls = [(lambda: ex.fetch_ohlcv(BTC, "1h", limit=50), 1),
             (lambda: ex.fetch_ohlcv(BTC, "1h", limit=200), 2),
             (lambda: ex.fetch_ohlcv(BTC, "1h", limit=1000), 5),
             (lambda: ex.fetch_open_orders(BTC), 1), (lambda: ex.fetch_open_orders(), 40),
             (lambda: ex.fetch_my_trades(BTC), 5), (lambda: ex.fapiPrivatePostListenKey(), 1),
             (lambda: ex.fapiPublicGetPremiumIndex(), 10),
             (lambda: ex.fapiPrivateGetIncome(), 30),
             (lambda: ex.create_order(BTC, "limit", "buy", 0.01, 40000), 1)]
    for call, weight in calls:
        n0, w0 = len(fx.request_log), fx.rest_weight()
        call()
        assert len(fx.request_log) == n0 + 1
        assert fx.rest_weight(n0) == fx.rest_weight() - w0 == weight
    step = urllib.request.Request(f"{fx.url}/_fakex/step", method="POST")
    urllib.request.urlopen(step, timeout=5).read()
    assert fx.request_log[-1]["path"] == "/_fakex/step" and fx.request_log[-1]["weight"] == 0
