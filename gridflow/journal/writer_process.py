"""A replay's journal inserts on a process of their own (SQLite files).

SQLite runs an insert in C but Python's ``sqlite3`` binds each row's parameters and
takes the GIL back between rows, so a writer *thread* cannot overlap a CPU-bound replay:
measured, it made the replay slower. :class:`ProcessWriter` hands the row tuples (built
by the journal's own :class:`~gridflow.journal.store.RawInsert`, the rule every path
shares) to a child process, :mod:`gridflow.journal._sqlite_writer_child`, that commits
them while the replay goes on; the parent's share of a write is building the tuples and
pickling them.

Ordering and durability are those of the in-process writer: writes are committed in the
order they were submitted, one transaction each, and :meth:`ProcessWriter.sync` returns
once everything submitted before it is committed (the sink calls it at a Bytewax
snapshot, before announcing a completed account, and at close). An error in the child
(a constraint, a disk full, a lock held past SQLite's busy timeout) is raised in the
parent at its next call, as :class:`JournalWriterError`; so is the child's death.
"""

from __future__ import annotations

import os
import pickle
import queue
import subprocess
import sys
import threading
import weakref
from pathlib import Path
from typing import Any

from gridflow.chunks import JournalBatch
from gridflow.journal.busy import LOCK_MARKERS, LockRetry
from gridflow.journal.schema import sqlite_pragmas
from gridflow.journal.store import Journal

__all__ = ["CHILD_SCRIPT", "JournalWriterError", "ProcessWriter"]

#: The child's script (standard library only; run with ``python -I -S``).
CHILD_SCRIPT = Path(__file__).with_name("_sqlite_writer_child.py")

#: The only environment variables the child gets (it needs none of the parent's: no
#: exchange key, Apprise URL or database password reaches it; SQLite reads the temp dirs).
CHILD_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "LOCPATH", "TMPDIR", "SQLITE_TMPDIR",
             "SYSTEMROOT", "TMP", "TEMP")


class JournalWriterError(RuntimeError):
    """The journal writer process failed a write, or exited before it was closed."""


class ProcessWriter:
    """Commit journal batches of one run on a child process.

    Parameters
    ----------
    journal : Journal
        An open journal on an SQLite *file* (tables created, run registered by the
        caller: the schema and the run row stay with the parent).
    run_id : str
        Run the rows belong to.
    retry : LockRetry, optional
        The bound of a write while another writer holds the lock: the child retries a
        locked transaction with its ``max_s`` / ``first_s`` / ``cap_s``, and the retries
        it made are counted and logged on it (:meth:`LockRetry.note`).

    Raises
    ------
    ValueError
        If ``journal`` is not on an SQLite file (memory databases and PostgreSQL are
        written in process).
    OSError
        If the child process cannot be started.
    """

    def __init__(self, journal: Journal, run_id: str, retry: LockRetry | None = None) -> None:
        path = journal.sqlite_file()
        if path is None:
            raise ValueError("a writer process needs an SQLite file (not an in-memory "
                             "database or PostgreSQL)")
        retry = retry if retry is not None else LockRetry("journal writer process")
        self._journal = journal
        self._run_id = run_id
        self._reported = False
        self._closed = False
        env = {k: v for k in CHILD_ENV if (v := os.environ.get(k)) is not None}
        # a process group of its own: a terminal's Ctrl-C never reaches it, even before
        # its own handlers are set (it also ignores SIGINT and SIGTERM)
        self._proc = subprocess.Popen([sys.executable, "-I", "-S", str(CHILD_SCRIPT)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                      process_group=0)
        # the threads share this, not the writer: a writer dropped without close (a
        # flow aborted) is collected, and its finalizer ends the child's input
        self._state = _Shared(self._proc, retry)
        bound = (retry.max_s, retry.first_s, retry.cap_s, LOCK_MARKERS)
        self._state.out.put(pickle.dumps(
            ("open", os.fsencode(path), sqlite_pragmas(), journal.insert_sql(), bound),
            protocol=pickle.HIGHEST_PROTOCOL))
        for target, name in ((_send, "journal-process-send"), (_read, "journal-process-read")):
            threading.Thread(target=target, args=(self._state,), name=name, daemon=True).start()
        self._finalizer = weakref.finalize(self, self._state.out.put, None)

    # -- parent API -------------------------------------------------------------------

    def submit(self, batch: JournalBatch) -> int:
        """Queue ``batch`` as one transaction; returns the rows sent.

        Raises
        ------
        JournalWriterError
            If an earlier write failed or the child exited.
        """
        self._raise()
        rows = self._journal.rows(self._run_id, batch)
        if not rows:
            return 0
        self._put("write", rows)
        return sum(len(r) for _t, r in rows)

    def sync(self, timeout_s: float | None = None) -> None:
        """Wait until every write submitted so far is committed.

        Raises
        ------
        JournalWriterError
            If a write failed, the child exited, or ``timeout_s`` passed.
        """
        self._wait(self._put("sync"), timeout_s)

    def close(self, timeout_s: float | None = None) -> None:
        """Commit what is queued, close the child's connection (checkpointing the WAL)
        and wait for the child to exit. Without ``timeout_s`` the wait is the child's
        own: each of its writes is bounded by the lock retry, and its death is seen at
        once.

        Raises
        ------
        JournalWriterError
            If a write failed, the child exited early, or ``timeout_s`` passed.
        """
        if self._closed:
            return
        try:
            if not self._reported:  # else the failure was raised already: only stop
                self._wait(self._put("close"), timeout_s)
        finally:
            self._stop(grace_s=5.0)

    def kill(self) -> None:
        """Stop the child at once (what it committed stays) and the sending thread."""
        self._stop(grace_s=0.0)

    def _stop(self, grace_s: float) -> None:
        """End the child's input (once), wait up to ``grace_s`` for it to exit, then
        kill it."""
        if not self._closed:
            self._closed = True
            self._state.out.put(None)
        try:
            self._proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self._proc.pid

    # -- internals --------------------------------------------------------------------

    def _put(self, kind: str, payload: Any = None) -> int:
        if self._closed:
            raise JournalWriterError("journal writer process is closed")
        st = self._state
        st.seq += 1
        message = (kind, st.seq) if payload is None else (kind, st.seq, payload)
        st.out.put(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        return st.seq

    def _wait(self, seq: int, timeout_s: float | None) -> None:
        st = self._state
        with st.cond:
            done = st.cond.wait_for(lambda: st.done >= seq or st.error is not None, timeout_s)
        self._raise()
        if not done:
            raise JournalWriterError(f"journal writer process: no answer in {timeout_s} s")

    def _raise(self) -> None:
        if self._state.error is not None:
            self._reported = True
            raise JournalWriterError(self._state.error)


class _Shared:
    """What the writer and its two threads share: the outgoing queue, the last message
    sent (``seq``) and answered (``done``), the first failure."""

    def __init__(self, proc: subprocess.Popen, retry: LockRetry) -> None:
        self.proc = proc
        self.retry = retry
        # unbounded: the child inserts a row in ~3 us, the replay makes one in ~20 us
        self.out: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.cond = threading.Condition()
        self.seq = 0
        self.done = -1
        self.error: str | None = None

    def fail(self, text: str) -> None:
        with self.cond:
            if self.error is None:
                self.error = text
            self.cond.notify_all()


def _send(st: _Shared) -> None:
    """The sending thread: queued messages to the child's stdin until ``None``."""
    stdin = st.proc.stdin
    assert stdin is not None
    try:
        while (data := st.out.get()) is not None:
            stdin.write(data)
            stdin.flush()
    except (BrokenPipeError, OSError, ValueError) as exc:
        st.fail(f"journal writer process: sending failed ({exc!r})")
    finally:
        try:
            stdin.close()
        except OSError:
            pass


def _read(st: _Shared) -> None:
    """The reading thread: the child's answers, in order, until it exits."""
    stdout = st.proc.stdout
    assert stdout is not None
    while True:
        try:
            status, seq, detail, retried, waited_s = pickle.load(stdout)
        except (EOFError, OSError, pickle.UnpicklingError):
            code = st.proc.wait()
            if st.done < st.seq:
                st.fail(f"journal writer process exited (code {code}) "
                        f"before its writes were committed")
            with st.cond:
                st.cond.notify_all()
            stdout.close()
            return
        st.retry.note(retried, waited_s, cleared=status == "ok")
        if status == "error":
            st.fail(f"journal writer process: write {seq} failed: {detail}")
            continue
        with st.cond:
            st.done = seq
            st.cond.notify_all()
