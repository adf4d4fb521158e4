"""JSON shapes of the fake exchange's Bitget v2 "mix" (USDT-M futures) dialect.

Numbers are strings, times ms strings (simulated clock), sides ``"buy"``/``"sell"``,
ids numeric strings; prices in quote (USDT), amounts in base. One-way position mode:
``posMode`` ``"one_way_mode"``, ``posSide`` ``"net"``, ``tradeSide``
``"buy_single"``/``"sell_single"``. Fees are negative when paid (``fee``,
``feeDetail.totalFee``); funding bill ``amount`` is negative when the account paid.
"""

from __future__ import annotations

from typing import Any

from gridflow.fakex import views
from gridflow.fakex.book import AlgoOrder, Book, Order, Trade
from gridflow.fakex.markets import MarketSpec, fmt_num

__all__ = ["account_json", "bills", "candle_rows", "fill_json", "order_json",
           "plan_json", "plan_type", "position_json", "ticker_json"]

_F = 10
_FORCE = {"GTC": "gtc", "IOC": "ioc", "FOK": "fok", "GTX": "post_only"}
_ORDER_STATE = {"NEW": "live", "PARTIALLY_FILLED": "partially_filled", "FILLED": "filled",
                "CANCELED": "canceled", "EXPIRED": "canceled"}
_PLAN_STATE = {"NEW": "live", "TRIGGERED": "executed", "FINISHED": "executed",
               "CANCELED": "cancelled", "EXPIRED": "fail_execute"}
_MAINT = "0.004"


def f(x: float) -> str:
    """A number as Bitget sends it: up to 10 places, trailing zeros trimmed."""
    return fmt_num(x, _F)


def _trade_side(side: str) -> str:
    return "buy_single" if side == "BUY" else "sell_single"


def _fees(book: Book, order_id: int) -> float:
    return sum(t.commission for t in book.trades if t.order_id == order_id)


def order_json(book: Book, o: Order, spec: MarketSpec, key: str = "state") -> dict[str, Any]:
    """``/api/v2/mix/order/detail`` (``key="state"``) or an ``entrustedList`` row of
    ``orders-pending`` / ``orders-history`` (``key="status"``)."""
    pnl = sum(t.realized_pnl for t in book.trades if t.order_id == o.order_id)
    fee = _fees(book, o.order_id)
    return {
        "symbol": spec.id, "size": spec.qty_str(o.qty), "orderId": str(o.order_id),
        "clientOid": o.client_id, "baseVolume": spec.qty_str(o.executed),
        "fee": f(-fee), "price": spec.price_str(o.price) if o.price else "0",
        "priceAvg": f(o.avg_price) if o.executed > 0 else "",
        key: _ORDER_STATE.get(o.status, "live"), "side": o.side.lower(),
        "force": _FORCE.get(o.tif, "gtc"), "totalProfits": f(pnl), "posSide": "net",
        "marginCoin": spec.quote, "presetStopSurplusPrice": "", "presetStopLossPrice": "",
        "quoteVolume": f(o.cum_quote), "orderType": o.type.lower(),
        "leverage": str(int(book.lev(o.symbol))), "marginMode": _margin_mode(book, o.symbol),
        "reduceOnly": "YES" if o.reduce_only else "NO", "enterPointSource": "API",
        "tradeSide": _trade_side(o.side), "posMode": "one_way_mode",
        "orderSource": ("plan_market" if o.type == "MARKET" else "plan_limit")
        if o.algo_id else ("market" if o.type == "MARKET" else "normal"),
        "cancelReason": "", "cTime": str(o.time), "uTime": str(o.update_time),
    }


_PLAN_TYPES = {"STOP_MARKET": "loss_plan", "TAKE_PROFIT_MARKET": "profit_plan"}


def plan_type(a: AlgoOrder) -> str:
    """The Bitget ``planType`` of a book algo order: ``normal_plan`` (a trigger order,
    any direction), ``pos_loss``/``pos_profit`` (close the position) or
    ``loss_plan``/``profit_plan`` (a sized stop-loss / take-profit)."""
    kind = getattr(a, "bitget_plan", None)
    if kind:
        return kind
    if a.close_position:
        return "pos_loss" if a.type.startswith("STOP") else "pos_profit"
    return _PLAN_TYPES.get(a.type, "normal_plan")


def plan_json(book: Book, a: AlgoOrder, spec: MarketSpec) -> dict[str, Any]:
    """An ``entrustedList`` row of ``orders-plan-pending`` / ``orders-plan-history``."""
    child = book.orders.get(a.actual_order_id) if a.actual_order_id else None
    kind = plan_type(a)
    tpsl = kind in ("pos_loss", "pos_profit", "loss_plan", "profit_plan")
    hold = ("buy" if a.side == "SELL" else "sell") if tpsl else None
    trig = spec.price_str(a.trigger)
    return {
        "planType": kind, "symbol": spec.id, "size": spec.qty_str(a.qty),
        "orderId": str(a.algo_id), "clientOid": a.client_id,
        "executePrice": spec.price_str(a.price) if a.price else "0",
        "callbackRatio": "", "triggerPrice": trig, "triggerType": "mark_price",
        "planStatus": _PLAN_STATE.get(a.status, "live"),
        "side": hold if tpsl else a.side.lower(), "posSide": "net",
        "marginCoin": spec.quote, "marginMode": _margin_mode(book, a.symbol),
        "enterPointSource": "API", "tradeSide": _trade_side(a.side),
        "posMode": "one_way_mode", "orderType": "limit" if a.price else "market",
        "orderSource": "normal", "reduceOnly": "YES" if a.reduce_only else "NO",
        "stopSurplusTriggerPrice": trig if kind in ("pos_profit", "profit_plan") else "",
        "stopSurplusExecutePrice": "", "stopSurplusTriggerType": "mark_price",
        "stopLossTriggerPrice": trig if kind in ("pos_loss", "loss_plan") else "",
        "stopLossExecutePrice": "", "stopLossTriggerType": "mark_price",
        "executeOrderId": str(child.order_id) if child else "",
        "priceAvg": f(child.avg_price) if child and child.executed > 0 else "",
        "cTime": str(a.time), "uTime": str(a.update_time),
    }


def fill_json(t: Trade, spec: MarketSpec) -> dict[str, Any]:
    """A ``fillList`` row of ``/api/v2/mix/order/fills`` (and ``fill-history``)."""
    return {
        "tradeId": str(t.id), "symbol": spec.id, "orderId": str(t.order_id),
        "price": spec.price_str(t.price), "baseVolume": spec.qty_str(t.qty),
        "feeDetail": [{"deduction": "no", "feeCoin": spec.quote,
                       "totalDeductionFee": "0", "totalFee": f(-t.commission)}],
        "side": t.side.lower(), "quoteVolume": f(t.qty * t.price),
        "profit": f(t.realized_pnl), "enterPointSource": "API",
        "tradeSide": _trade_side(t.side), "posMode": "one_way_mode",
        "tradeScope": "maker" if t.maker else "taker", "cTime": str(t.time),
    }


def _margin_mode(book: Book, sym: str) -> str:
    return "isolated" if book.margin_types.get(sym) == "ISOLATED" else "crossed"


def position_json(book: Book, spec: MarketSpec) -> dict[str, Any] | None:
    """``all-position`` / ``single-position`` row, or None when flat. One-way mode: a
    long is ``holdSide`` ``"long"``, a short ``"short"``; ``total`` is unsigned."""
    pos = book.position(spec.symbol)
    if pos.amount == 0:
        return None
    mark, lev = book.price(spec.symbol), book.lev(spec.symbol)
    size = abs(pos.amount)
    closing = sum(o.remaining for o in book.open_orders(spec.symbol)
                  if o.reduce_only and (o.side == "SELL") == (pos.amount > 0))
    opening = sum(o.remaining for o in book.open_orders(spec.symbol) if not o.reduce_only)
    locked = min(size, closing)
    upnl = pos.amount * (mark - pos.entry)
    margin = size * pos.entry / lev
    fees = sum(t.commission for t in book.trades if t.symbol == spec.symbol
               and t.time >= _opened(book, spec.symbol))
    return {
        "marginCoin": spec.quote, "symbol": spec.id,
        "holdSide": "long" if pos.amount > 0 else "short",
        "openDelegateSize": spec.qty_str(opening), "marginSize": f(margin),
        "available": spec.qty_str(size - locked), "locked": spec.qty_str(locked),
        "total": spec.qty_str(size), "leverage": str(int(lev)), "achievedProfits": "0",
        "openPriceAvg": f(pos.entry), "marginMode": _margin_mode(book, spec.symbol),
        "posMode": "one_way_mode", "unrealizedPL": f(upnl), "liquidationPrice": "0",
        "keepMarginRate": _MAINT, "markPrice": f(mark), "marginRatio": "0",
        "breakEvenPrice": f(pos.entry), "totalFee": f(-fees), "deductedFee": f(fees),
        "assetMode": "single", "autoMargin": "off", "grant": "",
        "cTime": str(_opened(book, spec.symbol)), "uTime": str(pos.update_time),
    }


def _opened(book: Book, sym: str) -> int:
    """Time of the fill that opened the current position (walking fills backwards
    until the position was flat)."""
    amount = book.position(sym).amount
    t0 = book.position(sym).update_time
    for t in reversed(book.trades):
        if t.symbol != sym:
            continue
        t0 = t.time
        amount -= t.qty if t.side == "BUY" else -t.qty
        if abs(amount) <= 1e-12 or (amount > 0) != (book.position(sym).amount > 0):
            break
    return t0


def account_json(book: Book, spec: MarketSpec | None = None) -> dict[str, Any]:
    """The USDT row of ``/api/v2/mix/account/accounts``; with ``spec`` the
    ``/api/v2/mix/account/account`` body (leverage and margin mode of that symbol).
    ``accountEquity`` = wallet + unrealized PnL; ``available`` and
    ``maxTransferOut`` = what is left after position and order margin."""
    upnl = book.unrealized()
    equity = book.wallet + upnl
    used = book.position_margin() + book.order_margin()
    avail = max(0.0, equity - used)
    row = {
        "marginCoin": "USDT", "locked": f(book.order_margin()), "available": f(avail),
        "crossedMaxAvailable": f(avail), "isolatedMaxAvailable": f(avail),
        "maxTransferOut": f(min(book.wallet, avail)), "accountEquity": f(equity),
        "usdtEquity": f(equity), "btcEquity": "0", "crossedRiskRate": "0",
        "unrealizedPL": f(upnl), "coupon": "0", "unionTotalMagin": f(equity),
        "unionAvailable": f(avail), "unionMm": "0", "assetList": [],
        "isolatedMargin": "0", "crossedMargin": f(used), "crossedUnrealizedPL": f(upnl),
        "isolatedUnrealizedPL": "0", "assetMode": "single",
    }
    if spec is not None:
        lev = str(int(book.lev(spec.symbol)))
        row.update({"symbol": spec.id, "marginMode": _margin_mode(book, spec.symbol),
                    "crossedMarginLeverage": lev, "isolatedLongLever": lev,
                    "isolatedShortLever": lev, "posMode": "one_way_mode"})
    return row


def ticker_json(book: Book, spec: MarketSpec) -> dict[str, Any]:
    """``/api/v2/mix/market/ticker`` row: last = mark = index = the path price; bid /
    ask one tick either side; 24 h stats of the visible candles."""
    t = views.ticker_json(book, spec)
    last = book.price(spec.symbol)
    rate = book.funding.last_rate(spec.symbol, book.feed.now) if book.funding else 0.0
    change = float(t["priceChangePercent"]) / 100
    return {
        "symbol": spec.id, "lastPr": spec.price_str(last),
        "askPr": spec.price_str(last + spec.price_tick), "bidPr": spec.price_str(last),
        "bidSz": "1", "askSz": "1", "high24h": t["highPrice"], "low24h": t["lowPrice"],
        "ts": str(book.feed.now), "change24h": f(change), "baseVolume": t["volume"],
        "quoteVolume": t["quoteVolume"], "usdtVolume": t["quoteVolume"],
        "openUtc": t["openPrice"], "changeUtc24h": f(change),
        "indexPrice": spec.price_str(last), "fundingRate": f(rate), "holdingAmount": "0",
        "deliveryStartTime": None, "deliveryTime": None, "deliveryStatus": "",
        "open24h": t["openPrice"], "markPrice": spec.price_str(last),
    }


def candle_rows(book: Book, spec: MarketSpec, start: int | None, end: int | None,
                limit: int) -> list[list[str]]:
    """Candle rows ``[ts, open, high, low, close, baseVolume, quoteVolume]`` (strings)
    of the visible candles (closed ones and the forming one as walked so far) with
    ``start <= ts < end`` (end: the clock, inclusive), the last ``limit`` of them,
    oldest first."""
    ts, rows = book.feed.visible(spec.symbol)
    out = []
    for t, (o, h, lo, c, v) in zip(ts.tolist(), rows.tolist()):
        if (start is not None and t < start) or (end is not None and t >= end):
            continue
        out.append([str(t), repr(o), repr(h), repr(lo), repr(c), f(v), f(v * c)])
    return out[-limit:] if limit else []


def bills(book: Book, spec: MarketSpec | None) -> list[dict[str, Any]]:
    """``/api/v2/mix/account/bill`` rows, oldest first: ``contract_settle_fee`` per
    funding payment (``amount`` = minus what was paid), ``buy``/``sell`` per fill
    (``amount`` = realized PnL, ``fee`` = minus the commission). ``billId`` grows with
    time (``cTime`` ms, a kind digit, a 9-digit serial)."""
    rows: list[dict[str, Any]] = []
    for p in (book.funding.payments if book.funding is not None else []):
        if spec is None or p.symbol == spec.symbol:
            rows.append({"billId": f"{p.time}1{p.tran_id % 10**9:09d}",
                         "symbol": book.specs[p.symbol].id, "amount": f(-p.paid),
                         "fee": "0", "feeByCoupon": "", "businessType": "contract_settle_fee",
                         "coin": "USDT", "cTime": str(p.time)})
    for t in book.trades:
        if spec is None or t.symbol == spec.symbol:
            rows.append({"billId": f"{t.time}2{t.id:09d}", "symbol": book.specs[t.symbol].id,
                         "amount": f(t.realized_pnl), "fee": f(-t.commission),
                         "feeByCoupon": "", "businessType": t.side.lower(), "coin": "USDT",
                         "cTime": str(t.time)})
    rows.sort(key=lambda r: int(r["billId"]))
    return rows
