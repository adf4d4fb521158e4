"""Journal reads of a source partition on a thread of their own, off the Bytewax worker.

The command and broker-outcome sources poll the journal (commands come from other
processes; the broker's outcomes come back through the store, since a dataflow has no
cycles). Run in ``next_batch`` on the one Bytewax worker thread, each poll held every
other partition up for the length of its queries, and longer when another writer held
the SQLite lock: measured in the live flow at 25 ms polls, the two sources took 19 % of
the worker thread, five times the engine's and the broker's share together, and a fill
arriving during a poll waited for it (``benchmarks/live_latency.py``).

:class:`BackgroundReader` calls a partition's ``read()`` on a daemon thread every
``poll_s`` seconds, or at once when woken (:func:`notify`, e.g. by the broker sink right
after it committed outcomes, in the same process), and queues what it read;
the partition's ``next_batch`` only takes the queue, in read order, and keeps its own
resume state (what it emitted), so recovery is what it was: items read but not yet
emitted are read again after a restart.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

_wakers: dict[str, set[threading.Event]] = {}
_wakers_lock = threading.Lock()


TICK_S = 0.005
"""With a background reader: wall seconds between two looks at what it has read."""


def next_polls(reader: "BackgroundReader | None", read: Callable[[], T],
               poll_s: float) -> tuple[list[T], datetime]:
    """A partition's ``next_batch`` step: the reads to emit and its next awake time.
    Without a reader, one read now and the next in ``poll_s``; with one, what it has
    read so far (maybe nothing) and a look again in :data:`TICK_S`."""
    if reader is None:
        return [read()], datetime.now(timezone.utc) + timedelta(seconds=poll_s)
    return reader.take(), datetime.now(timezone.utc) + timedelta(seconds=TICK_S)


def notify(key: str) -> None:
    """Wake every reader of this process listening on ``key`` (a no-op when none)."""
    with _wakers_lock:
        events = tuple(_wakers.get(key, ()))
    for e in events:
        e.set()


def outcomes_key(run_id: str) -> str:
    """The wake-up key of a run's broker outcomes (:func:`notify` after each commit)."""
    return f"broker_outcomes:{run_id}"


def run_complete_key(run_id: str) -> str:
    """The wake-up key of a run's completion: the journal sink notifies it once it has
    committed a completed account summary, and the replay's command source, which ends
    when every account is complete, looks at once instead of at its next poll."""
    return f"run_complete:{run_id}"


class BackgroundReader(Generic[T]):
    """``read()`` on a daemon thread, its results handed over by :meth:`take`.

    Parameters
    ----------
    read : callable
        ``() -> T``, one poll of the journal; runs on the reader thread only (it may
        keep its own cursor). Its exception stops the reader and is raised by the next
        :meth:`take`.
    poll_s : float
        Wall seconds between the end of one read and the start of the next, unless
        woken earlier; ``>= 0``.
    name : str
        Thread name.
    wake_on : str, optional
        A :func:`notify` key that starts a read at once.

    Raises
    ------
    ValueError
        ``poll_s < 0``.
    """

    def __init__(self, read: Callable[[], T], poll_s: float, name: str,
                 wake_on: str | None = None) -> None:
        if not poll_s >= 0:
            raise ValueError(f"poll_s must be >= 0, got {poll_s}")
        self._read = read
        self._poll_s = float(poll_s)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._key = wake_on
        if wake_on is not None:
            with _wakers_lock:
                _wakers.setdefault(wake_on, set()).add(self._wake)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self._queue.put(self._read())
            except BaseException as exc:  # noqa: BLE001 - raised on the worker by take()
                self._error = exc
                return
            self._wake.wait(self._poll_s)

    def take(self) -> list[T]:
        """Every read result queued so far, oldest first; never blocks.

        Raises
        ------
        BaseException
            What ``read`` raised, once the results before it were taken.
        """
        error = self._error  # before the queue: a result queued before it is taken
        out = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if not out and error is not None:
            raise error
        return out

    def wake(self) -> None:
        """Start a read now (or as soon as the one under way ends)."""
        self._wake.set()

    def close(self) -> None:
        """Stop the thread (after the read under way) and stop listening."""
        self._stop.set()
        self._wake.set()
        if self._key is not None:
            with _wakers_lock:
                listeners = _wakers.get(self._key, set())
                listeners.discard(self._wake)
                if not listeners:
                    _wakers.pop(self._key, None)
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)  # a read waiting on a lock ends on its own


__all__ = ["TICK_S", "BackgroundReader", "next_polls", "notify", "outcomes_key"]
