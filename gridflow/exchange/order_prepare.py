"""A place intent's ccxt arguments, checked locally before any request.

Prices are in quote currency, amounts in base currency. The order gateway
(:class:`~gridflow.exchange.gateway.OrderGateway`) calls :func:`prepare_place`; a
refusal here never reaches the exchange.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ccxt

from gridflow.events import OrderIntent
from gridflow.exchange.order_trace import Prepared
from gridflow.exchange.venue import Capabilities

__all__ = ["PreSendReject", "is_conditional", "prepare_place"]


def is_conditional(order_type: str) -> bool:
    """True for ``stop_market`` / ``stop_limit``: on a swap market they live in
    Binance's algo-order API and are addressed with ``{"trigger": True}``."""
    return order_type.startswith("stop_")


class PreSendReject(ValueError):
    """A local check refused the order before any request (precision, minimum amount,
    minimum notional, missing price)."""


def prepare_place(ex: Any, sym: str, caps: Capabilities, intent: OrderIntent,
                  stop_limit_offset: float, last_price: Callable[[], float | None]
                  ) -> Prepared:
    """The ccxt arguments of place ``intent`` on market ``sym`` (loaded in ``ex``).

    Amount and prices go through ccxt's precision; a ``stop_limit`` without a limit
    gets one ``stop_limit_offset`` (fraction) beyond its trigger; ``reduceOnly`` is sent
    where the market has it (``caps``). An order that is not reduce-only (on spot: every
    order, the exchange checks them all) must reach the market's minimum notional, at its price or stop, else at ``last_price()`` (None:
    left to the exchange).

    Raises
    ------
    PreSendReject
        Not a place, an amount below the market's minimum at its precision, a stop
        without a stop price, a limit without a price, a notional below the minimum.
    """
    market = ex.market(sym)
    if intent.action != "place" or intent.amount <= 0:
        raise PreSendReject(f"place needs amount > 0, got {intent.amount}")
    limits = market.get("limits") or {}
    min_amount = (limits.get("amount") or {}).get("min")
    try:
        amount = float(ex.amount_to_precision(sym, intent.amount))
    except ccxt.BaseError:  # ccxt refuses an amount that truncates to 0
        amount = 0.0
    if amount <= 0 or (min_amount is not None and amount < min_amount):
        raise PreSendReject(f"MIN_AMOUNT: amount {intent.amount} is {amount} at the "
                            f"precision of {sym}, below its minimum {min_amount}")
    kind = intent.type
    stop = intent.stop_price if intent.stop_price is not None else (
        intent.price if kind == "stop_market" else None)
    price = intent.price
    if kind in ("stop_market", "stop_limit") and stop is None:
        raise PreSendReject(f"{kind} {intent.client_order_id} needs a stop_price")
    if kind == "stop_limit" and price is None:
        off = stop_limit_offset
        price = stop * (1 - off) if intent.side == "sell" else stop * (1 + off)
    if kind == "limit" and price is None:
        raise PreSendReject(f"limit {intent.client_order_id} needs a price")
    if kind in ("market", "stop_market"):
        price = None
    else:
        price = float(ex.price_to_precision(sym, price))
    params: dict[str, Any] = {"clientOrderId": intent.client_order_id}
    if stop is not None:
        stop = float(ex.price_to_precision(sym, stop))
        params["stopPrice"] = stop
    if kind in ("limit", "stop_limit"):
        params["timeInForce"] = "GTC"
    if intent.reduce_only and caps.reduce_only:
        params["reduceOnly"] = True
    if not intent.reduce_only or not caps.reduce_only:  # spot checks every order
        _check_notional(sym, market, amount, price or stop or intent.price, last_price)
    ccxt_type = "limit" if kind in ("limit", "stop_limit") else "market"
    return Prepared(sym, ccxt_type, amount, price, params, is_conditional(kind))


def _check_notional(sym: str, market: dict, amount: float, ref: float | None,
                    last_price: Callable[[], float | None]) -> None:
    min_cost = ((market.get("limits") or {}).get("cost") or {}).get("min")
    if not min_cost:
        return
    if ref is None:  # a market order without a reference price: the last trade
        ref = last_price()
        if not ref:
            return  # the exchange will check it
    if amount * ref < min_cost:
        raise PreSendReject(f"MIN_NOTIONAL: {amount} x {ref} = {amount * ref:.8g} below the "
                            f"minimum {min_cost} of {sym} (not reduce-only)")
