"""REST dialects of the fake exchange: what differs between the venues it imitates.

A dialect holds the routes, the authentication and the answer envelope of one venue;
the book, matching engine, clock, funding and fault injection underneath are shared.

* ``binanceusdm`` (default): Binance USDⓈ-M futures (:mod:`gridflow.fakex.rest`),
  dispatched by :meth:`gridflow.fakex.server.FakeExchange._dispatch` as before.
* ``bitget``: Bitget v2 "mix" USDT-M futures (:mod:`gridflow.fakex.bitget_rest`), one
  way position mode; every answer is ``{"code", "msg", "requestTime", "data"}``.
* ``binance``: Binance spot (:mod:`gridflow.fakex.spot_rest`) on a
  :class:`~gridflow.fakex.spot_book.SpotBook` (balances per asset, no positions), the
  USDⓈ-M dialect's signing, envelope and dispatch.

Prices in quote (USDT), amounts in base, times in ms UTC (simulated clock).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from gridflow.fakex.bitget_auth import check_bitget_auth
from gridflow.fakex.bitget_markets import BitgetError, build_bitget_specs
from gridflow.fakex.bitget_rest import ROUTES as BITGET_ROUTES
from gridflow.fakex.book import Book
from gridflow.fakex.markets import MarketSpec, build_specs
from gridflow.fakex.rest import batch_client_ids
from gridflow.fakex.spot_book import INSUFFICIENT, SpotBook
from gridflow.fakex.spot_markets import build_spot_specs
from gridflow.fakex.spot_rest import ROUTES as SPOT_ROUTES
from gridflow.fakex.weights import request_weight

if TYPE_CHECKING:
    from gridflow.fakex.server import FakeExchange

__all__ = ["DIALECTS", "BinanceDialect", "BinanceSpotDialect", "BitgetDialect", "make_dialect",
           "new_book"]

log = logging.getLogger(__name__)
_RATE_MSG = ("Too many requests; current limit of IP(127.0.0.1) is 2400 requests per minute. "
             "Please use the websocket for live updates to avoid polling the API.")
_CID_KEYS = ("newClientOrderId", "clientAlgoId", "origClientOrderId", "clientOrderId")


class BinanceDialect:
    """Binance USDⓈ-M: form/query parameters, ``X-MBX-APIKEY`` + HMAC hex signature,
    bare JSON bodies, ``{"code": -n, "msg"}`` errors."""

    name = "binanceusdm"
    maker_fee, taker_fee = 0.0002, 0.0005

    def build_specs(self, prices: dict[str, float], markets: dict | None
                    ) -> dict[str, MarketSpec]:
        """Market specs (see :func:`gridflow.fakex.markets.build_specs`)."""
        return build_specs(prices, markets)

    def ccxt_urls(self, url: str) -> dict[str, str]:
        """Entries to merge into ccxt's ``urls["api"]`` (all the ``fapi*`` sections)."""
        v1, v2, v3 = (f"{url}/fapi/v{i}" for i in (1, 2, 3))
        return {"fapiPublic": v1, "fapiPublicV2": v2, "fapiPublicV3": v3,
                "fapiPrivate": v1, "fapiPrivateV2": v2, "fapiPrivateV3": v3,
                "fapiData": f"{url}/futures/data"}

    def ccxt_options(self, passphrase: str) -> dict[str, Any]:
        """Config entries (besides credentials and urls) keeping ccxt on this market."""
        return {"options": {"defaultType": "swap", "fetchCurrencies": False}}

    def parse(self, qs: str, body: str) -> dict[str, Any]:
        """Query and form parameters (strings)."""
        params = dict(parse_qsl(qs, keep_blank_values=True))
        params.update(parse_qsl(body, keep_blank_values=True))
        return params

    def weight(self, method: str, path: str, params: dict[str, Any]) -> int:
        """Binance request weight (:mod:`gridflow.fakex.weights`)."""
        return request_weight(method, path, params)

    def client_ids(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """``client_order_id`` (and a batch's ``client_order_ids``) for the logs."""
        out: dict[str, Any] = {"client_order_id": next(
            (params[k] for k in _CID_KEYS if params.get(k)), None)}
        if path.endswith("/batchOrders"):
            out["client_order_ids"] = batch_client_ids(params)
        return out

    def fault_reply(self, kind: str, now: int) -> tuple[int, Any, dict[str, str]]:
        """Status, body and headers of an injected ``rate_limit`` / ``server_error`` /
        ``reject``."""
        if kind == "rate_limit":
            return 429, {"code": -1003, "msg": _RATE_MSG}, {"Retry-After": "1"}
        if kind == "server_error":
            return 503, "Service Unavailable", {}
        return 400, {"code": -2019, "msg": "Margin is insufficient."}, {}

    def dispatch(self, fx: FakeExchange, method: str, path: str, qs: str, body: str,
                 params: dict[str, Any], headers: Any) -> tuple[int, Any]:
        """Run the request (:meth:`FakeExchange._dispatch`)."""
        return fx._dispatch(method, path, qs, body, params, headers)


# ccxt.bitget's urls["api"] groups; every one is served from the same base URL.
BITGET_GROUPS = ("spot", "mix", "user", "p2p", "broker", "margin", "common", "tax",
                 "convert", "copy", "earn", "uta")


class BinanceSpotDialect(BinanceDialect):
    """Binance spot: the USDⓈ-M signing and envelope, ``/api/v3`` routes
    (:mod:`gridflow.fakex.spot_rest`), the real spot filters
    (:mod:`gridflow.fakex.spot_markets`), spot fees (maker 0.001, taker 0.001)."""

    name = "binance"
    maker_fee, taker_fee = 0.001, 0.001
    build_specs = staticmethod(build_spot_specs)  # the real Binance spot filters

    def ccxt_urls(self, url: str) -> dict[str, str]:
        """``ccxt.binance(...)["urls"]["api"]`` entries of the spot API: ``public`` and
        ``private`` (``/api/v3``), ``v1`` (``/api/v1``)."""
        return {"public": f"{url}/api/v3", "private": f"{url}/api/v3", "v1": f"{url}/api/v1"}

    def ccxt_options(self, passphrase: str) -> dict[str, Any]:
        """Spot markets only, no currency (``sapi``) or margin calls."""
        return {"options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]},
                            "fetchCurrencies": False, "fetchMargins": False}}

    def fault_reply(self, kind: str, now: int) -> tuple[int, Any, dict[str, str]]:
        """As USD-M, but a ``reject`` is spot's -2010 insufficient balance
        (ccxt: ``InsufficientFunds``)."""
        if kind == "reject":
            return 400, {"code": -2010, "msg": INSUFFICIENT}, {}
        return super().fault_reply(kind, now)

    def dispatch(self, fx: FakeExchange, method: str, path: str, qs: str, body: str,
                 params: dict[str, Any], headers: Any) -> tuple[int, Any]:
        """Run the request on the spot routes (:meth:`FakeExchange._dispatch`)."""
        return fx._dispatch(method, path, qs, body, params, headers, SPOT_ROUTES)


class BitgetDialect:
    """Bitget v2: JSON POST bodies, ``ACCESS-*`` headers (base64 HMAC-SHA256 with a
    passphrase, :mod:`gridflow.fakex.bitget_auth`), answers in Bitget's envelope."""

    name = "bitget"
    maker_fee, taker_fee = 0.0002, 0.0006

    def build_specs(self, prices: dict[str, float], markets: dict | None
                    ) -> dict[str, MarketSpec]:
        """Specs following the real Bitget contract filters (see
        :func:`gridflow.fakex.bitget_markets.build_bitget_specs`)."""
        return build_bitget_specs(prices, markets)

    def ccxt_urls(self, url: str) -> dict[str, str]:
        """``ccxt.bitget(...)["urls"]["api"]``: every endpoint group at the fake (ccxt
        appends ``/api/v2/...``)."""
        return {g: url for g in BITGET_GROUPS}

    def ccxt_options(self, passphrase: str) -> dict[str, Any]:
        """The passphrase and what keeps ccxt on USDT-M futures (no spot coin list, no
        unified-account probe)."""
        return {"password": passphrase, "has": {"fetchCurrencies": False},
                "options": {"defaultType": "swap", "uta": False,
                            "fetchMarkets": {"types": ["swap"]}}}

    def parse(self, qs: str, body: str) -> dict[str, Any]:
        """Query strings plus the JSON body's values (a body that is not a JSON object
        adds nothing; the handler then refuses the request)."""
        params: dict[str, Any] = dict(parse_qsl(qs, keep_blank_values=True))
        if body:
            try:
                data = json.loads(body)
            except ValueError:
                data = None
            if isinstance(data, dict):
                params.update(data)
        return params

    def weight(self, method: str, path: str, params: dict[str, Any]) -> int:
        """Bitget counts requests per endpoint: every request weighs 1."""
        return 1

    def client_ids(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """``client_order_id``: ``clientOid``, or the first one of ``orderIdList``."""
        cid = params.get("clientOid") or None
        refs = params.get("orderIdList")
        if cid is None and isinstance(refs, list):
            cid = next((r.get("clientOid") for r in refs
                        if isinstance(r, dict) and r.get("clientOid")), None)
        return {"client_order_id": cid}

    def fault_reply(self, kind: str, now: int) -> tuple[int, Any, dict[str, str]]:
        """``rate_limit``: HTTP 429 with Bitget's ``"429"`` body (ccxt:
        ``DDoSProtection``); ``server_error``: 503 plain text (``ExchangeNotAvailable``);
        ``reject``: 400 ``40762`` (``InsufficientFunds``)."""
        if kind == "rate_limit":
            return 429, _err("429", "Too Many Requests", now), {}
        if kind == "server_error":
            return 503, "Service Unavailable", {}
        return 400, _err("40762", "The order amount exceeds the balance", now), {}

    def dispatch(self, fx: FakeExchange, method: str, path: str, qs: str, body: str,
                 params: dict[str, Any], headers: Any) -> tuple[int, Any]:
        """Authenticate (signed routes), run the handler under the exchange lock and
        wrap its data (or refusal) in Bitget's envelope."""
        route = BITGET_ROUTES.get((method, path))
        if route is None:
            return 404, _err("40404", "Request URL NOT FOUND", fx.now_ms())
        handler, signed = route
        try:
            if signed:
                check_bitget_auth(headers, method, path, qs, body, fx._api_key, fx._secret,
                                  fx._passphrase)
            if method == "POST" and body:
                try:
                    ok = isinstance(json.loads(body), dict)
                except ValueError:
                    ok = False
                if not ok:
                    raise BitgetError("40017", "Parameter verification failed: body is not "
                                               "a JSON object")
            with fx._lock:
                try:
                    data = handler(fx._book, params)
                finally:
                    fx._hub.publish()
                now = fx._book.feed.now
            return 200, {"code": "00000", "msg": "success", "requestTime": now, "data": data}
        except BitgetError as e:
            return e.http, _err(e.code, e.msg, fx.now_ms())
        except Exception:  # a bug in the fake: say so like Bitget's system error
            log.exception("fakex: %s %s failed", method, path)
            return 500, _err("40015", "System is abnormal, please try again later",
                             fx.now_ms())


def _err(code: str, msg: str, now: int) -> dict[str, Any]:
    return {"code": code, "msg": msg, "requestTime": now, "data": None}


DIALECTS = {"binanceusdm": BinanceDialect, "bitget": BitgetDialect,
            "binance": BinanceSpotDialect}


def new_book(dialect: BinanceDialect | BitgetDialect, spot_balances: dict[str, float] | None,
             funding: dict | None, **kw: Any) -> Book:
    """The book of ``dialect``: a :class:`~gridflow.fakex.spot_book.SpotBook` starting
    with ``spot_balances`` (base asset -> amount) for spot, else a
    :class:`~gridflow.fakex.book.Book` (``kw``: its fields).

    Raises
    ------
    ValueError
        ``spot_balances`` given to a futures dialect, or a ``funding`` schedule to spot.
    """
    if dialect.name == "binance":
        if funding:
            raise ValueError("spot (dialect='binance') has no funding")
        return SpotBook(initial_base=dict(spot_balances or {}), **kw)
    if spot_balances:
        raise ValueError(f"spot_balances needs dialect='binance', not {dialect.name!r}")
    return Book(**kw)


def make_dialect(name: str) -> BinanceDialect | BitgetDialect:
    """The dialect called ``name`` (``"binanceusdm"``, ``"bitget"`` or ``"binance"``).

    Raises
    ------
    ValueError
        Unknown name.
    """
    if name not in DIALECTS:
        raise ValueError(f"dialect must be one of {sorted(DIALECTS)}, got {name!r}")
    return DIALECTS[name]()
