"""Bitget v2 "mix" order endpoints of the fake exchange (one-way position mode).

Regular orders (``place-order``, ``cancel-order``, ``detail``, ``orders-pending``,
``orders-history``, ``fills``) map onto the book's LIMIT / MARKET orders. Plan orders
map onto its conditional (algo) orders and trigger along the same price path:

* ``place-plan-order`` ``planType=normal_plan``: triggers when the price reaches
  ``triggerPrice`` coming from where it is now (a sell below the price is a stop, above
  it a take-profit; a buy the other way round), then places a market order (or a limit
  at ``executePrice``);
* ``place-tpsl-order`` ``pos_loss`` / ``pos_profit``: close the whole position held on
  ``holdSide`` (one-way mode: ``buy`` = the long, ``sell`` = the short) at market;
  ``loss_plan`` / ``profit_plan``: a reduce-only market order of ``size``.

Handlers take the book and the parameters and return the ``data`` of the answer or
raise :class:`~gridflow.fakex.bitget_markets.BitgetError`. Prices in quote, amounts in
base, times in ms UTC.
"""

from __future__ import annotations

from typing import Any

from gridflow.fakex import bitget_views as bv
from gridflow.fakex.bitget_markets import BitgetError, from_binance
from gridflow.fakex.bitget_params import (
    Params,
    check_price,
    check_size,
    integer,
    margin_coin,
    missing,
    product_type,
    spec_of,
    text,
    window,
    yes_no,
)
from gridflow.fakex.book import OPEN, AlgoOrder, Book
from gridflow.fakex.markets import BinanceError, MarketSpec

__all__ = ["ORDER_ROUTES"]

_FORCE = {"GTC": "GTC", "IOC": "IOC", "FOK": "FOK", "POST_ONLY": "GTX"}
_TPSL = ("pos_loss", "pos_profit", "loss_plan", "profit_plan")


def _book_call(spec: MarketSpec, fn, *args: Any) -> Any:
    try:
        return fn(*args)
    except BinanceError as e:
        raise from_binance(e, spec.min_notional) from None


def _common(book: Book, p: Params) -> MarketSpec:
    product_type(p)
    margin_coin(p)
    return spec_of(book, p)


def _side(p: Params) -> str:
    side = (text(p, "side", True) or "").lower()
    if side not in ("buy", "sell"):
        raise BitgetError("40017", "Parameter verification failed side")
    if text(p, "tradeSide") is not None:
        raise BitgetError("40774", "The order type for unilateral position must also be "
                                   "the unilateral position type.")
    return side.upper()


def _order_type(p: Params) -> str:
    typ = (text(p, "orderType", True) or "").lower()
    if typ not in ("limit", "market"):
        raise BitgetError("40017", "Parameter verification failed orderType")
    return typ.upper()


def _margin_mode(p: Params, required: bool) -> None:
    mode = text(p, "marginMode", required)
    if mode is not None and mode.lower() not in ("crossed", "isolated"):
        raise BitgetError("40017", "Parameter verification failed marginMode")


def _cid(p: Params) -> str | None:
    cid = text(p, "clientOid")
    if cid is not None and len(cid) > 50:
        raise BitgetError("40304", "clientOid or clientOrderId length cannot greater than 50")
    return cid


# ---------------------------------------------------------------- regular
def place_order(book: Book, p: Params) -> Any:
    """``POST /api/v2/mix/order/place-order``: ``symbol``, ``productType``,
    ``marginMode``, ``marginCoin``, ``size``, ``price`` (limit), ``side``,
    ``orderType``, ``force`` (gtc / ioc / fok / post_only), ``clientOid``,
    ``reduceOnly`` (YES / NO). Returns ``{"clientOid", "orderId"}``."""
    spec = _common(book, p)
    _margin_mode(p, True)
    side, typ = _side(p), _order_type(p)
    reduce = yes_no(p, "reduceOnly")
    qty = check_size(spec, text(p, "size"), reduce)
    price = check_price(spec, text(p, "price")) if typ == "LIMIT" else None
    force = (text(p, "force") or "gtc").upper()
    if force not in _FORCE:
        raise BitgetError("40017", "Parameter verification failed force")
    if text(p, "presetStopSurplusPrice") or text(p, "presetStopLossPrice"):
        raise BitgetError("40017", "Parameter verification failed: fakex does not serve "
                                   "preset take-profit / stop-loss")
    o = _book_call(spec, book.place, spec, side, typ, qty, price,
                   _FORCE[force] if typ == "LIMIT" else "GTC", reduce, _cid(p))
    return {"clientOid": o.client_id, "orderId": str(o.order_id)}


def _ref(p: Params) -> tuple[str | None, str | None]:
    oid, cid = text(p, "orderId"), text(p, "clientOid")
    if not oid and not cid:
        raise BitgetError("40924", "orderId and clientOid must have one")
    return oid, cid


def cancel_order(book: Book, p: Params) -> Any:
    """``POST /api/v2/mix/order/cancel-order`` by ``orderId`` or ``clientOid``;
    an unknown or finished order: 40768 (ccxt ``OrderNotFound``)."""
    spec = _common(book, p)
    oid, cid = _ref(p)
    try:
        o = book.find_order(spec.symbol, oid, cid, code=-2011)
        book.cancel(o)
    except BinanceError as e:
        raise from_binance(e) from None
    return {"orderId": str(o.order_id), "clientOid": o.client_id}


def order_detail(book: Book, p: Params) -> Any:
    """``GET /api/v2/mix/order/detail`` by ``orderId`` or ``clientOid``; unknown:
    40109 (ccxt ``OrderNotFound``)."""
    spec = _common(book, p)
    oid, cid = _ref(p)
    o = _book_call(spec, book.find_order, spec.symbol, oid, cid, -2013)
    return bv.order_json(book, o, spec, key="state")


def _orders(book: Book, p: Params, open_: bool) -> Any:
    product_type(p)
    spec = spec_of(book, p, required=False)
    oid, cid = integer(p, "orderId"), text(p, "clientOid")
    status = text(p, "status")
    rows = [o for o in book.orders.values()
            if (o.status in OPEN) == open_ and (spec is None or o.symbol == spec.symbol)
            and (oid is None or o.order_id == oid) and (cid is None or o.client_id == cid)]
    rows, end_id = window(rows, p, lambda o: o.time, lambda o: o.order_id, 100, 100)
    out = [bv.order_json(book, o, book.specs[o.symbol], key="status") for o in rows]
    if status:
        out = [r for r in out if r["status"] == status]
    return {"entrustedList": out, "endId": end_id}


def orders_pending(book: Book, p: Params) -> Any:
    """``GET /api/v2/mix/order/orders-pending`` (``symbol`` optional), newest first."""
    return _orders(book, p, True)


def orders_history(book: Book, p: Params) -> Any:
    """``GET /api/v2/mix/order/orders-history``: filled and cancelled orders."""
    return _orders(book, p, False)


def fills(book: Book, p: Params) -> Any:
    """``GET /api/v2/mix/order/fills`` (and ``fill-history``): ``symbol``,
    ``orderId``, ``startTime``/``endTime``, ``idLessThan``, ``limit`` (max 100);
    ``{"fillList": [...], "endId"}`` newest first."""
    product_type(p)
    spec = spec_of(book, p, required=False)
    oid = integer(p, "orderId")
    rows = [t for t in book.trades if (spec is None or t.symbol == spec.symbol)
            and (oid is None or t.order_id == oid)]
    rows, end_id = window(rows, p, lambda t: t.time, lambda t: t.id, 100, 100)
    return {"fillList": [bv.fill_json(t, book.specs[t.symbol]) for t in rows],
            "endId": end_id}


# ------------------------------------------------------------------ plans
def _trigger_type(p: Params) -> None:
    kind = text(p, "triggerType")
    if kind is not None and kind not in ("mark_price", "fill_price"):
        raise BitgetError("40017", "Parameter verification failed triggerType")


def place_plan_order(book: Book, p: Params) -> Any:
    """``POST /api/v2/mix/order/place-plan-order`` ``planType=normal_plan``:
    ``triggerPrice``, ``side``, ``size``, ``orderType`` (``executePrice`` / ``price``
    for limit), ``reduceOnly``, ``clientOid``. Returns ``{"orderId", "clientOid"}``."""
    spec = _common(book, p)
    plan = text(p, "planType") or "normal_plan"
    if plan != "normal_plan":
        raise BitgetError("40017", f"Parameter verification failed: fakex does not serve "
                                   f"planType {plan}")
    _margin_mode(p, True)
    _trigger_type(p)
    side, typ = _side(p), _order_type(p)
    reduce = yes_no(p, "reduceOnly")
    qty = check_size(spec, text(p, "size"), reduce)
    trig = check_price(spec, text(p, "triggerPrice"), "triggerPrice")
    price = None
    if typ == "LIMIT":
        price = check_price(spec, text(p, "executePrice") or text(p, "price"), "executePrice")
    if any(text(p, k) for k in ("stopSurplusTriggerPrice", "stopLossTriggerPrice")):
        raise BitgetError("40017", "Parameter verification failed: fakex does not serve "
                                   "take-profit / stop-loss attached to plan orders")
    cur = book.price(spec.symbol)
    down = trig < cur
    stop = (side == "SELL") == down
    kind = ("STOP" if stop else "TAKE_PROFIT") + ("_MARKET" if typ == "MARKET" else "")
    if trig == cur:
        raise BitgetError("43035", "The trigger price should be ≥ the current market price")
    a = _book_call(spec, book.place_algo, spec, side, kind, qty, trig, price, "GTC", reduce,
                   False, _cid(p))
    a.bitget_plan = "normal_plan"  # type: ignore[attr-defined]
    return {"orderId": str(a.algo_id), "clientOid": a.client_id}


def place_tpsl_order(book: Book, p: Params) -> Any:
    """``POST /api/v2/mix/order/place-tpsl-order``: ``planType`` ``pos_loss`` /
    ``pos_profit`` (the whole position) or ``loss_plan`` / ``profit_plan`` (``size``),
    ``triggerPrice``, ``executePrice`` (0 or absent: market), ``holdSide`` (one-way:
    ``buy`` = long, ``sell`` = short), ``clientOid``."""
    spec = _common(book, p)
    plan = text(p, "planType", True)
    if plan not in _TPSL:
        raise BitgetError("40017", f"Parameter verification failed planType {plan}")
    _trigger_type(p)
    hold = (text(p, "holdSide", True) or "").lower()
    if hold not in ("buy", "sell", "long", "short"):
        raise BitgetError("40017", "Parameter verification failed holdSide")
    long_ = hold in ("buy", "long")
    pos = book.position(spec.symbol).amount
    if pos == 0 or (pos > 0) != long_:
        raise BitgetError("43023", "Insufficient position, can not set profit or stop loss")
    trig = check_price(spec, text(p, "triggerPrice"), "triggerPrice")
    raw_exec = text(p, "executePrice")
    price = check_price(spec, raw_exec, "executePrice") if raw_exec not in (None, "0") else None
    loss = plan in ("pos_loss", "loss_plan")
    mark = book.price(spec.symbol)
    bad = (trig >= mark if long_ else trig <= mark) if loss else (
        trig <= mark if long_ else trig >= mark)
    if bad:
        m = spec.price_str(mark)
        raise {(True, True): BitgetError("40917", f"Stop price for long positions please < "
                                                  f"mark price {m}"),
               (True, False): BitgetError("45122", f"Short position stop loss price please "
                                                   f"> mark price {m}"),
               (False, True): BitgetError("40915", "Long position take profit price please "
                                                   "> mark price"),
               (False, False): BitgetError("40832", "The take profit price of short "
                                                    "positions should be less than the "
                                                    "current price")}[(loss, long_)]
    close = plan.startswith("pos_")
    qty = None if close else check_size(spec, text(p, "size"), True)
    kind = ("STOP" if loss else "TAKE_PROFIT") + ("" if price else "_MARKET")
    a = _book_call(spec, book.place_algo, spec, "SELL" if long_ else "BUY", kind, qty, trig,
                   price, "GTC", True, close, _cid(p))
    a.bitget_plan = plan  # type: ignore[attr-defined]
    return {"orderId": str(a.algo_id), "clientOid": a.client_id}


def _plans(book: Book, p: Params, waiting: bool) -> list[AlgoOrder]:
    product_type(p)
    spec = spec_of(book, p, required=False)
    group = text(p, "planType", True)
    if group not in ("normal_plan", "track_plan", "profit_loss"):
        raise BitgetError("40017", f"Parameter verification failed planType {group}")
    oid, cid = integer(p, "orderId"), text(p, "clientOid")
    return [a for a in book.algos.values()
            if (a.status == "NEW") == waiting and (spec is None or a.symbol == spec.symbol)
            and (oid is None or a.algo_id == oid) and (cid is None or a.client_id == cid)
            and ((bv.plan_type(a) in _TPSL) == (group == "profit_loss"))
            and group != "track_plan"]


def orders_plan(book: Book, p: Params, waiting: bool) -> Any:
    """``orders-plan-pending`` (``waiting``) / ``orders-plan-history``: ``planType``
    ``normal_plan`` or ``profit_loss`` (every take-profit / stop-loss kind),
    ``orderId`` / ``clientOid`` filters; ``{"entrustedList", "endId"}`` newest
    first."""
    rows, end_id = window(_plans(book, p, waiting), p, lambda a: a.time,
                          lambda a: a.algo_id, 100, 100)
    return {"entrustedList": [bv.plan_json(book, a, book.specs[a.symbol]) for a in rows],
            "endId": end_id}


def cancel_plan_order(book: Book, p: Params) -> Any:
    """``POST /api/v2/mix/order/cancel-plan-order``: ``orderIdList`` of
    ``{"orderId"}`` / ``{"clientOid"}`` (without it: every waiting plan order of
    ``symbol``, of ``planType`` if given). Returns ``{"successList",
    "failureList"}``; an unknown or finished one lands in ``failureList``."""
    product_type(p)
    margin_coin(p)
    spec = spec_of(book, p, required=False)
    refs = p.get("orderIdList")
    ok, bad = [], []
    if refs in (None, "", []):
        if spec is None:
            raise missing("symbol")
        kind = text(p, "planType")
        for a in book.open_algos(spec.symbol):
            if kind is None or bv.plan_type(a) == kind or (
                    kind == "profit_loss" and bv.plan_type(a) in _TPSL):
                book.cancel_algo(a)
                ok.append({"orderId": str(a.algo_id), "clientOid": a.client_id})
        return {"successList": ok, "failureList": bad}
    if not isinstance(refs, list):
        raise BitgetError("40017", "Parameter verification failed orderIdList")
    for ref in refs:
        ref = ref if isinstance(ref, dict) else {}
        oid, cid = text(ref, "orderId"), text(ref, "clientOid")
        try:
            a = book.find_algo(spec.symbol if spec else None, oid, cid, code=-2011)
            book.cancel_algo(a)
            ok.append({"orderId": str(a.algo_id), "clientOid": a.client_id})
        except BinanceError:
            bad.append({"orderId": oid or "", "clientOid": cid or "",
                        "errorMsg": "Plan order does not exist", "errorCode": "43025"})
    return {"successList": ok, "failureList": bad}


ORDER_ROUTES = {
    ("POST", "/api/v2/mix/order/place-order"): place_order,
    ("POST", "/api/v2/mix/order/cancel-order"): cancel_order,
    ("GET", "/api/v2/mix/order/detail"): order_detail,
    ("GET", "/api/v2/mix/order/orders-pending"): orders_pending,
    ("GET", "/api/v2/mix/order/orders-history"): orders_history,
    ("GET", "/api/v2/mix/order/fills"): fills,
    ("GET", "/api/v2/mix/order/fill-history"): fills,
    ("POST", "/api/v2/mix/order/place-plan-order"): place_plan_order,
    ("POST", "/api/v2/mix/order/place-tpsl-order"): place_tpsl_order,
    ("POST", "/api/v2/mix/order/cancel-plan-order"): cancel_plan_order,
    ("GET", "/api/v2/mix/order/orders-plan-pending"): lambda b, p: orders_plan(b, p, True),
    ("GET", "/api/v2/mix/order/orders-plan-history"): lambda b, p: orders_plan(b, p, False),
}
"""(method, path) -> handler of the signed order endpoints."""
