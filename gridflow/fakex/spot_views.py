"""JSON shapes of the fake exchange's Binance spot dialect (``/api/v3/...`` bodies).

Binance spot sends numbers as strings with 8 decimals; prices in quote (USDT), amounts
in base, times in ms UTC (simulated clock). Orders carry ``orderListId: -1`` (no OCO),
``isWorking`` (false for a stop-limit waiting for its trigger, whose ``workingTime``
is -1) and ``selfTradePreventionMode``.
"""

from __future__ import annotations

from typing import Any

from gridflow.fakex import views
from gridflow.fakex.book import AlgoOrder, Trade
from gridflow.fakex.markets import MarketSpec, fmt
from gridflow.fakex.spot_book import STOP_TYPES, SpotBook, SpotOrder, kind, order_id

__all__ = ["account_json", "book_ticker_json", "cancel_json", "new_order_json", "order_json",
           "price_json", "ticker_json", "trade_json"]

_STP = "EXPIRE_MAKER"


def f8(x: float) -> str:
    """A number as Binance spot sends it: 8 decimals."""
    return fmt(x, 8)


def _core(x: SpotOrder, spec: MarketSpec) -> dict[str, Any]:
    """Fields every order shape shares."""
    waiting = isinstance(x, AlgoOrder)
    executed = 0.0 if waiting else x.executed
    cum = 0.0 if waiting else x.cum_quote
    return {
        "symbol": spec.id, "orderId": order_id(x), "orderListId": -1,
        "clientOrderId": x.client_id, "price": f8(x.price), "origQty": f8(x.qty),
        "executedQty": f8(executed), "cummulativeQuoteQty": f8(cum), "status": x.status,
        "timeInForce": x.tif, "type": kind(x), "side": x.side,
    }


def _working_time(book: SpotBook, x: SpotOrder) -> int:
    if isinstance(x, AlgoOrder):
        return -1
    if x.algo_id is not None:
        return book.algos[x.algo_id].trigger_time
    return x.time


def _stop(x: SpotOrder) -> float:
    return x.trigger if isinstance(x, AlgoOrder) else x.stop_price


def order_json(book: SpotBook, x: SpotOrder, spec: MarketSpec) -> dict[str, Any]:
    """``GET /api/v3/order`` shape (also ``openOrders``, ``allOrders``)."""
    return {
        **_core(x, spec), "stopPrice": f8(_stop(x)), "icebergQty": f8(0.0),
        "time": x.time, "updateTime": x.update_time,
        "isWorking": not isinstance(x, AlgoOrder), "workingTime": _working_time(book, x),
        "origQuoteOrderQty": f8(book.quote_qty.get(order_id(x), 0.0)),
        "selfTradePreventionMode": _STP,
    }


def new_order_json(book: SpotBook, x: SpotOrder, spec: MarketSpec, resp: str,
                   fills: list[Trade]) -> dict[str, Any]:
    """``POST /api/v3/order`` answer: ``ACK``, ``RESULT`` or ``FULL`` (with ``fills``,
    the trades the placement made)."""
    ack = {"symbol": spec.id, "orderId": order_id(x), "orderListId": -1,
           "clientOrderId": x.client_id, "transactTime": book.feed.now}
    if resp == "ACK":
        return ack
    out = {**_core(x, spec), "transactTime": book.feed.now,
           "origQuoteOrderQty": f8(book.quote_qty.get(order_id(x), 0.0)),
           "workingTime": _working_time(book, x), "selfTradePreventionMode": _STP}
    if kind(x) in STOP_TYPES:
        out["stopPrice"] = f8(_stop(x))
    if resp == "FULL":
        out["fills"] = [{"price": f8(t.price), "qty": f8(t.qty), "commission": f8(t.commission),
                         "commissionAsset": t.commission_asset, "tradeId": t.id} for t in fills]
    return out


def cancel_json(book: SpotBook, x: SpotOrder, spec: MarketSpec, cancel_cid: str
                ) -> dict[str, Any]:
    """``DELETE /api/v3/order`` answer: ``origClientOrderId`` is the order's client id,
    ``clientOrderId`` the cancel request's own."""
    out = {**_core(x, spec), "origClientOrderId": x.client_id,
           "clientOrderId": cancel_cid, "transactTime": book.feed.now,
           "selfTradePreventionMode": _STP}
    if kind(x) in STOP_TYPES:
        out["stopPrice"] = f8(_stop(x))
    return out


def trade_json(t: Trade, spec: MarketSpec) -> dict[str, Any]:
    """``GET /api/v3/myTrades`` row."""
    return {"symbol": spec.id, "id": t.id, "orderId": t.order_id, "orderListId": -1,
            "price": f8(t.price), "qty": f8(t.qty), "quoteQty": f8(t.qty * t.price),
            "commission": f8(t.commission), "commissionAsset": t.commission_asset,
            "time": t.time, "isBuyer": t.side == "BUY", "isMaker": t.maker,
            "isBestMatch": True}


def account_json(book: SpotBook, omit_zero: bool) -> dict[str, Any]:
    """``GET /api/v3/account``: commission rates and every asset's ``free`` /
    ``locked`` (assets at zero left out with ``omitZeroBalances``)."""
    mk, tk = book.maker_fee, book.taker_fee
    rows = [{"asset": a, "free": f8(v["free"]), "locked": f8(v["locked"])}
            for a, v in book.balance_table().items() if not (omit_zero and v["total"] == 0)]
    return {
        "makerCommission": round(mk * 10_000), "takerCommission": round(tk * 10_000),
        "buyerCommission": 0, "sellerCommission": 0,
        "commissionRates": {"maker": f8(mk), "taker": f8(tk), "buyer": f8(0.0),
                            "seller": f8(0.0)},
        "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
        "requireSelfTradePrevention": False, "preventSor": False,
        "updateTime": book.feed.now, "accountType": "SPOT", "balances": rows,
        "permissions": ["SPOT"], "uid": 354937868,
    }


def price_json(book: SpotBook, spec: MarketSpec) -> dict[str, Any]:
    """``GET /api/v3/ticker/price`` row: the path price now."""
    return {"symbol": spec.id, "price": f8(spec.round_price(book.price(spec.symbol)))}


def book_ticker_json(book: SpotBook, spec: MarketSpec) -> dict[str, Any]:
    """``GET /api/v3/ticker/bookTicker`` row: bid = ask = the path price now."""
    px = f8(spec.round_price(book.price(spec.symbol)))
    return {"symbol": spec.id, "bidPrice": px, "bidQty": f8(1.0), "askPrice": px,
            "askQty": f8(1.0)}


def ticker_json(book: SpotBook, spec: MarketSpec) -> dict[str, Any]:
    """``GET /api/v3/ticker/24hr`` row: the USDⓈ-M one (last 24 h of visible candles)
    with the spot book fields."""
    row = views.ticker_json(book, spec)
    px = row["lastPrice"]
    row.update(prevClosePrice=row["openPrice"], bidPrice=px, bidQty=f8(1.0), askPrice=px,
               askQty=f8(1.0), lastQty=f8(0.0))
    return row
