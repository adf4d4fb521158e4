"""Which of a batch's intents the broker sends together, and how (one request per kind
per symbol: :mod:`gridflow.exchange.batch`).

Gathered, when the venue takes batches of them (:func:`~gridflow.exchange.batch.batch_limit`)
and their write-ahead rows are fresh (an intent met again after a crash is resolved
alone, by its own lookup):

* a grid level's move, a place replacing an order that is cancelled first
  (``cancel_first``): the cancels of up to five such places in one request, then the
  places whose old order was cancelled in one request; a place whose old order was not
  cancelled is ``skipped``, as when it is sent alone
  (:meth:`~gridflow.exchange.gateway.OrderGateway.after_cancel`);
* cancels: up to ten in one request.

The outcomes are those of the same intents sent one by one, in the same order per
intent (a replacement's cancel before its place), and journaled the same way.
"""

from __future__ import annotations

from gridflow.dataflows.broker_lanes import protective
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
    if intent.cancel_first is not None and not intent.reduce_only:
        return f"move|{intent.symbol}", PLACE_MAX
    return None


def carry_gathered(gw: OrderGateway, group: list[OrderIntent]) -> list[list[OrderOutcome]]:
    """Send a group of one :func:`gather_key`; per intent, its outcomes in the order a
    lone send gives them (a replacement: ``[cancel, place]``)."""
    if group[0].action == "cancel":
        return [[o] for o in cancel_many(gw, group)]
    cancels = cancel_many(gw, [gw.replaced_cancel(it) for it in group])
    placed = iter(place_many(gw, [it for it, c in zip(group, cancels, strict=True)
                                  if c.status == "canceled"]))
    return [[c, next(placed) if c.status == "canceled" else gw.after_cancel(it, c)]
            for it, c in zip(group, cancels, strict=True)]


__all__ = ["carry_gathered", "gather_key"]
