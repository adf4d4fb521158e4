"""Superseded protective moves of one engine step are dropped (``LiveBook.
elide_superseded``): which chains, which not, and what happens when a dropped order was
sent after all (a decision re-made after a restore)."""

from __future__ import annotations

from test_engine import chunk
from test_live_engine import SYM, H, fill, opened, started, upd

from gridflow.events import OrderOutcome


def burst(eng, l0, l1, tp, sent=()):
    """Level 1 and the first take profit fill in one update."""
    eng.sent.update({c: "TP" for c in sent})
    return eng.on_exchange(upd(2 * H + 120_000, [
        fill(l1.client_order_id, "buy", 80.0, l1.amount, 2 * H + 2, "t2"),
        fill(tp.client_order_id, "sell", 100.0, l0.amount, 2 * H + 3, "t3")]))


def first_fill():
    eng, out = started()
    l0, l1 = opened(out.intents)[:2]
    out = eng.on_exchange(upd(2 * H + 60_000, [fill(l0.client_order_id, "buy", 90.0,
                                                      l0.amount, 2 * H + 1, "t1")]))
    return eng, l0, l1, next(i for i in out.intents if i.tag == "TP")


def test_a_burst_sends_one_stop_and_one_take_profit_per_symbol():
    eng, l0, l1, tp = first_fill()
    out = burst(eng, l0, l1, tp)
    places = [(i.tag, i.amount) for i in out.intents if i.action == "place"]
    assert sorted(places) == [("SL", l1.amount), ("TP", l1.amount)]
    dropped = [w for w in eng.book.orders.values() if w.elided]
    assert len(dropped) == 2 and all(w.state == "gone" for w in dropped)
    assert sorted(w.slot for w in dropped) == ["SL", "TP"]


def test_an_order_the_broker_reported_sent_is_not_dropped():
    """A move the broker already sent (its outcome replayed before the decision is
    re-made after a restore) stays in the step: its successor replaces it."""
    twin, a0, a1, atp = first_fill()
    step = twin.on_exchange(upd(2 * H + 110_000, [fill(a1.client_order_id, "buy", 80.0,
                                                       a1.amount, 2 * H + 2, "t2")]))
    mid = next(i for i in step.intents if i.tag == "TP" and i.action == "place")
    eng, l0, l1, tp = first_fill()
    out = burst(eng, l0, l1, tp, sent=[mid.client_order_id])
    tps = [i for i in out.intents if i.tag == "TP" and i.action == "place"]
    assert [(i.client_order_id, i.cancel_after) for i in tps] == [
        (mid.client_order_id, tp.client_order_id), (tps[1].client_order_id,
                                                    mid.client_order_id)]


def test_a_dropped_order_reported_sent_after_all_is_cancelled():
    eng, l0, l1, tp = first_fill()
    burst(eng, l0, l1, tp)
    gone = next(w for w in eng.book.orders.values() if w.elided and w.slot == "TP")
    out = eng.on_outcome(OrderOutcome(
        intent_id=f"{gone.coid}:place", client_order_id=gone.coid, action="place",
        account="t", symbol=SYM, tag="TP", status="sent"))
    assert [(i.action, i.client_order_id) for i in out.intents] == [("cancel", gone.coid)]
    assert eng.book.orders[gone.coid].state == "canceling"
    assert eng.book.slot(SYM, "TP").coid != gone.coid  # the slot keeps the current one
    assert eng.summary().counters.get("order_moves_refused", 0) == 0


def test_entry_moves_of_a_catch_up_are_all_sent():
    """Two closes decided in one step (a catch-up): the entries' replacements cancel
    first, and each is kept (a restore re-decides them one at a time)."""
    eng, out = started()
    l1 = opened(out.intents)[1]
    eng.on_chunk(chunk(SYM, [(100, 101, 99, 101)], 101.0, 10.0, start=2))
    eng.on_chunk(chunk(SYM, [(101, 102, 100, 102)], 102.0, 10.0, start=3))
    out = eng.on_exchange(upd(4 * H + 1))
    moves = [i for i in out.intents if i.tag == "L1" and i.action == "place"]
    assert len(moves) == 2
    assert (moves[0].cancel_first, moves[1].cancel_first) == (
        l1.client_order_id, moves[0].client_order_id)
