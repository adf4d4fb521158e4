"""The protective orders of an open position, per venue scheme (pure).

Two schemes, chosen from the venue's market (:class:`~gridflow.exchange.venue.
Capabilities`, ``stop`` and ``tp_and_stop_share_amount``; the engine reads the config's
``live.exchange.market_type``):

* **contracts** (Binance USDⓈ-M, Bitget): a reduce-only stop-market (an algo or plan
  order) and a reduce-only limit take profit rest on the exchange together, both for the
  whole position. A moved stop is placed before its predecessor is cancelled
  (``cancel_after``): never a moment without a stop.
* **spot** (Binance spot): the base balance a sell locks can be locked once, so only the
  stop rests on the exchange: a ``STOP_LOSS_LIMIT`` whose limit is ``offset`` (fraction,
  ``live.stop_limit_offset``, 0.5 % by default) beyond its trigger, on the tick (rounded
  away from the trigger, so the distance is at least ``offset``). The take profit is
  watched by the engine: once the price (its latest fill or the last candle close,
  never a polled mark, which a restart would not replay) reaches it, the stop is cancelled and the position sold at market in one
  replace (``cancel_first``: the sell goes only if the cancel succeeded, so a stop that
  filled meanwhile is never sold twice). A moved stop is a replace too (cancel, then
  place): the position is without a stop only for that replace.

A stop-limit's trigger can be crossed without a fill (the price gaps through its limit);
the engine's crossed-stop rule (a position still open at a candle close beyond its stop
is closed at market, after its stop is cancelled) catches it, journaled as
``stop_not_filled``.
"""

from __future__ import annotations

import math

__all__ = ["protective_orders", "stop_limit_price", "take_profit_reached"]

SIDE = {1: "buy", -1: "sell"}


def stop_limit_price(stop: float, side: str, tick: float, offset: float) -> float:
    """Limit price (quote) of a stop-limit triggering at ``stop``: ``offset`` (fraction)
    beyond it in the direction the order trades (below for a sell, above for a buy),
    rounded to ``tick`` away from the trigger (a sell's limit down, a buy's up), so it is
    at least ``offset`` beyond.

    Raises
    ------
    ValueError
        A non-positive or non-finite stop, an offset outside [0, 1), a bad side.
    """
    if not (math.isfinite(stop) and stop > 0) or not 0.0 <= offset < 1.0:
        raise ValueError(f"stop must be > 0 and offset in [0, 1), got {stop}, {offset}")
    if side == "sell":
        px = stop * (1.0 - offset)
        return round(math.floor(px / tick + 1e-9) * tick, 12) if tick > 0 else px
    if side == "buy":
        px = stop * (1.0 + offset)
        return round(math.ceil(px / tick - 1e-9) * tick, 12) if tick > 0 else px
    raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")


def protective_orders(spot: bool, pos: int, stop: float, tp: float, amount: float,
                      tick: float, offset: float) -> dict[str, tuple]:
    """The resting protective orders of a position: slot -> ``(side, type, price,
    stop_price, amount, reduce_only)``.

    ``pos`` is the position's side (+1 long, -1 short), ``stop`` its stop trigger and
    ``tp`` its take profit (quote; ``tp`` <= 0 or not finite: none), ``amount`` its size
    (base). Contracts: ``SL`` stop-market and ``TP`` limit; spot: only ``SL``, a
    stop-limit (:func:`stop_limit_price`), the take profit being watched
    (:func:`take_profit_reached`)."""
    side = SIDE[-pos]
    if spot:
        return {"SL": (side, "stop_limit", stop_limit_price(stop, side, tick, offset), stop,
                       amount, True)}
    out = {"SL": (side, "stop_market", None, stop, amount, True)}
    if tp > 0 and math.isfinite(tp):
        out["TP"] = (side, "limit", tp, None, amount, True)
    return out


def take_profit_reached(pos: int, tp: float, price: float) -> bool:
    """Whether ``price`` (quote) reached take profit ``tp`` of a position of side
    ``pos``: at or above it for a long, at or below for a short (False without a take
    profit or a finite price)."""
    if pos == 0 or not (tp > 0 and math.isfinite(tp)) or not (price > 0
                                                              and math.isfinite(price)):
        return False
    return pos * price >= pos * tp
