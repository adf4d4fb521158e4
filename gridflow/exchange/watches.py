"""The ``watch_*`` calls the live flow streams, as named, picklable specs.

A spec is a plain tuple ``(kind, *args)``; :func:`watch_fn` turns it into the
``async (ccxt.pro exchange) -> result`` call a :class:`~gridflow.exchange.streams.
StreamHub` repeats. Being data, a spec can cross a process boundary: the stream process
(:mod:`gridflow.exchange.stream_process`) receives specs over its pipe and builds the
same calls in the child, so both hub kinds run one definition of every watch.

Kinds:

* ``("ohlcv", market, timeframe)``: ``watch_ohlcv`` of one ccxt market (a list of
  ``[ts_ms, open, high, low, close, volume]`` rows);
* ``("my_trades",)`` / ``("orders",)``: the user data stream's fills and order updates
  (ccxt unified trade / order dicts);
* ``("marks", markets)`` / ``("tickers", markets)``: mark prices (swap) or tickers
  (spot) of several markets: a dict market -> ticker holding every market's newest
  cached ticker (see :func:`latest`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import ccxt

__all__ = ["MY_TRADES", "ORDERS", "WatchFn", "latest", "marks", "ohlcv", "private",
           "reset_private", "spec_key", "watch_fn"]

log = logging.getLogger(__name__)

WatchFn = Callable[[Any], Awaitable[Any]]
"""``async (ccxt.pro exchange) -> result`` of one ``watch_*`` call."""

MY_TRADES = ("my_trades",)
ORDERS = ("orders",)


def ohlcv(market: str, timeframe: str) -> tuple:
    """The kline stream of ``market`` (ccxt symbol, ``"BTC/USDT:USDT"``) at ``timeframe``."""
    return ("ohlcv", str(market), str(timeframe))


def marks(markets: list[str], market_type: str) -> tuple:
    """Mark prices of ``markets`` (``market_type`` ``"swap"``) or their tickers (spot)."""
    return ("marks" if market_type == "swap" else "tickers", tuple(markets))


def spec_key(spec: tuple) -> str:
    """The feed name of ``spec``: ``"ohlcv:BTC/USDT:USDT:1h"``, ``"my_trades"``,
    ``"marks:BTC/USDT:USDT,ETH/USDT:USDT"`` ...

    Raises
    ------
    ValueError
        Not a known spec.
    """
    kind = spec[0] if isinstance(spec, tuple) and spec else None
    if kind == "ohlcv" and len(spec) == 3:
        return f"ohlcv:{spec[1]}:{spec[2]}"
    if kind in ("my_trades", "orders") and len(spec) == 1:
        return kind
    if kind in ("marks", "tickers") and len(spec) == 2:
        return f"{kind}:" + ",".join(spec[1])
    raise ValueError(f"not a watch spec: {spec!r}")


def watch_fn(spec: tuple) -> WatchFn:
    """The ccxt.pro call of ``spec`` (see the module docstring).

    Raises
    ------
    ValueError
        Not a known spec.
    """
    spec_key(spec)  # validates
    kind = spec[0]
    if kind == "ohlcv":
        market, timeframe = spec[1], spec[2]
        return lambda ex: ex.watch_ohlcv(market, timeframe)
    if kind == "my_trades":
        return private(lambda ex: ex.watch_my_trades())
    if kind == "orders":
        return private(lambda ex: ex.watch_orders())
    markets = list(spec[1])
    if kind == "marks":
        return latest(lambda ex: ex.watch_mark_prices(markets), markets)
    return latest(lambda ex: ex.watch_tickers(markets), markets)


def latest(watch: WatchFn, markets: list[str]) -> WatchFn:
    """``watch`` of several symbols' tickers (mark prices), returning the newest ticker
    of every one of ``markets`` that ccxt has cached, not only those of the message
    that resolved the watch: ccxt.pro resolves a multi-symbol ticker watch with the
    first message's symbols, and the messages of the other symbols that arrive before
    the watch is armed again reach only its cache (5 marks published at once: 1 seen)."""
    async def run(ex: Any) -> Any:
        got = await watch(ex)
        cached = getattr(ex, "tickers", None) or {}
        return {**(got or {}), **{m: cached[m] for m in markets if m in cached}}
    return run


def private(watch: WatchFn) -> WatchFn:
    """``watch`` of the user data stream; when it fails, ccxt's cached listen key is
    forgotten so the reconnect asks for a fresh one (ccxt ignores Binance's
    ``listenKeyExpired`` event: the stream just closes, and the old key is refused)."""
    async def run(ex: Any) -> Any:
        try:
            return await watch(ex)
        except Exception:
            for opts in list(getattr(ex, "options", {}).values()):
                if isinstance(opts, dict) and "lastAuthenticatedTime" in opts:
                    opts["lastAuthenticatedTime"] = 0
            raise
    return run


async def reset_private(ex: Any) -> None:
    """Close the exchange's private (user data) websocket connections: the watches
    fail, reconnect with a fresh subscription and the feeds' generations move on."""
    for url, client in list(getattr(ex, "clients", {}).items()):
        if "listenKey" in url or "/private/" in url:
            try:  # as a transport error: the watches fail with it and reconnect
                client.on_error(ccxt.NetworkError("stream reset by gridflow: stale"))
            except Exception as e:  # noqa: BLE001 - already closing
                log.debug("closing %s: %s", type(client).__name__, type(e).__name__)
