"""Market specifications of the fake exchange and Binance-style ``exchangeInfo``.

Config symbols are written ``"BTC/USDT"``; the exchange id of the USDⓈ-M perpetual is
``"BTCUSDT"`` (ccxt shows it as ``"BTC/USDT:USDT"``). Prices are in quote currency
(USDT), amounts in base currency, timestamps in ms UTC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

__all__ = ["BinanceError", "MarketSpec", "build_specs", "exchange_info", "fmt", "fmt_num",
           "on_grid", "snap"]

# base asset -> (price tick, amount step), as Binance USDⓈ-M perpetuals list them
_KNOWN: dict[str, tuple[float, float]] = {
    "BTC": (0.1, 0.001),
    "ETH": (0.01, 0.001),
    "BNB": (0.01, 0.01),
    "SOL": (0.01, 0.01),
    "XRP": (0.0001, 0.1),
    "ADA": (0.0001, 1.0),
    "DOGE": (0.00001, 1.0),
}
_MAX_PRICE = 10_000_000.0
_MAX_QTY = 100_000_000.0
_ORDER_TYPES = ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"]


class BinanceError(Exception):
    """A request refused the way Binance refuses it: JSON ``{"code": code, "msg": msg}``
    with HTTP status ``http``."""

    def __init__(self, code: int, msg: str, http: int = 400) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.http = http


def _decimals(x: float) -> int:
    """Decimal places of a tick or step (0.001 -> 3, 1.0 -> 0)."""
    exp = Decimal(repr(float(x))).normalize().as_tuple().exponent
    return max(0, -int(exp))


def fmt(x: float, decimals: int) -> str:
    """Fixed-point string with ``decimals`` places (Binance sends numbers as strings)."""
    return f"{x:.{decimals}f}"


def fmt_num(x: float, decimals: int = 8) -> str:
    """Up to ``decimals`` places, trailing zeros trimmed (``"0"`` for zero)."""
    s = f"{x:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if s in ("", "-0") else s


def on_grid(x: float, step: float) -> bool:
    """True if ``x`` is an integer multiple of ``step`` (relative tolerance 1e-9)."""
    q = x / step
    return abs(q - round(q)) <= 1e-9 * max(1.0, abs(q))


def snap(x: float, step: float) -> float:
    """``x`` rounded to the nearest multiple of ``step``, cleaned of float noise."""
    return round(round(x / step) * step, _decimals(step) + 2)


@dataclass(frozen=True)
class MarketSpec:
    """One linear perpetual.

    Attributes
    ----------
    symbol : str
        Config symbol ``"BTC/USDT"``.
    price_tick : float
        Price increment (quote currency).
    amount_step, min_amount : float
        Quantity increment and minimum (base currency).
    min_notional : float
        Minimum ``price * amount`` of a non-reduce-only order (quote currency).
    """

    symbol: str
    price_tick: float
    amount_step: float
    min_amount: float
    min_notional: float

    @property
    def base(self) -> str:
        return self.symbol.split("/")[0]

    @property
    def quote(self) -> str:
        return self.symbol.split("/")[1]

    @property
    def id(self) -> str:
        """Exchange market id, ``"BTCUSDT"``."""
        return self.base + self.quote

    @property
    def price_decimals(self) -> int:
        return _decimals(self.price_tick)

    @property
    def amount_decimals(self) -> int:
        return _decimals(self.amount_step)

    def price_str(self, x: float) -> str:
        return fmt(x, self.price_decimals)

    def qty_str(self, x: float) -> str:
        return fmt(x, self.amount_decimals)

    def round_price(self, x: float) -> float:
        """``x`` on the tick grid (nearest)."""
        return snap(x, self.price_tick)

    def floor_qty(self, x: float) -> float:
        """``x`` rounded down to the step grid."""
        return snap(math.floor(x / self.amount_step + 1e-9) * self.amount_step, self.amount_step)


def _heuristic(price: float) -> tuple[float, float]:
    """Tick about 1e-5 of the price; step so one step is worth 0.5 to 5 quote."""
    tick = 10.0 ** (math.floor(math.log10(price)) - 5)
    step = 10.0 ** math.ceil(math.log10(5.0 / price))
    return tick, min(step, 1.0)


def build_specs(symbols: dict[str, float], markets: dict[str, dict[str, Any]] | None
                ) -> dict[str, MarketSpec]:
    """Market specs for ``symbols`` (config symbol -> a reference price).

    ``markets`` may give any of ``price_tick``, ``amount_step``, ``min_amount``,
    ``min_notional`` per symbol; missing values come from a Binance-like table
    (BTC 0.1/0.001, ETH 0.01/0.001, SOL 0.01/0.01, XRP 0.0001/0.1, ADA 0.0001/1) or,
    for other bases, from the reference price. ``min_amount`` defaults to the step and
    ``min_notional`` to 5.0.

    Raises
    ------
    ValueError
        Malformed symbol, unknown key, or a non-positive value.
    """
    markets = markets or {}
    unknown = set(markets) - set(symbols)
    if unknown:
        raise ValueError(f"markets given for symbols without candles: {sorted(unknown)}")
    out: dict[str, MarketSpec] = {}
    for sym, ref in symbols.items():
        parts = sym.split("/")
        if len(parts) != 2 or not all(p.isalnum() and p.isupper() for p in parts):
            raise ValueError(f"symbol must look like 'BTC/USDT', got {sym!r}")
        if parts[1] != "USDT":
            raise ValueError(f"only USDT-margined symbols are served, got {sym!r}")
        over = dict(markets.get(sym, {}))
        bad = set(over) - {"price_tick", "amount_step", "min_amount", "min_notional"}
        if bad:
            raise ValueError(f"unknown market keys for {sym}: {sorted(bad)}")
        tick, step = _KNOWN.get(parts[0]) or _heuristic(float(ref))
        spec = MarketSpec(
            symbol=sym,
            price_tick=float(over.get("price_tick", tick)),
            amount_step=float(over.get("amount_step", step)),
            min_amount=float(over.get("min_amount", over.get("amount_step", step))),
            min_notional=float(over.get("min_notional", 5.0)),
        )
        if min(spec.price_tick, spec.amount_step, spec.min_amount) <= 0 or spec.min_notional < 0:
            raise ValueError(f"market values for {sym} must be positive: {spec}")
        out[sym] = spec
    return out


def _symbol_info(spec: MarketSpec) -> dict[str, Any]:
    return {
        "symbol": spec.id,
        "pair": spec.id,
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000,
        "status": "TRADING",
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": spec.base,
        "quoteAsset": spec.quote,
        "marginAsset": spec.quote,
        "pricePrecision": spec.price_decimals,
        "quantityPrecision": spec.amount_decimals,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": spec.price_str(spec.price_tick),
             "maxPrice": spec.price_str(_MAX_PRICE), "tickSize": spec.price_str(spec.price_tick)},
            {"filterType": "LOT_SIZE", "minQty": spec.qty_str(spec.min_amount),
             "maxQty": spec.qty_str(_MAX_QTY), "stepSize": spec.qty_str(spec.amount_step)},
            {"filterType": "MARKET_LOT_SIZE", "minQty": spec.qty_str(spec.min_amount),
             "maxQty": spec.qty_str(_MAX_QTY), "stepSize": spec.qty_str(spec.amount_step)},
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": fmt_num(spec.min_notional)},
            {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500",
             "multiplierDown": "0.9500", "multiplierDecimal": "4"},
        ],
        "orderTypes": list(_ORDER_TYPES),
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }


def exchange_info(specs: dict[str, MarketSpec], now_ms: int) -> dict[str, Any]:
    """``GET /fapi/v1/exchangeInfo`` body for ``specs``."""
    return {
        "timezone": "UTC",
        "serverTime": now_ms,
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": 2400},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
        ],
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
        "symbols": [_symbol_info(s) for s in specs.values()],
    }
