"""Write-ahead rows an earlier process left ``sending`` and whose intents never came
again.

The broker's exactly-once protocol (:mod:`gridflow.dataflows.broker_sink`) resolves a
``sending`` row when its intent comes again after a restart (Bytewax replays it). An
engine that restarts does not always decide the same again: a newer mark price, a fill
or a kill switch seen earlier than before can turn an entry it had decided into no
entry. The row of that intent would stay ``sending`` for ever, and the order it stands
for may rest on the exchange without the engine knowing it.

:func:`abandoned` finds the rows a previous process began (begun before this writer
started) that are still ``sending``; :func:`resolve` looks each up on the exchange by
its client id, like the recovery of a replayed intent does:

* a place the exchange has (open, filled or gone since): ``sent``, with its exchange
  id (the engine's write-ahead knowledge then rebuilds it into its slot, or cancels it
  as superseded, :func:`gridflow.operators.live_reconcile.rebuild`);
* a place the exchange does not know: ``skipped`` (it never left; the engine frees the
  slot if it holds it and decides again);
* a cancel: ``canceled`` / ``not_found`` per the lookup, ``skipped`` while the order is
  still open (the engine did not ask again; the orphan checks watch such an order);
* every lookup failed: left ``sending``, tried again at the next sweep.

The writer sweeps once ``ABANDON_AFTER_S`` wall seconds after it started (the replay of
a restart is over by then) and again at that period while such rows remain.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Engine

from gridflow.events import OrderIntent, OrderOutcome
from gridflow.exchange.gateway import OrderGateway
from gridflow.journal.broker_rows import read_broker

__all__ = ["ABANDON_AFTER_S", "abandoned", "resolve"]

log = logging.getLogger(__name__)

ABANDON_AFTER_S = 30.0
"""Wall seconds after the writer's start before an earlier process's ``sending`` row
whose intent did not come again is looked up and resolved."""

_STOP_TAGS = ("SL", "PROTECT")
"""Slots whose orders are stop orders (conditional: another lookup on Binance USDⓈ-M)."""


def abandoned(store: str | Engine, run_id: str, started_ms: int) -> list[dict[str, Any]]:
    """Rows of ``run_id`` still ``sending`` that were begun before ``started_ms`` (wall
    ms UTC: by an earlier process), oldest first."""
    return [r for r in read_broker(store, run_id, statuses=frozenset({"sending"}))
            if int(r["ts_ms"]) < started_ms]


def _lookup_intent(row: dict[str, Any], stop: bool) -> OrderIntent:
    """What :meth:`OrderGateway.recover` needs of the row's intent: action, client id,
    symbol and whether the order is a stop (the rest is not used by a lookup)."""
    return OrderIntent(
        intent_id=row["intent_id"], action=row["action"], account=row["account"],
        symbol=row["symbol"], client_order_id=row["client_order_id"], tag=row["tag"],
        ts_ms=0, side="buy", type="stop_market" if stop else "limit", amount=0.0)


def resolve(gw: OrderGateway, row: dict[str, Any]) -> OrderOutcome | None:
    """The final outcome of an abandoned row (see the module docstring), or None when
    the exchange could not be asked (the row stays ``sending``). A place not found
    among the orders of its slot's kind is looked up among the other kind too."""
    stop = row["tag"] in _STOP_TAGS
    out = gw.recover(_lookup_intent(row, stop))
    if out.status == "sending" and row["action"] == "place":
        other = gw.recover(_lookup_intent(row, not stop))
        if other.status != "failed":
            out = other
    if out.status == "failed":
        log.warning("abandoned %s %s: the lookup failed, trying again later",
                    row["action"], row["client_order_id"])
        return None
    if out.status == "sending":
        why = ("not on the exchange" if row["action"] == "place"
               else "the order is still open")
        out = out.model_copy(update={
            "status": "skipped",
            "error": f"abandoned: the intent did not come again after a restart ({why})"})
    log.warning("abandoned %s %s %s -> %s", row["action"], row["client_order_id"],
                row["symbol"], out.status)
    return out
