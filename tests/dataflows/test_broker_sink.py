"""Broker sink: idempotent order sending journaled in SQLite, against the local fake
Binance USDT-M exchange over HTTP (real ccxt, real Bytewax, no mocks)."""

from __future__ import annotations

import logging
import random
from collections import Counter
from types import SimpleNamespace

import bytewax.operators as op
import numpy as np
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource, run_main
from pydantic import SecretStr

from gridflow.config.live import ExchangeConfig, LiveConfig, RetryConfig
from gridflow.dataflows.broker_sink import BrokerSink, BrokerWriter, build_gateway
from gridflow.events import OrderIntent, OrderOutcome
from gridflow.exchange.client import make_exchange
from gridflow.exchange.gateway import OrderGateway
from gridflow.fakex import FakeExchange, FaultPlan
from gridflow.journal.broker_rows import (
    BROKER_TERMINAL,
    broker_begin,
    broker_finish,
    read_broker,
)
from gridflow.journal.store import open_store

H = 3_600_000
T0 = 1_699_992_000_000
START = T0 + 10 * H
PRICES = {"BTC/USDT": 30_000.0, "ETH/USDT": 2_000.0, "SOL/USDT": 50.0}
FAST = RetryConfig(max_attempts=8, base_delay_s=0.001, max_delay_s=0.01)
RUN = "broker-test"
#: What ccxt raises for each request fault kind of the fake exchange.
FAULT_CLASS = {"timeout_after": "RequestTimeout", "timeout_before": "RequestTimeout",
               "rate_limit": "DDoSProtection", "server_error": "ExchangeNotAvailable",
               "drop_after": "NetworkError", "drop_before": "NetworkError",
               "reject": "InsufficientFunds"}


def walk(price: float, n: int, seed: int) -> np.ndarray:
    """Random-walk candles, 1.5 % hourly steps, ranges 0.6 % beyond the body."""
    rng = np.random.default_rng(seed)
    close = price * np.exp(np.cumsum(rng.normal(0.0, 0.015, n)))
    open_ = np.concatenate([[price], close[:-1]])
    ts = T0 + np.arange(n, dtype=np.float64) * H
    hi = np.maximum(open_, close) * 1.006
    lo = np.minimum(open_, close) * 0.994
    return np.column_stack([ts, open_, hi, lo, close, np.full(n, 100.0)])


def make_fx(api_key: str = "test-key", secret: str = "test-secret", seed: int = 3,
            n: int = 80) -> FakeExchange:
    fx = FakeExchange(candles={s: walk(p, n, seed + i) for i, (s, p) in enumerate(PRICES.items())},
                      timeframe="1h", start_ms=START, api_key=api_key, secret=secret)
    fx.start()
    return fx


@pytest.fixture
def fx():
    ex = make_fx()
    yield ex
    ex.stop()


def live_cfg(fx: FakeExchange, api_key: str = "test-key", secret: str = "test-secret",
             retry: RetryConfig = FAST) -> LiveConfig:
    return LiveConfig(exchange=ExchangeConfig(
        api_key=SecretStr(api_key), secret=SecretStr(secret), urls=fx.ccxt_urls(),
        timeout_ms=200, rate_limit_ms=0), retry=retry)


def gateway(fx: FakeExchange) -> OrderGateway:
    """Order requests time out after 200 ms; the markets load with a generous timeout
    (a busy machine must not fail the setup)."""
    live = live_cfg(fx)
    ex = make_exchange(live.exchange.model_copy(update={"timeout_ms": 10_000}))
    ex.load_markets()
    ex.timeout = live.exchange.timeout_ms
    return OrderGateway(ex, "swap", FAST, rng=random.Random(2))


def cfg(tmp_path, live: LiveConfig) -> SimpleNamespace:
    return SimpleNamespace(db_url=f"sqlite:///{tmp_path / 'journal.db'}", run_id=RUN, live=live)


def intent(cid: str, action: str = "place", **kw) -> OrderIntent:
    d = {"intent_id": f"{cid}:{action}", "action": action, "account": "acc",
         "symbol": "BTC/USDT", "client_order_id": cid, "tag": "L0", "ts_ms": START,
         "side": "buy", "type": "limit", "price": 20_000.0, "amount": 0.01}
    d.update(kw)
    return OrderIntent(**d)


def run_sink(sink: BrokerSink, intents: list[OrderIntent]) -> None:
    flow = Dataflow("broker_sink_test")
    items = op.input("in", flow, TestingSource(intents))
    op.output("out", op.map("key", items, lambda it: ("broker", it)), sink)
    run_main(flow)


def writes(fx: FakeExchange) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in fx.request_log if r["method"] in ("POST", "DELETE")]


def statuses(db_url: str) -> dict[str, str]:
    return {r["intent_id"]: r["status"] for r in read_broker(db_url, RUN)}


def begun_before_a_crash(db_url: str, intents: list[OrderIntent]) -> None:
    """Write-ahead rows ``sending`` for ``intents``, as a process killed mid-send left
    them."""
    engine = open_store(db_url)
    for it in intents:
        broker_begin(engine, RUN, OrderOutcome(
            intent_id=it.intent_id, client_order_id=it.client_order_id, action=it.action,
            account="acc", symbol=it.symbol, status="sending"))
    engine.dispose()


def order_statuses(fx: FakeExchange) -> dict[str, str]:
    """The exchange's orders: client id -> status."""
    return {o["clientOrderId"]: o["status"] for o in fx.orders()}


def assert_once(fx: FakeExchange) -> None:
    counts = fx.accepted_client_ids()
    assert not counts or max(counts.values()) == 1, counts.most_common(3)


# --- the journal table ----------------------------------------------------------------

def test_broker_rows_write_ahead_then_finish(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'j.db'}"
    engine = open_store(url)
    out = OrderOutcome(intent_id="a:place", client_order_id="a", action="place", account="x",
                       symbol="BTC/USDT", tag="L1", status="sending", ts_ms=5)
    assert broker_begin(engine, RUN, out) is None
    assert broker_begin(url, RUN, out.model_copy(update={"status": "sent"})) == "sending"
    done = out.model_copy(update={"status": "sent", "exchange_order_id": "77", "attempts": 3,
                                  "faults": ["RequestTimeout", "NetworkError"], "ts_ms": 9})
    broker_finish(engine, RUN, done)
    assert broker_begin(engine, RUN, out) == "sent"
    (row,) = read_broker(url, RUN)
    assert OrderOutcome(**row) == done
    assert read_broker(url, "other-run") == []
    engine.dispose()


# --- the sink -------------------------------------------------------------------------

def test_replayed_intents_are_sent_once(fx, tmp_path) -> None:
    gw = gateway(fx)
    c = cfg(tmp_path, live_cfg(fx))
    intents = [
        intent("a1"), intent("a2", side="sell", price=40_000.0),
        intent("s1", type="stop_market", side="sell", price=None, stop_price=20_000.0),
        intent("a3", price=21_000.0, cancel_first="a1"),
        intent("a2", action="cancel", side="sell"),
        intent("e1", symbol="ETH/USDT", price=1_000.0, amount=0.1),
        intent("tiny", amount=0.0001),
    ]
    run_sink(BrokerSink(c, gateway=gw), intents[:3])  # "crash" after three
    run_sink(BrokerSink(c, gateway=gw), intents)      # replay from the start
    first = read_broker(c.db_url, RUN)
    n_writes = len(writes(fx))
    run_sink(BrokerSink(c, gateway=gw), intents)      # and once more
    assert read_broker(c.db_url, RUN) == first
    assert len(writes(fx)) == n_writes
    assert statuses(c.db_url) == {
        "a1:place": "sent", "a2:place": "sent", "s1:place": "sent", "a1:cancel": "canceled",
        "a3:place": "sent", "a2:cancel": "canceled", "e1:place": "sent", "tiny:place": "rejected"}
    assert_once(fx)


def test_sending_row_of_an_order_the_exchange_has_is_not_resent(fx, tmp_path) -> None:
    gw = gateway(fx)
    c = cfg(tmp_path, live_cfg(fx))
    have = intent("h1")
    have_stop = intent("h2", type="stop_market", side="sell", price=None, stop_price=20_000.0)
    lost = intent("h3")  # the crash came before the request left
    for it in (have, have_stop):
        assert gw.place(it).status == "sent"
    begun_before_a_crash(c.db_url, [have, have_stop, lost])
    before = len(writes(fx))
    run_sink(BrokerSink(c, gateway=gw), [have, have_stop, lost])
    rows = {r["intent_id"]: r for r in read_broker(c.db_url, RUN)}
    assert rows["h1:place"]["status"] == rows["h2:place"]["status"] == "sent"
    assert rows["h1:place"]["exchange_order_id"] and rows["h1:place"]["attempts"] == 1
    assert rows["h3:place"]["status"] == "sent" and rows["h3:place"]["attempts"] == 2
    assert writes(fx)[before:] == [("POST", "/fapi/v1/order")]  # h3 only
    assert_once(fx)


def test_rows_an_earlier_process_left_sending_are_resolved_when_not_asked_again(
        fx, tmp_path) -> None:
    """A restarted engine may not decide again what it had decided before the crash: the
    write-ahead rows of those intents are looked up by client id once the writer has
    run ``abandon_after_s`` and resolved as the exchange says (``sent`` / ``skipped``
    for a place, ``canceled`` / ``skipped`` for a cancel), never sent; a row whose
    intent does come again is carried out as usual first."""
    import time

    gw = gateway(fx)
    c = cfg(tmp_path, live_cfg(fx))
    have = intent("a1")
    have_stop = intent("a2", tag="SL", type="stop_market", side="sell", price=None,
                       stop_price=20_000.0)
    lost = intent("a3")
    still_open, gone = intent("a4"), intent("a5")
    again = intent("a6")
    for it in (have, have_stop, still_open, gone):
        assert gw.place(it).status == "sent"
    assert gw.cancel(intent("a5", action="cancel")).status == "canceled"
    engine = open_store(c.db_url)
    rows = [(it, "place") for it in (have, have_stop, lost, again)] + [
        (still_open, "cancel"), (gone, "cancel")]
    for it, action in rows:
        broker_begin(engine, RUN, OrderOutcome(
            intent_id=f"{it.client_order_id}:{action}", client_order_id=it.client_order_id,
            action=action, account="acc", symbol=it.symbol, tag=it.tag, status="sending",
            ts_ms=1))
    engine.dispose()
    writer = BrokerWriter(c.db_url, RUN, gateway=gw, abandon_after_s=30.0)
    try:
        before = len(writes(fx))
        writer.handle_batch([again])  # the replay asks for a6 again: placed now
        assert writer.sweep() == []  # not due yet
        outs = writer.sweep(now=time.monotonic() + 31.0)
        assert writer.sweep(now=time.monotonic() + 62.0) == []  # nothing left
    finally:
        writer.close()
    assert writes(fx)[before:] == [("POST", "/fapi/v1/order")]  # a6 only
    got = statuses(c.db_url)
    assert got == {"a1:place": "sent", "a2:place": "sent", "a3:place": "skipped",
                   "a6:place": "sent", "a4:cancel": "skipped", "a5:cancel": "canceled"}
    assert {o.intent_id for o in outs} == set(got) - {"a6:place"}
    assert all("abandoned" in o.error for o in outs if o.status == "skipped")
    assert_once(fx)


def test_sending_cancel_row_and_half_done_replacement(fx, tmp_path) -> None:
    gw = gateway(fx)
    c = cfg(tmp_path, live_cfg(fx))
    for cid in ("k1", "r1"):
        assert gw.place(intent(cid)).status == "sent"
    # k1's cancel went out before the crash; the replacement of r1 died after its cancel
    assert gw.cancel(intent("k1", action="cancel")).status == "canceled"
    assert gw.cancel(intent("r1", action="cancel")).status == "canceled"
    repl = intent("r2", price=19_000.0, cancel_first="r1")
    begun_before_a_crash(c.db_url, [intent("k1", action="cancel"), repl,
                                     gw.replaced_cancel(repl)])
    run_sink(BrokerSink(c, gateway=gw), [intent("k1", action="cancel"), repl])
    assert statuses(c.db_url) == {"k1:cancel": "canceled", "r1:cancel": "canceled",
                                  "r2:place": "sent"}
    assert fx.accepted_client_ids()["r2"] == 1
    assert_once(fx)


def test_replacement_found_sent_resolves_its_cancel_row(fx, tmp_path) -> None:
    """The crash came after the replacement was sent, before the batch's outcomes were
    journaled: both rows say ``sending``. The lookup finds the replacement, and the old
    order's cancel row is resolved too (not left ``sending`` forever)."""
    gw = gateway(fx)
    c = cfg(tmp_path, live_cfg(fx))
    assert gw.place(intent("o1")).status == "sent"
    assert gw.cancel(intent("o1", action="cancel")).status == "canceled"
    repl = intent("o2", price=19_500.0, cancel_first="o1")
    assert gw.place(repl).status == "sent"
    begun_before_a_crash(c.db_url, [repl, gw.replaced_cancel(repl)])
    before = len(writes(fx))
    run_sink(BrokerSink(c, gateway=gw), [repl])
    assert statuses(c.db_url) == {"o1:cancel": "canceled", "o2:place": "sent"}
    assert writes(fx)[before:] == []  # lookups only
    assert_once(fx)


def test_replacement_of_a_filled_order_is_skipped(fx, tmp_path) -> None:
    gw = gateway(fx)
    c = cfg(tmp_path, live_cfg(fx))
    px = fx.state()["orders"] and 0 or float(walk(30_000.0, 80, 3)[10, 1])
    run_sink(BrokerSink(c, gateway=gw), [intent("f1", price=round(px * 1.001, 1))])  # marketable
    run_sink(BrokerSink(c, gateway=gw), [intent("f2", price=round(px * 0.9, 1), cancel_first="f1")])
    assert statuses(c.db_url) == {"f1:place": "sent", "f1:cancel": "not_found",
                                  "f2:place": "skipped"}
    assert "f2" not in fx.accepted_client_ids()


def test_sink_builds_its_exchange_from_config(fx, tmp_path) -> None:
    c = cfg(tmp_path, live_cfg(fx))
    sink = BrokerSink(c)
    assert sink.gateway is None and "test-secret" not in repr(sink)
    run_sink(sink, [intent("cfg1"), intent("cfg1")])
    assert statuses(c.db_url) == {"cfg1:place": "sent"}
    assert_once(fx)


# --- soak -----------------------------------------------------------------------------

def soak_intents(rng: random.Random, fx: FakeExchange, seed: int, open_orders: list[OrderIntent],
                 k: int, n: int) -> list[OrderIntent]:
    """``n`` random intents: limit and stop places, cancels, replacements, re-emissions."""
    out: list[OrderIntent] = []
    idx = (fx.now_ms() - T0) // H
    for i in range(k, k + n):
        sym = rng.choice(list(PRICES))
        cur = float(walk(PRICES[sym], 80, seed + list(PRICES).index(sym))[idx, 1])
        r = rng.random()
        if r < 0.10 and out:
            out.append(rng.choice(out))  # a re-emitted intent (replay)
            continue
        if r < 0.40 or not open_orders:
            side = rng.choice(["buy", "sell"])
            off = rng.uniform(0.002, 0.04) * (-1 if side == "buy" else 1)
            it = intent(f"q{i}", symbol=sym, side=side, price=cur * (1 + off),
                        amount=rng.uniform(20, 200) / cur)
        elif r < 0.55:
            side = rng.choice(["buy", "sell"])
            off = rng.uniform(0.01, 0.05) * (1 if side == "buy" else -1)
            it = intent(f"q{i}", symbol=sym, side=side, type="stop_market", price=None,
                        stop_price=cur * (1 + off), amount=rng.uniform(20, 200) / cur)
        elif r < 0.75:
            old = open_orders.pop(rng.randrange(len(open_orders)))
            it = old.model_copy(update={"intent_id": f"{old.client_order_id}:cancel",
                                        "action": "cancel"})
        else:
            old = open_orders.pop(rng.randrange(len(open_orders)))
            px = {"price": (old.price or cur) * rng.uniform(0.99, 1.01)} if old.price else {
                "stop_price": old.stop_price * rng.uniform(0.99, 1.01)}
            it = old.model_copy(update={"intent_id": f"q{i}:place", "client_order_id": f"q{i}",
                                        "cancel_first": old.client_order_id, **px})
        if it.action == "place":
            open_orders.append(it)
        out.append(it)
    return out


@pytest.mark.parametrize("lanes", [1, 3])
def test_soak_random_faults(tmp_path, lanes) -> None:
    """≥ 500 random intents under request faults: one at a time on one lane, or in
    batches of 40 on three lanes (one per symbol, side by side)."""
    fx = make_fx(seed=11)
    try:
        gw = gateway(fx)  # markets loaded before the faults start
        live = live_cfg(fx)
        writer = BrokerWriter(f"sqlite:///{tmp_path / 'soak.db'}", RUN, lanes=lanes,
                              gateway_factory=lambda first: gw if first is None else
                              build_gateway(live, markets_from=first))
        fx.set_faults(FaultPlan(seed=5, timeout_after=0.05, timeout_before=0.04,
                                rate_limit=0.06, server_error=0.06, drop_after=0.06,
                                drop_before=0.06, reject=0.05, partial_fill=0.1,
                                apply_to=("order_write", "read"), hang_s=0.4))
        rng, open_orders, sent = random.Random(9), [], []
        for k in range(0, 520, 40):
            batch = soak_intents(rng, fx, 11, open_orders, k, 40)
            if lanes == 1:
                for it in batch:
                    writer.handle(it)
            else:
                writer.handle_batch(batch)
            sent += batch
            fx.step()
        writer.close()
        rows = read_broker(f"sqlite:///{tmp_path / 'soak.db'}", RUN)
        fault_log = [f for f in fx.fault_log if f["kind"] != "partial_fill"]
    finally:
        fx.stop()
    assert len(sent) >= 500
    assert_once(fx)
    by_id = {r["intent_id"]: r for r in rows}
    expected_ids = {it.intent_id for it in sent} | {
        f"{it.cancel_first}:cancel" for it in sent if it.cancel_first}
    assert expected_ids <= set(by_id)
    assert all(r["status"] in BROKER_TERMINAL for r in rows)
    assert all(r["attempts"] >= len(r["faults"]) for r in rows)
    # every injected request fault is journaled as its ccxt class, on the same client id
    journaled: dict[str, Counter] = {}
    for r in rows:
        journaled.setdefault(r["client_order_id"], Counter()).update(r["faults"])
    injected: dict[str, Counter] = {}
    for f in fault_log:  # a batch request's fault is every one of its orders'
        for cid in f.get("client_order_ids") or [f["client_order_id"]]:
            injected.setdefault(cid, Counter())[FAULT_CLASS[f["kind"]]] += 1
    assert None not in injected
    assert any(f.get("client_order_ids") for f in fault_log) == (lanes > 1)  # batches met
    for cid, want in injected.items():
        assert want <= journaled.get(cid, Counter()), (cid, want, journaled.get(cid))
    kinds = Counter(f["kind"] for f in fault_log)
    assert set(kinds) == set(FAULT_CLASS) and sum(kinds.values()) > 100
    st = Counter(r["status"] for r in rows)
    assert st["sent"] > 200 and st["canceled"] > 50 and st["rejected"] > 5


# --- secrets --------------------------------------------------------------------------

def test_no_secret_in_rows_logs_or_errors(tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="gridflow")
    key, secret = "AKIA-TEST-KEY", "SUPER-SECRET-VALUE"
    fx = make_fx(api_key=key, secret=secret)
    texts: list[str] = []
    try:
        good = cfg(tmp_path, live_cfg(fx, key, secret))
        sink = BrokerSink(good)
        run_sink(sink, [intent("p0")])  # loads the markets without faults
        fx.set_faults(FaultPlan(seed=2, timeout_after=0.15, timeout_before=0.1,
                                rate_limit=0.15, server_error=0.15, drop_after=0.15,
                                reject=0.1, apply_to=("order_write", "read"), hang_s=0.4))
        run_sink(BrokerSink(good), [intent(f"p{i}") for i in range(1, 15)])
        # wrong secret: AuthenticationError (-1022) on every signed request
        fx.set_faults(None)
        bad = SimpleNamespace(db_url=good.db_url, run_id=RUN,
                              live=live_cfg(fx, key, "WRONG-" + secret[::-1]))
        run_sink(BrokerSink(bad), [intent(f"w{i}") for i in range(3)])
        gw = build_gateway(bad.live)
        with pytest.raises(Exception) as err:
            gw.find("w0", "BTC/USDT", False)
        texts += [str(err.value), repr(err.value)]
        fx.set_faults(FaultPlan(seed=1, rate_limit=1.0, apply_to=("read",)))
        with pytest.raises(RuntimeError) as err2:
            build_gateway(live_cfg(fx, key, secret, RetryConfig(max_attempts=2, base_delay_s=0)))
        texts += [str(err2.value), repr(err2.value), repr(sink), repr(gw)]
    finally:
        fx.stop()
    rows = read_broker(good.db_url, RUN)
    st = Counter(r["status"] for r in rows)
    assert st["sent"] >= 5
    wrong = [r for r in rows if r["client_order_id"].startswith("w")]
    assert len(wrong) == 3
    assert all(r["status"] == "rejected" and "AuthenticationError" in r["error"] for r in wrong)
    assert sum(len(r["faults"]) for r in rows) > 5
    blob = "\n".join([repr(rows), caplog.text, *texts])
    assert "AuthenticationError" in caplog.text
    for s in (key, secret, secret[::-1]):
        assert s not in blob


def test_a_cancel_met_twice_in_a_batch_keeps_every_fault_in_its_row(fx, tmp_path) -> None:
    """A batch with a cancel of an order and a replacement of the same order: the cancel
    runs once on the exchange (faulted twice here), the replacement only looks it up;
    the one row of that cancel keeps the faults of both requests."""
    gw = gateway(fx)
    c = cfg(tmp_path, live_cfg(fx))
    assert gw.place(intent("d1")).status == "sent"
    fx.set_faults(FaultPlan(script=[("server_error", "DELETE /fapi/v1/order"),
                                    ("rate_limit", "DELETE /fapi/v1/order")]))
    writer = BrokerWriter(c.db_url, RUN, gateway=gw)
    try:
        outs = writer.handle_batch([intent("d1", action="cancel"),
                                    intent("d2", price=19_000.0, cancel_first="d1")])
    finally:
        writer.close()
    row = {r["intent_id"]: r for r in read_broker(c.db_url, RUN)}["d1:cancel"]
    assert row["status"] == "canceled"
    assert Counter(row["faults"]) == Counter({"ExchangeNotAvailable": 1, "DDoSProtection": 1})
    assert [o.intent_id for o in outs].count("d1:cancel") == 1
    assert statuses(c.db_url)["d2:place"] == "sent"
    assert_once(fx)
