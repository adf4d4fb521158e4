"""Broker lanes: symbols side by side, each symbol's intents in order, no opening order
ahead of an earlier margin-freeing one; the shared rate limit; a batch in two commits
(real ccxt against the local exchange)."""

from __future__ import annotations

import threading
from collections import Counter
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event

from gridflow.dataflows.broker_lanes import (
    LaneError,
    LaneRunner,
    closes,
    frees_margin,
    lane_key,
    plan_lanes,
    protective,
    waits_for_margin,
)
from gridflow.dataflows.broker_sink import BrokerWriter, build_gateway
from gridflow.events import OrderIntent
from gridflow.exchange.client import SharedThrottle
from gridflow.journal.broker_rows import BROKER_TERMINAL, read_broker
from gridflow.journal.store import open_store

from test_broker_sink import RUN, assert_once, gateway, intent, live_cfg, make_fx

SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
KINDS = ("entry", "tp", "stop", "cancel", "replace", "tp_cancel", "close")


def make(i: int, symbol: str, kind: str) -> OrderIntent:
    """A small intent of each kind, for the planning tests (never sent)."""
    kw = {"symbol": symbol}
    if kind == "tp":
        kw.update(side="sell", reduce_only=True, tag="TP")
    elif kind == "stop":
        kw.update(side="sell", type="stop_market", price=None, stop_price=1.0, reduce_only=True,
                  tag="SL")
    elif kind == "cancel":
        kw.update(action="cancel")
    elif kind == "tp_cancel":
        kw.update(action="cancel", side="sell", reduce_only=True, tag="TP")
    elif kind == "close":
        kw.update(side="sell", type="market", price=None, reduce_only=True, tag="CLOSE")
    elif kind == "replace":
        kw.update(cancel_first=f"old{i}")
    return intent(f"c{i}", **kw)


batches = st.lists(st.tuples(st.sampled_from(SYMBOLS), st.sampled_from(KINDS)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(batch=batches, n_lanes=st.integers(1, 4))
def test_plan_keeps_symbol_order_and_margin_order(batch, n_lanes) -> None:
    intents = [make(i, s, k) for i, (s, k) in enumerate(batch)]
    runner = LaneRunner(n_lanes)
    plan = plan_lanes(intents, runner.lane_of)
    placed = sorted(i for idx in plan.lanes.values() for i in idx)
    assert placed == list(range(len(intents)))
    lane = {i: k for k, idx in plan.lanes.items() for i in idx}
    for k, idx in plan.lanes.items():
        assert list(idx) == sorted(idx)
        assert len({runner.lane_of(lane_key(intents[i])) for i in idx}) == 1
    for key in {lane_key(it) for it in intents}:  # one chain, one lane
        assert len({lane[i] for i, it in enumerate(intents) if lane_key(it) == key}) == 1
    for i, it in enumerate(intents):
        waits = set(plan.waits.get(i, ()))
        if closes(it):  # the latest earlier intent of its TP and SL chains, other lanes
            want = {}
            for j in range(i):
                if lane_key(intents[j]) in (f"{it.symbol}|TP", f"{it.symbol}|SL"):
                    want[lane_key(intents[j])] = j
            assert waits == {j for j in want.values() if lane[j] != lane[i]}
            continue
        if not waits_for_margin(it):  # a cancel, a reduce-only place, a replacement
            assert not waits
            continue
        # the latest earlier margin-freeing intent of every other lane, and only those
        want = {}
        for j in range(i):
            if lane[j] != lane[i] and frees_margin(intents[j]):
                want[lane[j]] = j
        assert waits == set(want.values())


def meeting(ids: tuple[str, ...], log: list[tuple[str, str]]):
    """A lane ``work`` that logs each intent's start and end and makes the intents
    ``ids`` meet at a barrier: it breaks unless they run at the same time."""
    meet = threading.Barrier(len(ids), timeout=10)
    lock = threading.Lock()

    def work(lane: int, k: int, it: OrderIntent) -> str:
        with lock:
            log.append(("start", it.client_order_id))
        if it.client_order_id in ids:
            meet.wait()
        with lock:
            log.append(("end", it.client_order_id))
        return it.client_order_id

    return work


def test_runner_runs_lanes_side_by_side_and_orders_margin() -> None:
    """Two symbols' entries meet at a barrier: only lanes running at once pass it. The
    ETH entry after a BTC cancel starts only after that cancel ended."""
    log: list[tuple[str, str]] = []
    # a BrokenBarrierError if the two lanes ran one after the other
    work = meeting(("c0", "c1"), log)
    runner = LaneRunner(4)
    batch = [make(0, "BTC/USDT", "entry"), make(1, "ETH/USDT", "entry"),
             make(2, "BTC/USDT", "cancel"), make(3, "ETH/USDT", "entry"),
             make(4, "SOL/USDT", "tp")]
    try:
        assert runner.run(batch, work) == ["c0", "c1", "c2", "c3", "c4"]
    finally:
        runner.close()
    assert log.index(("end", "c2")) < log.index(("start", "c3"))


def test_replacements_of_several_symbols_run_side_by_side() -> None:
    """A candle close that moves every level: each symbol's replacements (old order
    cancelled first on its own lane) run at once with the other symbols'; a new entry
    after them still waits for the other lanes' margin-freeing intents."""
    log: list[tuple[str, str]] = []
    work = meeting(("c1", "c3", "c5"), log)  # the second replacement of each symbol at once
    runner = LaneRunner(4)
    batch = [make(i, s, "replace") for i, s in enumerate(
        ["BTC/USDT", "BTC/USDT", "ETH/USDT", "ETH/USDT", "SOL/USDT", "SOL/USDT"])]
    batch.append(make(6, "SOL/USDT", "entry"))
    batch.append(make(7, "ETH/USDT", "entry"))
    try:
        assert runner.run(batch, work) == [f"c{i}" for i in range(8)]
    finally:
        runner.close()
    assert log.index(("end", "c5")) < log.index(("start", "c7"))  # ETH's entry waited
    assert log.index(("end", "c1")) < log.index(("start", "c7"))


def test_a_later_batch_does_not_wait_for_an_earlier_one_on_other_lanes() -> None:
    """A fill's take profit (batch 2, SOL) goes out while the candle's batch (1) still
    runs on the BTC lane, and so does BTC's own take profit (a lane of its own); BTC's
    replacement of an entry waits for BTC's cancel before it, and a new ETH entry of
    batch 2 for that BTC cancel of batch 1 (the margin rule across batches)."""
    held, log = threading.Event(), []
    lock = threading.Lock()

    def work(lane: int, k: int, it: OrderIntent) -> str:
        with lock:
            log.append(("start", it.client_order_id))
        if it.client_order_id == "c0":
            assert held.wait(10)
        with lock:
            log.append(("end", it.client_order_id))
        return it.client_order_id

    runner = LaneRunner(4)
    try:
        first = runner.submit([make(0, "BTC/USDT", "cancel"), make(1, "BTC/USDT", "replace")],
                              work)
        second = runner.submit([make(2, "SOL/USDT", "tp"), make(3, "BTC/USDT", "tp"),
                                make(4, "ETH/USDT", "entry")], work)
        for _ in range(200):  # the take profits end while c0 is held
            if ("end", "c2") in log and ("end", "c3") in log:
                break
            threading.Event().wait(0.01)
        assert ("end", "c2") in log and ("end", "c3") in log
        assert not first.done() and not second.done()
        assert ("start", "c1") not in log and ("start", "c4") not in log
        held.set()
        assert first.wait() == ["c0", "c1"]
        assert second.wait() == ["c2", "c3", "c4"]
        runner.drain()
    finally:
        held.set()
        runner.close()
    assert log.index(("end", "c0")) < log.index(("start", "c1"))  # BTC's entries in order
    assert log.index(("end", "c0")) < log.index(("start", "c4"))  # margin order kept


def test_a_lane_serves_protective_intents_first_each_class_in_order() -> None:
    """Queued behind a held entry: entries and a stop's chain (place, replacement,
    cancel) of one symbol. The stop's chain goes first, in its order; the entries after,
    in theirs; a market close stays with the entries (behind the cancels before it)."""
    held, started, log = threading.Event(), threading.Event(), []

    def work(lane: int, k: int, it: OrderIntent) -> str:
        if it.client_order_id == "e0":
            started.set()
            assert held.wait(10)
        log.append(it.client_order_id)
        return it.client_order_id

    stop = {"side": "sell", "type": "stop_market", "price": None, "stop_price": 1.0,
            "reduce_only": True, "tag": "PROTECT"}  # a stop that shares the symbol's lane
    runner = LaneRunner(2)
    try:
        runner.submit([intent("e0")], work)
        assert started.wait(10)
        runner.submit([intent("e1"), intent("s1", **stop)], work)
        runner.submit([intent("e1", action="cancel"),
                       intent("s2", cancel_after="s1", **stop),
                       intent("close", type="market", price=None, side="sell",
                              reduce_only=True, tag="CLOSE"),
                       intent("s2", action="cancel", **stop)], work)
        held.set()
        runner.drain()
    finally:
        held.set()
        runner.close()
    assert log == ["e0", "s1", "s2", "s2", "e1", "e1", "close"]
    assert [protective(intent("x", **stop)), protective(intent("x"))] == [True, False]


def test_an_entry_whose_margin_is_held_does_not_wait_for_other_lanes() -> None:
    batch = [make(0, "BTC/USDT", "cancel"), intent("c1", symbol="ETH/USDT"),
             intent("c2", symbol="ETH/USDT", margin_held=True)]
    plan = plan_lanes(batch, {"BTC/USDT": 0, "ETH/USDT": 1}.__getitem__)
    assert plan.waits == {1: (0,)}
    assert [waits_for_margin(i) for i in batch] == [False, True, False]


def fail_at_c0(lane: int, k: int, it: OrderIntent) -> str:
    """A lane's work that fails on intent ``c0`` (the journal gone)."""
    if it.client_order_id == "c0":
        raise OSError("journal gone")
    return it.client_order_id


def test_after_a_lane_failed_later_batches_are_refused_and_drain_raises() -> None:
    runner = LaneRunner(2)
    try:
        with pytest.raises(LaneError):
            runner.submit([make(0, "BTC/USDT", "entry")], fail_at_c0).wait()
        with pytest.raises(LaneError) as err:
            runner.drain()
        assert isinstance(err.value.__cause__, OSError)
        with pytest.raises(LaneError):
            runner.submit([make(1, "ETH/USDT", "entry")], fail_at_c0)
    finally:
        runner.close()


def test_a_failing_lane_releases_the_others_and_reports() -> None:
    runner = LaneRunner(3)
    batch = [make(0, "BTC/USDT", "cancel"), make(1, "BTC/USDT", "entry"),
             make(2, "ETH/USDT", "entry"), make(3, "SOL/USDT", "tp")]
    with pytest.raises(LaneError) as err:
        runner.run(batch, fail_at_c0)
    runner.close()
    assert isinstance(err.value.__cause__, OSError)
    assert err.value.results[0] is None and err.value.results[1] is None  # BTC lane stopped
    assert err.value.results[3] in ("c3", None)  # ran unless it came after the failure
    with pytest.raises(ValueError, match="max_lanes"):
        LaneRunner(0)


def test_writer_sends_a_multi_symbol_batch_on_lanes_in_two_commits(tmp_path) -> None:
    fx = make_fx()
    live = live_cfg(fx)
    first = gateway(fx)

    def factory(source):
        return first if source is None else build_gateway(live, markets_from=source)

    url = f"sqlite:///{tmp_path / 'lanes.db'}"
    engine = open_store(url)
    commits: list[int] = []
    event.listen(engine, "commit", lambda conn: commits.append(1))
    writer = BrokerWriter(engine, RUN, gateway_factory=factory, lanes=3)
    prices = {"BTC/USDT": 20_000.0, "ETH/USDT": 1_000.0, "SOL/USDT": 30.0}
    amounts = {"BTC/USDT": 0.01, "ETH/USDT": 0.1, "SOL/USDT": 2.0}
    batch = []
    for s in SYMBOLS:
        tag = s.split("/")[0]
        batch += [intent(f"{tag}1", symbol=s, price=prices[s], amount=amounts[s]),
                  intent(f"{tag}2", symbol=s, price=prices[s] * 0.99, amount=amounts[s]),
                  intent(f"{tag}3", symbol=s, price=prices[s] * 0.98, amount=amounts[s],
                         cancel_first=f"{tag}1")]
    batch.append(batch[0])  # a replayed intent inside the batch
    try:
        commits.clear()
        outs = writer.handle_batch(batch)
        assert len(commits) == 2  # the write-ahead rows, then the outcomes
        assert len({id(writer._lane_gateway(k)) for k in range(3)}) == 3
        assert writer.handle_batch(batch) == []  # all done: nothing sent again
    finally:
        writer.close()
        engine.dispose()
        fx.stop()
    rows = {r["intent_id"]: r["status"] for r in read_broker(url, RUN)}
    want = {}
    for s in SYMBOLS:
        tag = s.split("/")[0]
        want |= {f"{tag}1:place": "sent", f"{tag}2:place": "sent", f"{tag}1:cancel": "canceled",
                 f"{tag}3:place": "sent"}
    assert rows == want
    assert Counter(o.status for o in outs) == Counter(want.values())
    assert all(st in BROKER_TERMINAL for st in rows.values())
    assert_once(fx)
    status = {o["clientOrderId"]: o["status"] for o in fx.orders()}
    assert {status[c] for c in ("BTC1", "ETH1", "SOL1")} == {"CANCELED"}
    assert {status[c] for c in ("BTC2", "BTC3", "ETH2", "ETH3", "SOL2", "SOL3")} == {"NEW"}


def test_background_partition_returns_before_the_exchange_answers(tmp_path) -> None:
    """The live flow's broker partition: ``write_batch`` returns once the write-ahead
    row is committed, while the exchange (held) has not answered; the epoch's snapshot
    waits for the answer and its journaled outcome."""
    from gridflow.dataflows.broker_sink import BrokerSink

    fx = make_fx()
    url = f"sqlite:///{tmp_path / 'bg.db'}"
    sink = BrokerSink(SimpleNamespace(db_url=url, run_id=RUN, live=live_cfg(fx)),
                      gateway=gateway(fx), background=True)
    part = sink.build_part("broker", "broker", None)
    try:
        with fx._lock:  # the exchange cannot answer an order while this is held
            part.write_batch([intent("bg1")])
            assert {r["intent_id"]: r["status"] for r in read_broker(url, RUN)} == {
                "bg1:place": "sending"}
        part.snapshot()
        assert {r["intent_id"]: r["status"] for r in read_broker(url, RUN)} == {
            "bg1:place": "sent"}
        assert fx.accepted_client_ids() == Counter({"bg1": 1})
    finally:
        part.close()
        fx.stop()


def test_a_bounded_wait_waits_for_a_quick_batch_and_returns_at_the_bound(tmp_path) -> None:
    """``live.broker_wait_max_s``: a batch answered within the bound is waited for (its
    outcome journaled when ``write_batch`` returns); one the exchange holds longer is
    left to its lane at the bound, and the epoch's snapshot waits for it."""
    from gridflow.dataflows.broker_sink import BrokerSink

    fx = make_fx()
    url = f"sqlite:///{tmp_path / 'bound.db'}"
    live = live_cfg(fx).model_copy(update={"broker_wait_max_s": 0.1})
    sink = BrokerSink(SimpleNamespace(db_url=url, run_id=RUN, live=live), gateway=gateway(fx))
    part = sink.build_part("broker", "broker", None)
    try:
        part.write_batch([intent("quick1")])
        assert {r["intent_id"]: r["status"] for r in read_broker(url, RUN)} == {
            "quick1:place": "sent"}
        with fx._lock:  # the exchange cannot answer an order while this is held
            part.write_batch([intent("held1", price=19_000.0)])
            assert {r["intent_id"]: r["status"] for r in read_broker(url, RUN)}[
                "held1:place"] == "sending"
        part.snapshot()
        assert {r["intent_id"]: r["status"] for r in read_broker(url, RUN)} == {
            "quick1:place": "sent", "held1:place": "sent"}
        assert fx.accepted_client_ids() == Counter({"quick1": 1, "held1": 1})
    finally:
        part.close()
        fx.stop()


def test_a_failed_journal_commit_at_a_batch_end_stops_the_runner_unwaited() -> None:
    """A batch nobody waits for (a bounded or no wait): its end's commit fails, and the
    next batch and the drain raise it (the flow stops and recovers)."""
    def fail(batch) -> None:
        raise RuntimeError("journal is gone")

    runner = LaneRunner(2)
    try:
        batch = runner.submit([make(0, "BTC/USDT", "c0")], lambda lane, k, it: k, fail)
        assert batch.finished(10)
        with pytest.raises(LaneError) as err:
            runner.drain()
        assert "journal is gone" in str(err.value.__cause__)
        with pytest.raises(LaneError):
            runner.submit([make(1, "BTC/USDT", "c1")], lambda lane, k, it: k)
    finally:
        runner.close()


def test_a_market_close_waits_for_the_take_profit_cancel_on_its_own_lane() -> None:
    """Flatten: the take profit's cancel (its chain's lane) is held at the exchange; the
    market close (the symbol's lane) starts only once it ended."""
    held, log = threading.Event(), []

    def work(lane: int, k: int, it: OrderIntent) -> str:
        if it.tag == "TP":
            held.wait(10)
        log.append(it.client_order_id)
        return it.client_order_id

    runner = LaneRunner(4)
    try:
        tp_cancel = make(0, "BTC/USDT", "tp_cancel")
        close = make(1, "BTC/USDT", "close")
        assert runner.lane_of(lane_key(tp_cancel)) != runner.lane_of(lane_key(close))
        batch = runner.submit([tp_cancel, close], work)
        assert not batch._done.wait(0.3) and log == []  # the close waits
        held.set()
        assert batch.wait() == ["c0", "c1"]
    finally:
        held.set()
        runner.close()
    assert log == ["c0", "c1"]


def test_every_lane_client_paces_through_one_throttle_with_the_venues_burst() -> None:
    """The broker's lane clients (``build_gateway``) share one throttle at ccxt's pace
    with the venue's burst, or the one set."""
    fx = make_fx()
    try:
        live = live_cfg(fx)
        paced = live.model_copy(update={"exchange": live.exchange.model_copy(
            update={"rate_limit_ms": None})})
        first = build_gateway(paced)
        second = build_gateway(paced, markets_from=first)
        throttle = first.exchange.throttle
        assert isinstance(throttle, SharedThrottle) and second.exchange.throttle is throttle
        assert (throttle.rate_limit_ms, throttle.burst) == (first.exchange.rateLimit, 60.0)
        set_burst = paced.model_copy(update={"exchange": paced.exchange.model_copy(
            update={"rate_limit_burst": 4.0})})
        assert build_gateway(set_burst).exchange.throttle.burst == 4.0
    finally:
        fx.stop()
