"""Bitget v2 public, position and account endpoints of the fake exchange, and the
route table of the Bitget dialect (order endpoints: :mod:`gridflow.fakex.bitget_orders`).

Each handler takes the book and the parameters (query strings, or JSON body values)
and returns the ``data`` of the answer; errors raise
:class:`~gridflow.fakex.bitget_markets.BitgetError`. Prices in quote (USDT), amounts in
base, times in ms UTC on the simulated clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gridflow.fakex import bitget_views as bv
from gridflow.fakex.bitget_markets import BitgetError, contract_json, max_leverage
from gridflow.fakex.bitget_orders import ORDER_ROUTES
from gridflow.fakex.bitget_params import (
    Params,
    integer,
    limit,
    margin_coin,
    product_type,
    spec_of,
    text,
    window,
)
from gridflow.fakex.book import Book
from gridflow.fakex.markets import MarketSpec

__all__ = ["ROUTES", "granularities"]

_DAY = 86_400_000
_MAX_RANGE = 90 * _DAY
_UNITS = {"m": "m", "h": "H", "d": "D", "w": "W", "M": "M"}


def granularities(timeframe: str) -> set[str]:
    """Bitget ``granularity`` values naming ``timeframe`` (``"1h"`` -> ``1H``; ``"6h"``
    -> ``6H``, ``6Hutc``; ``"1d"`` -> ``1D``, ``1Dutc``)."""
    n, unit = timeframe[:-1], timeframe[-1]
    g = n + _UNITS.get(unit, unit)
    return {g, g + "utc"} if unit in "hdwM" and g not in ("1H", "2H", "4H") else {g}


# ------------------------------------------------------------------ public
def get_time(book: Book, p: Params) -> Any:
    """``GET /api/v2/public/time``: the simulated clock."""
    return {"serverTime": str(book.feed.now)}


def get_contracts(book: Book, p: Params) -> Any:
    """``GET /api/v2/mix/market/contracts``: USDT-FUTURES lists the fake's symbols,
    other product types nothing."""
    kind = (text(p, "productType", True) or "").upper()
    if kind != "USDT-FUTURES":
        return []
    spec = spec_of(book, p, required=False)
    return [contract_json(s, book.maker_fee, book.taker_fee) for s in book.specs.values()
            if spec is None or s is spec]


def get_coins(book: Book, p: Params) -> Any:
    """``GET /api/v2/spot/public/coins`` (ccxt's ``fetch_currencies``): the coins of the
    listed contracts, without chains."""
    coins = sorted({c for s in book.specs.values() for c in (s.base, s.quote)})
    return [{"coinId": str(i + 1), "coin": c, "transfer": "true", "chains": [],
             "areaCoin": "no"} for i, c in enumerate(coins)]


def _candles(book: Book, p: Params, most: int, history: bool) -> Any:
    product_type(p)
    spec = spec_of(book, p)
    gran = text(p, "granularity", True)
    if gran not in granularities(book.feed.timeframe):
        raise BitgetError("40017", f"Parameter verification failed granularity {gran}")
    n = limit(p, 100, most)
    start, end = integer(p, "startTime"), integer(p, "endTime")
    if start is not None and end is not None:
        if start > end:
            raise BitgetError("40707", "Start time is greater than end time")
        if history and end - start > _MAX_RANGE:
            raise BitgetError("00001", "startTime and endTime interval cannot be greater "
                                       "than 90 days")
    return bv.candle_rows(book, spec, start, end, n)


def get_candles(book: Book, p: Params) -> Any:
    """``GET /api/v2/mix/market/candles``: ``granularity`` = the fake's timeframe,
    ``startTime`` (inclusive), ``endTime`` (exclusive), ``limit`` (default 100, max
    1000); the newest ``limit`` rows of the window, oldest first."""
    return _candles(book, p, 1000, False)


def get_history_candles(book: Book, p: Params) -> Any:
    """``GET /api/v2/mix/market/history-candles``: as candles, ``limit`` at most 200
    and ``endTime - startTime`` at most 90 days."""
    return _candles(book, p, 200, True)


def _specs_for(book: Book, p: Params) -> list[MarketSpec]:
    product_type(p)
    spec = spec_of(book, p, required=False)
    return [spec] if spec else list(book.specs.values())


def get_ticker(book: Book, p: Params) -> Any:
    """``GET /api/v2/mix/market/ticker`` (``symbol``) and ``tickers`` (all): a list."""
    return [bv.ticker_json(book, s) for s in _specs_for(book, p)]


def get_symbol_price(book: Book, p: Params) -> Any:
    """``GET /api/v2/mix/market/symbol-price``: last = index = mark = the path price."""
    out = []
    for s in _specs_for(book, p):
        px = s.price_str(book.price(s.symbol))
        out.append({"symbol": s.id, "price": px, "indexPrice": px, "markPrice": px,
                    "ts": str(book.feed.now)})
    return out


def get_history_fund_rate(book: Book, p: Params) -> Any:
    """``GET /api/v2/mix/market/history-fund-rate``: settlements published by now,
    newest first, ``pageSize`` (default 20, max 100) rows of page ``pageNo`` (from 1)."""
    product_type(p)
    spec = spec_of(book, p)
    size = limit(p, 20, 100, "pageSize")
    page = integer(p, "pageNo") or 1
    if page < 1:
        raise BitgetError("40017", "Parameter verification failed pageNo")
    rows = book.funding.history(spec.symbol, book.feed.now, None, None, 10**9)[::-1]
    rows = rows[(page - 1) * size: page * size]
    return [{"symbol": spec.id, "fundingRate": bv.f(r),
             "fundingTime": str(t)} for t, r in rows]


def get_current_fund_rate(book: Book, p: Params) -> Any:
    """``GET /api/v2/mix/market/current-fund-rate``: the rate of the latest settlement
    (0 before any; the fake shows no forecast) and ``nextUpdate``, the next one."""
    out = []
    for s in _specs_for(book, p):
        now = book.feed.now
        out.append({"symbol": s.id, "fundingRate": bv.f(book.funding.last_rate(s.symbol, now)),
                    "fundingRateInterval": "8",
                    "nextUpdate": str(book.funding.next_time(s.symbol, now)),
                    "minFundingRate": "-0.003", "maxFundingRate": "0.003"})
    return out


def get_funding_time(book: Book, p: Params) -> Any:
    """``GET /api/v2/mix/market/funding-time``: the next settlement time."""
    return [{"symbol": s.id, "nextFundingTime": str(book.funding.next_time(s.symbol,
                                                                           book.feed.now)),
             "ratePeriod": "8"} for s in _specs_for(book, p)]


# -------------------------------------------------------- positions, account
def get_all_position(book: Book, p: Params) -> Any:
    """``GET /api/v2/mix/position/all-position``: open positions only."""
    product_type(p)
    margin_coin(p)
    rows = [bv.position_json(book, s) for s in book.specs.values()]
    return [r for r in rows if r is not None]


def get_single_position(book: Book, p: Params) -> Any:
    """``GET /api/v2/mix/position/single-position``: ``[]`` when flat."""
    product_type(p)
    margin_coin(p)
    row = bv.position_json(book, spec_of(book, p))
    return [row] if row else []


def get_accounts(book: Book, p: Params) -> Any:
    """``GET /api/v2/mix/account/accounts``: one USDT row."""
    product_type(p)
    return [bv.account_json(book)]


def get_account(book: Book, p: Params) -> Any:
    """``GET /api/v2/mix/account/account`` (``symbol``, ``marginCoin``)."""
    product_type(p)
    margin_coin(p, True)
    return bv.account_json(book, spec_of(book, p))


def get_bill(book: Book, p: Params) -> Any:
    """``GET /api/v2/mix/account/bill``: ``symbol``, ``businessType``,
    ``startTime``/``endTime``, ``idLessThan``, ``limit`` (default 20, max 100);
    ``{"bills", "endId"}`` newest first."""
    product_type(p)
    spec = spec_of(book, p, required=False)
    kind = text(p, "businessType")
    rows = [r for r in bv.bills(book, spec) if kind is None or r["businessType"] == kind]
    rows, end_id = window(rows, p, lambda r: int(r["cTime"]), lambda r: int(r["billId"]),
                          20, 100)
    return {"bills": rows, "endId": end_id}


def post_set_leverage(book: Book, p: Params) -> Any:
    """``POST /api/v2/mix/account/set-leverage`` (1 .. the contract's ``maxLever``)."""
    product_type(p)
    margin_coin(p, True)
    spec = spec_of(book, p)
    lev = integer(p, "leverage")
    if lev is None:
        raise BitgetError("40019", "Parameter leverage cannot be empty")
    if not 1 <= lev <= max_leverage(spec):
        raise BitgetError("45044", "Leverage is not within the suitable range after adjustment")
    book.leverages[spec.symbol] = lev
    mode = bv.account_json(book, spec)["marginMode"]
    return {"symbol": spec.id, "marginCoin": "USDT", "longLeverage": str(lev),
            "shortLeverage": str(lev), "crossMarginLeverage": str(lev), "marginMode": mode}


def post_set_margin_mode(book: Book, p: Params) -> Any:
    """``POST /api/v2/mix/account/set-margin-mode`` (``crossed`` / ``isolated``;
    refused with an open position or open orders: 45117)."""
    product_type(p)
    margin_coin(p, True)
    spec = spec_of(book, p)
    mode = (text(p, "marginMode", True) or "").lower()
    if mode not in ("crossed", "isolated"):
        raise BitgetError("40017", "Parameter verification failed marginMode")
    if book.position(spec.symbol).amount != 0 or book.open_orders(spec.symbol) \
            or book.open_algos(spec.symbol):
        raise BitgetError("45117", "Currently holding positions or orders, the margin mode "
                                   "cannot be adjusted")
    book.margin_types[spec.symbol] = "ISOLATED" if mode == "isolated" else "CROSSED"
    lev = str(int(book.lev(spec.symbol)))
    return {"symbol": spec.id, "marginCoin": "USDT", "longLeverage": lev,
            "shortLeverage": lev, "marginMode": mode}


def post_set_position_mode(book: Book, p: Params) -> Any:
    """``POST /api/v2/mix/account/set-position-mode``: only ``one_way_mode`` (the fake
    has no hedge mode)."""
    product_type(p)
    mode = text(p, "posMode", True)
    if mode != "one_way_mode":
        raise BitgetError("40017", f"Parameter verification failed: fakex serves "
                                   f"one_way_mode only, not {mode}")
    return {"posMode": mode}


def get_uta_settings(book: Book, p: Params) -> Any:
    """``GET /api/v3/account/settings`` (ccxt's unified-account probe): refused, the
    fake is a classic account."""
    raise BitgetError("40084", "You are in Classic Account mode, and the Unified Account "
                               "API is not supported at this time")


Handler = Callable[[Book, Params], Any]

ROUTES: dict[tuple[str, str], tuple[Handler, bool]] = {
    ("GET", "/api/v2/public/time"): (get_time, False),
    ("GET", "/api/v2/mix/market/contracts"): (get_contracts, False),
    ("GET", "/api/v2/spot/public/coins"): (get_coins, False),
    ("GET", "/api/v2/mix/market/candles"): (get_candles, False),
    ("GET", "/api/v2/mix/market/history-candles"): (get_history_candles, False),
    ("GET", "/api/v2/mix/market/ticker"): (get_ticker, False),
    ("GET", "/api/v2/mix/market/tickers"): (get_ticker, False),
    ("GET", "/api/v2/mix/market/symbol-price"): (get_symbol_price, False),
    ("GET", "/api/v2/mix/market/history-fund-rate"): (get_history_fund_rate, False),
    ("GET", "/api/v2/mix/market/current-fund-rate"): (get_current_fund_rate, False),
    ("GET", "/api/v2/mix/market/funding-time"): (get_funding_time, False),
    ("GET", "/api/v2/mix/position/all-position"): (get_all_position, True),
    ("GET", "/api/v2/mix/position/single-position"): (get_single_position, True),
    ("GET", "/api/v2/mix/account/accounts"): (get_accounts, True),
    ("GET", "/api/v2/mix/account/account"): (get_account, True),
    ("GET", "/api/v2/mix/account/bill"): (get_bill, True),
    ("POST", "/api/v2/mix/account/set-leverage"): (post_set_leverage, True),
    ("POST", "/api/v2/mix/account/set-margin-mode"): (post_set_margin_mode, True),
    ("POST", "/api/v2/mix/account/set-position-mode"): (post_set_position_mode, True),
    ("GET", "/api/v3/account/settings"): (get_uta_settings, True),
    **{k: (h, True) for k, h in ORDER_ROUTES.items()},
}
"""(method, path) -> (handler, signed) of every Bitget endpoint the fake serves."""
