"""Bytewax sinks of gridflow.

:class:`JournalSink` writes :class:`~gridflow.chunks.JournalBatch` items to the
journal (:class:`gridflow.journal.store.Journal`), retrying while another writer holds
the database lock (:class:`gridflow.journal.busy.LockRetry`); in the live flow on a
thread of its own (``background=True``), so a commit never holds up an order.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from gridflow.chunks import JournalBatch
from gridflow.dataflows.db_poller import notify, run_complete_key
from gridflow.journal.busy import LockRetry
from gridflow.journal.store import Journal
from gridflow.journal.writer_process import ProcessWriter

JOURNAL_PART = "journal"
log = logging.getLogger(__name__)


def _records(b: JournalBatch) -> int:
    return (len(b.orders) + len(b.fills) + len(b.trades) + len(b.equity) + len(b.events)
            + len(b.summaries))


class _JournalPartition(StatefulSinkPartition[JournalBatch, None]):
    """The one writer of the journal: batches gathered into transactions, retried while
    the database is locked (``self.retry.retries`` counts the retries).

    With ``gather_s`` > 0 (the replay) the batches are gathered until
    :data:`FLUSH_RECORDS` records or ``gather_s`` seconds since the last commit, then
    written in one transaction; :meth:`snapshot` and :meth:`close` write what is
    gathered. A commit costs about a millisecond whatever its size (``synchronous=FULL``
    on SQLite), and a 1m replay makes a batch every few milliseconds. A batch carrying a
    completed account summary is written at once: the replay's command source ends when
    the journal says the run is complete, and the flow with it (gathered until the
    epoch's end, a 1m replay waited up to a whole epoch, 10 s, for it).

    With ``background``, :meth:`write_batch` only queues the batch (at most
    ``BACKLOG`` wait; a full queue makes it wait) and a writer thread commits it, the
    batches queued meanwhile merged into one transaction. :meth:`snapshot` (the end of
    a Bytewax epoch, before its state is committed) and :meth:`close` wait until every
    queued batch is written: an epoch Bytewax has committed is in the journal, so a
    crash loses nothing that recovery does not replay. A write error is raised on the
    worker at the next call, like a synchronous one. Without recovery (no ``-r``), a
    SIGKILL can lose the rows still queued (the last milliseconds; the broker's own
    write-ahead rows are written by the broker and never queued here).

    With ``process`` (the replay, on an SQLite file) the gathered batches are committed
    by a writer process (:class:`~gridflow.journal.writer_process.ProcessWriter`) while
    the replay goes on, every :data:`PROCESS_FLUSH_RECORDS` records (or ``gather_s``);
    :meth:`snapshot`, a completed account and :meth:`close` wait until it committed
    everything sent, so the guarantees above are unchanged. A locked database is retried
    by the child with this sink's :class:`~gridflow.journal.busy.LockRetry` bound, and
    its retries counted and logged on it. The table, column and run row are still made
    here, by the one schema rule; a PostgreSQL or in-memory journal is written in
    process.
    """

    BACKLOG = 256
    FLUSH_RECORDS = 50_000
    #: Records per transaction sent to the writer process: small enough that the child
    #: works while the replay runs and little is left to wait for at close.
    PROCESS_FLUSH_RECORDS = 1_000

    def __init__(self, url: str, run_id: str, run_row: dict | None,
                 retry: LockRetry | None = None, background: bool = False,
                 gather_s: float = 0.0, process: bool = False) -> None:
        self.retry = retry if retry is not None else LockRetry("journal sink")
        self.gather_s = float(gather_s)
        self._journal = Journal(url)
        self._run_id = run_id
        if run_row is not None:
            self.retry(self._journal.upsert_run, **run_row)
        self._process: ProcessWriter | None = None
        self._flush_records = self.FLUSH_RECORDS
        if process and not background and self._journal.sqlite_file() is not None:
            try:
                self._process = ProcessWriter(self._journal, run_id, self.retry)
                self._flush_records = self.PROCESS_FLUSH_RECORDS
            except OSError as exc:  # no interpreter to start (an embedded Python)
                log.warning("journal writer process could not start (%s); writing in "
                            "process", exc)
        self._queue: queue.Queue[JournalBatch | None] | None = None
        self._error: BaseException | None = None
        self._gathered = JournalBatch()
        self._gathered_n = 0
        self._flushed_at = time.monotonic()
        if background:
            self._queue = queue.Queue(self.BACKLOG)
            self._thread = threading.Thread(target=self._drain, name="journal-writer",
                                            daemon=True)
            self._thread.start()

    def write_batch(self, values: list[JournalBatch]) -> None:
        # Bytewax strips the routing key: ``values`` are the batches themselves.
        merged = JournalBatch()
        for batch in values:
            merged.extend(batch)
        if not merged:
            return
        if self._queue is None:
            self._gathered.extend(merged)
            self._gathered_n += _records(merged)
            if (self._gathered_n >= self._flush_records
                    or time.monotonic() - self._flushed_at >= self.gather_s
                    or any(s.complete for s in merged.summaries)):
                self._flush()
            return
        self._raise()
        self._queue.put(merged)

    def _flush(self) -> None:
        """Write the gathered batches in one transaction (an error is raised once: the
        flow stops, and a recovery replays the batches)."""
        gathered, self._gathered, self._gathered_n = self._gathered, JournalBatch(), 0
        self._flushed_at = time.monotonic()
        if gathered:
            self._write(gathered)

    def _write(self, batch: JournalBatch) -> None:
        """One transaction (a write is idempotent: a retried one lands once); then, if
        it completed an account, the run's command source of this process looks at once
        (a replay ends when every account is complete): with a writer process, once the
        child committed it."""
        complete = any(s.complete for s in batch.summaries)
        if self._process is not None:
            self._process.submit(batch)
            if complete:
                self._process.sync()
        else:
            self.retry(self._journal.write, self._run_id, batch)
        if complete:
            notify(run_complete_key(self._run_id))

    def _drain(self) -> None:
        """The writer thread: each queued batch, with those queued behind it, at once;
        ends at the ``None`` that :meth:`close` queues."""
        assert self._queue is not None
        while True:
            items = [self._queue.get()]
            while True:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            merged = JournalBatch()
            for item in items:
                if item is not None:
                    merged.extend(item)
            try:
                if merged and self._error is None:
                    self._write(merged)
            except BaseException as exc:  # noqa: BLE001 - raised on the worker
                self._error = exc
            finally:
                for _ in items:
                    self._queue.task_done()
            if any(item is None for item in items):
                return

    def _raise(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def snapshot(self) -> None:
        self._flush()
        if self._process is not None:
            self._process.sync()
        if self._queue is not None:
            self._queue.join()
            self._raise()
        return None

    def close(self) -> None:
        try:
            self._flush()
            if self._process is not None:
                self._process.close()
            if self._queue is not None:
                self._queue.put(None)
                self._thread.join()
                self._raise()
        finally:
            if self._process is not None:
                self._process.kill()
            self._journal.close()


class JournalSink(FixedPartitionedSink[JournalBatch, None]):
    """Write ``(key, JournalBatch)`` items to the journal of one run.

    Parameters
    ----------
    url : str
        SQLAlchemy URL of the journal (``sqlite:///runs/journal.db``,
        ``postgresql+psycopg://...``).
    run_id : str
        Run the rows belong to.
    run_row : dict, optional
        Keyword arguments of :meth:`Journal.upsert_run` (config hash, config and data
        JSON, mode): the run is registered when the partition opens.
    lock_wait_s : float
        Longest time, seconds, a write is retried while the database is locked.
    background : bool
        Commit on a writer thread (see :class:`_JournalPartition`): the live flow's
        worker never waits for the database but at the end of an epoch.
    gather_s : float
        Gather batches for up to this many seconds into one transaction (the replay;
        see :class:`_JournalPartition`); 0 writes each batch at once.
    process : bool
        Commit on a writer process (the replay; an SQLite file only, else ignored; see
        :class:`_JournalPartition`).

    Notes
    -----
    The sink has a single partition, ``"journal"``: whatever the number of workers,
    every item is routed to one worker, so one writer owns the journal tables and each
    Bytewax batch is one transaction. Upstream keys every
    item on ``"journal"``; any key works since there is one partition.

    A write that finds the database locked by another writer (commands issued, another
    process; SQLite says "database is locked" once its busy timeout ran out) is
    retried whole, with exponential backoff and jitter for up to ``lock_wait_s``
    seconds, counted and logged once per episode; any other error stops the flow.

    ``snapshot`` returns None: there is no position to resume from because writes are
    idempotent upserts by natural key (see :class:`~gridflow.journal.store.Journal`).
    After a crash Bytewax replays the input since the last snapshot and the replayed
    rows are ignored by the database, so the journal ends exactly as an uninterrupted
    run would leave it (at-least-once delivery, exactly-once rows).
    """

    def __init__(self, url: str, run_id: str, run_row: dict | None = None,
                 lock_wait_s: float = 30.0, background: bool = False,
                 gather_s: float = 0.0, process: bool = False) -> None:
        self.url = url
        self.background = bool(background)
        self.gather_s = float(gather_s)
        self.process = bool(process)
        self.run_id = run_id
        self.run_row = run_row
        self.lock_wait_s = float(lock_wait_s)

    def list_parts(self) -> list[str]:
        """The single partition, ``["journal"]``, listed by every worker."""
        return [JOURNAL_PART]

    def build_part(
        self, step_id: str, for_part: str, resume_state: None
    ) -> StatefulSinkPartition[JournalBatch, None]:
        """Open the journal for the partition (``resume_state`` is always None)."""
        return _JournalPartition(self.url, self.run_id, self.run_row,
                                 LockRetry("journal sink", max_s=self.lock_wait_s),
                                 background=self.background, gather_s=self.gather_s,
                                 process=self.process)
