"""Prometheus metrics and health of a running flow, folded from its journal stream.

Pure (no I/O, no clock): :class:`FlowMetrics` owns a private
:class:`prometheus_client.CollectorRegistry` (never the process-global one) and updates
it from each item the flow journals: a :class:`~gridflow.chunks.JournalBatch` of an
engine (or of refused candles / commands) and, in live mode, each terminal
:class:`~gridflow.events.OrderOutcome` of the broker (through the outcome stream). The
HTTP side lives in :mod:`gridflow.dataflows.metrics_sink`.

Exported (``account`` is the config's account name; money in the quote currency):

======================================================  =======================================
``gridflow_equity{account}``                            equity of the latest account summary
``gridflow_open_positions{account}``                    symbols with a non-zero position
``gridflow_resting_orders{account}``                    live orders the broker placed (sent or
                                                        duplicate) not yet cancelled, filled
                                                        completely or vanished; 0 in paper mode
``gridflow_kill_switch{account,reason}``                1 while that switch is on, else 0
``gridflow_last_candle_timestamp_seconds{account}``     open time of the last candle processed
``gridflow_fills_total{account,symbol}``                fills journaled (by report id, once)
``gridflow_order_denials_total{account,reason}``        ``order_denied`` events by reason
``gridflow_exchange_errors_total{account,kind}``        ``exchange_error`` (failed polls),
                                                        ``order_rejected``, ``order_failed``
``gridflow_data_stale{account,symbol}``                 1 between ``data_stale`` and
                                                        ``data_fresh``
``gridflow_stream_stale{account,stream}``               1 between ``stream_stale`` and
                                                        ``stream_restored``
``gridflow_candle_close_to_order_sent_seconds``         histogram: broker's send (wall clock)
                                                        minus the decision time of an order
                                                        decided at a candle close
``gridflow_fill_to_protection_sent_seconds``            the same for a take profit, stop or
                                                        market close decided at a fill
``gridflow_metrics_bad_items_total{what}``              items the fold could not read
======================================================  =======================================

Counters count since the process started (Prometheus' ``rate`` / ``increase`` handle the
reset after a restart); a record seen twice (a replay after a crash) counts once. The
latencies compare the broker's wall clock with the decision's exchange time: on a venue
whose clock is within the preflight's skew that is the latency; on the local exchange,
whose clock runs on candle data, it is not.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict, deque
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gridflow.chunks import JournalBatch
from gridflow.event_kinds import EventKind
from gridflow.events import AccountSummary, JournalEvent, OrderOutcome, OutcomesReplayed
from gridflow.operators.risk import KILL_SWITCH_REASONS

__all__ = ["LATENCY_BUCKETS_S", "PROTECTIVE_TAGS", "FlowMetrics"]

#: Upper bounds (seconds) of the latency histograms' buckets (+Inf is added).
LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
#: Order tags that protect a position (placed after a fill).
PROTECTIVE_TAGS = frozenset({"TP", "SL", "CLOSE"})
#: Broker outcomes of a place that put the order on the exchange.
_PLACED = frozenset({"sent", "duplicate"})
#: Broker outcomes of a cancel after which the order rests no more.
_CANCELLED = frozenset({"canceled", "not_found"})
_ERROR_KINDS = (EventKind.EXCHANGE_ERROR, EventKind.ORDER_REJECTED, EventKind.ORDER_FAILED)


class _Bounded(OrderedDict):
    """An insertion-ordered dict that forgets its oldest entries beyond ``cap``."""

    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap = int(cap)

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        while len(self) > self.cap:
            self.popitem(last=False)


class FlowMetrics:
    """The metrics of one flow (see the module docstring for the names).

    Parameters
    ----------
    registry : CollectorRegistry, optional
        Where the metrics are registered; a new private registry by default.
    memory : int
        Most record ids remembered for deduplication, and most pending intents /
        outcomes waiting for their counterpart (oldest forgotten first).

    Notes
    -----
    :meth:`apply` is called from the flow's worker thread, :meth:`health` and the
    registry's collection from HTTP threads: the health state is guarded by a lock,
    prometheus_client's metrics are thread-safe.
    """

    def __init__(self, registry: CollectorRegistry | None = None, memory: int = 200_000) -> None:
        r = self.registry = registry if registry is not None else CollectorRegistry()
        self.equity = Gauge("gridflow_equity", "Account equity (quote currency), latest "
                            "account summary", ["account"], registry=r)
        self.open_positions = Gauge("gridflow_open_positions", "Symbols with an open "
                                    "position", ["account"], registry=r)
        self.resting_orders = Gauge("gridflow_resting_orders", "Orders resting on the "
                                    "exchange (live mode)", ["account"], registry=r)
        self.kill_switch = Gauge("gridflow_kill_switch", "1 while the kill switch is on",
                                 ["account", "reason"], registry=r)
        self.last_candle = Gauge("gridflow_last_candle_timestamp_seconds", "Open time of "
                                 "the last candle the engine processed (Unix s)",
                                 ["account"], registry=r)
        self.fills = Counter("gridflow_fills", "Fills journaled", ["account", "symbol"],
                             registry=r)
        self.denials = Counter("gridflow_order_denials", "Orders the risk gate denied",
                               ["account", "reason"], registry=r)
        self.exchange_errors = Counter("gridflow_exchange_errors", "Exchange errors: failed "
                                       "polls, rejected and failed orders",
                                       ["account", "kind"], registry=r)
        self.data_stale = Gauge("gridflow_data_stale", "1 while a symbol has no fresh "
                                "closed candle", ["account", "symbol"], registry=r)
        self.stream_stale = Gauge("gridflow_stream_stale", "1 while an exchange stream is "
                                  "not trusted", ["account", "stream"], registry=r)
        self.order_latency = Histogram(
            "gridflow_candle_close_to_order_sent_seconds", "Broker send time minus the "
            "candle close the order was decided at", registry=r, buckets=LATENCY_BUCKETS_S)
        self.protection_latency = Histogram(
            "gridflow_fill_to_protection_sent_seconds", "Broker send time minus the fill "
            "a protective order was decided at", registry=r, buckets=LATENCY_BUCKETS_S)
        self.bad_items = Counter("gridflow_metrics_bad_items", "Items the metrics could "
                                 "not read", ["what"], registry=r)
        self._seen = _Bounded(memory)  # ("fill" | "event" | "outcome", id)
        self._pending = _Bounded(memory)  # place intent id -> (histogram, decision ms)
        self._early = _Bounded(memory)  # place intent id -> sent ms (outcome before intent)
        self._fill_ts: dict[tuple[str, str], deque] = defaultdict(lambda: deque(maxlen=64))
        self._candles: dict[str, int] = {}  # account -> candles of the summary shown
        self._resting: dict[str, set[str]] = defaultdict(set)  # account -> client ids
        self._owner: _Bounded = _Bounded(memory)  # client id -> account
        self._done: _Bounded = _Bounded(memory)  # client ids filled or cancelled
        self._lock = threading.Lock()
        self._stale_data: dict[tuple[str, str], int] = {}  # (account, symbol) -> since ms
        self._stale_streams: dict[tuple[str, str], int] = {}  # (account, stream) -> ms
        self._updates = 0

    # ------------------------------------------------------------------ the fold
    def apply(self, item: Any) -> None:
        """Update the metrics from one journaled item.

        Parameters
        ----------
        item : JournalBatch or OrderOutcome or OutcomesReplayed
            Anything else is counted in ``gridflow_metrics_bad_items_total{what=
            "unknown_item"}`` and ignored (never raises).
        """
        if isinstance(item, JournalBatch):
            self._batch(item)
        elif isinstance(item, OrderOutcome):
            self._outcome(item)
        elif not isinstance(item, OutcomesReplayed):
            self.bad_items.labels("unknown_item").inc()
            return
        with self._lock:
            self._updates += 1

    def _first(self, kind: str, key: str) -> bool:
        """True the first time ``(kind, key)`` is seen (then remembered)."""
        if (kind, key) in self._seen:
            return False
        self._seen.put((kind, key), None)
        return True

    def _batch(self, b: JournalBatch) -> None:
        for f in b.fills:
            if not self._first("fill", f.report_id):
                continue
            self.fills.labels(f.account, f.symbol).inc()
            self._fill_ts[(f.account, f.symbol)].append(int(f.ts_ms))
            if f.status == "filled" and f.client_order_id:
                self._gone(f.client_order_id)
        for it in b.intents:
            if it.action != "place":
                continue
            self._owner.put(it.client_order_id, it.account)
            at_fill = int(it.ts_ms) in self._fill_ts.get((it.account, it.symbol), ())
            hist = (self.protection_latency if it.tag in PROTECTIVE_TAGS else None) \
                if at_fill else self.order_latency
            if hist is None:
                continue  # an entry decided at a fill: neither latency
            sent = self._early.pop(it.intent_id, None)
            if sent is None:
                self._pending.put(it.intent_id, (hist, int(it.ts_ms)))
            else:
                _observe(hist, sent, int(it.ts_ms))
        for e in b.events:
            if self._first("event", e.event_id):
                self._event(e)
        for s in b.summaries:
            self._summary(s)
        touched = {it.account for it in b.intents} | {f.account for f in b.fills}
        for acct in touched:
            self.resting_orders.labels(acct).set(len(self._resting[acct]))

    def _event(self, e: JournalEvent) -> None:
        acct = e.account
        if e.kind == EventKind.ORDER_DENIED:
            self.denials.labels(acct, e.reason).inc()
        elif e.kind in _ERROR_KINDS:
            self.exchange_errors.labels(acct, e.kind).inc()
        elif e.kind == EventKind.ORDER_VANISHED:
            coid = e.detail.get("client_order_id")
            if isinstance(coid, str):
                self._gone(coid)
                self.resting_orders.labels(acct).set(len(self._resting[acct]))
        elif e.kind in (EventKind.DATA_STALE, EventKind.DATA_FRESH):
            stale = e.kind == EventKind.DATA_STALE
            self.data_stale.labels(acct, e.symbol).set(1 if stale else 0)
            with self._lock:
                if stale:
                    self._stale_data[(acct, e.symbol)] = int(e.ts_ms)
                else:
                    self._stale_data.pop((acct, e.symbol), None)
        elif e.kind in (EventKind.STREAM_STALE, EventKind.STREAM_RESTORED):
            stream = str(e.detail.get("stream") or "?")
            stale = e.kind == EventKind.STREAM_STALE
            self.stream_stale.labels(acct, stream).set(1 if stale else 0)
            with self._lock:
                if stale:
                    self._stale_streams.setdefault((acct, stream), int(e.ts_ms))
                else:
                    self._stale_streams.pop((acct, stream), None)

    def _summary(self, s: AccountSummary) -> None:
        """The journal keeps the summary with the most candles (the last on ties)."""
        if s.candles < self._candles.get(s.account, -1):
            return
        self._candles[s.account] = s.candles
        self.equity.labels(s.account).set(s.equity)
        self.resting_orders.labels(s.account).set(len(self._resting[s.account]))
        self.open_positions.labels(s.account).set(
            sum(1 for p in s.positions.values() if p.get("amount")))
        if s.last_ts_ms >= 0:
            self.last_candle.labels(s.account).set(s.last_ts_ms / 1000.0)
        on = {k for k in s.kill_switch.split(",") if k}
        for reason in KILL_SWITCH_REASONS.values():
            self.kill_switch.labels(s.account, reason).set(1 if reason in on else 0)
        for reason in on - set(KILL_SWITCH_REASONS.values()):
            self.bad_items.labels("kill_switch_reason").inc()

    def _outcome(self, o: OrderOutcome) -> None:
        if not self._first("outcome", o.intent_id):
            return
        if o.action == "place":
            if o.status in _PLACED:
                pend = self._pending.pop(o.intent_id, None)
                if pend is not None:
                    _observe(pend[0], o.ts_ms, pend[1])
                else:
                    self._early.put(o.intent_id, int(o.ts_ms))
                if o.client_order_id not in self._done:
                    self._resting[o.account].add(o.client_order_id)
                    self._owner.put(o.client_order_id, o.account)
            else:
                self._pending.pop(o.intent_id, None)  # never sent: no latency
        elif o.status in _CANCELLED:
            self._gone(o.client_order_id)
        self.resting_orders.labels(o.account).set(len(self._resting[o.account]))

    def _gone(self, coid: str) -> None:
        """Order ``coid`` rests no more (filled completely, cancelled, vanished)."""
        self._done.put(coid, None)
        acct = self._owner.get(coid)
        if acct is not None:
            self._resting[acct].discard(coid)

    # ------------------------------------------------------------------ health
    def health(self) -> tuple[bool, dict[str, Any]]:
        """Whether the flow's data is fresh, and why not.

        Returns
        -------
        (bool, dict)
            True when no symbol is ``data_stale`` and no exchange stream is stale. The
            dict (JSON-able): ``status`` (``"ok"`` / ``"stale"``), ``stale_data`` (list
            of ``{"account", "symbol", "since_ms"}``), ``stale_streams`` (list of
            ``{"account", "stream", "since_ms"}``; exchange time, ms UTC) and
            ``updates`` (items applied so far).
        """
        with self._lock:
            data = [{"account": a, "symbol": s, "since_ms": t}
                    for (a, s), t in sorted(self._stale_data.items())]
            streams = [{"account": a, "stream": s, "since_ms": t}
                       for (a, s), t in sorted(self._stale_streams.items())]
            updates = self._updates
        ok = not data and not streams
        return ok, {"status": "ok" if ok else "stale", "stale_data": data,
                    "stale_streams": streams, "updates": updates}


def _observe(hist: Histogram, sent_ms: int, decided_ms: int) -> None:
    """One latency in seconds (a send before the decision, a clock skew, counts 0)."""
    hist.observe(max(0, int(sent_ms) - int(decided_ms)) / 1000.0)
