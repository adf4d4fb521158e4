"""What a venue's market lets the live path do, decided from ccxt in one place.

The gateway, the batch path and the live engine ask :func:`capabilities` instead of
testing exchange ids at each call site. Everything comes from the ccxt class: the
market (``spot`` / ``contract`` / ``linear``), ``exchange.features`` (ccxt's per-market
description of each method: whether ``fetchOrder`` finds trigger orders, ``hedged``
positions) and ``exchange.has``; the Binance USDⓈ-M batch endpoints are the implicit
API methods the class defines.

On the three venues (see README, *Venues*):

==================  ============  ===========  ========================
                    binanceusdm   bitget       binance (spot)
==================  ============  ===========  ========================
reduce-only         yes           yes          no (spot)
stop order          stop-market   stop-market  stop-limit
                    (algo order)  (plan order) (``STOP_LOSS_LIMIT``)
stop found by id    fetch_order   open/closed  fetch_order
                                  trigger list
TP and stop on the  yes           yes          no: the base balance is
same amount                                    locked by one of them
funding             yes           yes          no
batch orders        5 / 10        no           no
==================  ============  ===========  ========================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["BATCH_CANCEL_MAX", "BATCH_PLACE_MAX", "Capabilities", "capabilities"]

BATCH_PLACE_MAX = 5
"""Orders per ``POST /fapi/v1/batchOrders`` (Binance USDⓈ-M's limit)."""
BATCH_CANCEL_MAX = 10
"""Client ids per ``DELETE /fapi/v1/batchOrders`` (Binance USDⓈ-M's limit)."""


@dataclass(frozen=True)
class Capabilities:
    """What the live path may do on one market of one venue.

    Attributes
    ----------
    venue : str
        ccxt exchange id.
    spot : bool
        A spot market: no leverage, no shorts, balances in base and quote.
    reduce_only : bool
        Closing orders carry ``reduceOnly`` (contract markets).
    stop : "stop_market" or "stop_limit"
        The protective stop's order type: contract venues trigger a market order; on
        spot the stop-limit rests on the exchange with its limit beyond the trigger
        (``live.stop_limit_offset``).
    trigger_flag : bool
        Conditional orders are placed, cancelled and found with ccxt's
        ``{"trigger": True}`` (Binance algo orders, Bitget plan orders).
    trigger_lookup : "fetch_order" or "list"
        How a conditional order is found by client id: ``fetch_order`` (Binance algo
        orders by ``clientAlgoId``), or by listing the open and then the closed trigger
        orders (Bitget plan orders: its order-detail endpoint knows none).
    tp_and_stop_share_amount : bool
        A take profit and a stop may rest on the same position amount at once (spot:
        no, the base balance is locked by the first).
    hedge : bool
        The venue offers hedge mode (gridflow trades one-way either way).
    funding : bool
        Perpetual: funding settles on open positions.
    batch_place, batch_cancel : int
        Orders per batch request (0: one request per order).
    """

    venue: str
    spot: bool
    reduce_only: bool
    stop: Literal["stop_market", "stop_limit"]
    trigger_flag: bool
    trigger_lookup: Literal["fetch_order", "list"]
    tp_and_stop_share_amount: bool
    hedge: bool
    funding: bool
    batch_place: int
    batch_cancel: int


def _feature(ex: Any, market: dict, method: str) -> dict:
    """ccxt's ``features`` entry of ``method`` for ``market``'s type ({} if none)."""
    feats = getattr(ex, "features", None) or {}
    kind = "spot" if market.get("spot") else (market.get("type") or "swap")
    node = feats.get(kind) or {}
    if not market.get("spot"):  # contract features are split by settlement
        node = node.get("linear" if market.get("linear", True) else "inverse") or node
    return (node or {}).get(method) or {}


def capabilities(ex: Any, market: dict) -> Capabilities:
    """The :class:`Capabilities` of ``market`` (a loaded ccxt market) on ``ex``.

    Raises
    ------
    ValueError
        A market that is neither spot nor a contract.
    """
    spot, contract = bool(market.get("spot")), bool(market.get("contract"))
    if spot == contract:
        raise ValueError(f"{market.get('symbol')}: neither spot nor a contract market")
    batch = (contract and bool(market.get("linear"))
             and hasattr(ex, "fapiPrivatePostBatchOrders")
             and hasattr(ex, "fapiPrivateDeleteBatchOrders"))
    return Capabilities(
        venue=ex.id,
        spot=spot,
        reduce_only=contract,
        stop="stop_limit" if spot else "stop_market",
        trigger_flag=contract,
        trigger_lookup="fetch_order" if (spot or _feature(ex, market, "fetchOrder").get(
            "trigger")) else "list",
        tp_and_stop_share_amount=contract,
        hedge=bool(_feature(ex, market, "createOrder").get("hedged")),
        funding=contract and bool(ex.has.get("fetchFundingHistory")),
        batch_place=BATCH_PLACE_MAX if batch else 0,
        batch_cancel=BATCH_CANCEL_MAX if batch else 0,
    )
