"""The journal writer process: SQLite inserts of a replay's journal on a core of their own.

Run by :class:`gridflow.journal.writer_process.ProcessWriter` as
``python -I -S <this file>``: a script of the standard library only, so it starts in a
few milliseconds (no site-packages, no gridflow package import). It never decides what
is written: the parent opens the journal (tables, columns, run row; the one schema rule
of :mod:`gridflow.journal.schema`), builds every row tuple with the journal's own
:class:`~gridflow.journal.store.RawInsert` and sends, over stdin, pickled messages:

* ``("open", path, pragmas, statements)``: connect to the SQLite file ``path``, run the
  ``pragmas`` (the engine's own), keep ``statements`` (table -> INSERT SQL);
* ``("write", seq, [(table, rows), ...])``: one ``BEGIN IMMEDIATE`` .. ``COMMIT``
  transaction of ``executemany`` per table, in order;
* ``("sync", seq)``: answered once every message before it is done;
* ``("close", seq)``: close the connection (SQLite checkpoints the WAL) and exit.

Each message is answered on stdout, in order, with a pickled ``("ok", seq, rows)`` or
``("error", seq, text)``; after an error the later writes are refused (answered with the
same error), so the parent sees the first failure however many writes were in flight.
End of input without ``close`` (the parent died) closes the connection and exits: what
was committed stays, an unfinished transaction is rolled back by SQLite.
"""

from __future__ import annotations

import pickle
import sqlite3
import sys


def _reply(out, message) -> None:
    out.write(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
    out.flush()


def serve(inp, out) -> int:
    """Answer the parent's messages until ``close`` or end of input; the exit code."""
    try:
        kind, path, pragmas, statements = pickle.load(inp)
    except EOFError:
        return 0
    if kind != "open":
        _reply(out, ("error", 0, f"expected open, got {kind!r}"))
        return 2
    con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    failed = None
    try:
        for sql in pragmas:
            con.execute(sql)
        _reply(out, ("ok", 0, 0))
        while True:
            try:
                message = pickle.load(inp)
            except EOFError:
                return 0
            kind, seq = message[0], message[1]
            if kind == "close":
                con.close()
                _reply(out, ("ok", seq, 0))
                return 0
            if failed is not None:
                _reply(out, ("error", seq, failed))
                continue
            if kind == "sync":
                _reply(out, ("ok", seq, 0))
                continue
            n = 0
            try:
                con.execute("BEGIN IMMEDIATE")
                for table, rows in message[2]:
                    con.executemany(statements[table], rows)
                    n += len(rows)
                con.execute("COMMIT")
            except Exception as exc:  # noqa: BLE001 - reported to the parent
                if con.in_transaction:
                    con.execute("ROLLBACK")
                failed = f"{type(exc).__name__}: {exc}"
                _reply(out, ("error", seq, failed))
                continue
            _reply(out, ("ok", seq, n))
    finally:
        con.close()


if __name__ == "__main__":
    sys.exit(serve(sys.stdin.buffer, sys.stdout.buffer))
