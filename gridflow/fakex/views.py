"""JSON shapes of the fake exchange: Binance REST bodies and the Python-API records.

Binance bodies carry numbers as strings; prices are in quote currency (USDT), amounts
in base currency, times in ms UTC (simulated clock).
"""

from __future__ import annotations

from typing import Any

from gridflow.fakex.book import AlgoOrder, Book, Order, Trade
from gridflow.fakex.markets import MarketSpec, fmt, fmt_num
from gridflow.fakex.symbol_config import margin_type

__all__ = ["account_json", "algo_json", "algo_record", "bracket_json", "incomes",
           "mark_json", "order_json", "order_record", "position_json", "ticker_json",
           "trade_json", "trade_record"]

_MAINT = 0.005  # maintenance margin ratio of the single leverage bracket
_F8 = 8


def order_json(o: Order, spec: MarketSpec) -> dict[str, Any]:
    """``/fapi/v1/order`` shape (POST/GET/DELETE, openOrders, allOrders)."""
    return {
        "orderId": o.order_id, "symbol": spec.id, "status": o.status,
        "clientOrderId": o.client_id, "price": spec.price_str(o.price),
        "avgPrice": fmt(o.avg_price, spec.price_decimals + 3),
        "origQty": spec.qty_str(o.qty), "executedQty": spec.qty_str(o.executed),
        "cumQty": spec.qty_str(o.executed), "cumQuote": fmt_num(o.cum_quote, _F8),
        "timeInForce": o.tif, "type": o.type, "reduceOnly": o.reduce_only,
        "closePosition": o.close_position, "side": o.side, "positionSide": "BOTH",
        "stopPrice": spec.price_str(o.stop_price), "workingType": "CONTRACT_PRICE",
        "priceProtect": False, "origType": o.orig_type or o.type, "priceMatch": "NONE",
        "selfTradePreventionMode": "EXPIRE_MAKER", "goodTillDate": 0,
        "time": o.time, "updateTime": o.update_time,
    }


def algo_json(book: Book, a: AlgoOrder, spec: MarketSpec) -> dict[str, Any]:
    """``/fapi/v1/algoOrder`` shape. ``actualOrderId`` is the order a trigger placed."""
    child = book.orders.get(a.actual_order_id) if a.actual_order_id else None
    return {
        "algoId": a.algo_id, "clientAlgoId": a.client_id, "algoType": "CONDITIONAL",
        "orderType": a.type, "symbol": spec.id, "side": a.side, "positionSide": "BOTH",
        "timeInForce": a.tif, "quantity": spec.qty_str(a.qty), "algoStatus": a.status,
        "actualOrderId": str(child.order_id) if child else "",
        "actualPrice": fmt(child.avg_price, spec.price_decimals + 3) if child else "0",
        "triggerPrice": spec.price_str(a.trigger), "price": spec.price_str(a.price),
        "icebergQuantity": None, "selfTradePreventionMode": "EXPIRE_MAKER",
        "workingType": "CONTRACT_PRICE", "priceMatch": "NONE",
        "closePosition": a.close_position, "priceProtect": False,
        "reduceOnly": a.reduce_only, "createTime": a.time, "updateTime": a.update_time,
        "triggerTime": a.trigger_time, "goodTillDate": 0,
    }


def trade_json(t: Trade, spec: MarketSpec) -> dict[str, Any]:
    """``/fapi/v1/userTrades`` row."""
    return {
        "buyer": t.side == "BUY", "commission": fmt_num(t.commission, _F8),
        "commissionAsset": "USDT", "id": t.id, "maker": t.maker, "orderId": t.order_id,
        "price": spec.price_str(t.price), "qty": spec.qty_str(t.qty),
        "quoteQty": fmt_num(t.qty * t.price, _F8), "realizedPnl": fmt_num(t.realized_pnl, _F8),
        "side": t.side, "positionSide": "BOTH", "symbol": spec.id, "time": t.time,
        "marginAsset": "USDT",
    }


def position_json(book: Book, spec: MarketSpec, v2: bool) -> dict[str, Any]:
    """``/fapi/v3/positionRisk`` row (``v2``: the v2 row with leverage and margin type)."""
    pos = book.position(spec.symbol)
    mark = book.price(spec.symbol)
    notional = pos.amount * mark
    im = abs(notional) / book.lev(spec.symbol)
    row = {
        "symbol": spec.id, "positionSide": "BOTH", "positionAmt": spec.qty_str(pos.amount),
        "entryPrice": fmt_num(pos.entry, _F8), "breakEvenPrice": fmt_num(pos.entry, _F8),
        "markPrice": fmt_num(mark, _F8),
        "unRealizedProfit": fmt_num(pos.amount * (mark - pos.entry), _F8),
        "liquidationPrice": "0", "isolatedMargin": "0", "notional": fmt_num(notional, _F8),
        "marginAsset": "USDT", "isolatedWallet": "0", "initialMargin": fmt_num(im, _F8),
        "maintMargin": fmt_num(abs(notional) * _MAINT, _F8),
        "positionInitialMargin": fmt_num(im, _F8), "openOrderInitialMargin": "0",
        "adl": 0, "bidNotional": "0", "askNotional": "0", "updateTime": pos.update_time,
    }
    if v2:
        iso = margin_type(book, spec.symbol) == "ISOLATED"
        row.update({"leverage": str(int(book.lev(spec.symbol))),
                    "marginType": "isolated" if iso else "cross",
                    "isAutoAddMargin": "false", "maxNotionalValue": "1000000000"})
    return row


def account_json(book: Book) -> dict[str, Any]:
    """``/fapi/v3/account`` (and v2) body: one USDT asset, cross margin."""
    upnl = book.unrealized()
    pos_im, ord_im = book.position_margin(), book.order_margin()
    margin_balance = book.wallet + upnl
    avail = max(0.0, margin_balance - pos_im - ord_im)
    maint = sum(abs(p.amount) * book.price(s) * _MAINT for s, p in book.positions.items())
    f = lambda x: fmt_num(x, _F8)
    asset = {
        "asset": "USDT", "walletBalance": f(book.wallet), "unrealizedProfit": f(upnl),
        "marginBalance": f(margin_balance), "maintMargin": f(maint),
        "initialMargin": f(pos_im + ord_im), "positionInitialMargin": f(pos_im),
        "openOrderInitialMargin": f(ord_im), "crossWalletBalance": f(book.wallet),
        "crossUnPnl": f(upnl), "availableBalance": f(avail),
        "maxWithdrawAmount": f(min(book.wallet, avail)), "marginAvailable": True,
        "updateTime": book.feed.now,
    }
    positions = []
    for spec in book.specs.values():
        pos = book.position(spec.symbol)
        if pos.amount == 0:
            continue
        notional = pos.amount * book.price(spec.symbol)
        positions.append({
            "symbol": spec.id, "positionSide": "BOTH", "positionAmt": spec.qty_str(pos.amount),
            "unrealizedProfit": f(pos.amount * (book.price(spec.symbol) - pos.entry)),
            "isolatedMargin": "0", "notional": f(notional), "isolatedWallet": "0",
            "initialMargin": f(abs(notional) / book.lev(spec.symbol)),
            "maintMargin": f(abs(notional) * _MAINT), "updateTime": pos.update_time,
        })
    return {
        "totalInitialMargin": f(pos_im + ord_im), "totalMaintMargin": f(maint),
        "totalWalletBalance": f(book.wallet), "totalUnrealizedProfit": f(upnl),
        "totalMarginBalance": f(margin_balance), "totalPositionInitialMargin": f(pos_im),
        "totalOpenOrderInitialMargin": f(ord_im), "totalCrossWalletBalance": f(book.wallet),
        "totalCrossUnPnl": f(upnl), "availableBalance": f(avail),
        "maxWithdrawAmount": f(min(book.wallet, avail)), "assets": [asset],
        "positions": positions,
    }


def bracket_json(spec: MarketSpec) -> dict[str, Any]:
    """``/fapi/v1/leverageBracket`` row: one bracket up to 125x."""
    return {"symbol": spec.id, "notionalCoef": 1.0, "brackets": [
        {"bracket": 1, "initialLeverage": 125, "notionalCap": 1_000_000_000,
         "notionalFloor": 0, "maintMarginRatio": _MAINT, "cum": 0.0}]}


def ticker_json(book: Book, spec: MarketSpec) -> dict[str, Any]:
    """``/fapi/v1/ticker/24hr``: the last 24 h of visible candles (forming one included)."""
    now = book.feed.now
    ts, rows = book.feed.visible(spec.symbol)
    keep = ts >= now - 86_400_000
    ts, rows = ts[keep], rows[keep]
    last = book.price(spec.symbol)
    if len(rows):
        o, h, lo, vol = rows[0, 0], max(rows[:, 1].max(), last), min(rows[:, 2].min(), last), \
            rows[:, 4].sum()
    else:
        o, h, lo, vol = last, last, last, 0.0
    p = spec.price_str
    return {
        "symbol": spec.id, "priceChange": p(last - o),
        "priceChangePercent": f"{(last / o - 1) * 100:.3f}", "weightedAvgPrice": p(last),
        "lastPrice": p(last), "lastQty": "0", "openPrice": p(o), "highPrice": p(h),
        "lowPrice": p(lo), "volume": spec.qty_str(vol), "quoteVolume": fmt_num(vol * last, 2),
        "openTime": int(ts[0]) if len(ts) else now, "closeTime": now, "firstId": 0,
        "lastId": 0, "count": 0,
    }


def mark_json(book: Book, spec: MarketSpec) -> dict[str, Any]:
    """``/fapi/v1/premiumIndex``: mark = index = the path price at the clock, ``time`` =
    the clock; ``lastFundingRate`` is the rate of the latest settlement (0 without a
    funding schedule: no future rate is shown), ``nextFundingTime`` the next one."""
    now = book.feed.now
    px = fmt_num(book.price(spec.symbol), _F8)
    if book.funding is not None:
        rate = book.funding.last_rate(spec.symbol, now)
        nxt = book.funding.next_time(spec.symbol, now)
    else:
        rate, nxt = 0.0, (now // 28_800_000 + 1) * 28_800_000
    return {"symbol": spec.id, "markPrice": px, "indexPrice": px, "estimatedSettlePrice": px,
            "lastFundingRate": fmt(rate, _F8), "interestRate": "0.00000000",
            "nextFundingTime": nxt, "time": now}


def incomes(book: Book) -> list[dict[str, Any]]:
    """Every ``/fapi/v1/income`` row, by time: ``FUNDING_FEE`` per funding payment,
    ``COMMISSION`` per trade and ``REALIZED_PNL`` per trade that realized PnL.
    ``income`` is signed (negative = paid)."""
    rows: list[tuple[int, int, dict[str, Any]]] = []

    def add(sym: str, kind: str, amount: float, t: int, tran: int, trade: str) -> None:
        rows.append((t, tran, {"symbol": book.specs[sym].id, "incomeType": kind,
                               "income": fmt_num(amount, _F8), "asset": "USDT", "time": t,
                               "info": kind, "tranId": str(tran), "tradeId": trade}))

    for p in (book.funding.payments if book.funding is not None else []):
        add(p.symbol, "FUNDING_FEE", -p.paid, p.time, p.tran_id, "")
    for t in book.trades:
        if t.realized_pnl != 0:
            add(t.symbol, "REALIZED_PNL", t.realized_pnl, t.time, 8_000_000_000 + t.id,
                str(t.id))
        add(t.symbol, "COMMISSION", -t.commission, t.time, 9_000_000_000 + t.id, str(t.id))
    rows.sort(key=lambda r: (r[0], r[1]))
    return [r[2] for r in rows]


# ------------------------------------------------------- Python-API records
def order_record(o: Order) -> dict[str, Any]:
    """``FakeExchange.orders()`` entry of a regular order."""
    return {"clientOrderId": o.client_id, "orderId": o.order_id, "symbol": o.symbol,
            "side": o.side.lower(), "type": o.type, "origType": o.orig_type or o.type,
            "price": o.price, "stopPrice": o.stop_price, "origQty": o.qty,
            "executedQty": o.executed, "avgPrice": o.avg_price, "status": o.status,
            "reduceOnly": o.reduce_only, "algo": False, "algoId": o.algo_id,
            "time": o.time, "updateTime": o.update_time}


def algo_record(book: Book, a: AlgoOrder) -> dict[str, Any]:
    """``FakeExchange.orders()`` entry of an algo order (``orderId`` is its algoId)."""
    child = book.orders.get(a.actual_order_id) if a.actual_order_id else None
    return {"clientOrderId": a.client_id, "orderId": a.algo_id, "symbol": a.symbol,
            "side": a.side.lower(), "type": a.type, "origType": a.type, "price": a.price,
            "stopPrice": a.trigger, "origQty": a.qty,
            "executedQty": child.executed if child else 0.0,
            "avgPrice": child.avg_price if child else 0.0, "status": a.status,
            "reduceOnly": a.reduce_only, "algo": True, "algoId": a.algo_id,
            "actualOrderId": a.actual_order_id, "closePosition": a.close_position,
            "time": a.time, "updateTime": a.update_time}


def trade_record(t: Trade) -> dict[str, Any]:
    """``FakeExchange.trades()`` entry."""
    return {"id": t.id, "orderId": t.order_id, "clientOrderId": t.client_id,
            "symbol": t.symbol, "side": t.side.lower(), "price": t.price, "qty": t.qty,
            "commission": t.commission, "commissionAsset": t.commission_asset,
            "realizedPnl": t.realized_pnl, "time": t.time, "maker": t.maker}
