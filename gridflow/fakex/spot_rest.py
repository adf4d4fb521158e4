"""The Binance spot REST endpoints (``/api/v3/...``) the fake exchange serves, as
``ccxt.binance`` (``defaultType: "spot"``) calls them.

Each handler takes the :class:`~gridflow.fakex.spot_book.SpotBook` and the request
parameters (strings) and returns the JSON body, or raises
:class:`~gridflow.fakex.markets.BinanceError` with Binance's spot code and message.
Parameter parsing and history paging are the USDⓈ-M dialect's
(:mod:`gridflow.fakex.rest`); JSON shapes live in :mod:`gridflow.fakex.spot_views`.
Prices in quote, amounts in base, times in ms UTC.

Orders: ``LIMIT`` (``timeInForce`` GTC / IOC / FOK), ``MARKET`` (``quantity``, or
``quoteOrderQty`` in quote), ``LIMIT_MAKER``, ``STOP_LOSS_LIMIT`` and
``TAKE_PROFIT_LIMIT`` (``stopPrice``, ``price``, ``timeInForce``); ``newOrderRespType``
ACK / RESULT / FULL (default FULL for MARKET and LIMIT, ACK otherwise).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from gridflow.fakex import spot_views as sv
from gridflow.fakex.markets import BinanceError, MarketSpec
from gridflow.fakex.rest import (
    _float,
    _int,
    _limit,
    _missing,
    _side,
    _spec,
    _window,
    get_ping,
    get_time,
)
from gridflow.fakex.spot_book import SPOT_TYPES, STOP_TYPES, SpotBook, order_id
from gridflow.fakex.spot_markets import spot_exchange_info

__all__ = ["ROUTES"]

Params = dict[str, str]
_TIFS = ("GTC", "IOC", "FOK")
_RESP = ("ACK", "RESULT", "FULL")
_DAY_MS = 86_400_000


def _not_required(name: str) -> BinanceError:
    return BinanceError(-1106, f"Parameter '{name}' sent when not required.")


def _specs(book: SpotBook, p: Params) -> tuple[list[MarketSpec], bool]:
    """``symbol`` (one row), ``symbols`` (a JSON list) or every symbol."""
    if p.get("symbol"):
        return [book.spec_by_id(p["symbol"])], True
    raw = p.get("symbols")
    if not raw:
        return list(book.specs.values()), False
    try:
        ids = json.loads(raw)
    except ValueError:
        ids = None
    if not isinstance(ids, list) or not ids:
        raise BinanceError(-1100, "Illegal characters found in parameter 'symbols'.")
    return [book.spec_by_id(str(i)) for i in ids], False


def _rows(book: SpotBook, p: Params, row: Callable[[SpotBook, MarketSpec], Any]) -> Any:
    specs, one = _specs(book, p)
    out = [row(book, s) for s in specs]
    return out[0] if one else out


# ------------------------------------------------------------------ public
def get_exchange_info(book: SpotBook, p: Params) -> Any:
    """``GET /api/v3/exchangeInfo`` (``symbol`` / ``symbols`` narrow it)."""
    return spot_exchange_info(_specs(book, p)[0], book.feed.now)


def get_klines(book: SpotBook, p: Params) -> Any:
    """``GET /api/v3/klines``: ``interval`` must be the fake's timeframe; ``startTime``,
    ``endTime``, ``limit`` (default 500, at most 1000); closed candles and the forming
    one as walked so far."""
    spec = _spec(book, p)
    if p.get("interval") != book.feed.timeframe:
        raise BinanceError(-1120, "Invalid interval.")
    limit = _limit(p, 500, 1000)
    return book.feed.klines(spec.symbol, _int(p, "startTime"), _int(p, "endTime"), limit)


def get_ticker_price(book: SpotBook, p: Params) -> Any:
    return _rows(book, p, sv.price_json)


def get_book_ticker(book: SpotBook, p: Params) -> Any:
    return _rows(book, p, sv.book_ticker_json)


def get_ticker_24hr(book: SpotBook, p: Params) -> Any:
    return _rows(book, p, sv.ticker_json)


# ----------------------------------------------------------------- orders
def _order_type(p: Params) -> str:
    typ = p.get("type")
    if not typ:
        raise _missing("type")
    if typ not in SPOT_TYPES:
        raise BinanceError(-1116, "Invalid orderType.")
    return typ


def _tif(p: Params, typ: str) -> str:
    tif = p.get("timeInForce") or None
    if typ in ("LIMIT", *STOP_TYPES):
        if tif is None:
            raise _missing("timeInForce")
    elif tif is not None:
        raise _not_required("timeInForce")
    if tif is not None and tif not in _TIFS:
        raise BinanceError(-1115, "Invalid timeInForce.")
    return tif or "GTC"


def post_order(book: SpotBook, p: Params) -> Any:
    """``POST /api/v3/order`` (see the module docstring)."""
    spec = _spec(book, p)
    side = _side(p)
    typ = _order_type(p)
    tif = _tif(p, typ)
    qty, quote_qty = _float(p, "quantity"), _float(p, "quoteOrderQty")
    price, stop = _float(p, "price"), _float(p, "stopPrice")
    if typ == "MARKET":
        if qty is None and quote_qty is None:
            raise BinanceError(-1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but "
                                      "both were empty/null!")
        for name, v in (("quoteOrderQty", quote_qty if qty is not None else None),
                        ("price", price)):
            if v is not None:
                raise _not_required(name)
    else:
        if quote_qty is not None:
            raise _not_required("quoteOrderQty")
        if qty is None:
            raise _missing("quantity")
        if price is None:
            raise _missing("price")
    if typ in STOP_TYPES and stop is None:
        raise _missing("stopPrice")
    if typ not in STOP_TYPES and stop is not None:
        raise _not_required("stopPrice")
    resp = p.get("newOrderRespType") or ("FULL" if typ in ("MARKET", "LIMIT") else "ACK")
    if resp not in _RESP:
        raise BinanceError(-1130, "Data sent for parameter 'newOrderRespType' is not valid.")
    n0 = len(book.trades)
    x = book.place_spot(spec, side, typ, qty, price, stop, tif, p.get("newClientOrderId"),
                        quote_qty)
    return sv.new_order_json(book, x, spec, resp, list(book.trades)[n0:])


def _ref(p: Params) -> tuple[int | None, str | None]:
    oid, cid = _int(p, "orderId"), p.get("origClientOrderId") or None
    if oid is None and cid is None:
        raise BinanceError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but "
                                  "both were empty/null!")
    return oid, cid


def get_order(book: SpotBook, p: Params) -> Any:
    spec = _spec(book, p)
    return sv.order_json(book, book.find_spot(spec.symbol, *_ref(p), code=-2013), spec)


def delete_order(book: SpotBook, p: Params) -> Any:
    """``DELETE /api/v3/order``: -2011 for an unknown order or one already done."""
    spec = _spec(book, p)
    x = book.find_spot(spec.symbol, *_ref(p), code=-2011)
    book.cancel_spot(x)
    cancel_cid = p.get("newClientOrderId") or f"fakexcancel{x.client_id}"[:36]
    return sv.cancel_json(book, x, spec, cancel_cid)


def get_open_orders(book: SpotBook, p: Params) -> Any:
    """``GET /api/v3/openOrders``, of ``symbol`` or all, waiting stops included."""
    spec = _spec(book, p, required=False)
    return [sv.order_json(book, x, book.specs[x.symbol])
            for x in book.open_spot(None if spec is None else spec.symbol)]


def delete_open_orders(book: SpotBook, p: Params) -> Any:
    """``DELETE /api/v3/openOrders``: cancel every open order of ``symbol``."""
    spec = _spec(book, p)
    out = []
    for x in book.open_spot(spec.symbol):
        book.cancel_spot(x)
        out.append(sv.cancel_json(book, x, spec, f"fakexcancel{x.client_id}"[:36]))
    if not out:
        raise BinanceError(-2011, "Unknown order sent.")
    return out


def _span(p: Params) -> None:
    start, end = _int(p, "startTime"), _int(p, "endTime")
    if start is not None and end is not None and end - start > _DAY_MS:
        raise BinanceError(-1127, "More than 24 hours between startTime and endTime.")


def get_all_orders(book: SpotBook, p: Params) -> Any:
    """``GET /api/v3/allOrders``: ``orderId`` (>=), ``startTime`` / ``endTime`` (at
    most 24 h apart), ``limit`` (default 500, at most 1000), oldest first; without a
    start, the most recent ``limit``."""
    spec = _spec(book, p)
    _span(p)
    rows = _window(book.all_spot(spec.symbol), p, lambda x: x.time, order_id, "orderId",
                   500, 1000)
    return [sv.order_json(book, x, spec) for x in rows]


def get_my_trades(book: SpotBook, p: Params) -> Any:
    """``GET /api/v3/myTrades``: ``orderId``, ``fromId`` (>=, not with a time),
    ``startTime`` / ``endTime`` (at most 24 h apart), ``limit`` (default 500, at most
    1000), oldest first; without a start, the most recent ``limit``."""
    spec = _spec(book, p)
    if p.get("fromId") and (p.get("startTime") or p.get("endTime")):
        raise BinanceError(-1128, "Combination of optional parameters invalid.")
    _span(p)
    oid = _int(p, "orderId")
    mine = [t for t in book.trades if t.symbol == spec.symbol
            and (oid is None or t.order_id == oid)]
    rows = _window(mine, p, lambda t: t.time, lambda t: t.id, "fromId", 500, 1000)
    return [sv.trade_json(t, spec) for t in rows]


def get_account(book: SpotBook, p: Params) -> Any:
    omit = (p.get("omitZeroBalances") or "").lower() == "true"
    return sv.account_json(book, omit)


Handler = Callable[[SpotBook, Params], Any]

ROUTES: dict[tuple[str, str], tuple[Handler, bool]] = {
    ("GET", "/api/v3/ping"): (get_ping, False),
    ("GET", "/api/v3/time"): (get_time, False),
    ("GET", "/api/v3/exchangeInfo"): (get_exchange_info, False),
    ("GET", "/api/v3/klines"): (get_klines, False),
    ("GET", "/api/v3/ticker/price"): (get_ticker_price, False),
    ("GET", "/api/v3/ticker/bookTicker"): (get_book_ticker, False),
    ("GET", "/api/v3/ticker/24hr"): (get_ticker_24hr, False),
    ("POST", "/api/v3/order"): (post_order, True),
    ("GET", "/api/v3/order"): (get_order, True),
    ("DELETE", "/api/v3/order"): (delete_order, True),
    ("GET", "/api/v3/openOrders"): (get_open_orders, True),
    ("DELETE", "/api/v3/openOrders"): (delete_open_orders, True),
    ("GET", "/api/v3/allOrders"): (get_all_orders, True),
    ("GET", "/api/v3/myTrades"): (get_my_trades, True),
    ("GET", "/api/v3/account"): (get_account, True),
}
