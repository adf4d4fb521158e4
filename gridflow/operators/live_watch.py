"""Running unattended: the live engine says it is alive, and says when its data is not.

:class:`WatchMixin` of :class:`~gridflow.operators.live_engine.LiveAccountEngine`,
called after every exchange update (:meth:`WatchMixin._watch`). Every time is exchange
time (the update's watermark), so a flow restored after a crash journals the same
events with the same ids, and a test drives it with the local exchange's clock:

* ``heartbeat`` (reason ``ALIVE``) every ``live.ops.heartbeat_s``: equity, open
  positions, last candle, kill switches, uptime. The alert sink does not notify it: a
  heartbeat is for ``gridflow status`` and the watchdog.
* ``daily_heartbeat`` (``SCHEDULED``) once a day at ``live.ops.daily_at`` UTC: uptime,
  equity, open positions, the day's PnL (equity against its 00:00 UTC value), kill
  switches; notified (silence itself is then an alarm), and the alert sink sends the
  daily report of the day before with it.
* ``data_stale`` (``NO_CLOSED_CANDLE``) once per symbol when no closed candle came for
  ``stale_candles`` timeframes; ``data_fresh`` (``CANDLES_BACK``) when one comes again.
* ``exchange_error_rate`` (``ERRORS_OVER_RATE``) once per window when the update errors
  (``exchange_error`` events) reach ``error_rate`` within ``error_window_s``.

Pure: state in, events out, no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gridflow.chunks import JournalBatch
from gridflow.event_kinds import EventKind, Reason
from gridflow.operators import kernel_layout as kl
from gridflow.operators.live_orders import event
from gridflow.operators.risk import kill_switch_names

__all__ = ["WatchMixin", "WatchState"]

DAY_MS = 86_400_000


@dataclass
class WatchState:
    """What the watch remembers (pickled with the engine).

    Attributes
    ----------
    started_ms : int
        Exchange time of the first update seen (uptime counts from it); -1 before.
    next_heartbeat_ms, next_daily_ms : int
        Exchange time of the next heartbeat / daily heartbeat; -1 before the first
        update.
    stale : set[str]
        Symbols journaled ``data_stale`` and not fresh since.
    errors : list[int]
        Exchange times of the recent update errors (within the window).
    rate_until_ms : int
        End of the window of the last ``exchange_error_rate`` event (one per window).
    """

    started_ms: int = -1
    next_heartbeat_ms: int = -1
    next_daily_ms: int = -1
    stale: set[str] = field(default_factory=set)
    errors: list[int] = field(default_factory=list)
    rate_until_ms: int = -1


class WatchMixin:
    """Heartbeat, daily heartbeat, data freshness and error rate of a live account (see
    the module docstring). Needs the engine's ``live`` (``live.ops``), ``state``,
    ``symbols``, ``tf_ms``, ``seen_ts``, ``account``, ``equity()``, ``positions()``,
    ``next_seq()``."""

    def _watch_state(self) -> WatchState:
        st = getattr(self, "watch", None)
        if st is None:  # an engine pickled before the watch existed
            st = self.watch = WatchState()
        return st

    def _watch(self, ts: int, n_errors: int, out: JournalBatch) -> None:
        """After the exchange update at ``ts`` (ms UTC, exchange time) that carried
        ``n_errors`` errors: journal what is due into ``out``."""
        w, ops = self._watch_state(), self.live.ops
        if w.started_ms < 0:
            w.started_ms = ts
            hb = int(ops.heartbeat_s * 1000)
            w.next_heartbeat_ms = ts + hb if hb > 0 else -1
            w.next_daily_ms = _next_daily(ts, ops.daily_offset_ms())
        self._freshness(ts, out)
        self._error_rate(ts, n_errors, out)
        if w.next_heartbeat_ms >= 0 and ts >= w.next_heartbeat_ms:
            hb = int(ops.heartbeat_s * 1000)
            w.next_heartbeat_ms = (ts // hb + 1) * hb
            out.events.append(event(self.account.name, EventKind.HEARTBEAT, Reason.ALIVE, ts,
                                    self.next_seq(), **self._vitals(ts)))
        if ts >= w.next_daily_ms:
            w.next_daily_ms = _next_daily(ts, ops.daily_offset_ms())
            day_start = float(self.state.af[kl.AF_DAY_START])
            equity = self.equity()
            out.events.append(event(
                self.account.name, EventKind.DAILY_HEARTBEAT, Reason.SCHEDULED, ts,
                self.next_seq(), **self._vitals(ts), day_start_equity=day_start,
                day_pnl=equity - day_start if day_start > 0 else 0.0,
                report_day_ms=(ts // DAY_MS - 1) * DAY_MS))

    def _vitals(self, ts: int) -> dict:
        w = self._watch_state()
        st = self.state
        return {"uptime_s": (ts - w.started_ms) / 1000.0, "equity": self.equity(),
                "open_positions": {s: p["amount"] for s, p in self.positions().items()
                                   if p["amount"]},
                "last_candle_ms": int(st.ai[kl.AI_LAST_TS]),
                "kill_switches": kill_switch_names(int(st.ai[kl.AI_KILL]))}

    def _freshness(self, ts: int, out: JournalBatch) -> None:
        w, ops = self._watch_state(), self.live.ops
        for i, sym in enumerate(self.symbols):
            seen = self.seen_ts.get(sym)
            if seen is None:
                continue  # the warm-up has not come yet
            tf = int(self.tf_ms[i])
            since = ts - (int(seen) + tf)  # exchange ms since the newest candle closed
            if since > ops.stale_candles * tf and sym not in w.stale:
                w.stale.add(sym)
                out.events.append(event(
                    self.account.name, EventKind.DATA_STALE, Reason.NO_CLOSED_CANDLE, ts,
                    self.next_seq(), symbol=sym, last_close_ms=int(seen) + tf,
                    silent_s=since / 1000.0, bound_s=ops.stale_candles * tf / 1000.0))
            elif since <= tf and sym in w.stale:
                w.stale.discard(sym)
                out.events.append(event(
                    self.account.name, EventKind.DATA_FRESH, Reason.CANDLES_BACK, ts,
                    self.next_seq(), symbol=sym, last_close_ms=int(seen) + tf))

    def _error_rate(self, ts: int, n_errors: int, out: JournalBatch) -> None:
        w, ops = self._watch_state(), self.live.ops
        window = int(ops.error_window_s * 1000)
        w.errors = [t for t in w.errors if t > ts - window] + [ts] * n_errors
        if len(w.errors) >= ops.error_rate and ts >= w.rate_until_ms:
            w.rate_until_ms = ts + window
            out.events.append(event(
                self.account.name, EventKind.EXCHANGE_ERROR_RATE, Reason.ERRORS_OVER_RATE,
                ts, self.next_seq(), errors=len(w.errors), window_s=ops.error_window_s,
                limit=ops.error_rate))


def _next_daily(ts: int, offset_ms: int) -> int:
    """The first ``day + offset_ms`` (ms UTC) strictly after ``ts``."""
    t = ts // DAY_MS * DAY_MS + offset_ms
    return t if t > ts else t + DAY_MS
