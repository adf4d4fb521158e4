"""The broker gathers a symbol's grid-level moves and cancels into batch requests
(:mod:`gridflow.dataflows.broker_batch`): which intents run together on a lane, and a
candle's moves sent as two requests per symbol with the journal rows and exchange
orders a request per order gives (real ccxt against the local exchange)."""

from __future__ import annotations

import threading
import time

import pytest

from test_broker_lanes import make
from test_broker_sink import RUN, assert_once, gateway, intent, live_cfg, make_fx

from gridflow.dataflows.broker_batch import gather_key
from gridflow.dataflows.broker_lanes import LaneRunner
from gridflow.dataflows.broker_sink import BrokerWriter, build_gateway
from gridflow.journal.broker_rows import read_broker
from gridflow.fakex import FaultPlan

BATCH = "/fapi/v1/batchOrders"


def lane_writer(fx, url: str, lanes: int):
    """``(first lane's gateway, writer)``: a writer on ``lanes`` lanes of real ccxt."""
    live, first = live_cfg(fx), gateway(fx)
    return first, BrokerWriter(url, RUN, lanes=lanes, gateway_factory=lambda src: first
                               if src is None else build_gateway(live, markets_from=src))


def test_runner_gathers_runs_of_one_key_on_a_lane_up_to_the_most() -> None:
    """Moves of one symbol follow each other on its lane (another symbol's in between
    in the batch): gathered three at most; a plain entry ends a run; a later entry of
    another symbol waits for the whole group that freed margin before it."""
    groups: list[list[str]] = []
    log: list[tuple[str, str]] = []
    lock = threading.Lock()

    def gather(_i, it):
        return (f"move|{it.symbol}", 3) if it.cancel_first is not None else None

    def work(_lane, _i, it):
        with lock:
            log.append(("one", it.client_order_id))
        return it.client_order_id

    def work_group(_lane, _idx, its):
        with lock:
            groups.append([it.client_order_id for it in its])
            log.append(("group", its[-1].client_order_id))
        return [it.client_order_id for it in its]

    batch = [make(0, "BTC/USDT", "replace"), make(1, "ETH/USDT", "replace"),
             make(2, "BTC/USDT", "replace"), make(3, "BTC/USDT", "replace"),
             make(4, "BTC/USDT", "replace"), make(5, "BTC/USDT", "entry"),
             make(6, "BTC/USDT", "replace"), make(7, "ETH/USDT", "replace"),
             make(8, "SOL/USDT", "entry")]
    runner = LaneRunner(4)
    try:
        out = runner.submit(batch, work, gather=gather, work_group=work_group).wait()
    finally:
        runner.close()
    assert out == [f"c{i}" for i in range(9)]
    assert sorted(groups) == [["c0", "c2", "c3"], ["c1", "c7"]]
    assert ("one", "c4") in log and ("one", "c6") in log  # the fourth move and after the entry
    assert log.index(("group", "c7")) < log.index(("one", "c8"))  # SOL's entry waited


def test_a_gather_that_raises_queues_nothing_and_leaves_nothing_pending() -> None:
    def gather(i, _it):
        if i == 1:
            raise ValueError("bad intent")
        return None

    runner = LaneRunner(2)
    try:
        with pytest.raises(ValueError, match="bad intent"):
            runner.submit([make(0, "BTC/USDT", "replace"), make(1, "ETH/USDT", "replace")],
                          lambda *_: None, gather=gather, work_group=lambda *_: [])
        runner.drain()  # returns: nothing was left waiting
        assert runner.run([make(2, "BTC/USDT", "entry")], lambda _l, _i, it: it.intent_id) == [
            "c2:place"]
    finally:
        runner.close()


def test_a_take_profits_cancel_never_rides_with_an_entrys() -> None:
    """The lanes serve a take profit's or stop's intents before entries: a cancel of
    each class is gathered only with its own class (else an entry's cancel could
    overtake the place of the order it cancels)."""
    fx = make_fx()
    try:
        gw = gateway(fx)
        entry = gather_key(gw, intent("e1", action="cancel"))
        tp = gather_key(gw, intent("t1", action="cancel", side="sell", reduce_only=True,
                                   tag="TP"))
        move = gather_key(gw, intent("e2", cancel_first="e1"))
        stop = gather_key(gw, intent("s1", action="cancel", type="stop_market", price=None,
                                     stop_price=1.0, reduce_only=True, tag="SL"))
    finally:
        fx.stop()
    assert entry is not None and tp is not None and entry[0] != tp[0]
    assert move is not None and move[0] not in (entry[0], tp[0]) and stop is None


def test_writer_sends_a_candles_level_moves_as_two_requests_per_symbol(tmp_path) -> None:
    """Five levels moved on each of two symbols (each old order cancelled first) and two
    levels removed: one batch cancel and one batch place per symbol for the moves, one
    batch cancel for the removals; one of the old orders is already gone, so its
    successor is skipped as when sent alone. The journal rows and the exchange's orders
    are those of one request per order."""
    fx = make_fx()
    first, writer = lane_writer(fx, f"sqlite:///{tmp_path / 'b.db'}", 2)
    px = {"BTC/USDT": 20_000.0, "ETH/USDT": 1_000.0}
    amt = {"BTC/USDT": 0.01, "ETH/USDT": 0.1}
    try:
        old = [intent(f"{s[:3]}o{k}", symbol=s, price=px[s] * (0.99 - 0.01 * k), amount=amt[s])
               for s in px for k in range(6)]
        writer.handle_batch(old)
        first.cancel(intent("ETHo4", action="cancel", symbol="ETH/USDT"))  # gone already
        before = len(fx.request_log)
        moves = [intent(f"{s[:3]}n{k}", symbol=s, price=px[s] * (0.985 - 0.01 * k),
                        amount=amt[s], cancel_first=f"{s[:3]}o{k}")
                 for k in range(5) for s in px]  # interleaved, as the engine emits them
        gone = [intent("BTCo5", action="cancel"), intent("ETHo5", action="cancel",
                                                         symbol="ETH/USDT")]
        outs = writer.handle_batch(moves + gone)
        reqs = [(r["method"], r["path"], len(r.get("client_order_ids") or []))
                for r in fx.request_log[before:] if r["method"] != "GET"]
    finally:
        writer.close()
        fx.stop()
    assert sorted(reqs) == sorted([("DELETE", BATCH, 5), ("POST", BATCH, 5),
                                   ("DELETE", BATCH, 5), ("POST", BATCH, 4),
                                   ("DELETE", "/fapi/v1/order", 0),
                                   ("DELETE", "/fapi/v1/order", 0)])
    rows = {r["intent_id"]: r["status"] for r in read_broker(f"sqlite:///{tmp_path / 'b.db'}",
                                                             RUN)}
    for s in px:
        for k in range(5):
            gone_k = s == "ETH/USDT" and k == 4
            assert rows[f"{s[:3]}o{k}:cancel"] == ("not_found" if gone_k else "canceled")
            assert rows[f"{s[:3]}n{k}:place"] == ("skipped" if gone_k else "sent")
        assert rows[f"{s[:3]}o5:cancel"] == "canceled"
    assert [(o.client_order_id, o.action) for o in outs][:2] == [("BTCo0", "cancel"),
                                                                  ("BTCn0", "place")]
    status = {o["clientOrderId"]: o["status"] for o in fx.orders()}
    assert {c for c, st in status.items() if st == "NEW"} == {
        f"{s[:3]}n{k}" for s in px for k in range(5)} - {"ETHn4"}
    assert_once(fx)


def test_writer_batches_under_request_faults_place_each_order_once(tmp_path) -> None:
    """Every batch request of a candle's moves meets a fault (the answer lost after the
    exchange acted, or a refusal before): each order still reaches the exchange once
    and every row ends terminal with the fault journaled."""
    fx = make_fx()
    _, writer = lane_writer(fx, f"sqlite:///{tmp_path / 'f.db'}", 1)
    try:
        writer.handle_batch([intent(f"o{k}", price=19_800.0 - 10 * k) for k in range(5)])
        fx.set_faults(FaultPlan(seed=3, hang_s=0.4, script=[
            ("drop_after", f"DELETE {BATCH}"), ("timeout_before", f"POST {BATCH}")]))
        writer.handle_batch([intent(f"n{k}", price=19_700.0 - 10 * k, cancel_first=f"o{k}")
                             for k in range(5)])
        rows = read_broker(f"sqlite:///{tmp_path / 'f.db'}", RUN)
    finally:
        writer.close()
        fx.stop()
    assert [f["kind"] for f in fx.fault_log] == ["drop_after", "timeout_before"]
    by_id = {r["intent_id"]: r for r in rows}
    for k in range(5):
        assert by_id[f"o{k}:cancel"]["status"] == "canceled"
        assert "NetworkError" in by_id[f"o{k}:cancel"]["faults"]
        assert by_id[f"n{k}:place"]["status"] == "sent"
        assert "RequestTimeout" in by_id[f"n{k}:place"]["faults"]
    assert {o["clientOrderId"] for o in fx.orders() if o["status"] == "NEW"} == {
        f"n{k}" for k in range(5)}
    assert_once(fx)


def test_new_levels_ride_with_moves_and_margin_waits_never_deadlock() -> None:
    """The real gather rule on lanes: on each of two symbols a move, a new level whose
    margin the account holds and a new level that waits for margin, interleaved as the
    engine emits them. The move and the held level go as one group; the waiting level
    apart (a group that frees margin never waits, so two lanes cannot wait for each
    other), and it starts only after the other symbol's group that freed margin."""
    fx = make_fx()
    groups: list[list[str]] = []
    log: list[str] = []
    lock = threading.Lock()

    def work(_lane, _i, it):
        with lock:
            log.append(it.client_order_id)
        return it.client_order_id

    def work_group(_lane, _idx, its):
        time.sleep(0.05)  # logged as it ends: a level that waits for it starts later
        with lock:
            groups.append([it.client_order_id for it in its])
            log.extend(it.client_order_id for it in its)
        return [it.client_order_id for it in its]

    try:
        gw = gateway(fx)
        batch = []
        for k, kind in enumerate(("move", "held", "wait")):
            for s in ("BTC/USDT", "ETH/USDT"):
                kw = {"cancel_first": f"old{s[:3]}"} if kind == "move" else {
                    "margin_held": kind == "held"}
                batch.append(intent(f"{s[:3]}{kind}", symbol=s, tag=f"L{k}", **kw))
        runner = LaneRunner(4)
        result: list = []
        t = threading.Thread(target=lambda: result.append(runner.submit(
            batch, work, gather=lambda _i, it: gather_key(gw, it), work_group=work_group
        ).wait()), daemon=True)
        t.start()
        t.join(20)
        stuck = t.is_alive()
        if not stuck:  # lanes waiting for each other would never close
            runner.close()
    finally:
        fx.stop()
    assert not stuck, "the lanes waited for each other"
    assert result == [[it.client_order_id for it in batch]]
    assert sorted(groups) == [["BTCmove", "BTCheld"], ["ETHmove", "ETHheld"]]
    for own, other in (("BTC", "ETH"), ("ETH", "BTC")):
        assert log.index(f"{own}wait") > log.index(f"{other}held")  # after its end


def test_writer_lays_a_new_grid_in_one_request_per_symbol(tmp_path) -> None:
    """A new grid of five levels on each of two symbols goes out as one batch place per
    symbol; then two levels moved and three new ones laid on one symbol: one batch
    cancel of the moved levels' old orders and one batch place of all five. Journal
    rows and exchange orders are those of one request per order."""
    fx = make_fx()
    url = f"sqlite:///{tmp_path / 'g.db'}"
    first, writer = lane_writer(fx, url, 2)
    px = {"BTC/USDT": 20_000.0, "ETH/USDT": 1_000.0}
    amt = {"BTC/USDT": 0.01, "ETH/USDT": 0.1}
    try:
        before = len(fx.request_log)
        grid = [intent(f"{s[:3]}g{k}", symbol=s, tag=f"L{k}", price=px[s] * (0.99 - 0.01 * k),
                       amount=amt[s], margin_held=True) for k in range(5) for s in px]
        writer.handle_batch(grid)
        laid = [(r["method"], r["path"], len(r.get("client_order_ids") or []))
                for r in fx.request_log[before:] if r["method"] != "GET"]
        before = len(fx.request_log)
        again = [intent(f"BTCm{k}", tag=f"L{k}", price=px["BTC/USDT"] * (0.985 - 0.01 * k),
                        amount=0.01, cancel_first=f"BTCg{k}", margin_held=True)
                 for k in range(2)]
        again += [intent(f"BTCx{k}", tag=f"L{k}", price=px["BTC/USDT"] * (0.93 - 0.01 * k),
                         amount=0.01, margin_held=True) for k in range(3)]
        writer.handle_batch(again)
        moved = [(r["method"], r["path"], len(r.get("client_order_ids") or []))
                 for r in fx.request_log[before:] if r["method"] != "GET"]
        rows = {r["intent_id"]: r["status"] for r in read_broker(url, RUN)}
    finally:
        writer.close()
        fx.stop()
    assert sorted(laid) == [("POST", BATCH, 5), ("POST", BATCH, 5)]
    assert moved == [("DELETE", BATCH, 2), ("POST", BATCH, 5)]
    assert all(rows[f"{it.client_order_id}:place"] == "sent" for it in grid + again)
    assert rows["BTCg0:cancel"] == rows["BTCg1:cancel"] == "canceled"
    status = {o["clientOrderId"]: o["status"] for o in fx.orders()}
    want = ({f"{s[:3]}g{k}" for s in px for k in range(5)} - {"BTCg0", "BTCg1"}
            | {"BTCm0", "BTCm1", "BTCx0", "BTCx1", "BTCx2"})
    assert {c for c, st in status.items() if st == "NEW"} == want
    assert_once(fx)


def test_a_level_laid_and_moved_in_one_batch_goes_as_sent_alone(tmp_path) -> None:
    """One engine step can lay a level and move it, or move a level twice (a catch-up
    of several candles). A group sends its moves' cancels before its places, so the
    second of such a pair starts a group of its own: the order placed first is
    cancelled after it was placed, never before, and the last one rests."""
    fx = make_fx()
    url = f"sqlite:///{tmp_path / 'c.db'}"
    _, writer = lane_writer(fx, url, 2)
    try:
        writer.handle_batch([intent("C0", tag="L1", price=19_800.0, margin_held=True)])
        writer.handle_batch([
            intent("A0", tag="L0", price=19_900.0, margin_held=True),
            intent("A1", tag="L0", price=19_890.0, cancel_first="A0", margin_held=True),
            intent("C1", tag="L1", price=19_790.0, cancel_first="C0", margin_held=True),
            intent("C2", tag="L1", price=19_780.0, cancel_first="C1", margin_held=True),
            intent("D0", tag="L2", price=19_700.0, margin_held=True)])
        rows = {r["intent_id"]: r["status"] for r in read_broker(url, RUN)}
    finally:
        writer.close()
        fx.stop()
    status = {o["clientOrderId"]: o["status"] for o in fx.orders()}
    assert {c for c, st in status.items() if st == "NEW"} == {"A1", "C2", "D0"}
    assert status["A0"] == status["C0"] == status["C1"] == "CANCELED"
    for cid in ("A0", "A1", "C1", "C2", "D0"):
        assert rows[f"{cid}:place"] == "sent"
    for cid in ("A0", "C0", "C1"):
        assert rows[f"{cid}:cancel"] == "canceled"
    assert_once(fx)
