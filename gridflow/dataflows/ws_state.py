"""Live account state from the exchange's websocket streams, reconciled by REST.

:class:`WsStatePartition` is an :class:`~gridflow.dataflows.live_state.
ExchangeStatePartition` (same items, same resume state, same trade deduplication)
that takes fills, order updates and mark prices from ``ccxt.pro`` streams
(``watch_my_trades``, ``watch_orders``, ``watch_mark_prices``) and runs its REST cycle
(trades since the cursor, open orders, positions, balance, funding) only:

* every ``reconcile_s`` while the user stream is trusted (the periodic reconciliation
  a venue's weight budget allows; mark prices and funding are left out of it while the
  mark stream is healthy and no funding time passed);
* every ``poll_s`` while it is not: at the start, after a reconnect (the REST cycle is
  the catch-up: missed fills by trade id, open orders, positions), while a stream is
  down, and once a fill the REST cycle found has not come on the stream ``fill_lag_s``
  wall seconds later (the stream is then reset and must deliver again to be trusted).

Each change of trust is one ``streams`` entry of the update (journaled by the engine as
``stream_stale`` / ``stream_restored``, alerted). Duplicated or out-of-order stream
messages are harmless: fills are deduplicated by trade id (here and in the engine), the
watermark only moves forward.

Watermark (``server_ms``): the newest exchange time seen on the account's streams (fill,
order update, mark price) or the REST cycle's ``fetch_time``. The exchange publishes an
account's fills before later market events, so a fill older than the watermark has been
received; a fill that arrives later anyway is applied when it comes (the engine handles
late fills) and the next REST cycle finds any that never came.
"""

from __future__ import annotations

import logging
import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import ccxt

from gridflow import latency_trace
from gridflow.chunks import ExchangeUpdate
from gridflow.dataflows.exchange_records import as_float
from gridflow.dataflows.live_sources import _utcnow
from gridflow.dataflows.live_state import ExchangeStatePartition
from gridflow.events import ExecutionReport
from gridflow.exchange import watches
from gridflow.exchange.client import config_symbol

__all__ = ["WsStatePartition"]

log = logging.getLogger(__name__)

TICK_S = 0.005
"""Wall seconds between two drains of the streams."""
FUNDING_EVERY_MS = 8 * 3_600_000
"""Funding settles on this grid (Binance USDⓈ-M: 00:00, 08:00, 16:00 UTC)."""


class FeedHealth:
    """Changes of one stream's health: up and heard from within ``stale_s`` wall seconds
    (:meth:`~gridflow.exchange.streams.StreamFeed.healthy`). At the start a stream is
    stale only once ``stale_s`` passed without it coming up.

    Attributes
    ----------
    ok : bool or None
        The health last reported; None before the first verdict.
    """

    def __init__(self, stale_s: float) -> None:
        self.stale_s = float(stale_s)
        self.ok: bool | None = None
        self._born = time.monotonic()

    def change(self, feed: Any) -> bool | None:
        """The new health of ``feed`` when it changed since the last call (False =
        stale, True = healthy again); None when nothing changed."""
        ok = feed.healthy(self.stale_s)
        if self.ok is None:
            if not ok and time.monotonic() - self._born <= self.stale_s:
                return None
            self.ok = ok
            return None if ok else False
        if ok == self.ok:
            return None
        self.ok = ok
        return ok


class WsStatePartition(ExchangeStatePartition):
    """One account's fills, orders and marks from websockets; see the module docstring.

    Parameters
    ----------
    hub : StreamHub
        The process's stream hub for the account's exchange config (keys included).
    streams : StreamsConfig
        ``reconcile_s``, ``stale_s``, ``fill_lag_s``.
    release : callable, optional
        Called with ``hub`` by :meth:`close`.
    tick_s : float
        Wall seconds between drains of the streams.
    candle_keys : dict[str, str], optional
        Symbol -> hub key of its kline stream (the candle partitions' feeds, watched
        here only for their health: a kline stream silent for ``stale_s`` is journaled
        as ``stream_stale`` ``"candles <symbol>"``, and ``stream_restored`` after). A
        feed no partition of this process watches is not judged.

    Other parameters are :class:`ExchangeStatePartition`'s (``poll_s``: the REST cycle's
    period while the streams are not trusted).
    """

    def __init__(self, exchange: Any, account: str, symbols: list[str], market_type: str,
                 poll_s: float, hub: Any, streams: Any, end_ms: int | None = None,
                 since_ms: int | None = None, trade_overlap_ms: int = 60_000,
                 end_grace_ms: int | None = None, resume_state: Any = None,
                 release: Any = None, tick_s: float = TICK_S,
                 candle_keys: dict[str, str] | None = None) -> None:
        super().__init__(exchange, account, symbols, market_type, poll_s, end_ms, since_ms,
                         trade_overlap_ms, end_grace_ms, resume_state)
        self.hub, self.cfg, self.tick_s, self._release = hub, streams, float(tick_s), release
        markets = list(self.markets.values())
        self.trades_feed = hub.watch(watches.MY_TRADES)
        self.orders_feed = hub.watch(watches.ORDERS)
        self.marks_feed = hub.watch(watches.marks(markets, market_type))
        self._wm = -1  # the watermark, exchange ms
        self._next_rest = 0.0  # time.monotonic() of the next REST cycle
        self._gen: tuple[int, int] | None = None  # user-feed generations caught up with
        self._trusted: bool | None = None
        self._proof = False  # stale by missed fills: the stream must deliver again
        self._rest_only: dict[str, float] = {}  # report id -> when REST found it (wall)
        self._funding_slot: int | None = None
        self._marks_health = FeedHealth(streams.stale_s)
        self._candle_keys = dict(candle_keys or {})
        self._candle_health = {s: FeedHealth(streams.stale_s) for s in self._candle_keys}
        self._ending = False
        self._rest_pool: ThreadPoolExecutor | None = None
        self._rest: Future | None = None  # the REST requests running on the REST thread
        self._tick: datetime | None = None  # wall time of the next drain
        self._rest_gen: tuple[int, int] | None = None  # user-feed generations at its start
        self._user_msgs = 0  # drains that brought user-stream messages
        self._rest_msgs = 0  # ... when the running REST cycle began
        self.rest_cycles = 0
        """REST cycles run (reconciliations and catch-ups)."""

    # ------------------------------------------------------------------ Bytewax
    def next_batch(self) -> list[ExchangeUpdate]:
        """At most one update: what the streams delivered, merged with the result of a
        REST cycle when one has ended; ``StopIteration`` after the final update
        (``end_ms``). A due REST cycle runs on a thread of its own, so a slow
        reconciliation never holds up a fill or a mark behind it."""
        if self._done and self._rest is None:
            raise StopIteration
        self._tick = _utcnow() + timedelta(seconds=self.tick_s)
        delivered = self._drain_orders()
        reports = self._drain_trades()
        delivered = delivered or bool(reports)
        marks = self._drain_marks()
        if delivered:
            self._proof = False
            self._user_msgs += 1
        changes: list[dict] = []
        gen = (self.trades_feed.generation, self.orders_feed.generation)
        user_up = self.trades_feed.healthy() and self.orders_feed.healthy()
        if self._trusted and (not user_up or gen != self._gen):
            changes.append(self._change(False, "DISCONNECTED", self.trades_feed.last_error
                                        or self.orders_feed.last_error))
        elif self._trusted and self._owed():
            changes.append(self._change(False, "MISSED_FILLS",
                                        f"{len(self._rest_only)} fill(s) found by REST and "
                                        f"not sent by the stream within "
                                        f"{self.cfg.fill_lag_s:g} s"))
            self._proof = True
            self._rest_only.clear()
            try:  # a silent stream is reconnected
                self.hub.reset_private()
            except Exception as e:  # noqa: BLE001 - REST polls meanwhile; a reset is best effort
                log.warning("account stream %s: the reset failed: %s", self.account,
                            self.hub.describe(e))
        marks_ok = self._marks_health.change(self.marks_feed)
        if marks_ok is not None:
            changes.append(self._mark_change(marks_ok))
        changes += self._candle_changes()
        if self.end_ms is not None and self._wm >= self.end_ms + self.end_grace_ms \
                and not self._ending:
            self._ending = True  # the last update is a whole REST cycle
            self._next_rest = 0.0
        if self._rest is not None and self._rest.done():
            return [self._with_rest(reports, marks, changes, user_up)]
        if self._rest is None and not self._done and time.monotonic() >= self._next_rest:
            self._start_rest(gen)
        if not (reports or marks or changes):
            return []
        if latency_trace.enabled():
            for r in reports:
                latency_trace.mark("fill_emit", f"{r.symbol}@{r.ts_ms}")
            if marks:
                latency_trace.mark("mark_emit", f"marks@{self._wm}")
        return [ExchangeUpdate(self.account, self._wm, reports, None, None, None, [], marks,
                               None, [], changes)]

    def next_awake(self) -> datetime | None:
        """The next drain of the streams (every ``tick_s``)."""
        return self._tick

    def close(self) -> None:
        """Wait for a running REST cycle; release the stream hub and close the REST
        session."""
        if self._rest_pool is not None:
            self._rest_pool.shutdown(wait=True)
            self._rest_pool = None
        if self._release is not None:
            self._release(self.hub)
            self._release = None
        super().close()

    # ------------------------------------------------------------------ REST
    def _start_rest(self, gen: tuple) -> None:
        """Begin a REST cycle's requests on the REST thread; they change no state, the
        worker applies their result (:meth:`_with_rest`)."""
        if self._rest_pool is None:
            self._rest_pool = ThreadPoolExecutor(1, thread_name_prefix=f"rest-{self.account}")
        self.rest_cycles += 1
        self._rest_gen, self._rest_msgs = gen, self._user_msgs
        self._rest = self._rest_pool.submit(self._fetch_cycle)

    def _with_rest(self, reports: list, marks: dict | None, changes: list,
                   user_up: bool) -> ExchangeUpdate:
        """Apply the ended REST cycle and merge it with what the streams delivered.

        The cycle's snapshot parts (open orders, positions, balance) are left out when
        the user stream delivered anything while it ran, and the next cycle starts at
        once: they may predate fills and orders the engine has already applied from the
        stream (a position closed by a streamed take-profit fill would come back as
        open and be adopted at a start). The next cycle comes at the usual period: at
        the start the streams are not trusted yet, so it comes at the poll pace; later a
        reconciliation skipped once is harmless, and retrying at once would cost a
        busy account a REST storm. Its trades are kept (deduplicated by id)."""
        fut, self._rest = self._rest, None
        gen = self._rest_gen
        fetched = fut.result()  # ccxt errors are in it; a bug is raised here
        if fetched is None:  # fetch_time failed: try again after the backoff
            self._next_rest = time.monotonic() + self._schedule(1)
            return ExchangeUpdate(self.account, self._wm, reports, None, None, None, [], marks,
                                  None, [], changes)
        upd = self._apply_cycle(fetched)  # its reports: fills the streams had not delivered
        stale = self._user_msgs != self._rest_msgs
        if stale:  # see the docstring
            upd = replace(upd, open_orders=None, positions=None, balance=None, equity=None)
        now = time.monotonic()
        for r in upd.reports:  # found by REST first: the stream owes them
            self._rest_only.setdefault(r.report_id, now)
        if (not self._trusted and not upd.errors and user_up and not self._proof
              and gen == (self.trades_feed.generation, self.orders_feed.generation)):
            changes.append(self._change(True, "CAUGHT_UP", ""))
            self._gen = gen
            self._rest_only.clear()  # fills of the untrusted time: the stream owes none
        if self._trusted is None:
            self._trusted = False  # the start: untrusted until caught up
        # REST at the poll pace while a stream is not trusted (the fallback)
        period = self.cfg.reconcile_s if self._trusted and self._marks_health.ok is not False \
            else self.poll_s
        self._next_rest = time.monotonic() + period
        self._wm = max(self._wm, int(upd.server_ms))
        merged = sorted(reports + list(upd.reports), key=lambda r: r.ts_ms)
        return ExchangeUpdate(self.account, self._wm, merged, upd.open_orders, upd.positions,
                              upd.balance, upd.errors, {**(upd.marks or {}), **(marks or {})}
                              or None, upd.equity, upd.funding, changes)

    def _marks(self) -> dict[str, float]:
        """REST marks only while the mark stream is not healthy (one request)."""
        return {} if self._marks_health.ok else super()._marks()

    def _funding(self, server_ms: int) -> tuple[list[dict], dict[str, int]]:
        """Funding history only when a funding time passed since the last fetch (or
        before the stream is trusted): one request per symbol is Binance weight 30."""
        slot = server_ms // FUNDING_EVERY_MS
        if self._trusted and slot == self._funding_slot:
            return [], {}
        out = super()._funding(server_ms)
        self._funding_slot = slot
        return out

    # ------------------------------------------------------------------ streams
    def _owed(self) -> bool:
        """A fill the REST cycle found has not come on the stream ``fill_lag_s`` (wall
        seconds) later. Wall time, not exchange time: the stream's lag is what counts."""
        if not self._rest_only:
            return False
        return time.monotonic() - min(self._rest_only.values()) > self.cfg.fill_lag_s

    def _mark_change(self, ok: bool) -> dict:
        """The mark-price stream became silent for ``stale_s`` (REST marks meanwhile, in
        every REST cycle) or streams again."""
        if not ok:
            self._next_rest = 0.0
        return self._health_entry("marks", self.marks_feed, ok, "mark price")

    def _candle_changes(self) -> list[dict]:
        """Health changes of the kline streams this process watches (the candle
        partitions fall back to REST on their own)."""
        out = []
        for sym, key in self._candle_keys.items():
            feed = self.hub.feed(key)
            ok = None if feed is None else self._candle_health[sym].change(feed)
            if ok is not None:
                out.append(self._health_entry(f"candles {sym}", feed, ok, "kline"))
        return out

    def _health_entry(self, stream: str, feed: Any, ok: bool, what: str) -> dict:
        """The ``streams`` entry (and log line) of a stream found stale or healthy."""
        reason = "CAUGHT_UP" if ok else ("SILENT" if feed.status == "up" else "DISCONNECTED")
        detail = "" if ok else (feed.last_error if feed.status != "up" else
                                f"no {what} for {self.cfg.stale_s:g} s")
        log.log(logging.INFO if ok else logging.WARNING, "%s stream %s %s (%s)", stream,
                self.account, "restored" if ok else "stale", reason)
        return {"stream": stream, "status": "restored" if ok else "stale", "reason": reason,
                "detail": detail}

    def _change(self, trusted: bool, reason: str, detail: str) -> dict:
        self._trusted = trusted
        if not trusted:
            self._next_rest = 0.0  # poll by REST from now on, until trusted again
        status = "restored" if trusted else "stale"
        (log.info if trusted else log.warning)("account stream %s %s (%s) %s", self.account,
                                               status, reason, detail)
        return {"stream": "account", "status": status, "reason": reason, "detail": detail}

    def _drain_orders(self) -> bool:
        """Remember client id and amount of every order update; whether any came."""
        got = False
        for batch in self.orders_feed.drain():
            for o in batch or []:
                got = True
                oid = str(o.get("id") or "")
                if not oid or o.get("symbol") not in self.markets.values():
                    continue
                ts = o.get("lastUpdateTimestamp") or o.get("timestamp")
                if ts is not None:
                    self._wm = max(self._wm, int(ts))
                entry = self._orders.get(oid)
                cid = str(o.get("clientOrderId") or "")
                if entry is None:
                    self._orders[oid] = [cid, as_float(o.get("amount"), 0.0), 0.0]
                elif not entry[0] and cid:
                    entry[0] = cid
        return got

    def _drain_trades(self) -> list[ExecutionReport]:
        """Reports of streamed fills not reported yet (by trade id), oldest first."""
        out: list[ExecutionReport] = []
        for batch in self.trades_feed.drain():
            for t in batch or []:
                if t.get("id") is None or t.get("timestamp") is None:
                    continue
                sym = config_symbol(str(t.get("symbol") or ""))
                if sym not in self.markets:
                    continue
                ts = int(t["timestamp"])
                self._wm = max(self._wm, ts)
                recent = self._recent.setdefault(sym, {})
                tid = str(t["id"])
                self._rest_only.pop(f"trade-{tid}", None)  # the stream delivered it
                if tid in recent:
                    continue
                oid = str(t.get("order") or "")
                info = t.get("info") or {}
                if oid and oid not in self._orders and info.get("c"):
                    # Binance's trade event names its order's client id and amount
                    self._orders[oid] = [str(info["c"]), as_float(info.get("q"), 0.0), 0.0]
                try:
                    out.append(self._report(sym, t))
                except ccxt.BaseError as e:  # the order lookup failed: REST finds it later
                    log.warning("account stream %s: trade %s: %s", self.account, tid,
                                self.hub.describe(e))
                    continue
                recent[tid] = ts
        out.sort(key=lambda r: r.ts_ms)
        return out

    def _drain_marks(self) -> dict[str, float] | None:
        out: dict[str, float] = {}
        by_market = {m: s for s, m in self.markets.items()}
        key = "markPrice" if self.market_type == "swap" else "last"
        for batch in self.marks_feed.drain():
            for market, tk in (batch or {}).items():
                sym = by_market.get(market)
                px = as_float((tk or {}).get(key), math.nan)
                if sym is None or not (math.isfinite(px) and px > 0):
                    continue
                out[sym] = px
                if tk.get("timestamp") is not None:
                    self._wm = max(self._wm, int(tk["timestamp"]))
        return out or None

