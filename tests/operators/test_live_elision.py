"""Superseded protective moves of one engine step are dropped (``LiveBook.
elide_superseded``): which chains, which not, and what happens when a dropped order was
sent after all (a decision re-made after a restore)."""

from __future__ import annotations

from test_engine import chunk
from test_live_engine import SYM, H, fill, opened, started, upd

from gridflow.events import OrderOutcome


def both_levels(eng, l0, l1, sent=()):
    """Levels 0 and 1 fill in one update (a drop through both)."""
    eng.sent.update({c: "TP" for c in sent})
    return eng.on_exchange(upd(2 * H + 60_000, [
        fill(l0.client_order_id, "buy", 90.0, l0.amount, 2 * H + 1, "t1"),
        fill(l1.client_order_id, "buy", 80.0, l1.amount, 2 * H + 2, "t2")]))


def test_a_burst_sends_one_stop_and_one_take_profit_per_symbol():
    eng, out = started()
    l0, l1 = opened(out.intents)[:2]
    out = both_levels(eng, l0, l1)
    total = round(l0.amount + l1.amount, 3)
    places = [(i.tag, i.amount, i.cancel_after, i.cancel_first) for i in out.intents
              if i.action == "place"]
    assert sorted(places) == [("SL", total, None, None), ("TP", total, None, None)]
    assert not [i for i in out.intents if i.action == "cancel"]
    dropped = [w for w in eng.book.orders.values() if w.elided]
    assert sorted((w.slot, w.amount, w.state) for w in dropped) == [
        ("SL", l0.amount, "gone"), ("TP", l0.amount, "gone")]
    assert {o.client_order_id for o in out.orders} == {i.client_order_id for i in out.intents}
    # the same fills one update at a time: the same last client ids
    one, one_out = started()
    a, b = opened(one_out.intents)[:2]
    one.on_exchange(upd(2 * H + 50_000, [fill(a.client_order_id, "buy", 90.0, a.amount,
                                              2 * H + 1, "t1")]))
    step = one.on_exchange(upd(2 * H + 60_000, [fill(b.client_order_id, "buy", 80.0,
                                                     b.amount, 2 * H + 2, "t2")]))
    assert sorted(i.client_order_id for i in step.intents if i.action == "place") == sorted(
        p.client_order_id for p in out.intents)


def test_a_take_profit_grown_then_shrunk_in_one_update_keeps_both_moves():
    """Level 1 fills (the take profit grows: placed before its predecessor is cancelled),
    then the first take profit fills out (it shrinks: cancel first, a resting reduce-only
    that closes everything would refuse a new one behind it). Two kinds of replacement:
    neither is dropped; the stop's chain is one kind, its middle move is dropped."""
    eng, out = started()
    l0, l1 = opened(out.intents)[:2]
    out = eng.on_exchange(upd(2 * H + 60_000, [fill(l0.client_order_id, "buy", 90.0,
                                                      l0.amount, 2 * H + 1, "t1")]))
    tp = next(i for i in out.intents if i.tag == "TP")
    sl = next(i for i in out.intents if i.tag == "SL")
    out = eng.on_exchange(upd(2 * H + 120_000, [
        fill(l1.client_order_id, "buy", 80.0, l1.amount, 2 * H + 2, "t2"),
        fill(tp.client_order_id, "sell", 100.0, l0.amount, 2 * H + 3, "t3")]))
    tps = [i for i in out.intents if i.tag == "TP" and i.action == "place"]
    assert [(i.amount, i.cancel_after, i.cancel_first) for i in tps] == [
        (round(l0.amount + l1.amount, 3), tp.client_order_id, None),
        (l1.amount, None, tps[0].client_order_id)]
    sls = [i for i in out.intents if i.tag == "SL" and i.action == "place"]
    assert [(i.amount, i.cancel_after) for i in sls] == [(l1.amount, sl.client_order_id)]


def test_an_order_the_broker_reported_sent_is_not_dropped():
    """A move the broker already sent (its outcome replayed before the decision is
    re-made after a restore) stays in the step: its successor replaces it."""
    twin, twin_out = started()
    a = opened(twin_out.intents)[0]
    first = twin.on_exchange(upd(2 * H + 50_000, [fill(a.client_order_id, "buy", 90.0,
                                                       a.amount, 2 * H + 1, "t1")]))
    mid = next(i for i in first.intents if i.tag == "TP")
    eng, out = started()
    l0, l1 = opened(out.intents)[:2]
    out = both_levels(eng, l0, l1, sent=[mid.client_order_id])
    tps = [i for i in out.intents if i.tag == "TP" and i.action == "place"]
    assert [(i.client_order_id, i.cancel_after) for i in tps] == [
        (mid.client_order_id, None), (tps[1].client_order_id, mid.client_order_id)]
    assert [i.cancel_after for i in out.intents if i.tag == "SL"] == [None]  # dropped


def test_a_dropped_order_reported_sent_after_all_is_cancelled():
    eng, out = started()
    l0, l1 = opened(out.intents)[:2]
    both_levels(eng, l0, l1)
    gone = next(w for w in eng.book.orders.values() if w.elided and w.slot == "TP")
    out = eng.on_outcome(OrderOutcome(
        intent_id=f"{gone.coid}:place", client_order_id=gone.coid, action="place",
        account="t", symbol=SYM, tag="TP", status="sent"))
    assert [(i.action, i.client_order_id) for i in out.intents] == [("cancel", gone.coid)]
    assert eng.book.orders[gone.coid].state == "canceling"
    assert eng.book.slot(SYM, "TP").coid != gone.coid  # the slot keeps the current one
    assert eng.summary().counters.get("order_moves_refused", 0) == 0


def test_an_order_still_listed_after_its_successor_rests_is_cancelled_again():
    """A moved stop whose cancel was lost (a restore that regrouped its chain): listed
    open in two snapshots in a row while its successor rests: cancelled again, once."""
    eng, out = started()
    l0, l1 = opened(out.intents)[:2]
    out = eng.on_exchange(upd(2 * H + 60_000, [fill(l0.client_order_id, "buy", 90.0,
                                                      l0.amount, 2 * H + 1, "t1")]))
    sl = next(i for i in out.intents if i.tag == "SL")
    out = eng.on_exchange(upd(2 * H + 70_000, [fill(l1.client_order_id, "buy", 80.0,
                                                      l1.amount, 2 * H + 2, "t2")]))
    new_sl = next(i for i in out.intents if i.tag == "SL")
    tp = eng.book.slot(SYM, "TP").coid
    listed = [{"client_order_id": c, "symbol": SYM}
              for c in (sl.client_order_id, new_sl.client_order_id, tp)]
    pos = {SYM: {"amount": round(l0.amount + l1.amount, 3), "entry_price": 85.0}}
    cancels = []
    for k in range(4):
        step = eng.on_exchange(upd(2 * H + 80_000 + k, open_orders=listed, positions=pos))
        cancels += [i.client_order_id for i in step.intents if i.action == "cancel"]
    assert cancels == [sl.client_order_id]


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
