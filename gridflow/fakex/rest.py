"""The Binance USDⓈ-M REST endpoints the fake exchange serves, as ccxt calls them.

Each handler takes the :class:`~gridflow.fakex.book.Book` and the request parameters
(strings) and returns the JSON body, or raises
:class:`~gridflow.fakex.markets.BinanceError`. Field names and formats follow the real
API (numbers as strings; prices in quote, amounts in base, times in ms UTC).
JSON builders live in :mod:`gridflow.fakex.views`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from gridflow.fakex import views
from gridflow.fakex.book import ALGO_TYPES, OPEN, Book
from gridflow.fakex.markets import BinanceError, MarketSpec, exchange_info
from gridflow.fakex.symbol_config import ROUTES as SYMBOL_CONFIG_ROUTES

__all__ = ["ROUTES"]

Params = dict[str, str]
_TIFS = ("GTC", "IOC", "FOK", "GTX")


def _missing(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, "
                               "or malformed.")


def _float(p: Params, name: str, required: bool = False) -> float | None:
    v = p.get(name)
    if v in (None, ""):
        if required:
            raise _missing(name)
        return None
    try:
        return float(v)
    except ValueError:
        raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal "
                                  "range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.") from None


def _int(p: Params, name: str, default: int | None = None) -> int | None:
    v = p.get(name)
    if v in (None, ""):
        return default
    try:
        return int(v)
    except ValueError:
        raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal "
                                  "range is '^[0-9]{1,20}$'.") from None


def _bool(p: Params, name: str) -> bool:
    v = p.get(name)
    if v in (None, ""):
        return False
    if v.lower() not in ("true", "false"):
        raise BinanceError(-1130, f"Data sent for parameter '{name}' is not valid.")
    return v.lower() == "true"


def _limit(p: Params, default: int, maximum: int) -> int:
    n = _int(p, "limit", default)
    if n is None or n <= 0 or n > maximum:
        raise BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")
    return n


def _spec(book: Book, p: Params, required: bool = True) -> MarketSpec | None:
    if not p.get("symbol"):
        if required:
            raise _missing("symbol")
        return None
    return book.spec_by_id(p["symbol"])


def _side(p: Params) -> str:
    side = p.get("side")
    if side not in ("BUY", "SELL"):
        raise BinanceError(-1117, "Invalid side.")
    if p.get("positionSide") not in (None, "", "BOTH"):
        raise BinanceError(-4061, "Order's position side does not match user's setting.")
    return side


def _tif(p: Params, required: bool) -> str:
    tif = p.get("timeInForce")
    if tif in (None, ""):
        if required:
            raise _missing("timeInForce")
        return "GTC"
    if tif not in _TIFS:
        raise BinanceError(-1115, "Invalid timeInForce.")
    return tif


def _window(items: list, p: Params, key: Callable[[Any], int], id_key: Callable[[Any], int],
            id_param: str, default: int, maximum: int) -> list:
    """Binance history paging: ``id_param`` (>=), ``startTime``/``endTime`` on ``key``,
    ``limit``; without a start (id or time), the most recent ``limit`` items."""
    limit = _limit(p, default, maximum)
    from_id, start, end = _int(p, id_param), _int(p, "startTime"), _int(p, "endTime")
    out = [x for x in items
           if (from_id is None or id_key(x) >= from_id)
           and (start is None or key(x) >= start) and (end is None or key(x) <= end)]
    out.sort(key=lambda x: (key(x), id_key(x)) if from_id is None else id_key(x))
    return out[:limit] if (from_id is not None or start is not None) else out[-limit:]


# ------------------------------------------------------------------ public
def get_ping(book: Book, p: Params) -> Any:
    return {}


def get_time(book: Book, p: Params) -> Any:
    return {"serverTime": book.feed.now}


def get_exchange_info(book: Book, p: Params) -> Any:
    return exchange_info(book.specs, book.feed.now)


def get_klines(book: Book, p: Params) -> Any:
    spec = _spec(book, p)
    if p.get("interval") != book.feed.timeframe:
        raise BinanceError(-1120, "Invalid interval.")
    limit = _limit(p, 500, 1500)
    return book.feed.klines(spec.symbol, _int(p, "startTime"), _int(p, "endTime"), limit)


def _specs_for(book: Book, p: Params) -> tuple[list[MarketSpec], bool]:
    spec = _spec(book, p, required=False)
    return ([spec], True) if spec else (list(book.specs.values()), False)


def get_ticker_24hr(book: Book, p: Params) -> Any:
    specs, one = _specs_for(book, p)
    out = [views.ticker_json(book, s) for s in specs]
    return out[0] if one else out


def get_ticker_price(book: Book, p: Params) -> Any:
    specs, one = _specs_for(book, p)
    out = [{"symbol": s.id, "price": s.price_str(book.price(s.symbol)), "time": book.feed.now}
           for s in specs]
    return out[0] if one else out


def get_funding_rate(book: Book, p: Params) -> Any:
    """Funding rate history (``symbol`` required here; Binance also lists all)."""
    spec = _spec(book, p)
    limit = _limit(p, 100, 1000)
    if book.funding is None:
        return []
    rows = book.funding.history(spec.symbol, book.feed.now, _int(p, "startTime"),
                                _int(p, "endTime"), limit)
    return [{"symbol": spec.id, "fundingTime": t, "fundingRate": f"{r:.8f}",
             "markPrice": ""} for t, r in rows]


def get_premium_index(book: Book, p: Params) -> Any:
    specs, one = _specs_for(book, p)
    out = [views.mark_json(book, s) for s in specs]
    return out[0] if one else out


# ----------------------------------------------------------------- orders
def post_order(book: Book, p: Params) -> Any:
    spec = _spec(book, p)
    side = _side(p)
    typ = p.get("type")
    if typ in (*ALGO_TYPES, "TRAILING_STOP_MARKET"):
        raise BinanceError(-4120, "Order type not supported for this endpoint. Please use the "
                                  "Algo Order API endpoints instead.")
    if typ not in ("LIMIT", "MARKET"):
        raise BinanceError(-1116, "Invalid orderType.")
    if _bool(p, "closePosition"):
        raise BinanceError(-1106, "Parameter 'closePosition' sent when not required.")
    qty = _float(p, "quantity", required=True)
    price = _float(p, "price", required=typ == "LIMIT")
    tif = _tif(p, required=typ == "LIMIT")
    o = book.place(spec, side, typ, qty, price, tif, _bool(p, "reduceOnly"),
                   p.get("newClientOrderId"))
    return views.order_json(o, spec)


BATCH_PLACE_MAX = 5
"""Binance USDⓈ-M ``POST /fapi/v1/batchOrders``: at most 5 orders."""
BATCH_CANCEL_MAX = 10
"""Binance USDⓈ-M ``DELETE /fapi/v1/batchOrders``: at most 10 ids."""


def _json_list(p: Params, name: str, most: int) -> list:
    raw = p.get(name)
    if raw is None or raw == "":
        raise _missing(name)
    try:
        items = json.loads(raw)
    except ValueError:
        raise BinanceError(-1130, f"Data sent for parameter '{name}' is not valid.") from None
    if not isinstance(items, list) or not items:
        raise BinanceError(-1130, f"Data sent for parameter '{name}' is not valid.")
    if len(items) > most:
        raise BinanceError(-1130, f"Data sent for parameter '{name}' is not valid: more "
                                  f"than {most} items.")
    return items


def _text(v: Any) -> str:
    """A JSON value of a batch item as the string a query parameter would be."""
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


def _one(handler: Handler, book: Book, item: Params) -> Any:
    """One item of a batch: its answer, or the error object Binance puts in its place."""
    try:
        return handler(book, item)
    except BinanceError as e:
        return {"code": e.code, "msg": e.msg}


def batch_client_ids(p: Params) -> list[str]:
    """The client ids a batch request names, in order (for the request log; ``[]``
    when its lists do not parse: the handler refuses the request)."""
    lower = {k.lower(): v for k, v in p.items()}
    raw = lower.get("batchorders") or lower.get("origclientorderidlist")
    try:
        items = json.loads(raw) if raw else []
    except ValueError:
        return []
    if not isinstance(items, list):
        return []
    return [str(i.get("newClientOrderId") or "") if isinstance(i, dict) else str(i)
            for i in items]


def post_batch_orders(book: Book, p: Params) -> Any:
    """``POST /fapi/v1/batchOrders``: each order as ``POST /fapi/v1/order`` would take
    it, in the list's order; a refused one leaves an error object in its place and does
    not stop the others."""
    items = _json_list(p, "batchOrders", BATCH_PLACE_MAX)
    return [_one(post_order, book, {k: _text(v) for k, v in item.items()})
            if isinstance(item, dict) else {"code": -1130, "msg": "Data sent is not valid."}
            for item in items]


def delete_batch_orders(book: Book, p: Params) -> Any:
    """``DELETE /fapi/v1/batchOrders``: ``symbol`` and ``orderIdList`` or
    ``origClientOrderIdList`` (a JSON list); an answer or an error object per id."""
    spec = _spec(book, p)
    lower = {k.lower(): k for k in p}  # ccxt sends them lower-cased; Binance takes both
    p = {**p, **{name: p[lower[name.lower()]] for name in ("orderIdList", "origClientOrderIdList")
                 if name.lower() in lower}}
    if p.get("orderIdList"):
        key, ids = "orderId", _json_list(p, "orderIdList", BATCH_CANCEL_MAX)
    elif p.get("origClientOrderIdList"):
        key, ids = "origClientOrderId", _json_list(p, "origClientOrderIdList",
                                                   BATCH_CANCEL_MAX)
    else:
        raise BinanceError(-1102, "Either orderIdList or origClientOrderIdList must be sent.")
    return [_one(delete_order, book, {"symbol": spec.id, key: str(i)}) for i in ids]


def _order_ref(p: Params) -> tuple[str | None, str | None]:
    oid, cid = p.get("orderId"), p.get("origClientOrderId")
    if not oid and not cid:
        raise BinanceError(-1102, "Either orderId or origClientOrderId must be sent.")
    return oid, cid


def delete_order(book: Book, p: Params) -> Any:
    spec = _spec(book, p)
    o = book.find_order(spec.symbol, *_order_ref(p), code=-2011)
    book.cancel(o)
    return views.order_json(o, spec)


def get_order(book: Book, p: Params) -> Any:
    spec = _spec(book, p)
    return views.order_json(book.find_order(spec.symbol, *_order_ref(p), code=-2013), spec)


def get_open_orders(book: Book, p: Params) -> Any:
    spec = _spec(book, p, required=False)
    return [views.order_json(o, book.specs[o.symbol])
            for o in book.open_orders(None if spec is None else spec.symbol)]


def get_all_orders(book: Book, p: Params) -> Any:
    spec = _spec(book, p)
    mine = [o for o in book.orders.values() if o.symbol == spec.symbol]
    rows = _window(mine, p, lambda o: o.time, lambda o: o.order_id, "orderId", 500, 1000)
    return [views.order_json(o, spec) for o in rows]


def delete_all_open_orders(book: Book, p: Params) -> Any:
    spec = _spec(book, p)
    for o in book.open_orders(spec.symbol):
        if o.status in OPEN:
            book.cancel(o)
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


# ------------------------------------------------------------ algo orders
def post_algo_order(book: Book, p: Params) -> Any:
    spec = _spec(book, p)
    side = _side(p)
    if p.get("algoType") != "CONDITIONAL":
        raise BinanceError(-1130, "Data sent for parameter 'algoType' is not valid.")
    typ = p.get("type") or p.get("orderType")
    if typ not in ALGO_TYPES:
        raise BinanceError(-1116, "Invalid orderType.")
    close = _bool(p, "closePosition")
    qty = _float(p, "quantity", required=not close)
    if close and qty:
        raise BinanceError(-4137, "Quantity must be zero with closePosition equals true")
    trigger = _float(p, "triggerPrice", required=True)
    price = _float(p, "price", required=typ in ("STOP", "TAKE_PROFIT"))
    tif = _tif(p, required=False)
    a = book.place_algo(spec, side, typ, qty, trigger, price, tif, _bool(p, "reduceOnly"),
                        close, p.get("clientAlgoId"))
    return views.algo_json(book, a, spec)


def _algo_ref(p: Params) -> tuple[str | None, str | None]:
    aid, cid = p.get("algoId"), p.get("clientAlgoId")
    if not aid and not cid:
        raise BinanceError(-1102, "Either algoId or clientAlgoId must be sent.")
    return aid, cid


def delete_algo_order(book: Book, p: Params) -> Any:
    spec = _spec(book, p, required=False)
    a = book.find_algo(spec.symbol if spec else None, *_algo_ref(p), code=-2011)
    book.cancel_algo(a)
    return {"algoId": a.algo_id, "clientAlgoId": a.client_id, "code": "200", "msg": "success"}


def get_algo_order(book: Book, p: Params) -> Any:
    spec = _spec(book, p, required=False)
    a = book.find_algo(spec.symbol if spec else None, *_algo_ref(p), code=-2013)
    return views.algo_json(book, a, book.specs[a.symbol])


def get_open_algo_orders(book: Book, p: Params) -> Any:
    spec = _spec(book, p, required=False)
    return [views.algo_json(book, a, book.specs[a.symbol])
            for a in book.open_algos(None if spec is None else spec.symbol)]


def get_all_algo_orders(book: Book, p: Params) -> Any:
    spec = _spec(book, p)
    mine = [a for a in book.algos.values() if a.symbol == spec.symbol]
    rows = _window(mine, p, lambda a: a.time, lambda a: a.algo_id, "algoId", 500, 1000)
    return [views.algo_json(book, a, spec) for a in rows]


def delete_algo_open_orders(book: Book, p: Params) -> Any:
    spec = _spec(book, p)
    for a in book.open_algos(spec.symbol):
        if a.status == "NEW":
            book.cancel_algo(a)
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


# ---------------------------------------------------------------- account
def get_user_trades(book: Book, p: Params) -> Any:
    spec = _spec(book, p)
    oid = _int(p, "orderId")
    mine = [t for t in book.trades if t.symbol == spec.symbol
            and (oid is None or t.order_id == oid)]
    rows = _window(mine, p, lambda t: t.time, lambda t: t.id, "fromId", 500, 1000)
    return [views.trade_json(t, spec) for t in rows]


_WEEK_MS = 7 * 86_400_000


def get_income(book: Book, p: Params) -> Any:
    """Income history (``FUNDING_FEE``, ``REALIZED_PNL``, ``COMMISSION`` rows):
    ``symbol``, ``incomeType`` filters; ``startTime``/``endTime``
    (inclusive); ``limit`` (default 100, max 1000). Without a start: the most recent
    ``limit`` rows (only the last 7 days when neither time is sent), oldest first."""
    spec = _spec(book, p, required=False)
    kind = p.get("incomeType") or None
    limit = _limit(p, 100, 1000)
    start, end = _int(p, "startTime"), _int(p, "endTime")
    if start is None and end is None:
        start = book.feed.now - _WEEK_MS
        tail = True
    else:
        tail = start is None
    rows = [r for r in views.incomes(book)
            if (spec is None or r["symbol"] == spec.id)
            and (kind is None or r["incomeType"] == kind)
            and (start is None or r["time"] >= start) and (end is None or r["time"] <= end)]
    return rows[-limit:] if tail else rows[:limit]


def get_account(book: Book, p: Params) -> Any:
    return views.account_json(book)


def get_position_risk_v2(book: Book, p: Params) -> Any:
    spec = _spec(book, p, required=False)
    return [views.position_json(book, s, v2=True) for s in book.specs.values()
            if spec is None or s is spec]


def get_position_risk_v3(book: Book, p: Params) -> Any:
    spec = _spec(book, p, required=False)
    return [views.position_json(book, s, v2=False) for s in book.specs.values()
            if (spec is None or s is spec) and book.position(s.symbol).amount != 0]


def get_leverage_bracket(book: Book, p: Params) -> Any:
    spec = _spec(book, p, required=False)
    return [views.bracket_json(s) for s in book.specs.values() if spec is None or s is spec]


def post_leverage(book: Book, p: Params) -> Any:
    spec = _spec(book, p)
    lev = _int(p, "leverage")
    if lev is None:
        raise _missing("leverage")
    if not 1 <= lev <= 125:
        raise BinanceError(-4028, f"Leverage {lev} is not valid")
    book.leverages[spec.symbol] = lev
    return {"leverage": lev, "maxNotionalValue": "1000000000", "symbol": spec.id}


def get_dual_side(book: Book, p: Params) -> Any:
    return {"dualSidePosition": False}


Handler = Callable[[Book, Params], Any]

ROUTES: dict[tuple[str, str], tuple[Handler, bool]] = {
    ("GET", "/fapi/v1/ping"): (get_ping, False),
    ("GET", "/fapi/v1/time"): (get_time, False),
    ("GET", "/fapi/v1/exchangeInfo"): (get_exchange_info, False),
    ("GET", "/fapi/v1/klines"): (get_klines, False),
    ("GET", "/fapi/v1/ticker/24hr"): (get_ticker_24hr, False),
    ("GET", "/fapi/v1/ticker/price"): (get_ticker_price, False),
    ("GET", "/fapi/v2/ticker/price"): (get_ticker_price, False),
    ("GET", "/fapi/v1/premiumIndex"): (get_premium_index, False),
    ("GET", "/fapi/v1/fundingRate"): (get_funding_rate, False),
    ("POST", "/fapi/v1/order"): (post_order, True),
    ("DELETE", "/fapi/v1/order"): (delete_order, True),
    ("GET", "/fapi/v1/order"): (get_order, True),
    ("GET", "/fapi/v1/openOrders"): (get_open_orders, True),
    ("GET", "/fapi/v1/allOrders"): (get_all_orders, True),
    ("DELETE", "/fapi/v1/allOpenOrders"): (delete_all_open_orders, True),
    ("POST", "/fapi/v1/batchOrders"): (post_batch_orders, True),
    ("DELETE", "/fapi/v1/batchOrders"): (delete_batch_orders, True),
    ("POST", "/fapi/v1/algoOrder"): (post_algo_order, True),
    ("DELETE", "/fapi/v1/algoOrder"): (delete_algo_order, True),
    ("GET", "/fapi/v1/algoOrder"): (get_algo_order, True),
    ("GET", "/fapi/v1/openAlgoOrders"): (get_open_algo_orders, True),
    ("GET", "/fapi/v1/allAlgoOrders"): (get_all_algo_orders, True),
    ("DELETE", "/fapi/v1/algoOpenOrders"): (delete_algo_open_orders, True),
    ("GET", "/fapi/v1/userTrades"): (get_user_trades, True),
    ("GET", "/fapi/v1/income"): (get_income, True),
    ("GET", "/fapi/v2/account"): (get_account, True),
    ("GET", "/fapi/v3/account"): (get_account, True),
    ("GET", "/fapi/v2/balance"): (lambda b, p: views.account_json(b)["assets"], True),
    ("GET", "/fapi/v3/balance"): (lambda b, p: views.account_json(b)["assets"], True),
    ("GET", "/fapi/v2/positionRisk"): (get_position_risk_v2, True),
    ("GET", "/fapi/v3/positionRisk"): (get_position_risk_v3, True),
    ("GET", "/fapi/v1/leverageBracket"): (get_leverage_bracket, True),
    ("POST", "/fapi/v1/leverage"): (post_leverage, True),
    ("GET", "/fapi/v1/positionSide/dual"): (get_dual_side, True),
    **SYMBOL_CONFIG_ROUTES,  # symbolConfig, marginType
}
