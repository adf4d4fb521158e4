"""Binance USDⓈ-M websocket streams of the fake exchange (aiohttp server).

:class:`WsHub` runs an aiohttp web server in a daemon thread with its own event loop.
URLs (``/<n>`` is any stream number, as ccxt numbers its connections):

* market streams: ``/market/ws[/<n>]``, ``/public/ws[/<n>]``, ``/ws`` (subscribe by
  JSON request) and ``/ws/<stream>`` (subscribed by URL);
* user data: ``/private/ws?listenKey=K`` and ``/ws/K``. An unknown key is refused at
  the handshake (HTTP 400, ``-1125``).

Requests ``{"method": "SUBSCRIBE" | "UNSUBSCRIBE", "params": [...], "id": N}`` are
answered ``{"result": null, "id": N}``, ``LIST_SUBSCRIPTIONS`` with the list; bad ones
with ``{"error": {"code": 2 | 3, "msg": ...}, "id": N}`` (counted in ``stats``).
Streams: ``<sym>@kline_<tf>`` (``tf`` = the exchange's timeframe), ``<sym>@markPrice``,
``<sym>@markPrice@1s``, ``!markPrice@arr``, ``!markPrice@arr@1s`` (bodies:
:mod:`gridflow.fakex.ws_events`), and the active listen key: a market connection that
subscribes it also gets the user-data events, in one order with the market ones.

Publishing: the exchange calls :meth:`WsHub.publish` at the end of every operation it
runs under its lock (a REST request, a clock move; clock moves are cut at every candle
close, :meth:`WsHub.advance`). It puts one batch -- the user events of the operation in
exchange-time order, then the market events of the clock move -- on one queue without
waiting. A single dispatcher task on the server's loop sends the batches in order,
message by message, awaiting each send, so every connection sees messages in publish
order and a batch's fills are written to the user connections before its kline close
and mark price are written to the market ones. ``E`` is exchange time, never wall time.

Listen key: one per account (API key). ``POST /fapi/v1/listenKey`` returns the active
key or makes a new one; ``PUT`` keeps it alive (``-1125`` when there is none);
``DELETE`` ends it and closes its connections. It never expires by time; only
:meth:`gridflow.fakex.ws_api.WsApi.expire_listen_key` (Binance's ``listenKeyExpired`` event, then the stream
closes) or ``DELETE`` end it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from gridflow.fakex.book import Book
from gridflow.fakex.clock import advance_to
from gridflow.fakex.faults import FaultInjector
from gridflow.fakex.markets import BinanceError
from gridflow.fakex.ws_events import USER, Journal, Msg, known_streams, market_events

__all__ = ["LISTEN_KEY_PATH", "WsHub"]

log = logging.getLogger(__name__)
LISTEN_KEY_PATH = "/fapi/v1/listenKey"
_SEND_TIMEOUT_S = 5.0  # a client that does not read for this long is disconnected
_CONTROL_TIMEOUT_S = 5.0


@dataclass(eq=False)
class _Conn:
    ws: web.WebSocketResponse
    request: web.Request
    kind: str  # "market" or "user"
    path: str
    subs: set[str] = field(default_factory=set)
    key: str | None = None
    held: tuple[int, str] | None = None  # (time, text) of a message a reorder holds

    def wants(self, m: Msg, listen_key: str | None) -> bool:
        if USER in m.streams:  # user connections live only as long as their key
            return self.kind == "user" or (listen_key is not None and listen_key in self.subs)
        return any(s in self.subs for s in m.streams)


def _text(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"))


class WsHub:
    """Websocket server, listen key and publisher of one fake exchange.

    Parameters
    ----------
    book : Book
        The exchange's book (a :class:`~gridflow.fakex.ws_events.Journal` watches it).
    lock : threading.RLock
        The exchange's lock (held by the callers of :meth:`publish`, :meth:`advance`,
        :meth:`listen_key_request`; taken by the fault methods).
    fault_log : list
        The exchange's fault log (websocket faults are appended to it).
    injector : callable
        Returns the exchange's current :class:`FaultInjector` or None.
    api_key : str
        Seeds the listen keys (deterministic per exchange).
    """

    def __init__(self, book: Book, lock: threading.RLock, fault_log: list[dict[str, Any]],
                 injector: Callable[[], FaultInjector | None], api_key: str) -> None:
        self.book = book
        self._lock = lock
        self._fault_log = fault_log
        self._injector = injector
        self._journal = Journal(book)
        self._known = known_streams(book)
        self._prev = (book.feed.open_ms, book.feed.now)
        self._seed = api_key
        self._keys_made = 0
        self.listen_key: str | None = None
        self._conns: list[_Conn] = []
        self._wanted: frozenset[str] = frozenset()
        self._silenced: set[str] = set()
        self._stats: Counter = Counter()
        self._stats_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.url: str | None = None

    # ------------------------------------------------ under the exchange lock
    def publish(self) -> None:
        """Queue the user events since the last call and the market events of the
        clock move since then (call under the exchange lock, after each operation)."""
        feed = self.book.feed
        msgs = self._journal.drain()
        msgs += market_events(self.book, *self._prev, self._wanted)
        self._prev = (feed.open_ms, feed.now)
        if msgs:
            self._put(("batch", msgs))

    def advance(self, target: int) -> None:
        """Move the clock to ``target`` ms (as :func:`~gridflow.fakex.clock.advance_to`),
        publishing at every candle close on the way and at the target."""
        feed = self.book.feed
        while feed.left() > 0 and feed.now < int(target):
            advance_to(self.book, min(int(target), feed.open_ms + feed.tf_ms))
            self.publish()

    def listen_key_request(self, method: str) -> dict[str, Any]:
        """``POST`` / ``PUT`` / ``DELETE /fapi/v1/listenKey`` (the API key is checked by
        the caller).

        Raises
        ------
        BinanceError
            -1125 for ``PUT`` or ``DELETE`` without an active key.
        """
        if method == "POST":
            if self.listen_key is None:
                self._keys_made += 1
                seed = f"{self._seed}:{self._keys_made}".encode()
                self.listen_key = hashlib.sha256(seed).hexdigest()
            return {"listenKey": self.listen_key}
        if self.listen_key is None:
            raise BinanceError(-1125, "This listenKey does not exist.")
        if method == "PUT":
            return {"listenKey": self.listen_key}
        key, self.listen_key = self.listen_key, None
        self._put(("close_key", key, None, None))
        return {}

    def _put(self, item: tuple) -> None:
        loop = self._loop
        if loop is None:  # not serving: nobody to tell
            fut = item[-1]
            if isinstance(fut, concurrent.futures.Future):
                fut.set_result(0)
            return
        loop.call_soon_threadsafe(self._queue.put_nowait, item)

    # ------------------------------------------------------------- faults
    def command(self, item: tuple, kind: str, path: str, **extra: Any) -> int:
        """Queue a control ``item`` behind everything published so far, log the fault
        and wait for the dispatcher to carry it out; returns the connections touched."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            self._fault_log.append({"time_ms": self.book.feed.now, "method": "WS",
                                    "path": path, "kind": kind, "client_order_id": None,
                                    **extra})
            self._put((*item, fut))
        return fut.result(timeout=_CONTROL_TIMEOUT_S)

    def _count(self, name: str) -> None:
        with self._stats_lock:
            self._stats[name] += 1

    def stats(self) -> dict[str, int]:
        """Counters (see :meth:`gridflow.fakex.ws_api.WsApi.ws_stats`)."""
        with self._stats_lock:
            return dict(self._stats)

    def streams(self) -> list[str]:
        """Market streams some connection is subscribed to, sorted."""
        return sorted(self._wanted)

    def connections(self) -> dict[str, int]:
        """Open connections: ``{"market": n, "user": m}``."""
        conns = list(self._conns)
        return {k: sum(c.kind == k for c in conns) for k in ("market", "user")}

    def _fault(self, c: _Conn, kind: str, time_ms: int) -> None:
        self._fault_log.append({"time_ms": time_ms, "method": "WS", "path": c.path,
                                "kind": kind, "client_order_id": None})

    # ---------------------------------------------------------- lifecycle
    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in a daemon thread; returns ``"ws://HOST:PORT"``."""
        if self._thread is not None:
            raise RuntimeError("websocket server already started")
        ready: concurrent.futures.Future = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, args=(host, port, ready),
                                        name="fakex-ws", daemon=True)
        self._thread.start()
        self.url = ready.result(timeout=_CONTROL_TIMEOUT_S)
        return self.url

    def _run(self, host: str, port: int, ready: concurrent.futures.Future) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            self._queue = asyncio.Queue()
            app = web.Application()
            app.router.add_get("/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, host, port)
            loop.run_until_complete(site.start())
            bound = self._runner.addresses[0][1]
            dispatcher = loop.create_task(self._dispatch())
            self._loop = loop
            ready.set_result(f"ws://{host}:{bound}")
        except Exception as e:  # noqa: BLE001 - start() raises it in the caller
            ready.set_exception(e)
            loop.close()
            return
        loop.run_forever()
        dispatcher.cancel()
        loop.run_until_complete(asyncio.gather(dispatcher, return_exceptions=True))
        loop.close()

    def stop(self) -> None:
        """Close every connection, stop serving (idempotent)."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(
                timeout=_CONTROL_TIMEOUT_S)
        except (TimeoutError, OSError, RuntimeError):  # a stuck client must not block stop()
            log.warning("fakex ws: shutdown did not finish cleanly", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=_CONTROL_TIMEOUT_S)

    async def _shutdown(self) -> None:
        for c in list(self._conns):
            await self._close(c, 1001)
        await self._runner.cleanup()

    # ---------------------------------------------------------- connections
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        kind, key, subs = self._classify(request)
        if kind is None:
            self._count("handshake_refused")
            return web.json_response({"code": -1125, "msg": "This listenKey does not exist."}
                                     if key else {"code": -1121, "msg": "Invalid stream."},
                                     status=400)
        ws = web.WebSocketResponse(autoping=True, timeout=1.0)
        await ws.prepare(request)
        conn = _Conn(ws, request, kind, request.path, set(subs), key)
        self._conns.append(conn)
        self._count(f"{kind}_connections")
        self._update_wanted()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_request(conn, msg.data)
        finally:
            if conn in self._conns:
                self._conns.remove(conn)
                self._update_wanted()
        return ws

    def _classify(self, request: web.Request) -> tuple[str | None, str | None, list[str]]:
        """``(kind, listen key, streams)``; kind None: refuse (bad key or stream)."""
        parts = [p for p in urlsplit(str(request.rel_url)).path.split("/") if p]
        if parts[:2] == ["private", "ws"]:
            key = request.query.get("listenKey", "")
            return ("user" if key and key == self.listen_key else None), key or "?", []
        if parts in (["ws"], ["market", "ws"], ["public", "ws"]) or (
                len(parts) == 3 and parts[0] in ("market", "public") and parts[1] == "ws"):
            return "market", None, []
        if len(parts) == 2 and parts[0] == "ws":
            if parts[1] == self.listen_key:
                return "user", parts[1], []
            if parts[1] in self._known:
                return "market", None, [parts[1]]
            return None, (parts[1] if "@" not in parts[1] else None), []
        return None, None, []

    def _update_wanted(self) -> None:
        self._wanted = frozenset(s for c in self._conns if c.kind == "market"
                                 for s in c.subs if s in self._known)

    def _on_request(self, conn: _Conn, text: str) -> None:
        try:
            req = json.loads(text)
        except ValueError as e:
            return self._reply(conn, {"error": {"code": 3, "msg": f"Invalid JSON: {e}"},
                                      "id": None})
        rid = req.get("id") if isinstance(req, dict) else None
        method = req.get("method") if isinstance(req, dict) else None
        params = req.get("params", []) if isinstance(req, dict) else None
        if method == "LIST_SUBSCRIPTIONS":
            return self._reply(conn, {"result": sorted(conn.subs), "id": rid})
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE"):
            return self._error(conn, rid, f"unknown variant `{method}`, expected one of "
                                          "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`")
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            return self._error(conn, rid, "params must be a list of stream names")
        if conn.kind != "market":
            return self._error(conn, rid, "a user-data connection takes no subscriptions")
        bad = [p for p in params if p not in self._known and p != self.listen_key]
        if bad:
            return self._error(conn, rid, f"invalid stream {bad[0]}")
        if method == "SUBSCRIBE":
            conn.subs.update(params)
        else:
            conn.subs.difference_update(params)
        self._update_wanted()
        self._reply(conn, {"result": None, "id": rid})

    def _error(self, conn: _Conn, rid: Any, msg: str) -> None:
        self._count("bad_request")
        self._reply(conn, {"error": {"code": 2, "msg": f"Invalid request: {msg}"}, "id": rid})

    def _reply(self, conn: _Conn, body: dict[str, Any]) -> None:
        self._queue.put_nowait(("reply", conn, _text(body)))

    # ----------------------------------------------------------- dispatcher
    async def _dispatch(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._carry_out(item)
            except Exception as e:  # a bug here must not stop the streams
                log.exception("fakex ws: dispatch of %s failed", item[0])
                fut = item[-1]
                if isinstance(fut, concurrent.futures.Future) and not fut.done():
                    fut.set_exception(e)

    async def _carry_out(self, item: tuple) -> None:
        what = item[0]
        if what == "batch":
            await self._send_batch(item[1])
        elif what == "reply":
            conn = item[1]
            if conn.kind not in self._silenced:
                await self._send(conn, item[2])
        elif what == "drop":
            hit = self._matching(item[1])
            for c in hit:
                self._abort(c)
            item[-1].set_result(len(hit))
        elif what == "silence":
            kinds = ("user", "market") if item[1] == "all" else (item[1],)
            (self._silenced.update if item[2] else self._silenced.difference_update)(kinds)
            item[-1].set_result(len(self._matching(item[1])))
        elif what == "close_key":
            _, key, event, fut = item
            hit = [c for c in self._conns if c.key == key or key in c.subs]
            for c in hit:
                if event is not None and c.kind not in self._silenced:
                    await self._send(c, _text(event))
                if c.kind == "user":
                    await self._close(c, 1000)
                else:  # a market connection that subscribed the key: unsubscribe it
                    c.subs.discard(key)
            if fut is not None:
                fut.set_result(len(hit))

    def _matching(self, stream: str) -> list[_Conn]:
        return [c for c in self._conns if stream in ("all", c.kind)]

    async def _send_batch(self, msgs: list[Msg]) -> None:
        conns, key = list(self._conns), self.listen_key
        for m in msgs:
            text = None
            for c in conns:
                if c.ws.closed or not c.wants(m, key):
                    continue
                if c.kind in self._silenced:
                    self._count("withheld")
                    continue
                text = text or _text(m.body)
                await self._send_faulted(c, m, text)
        for c in conns:
            if c.held is not None:  # nothing followed it in this batch: send it in place
                held, c.held = c.held, None
                await self._send(c, held[1])

    async def _send_faulted(self, c: _Conn, m: Msg, text: str) -> None:
        """Send with the websocket faults: a duplicate follows its message at once; a
        reordered message is held and sent right after the next one (which is then
        not reordered itself)."""
        inj = self._injector()
        draw = inj.on_ws_send() if inj is not None else None
        if draw == "ws_reorder" and c.held is None:
            c.held = (m.time, text)
            return
        await self._send(c, text)
        if draw == "ws_duplicate":
            await self._send(c, text)
            self._fault(c, "ws_duplicate", m.time)
        if c.held is not None:
            held, c.held = c.held, None
            await self._send(c, held[1])
            self._fault(c, "ws_reorder", held[0])

    async def _send(self, c: _Conn, text: str) -> None:
        if c.ws.closed:
            return
        try:
            await asyncio.wait_for(c.ws.send_str(text), _SEND_TIMEOUT_S)
            self._count("sent")
        except (OSError, RuntimeError):  # the client is gone or stuck (timeout): drop it
            self._count("send_failed")
            self._abort(c)

    def _abort(self, c: _Conn) -> None:
        """Cut the connection without a close frame (a network drop)."""
        transport = c.request.transport
        if transport is not None:
            transport.abort()
        if c in self._conns:
            self._conns.remove(c)
            self._update_wanted()

    async def _close(self, c: _Conn, code: int) -> None:
        try:
            await asyncio.wait_for(c.ws.close(code=code), 1.0)
        except (OSError, RuntimeError):
            self._abort(c)
        if c in self._conns:
            self._conns.remove(c)
            self._update_wanted()
