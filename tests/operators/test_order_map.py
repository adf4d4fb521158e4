"""The live book's OrderMap: the live orders listed in the dict's own order without
walking the done and gone ones, the same after a pickle round trip (Bytewax snapshots)
and for a book pickled before OrderMap existed."""

from __future__ import annotations

import pickle

from gridflow.operators.live_orders import LiveBook, OrderMap, Working
from gridflow.operators.order_state import OrderState


def order(coid: str, state: OrderState = OrderState.OPEN) -> Working:
    return Working(coid=coid, symbol="BTC/USDT", slot="L0", side="buy", type="limit",
                   price=100.0, stop_price=None, amount=1.0, decision_ts=0, seq=0,
                   state=state)


def test_live_orders_in_dict_order_and_the_finished_ones_dropped_for_good() -> None:
    m = OrderMap({"a": order("a")})  # built from a mapping: listed too
    for c in ("b", "c", "d"):
        m[c] = order(c)
    m["c"].state = OrderState.DONE
    m["d"].state = OrderState.GONE
    assert [w.coid for w in m.live()] == ["a", "b"]
    assert list(m.maybe_live) == ["a", "b"]  # pruned: never walked again
    x = m.pop("a")
    m["a"] = x  # put back after a pop: last, as in the dict
    assert [w.coid for w in m.live()] == [c for c in m if m[c].state == OrderState.OPEN]
    again = pickle.loads(pickle.dumps(m))
    assert isinstance(again, OrderMap)
    assert [w.coid for w in again.live()] == ["b", "a"]


def test_a_book_pickled_with_a_plain_dict_lists_its_live_orders() -> None:
    book = LiveBook("acct")
    book.orders = {"a": order("a"), "b": order("b", OrderState.GONE)}  # an older pickle
    book = pickle.loads(pickle.dumps(book))
    assert [w.coid for w in book.live()] == ["a"]
    assert isinstance(book.orders, OrderMap)
    assert [w.coid for w in book.of_symbol("BTC/USDT")] == ["a"]
