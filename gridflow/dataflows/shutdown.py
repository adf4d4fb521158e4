"""Graceful shutdown of the live flow on SIGTERM / SIGINT, within a bound.

How a stop goes (``live.ops``: ``on_shutdown``, ``shutdown_timeout_s``):

1. :func:`install` (called when the live flow is built, in the main thread) puts a
   handler on SIGTERM and SIGINT and routes the signal's number to a pipe
   (:func:`signal.set_wakeup_fd`: written by the C-level handler, whatever thread the
   interpreter is busy in). A daemon thread reads it, records the request
   (:func:`requested`) and arms the bound: ``shutdown_timeout_s`` wall seconds later
   the process exits with code 1 (:data:`FORCED_EXIT`) if it is still there. A second
   signal exits at once with that code.
2. :class:`ShutdownSource` (which, in a run with ``live.end_ms``, also ends when the
   run is complete, like every other input) emits one
   :class:`~gridflow.operators.live_shutdown.ShutdownRequest` per account; each engine
   cancels (or keeps) its resting entries and journals ``shutdown`` (``SIGNAL``),
   which the alert step notifies. Stops and take profits stay on the exchange.
3. Every other input of the flow is wrapped in :class:`Stoppable`: it ends
   (``StopIteration``) once a stop is requested. Bytewax then drains the flow: the
   engines' cancel intents reach the broker sink (which sends them before it returns),
   the journal and the alert sink (which delivers its queue on close) get everything,
   the last epoch is snapshotted, and ``bytewax.run`` returns: exit code 0.

Nothing of the stop is in a resume state (the wrapped partitions snapshot their inner
partition's state, never "ended"; the engines drop their stopping mark when restored):
a restart with ``-r`` continues where the snapshot stands, as after any stop.

At each start the same source reads the run's journal (:func:`~gridflow.operators.
live_shutdown.previous_stop`) and journals a ``shutdown`` event per account with reason
``CLEAN`` (the previous process journaled its ``SIGNAL`` shutdown, or the run was
complete) or ``UNCLEAN`` (killed or crashed before that event), notified like every
``shutdown``.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from gridflow.chunks import JournalBatch
from gridflow.operators.live_shutdown import ShutdownRequest, previous_stop, start_event

__all__ = ["FORCED_EXIT", "ShutdownSource", "Stoppable", "install", "request", "requested",
           "reset"]

log = logging.getLogger(__name__)

FORCED_EXIT = 1
"""Exit code of a process that did not stop within ``shutdown_timeout_s`` (or got a
second signal)."""
TICK_S = 0.1
COMPLETE_POLL_S = 0.5
"""Wall seconds between two looks at whether a run with an end is complete."""
"""Wall seconds between two looks at the stop request by a waiting partition."""
SIGNALS = (signal.SIGTERM, signal.SIGINT)

_lock = threading.Lock()
_state: dict[str, Any] = {"signal": None, "at": None, "timeout_s": None, "installed": False}


def requested() -> str | None:
    """The name of the signal a stop was requested with (``"SIGTERM"``...), or None."""
    return _state["signal"]


def request(name: str, timeout_s: float | None = None) -> bool:
    """Record a stop request (what a signal does); ``timeout_s`` arms the bound (exit
    with :data:`FORCED_EXIT` after that many wall seconds). Returns False when a stop
    was already requested (then nothing changes)."""
    with _lock:
        if _state["signal"] is not None:
            return False
        _state["signal"], _state["at"] = name, time.monotonic()
    log.warning("%s received: stopping the flow (bound %s s)", name, timeout_s)
    if timeout_s is not None:
        threading.Thread(target=_deadline, args=(float(timeout_s),), daemon=True,
                         name="gridflow-shutdown-bound").start()
    return True


def reset() -> None:
    """Forget a stop request (tests that run several flows in one process)."""
    with _lock:
        _state["signal"] = _state["at"] = None


def _deadline(timeout_s: float) -> None:
    time.sleep(timeout_s)
    log.error("the flow did not stop within %.1f s of %s: exiting with code %d",
              timeout_s, _state["signal"], FORCED_EXIT)
    logging.shutdown()
    os._exit(FORCED_EXIT)


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _watch(fd: int, timeout_s: float) -> None:
    """Daemon thread: each signal number written to ``fd`` by the C-level handler."""
    while True:
        select.select([fd], [], [])
        try:
            data = os.read(fd, 64)
        except BlockingIOError:
            continue
        except OSError:
            return
        for signum in data:
            if signum in SIGNALS:
                _on_signal(signum, timeout_s)


def _on_signal(signum: int, timeout_s: float) -> None:
    if not request(_signal_name(signum), timeout_s):
        log.error("%s received while stopping: exiting now with code %d",
                  _signal_name(signum), FORCED_EXIT)
        logging.shutdown()
        os._exit(FORCED_EXIT)


def install(timeout_s: float) -> bool:
    """Handle SIGTERM and SIGINT by a graceful stop bounded by ``timeout_s`` wall seconds
    (see the module docstring). Only the main thread can install signal handlers: from
    another thread (a flow built by a test or a notebook) nothing is installed and
    False is returned; once per process (True again on later calls)."""
    if threading.current_thread() is not threading.main_thread():
        log.info("live flow built outside the main thread: no SIGTERM/SIGINT handler")
        return False
    with _lock:
        if _state["installed"]:
            return True
        _state["installed"] = True
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    for s in SIGNALS:
        signal.signal(s, _python_handler)
    old = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    if old != -1:  # somebody else reads the wakeup fd: keep theirs, use the handler
        signal.set_wakeup_fd(old)
        _state["timeout_s"] = timeout_s
        os.close(r)
        os.close(w)
        return True
    threading.Thread(target=_watch, args=(r, float(timeout_s)), daemon=True,
                     name="gridflow-signals").start()
    return True


def _python_handler(signum: int, frame: Any) -> None:
    """The Python-level handler: the pipe already told the watcher thread; only when the
    wakeup fd belongs to somebody else does this act (in the main thread)."""
    if _state["timeout_s"] is not None:  # not here: the main thread may hold the lock
        threading.Thread(target=_on_signal, args=(signum, _state["timeout_s"]),
                         daemon=True).start()


def _now() -> datetime:
    return datetime.now(timezone.utc)


class _StoppablePartition(StatefulSourcePartition):
    """An inner partition that ends once a stop is requested; asks Bytewax to look at
    least every :data:`TICK_S` and calls the inner one only when it wants to be."""

    def __init__(self, inner: StatefulSourcePartition) -> None:
        self.inner = inner
        self._inner_awake: datetime | None = None

    def next_batch(self) -> list:
        if requested() is not None:
            raise StopIteration
        if self._inner_awake is not None and _now() < self._inner_awake:
            return []
        out = self.inner.next_batch()
        self._inner_awake = self.inner.next_awake()
        return out

    def next_awake(self) -> datetime | None:
        if self._inner_awake is None:
            return None  # the inner partition wants to be called at once
        return min(self._inner_awake, _now() + timedelta(seconds=TICK_S))

    def snapshot(self) -> Any:
        return self.inner.snapshot()

    def close(self) -> None:
        self.inner.close()


class Stoppable(FixedPartitionedSource):
    """``inner`` (a :class:`FixedPartitionedSource`) whose partitions end (EOF) once a
    stop is requested (:func:`requested`). Same partitions and resume states."""

    def __init__(self, inner: FixedPartitionedSource) -> None:
        self.inner = inner

    def list_parts(self) -> list[str]:
        return self.inner.list_parts()

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> _StoppablePartition:
        return _StoppablePartition(self.inner.build_part(step_id, for_part, resume_state))


class _ShutdownPartition(StatefulSourcePartition):
    def __init__(self, accounts: tuple[str, ...], start_no: int, on_shutdown: str,
                 started: JournalBatch, until: tuple[str, str] | None) -> None:
        self.accounts = accounts
        self.start_no = start_no
        self.on_shutdown = on_shutdown
        self.started = started
        self.sent = False
        self.until = until
        self._look_ms = 0.0
        self._store = None  # one SQLAlchemy engine for every look

    def _complete(self) -> bool:
        """Every account's summary of the run is complete (looked up every
        :data:`COMPLETE_POLL_S` at most)."""
        from gridflow.journal.store import complete_accounts

        now = time.monotonic()
        if self.until is None or now < self._look_ms:
            return False
        self._look_ms = now + COMPLETE_POLL_S
        try:
            if self._store is None:
                from gridflow.journal.schema import open_store

                self._store = open_store(self.until[0])
            done = complete_accounts(self._store, self.until[1])
        except Exception as exc:  # noqa: BLE001 (locked or not created yet: look again)
            log.debug("shutdown source: summaries not read: %s", type(exc).__name__)
            return False
        return set(self.accounts) <= done

    def next_batch(self) -> list:
        out: list = []
        if self.started.events:
            out.append(("journal", self.started))
            self.started = JournalBatch()
        if self._complete():  # the run reached live.end_ms: the flow ends as before
            raise StopIteration
        name = requested()
        if name is not None:
            if self.sent:
                raise StopIteration
            self.sent = True
            out += [("engine", ShutdownRequest(a, name, self.start_no, self.on_shutdown))
                    for a in self.accounts]
        return out

    def next_awake(self) -> datetime:
        return _now() + timedelta(seconds=TICK_S)

    def snapshot(self) -> None:
        return None  # a stop is this process's affair


class ShutdownSource(FixedPartitionedSource):
    """One partition (``"shutdown"``): at start, the run's view of its previous stop
    (``("journal", JournalBatch)`` of ``shutdown`` events ``CLEAN`` / ``UNCLEAN``, one per
    account, none on the run's first start); on a stop request, ``("engine",
    ShutdownRequest)`` per account, then the end of input.

    Parameters
    ----------
    url : str
        Journal URL, read once here (the process's start).
    run_id : str
    accounts : iterable of str
    on_shutdown : {"cancel_entries", "keep"}
    until_run_complete : bool
        Also end once every account summary of the run is ``complete`` (a live run
        with ``live.end_ms``), like the flow's other inputs.

    Raises
    ------
    ValueError
        A bad ``on_shutdown``.
    """

    def __init__(self, url: str, run_id: str, accounts, on_shutdown: str = "cancel_entries",
                 until_run_complete: bool = False) -> None:
        from gridflow.journal.store import read_events, read_summaries

        self.accounts = tuple(sorted(accounts))
        ShutdownRequest("-", "-", 1, on_shutdown)  # checks on_shutdown
        self.on_shutdown = on_shutdown
        self.until = (url, run_id) if until_run_complete else None
        try:
            events, summaries = read_events(url, run_id), read_summaries(url, run_id)
        except Exception as exc:  # noqa: BLE001 (a new journal: no table yet)
            log.debug("no journal to read the previous stop from: %s", type(exc).__name__)
            events, summaries = [], []
        self.start_no, prev = previous_stop(events, summaries, self.accounts)
        self.started = JournalBatch(events=[start_event(a, r, d) for a, (r, d) in prev.items()])
        for a, (r, d) in prev.items():
            log.info("account %s: previous stop of run %s was %s (start %d)", a, run_id,
                     r, d["start_no"])

    def list_parts(self) -> list[str]:
        return ["shutdown"]

    def build_part(self, step_id: str, for_part: str, resume_state: None
                   ) -> _ShutdownPartition:
        return _ShutdownPartition(self.accounts, self.start_no, self.on_shutdown,
                                  self.started, self.until)


def stoppable(plan) -> Any:
    """What wraps each input of the flow of ``plan`` (a
    :class:`~gridflow.dataflows.plan.RunPlan`): in ``live`` mode, :class:`Stoppable`,
    with the SIGTERM / SIGINT handlers installed (:func:`install`, bound
    ``live.ops.shutdown_timeout_s``); in other modes the source itself."""
    if plan.mode != "live":
        return lambda source: source
    install(plan.cfg.live.ops.shutdown_timeout_s)
    return Stoppable


def shutdown_streams(items) -> tuple[Any, Any]:
    """The streams of a :class:`ShutdownSource`'s ``items`` (the flow's input of it):
    for the account engines (``(account, (account, ShutdownRequest))``) and the journal
    stream of the start's ``shutdown`` events (``JournalBatch``)."""
    import bytewax.operators as op

    # ("journal", JournalBatch) at start | ("engine", ShutdownRequest) after a signal
    to_engines = op.filter_map("key_shutdown", items, lambda t: (
        t[1].account, (t[1].account, t[1])) if t[0] == "engine" else None)
    started = op.filter_map("shutdown_journal", items,
                            lambda t: t[1] if t[0] == "journal" else None)
    return to_engines, started
