"""Exchange websocket streams (ccxt.pro) on a private event-loop thread.

A :class:`StreamHub` owns one ccxt.pro exchange and one asyncio event loop running in a
daemon thread; Bytewax source partitions (synchronous, one worker thread each) never
await anything: they :meth:`StreamHub.watch` a named ccxt ``watch_*`` call
(:mod:`gridflow.exchange.watches`) once and then read what it returned from a
:class:`StreamFeed` without blocking. Every partition of a process that streams from the
same exchange config shares one hub (:func:`~gridflow.exchange.hubs.hub_for`), so 20 symbols are 20
subscriptions on ccxt's shared connections, not 20 clients.

:func:`~gridflow.exchange.hubs.hub_for` gives, by ``live.streams.hub``, this hub in the flow's process
(``"thread"``) or a :class:`~gridflow.exchange.stream_process.StreamProcess`
(``"process"``, the default): the same hub run in a child process, so parsing the
streams (JSON, ccxt's unified structures, its caches) does not hold the flow's GIL;
the flow gets parsed items over a pipe into the same :class:`StreamFeed` objects.

Reconnects: a watch that raises (connection dropped, listen key expired, exchange error)
marks its feed ``down``, waits ``min(reconnect_max_s, 0.1 s * 2**(k-1))`` for the
``k``-th failure in a row and calls the watch again (ccxt reconnects and resubscribes).
The feed is ``up`` again once a message arrives or once every ccxt client connection
is open with the watch pending; each down -> up bumps :attr:`StreamFeed.generation`, so
a consumer knows it must catch up by REST before it trusts the stream again. Errors are
kept as ``"ClassName: redacted message"`` (never the exchange object, never keys).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from gridflow import latency_trace
from gridflow.config.live import ExchangeConfig
from gridflow.exchange import watches
from gridflow.exchange.client import make_pro_exchange
from gridflow.exchange.retry import error_text

__all__ = ["StreamFeed", "StreamHub", "backoff", "ohlcv_key", "stream_error"]

log = logging.getLogger(__name__)

_FIRST_DELAY_S = 0.1
_CONNECT_CHECK_S = 0.05


def stream_error(exc: BaseException, secrets: list[str]) -> str:
    """``"ClassName: message"`` with ``secrets`` masked (:func:`~gridflow.exchange.retry.
    error_text`), at most 300 characters: how every stream error is kept and logged."""
    text = error_text(exc, secrets)
    return text if len(text) <= 300 else text[:297] + "..."


def backoff(k: int, cap_s: float) -> float:
    """Seconds to wait after the ``k``-th failure in a row (k >= 1):
    ``min(cap_s, 0.1 * 2**(k-1))``, for any ``k`` (hours of failures included)."""
    return min(float(cap_s), _FIRST_DELAY_S * 2.0 ** min(max(k, 1) - 1, 30))


class StreamFeed:
    """What one repeated ``watch_*`` call returned, read from any thread.

    Attributes
    ----------
    key : str
        The watch's name (``"ohlcv:BTC/USDT:USDT:1h"``, ``"my_trades"`` ...).
    status : str
        ``"connecting"`` (never up yet), ``"up"`` or ``"down"``.
    generation : int
        Bumped at every down -> up: a consumer that saw another generation must catch
        up by REST (messages may have been lost while down).
    last_msg : float
        ``time.monotonic()`` of the last message (0.0: none yet).
    up_since : float
        ``time.monotonic()`` when the feed last became ``up``.
    errors : int
        Failed watches so far.
    last_error : str
        ``"ClassName: redacted message"`` of the last failure ("" if none).
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self.status = "connecting"
        self.generation = 0
        self.last_msg = 0.0
        self.up_since = 0.0
        self.errors = 0
        self.last_error = ""
        self._items: deque = deque()
        self._lock = threading.Lock()
        self._pending = False  # a watch is waiting for a message

    def drain(self) -> list:
        """Everything received since the previous drain, oldest first."""
        with self._lock:
            out = list(self._items)
            self._items.clear()
        return out

    def healthy(self, stale_s: float | None = None) -> bool:
        """``up``, and (with ``stale_s``) a message within the last ``stale_s`` wall
        seconds."""
        if self.status != "up":
            return False
        heard = max(self.last_msg, self.up_since)  # silence counts from the subscription
        return stale_s is None or time.monotonic() - heard <= stale_s

    # -- called on the hub's loop -------------------------------------------------
    def _push(self, item: Any) -> None:
        if latency_trace.enabled() and self.key == "my_trades":
            for t in item or []:
                latency_trace.mark("fill_recv", f"{t.get('symbol')}@{t.get('timestamp')}")
        with self._lock:
            self._items.append(item)
            self._heard()

    def _heard(self) -> None:
        """A message came (call under ``_lock``)."""
        self._pending = False
        self.last_msg = time.monotonic()
        self._up()

    def _up(self) -> None:
        if self.status != "up":
            self.up_since = time.monotonic()
            if self.status == "down":
                self.generation += 1
            self.status = "up"

    def _down(self, error: str) -> None:
        with self._lock:
            self._pending = False
            self.status = "down"
            self.errors += 1
            self.last_error = error


class StreamHub:
    """One ccxt.pro exchange on its own event-loop thread; see the module docstring.

    Parameters
    ----------
    cfg : ExchangeConfig
        Keys and URL overrides (``ws_urls``) of the exchange.
    reconnect_max_s : float
        Cap of the reconnect backoff, seconds.
    factory : callable
        ``ExchangeConfig -> ccxt.pro exchange``, called on the hub's loop.
    new_feed : callable
        ``key -> StreamFeed`` of a new watch (the stream process relays its feeds).
    """

    def __init__(self, cfg: ExchangeConfig, reconnect_max_s: float = 5.0,
                 factory: Callable[[ExchangeConfig], Any] = make_pro_exchange,
                 new_feed: Callable[[str], StreamFeed] = StreamFeed) -> None:
        self.cfg = cfg
        self.reconnect_max_s = float(reconnect_max_s)
        self._new_feed = new_feed
        self._secrets = cfg.credentials()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="gridflow-ws",
                                        daemon=True)
        self._thread.start()
        self.ex = self._call(self._make(factory))
        self._feeds: dict[str, StreamFeed] = {}
        self._tasks: dict[str, asyncio.Future] = {}
        self._lock = threading.Lock()
        self.refs = 0
        self._closed = False
        self._tasks["monitor"] = asyncio.run_coroutine_threadsafe(self._monitor(), self._loop)

    async def _make(self, factory: Callable[[ExchangeConfig], Any]) -> Any:
        return factory(self.cfg)

    def _call(self, coro: Awaitable[Any], timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def reset_private(self, timeout: float = 30.0) -> None:
        """Close the user data stream's connections (blocking): its watches fail and
        reconnect with a fresh subscription (:func:`~gridflow.exchange.watches.
        reset_private`)."""
        self._call(watches.reset_private(self.ex), timeout)

    def feed(self, key: str) -> StreamFeed | None:
        """The feed of ``key`` if some partition of this process watches it (started by
        :meth:`watch`), else None; looking does not start it or drain it."""
        with self._lock:
            return self._feeds.get(key)

    def watch(self, spec: tuple) -> StreamFeed:
        """The feed of the watch ``spec`` (:mod:`~gridflow.exchange.watches`) repeated
        forever, named :func:`~gridflow.exchange.watches.spec_key` (started on the first
        call; later calls with the same spec share it).

        Raises
        ------
        ValueError
            Not a known spec.
        """
        key, fn = watches.spec_key(spec), watches.watch_fn(spec)
        with self._lock:
            feed = self._feeds.get(key)
            if feed is None:
                feed = self._feeds[key] = self._new_feed(key)
                self._tasks[key] = asyncio.run_coroutine_threadsafe(
                    self._repeat(feed, fn), self._loop)
            return feed

    def describe(self, exc: BaseException) -> str:
        """``"ClassName: message"`` with the keys masked (:func:`~gridflow.exchange.retry.
        error_text`), at most 300 characters (:func:`stream_error`)."""
        return stream_error(exc, self._secrets)

    async def _repeat(self, feed: StreamFeed, fn: watches.WatchFn) -> None:
        """Call ``fn`` again as soon as it returned: no other callback runs in between, so
        ccxt registers the next wait before it handles another message (a message it
        handles with nobody waiting is only returned with the next one)."""
        failures = 0
        while True:
            feed._pending = True
            try:
                got = await fn(self.ex)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if self._closed or (task is not None and task.cancelling()):
                    raise  # the hub is closing
                failures = await self._failed(  # ccxt closed the client under the watch
                    feed, ConnectionError("the watch was cancelled (client closed)"), failures)
                continue
            except Exception as e:  # noqa: BLE001 - every ccxt / transport error
                failures = await self._failed(feed, e, failures)
                continue
            failures = 0
            feed._push(got)

    async def _failed(self, feed: StreamFeed, e: BaseException, failures: int) -> int:
        """Mark ``feed`` down and wait out the backoff; the new failure count."""
        feed._pending = False
        failures += 1
        msg = self.describe(e)
        feed._down(msg)
        wait = backoff(failures, self.reconnect_max_s)
        log.warning("stream %s: %s (failure %d in a row, again in %.2f s)", feed.key, msg,
                    failures, wait)
        await asyncio.sleep(wait)
        return failures

    async def _monitor(self) -> None:
        """A feed whose watch is pending while every connection is open is ``up``
        (subscribed, nothing to say yet)."""
        while True:
            await asyncio.sleep(_CONNECT_CHECK_S)
            waiting = [f for f in list(self._feeds.values())
                       if f.status != "up" and f._pending]
            if waiting and self._connected():
                for f in waiting:
                    with f._lock:
                        if f._pending:
                            f._up()

    def _connected(self) -> bool:
        """Every websocket client ccxt opened is connected (none closed or opening)."""
        clients = [c for c in getattr(self.ex, "clients", {}).values()
                   if getattr(c, "url", "").startswith("ws")]
        if not clients:
            return False
        for c in clients:
            try:
                if c.closed() or not c.connected.done():
                    return False
            except Exception:  # noqa: BLE001 - a client mid-reset counts as not connected
                return False
        return True

    def close(self) -> None:
        """Cancel every watch, close the exchange's connections, stop the loop."""
        if self._closed:
            return
        self._closed = True
        for t in self._tasks.values():
            t.cancel()

        async def shut() -> None:
            try:
                await self.ex.close()
            except Exception as e:  # noqa: BLE001 - best effort at shutdown
                log.debug("closing the stream exchange: %s", type(e).__name__)
        try:
            self._call(shut(), timeout=10.0)
        except Exception as e:  # noqa: BLE001
            log.debug("closing the stream hub: %s", type(e).__name__)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5.0)


def ohlcv_key(market: str, timeframe: str) -> str:
    """The hub key of the kline stream of ``market`` (ccxt symbol) at ``timeframe``."""
    return watches.spec_key(watches.ohlcv(market, timeframe))
