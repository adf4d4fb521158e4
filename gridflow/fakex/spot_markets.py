"""Binance spot markets of the fake exchange: the real symbol filters and ``exchangeInfo``.

Symbol rows come from ``binance_spot_symbols.json`` (real ``GET /api/v3/exchangeInfo``
rows of BTCUSDT, ETHUSDT, XRPUSDT and ADAUSDT from ccxt's captured test data; SOLUSDT
written from Binance's listed values, see the file's ``_source``): price tick
``PRICE_FILTER.tickSize``, amount step ``LOT_SIZE.stepSize``, minimum amount
``LOT_SIZE.minQty``, minimum notional ``NOTIONAL.minNotional``. Other symbols get the
specs :func:`gridflow.fakex.markets.build_specs` derives, and the BTCUSDT row's other
filters. Prices in quote (USDT), amounts in base, times in ms UTC.

:class:`SpotRules` holds the filters a spot order is checked against beyond the
:class:`~gridflow.fakex.markets.MarketSpec` (maxima, ``PERCENT_PRICE_BY_SIDE``, order
counts); :func:`symbol_row` writes a spec into its ``exchangeInfo`` row.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gridflow.fakex.markets import MarketSpec, build_specs, fmt

__all__ = ["SYMBOLS", "SpotRules", "binance_spot_filters", "build_spot_specs",
           "spot_exchange_info", "spot_rules", "symbol_row"]

_DATA = json.loads(Path(__file__).with_name("binance_spot_symbols.json").read_text())
SYMBOLS: dict[str, dict[str, Any]] = _DATA["symbols"]
"""Market id (``"BTCUSDT"``) -> the Binance spot ``exchangeInfo`` row."""
_TEMPLATE = "BTCUSDT"
_F8 = 8


def _filters(row: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["filterType"]: f for f in row["filters"]}


def binance_spot_filters(symbol: str) -> dict[str, float] | None:
    """The real Binance spot filters of config symbol ``symbol`` (``"BTC/USDT"``) as
    ``price_tick`` (quote), ``amount_step``, ``min_amount`` (base) and ``min_notional``
    (quote), the keys ``FakeExchange(markets=...)`` and a config's ``[markets]`` take;
    None when ``binance_spot_symbols.json`` does not list the pair."""
    row = SYMBOLS.get(symbol.replace("/", ""))
    if row is None:
        return None
    f = _filters(row)
    return {"price_tick": float(f["PRICE_FILTER"]["tickSize"]),
            "amount_step": float(f["LOT_SIZE"]["stepSize"]),
            "min_amount": float(f["LOT_SIZE"]["minQty"]),
            "min_notional": float(f["NOTIONAL"]["minNotional"])}


def build_spot_specs(symbols: dict[str, float], markets: dict[str, dict] | None
                     ) -> dict[str, MarketSpec]:
    """Specs for ``symbols`` (config symbol -> reference price): the real Binance spot
    filters where the data file lists the pair, else as for USDⓈ-M; ``markets``
    overrides (``price_tick``, ``amount_step``, ``min_amount``, ``min_notional``) win."""
    unknown = set(markets or {}) - set(symbols)
    if unknown:
        raise ValueError(f"markets given for symbols without candles: {sorted(unknown)}")
    merged = {s: {**(binance_spot_filters(s) or {}), **(markets or {}).get(s, {})}
              for s in symbols}
    return build_specs(symbols, merged)


@dataclass(frozen=True)
class SpotRules:
    """Filters of one symbol beyond its spec. Prices in quote, amounts in base.

    Attributes
    ----------
    max_price, max_qty : float
        ``PRICE_FILTER.maxPrice`` and ``LOT_SIZE.maxQty``.
    market_max_qty : float
        ``MARKET_LOT_SIZE.maxQty`` (MARKET orders).
    max_notional : float
        ``NOTIONAL.maxNotional`` (not applied to MARKET orders: ``applyMaxToMarket``
        false).
    bid_up, bid_down, ask_up, ask_down : float
        ``PERCENT_PRICE_BY_SIDE`` multipliers of the average price (the fake uses the
        current path price) a buy's / sell's limit price must stay within.
    max_orders, max_algo_orders : int
        ``MAX_NUM_ORDERS`` (open orders of the symbol) and ``MAX_NUM_ALGO_ORDERS`` (open
        ``STOP_LOSS_LIMIT`` / ``TAKE_PROFIT_LIMIT`` orders of the symbol).
    """

    max_price: float
    max_qty: float
    market_max_qty: float
    max_notional: float
    bid_up: float
    bid_down: float
    ask_up: float
    ask_down: float
    max_orders: int
    max_algo_orders: int


def _row(spec: MarketSpec) -> dict[str, Any]:
    return SYMBOLS.get(spec.id) or SYMBOLS[_TEMPLATE]


def spot_rules(spec: MarketSpec) -> SpotRules:
    """The :class:`SpotRules` of ``spec`` (the template row's for unlisted pairs)."""
    f = _filters(_row(spec))
    pp = f["PERCENT_PRICE_BY_SIDE"]
    return SpotRules(
        max_price=float(f["PRICE_FILTER"]["maxPrice"]), max_qty=float(f["LOT_SIZE"]["maxQty"]),
        market_max_qty=float(f["MARKET_LOT_SIZE"]["maxQty"]),
        max_notional=float(f["NOTIONAL"]["maxNotional"]),
        bid_up=float(pp["bidMultiplierUp"]), bid_down=float(pp["bidMultiplierDown"]),
        ask_up=float(pp["askMultiplierUp"]), ask_down=float(pp["askMultiplierDown"]),
        max_orders=int(f["MAX_NUM_ORDERS"]["maxNumOrders"]),
        max_algo_orders=int(f["MAX_NUM_ALGO_ORDERS"]["maxNumAlgoOrders"]))


def symbol_row(spec: MarketSpec) -> dict[str, Any]:
    """The ``exchangeInfo`` row of ``spec``: the real row (the template's for unlisted
    pairs) with the spec's symbol, assets, tick (also ``minPrice``), step, minimum
    amount and minimum notional written in, as Binance formats them (8 decimals)."""
    row = copy.deepcopy(_row(spec))
    row.pop("_source", None)
    row.update(symbol=spec.id, baseAsset=spec.base, quoteAsset=spec.quote)
    f = _filters(row)
    f["PRICE_FILTER"].update(minPrice=fmt(spec.price_tick, _F8),
                             tickSize=fmt(spec.price_tick, _F8))
    f["LOT_SIZE"].update(minQty=fmt(spec.min_amount, _F8), stepSize=fmt(spec.amount_step, _F8))
    f["NOTIONAL"]["minNotional"] = fmt(spec.min_notional, _F8)
    return row


_RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
]


def spot_exchange_info(specs: list[MarketSpec], now_ms: int) -> dict[str, Any]:
    """``GET /api/v3/exchangeInfo`` body listing ``specs``."""
    return {"timezone": "UTC", "serverTime": now_ms, "rateLimits": copy.deepcopy(_RATE_LIMITS),
            "exchangeFilters": [], "symbols": [symbol_row(s) for s in specs]}
