"""Graceful shutdown of a live account engine, and what a start says about the last one.

:class:`ShutdownMixin` of :class:`~gridflow.operators.live_engine.LiveAccountEngine`:
a :class:`ShutdownRequest` (the flow's shutdown source emits one per account after a
SIGTERM / SIGINT, :mod:`gridflow.dataflows.shutdown`) makes the engine

* cancel its resting entries (``live.ops.on_shutdown = "cancel_entries"``) or keep
  them (``"keep"``); take profits, stops and the protection of adopted positions always
  stay on the exchange;
* journal one ``shutdown`` event (reason ``SIGNAL``) at its exchange time (the
  watermark): the signal, the process's start number, the client ids of the entries
  cancelled and kept and of the protective orders kept, the open positions (signed
  amount, average entry, stop price);
* place no new entry until the process ends (candles still book, stops still follow
  the position), and not force the buffered candles through at the end of input: they
  wait, in the recovery snapshot, for the next process.

The "stopping" mark is never part of a snapshot: a restored engine trades again.

:func:`previous_stop` reads a run's journal rows (plain dicts) and tells a new start
whether the previous process of the run ended with such a ``shutdown`` event (``CLEAN``)
or not (``UNCLEAN``: killed or crashed before that event).

Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from gridflow.chunks import JournalBatch
from gridflow.event_kinds import EventKind, Reason
from gridflow.events import JournalEvent
from gridflow.operators import kernel_layout as kl
from gridflow.operators.live_orders import event
from gridflow.operators.order_state import OrderState

__all__ = ["ShutdownMixin", "ShutdownRequest", "previous_stop", "start_event"]

ON_SHUTDOWN = ("cancel_entries", "keep")


@dataclass(frozen=True)
class ShutdownRequest:
    """The flow was asked to stop: one per account engine.

    Attributes
    ----------
    account : str
    signal : str
        ``"SIGTERM"`` or ``"SIGINT"`` (any name: it is journaled as given).
    start_no : int
        Number of this process among the starts of the run (1 = the first), so the next
        start can tell that *its* previous process stopped cleanly.
    on_shutdown : {"cancel_entries", "keep"}
    """

    account: str
    signal: str
    start_no: int
    on_shutdown: str = "cancel_entries"

    def __post_init__(self) -> None:
        if self.on_shutdown not in ON_SHUTDOWN:
            raise ValueError(f"on_shutdown must be one of {ON_SHUTDOWN}, got "
                             f"{self.on_shutdown!r}")
        if self.start_no < 1:
            raise ValueError(f"start_no must be >= 1, got {self.start_no}")


class ShutdownMixin:
    """The engine's side of a graceful stop (see the module docstring). Needs the
    engine's ``book``, ``state``, ``symbols``, ``watermark``, ``account``,
    ``live_time()``, ``next_seq()``, ``positions()``, ``summary()``."""

    def __setstate__(self, state: dict) -> None:
        """A restored engine (Bytewax snapshot, deep copy) is never stopping."""
        super().__setstate__(state)  # type: ignore[misc]
        self.stopping = None

    def stopping_for(self) -> str | None:
        """The signal the engine is stopping for, or None while it trades."""
        return getattr(self, "stopping", None)

    def on_shutdown(self, req: ShutdownRequest) -> JournalBatch:
        """Stop trading for ``req``: cancel (or keep) the resting entries and journal the
        ``shutdown`` event (see the module docstring). A second request of the same
        process does nothing (empty batch)."""
        out = JournalBatch()
        if self.stopping_for() is not None:
            return out
        self.stopping = req.signal
        ts = self.live_time()
        cancelled, kept, protective = [], [], []
        for w in self.book.live():
            if w.state not in (OrderState.PENDING, OrderState.OPEN):
                continue
            if not w.slot.startswith("L"):
                protective.append(w.coid)
            elif req.on_shutdown == "cancel_entries":
                self.book.cancel(out, w, ts, self.next_seq())
                cancelled.append(w.coid)
            else:
                kept.append(w.coid)
        st = self.state
        positions = {}
        for s, sym in enumerate(self.symbols):
            amt = float(st.sf[s, kl.SF_AMT])
            if amt > 0:
                stop = self.book.slot(sym, "SL")
                positions[sym] = {"amount": amt * int(st.si[s, kl.SI_SIDE]),
                                  "avg_entry": float(st.sf[s, kl.SF_AVG]),
                                  "stop": stop.stop_price if stop is not None else None}
        out.events.append(event(
            self.account.name, EventKind.SHUTDOWN, Reason.SIGNAL, ts, self.next_seq(),
            signal=req.signal, start_no=req.start_no, on_shutdown=req.on_shutdown,
            entries_cancelled=cancelled, entries_kept=kept, protective_kept=protective,
            positions=positions))
        out.summaries.append(self.summary())
        return out

    def flush(self) -> JournalBatch:
        """End of input: while stopping, nothing is forced through (the buffered candles
        wait for the next process, in order with their fills); else the engine's flush."""
        if self.stopping_for() is not None:
            return JournalBatch()
        return super().flush()  # type: ignore[misc]


def previous_stop(events: Iterable[dict[str, Any]], summaries: Iterable[dict[str, Any]],
                  accounts: Iterable[str]) -> tuple[int, dict[str, tuple[Reason, dict]]]:
    """How the previous process of a run ended, per account, from its journal rows.

    Parameters
    ----------
    events : iterable of dict
        The run's journal events (``kind``, ``reason``, ``account``, ``ts_ms``,
        ``detail`` a dict or its JSON text), any order.
    summaries : iterable of dict
        The run's account summaries (``account``, ``complete``).
    accounts : iterable of str
        Accounts of the new process.

    Returns
    -------
    start_no : int
        Number of the new process among the run's starts: 1 when the journal holds no
        event of the run (nothing to report), else one more than the last start
        recorded by a start's ``shutdown`` event (``CLEAN`` / ``UNCLEAN``), or 2 when
        there is none yet.
    previous : dict
        Account -> (``Reason.CLEAN`` or ``Reason.UNCLEAN``, detail); empty when
        ``start_no == 1``. ``CLEAN``: the previous process journaled its ``shutdown``
        (``SIGNAL``) event for the account, or the account's run is complete. The detail:
        ``start_no``, ``previous_start``, ``previous`` (``"clean"`` / ``"unclean"``),
        ``signal`` (None when unclean or complete), ``stopped_ms`` (exchange time of the
        shutdown event, or the last journaled time), ``complete``.
    """
    import json

    rows = list(events)
    if not rows:
        return 1, {}

    def detail(r: dict) -> dict:
        d = r.get("detail") or {}
        if isinstance(d, str):
            try:
                d = json.loads(d)
            except ValueError:
                d = {}
        return d if isinstance(d, dict) else {}

    starts = [int(detail(r).get("start_no") or 0) for r in rows
              if r.get("kind") == EventKind.SHUTDOWN
              and r.get("reason") in (Reason.CLEAN, Reason.UNCLEAN)]
    prev = max(starts, default=1) or 1
    last_ms = max(int(r.get("ts_ms") or 0) for r in rows)
    complete = {s["account"] for s in summaries if s.get("complete")}
    out: dict[str, tuple[Reason, dict]] = {}
    for acct in sorted(set(accounts)):
        stops = [r for r in rows if r.get("kind") == EventKind.SHUTDOWN
                 and r.get("reason") == Reason.SIGNAL and r.get("account") == acct
                 and int(detail(r).get("start_no") or 0) == prev]
        clean = bool(stops) or acct in complete
        out[acct] = (Reason.CLEAN if clean else Reason.UNCLEAN, {
            "start_no": prev + 1, "previous_start": prev,
            "previous": "clean" if clean else "unclean",
            "signal": detail(stops[-1]).get("signal") if stops else None,
            "stopped_ms": int(stops[-1]["ts_ms"]) if stops else last_ms,
            "complete": acct in complete})
    return prev + 1, out


def start_event(account: str, reason: Reason, detail: dict) -> JournalEvent:
    """The ``shutdown`` event a start journals about the previous process (see
    :func:`previous_stop`): id ``shutdown:{account}:start-{start_no}``, time the
    previous stop's (``stopped_ms``), ``seq`` 0 (it takes no number of the engine, so a
    replay after a crash keeps every id)."""
    return JournalEvent(event_id=f"{EventKind.SHUTDOWN}:{account}:start-{detail['start_no']}",
                        kind=EventKind.SHUTDOWN, reason=reason, ts_ms=int(detail["stopped_ms"]),
                        account=account, symbol="", seq=0, detail=dict(detail))
