"""Bitget USDT-M perpetual contracts of the fake exchange, and Bitget's error codes.

Contract filters of the symbols Bitget lists come from ``bitget_contracts.json`` (real
``/api/v2/mix/market/contracts`` rows, see its ``_source``): price tick
``priceEndStep * 10**-pricePlace``, amount step ``sizeMultiplier``, minimum amount
``minTradeNum``, minimum notional ``minTradeUSDT``. Other symbols get the specs
:func:`gridflow.fakex.markets.build_specs` derives for Binance. Prices are in quote
(USDT), amounts in base, times in ms UTC.

:class:`BitgetError` is a refusal in Bitget's envelope; :func:`from_binance` turns the
book's :class:`~gridflow.fakex.markets.BinanceError` codes into the Bitget codes (and so
the ccxt error classes) real Bitget answers with.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gridflow.fakex.markets import BinanceError, MarketSpec, build_specs, fmt_num

__all__ = ["CONTRACTS", "BitgetError", "bitget_filters", "build_bitget_specs", "contract_json",
           "from_binance", "max_leverage"]

_DATA = json.loads((Path(__file__).with_name("bitget_contracts.json")).read_text())
CONTRACTS: dict[str, dict[str, Any]] = _DATA["contracts"]
"""Market id (``"BTCUSDT"``) -> the real Bitget contract row."""


class BitgetError(Exception):
    """A request refused the way Bitget refuses it: ``{"code": code, "msg": msg,
    "requestTime": ms, "data": null}`` with HTTP status ``http``."""

    def __init__(self, code: str, msg: str, http: int = 400) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = str(code)
        self.msg = msg
        self.http = http


def _tick(row: dict[str, Any]) -> float:
    return float(row["priceEndStep"]) * 10.0 ** -int(row["pricePlace"])


def bitget_filters(symbol: str) -> dict[str, float] | None:
    """The real Bitget USDT-M filters of config symbol ``symbol`` (``"BTC/USDT"``) as
    ``price_tick``, ``amount_step``, ``min_amount`` (base) and ``min_notional`` (USDT),
    the keys of a config's ``[markets]`` table; None when ``bitget_contracts.json``
    does not list the contract."""
    row = CONTRACTS.get(symbol.replace("/", ""))
    if row is None:
        return None
    return {"price_tick": _tick(row), "amount_step": float(row["sizeMultiplier"]),
            "min_amount": float(row["minTradeNum"]), "min_notional": float(row["minTradeUSDT"])}


def build_bitget_specs(symbols: dict[str, float], markets: dict[str, dict] | None
                       ) -> dict[str, MarketSpec]:
    """Specs for ``symbols`` (config symbol -> reference price): the real Bitget
    filters where ``bitget_contracts.json`` lists the contract, else as for Binance;
    ``markets`` overrides (``price_tick``, ``amount_step``, ``min_amount``,
    ``min_notional``) win over both."""
    merged: dict[str, dict[str, Any]] = {}
    for sym in symbols:
        merged[sym] = {**(bitget_filters(sym) or {}), **(markets or {}).get(sym, {})}
    unknown = set(markets or {}) - set(symbols)
    if unknown:
        raise ValueError(f"markets given for symbols without candles: {sorted(unknown)}")
    return build_specs(symbols, merged)


def max_leverage(spec: MarketSpec) -> int:
    """``maxLever`` of the contract (125 where the data file does not list it)."""
    row = CONTRACTS.get(spec.id)
    return int(row["maxLever"]) if row else 125


def contract_json(spec: MarketSpec, maker_fee: float, taker_fee: float) -> dict[str, Any]:
    """``/api/v2/mix/market/contracts`` row of ``spec``: the real row with the spec's
    tick, step, minimums and the fake's fee rates written in."""
    row = dict(CONTRACTS.get(spec.id) or CONTRACTS["BTCUSDT"])
    places = spec.price_decimals
    row.update({
        "symbol": spec.id, "baseCoin": spec.base, "quoteCoin": spec.quote,
        "pricePlace": str(places),
        "priceEndStep": str(max(1, round(spec.price_tick * 10 ** places))),
        "volumePlace": str(spec.amount_decimals),
        "sizeMultiplier": fmt_num(spec.amount_step, 10),
        "minTradeNum": fmt_num(spec.min_amount, 10),
        "minTradeUSDT": fmt_num(spec.min_notional, 10),
        "makerFeeRate": fmt_num(maker_fee, 10), "takerFeeRate": fmt_num(taker_fee, 10),
        "supportMarginCoins": [spec.quote],
    })
    if spec.id not in CONTRACTS:
        row.update({"maxLever": "125", "posLimit": "0.05"})
    return row


# Binance code (as the book raises it) -> (Bitget code, message); None: keep the message.
_MAP: dict[int, tuple[str, str | None]] = {
    -4015: ("40305", ("clientOid or clientOrderId length cannot greater than 64, and "
                      "cannot be Martian characters")),
    -4116: ("40786", "Duplicate clientOid"),
    -4003: ("40808", "Parameter verification exception size must be greater than 0"),
    -4001: ("41103", "param price scale error error"),
    -4164: ("45110", None),
    -2022: ("22002", "No position to close"),
    -5022: ("40017", ("Parameter verification failed: post_only order would be filled "
                      "immediately")),
    -2019: ("40762", "The order amount exceeds the balance"),
    -2011: ("40768", "Order does not exist"),
    -2013: ("40109", ("The data of the order cannot be found, please confirm the order "
                      "number")),
    -1121: ("40034", "Parameter symbol does not exist"),
    -1100: ("40017", "Parameter verification failed"),
    -1102: ("40019", None),
    -1130: ("40017", "Parameter verification failed"),
}


def from_binance(e: BinanceError, min_notional: float | None = None) -> BitgetError:
    """The Bitget refusal for the book's refusal ``e`` (``min_notional`` in USDT for
    the minimum-amount message)."""
    code, msg = _MAP.get(e.code, ("40017", None))
    if e.code == -4164:
        msg = f"less than the minimum amount {fmt_num(min_notional or 5.0)} USDT"
    return BitgetError(code, msg or e.msg)
