"""Live closed candles from the exchange's websocket (``ccxt.pro`` ``watch_ohlcv``).

:class:`WsCandlePartition` is a :class:`~gridflow.dataflows.live_sources.
LiveCandlePartition` (same items, same resume state, same warm-up and end rules) whose
closed candles come from the kline stream instead of a ``fetch_ohlcv`` poll:

* A streamed candle with open time ``t`` is closed once a candle with a later open time
  streamed in (the exchange has moved on); its values are the last streamed for ``t``.
* Candles go out when they follow the last emitted one without a hole, while the stream
  has been up since that candle. After a reconnect (the feed's ``generation`` moved), a
  hole, or while the stream is down or silent for more than ``stale_s`` wall seconds,
  the candles closed meanwhile are fetched by REST (the polling partition's own fetch,
  every ``poll_s`` while it lasts), so nothing is lost and nothing is doubled.
* The warm-up is fetched by REST, as in polling mode.

The partition never blocks: the watch runs on the process's
:class:`~gridflow.exchange.streams.StreamHub` thread; :meth:`next_batch` only drains
what arrived and :meth:`next_awake` asks to be called again ``tick_s`` later.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import numpy as np

from gridflow import latency_trace
from gridflow.chunks import CandleChunk
from gridflow.dataflows.live_sources import LiveCandlePartition, _utcnow
from gridflow.exchange import watches

__all__ = ["WsCandlePartition"]

log = logging.getLogger(__name__)

TICK_S = 0.005
"""Wall seconds between two drains of the stream's queue while it is healthy."""


class WsCandlePartition(LiveCandlePartition):
    """Closed candles of one symbol from ``watch_ohlcv``; see the module docstring.

    Parameters
    ----------
    exchange : ccxt.Exchange
        Synchronous exchange for the REST warm-up and catch-up (this partition's own).
    hub : StreamHub
        The process's stream hub (its ``watch``); released by :meth:`close` with
        ``release``.
    stale_s : float
        A stream silent this long (wall seconds) is not trusted; REST polls meanwhile.
    tick_s : float
        Wall seconds between drains while the stream is healthy.
    release : callable, optional
        Called with ``hub`` by :meth:`close`.
    on_stream : callable, optional
        ``(symbol, status, reason)`` when the stream becomes stale (``"stale"``) or is
        trusted again (``"restored"``), for logs and counters.

    Other parameters are :class:`LiveCandlePartition`'s.
    """

    def __init__(self, exchange: Any, symbol: str, market: str, timeframe: str,
                 warmup_candles: int, poll_s: float, hub: Any, stale_s: float,
                 end_ms: int | None = None, resume_state: Any = None,
                 tick_s: float = TICK_S, release: Any = None, on_stream: Any = None) -> None:
        super().__init__(exchange, symbol, market, timeframe, warmup_candles, poll_s,
                         end_ms=end_ms, resume_state=resume_state)
        self.hub, self.stale_s, self.tick_s = hub, float(stale_s), float(tick_s)
        self._release, self._on_stream = release, on_stream
        self.feed = hub.watch(watches.ohlcv(market, timeframe))
        self._rows: dict[int, list] = {}  # open time -> newest streamed row
        self._gen: int | None = None  # feed generation the emitted candles are from
        self._trusted = False
        self.rest_catchups = 0
        """REST fetches made because of a reconnect, a hole or a stale stream."""

    # ------------------------------------------------------------------ Bytewax
    def next_batch(self) -> list[CandleChunk]:
        """The warm-up (REST), newly closed streamed candles, or a REST catch-up;
        ``StopIteration`` after the ``last=True`` chunk (as the polling partition)."""
        if self._done:
            raise StopIteration
        for batch in self.feed.drain():
            for r in batch or []:
                if r and r[0] is not None:
                    self._rows[int(r[0])] = list(r[:6])
        if self._last is None:  # the warm-up, by REST
            out = super().next_batch()
            self._gen = self.feed.generation
            return out
        healthy = self.feed.healthy(self.stale_s)
        if healthy and self._gen == self.feed.generation:
            out = self._from_stream()
            if out is not None:
                for c in out if latency_trace.enabled() else ():
                    if len(c.ts):
                        latency_trace.mark("candle_emit", f"{c.symbol}@{int(c.ts[-1]) + self.tf_ms}")
                self._trust(True)
                self._awake = _utcnow() + timedelta(seconds=self.tick_s)
                return out
        # not trusted: a reconnect, a hole or a stale stream -> REST, then the stream
        if self._awake is not None and _utcnow() < self._awake:
            return []
        self._trust(False, "down" if self.feed.status != "up" else (
            "silent" if not healthy else "reconnected"))
        self.rest_catchups += 1
        gen = self.feed.generation
        out = super().next_batch()  # fetch_time + every candle closed since _last
        if healthy and self._awake is not None:
            self._gen = gen  # caught up after the reconnect: the stream is trusted again
            self._awake = _utcnow() + timedelta(seconds=self.tick_s)
        return out

    def next_awake(self):
        """Next drain (healthy stream) or next REST poll / retry."""
        return self._awake

    def close(self) -> None:
        """Release the stream hub and close the REST session."""
        if self._release is not None:
            self._release(self.hub)
            self._release = None
        super().close()

    # ------------------------------------------------------------------ internals
    def _from_stream(self) -> list[CandleChunk] | None:
        """Closed candles after ``_last`` from the stream: [] when none closed yet, None
        when the stream has a hole (REST must fill it)."""
        assert self._last is not None
        if not self._rows:
            return []
        newest = max(self._rows)
        closed = sorted(t for t in self._rows if self._last < t < newest)
        upto = self._upto(newest - self.tf_ms)
        closed = [t for t in closed if t <= upto]
        for t in [t for t in self._rows if t <= self._last]:
            del self._rows[t]  # old ones: never needed again
        if not closed:
            return self._end_only(newest)
        expect = self._last + self.tf_ms
        if closed[0] != expect or any(b - a != self.tf_ms for a, b in zip(closed, closed[1:])):
            return None
        rows = np.array([self._rows[t] for t in closed], dtype=np.float64).reshape(-1, 6)
        self._last = closed[-1]
        for t in closed:
            del self._rows[t]
        ended = self._ended(newest - self.tf_ms)
        self._done = ended
        return [self._chunk(rows, last=ended, warmup=False)]

    def _end_only(self, newest: int) -> list[CandleChunk]:
        """The empty ``last=True`` chunk once every candle before ``end_ms`` closed."""
        if self._ended(newest - self.tf_ms) and self._last >= self._upto(newest - self.tf_ms):
            self._done = True
            return [self._chunk(np.empty((0, 6)), last=True, warmup=False)]
        return []

    def _trust(self, trusted: bool, reason: str = "") -> None:
        if trusted == self._trusted:
            return
        self._trusted = trusted
        if not trusted:
            log.warning("candle stream %s not trusted (%s): REST catch-up", self.symbol, reason)
        if self._on_stream is not None:
            self._on_stream(self.symbol, "restored" if trusted else "stale", reason)
