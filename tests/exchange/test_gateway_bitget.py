"""The order gateway on Bitget USDT-M: the real ``ccxt.bitget`` over HTTP against the
local exchange's Bitget dialect, faults injected by the server. Stops are plan orders,
which Bitget's order lookup does not know: the gateway finds them by listing the open
and closed trigger orders (:mod:`gridflow.exchange.venue`), so a lost answer is looked
up, never sent twice."""

from __future__ import annotations

import random

import pytest
from test_gateway import FAST, PRICES, START, candles, intent

from gridflow.config.live import ExchangeConfig
from gridflow.exchange.client import make_exchange
from gridflow.exchange.gateway import OrderGateway
from gridflow.fakex import FakeExchange, FaultPlan

KEY, SECRET, PASS = "bitget-test-key", "bitget-test-secret", "bitget-pass-phrase"
ORDER = "POST /api/v2/mix/order/place-order"
PLAN = "POST /api/v2/mix/order/place-plan-order"
CANCEL = "POST /api/v2/mix/order/cancel-order"
CANCEL_PLAN = "POST /api/v2/mix/order/cancel-plan-order"


@pytest.fixture
def fx():
    ex = FakeExchange(candles={s: candles(p) for s, p in PRICES.items()}, timeframe="1h",
                      start_ms=START, api_key=KEY, secret=SECRET, passphrase=PASS,
                      clock="manual", dialect="bitget")
    ex.start()
    yield ex
    ex.stop()


def gateway(fx: FakeExchange, timeout_ms: int = 300) -> OrderGateway:
    ex = make_exchange(ExchangeConfig(id="bitget", api_key=KEY, secret=SECRET, password=PASS,
                                      urls=fx.ccxt_urls(), timeout_ms=10_000, rate_limit_ms=0))
    ex.load_markets()
    ex.timeout = timeout_ms
    return OrderGateway(ex, "swap", FAST, secrets=(KEY, SECRET, PASS), rng=random.Random(1))


def by_cid(fx: FakeExchange) -> dict[str, dict]:
    return {o["clientOrderId"]: o for o in fx.orders()}


def stop(cid: str, **kw):
    return intent(cid, **{"type": "stop_market", "side": "sell", "price": None,
                          "stop_price": 28_500.06, "amount": 0.0209, "reduce_only": True,
                          **kw})


def test_limit_market_and_plan_stop_with_bitgets_precision_found_and_cancelled(fx):
    gw = gateway(fx)
    caps = gw.capabilities("BTC/USDT")
    assert (caps.venue, caps.trigger_lookup, caps.batch_place) == ("bitget", "list", 0)
    out = gw.place(intent("lim1", price=29_000.123, amount=0.012345))
    assert out.status == "sent" and out.attempts == 1 and out.exchange_order_id
    lim = by_cid(fx)["lim1"]
    assert (lim["price"], lim["origQty"]) == (29_000.1, 0.012)  # real tick 0.1, step 0.001
    assert gw.place(intent("mkt1", type="market", price=None, amount=0.02)).status == "sent"
    assert fx.positions()["BTC/USDT"]["amount"] == pytest.approx(0.02)
    assert gw.place(stop("stp1")).status == "sent"
    plan = by_cid(fx)["stp1"]
    assert plan["algo"] and plan["reduceOnly"]
    assert (plan["stopPrice"], plan["origQty"]) == (28_500.1, 0.02)
    found = gw.find("stp1", "BTC/USDT", conditional=True)
    assert found["clientOrderId"] == "stp1" and found["status"] == "open"
    assert gw.find("nope", "BTC/USDT", conditional=True) is None
    out = gw.cancel(stop("stp1", action="cancel"))
    assert out.status == "canceled"
    assert by_cid(fx)["stp1"]["status"] == "CANCELED"
    gone = gw.find("stp1", "BTC/USDT", conditional=True)  # in the closed trigger orders
    assert gone["clientOrderId"] == "stp1" and gone["status"] in ("canceled", "cancelled")
    close = gw.place(intent("mkt2", type="market", side="sell", price=None, amount=0.02049,
                            reduce_only=True))
    assert close.status == "sent" and "BTC/USDT" not in fx.positions()
    assert max(fx.accepted_client_ids().values()) == 1


@pytest.mark.parametrize(("kind", "attempts"), [
    ("timeout_after", 2),    # executed, answer lost: the lookup finds it
    ("drop_after", 2),
    ("timeout_before", 3),   # never reached the book: the lookup finds nothing, resend
    ("server_error", 3),
])
@pytest.mark.parametrize("path", [ORDER, PLAN])
def test_a_lost_answer_is_looked_up_and_the_order_never_sent_twice(fx, kind, attempts, path):
    gw = gateway(fx)
    if path == PLAN:  # a position for the reduce-only stop to protect
        assert gw.place(intent("pos", type="market", price=None, amount=0.03)).status == "sent"
    fx.set_faults(FaultPlan(seed=1, hang_s=0.6, script=[(kind, path)]))
    out = gw.place(stop("f1") if path == PLAN else intent("f1"))
    assert [f["kind"] for f in fx.fault_log] == [kind]
    assert (out.status, out.attempts, len(out.faults)) == ("sent", attempts, 1)
    assert fx.accepted_client_ids()["f1"] == 1 and out.exchange_order_id


@pytest.mark.parametrize("kind", ["timeout_after", "timeout_before", "server_error"])
@pytest.mark.parametrize("conditional", [False, True])
def test_cancel_through_faults_ends_cancelled(fx, kind, conditional):
    gw = gateway(fx)
    assert gw.place(intent("pos", type="market", price=None, amount=0.03)).status == "sent"
    it = stop("c1") if conditional else intent("c1")
    assert gw.place(it).status == "sent"
    fx.set_faults(FaultPlan(seed=1, hang_s=0.6,
                            script=[(kind, CANCEL_PLAN if conditional else CANCEL)]))
    out = gw.cancel(stop("c1", action="cancel") if conditional else intent("c1", action="cancel"))
    assert out.status == "canceled" and len(out.faults) == 1, out
    assert by_cid(fx)["c1"]["status"] == "CANCELED"


def test_a_plan_stop_reads_as_a_stop_and_cancelling_a_triggered_one_is_not_found(fx):
    """Bitget types a plan order by the order it will place (``market``): the live state
    must still see a stop (a restart rebuilds it and cancels it as one); a plan stop that
    already triggered cannot be cancelled, and the gateway says so (``not_found``, as on
    Binance) instead of reading Bitget's success-with-a-failure-list as a cancel."""
    from gridflow.dataflows.exchange_records import order_dict

    gw = gateway(fx)
    assert gw.place(intent("pos", type="market", price=None, amount=0.02)).status == "sent"
    assert gw.place(stop("s1", stop_price=29_900.0, amount=0.02)).status == "sent"
    [o] = [order_dict(x) for x in gw.exchange.fetch_open_orders(
        "BTC/USDT:USDT", params={"trigger": True})]
    assert (o["client_order_id"], o["type"], o["stop_price"], o["reduce_only"]) == (
        "s1", "stop_market", 29_900.0, True)
    fx.step()  # low 29 850: the plan triggers and closes the position
    assert "BTC/USDT" not in fx.positions()
    out = gw.cancel(stop("s1", action="cancel", stop_price=29_900.0, amount=0.02))
    assert out.status == "not_found" and out.faults == ["OrderNotFound"]
    assert gw.cancel(stop("never", action="cancel")).status == "not_found"
