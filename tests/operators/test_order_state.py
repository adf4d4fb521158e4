"""The working-order state machine: every move the live engine makes in the live-engine
scenarios is in the one transition table, an illegal move is refused (raised, or counted
by a live engine), and the table itself is the one documented."""

from __future__ import annotations

import importlib
import inspect
import pickle
from collections import Counter

import pytest

from gridflow.operators import live_orders, order_state
from gridflow.operators.live_orders import Working
from gridflow.operators.order_state import (
    LIVE_STATES,
    TRANSITIONS,
    IllegalTransition,
    OrderState,
    move,
)

P, O, C, D, G = (OrderState.PENDING, OrderState.OPEN, OrderState.CANCELING, OrderState.DONE,
                 OrderState.GONE)
#: The modules whose scenarios are replayed with the move function instrumented.
SCENARIOS = ("test_live_engine", "test_live_engine_arrival_order", "test_live_safeguards")


def _scenarios():
    for name in SCENARIOS:
        mod = importlib.import_module(name)
        for fname, fn in sorted(vars(mod).items()):
            if fname.startswith("test_") and inspect.isfunction(fn) \
                    and not inspect.signature(fn).parameters:
                yield f"{name}.{fname}", fn


def _order(state=P) -> Working:
    return Working("gf-1", "BTC/USDT", "L0", "buy", "limit", 90.0, None, 0.1, 0, 0,
                   state=state)


def test_every_move_of_the_live_engine_scenarios_is_in_the_table(monkeypatch):
    made: Counter = Counter()
    where: dict[tuple, str] = {}
    current = [""]

    def recording(order, target, refused=None):
        key = (OrderState(order.state), OrderState(target))
        made[key] += 1
        where.setdefault(key, current[0])
        return move(order, target, refused)

    monkeypatch.setattr(live_orders, "move", recording)
    ran = 0
    for name, fn in _scenarios():
        current[0] = name
        fn()
        ran += 1
    assert ran >= 20
    illegal = {f"{a} -> {b} ({where[(a, b)]})" for a, b in made if b not in TRANSITIONS[a]}
    assert not illegal
    # the scenarios do drive the machine: placed orders seen, cancelled, filled, refused
    assert {(P, O), (P, C), (O, C), (P, D), (O, D), (C, G), (P, G), (C, O)} <= set(made), made


def test_an_illegal_move_is_refused_and_never_changes_the_state(monkeypatch):
    monkeypatch.setattr(order_state, "STRICT", False)
    w = _order(D)
    with pytest.raises(IllegalTransition, match="gf-1: done -> open"):
        move(w, O)  # no counter: raised
    refused: Counter = Counter()
    assert move(w, G, refused) is False  # a live engine: counted, not raised
    assert w.state == D and refused == {"order_moves_refused": 1}
    monkeypatch.setattr(order_state, "STRICT", True)
    with pytest.raises(IllegalTransition):
        move(w, G, refused)  # the test suite: raised even with a counter
    assert w.state == D and refused["order_moves_refused"] == 1


def test_a_refused_move_of_the_live_book_is_counted_with_the_engine_counters(monkeypatch):
    monkeypatch.setattr(order_state, "STRICT", False)
    from test_live_engine import live_engine

    eng = live_engine()
    assert eng.book.counters is eng.counters
    w = _order(G)
    eng.book.orders[w.coid] = w
    assert eng.book.move(w, P) is False and w.state == G
    assert eng.summary().counters["order_moves_refused"] == 1
    assert eng.book.move(w, D) and w.state == D  # a fill reported after it left the book


def test_an_engine_snapshot_from_before_the_counter_counts_into_the_engine():
    from test_live_engine import live_engine

    eng = live_engine()
    state = pickle.loads(pickle.dumps(eng)).__dict__
    del state["book"].__dict__["counters"]  # a book pickled by an older version
    old = type(eng).__new__(type(eng))
    old.__setstate__(state)
    assert old.book.counters is old.counters


def test_the_table():
    assert set(TRANSITIONS) == set(OrderState)
    assert LIVE_STATES == {P, O, C}
    assert all(P not in targets for targets in TRANSITIONS.values())  # never back to pending
    assert TRANSITIONS[D] == {D}  # filled is final but for a further fill
    assert all(D in TRANSITIONS[s] for s in OrderState)  # a fill is always booked
    assert O not in TRANSITIONS[G]  # gone is never open again
    assert O in TRANSITIONS[C]  # a cancel skipped because its stop's successor was refused


def test_states_are_the_strings_the_engine_always_used():
    assert [s.value for s in OrderState] == ["pending", "open", "canceling", "done", "gone"]
    w = _order()
    assert w.state == "pending" and w.live
    w.state = "open"  # a snapshot of an older version holds plain strings
    assert move(w, C) and w.state == "canceling" and w.live
