"""The journal writer process: SQLite inserts of a replay's journal on a core of their own.

Run by :class:`gridflow.journal.writer_process.ProcessWriter` as
``python -I -S <this file>``: a script of the standard library only, so it starts in a
few milliseconds (no site-packages, no gridflow package import). It never decides what
is written: the parent opens the journal (tables, columns, run row; the one schema rule
of :mod:`gridflow.journal.schema`), builds every row tuple with the journal's own
:class:`~gridflow.journal.store.RawInsert` and sends, over stdin, pickled messages:

* ``("open", path, pragmas, statements, retry)``: connect to the SQLite file ``path``
  (bytes: the parent's file-system encoding of it, whatever the child's locale),
  run the ``pragmas`` (the engine's own), keep ``statements`` (table -> INSERT SQL) and
  ``retry`` = ``(max_s, first_s, cap_s, markers)``, the parent's
  :class:`~gridflow.journal.busy.LockRetry` bound and lock texts;
* ``("write", seq, [(table, rows), ...])``: one ``BEGIN IMMEDIATE`` .. ``COMMIT``
  transaction of ``executemany`` per table, in order. Any error rolls it back; a lock
  error (one of ``markers``, once SQLite's busy timeout ran out) tries it again after a
  random wait in ``[0, min(cap_s, first_s * 2**(k-1))]`` before retry ``k`` (1-based),
  for up to ``max_s`` seconds: the wait of ``LockRetry``, which the in-process writer
  uses;
* ``("sync", seq)``: answered once every message before it is done;
* ``("close", seq)``: close the connection (SQLite checkpoints the WAL) and exit.

Each message is answered on stdout, in order, with a pickled ``("ok", seq, rows,
retries, waited_s)`` or ``("error", seq, text, retries, waited_s)``; after an error the
later writes are refused (answered with the same error), so the parent sees the first
failure however many writes were in flight. End of input without ``close`` (the parent
died, or dropped the writer) commits nothing more, closes the connection and exits: what
was committed stays, an unfinished transaction is rolled back by SQLite. SIGINT and
SIGTERM are ignored, as by the live flow's other children: a Ctrl-C or a service stop
reaches the whole process group, and the writer must end when its replay closes it, with
every row it was given.
"""

from __future__ import annotations

import pickle
import random
import signal
import sqlite3
import sys
import time


def _reply(out, message) -> None:
    out.write(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
    out.flush()


def _commit(con, statements: dict, tables: list, retry: tuple, tries: list) -> int:
    """One transaction of ``tables`` (its row count), tried again while the database is
    locked; ``tries[0]`` counts the retries. Raises the last error otherwise."""
    max_s, first_s, cap_s, markers = retry
    t0 = time.monotonic()
    k = 0
    while True:
        try:
            n = 0
            con.execute("BEGIN IMMEDIATE")
            for table, rows in tables:
                con.executemany(statements[table], rows)
                n += len(rows)
            con.execute("COMMIT")
            return n
        except Exception as exc:
            if con.in_transaction:  # never keep the write lock past a failed write
                con.execute("ROLLBACK")
            text = str(exc).lower()
            if (not isinstance(exc, sqlite3.OperationalError)
                    or not any(m in text for m in markers) or time.monotonic() - t0 >= max_s):
                raise
            k += 1
            tries[0] = k
            time.sleep(random.uniform(0.0, min(cap_s, first_s * 2 ** (k - 1))))


def serve(inp, out) -> int:
    """Answer the parent's messages until ``close`` or end of input; the exit code."""
    try:
        kind, path, pragmas, statements, retry = pickle.load(inp)
    except EOFError:
        return 0
    if kind != "open":
        _reply(out, ("error", 0, f"expected open, got {kind!r}", 0, 0.0))
        return 2
    con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    failed = None
    try:
        for sql in pragmas:
            con.execute(sql)
        _reply(out, ("ok", 0, 0, 0, 0.0))
        while True:
            try:
                message = pickle.load(inp)
            except EOFError:
                return 0
            kind, seq = message[0], message[1]
            if kind == "close":
                con.close()
                _reply(out, ("ok", seq, 0, 0, 0.0))
                return 0
            if failed is not None:
                _reply(out, ("error", seq, failed, 0, 0.0))
                continue
            if kind == "sync":
                _reply(out, ("ok", seq, 0, 0, 0.0))
                continue
            t0, tries = time.monotonic(), [0]
            try:
                n = _commit(con, statements, message[2], retry, tries)
            except Exception as exc:  # noqa: BLE001 - reported to the parent
                failed = f"{type(exc).__name__}: {exc}"
                _reply(out, ("error", seq, failed, tries[0], time.monotonic() - t0))
                continue
            _reply(out, ("ok", seq, n, tries[0], time.monotonic() - t0))
    finally:
        con.close()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(serve(sys.stdin.buffer, sys.stdout.buffer))
