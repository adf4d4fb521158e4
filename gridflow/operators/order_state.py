"""The state machine of a working order of the live engine: its states, the one table
of the moves allowed between them, and the one function that moves an order.

An order (:class:`~gridflow.operators.live_orders.Working`) is created ``pending`` when
the engine emits its place intent, or ``open`` when the engine takes over an order it
finds resting on the exchange (an orphan of its own it cancels, an order the
broker's write-ahead table placed). From then on its state changes only through
:func:`move`, which checks :data:`TRANSITIONS`.

Pure: no I/O. An illegal move is a bookkeeping bug or an exchange report gridflow does
not expect; it never changes the state. A live engine counts it (``counters
["order_moves_refused"]``, journaled with the account summary) and goes on trading:
raising there would stop the flow, and a restart replaying the same inputs would stop
it again. Without a counter, or with :data:`STRICT` set (tests/operators sets it), it
raises :class:`IllegalTransition`.
"""

from __future__ import annotations

from collections import Counter
from enum import StrEnum
from typing import Protocol

__all__ = ["LIVE_STATES", "STRICT", "TRANSITIONS", "IllegalTransition", "OrderState", "move"]


class OrderState(StrEnum):
    """State of a working order (the values are the strings the engine always used)."""

    PENDING = "pending"
    """Place intent emitted; not yet seen among the exchange's open orders."""
    OPEN = "open"
    """Seen among the exchange's open orders."""
    CANCELING = "canceling"
    """Cancel emitted (or carried by a replacement's ``cancel_first``)."""
    DONE = "done"
    """Filled completely."""
    GONE = "gone"
    """Rejected, failed, skipped, cancelled or vanished: can no longer be placed."""


#: States in which an order may still fill.
LIVE_STATES = frozenset({OrderState.PENDING, OrderState.OPEN, OrderState.CANCELING})

_P, _O, _C, _D, _G = (OrderState.PENDING, OrderState.OPEN, OrderState.CANCELING,
                      OrderState.DONE, OrderState.GONE)

#: The moves allowed from each state. Why each one happens:
#:
#: * ``pending -> open``: seen among the exchange's open orders.
#: * ``pending | open -> canceling``: a cancel (replaced, a kill switch, the cycle
#:   closed, a flip); ``canceling -> canceling``: cancelled again (the same intent id,
#:   which the broker recognises).
#: * ``pending | open | canceling -> done``: the fill that completes it (a fill may
#:   beat a cancel); ``done -> done``: a fill beyond its amount.
#: * ``pending -> gone``: the broker refused, failed or skipped the place, or the order
#:   it replaces filled out first (the broker's cancel finds nothing).
#: * ``open -> gone``: vanished from the book without a cancel or a fill, or its place
#:   was refused after it was seen.
#: * ``canceling -> gone``: the cancel was confirmed (or found nothing).
#: * ``canceling -> open``: a conditional cancel the broker skipped: the order's
#:   successor (a moved stop, ``cancel_after``) was refused, so the order still rests.
#: * ``gone -> done``: a fill the exchange reports after the order left its book (a
#:   cancel that found the order already filled; a vanished order whose trades came
#:   late).
#: * ``gone -> gone``: a second report that it is gone (a skip after the fill of the
#:   order it replaced was seen).
#: * ``gone -> canceling``: an order dropped before it was sent, superseded in the same
#:   step (``Working.elided``), that the broker reports sent after all (an earlier life
#:   sent it before a restore): it rests unwanted and is cancelled.
#:
#: Never: back to ``pending``; ``open`` again but from ``canceling``; anything after ``done`` but another
#: fill (a refused place reported after the order filled leaves it ``done``).
TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    _P: frozenset({_O, _C, _D, _G}),
    _O: frozenset({_C, _D, _G}),
    _C: frozenset({_O, _C, _D, _G}),
    _D: frozenset({_D}),
    _G: frozenset({_D, _G, _C}),
}

STRICT = False
"""When True, :func:`move` raises on an illegal move even when given a counter (the
test suite sets it, so every move any test makes is checked against the table)."""


class IllegalTransition(ValueError):
    """A move :data:`TRANSITIONS` does not allow; ``coid``, ``source`` and ``target``
    say which."""

    def __init__(self, coid: str, source: str, target: str) -> None:
        super().__init__(f"order {coid}: {source} -> {target} is not an allowed move "
                         f"(from {source}: {sorted(TRANSITIONS.get(source, ()))})")
        self.coid, self.source, self.target = coid, source, target


class _Order(Protocol):
    coid: str
    state: OrderState


def move(order: _Order, target: OrderState, refused: Counter | None = None) -> bool:
    """Move ``order`` to ``target`` if :data:`TRANSITIONS` allows it.

    Parameters
    ----------
    order : Working
        Anything with ``coid`` and ``state``; ``state`` is set on success.
    target : OrderState
    refused : Counter, optional
        Where an illegal move is counted (key ``"order_moves_refused"``).

    Returns
    -------
    bool
        True if the order moved; False if the move was illegal and counted (the state
        is unchanged).

    Raises
    ------
    IllegalTransition
        On an illegal move when ``refused`` is None or :data:`STRICT` is set.
    """
    if target in TRANSITIONS[order.state]:
        order.state = target
        return True
    if refused is None or STRICT:
        raise IllegalTransition(order.coid, order.state, target)
    refused["order_moves_refused"] += 1
    return False
