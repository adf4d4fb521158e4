"""Order gateway against the local fake Binance USDT-M exchange: real ccxt over HTTP on
127.0.0.1, faults injected by the server (no mocks of ccxt)."""

from __future__ import annotations

import random
from collections import Counter

import ccxt
import numpy as np
import pytest

from gridflow.config.live import ExchangeConfig, RetryConfig
from gridflow.events import OrderIntent
from gridflow.exchange.client import make_exchange
from gridflow.exchange.gateway import OrderGateway
from gridflow.exchange.retry import backoff_delays, is_retryable, outcome_unknown, redact
from gridflow.fakex import FakeExchange, FaultPlan

H = 3_600_000
T0 = 1_699_992_000_000  # a multiple of 1h
START = T0 + 10 * H
PRICES = {"BTC/USDT": 30_000.0, "ETH/USDT": 2_000.0}
FAST = RetryConfig(max_attempts=6, base_delay_s=0.001, max_delay_s=0.01)
ORDER = "POST /fapi/v1/order"
ALGO = "POST /fapi/v1/algoOrder"


def candles(price: float, n: int = 60) -> np.ndarray:
    """Flat candles: open = close = ``price``, high/low 0.5 % away."""
    ts = T0 + np.arange(n, dtype=np.float64) * H
    c = np.full(n, price)
    return np.column_stack([ts, c, c * 1.005, c * 0.995, c, np.full(n, 100.0)])


def start_fx() -> FakeExchange:
    """The local exchange on flat :data:`PRICES` candles, manual clock, started."""
    ex = FakeExchange(candles={s: candles(p) for s, p in PRICES.items()}, timeframe="1h",
                      start_ms=START, api_key="test-key", secret="test-secret", clock="manual")
    ex.start()
    return ex


@pytest.fixture
def fx():
    ex = start_fx()
    yield ex
    ex.stop()


def gateway(fx: FakeExchange, timeout_ms: int = 200, retry: RetryConfig = FAST) -> OrderGateway:
    """A gateway whose order requests time out after ``timeout_ms`` (the markets load
    with a generous timeout: a busy machine must not fail the setup)."""
    ex = make_exchange(ExchangeConfig(api_key="test-key", secret="test-secret",
                                      urls=fx.ccxt_urls(), timeout_ms=10_000, rate_limit_ms=0))
    ex.load_markets()
    ex.timeout = timeout_ms
    return OrderGateway(ex, "swap", retry, secrets=("test-key", "test-secret"),
                        rng=random.Random(1))


def intent(cid: str, action: str = "place", **kw) -> OrderIntent:
    d = {"intent_id": f"{cid}:{action}", "action": action, "account": "acc",
         "symbol": "BTC/USDT", "client_order_id": cid, "tag": "L0", "ts_ms": START,
         "side": "buy", "type": "limit", "price": 29_000.0, "amount": 0.01}
    d.update(kw)
    return OrderIntent(**d)


def order_posts(fx: FakeExchange) -> list[dict]:
    return [r for r in fx.request_log if r["method"] in ("POST", "DELETE")]


def by_cid(fx: FakeExchange) -> dict[str, dict]:
    return {o["clientOrderId"]: o for o in fx.orders()}


def assert_once(fx: FakeExchange) -> None:
    counts = fx.accepted_client_ids()
    assert not counts or max(counts.values()) == 1, counts


# --- retry policy ---------------------------------------------------------------------

def test_backoff_delays_are_full_jitter_and_seeded() -> None:
    cfg = RetryConfig(max_attempts=8, base_delay_s=0.1, max_delay_s=1.0)
    a = backoff_delays(cfg, random.Random(7))
    assert a == backoff_delays(cfg, random.Random(7))
    assert len(a) == 7
    for k, d in enumerate(a, start=1):
        assert 0.0 <= d <= min(1.0, 0.1 * 2 ** (k - 1))
    caps = [max(backoff_delays(cfg, random.Random(s))[6] for s in range(200))]
    assert 0.8 < caps[0] <= 1.0  # the cap is max_delay_s, and it is reached
    assert backoff_delays(RetryConfig(max_attempts=1), random.Random(0)) == []


def test_retryable_classes() -> None:
    for cls in (ccxt.RequestTimeout, ccxt.ExchangeNotAvailable, ccxt.NetworkError,
                ccxt.RateLimitExceeded, ccxt.DDoSProtection, ccxt.OperationFailed):
        assert is_retryable(cls("x")), cls
    for cls in (ccxt.InvalidOrder, ccxt.InsufficientFunds, ccxt.OrderNotFound,
                ccxt.AuthenticationError, ccxt.ExchangeError, ccxt.BadSymbol,
                ccxt.DuplicateOrderId, ccxt.PermissionDenied):
        assert not is_retryable(cls("x")), cls
    assert not is_retryable(ValueError("x"))
    assert outcome_unknown(ccxt.RequestTimeout("x")) and outcome_unknown(ccxt.NetworkError("x"))
    assert not outcome_unknown(ccxt.RateLimitExceeded("x"))
    assert not outcome_unknown(ccxt.DDoSProtection("x"))


def test_redact_removes_keys_and_signatures() -> None:
    msg = ('binanceusdm GET http://h/fapi/v1/order?symbol=BTCUSDT&timestamp=1&signature=abc123'
           'def {"apiKey": "K-1", "secret":"S-2"} X-MBX-APIKEY: K-1 key=MYKEY-0123456789')
    out = redact(msg, ["MYKEY-0123456789", "", None])
    for s in ("abc123def", "K-1", "S-2", "MYKEY-0123456789"):
        assert s not in out
    assert "symbol=BTCUSDT" in out and "signature=***" in out


def test_redact_leaves_text_alone_for_a_secret_too_short_to_be_one() -> None:
    """A literal shorter than MIN_SECRET_LEN is no credential (exchanges issue 64-char
    ones); masking it would garble every log line (a test's secret "x" once turned
    'max_drawdown' into 'ma***_drawdown' in every later record)."""
    assert redact("max_drawdown_frac 0.4", ["x", "ma"]) == "max_drawdown_frac 0.4"


# --- placement ------------------------------------------------------------------------

def test_place_limit_stop_market_and_market_reduce_only_with_precision(fx) -> None:
    gw = gateway(fx)
    out = gw.place(intent("lim1", price=29_000.123, amount=0.012345))
    assert out.status == "sent" and out.attempts == 1 and out.exchange_order_id
    lim = by_cid(fx)["lim1"]
    assert (lim["type"], lim["price"], lim["origQty"]) == ("LIMIT", 29_000.1, 0.012)

    buy = gw.place(intent("mkt1", type="market", price=None, amount=0.02))
    assert buy.status == "sent"
    assert fx.positions()["BTC/USDT"]["amount"] == pytest.approx(0.02)

    stop = gw.place(intent("stp1", type="stop_market", side="sell", price=None,
                           stop_price=28_500.06, amount=0.0209, reduce_only=True))
    assert stop.status == "sent"
    algo = by_cid(fx)["stp1"]
    assert algo["algo"] and algo["type"] == "STOP_MARKET" and algo["reduceOnly"]
    assert (algo["stopPrice"], algo["origQty"]) == (28_500.1, 0.02)
    found = gw.find("stp1", "BTC/USDT", conditional=True)
    assert found["clientOrderId"] == "stp1" and found["status"] == "open"
    assert gw.find("stp1", "BTC/USDT", conditional=False) is None
    assert gw.find("nope", "BTC/USDT", conditional=True) is None

    close = gw.place(intent("mkt2", type="market", side="sell", price=None, amount=0.02049,
                            reduce_only=True))
    assert close.status == "sent"
    assert "BTC/USDT" not in fx.positions()
    assert_once(fx)


def test_stop_limit_gets_a_limit_price_beyond_its_trigger(fx) -> None:
    gw = gateway(fx)
    out = gw.place(intent("sl1", type="stop_limit", side="buy", price=None,
                          stop_price=31_000.0, amount=0.01))
    assert out.status == "sent"
    o = by_cid(fx)["sl1"]
    assert o["algo"] and o["type"] == "STOP" and o["stopPrice"] == 31_000.0
    found = gw.find("sl1", "BTC/USDT", conditional=True)
    assert found["price"] == pytest.approx(31_000.0 * 1.005)


def test_min_amount_and_min_notional_refused_locally(fx) -> None:
    gw = gateway(fx)
    before = len(fx.request_log)
    small = gw.place(intent("tiny", amount=0.0004))
    assert small.status == "rejected" and "MIN_AMOUNT" in small.error and small.attempts == 0
    cheap = gw.place(intent("cheap", symbol="ETH/USDT", price=2_000.0, amount=0.002))
    assert cheap.status == "rejected" and "MIN_NOTIONAL" in cheap.error
    stop = gw.place(intent("cheapstop", symbol="ETH/USDT", type="stop_market", price=None,
                           stop_price=2_100.0, amount=0.002))
    assert stop.status == "rejected" and "MIN_NOTIONAL" in stop.error
    assert len(fx.request_log) == before and fx.orders() == []
    # reduce-only orders are exempt from the notional minimum: this one reaches the
    # exchange (which refuses it, there is no position to reduce)
    ro = gw.place(intent("cheapro", symbol="ETH/USDT", side="sell", price=2_100.0,
                         amount=0.002, reduce_only=True))
    assert ro.status == "rejected" and "-2022" in ro.error and ro.attempts == 1


# --- faults ---------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "status", "fault", "attempts"), [
    ("timeout_after", "sent", "RequestTimeout", 2),     # send, lookup finds it
    ("timeout_before", "sent", "RequestTimeout", 3),    # send, lookup: absent, send
    ("rate_limit", "sent", "DDoSProtection", 2),        # refused before processing: resend
    ("server_error", "sent", "ExchangeNotAvailable", 3),
    ("drop_after", "sent", "NetworkError", 2),
    ("drop_before", "sent", "NetworkError", 3),
    ("reject", "rejected", "InsufficientFunds", 1),      # never retried
])
@pytest.mark.parametrize("path", [ORDER, ALGO])
def test_each_fault_gives_the_right_outcome(fx, kind, status, fault, attempts, path) -> None:
    fx.set_faults(FaultPlan(seed=1, hang_s=0.4, script=[(kind, path)]))
    gw = gateway(fx)
    it = intent("f1") if path == ORDER else intent(
        "f1", type="stop_market", side="buy", price=None, stop_price=31_000.0)
    out = gw.place(it)
    assert [f["kind"] for f in fx.fault_log] == [kind]
    assert (out.status, out.faults, out.attempts) == (status, [fault], attempts)
    assert fx.accepted_client_ids()["f1"] == (1 if status == "sent" else 0)
    if status == "sent":
        assert out.exchange_order_id
    assert_once(fx)


def test_duplicate_client_id_is_already_sent(fx) -> None:
    gw = gateway(fx)
    first = gw.place(intent("d1"))
    again = gw.place(intent("d1"))
    assert first.status == "sent"
    assert again.status == "duplicate" and again.exchange_order_id == first.exchange_order_id
    assert "-4116" in again.error
    assert_once(fx)


def test_failed_lookups_never_resend_blind(fx) -> None:
    # the send times out (executed), then two lookups time out; the third finds it
    fx.set_faults(FaultPlan(seed=1, hang_s=0.4, script=[
        ("timeout_after", ORDER), ("timeout_before", "GET /fapi/v1/order"),
        ("server_error", "GET /fapi/v1/order")]))
    out = gateway(fx).place(intent("l1"))
    assert out.status == "sent" and out.attempts == 4
    assert out.faults == ["RequestTimeout", "RequestTimeout", "ExchangeNotAvailable"]
    assert [r["method"] for r in order_posts(fx)] == ["POST"]
    assert_once(fx)


def test_retries_exhausted_is_failed(fx) -> None:
    fx.set_faults(FaultPlan(seed=1, rate_limit=1.0))
    out = gateway(fx, retry=RetryConfig(max_attempts=3, base_delay_s=0.0)).place(intent("x1"))
    assert (out.status, out.attempts, out.faults) == ("failed", 3, ["DDoSProtection"] * 3)
    assert fx.accepted_client_ids()["x1"] == 0


# --- cancel ---------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "attempts"), [
    ("timeout_after", 2), ("drop_after", 2),       # canceled, the lookup sees it
    ("timeout_before", 3), ("drop_before", 3),     # still open: cancel again
    ("rate_limit", 2), ("server_error", 3),
])
@pytest.mark.parametrize("conditional", [False, True])
def test_cancel_with_faults(fx, kind, attempts, conditional) -> None:
    gw = gateway(fx)
    kw = {"type": "stop_market", "price": None, "stop_price": 31_000.0} if conditional else {}
    assert gw.place(intent("c1", **kw)).status == "sent"
    path = "DELETE /fapi/v1/algoOrder" if conditional else "DELETE /fapi/v1/order"
    fx.set_faults(FaultPlan(seed=1, hang_s=0.4, script=[(kind, path)]))
    out = gw.cancel(intent("c1", action="cancel", **kw))
    assert out.status == "canceled" and out.attempts == attempts and len(out.faults) == 1
    assert by_cid(fx)["c1"]["status"] == "CANCELED"
    again = gw.cancel(intent("c1", action="cancel", **kw))
    assert again.status == "not_found" and again.faults == ["OrderNotFound"]


def test_cancel_after_unknown_outcome_of_a_filled_order_is_not_found(fx) -> None:
    gw = gateway(fx)
    assert gw.place(intent("fill1", price=29_950.0)).status == "sent"
    fx.step()  # low 29 850 <= 29 950: filled
    assert by_cid(fx)["fill1"]["status"] == "FILLED"
    fx.set_faults(FaultPlan(seed=1, hang_s=0.4, script=[("timeout_before", "DELETE")]))
    out = gw.cancel(intent("fill1", action="cancel"))
    assert out.status == "not_found" and out.faults == ["RequestTimeout"] and out.attempts == 2


# --- replacement (cancel_first) -------------------------------------------------------

@pytest.mark.parametrize("conditional", [False, True])
def test_replace_resting_order(fx, conditional) -> None:
    gw = gateway(fx)
    kw = {"type": "stop_market", "side": "sell", "price": None, "amount": 0.01,
          "reduce_only": True} if conditional else {}
    if conditional:  # a position for the reduce-only stop to protect
        assert gw.place(intent("pos", type="market", price=None)).status == "sent"
    old = intent("old", **({**kw, "stop_price": 28_000.0} if conditional else {"price": 25_000.0}))
    assert gw.place(old).status == "sent"
    new = intent("new", cancel_first="old",
                 **({**kw, "stop_price": 28_500.0} if conditional else {"price": 26_000.0}))
    cancel, place = gw.execute(new)
    assert (cancel.intent_id, cancel.client_order_id, cancel.status) == (
        "old:cancel", "old", "canceled")
    assert place.status == "sent" and place.intent_id == "new:place"
    orders = by_cid(fx)
    assert orders["old"]["status"] == "CANCELED" and orders["new"]["status"] == "NEW"
    assert_once(fx)


def test_replace_of_a_filled_order_is_skipped(fx) -> None:
    gw = gateway(fx)
    assert gw.place(intent("old", price=29_950.0)).status == "sent"
    fx.step()
    assert by_cid(fx)["old"]["status"] == "FILLED"
    n_req = len(order_posts(fx))
    cancel, place = gw.execute(intent("new", price=29_900.0, cancel_first="old"))
    assert cancel.status == "not_found"
    assert place.status == "skipped" and place.attempts == 0 and "old" in place.error
    assert "new" not in fx.accepted_client_ids()
    assert len(order_posts(fx)) == n_req + 1  # the DELETE only


# --- a moved stop (cancel_after) ------------------------------------------------------

@pytest.mark.parametrize("refused", [False, True])
def test_moved_stop_cancels_the_old_one_only_once_the_new_one_rests(fx, refused) -> None:
    gw = gateway(fx)
    stop = {"type": "stop_market", "side": "sell", "price": None, "amount": 0.01,
            "reduce_only": True}
    assert gw.place(intent("pos", type="market", price=None)).status == "sent"
    assert gw.place(intent("sl1", stop_price=28_000.0, **stop)).status == "sent"
    if refused:  # the exchange refuses the new stop (-2019): the old one must stay
        fx.set_faults(FaultPlan(seed=1, script=[("reject", "/algoOrder")]))
    n_req = len(order_posts(fx))
    place, cancel = gw.execute(intent("sl2", stop_price=28_500.0, cancel_after="sl1", **stop))
    assert (cancel.intent_id, cancel.client_order_id, cancel.action) == (
        "sl1:cancel-after:sl2", "sl1", "cancel")
    orders = by_cid(fx)
    if refused:
        assert place.status == "rejected" and "InsufficientFunds" in place.error
        assert cancel.status == "skipped" and cancel.attempts == 0 and "sl2" in cancel.error
        assert orders["sl1"]["status"] == "NEW" and "sl2" not in orders
        assert len(order_posts(fx)) == n_req + 1  # the refused POST only, no DELETE
    else:
        assert (place.status, cancel.status) == ("sent", "canceled")
        assert orders["sl1"]["status"] == "CANCELED" and orders["sl2"]["status"] == "NEW"
    assert_once(fx)


def test_an_intent_replaces_one_way_only() -> None:
    with pytest.raises(ValueError, match="not both"):
        intent("x", cancel_first="a", cancel_after="b")


def test_gateway_repr_hides_the_exchange(fx) -> None:
    gw = gateway(fx)
    assert "test-key" not in repr(gw) and "test-secret" not in repr(gw)
    assert Counter() == Counter({k: v for k, v in fx.accepted_client_ids().items() if v > 1})
