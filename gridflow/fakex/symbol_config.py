"""Per-symbol position settings of the fake exchange: margin type and leverage.

Binance USDⓈ-M keeps a margin type (``CROSSED``, the default, or ``ISOLATED``) and a
leverage per symbol. ccxt reads both with ``fetch_leverages`` / ``fetch_margin_modes``
(``GET /fapi/v1/symbolConfig``) and changes the margin type with ``set_margin_mode``
(``POST /fapi/v1/marginType``); leverage is changed by ``POST /fapi/v1/leverage``
(:mod:`gridflow.fakex.rest`). Bodies and refusals are the venue's: ``-4046`` when the
type is already set (ccxt: ``MarginModeAlreadySet``), ``-4047`` with open orders,
``-4048`` with a position.

The margin type is recorded and reported (here and in the v2 ``positionRisk`` rows); the
fake's margin arithmetic stays cross for every symbol.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gridflow.fakex.book import Book
from gridflow.fakex.markets import BinanceError, MarketSpec

__all__ = ["ROUTES", "margin_type"]

Params = dict[str, str]
_TYPES = ("ISOLATED", "CROSSED")


def margin_type(book: Book, symbol: str) -> str:
    """``"CROSSED"`` (the venue's default) or ``"ISOLATED"`` for config ``symbol``."""
    return book.margin_types.get(symbol, "CROSSED")


def _spec(book: Book, p: Params, required: bool) -> MarketSpec | None:
    if not p.get("symbol"):
        if required:
            raise BinanceError(-1102, "Mandatory parameter 'symbol' was not sent, was "
                                      "empty/null, or malformed.")
        return None
    return book.spec_by_id(p["symbol"])


def _row(book: Book, spec: MarketSpec) -> dict[str, Any]:
    """One ``/fapi/v1/symbolConfig`` row (as Binance sends it: leverage a number)."""
    return {"symbol": spec.id, "marginType": margin_type(book, spec.symbol),
            "isAutoAddMargin": "false", "leverage": int(book.lev(spec.symbol)),
            "maxNotionalValue": "1000000000"}


def get_symbol_config(book: Book, p: Params) -> Any:
    """``GET /fapi/v1/symbolConfig`` (``symbol`` optional): a list of rows."""
    spec = _spec(book, p, required=False)
    return [_row(book, s) for s in book.specs.values() if spec is None or s is spec]


def post_margin_type(book: Book, p: Params) -> Any:
    """``POST /fapi/v1/marginType`` (``symbol``, ``marginType`` ``ISOLATED`` /
    ``CROSSED``)."""
    spec = _spec(book, p, required=True)
    want = (p.get("marginType") or "").upper()
    if want not in _TYPES:
        raise BinanceError(-1130, "Data sent for parameter 'marginType' is not valid.")
    if want == margin_type(book, spec.symbol):
        raise BinanceError(-4046, "No need to change margin type.")
    if book.open_orders(spec.symbol) or book.open_algos(spec.symbol):
        raise BinanceError(-4047, "Margin type cannot be changed if there exists open orders.")
    if book.position(spec.symbol).amount != 0:
        raise BinanceError(-4048, "Margin type cannot be changed if there exists position.")
    book.margin_types[spec.symbol] = want
    return {"code": 200, "msg": "success"}


Handler = Callable[[Book, Params], Any]

#: (method, path) -> (handler, signed), merged into :data:`gridflow.fakex.rest.ROUTES`.
ROUTES: dict[tuple[str, str], tuple[Handler, bool]] = {
    ("GET", "/fapi/v1/symbolConfig"): (get_symbol_config, True),
    ("POST", "/fapi/v1/marginType"): (post_margin_type, True),
}
