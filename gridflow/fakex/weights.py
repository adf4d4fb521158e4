"""Binance request weights (USDⓈ-M and spot) of the REST endpoints the fake exchange serves.

Binance limits each IP to a request *weight* per minute (2400 on USDⓈ-M futures, header
``X-MBX-USED-WEIGHT-1M``); every endpoint has a documented weight, some depending on a
parameter (``limit`` of klines; whether ``symbol`` is sent). :func:`request_weight` gives
the weight of one request and :func:`total_weight` sums a
:attr:`gridflow.fakex.FakeExchange.request_log` (each entry carries ``weight``), so a
consumer benchmark can compare polling with websocket streaming in Binance's own unit.

Source: Binance USDⓈ-M Futures REST API reference ("Request Weight" of each endpoint,
developers.binance.com/docs/derivatives/usds-margined-futures), cross-checked with the
costs ccxt 4.5.90 carries in ``binance.describe()["api"]["fapi*"]``. Order placement
(``POST /fapi/v1/order``, ``POST /fapi/v1/algoOrder``) is documented as weight 0 on the
IP limit and 1 on the order-count limits; it is counted 1 here so placements show up.

Spot (``/api/v3``, limit 6000 per minute): Binance spot REST API reference
(developers.binance.com/docs/binance-spot-api-docs/rest-api), cross-checked with ccxt
4.5.90's ``binance.describe()["api"]["public" / "private"]`` costs (weight / 5):
klines 2 whatever the limit, ``exchangeInfo`` 20, ``ticker/price`` and
``ticker/bookTicker`` 2 (4 without ``symbol``), ``ticker/24hr`` 2 (80), order writes 1,
``GET order`` 4, ``openOrders`` 6 (80), ``allOrders``, ``myTrades`` and ``account`` 20.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["WEIGHTS", "request_weight", "total_weight"]

# (method, path) -> weight with ``symbol`` sent, weight without it (None: the same).
WEIGHTS: dict[tuple[str, str], tuple[int, int | None]] = {
    ("GET", "/fapi/v1/ping"): (1, None),
    ("GET", "/fapi/v1/time"): (1, None),
    ("GET", "/fapi/v1/exchangeInfo"): (1, None),
    ("GET", "/fapi/v1/klines"): (0, None),  # by limit, see _KLINES
    ("GET", "/fapi/v1/ticker/24hr"): (1, 40),
    ("GET", "/fapi/v1/ticker/price"): (1, 2),
    ("GET", "/fapi/v2/ticker/price"): (1, 2),
    ("GET", "/fapi/v1/premiumIndex"): (1, 10),
    ("GET", "/fapi/v1/fundingRate"): (1, None),  # shares a 500/5min/IP limit on Binance
    ("POST", "/fapi/v1/order"): (1, None),
    ("DELETE", "/fapi/v1/order"): (1, None),
    ("GET", "/fapi/v1/order"): (1, None),
    ("GET", "/fapi/v1/openOrders"): (1, 40),
    ("GET", "/fapi/v1/allOrders"): (5, None),
    ("DELETE", "/fapi/v1/allOpenOrders"): (1, None),
    ("POST", "/fapi/v1/batchOrders"): (5, None),
    ("DELETE", "/fapi/v1/batchOrders"): (1, None),
    ("POST", "/fapi/v1/algoOrder"): (1, None),
    ("DELETE", "/fapi/v1/algoOrder"): (1, None),
    ("GET", "/fapi/v1/algoOrder"): (1, None),
    ("GET", "/fapi/v1/openAlgoOrders"): (1, 40),
    ("GET", "/fapi/v1/allAlgoOrders"): (5, None),
    ("DELETE", "/fapi/v1/algoOpenOrders"): (1, None),
    ("GET", "/fapi/v1/userTrades"): (5, None),
    ("GET", "/fapi/v1/income"): (30, None),
    ("GET", "/fapi/v2/account"): (5, None),
    ("GET", "/fapi/v3/account"): (5, None),
    ("GET", "/fapi/v2/balance"): (5, None),
    ("GET", "/fapi/v3/balance"): (5, None),
    ("GET", "/fapi/v2/positionRisk"): (5, None),
    ("GET", "/fapi/v3/positionRisk"): (5, None),
    ("GET", "/fapi/v1/leverageBracket"): (1, None),
    ("POST", "/fapi/v1/leverage"): (1, None),
    ("GET", "/fapi/v1/symbolConfig"): (5, None),
    ("POST", "/fapi/v1/marginType"): (1, None),
    ("GET", "/fapi/v1/positionSide/dual"): (30, None),
    ("POST", "/fapi/v1/listenKey"): (1, None),
    ("PUT", "/fapi/v1/listenKey"): (1, None),
    ("DELETE", "/fapi/v1/listenKey"): (1, None),
    ("GET", "/api/v3/ping"): (1, None),
    ("GET", "/api/v3/time"): (1, None),
    ("GET", "/api/v3/exchangeInfo"): (20, None),
    ("GET", "/api/v3/klines"): (2, None),
    ("GET", "/api/v3/ticker/price"): (2, 4),
    ("GET", "/api/v3/ticker/bookTicker"): (2, 4),
    ("GET", "/api/v3/ticker/24hr"): (2, 80),
    ("POST", "/api/v3/order"): (1, None),
    ("DELETE", "/api/v3/order"): (1, None),
    ("GET", "/api/v3/order"): (4, None),
    ("GET", "/api/v3/openOrders"): (6, 80),
    ("DELETE", "/api/v3/openOrders"): (1, None),
    ("GET", "/api/v3/allOrders"): (20, None),
    ("GET", "/api/v3/myTrades"): (20, None),
    ("GET", "/api/v3/account"): (20, None),
}
# USDⓈ-M klines: limit below 100 -> 1, below 500 -> 2, up to 1000 -> 5, above -> 10
# (default 500).
_KLINES = ((100, 1), (500, 2), (1001, 5))
_UNKNOWN = 1  # a path the fake does not serve (answered 404) still costs a request


def request_weight(method: str, path: str, params: Mapping[str, str]) -> int:
    """Binance request weight of one REST request (``params``: query and form values).

    Control paths (``/_fakex/...``) weigh 0; a path not in :data:`WEIGHTS` weighs 1.
    """
    if path.startswith("/_fakex/"):
        return 0
    entry = WEIGHTS.get((method, path))
    if entry is None:
        return _UNKNOWN
    if path == "/fapi/v1/klines":
        try:
            limit = int(params.get("limit") or 500)
        except ValueError:
            limit = 500
        return next((w for below, w in _KLINES if limit < below), 10)
    with_symbol, without = entry
    return with_symbol if without is None or params.get("symbol") else without


def total_weight(entries: Iterable[Mapping[str, Any]]) -> int:
    """Sum of the ``weight`` of request-log entries (entries without one count 0)."""
    return sum(int(e.get("weight", 0)) for e in entries)
