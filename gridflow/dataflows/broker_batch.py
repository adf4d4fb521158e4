"""Which of a batch's intents the broker sends together, and how (one request per kind
per symbol: :mod:`gridflow.exchange.batch`).

Gathered, when the venue takes batches of them (:func:`~gridflow.exchange.batch.batch_limit`)
and their write-ahead rows are fresh (an intent met again after a crash is resolved
alone, by its own lookup):

* a symbol's grid-level places: a level's move (a place replacing an order that is
  cancelled first, ``cancel_first``) and a new level (a limit entry replacing nothing,
  as when a grid is laid again after its take profit): up to five together, the moves'
  old orders cancelled in one request, then the places in one request (new levels, and
  moves whose old order was cancelled; a new level that waits for margin, ``margin_held``
  false, only with other such levels); a move whose old order was not cancelled is
  ``skipped``, as when it is sent alone
  (:meth:`~gridflow.exchange.gateway.OrderGateway.after_cancel`). Before, a new grid of
  five levels went out as five requests one after the other on its lane: a candle
  close that laid new grids on several symbols held the flow (which waits for its
  batch, ``live.broker_wait``) for 60-80 ms, and a fill that came meanwhile waited
  that long for its take profit and stop;
* cancels: up to ten in one request.

The outcomes are those of the same intents sent one by one, in the same order per
intent (a replacement's cancel before its place), and journaled the same way.
"""

from __future__ import annotations

from gridflow.dataflows.broker_lanes import protective, waits_for_margin
from gridflow.events import OrderIntent, OrderOutcome
from gridflow.exchange.batch import CANCEL_MAX, PLACE_MAX, batch_limit, cancel_many, place_many
from gridflow.exchange.gateway import OrderGateway


def gather_key(gw: OrderGateway, intent: OrderIntent) -> tuple[str, int] | None:
    """``(key, most)`` of an intent that may go out with others of the same key (see the
    module docstring), None for one that goes alone."""
    if batch_limit(gw, intent) == 0:
        return None
    if intent.action == "cancel":  # a take profit's cancel never rides with an entry's:
        # the lanes serve the two classes in different orders (broker_lanes.protective)
        return f"cancel|{intent.symbol}|{protective(intent)}", CANCEL_MAX
    if intent.reduce_only:
        return None
    if intent.cancel_first is not None or (intent.type == "limit"
                                           and intent.cancel_after is None):
        # a new level that waits for margin freed on other lanes is gathered only with
        # its like: a group with a move in it frees margin, and one that also waited
        # could wait for another lane's group waiting for it
        kind = "entry" if waits_for_margin(intent) else "level"
        return f"{kind}|{intent.symbol}", PLACE_MAX
    return None


def gather_keys(gw: OrderGateway, intents: list[OrderIntent], fresh: list[bool]
                ) -> list[tuple[str, int] | None]:
    """:func:`gather_key` of each intent of a batch, in batch order (None where ``fresh``
    is false), the key ending in a count of its symbol's chain breaks: it moves on at a
    place that replaces an order placed earlier in the batch since the last break (a
    level laid and moved, or moved twice, in one engine step: a catch-up of several
    candles). A group sends its moves' cancels before all its places, so such a pair in
    one group would cancel an order not yet placed and then place it: they go in
    groups one after the other, as sent alone (place A, cancel A, place B)."""
    out: list[tuple[str, int] | None] = []
    breaks: dict[str, int] = {}
    placed: dict[str, set[str]] = {}  # symbol -> client ids placed since its last break
    for it, ok in zip(intents, fresh, strict=True):
        since = placed.setdefault(it.symbol, set())
        if it.cancel_first is not None and it.cancel_first in since:
            breaks[it.symbol] = breaks.get(it.symbol, 0) + 1
            since.clear()
        if it.action == "place":
            since.add(it.client_order_id)
        key = gather_key(gw, it) if ok else None
        out.append(None if key is None else (f"{key[0]}#{breaks.get(it.symbol, 0)}", key[1]))
    return out


def carry_gathered(gw: OrderGateway, group: list[OrderIntent]) -> list[list[OrderOutcome]]:
    """Send a group of one :func:`gather_key`; per intent, its outcomes in the order a
    lone send gives them (a replacement: ``[cancel, place]``)."""
    if group[0].action == "cancel":
        return [[o] for o in cancel_many(gw, group)]
    moved = iter(cancel_many(gw, [gw.replaced_cancel(it) for it in group
                                  if it.cancel_first is not None]))
    cancels = [next(moved) if it.cancel_first is not None else None for it in group]
    placed = iter(place_many(gw, [it for it, c in zip(group, cancels, strict=True)
                                  if c is None or c.status == "canceled"]))
    return [[next(placed)] if c is None else
            [c, next(placed) if c.status == "canceled" else gw.after_cancel(it, c)]
            for it, c in zip(group, cancels, strict=True)]


__all__ = ["carry_gathered", "gather_key", "gather_keys"]
