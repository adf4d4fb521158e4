"""Bytewax sinks of gridflow.

:class:`JournalSink` writes :class:`~gridflow.chunks.JournalBatch` items to the
journal (:class:`gridflow.journal.store.Journal`), retrying while another writer holds
the database lock (:class:`gridflow.journal.busy.LockRetry`).
"""

from __future__ import annotations

from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from gridflow.chunks import JournalBatch
from gridflow.journal.busy import LockRetry
from gridflow.journal.store import Journal

JOURNAL_PART = "journal"


class _JournalPartition(StatefulSinkPartition[JournalBatch, None]):
    """The one writer of the journal: one transaction per Bytewax batch, retried while
    the database is locked (``self.retry.retries`` counts the retries)."""

    def __init__(self, url: str, run_id: str, run_row: dict | None,
                 retry: LockRetry | None = None) -> None:
        self.retry = retry if retry is not None else LockRetry("journal sink")
        self._journal = Journal(url)
        self._run_id = run_id
        if run_row is not None:
            self.retry(self._journal.upsert_run, **run_row)

    def write_batch(self, values: list[JournalBatch]) -> None:
        # Bytewax strips the routing key: ``values`` are the batches themselves.
        merged = JournalBatch()
        for batch in values:
            merged.extend(batch)
        if merged:  # a write is idempotent: a retried one lands once
            self.retry(self._journal.write, self._run_id, merged)

    def snapshot(self) -> None:
        return None

    def close(self) -> None:
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
                 lock_wait_s: float = 30.0) -> None:
        self.url = url
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
                                 LockRetry("journal sink", max_s=self.lock_wait_s))
