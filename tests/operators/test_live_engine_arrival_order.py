"""Live account engine: decisions that must not depend on the order in which the broker's
answers, the candles and the exchange's fills arrive (refused and skipped orders, fills
that wait for their candle, orders rebuilt from the write-ahead table at a cold start)."""

from __future__ import annotations

from test_engine import NOFEES, chunk
from test_live_engine import (
    MKT,
    SYM,
    H,
    fill,
    live_engine,
    opened,
    started,
    two_levels_filled,
    upd,
    warm,
)

from gridflow.config.live import LiveConfig
from gridflow.events import OrderOutcome
from gridflow.operators.live_engine import LiveAccountEngine


def test_refusal_of_a_replaced_or_finished_stop_does_not_count_against_the_current_one():
    eng, _, old, new = two_levels_filled("SL", 85.0)

    def refuse(intent):
        return eng.on_outcome(OrderOutcome(
            intent_id=intent.intent_id, client_order_id=intent.client_order_id,
            action="place", account="t", symbol=SYM, tag="SL", status="rejected",
            error="InvalidOrder: -2021"))

    for _ in range(2):  # the replaced stop: journaled, not held against the new one
        refuse(old)
    s = eng.index[SYM]
    assert eng.stop_rejects[s] == 0
    out = refuse(new)
    assert eng.stop_rejects[s] == 1
    assert [i.tag for i in opened(out.intents)] == ["SL"]  # placed again, no market close


def test_own_orders_the_write_ahead_table_placed_are_rebuilt_not_cancelled_as_orphans():
    """A start without recovery state: the outcome source replays the broker's table, so
    an open order of gridflow's that the book lost is rebuilt into its free slot or
    cancelled when the slot holds a newer one; only ids neither knows are orphans."""
    eng, out = started()
    mine = [{"client_order_id": i.client_order_id, "symbol": SYM} for i in opened(out.intents)]
    lost = {"client_order_id": "gf" + "1" * 30, "symbol": SYM, "side": "buy", "type": "limit",
            "price": 60.0, "amount": 1.0, "filled": 0.25, "ts": H}
    older = {**lost, "client_order_id": "gf" + "2" * 30, "price": 95.0}
    unknown = {**lost, "client_order_id": "gf" + "3" * 30, "price": 50.0}
    for coid, tag in ((lost["client_order_id"], "L2"), (older["client_order_id"], "L0")):
        eng.on_outcome(OrderOutcome(intent_id=f"{coid}:place", client_order_id=coid,
                                    action="place", account="t", symbol=SYM, tag=tag,
                                    status="sent"))
    for k in range(3):
        out = eng.on_exchange(upd(2 * H + 1 + k, open_orders=mine + [lost, older, unknown]))
    kinds = {e.kind: e for e in out.events}
    assert set(kinds) == {"order_rebuilt", "order_superseded", "orphan_order"}
    assert kinds["order_rebuilt"].detail["client_order_id"] == lost["client_order_id"]
    w = eng.book.slot(SYM, "L2")
    assert (w.coid, w.price, w.amount, w.filled, w.state) == (
        lost["client_order_id"], 60.0, 1.0, 0.25, "open")
    # the superseded one and the unknown one are cancelled; the rebuilt one rests
    assert sorted((i.action, i.client_order_id) for i in out.intents) == [
        ("cancel", older["client_order_id"]), ("cancel", unknown["client_order_id"])]
    # its fill is the engine's own, not an orphan
    out = eng.on_exchange(upd(2 * H + 10, [fill(lost["client_order_id"], "buy", 60.0, 0.75,
                                                2 * H + 5, "trade-9")]))
    assert "orphan_fill" not in [e.kind for e in out.events]
    assert eng.positions()[SYM]["amount"] == 0.75


def test_a_refused_stop_outcome_replayed_at_a_cold_start_places_nothing():
    """Outcomes replayed from the journal before the start (``replayed`` false) are
    history: nothing is decided on them."""
    eng, out = started()
    l0 = opened(out.intents)[0]
    out = eng.on_exchange(upd(2 * H + 60_000, [fill(l0.client_order_id, "buy", 90.0, l0.amount,
                                                      2 * H + 1, "trade-1")]))
    sl = next(i for i in out.intents if i.tag == "SL")
    eng.replayed = False
    out = eng.on_outcome(OrderOutcome(intent_id=sl.intent_id, client_order_id=sl.client_order_id,
                                      action="place", account="t", symbol=SYM, tag="SL",
                                      status="rejected", error="InvalidOrder: -2021"))
    assert [e.kind for e in out.events] == ["order_rejected"] and not out.intents


def test_a_cold_start_waits_for_the_outcome_replay_then_keeps_the_resting_stop():
    """No adoption before the broker's outcomes are in; then the stop the previous process
    left on the exchange is rebuilt into the book and kept, not doubled."""
    acct_engine = live_engine()
    eng = LiveAccountEngine(acct_engine.account, [SYM], {SYM: "1h"}, NOFEES, MKT,
                            live=LiveConfig(), await_outcomes=True)
    eng.on_chunk(warm(chunk(SYM, [(100, 101, 99, 100)], 100.0, 10.0)))
    eng.on_chunk(chunk(SYM, [(100, 101, 99, 100)], 100.0, 10.0, start=1))
    stop = {"client_order_id": "gf" + "5" * 30, "symbol": SYM, "side": "sell",
            "type": "stop_market", "price": None, "stop_price": 45.0, "amount": 1.0,
            "filled": 0.0, "reduce_only": True, "ts": H}
    pos = {SYM: {"amount": 1.0, "entry_price": 90.0}}
    out = eng.on_exchange(upd(2 * H, open_orders=[stop], positions=pos))
    assert "position_adopted" not in [e.kind for e in out.events]
    eng.on_outcome(OrderOutcome(intent_id=stop["client_order_id"] + ":place",
                                client_order_id=stop["client_order_id"], action="place",
                                account="t", symbol=SYM, tag="SL", status="sent"))
    eng.on_outcomes_replayed()
    out = eng.on_exchange(upd(2 * H + 1, open_orders=[stop], positions=pos))
    kinds = [e.kind for e in out.events]
    assert "order_rebuilt" in kinds and "position_adopted" in kinds
    assert eng.book.slot(SYM, "SL").coid == stop["client_order_id"]
    assert not [i for i in out.intents if i.tag == "SL"]  # kept: no second stop, no cancel


def test_a_chain_of_level_moves_after_the_level_filled_out_is_dropped_whole():
    """A resting entry is moved (cancel first, then place) at candle 2's close and again
    at candle 3's; the exchange had filled it completely at candle 2's close, before the
    broker got to the first cancel. The fill drops both replacements (each cancel finds
    nothing, so the broker skips them): none is cancelled or placed again."""
    eng, out = started()
    l1 = opened(out.intents)[1]
    out = eng.on_chunk(chunk(SYM, [(100, 101, 99, 101)], 101.0, 10.0, start=2))
    out.extend(eng.on_exchange(upd(3 * H + 1)))
    r1 = next(i for i in out.intents if i.tag == "L1" and i.action == "place")
    out = eng.on_chunk(chunk(SYM, [(101, 102, 100, 102)], 102.0, 10.0, start=3))
    out.extend(eng.on_exchange(upd(4 * H + 1)))
    r2 = next(i for i in out.intents if i.tag == "L1" and i.action == "place")
    assert (r1.cancel_first, r2.cancel_first) == (l1.client_order_id, r1.client_order_id)
    out = eng.on_exchange(upd(4 * H + 2, [fill(l1.client_order_id, "buy", 80.0, l1.amount,
                                                3 * H, "t1")]))
    assert eng.positions()[SYM]["amount"] == l1.amount
    assert eng.book.orders[r1.client_order_id].state == "gone"
    assert eng.book.orders[r2.client_order_id].state == "gone"
    assert not [i for i in out.intents if i.tag == "L1"]


def test_a_fill_waits_for_the_candle_closing_at_or_before_it_then_at_most_a_minute():
    """The decision at a close comes before a fill stamped at that close or later, as in
    replay, even when the exchange's fills arrive before the candle; a candle the exchange
    never publishes holds a fill at most CANDLE_WAIT_MS of exchange time."""
    from gridflow.operators.live_engine import CANDLE_WAIT_MS

    eng, out = started()
    l0 = opened(out.intents)[0]
    at_close = fill(l0.client_order_id, "buy", 90.0, l0.amount, 3 * H, "t1")
    out = eng.on_exchange(upd(3 * H + 1_000, [at_close]))
    assert eng.positions()[SYM]["amount"] == 0.0 and not out.fills  # waits for candle 2
    out = eng.on_chunk(chunk(SYM, [(100, 101, 99, 100)], 100.0, 10.0, start=2))
    out.extend(eng.on_exchange(upd(3 * H + 2_000)))
    assert [f.report_id for f in out.fills] == ["t1"]
    assert eng.summary().candles == 3  # the close at 3H was decided, then the fill
    assert eng.positions()[SYM]["amount"] == l0.amount
    # candle 3 never comes: its fill waits one minute of exchange time, then is applied
    late = fill(l0.client_order_id, "buy", 90.0, 0.001, 4 * H + 5, "t2")
    out = eng.on_exchange(upd(4 * H + 10, [late]))
    assert not out.fills
    out = eng.on_exchange(upd(4 * H + CANDLE_WAIT_MS + 1))
    assert [f.report_id for f in out.fills] == ["t2"]


def test_an_order_whose_fill_waits_for_a_candle_is_not_forgotten_meanwhile():
    """A replaced take profit filled at once; its fill waits for the candle closing at
    its time, while the exchange's snapshots no longer list it: it stays in the book, so
    the fill is the engine's own, never an orphan."""
    eng, (l0, l1), tp, _ = two_levels_filled("TP")
    late = fill(tp.client_order_id, "sell", 100.0, l0.amount, 3 * H, "t3")
    for k in range(5):  # five snapshots without the order, candle 2 not in yet
        out = eng.on_exchange(upd(3 * H + 10 + k, [late] if k == 0 else [], open_orders=[]))
        assert "orphan_fill" not in [e.kind for e in out.events]
    out = eng.on_chunk(chunk(SYM, [(100, 101, 99, 100)], 100.0, 10.0, start=2))
    out.extend(eng.on_exchange(upd(3 * H + 20, open_orders=[])))
    assert [f.report_id for f in out.fills] == ["t3"]
    assert "orphan_fill" not in [e.kind for e in out.events]
