"""``FakeExchange``: a local Binance USDⓈ-M futures REST server for tests (its
websocket streams: :mod:`gridflow.fakex.ws`).

Real ccxt (``binanceusdm``) talks to it over HTTP on 127.0.0.1: request signing, JSON
parsing, precision and error mapping all run for real. Prices are in quote currency
(USDT), amounts in base currency, timestamps in ms UTC on the simulated clock.

Signed endpoints need the ``X-MBX-APIKEY`` header and an HMAC-SHA256 ``signature`` of
the query string (GET/DELETE) or form body (POST) exactly as Binance and ccxt compute
it; ``timestamp`` must be present but is not compared with the simulated clock.

Control endpoints (never faulted, never signed): ``POST /_fakex/step?n=1``,
``POST /_fakex/substep?k=1&of=12`` and ``POST /_fakex/advance?ms=60000`` -> ``{"left",
"now"}``; ``GET /_fakex/state`` -> orders, trades, positions, balance, equity, now.

Clock: ``now`` moves by whole candles (:meth:`FakeExchange.step`) or inside the forming
candle (:meth:`FakeExchange.substep`, :meth:`FakeExchange.advance_ms`) along the price
path the matcher walks (see :mod:`gridflow.fakex.matching`); time, klines, tickers, mark
price, fills and unrealized PnL all follow it. Funding (optional) is settled on the way
(:mod:`gridflow.fakex.funding`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from gridflow.fakex.clock import substep_target
from gridflow.fakex.dialects import make_dialect, new_book
from gridflow.fakex.faults import FaultInjector, FaultPlan
from gridflow.fakex.feed import Feed
from gridflow.fakex.funding import Funding
from gridflow.fakex.markets import BinanceError
from gridflow.fakex.rest import ROUTES
from gridflow.fakex.ws import LISTEN_KEY_PATH, WsHub
from gridflow.fakex.book_views import BookViews
from gridflow.fakex.ws_api import WsApi

__all__ = ["FakeExchange"]

log = logging.getLogger(__name__)
_SIG_RE = re.compile(r"(^|&)signature=([^&]*)")
_UNKNOWN_MSG = ("Timeout waiting for response from backend server. Send status unknown; "
                "execution status unknown.")


class FakeExchange(BookViews, WsApi):
    """A simulated Binance USDⓈ-M account served over HTTP and websockets.

    Parameters
    ----------
    candles : dict of str to np.ndarray
        ``"BTC/USDT"`` -> (n, 6) float64 ``ts_ms, open, high, low, close, volume``.
    timeframe : str
        Timeframe of the rows (klines ``interval`` must equal it).
    start_ms : int
        Open time of the first forming candle; earlier rows are history.
    markets : dict or None
        Per symbol overrides ``price_tick``, ``amount_step``, ``min_amount``,
        ``min_notional`` (see :func:`gridflow.fakex.markets.build_specs`).
    api_key, secret : str
        Credentials the signed endpoints accept.
    balance_usdt : float
        Initial wallet balance (USDT).
    maker_fee, taker_fee : float or None
        Commission rates on notional (None: the dialect's, Binance 0.0002 / 0.0005,
        Bitget 0.0002 / 0.0006).
    stop_slippage : float
        Fraction by which a triggered stop-market fills worse than its trigger.
    faults : FaultPlan or None
        Injected faults (see :mod:`gridflow.fakex.faults`).
    clock : "manual" or "realtime"
        ``manual``: time moves only by :meth:`step`; ``realtime``: a thread steps one
        candle every ``seconds_per_candle`` after :meth:`start`.
    seconds_per_candle : float
        Realtime pace.
    leverage : int
        Leverage of every symbol (``POST /fapi/v1/leverage`` changes one symbol).
    funding : dict or None
        Config symbol -> ``(times_ms, rates)``: funding settlement times (ms UTC) and
        rates (fractions), e.g. ``gridflow.data.funding.read_funding(path)``. A position
        open when the clock reaches a settlement pays ``amount_signed * mark * rate``
        (see :mod:`gridflow.fakex.funding` for the mark rule). None: no funding.
    funding_publish_lag_ms : int
        Exchange ms after a settlement before ``/fapi/v1/fundingRate`` lists it (a venue
        publishes its history a moment late); payments are not delayed.
    dialect : "binanceusdm", "bitget" or "binance"
        REST dialect (:mod:`gridflow.fakex.dialects`): Binance USDⓈ-M (default), Bitget
        v2 USDT-M futures (real Bitget contract filters) or Binance spot (real spot
        filters, balances per asset: :mod:`gridflow.fakex.spot_book`; no funding).
    passphrase : str
        Bitget API passphrase (``ACCESS-PASSPHRASE``; ccxt's ``password``).
    spot_balances : dict or None
        Spot: initial base balances (``{"BTC": 0.5}``; quote: ``balance_usdt``).
    """

    def __init__(self, candles: dict[str, np.ndarray], timeframe: str = "1h",
                 start_ms: int | None = None, markets: dict[str, dict] | None = None,
                 api_key: str = "test-key", secret: str = "test-secret",
                 balance_usdt: float = 10_000.0, maker_fee: float | None = None,
                 taker_fee: float | None = None, stop_slippage: float = 0.0,
                 faults: FaultPlan | None = None, clock: str = "manual",
                 seconds_per_candle: float = 1.0, leverage: int = 1,
                 funding: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
                 funding_publish_lag_ms: int = 0, dialect: str = "binanceusdm",
                 passphrase: str = "test-passphrase",
                 spot_balances: dict[str, float] | None = None) -> None:
        if start_ms is None:
            raise ValueError("start_ms is required (open time of the first forming candle)")
        if clock not in ("manual", "realtime"):
            raise ValueError(f"clock must be 'manual' or 'realtime', got {clock!r}")
        if seconds_per_candle <= 0 or leverage < 1 or balance_usdt < 0:
            raise ValueError("seconds_per_candle > 0, leverage >= 1, balance_usdt >= 0")
        self._dialect = make_dialect(dialect)
        feed = Feed(candles, timeframe, start_ms)
        specs = self._dialect.build_specs(
            {s: feed.price(s) if feed.forming(s) else feed.first_price(s)
             for s in feed.symbols}, markets)
        maker_fee = self._dialect.maker_fee if maker_fee is None else maker_fee
        taker_fee = self._dialect.taker_fee if taker_fee is None else taker_fee
        self._lock = threading.RLock()
        self._book = new_book(self._dialect, spot_balances, funding, feed=feed, specs=specs,
                              wallet=float(balance_usdt), maker_fee=maker_fee,
                              taker_fee=taker_fee, stop_slippage=stop_slippage,
                              leverage=leverage, partial=self._partial)
        self._book.funding = Funding(funding, feed.symbols, funding_publish_lag_ms)
        self._api_key, self._secret = api_key, secret.encode()
        self._passphrase = passphrase
        self._clock, self._pace = clock, float(seconds_per_candle)
        self._injector = FaultInjector(faults) if faults else None
        self.fault_log: list[dict[str, Any]] = []
        self.request_log: list[dict[str, Any]] = []
        self._hub = WsHub(self._book, self._lock, self.fault_log, lambda: self._injector,
                          api_key)
        self.ws_url: str | None = None
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self.url: str | None = None

    # ------------------------------------------------------------ lifecycle
    def start(self, port: int = 0, host: str = "127.0.0.1", ws_port: int = 0) -> str:
        """Serve REST and (on ``ws_port``, :attr:`ws_url`) websockets in background
        threads; returns ``"http://127.0.0.1:PORT"``."""
        if self._server is not None:
            raise RuntimeError("already started")
        server = ThreadingHTTPServer((host, port), _Handler)
        server.daemon_threads = True
        server.fx = self  # type: ignore[attr-defined]
        self._server = server
        self.url = f"http://{host}:{server.server_address[1]}"
        t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                             name="fakex-http", daemon=True)
        t.start()
        self._threads.append(t)
        self.ws_url = self._hub.start(host, ws_port)
        if self._clock == "realtime":
            c = threading.Thread(target=self._run_clock, name="fakex-clock", daemon=True)
            c.start()
            self._threads.append(c)
        return self.url

    def stop(self) -> None:
        """Stop serving and the realtime clock (idempotent)."""
        self._stopping.set()
        self._hub.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for t in self._threads:
            t.join(timeout=2.0)
        self._threads.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run_clock(self) -> None:
        while not self._stopping.wait(self._pace):
            if self.step() == 0:
                return

    def ccxt_urls(self) -> dict[str, str]:
        """Entries to merge into ccxt's ``urls["api"]``: Binance's ``fapi*`` sections (spot:
        ``public``, ``private``, ``v1``), or every ``ccxt.bitget`` endpoint group."""
        if self.url is None:
            raise RuntimeError("call start() first")
        return self._dialect.ccxt_urls(self.url)

    def ccxt_config(self) -> dict[str, Any]:
        """Keyword config for the ccxt class of the dialect (``ccxt.bitget(cfg)`` /
        ``ccxt.binanceusdm(cfg)`` / ``ccxt.binance(cfg)``): credentials, ``urls.api``
        and the options that keep it on the dialect's market (no other market's calls)."""
        return {"apiKey": self._api_key, "secret": self._secret.decode(),
                "urls": {"api": self.ccxt_urls()}, **self._dialect.ccxt_options(self._passphrase)}

    # ------------------------------------------------------------ python API
    def step(self, n: int = 1) -> int:
        """Match and close ``n`` forming candles; returns candles left (0: data done).

        Inside a candle (after :meth:`substep`), the first step finishes walking the
        forming candle and closes it."""
        with self._lock:
            feed = self._book.feed
            for _ in range(int(n)):
                if feed.left() == 0:
                    break
                self._hub.advance(feed.open_ms + feed.tf_ms)
            return feed.left()

    def substep(self, k: int = 1, of: int = 12) -> int:
        """Move the clock ``k`` pieces of ``tf / of`` inside the candles (to the k-th point
        after it on the grid ``open + j * tf // of``, j = 0..of-1), matching orders along
        the price path on the way. Reaching a candle's close closes it (``of`` sub-steps
        of a fresh candle = one :meth:`step`). Returns candles left, as :meth:`step`.

        Raises
        ------
        ValueError
            ``k < 0``, ``of < 1`` or ``of`` larger than the candle in ms.
        """
        with self._lock:
            feed = self._book.feed
            self._hub.advance(substep_target(feed.open_ms, feed.offset, feed.tf_ms, k, of))
            return feed.left()

    def advance_ms(self, ms: int) -> int:
        """Move the clock ``ms`` milliseconds on (closing the candles it passes), matching
        orders on the way. Returns candles left, as :meth:`step`."""
        if int(ms) < 0:
            raise ValueError(f"ms must be >= 0, got {ms}")
        with self._lock:
            self._hub.advance(self._book.feed.now + int(ms))
            return self._book.feed.left()

    @property
    def dialect(self) -> str:
        """The venue it speaks: ``"binanceusdm"``, ``"bitget"`` or ``"binance"`` (spot)."""
        return self._dialect.name

    def now_ms(self) -> int:
        """The clock (ms UTC): the forming candle's open plus the time walked inside it."""
        with self._lock:
            return self._book.feed.now

    def price(self, symbol: str) -> float:
        """Current (= mark) price of a config symbol: the path price at the clock."""
        with self._lock:
            return self._book.price(symbol)

    def set_faults(self, plan: FaultPlan | None) -> None:
        with self._lock:
            self._injector = FaultInjector(plan) if plan else None

    def state(self) -> dict[str, Any]:
        """What ``GET /_fakex/state`` returns."""
        with self._lock:
            return {"now": self.now_ms(), "left": self._book.feed.left(),
                    "orders": self.orders(), "trades": self.trades(),
                    "positions": self.positions(), "balance": self.balance(),
                    "equity": self.equity()}

    # ------------------------------------------------------------------ HTTP
    def _partial(self, client_id: str, market_id: str) -> bool:
        if self._injector is None or not self._injector.on_fill(client_id, market_id):
            return False
        self.fault_log.append({"time_ms": self._book.feed.now, "method": "FILL",
                               "path": market_id, "kind": "partial_fill",
                               "client_order_id": client_id})
        return True

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        path, qs = parts.path, parts.query
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length).decode() if length else ""
        h.weight = 0  # type: ignore[attr-defined]
        h.extra = {"wall": time.time()}  # type: ignore[attr-defined]  # arrival
        if path.startswith("/_fakex/"):
            self._control(h, method, path, qs)
            return
        d = self._dialect
        params = d.parse(qs, body)
        h.weight = d.weight(method, path, params)  # type: ignore[attr-defined]
        h.extra.update(d.client_ids(path, params))  # type: ignore[attr-defined]
        with self._lock:
            kind = self._injector.on_request(method, path) if self._injector else None
            if kind:
                cid = h.extra["client_order_id"]  # type: ignore[attr-defined]
                self.fault_log.append({"time_ms": self._book.feed.now, "method": method,
                                       "path": path, "kind": kind, "client_order_id": cid,
                                       **({"client_order_ids": h.extra["client_order_ids"]}
                                          if "client_order_ids" in h.extra else {})})
            hang = self._injector.plan.hang_s if self._injector else 0.0
        if kind in ("drop_before", "timeout_before"):
            if kind == "timeout_before":
                time.sleep(hang)
            return self._drop(h, method, path, kind)
        if kind in ("rate_limit", "server_error", "reject"):
            status, payload, headers = d.fault_reply(kind, self.now_ms())
            return self._send(h, method, path, status, payload, kind, headers)
        status, payload = d.dispatch(self, method, path, qs, body, params, h.headers)
        if kind == "item_unknown" and isinstance(payload, list) and payload:
            payload[0] = {"code": -1007, "msg": _UNKNOWN_MSG}  # done, answer lost
        if kind == "drop_after":
            return self._drop(h, method, path, kind)
        if kind == "timeout_after":
            time.sleep(hang)
        self._send(h, method, path, status, payload, kind)

    def _dispatch(self, method: str, path: str, qs: str, body: str, params: dict[str, str],
                  headers: Any, routes: dict = ROUTES) -> tuple[int, Any]:
        route = routes.get((method, path))
        user_stream = path == LISTEN_KEY_PATH and method in ("POST", "PUT", "DELETE")
        if route is None and not user_stream:
            return 404, {"code": -5000, "msg": f"fakex does not serve {method} {path}"}
        try:
            if user_stream:  # API key only, no signature (as Binance and ccxt do)
                self._check_api_key(headers)
                with self._lock:
                    return 200, self._hub.listen_key_request(method)
            handler, signed = route
            if signed:
                self._authenticate(qs, body, params, headers)
            with self._lock:
                try:
                    return 200, handler(self._book, params)
                finally:
                    self._hub.publish()
        except BinanceError as e:
            return e.http, {"code": e.code, "msg": e.msg}
        except Exception:  # a bug in the fake: say so like Binance's unknown error
            log.exception("fakex: %s %s failed", method, path)
            return 500, {"code": -1000, "msg": "An unknown error occured while processing "
                                               "the request."}

    def _check_api_key(self, headers: Any) -> None:
        key = headers.get("X-MBX-APIKEY")
        if not key:
            raise BinanceError(-2014, "API-key format invalid.", 401)
        if key != self._api_key:
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)

    def _authenticate(self, qs: str, body: str, params: dict[str, str], headers: Any) -> None:
        self._check_api_key(headers)
        sig = None
        payload = []
        for part in (qs, body):
            m = _SIG_RE.search(part)
            if m:
                sig = m.group(2)
                part = part[:m.start()] + part[m.end():]
                if m.group(1) == "" and part.startswith("&"):
                    part = part[1:]
            payload.append(part)
        if not sig:
            raise BinanceError(-1102, "Mandatory parameter 'signature' was not sent, was "
                                      "empty/null, or malformed.")
        if "timestamp" not in params:
            raise BinanceError(-1102, "Mandatory parameter 'timestamp' was not sent, was "
                                      "empty/null, or malformed.")
        want = hmac.new(self._secret, "".join(payload).encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, sig.lower()):
            raise BinanceError(-1022, "Signature for this request is not valid.", 400)

    def _log(self, method: str, path: str, status: int, kind: str | None,
             weight: int = 0, extra: dict | None = None) -> None:
        """One ``request_log`` row: also ``wall`` (arrival, ``time.time()``) and the
        request's ``client_order_id`` (None if it names none; a batch's, in order, in
        ``client_order_ids``)."""
        with self._lock:
            self.request_log.append({"method": method, "path": path, "status": status,
                                     "fault": kind, "weight": weight, **(extra or {})})

    def _drop(self, h: BaseHTTPRequestHandler, method: str, path: str, kind: str) -> None:
        self._log(method, path, 0, kind, getattr(h, "weight", 0), getattr(h, "extra", None))
        h.close_connection = True

    def _send(self, h: BaseHTTPRequestHandler, method: str, path: str, status: int,
              payload: Any, kind: str | None = None, extra: dict[str, str] | None = None
              ) -> None:
        self._log(method, path, status, kind, getattr(h, "weight", 0),
                  getattr(h, "extra", None))
        text = isinstance(payload, str)
        data = (payload if text else json.dumps(payload)).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "text/plain" if text else "application/json")
            h.send_header("Content-Length", str(len(data)))
            for k, v in (extra or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except OSError:  # the client gave up (timeout): nothing to tell it
            h.close_connection = True

    def _control(self, h: BaseHTTPRequestHandler, method: str, path: str, qs: str) -> None:
        q = dict(parse_qsl(qs))
        try:
            if method == "POST" and path == "/_fakex/step":
                left = self.step(int(q.get("n", "1")))
            elif method == "POST" and path == "/_fakex/substep":
                left = self.substep(int(q.get("k", "1")), int(q.get("of", "12")))
            elif method == "POST" and path == "/_fakex/advance":
                left = self.advance_ms(int(q.get("ms", "0")))
            else:
                left = None
        except ValueError as e:
            return self._send(h, method, path, 400, {"code": -1130, "msg": str(e)})
        if left is not None:
            return self._send(h, method, path, 200, {"left": left, "now": self.now_ms()})
        if method == "GET" and path == "/_fakex/state":
            return self._send(h, method, path, 200, self.state())
        self._send(h, method, path, 404, {"code": -5000, "msg": f"no control {method} {path}"})


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # else Nagle + delayed ACK add ~40 ms per response
    protocol_version = "HTTP/1.1"
    server_version = "fakex/1"

    def _go(self, method: str) -> None:
        self.server.fx._handle(self, method)  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        self._go("GET")

    def do_POST(self) -> None:
        self._go("POST")

    def do_DELETE(self) -> None:
        self._go("DELETE")

    def do_PUT(self) -> None:
        self._go("PUT")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("fakex: " + format, *args)
