"""Openers of one new journal at the same moment (the threads of a flow's sinks and
sources, another process) all get it: ``create_all`` checks, then creates, and the
second ``CREATE TABLE`` of a race used to fail the flow (``table sweeps already
exists``, seen in a CI run of the README's recovery block)."""

from __future__ import annotations

import subprocess
import sys
import threading

from sqlalchemy import inspect

from gridflow.journal.store import open_store


def test_threads_opening_a_new_journal_together_all_get_it(tmp_path):
    for k in range(8):
        url = f"sqlite:///{tmp_path / f'j{k}.db'}"
        go, errors, engines = threading.Barrier(6), [], []

        def one() -> None:
            go.wait()
            try:
                engines.append(open_store(url))
            except Exception as exc:  # noqa: BLE001 - collected, asserted below
                errors.append(exc)

        threads = [threading.Thread(target=one) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert {"sweeps", "orders", "broker_outcomes"} <= set(
            inspect(engines[0]).get_table_names())
        for e in engines:
            e.dispose()


def test_processes_opening_a_new_journal_together_all_get_it(tmp_path):
    code = ("import sys; from gridflow.journal.store import open_store; "
            "open_store(sys.argv[1]).dispose()")
    for k in range(4):
        url = f"sqlite:///{tmp_path / f'p{k}.db'}"
        procs = [subprocess.Popen([sys.executable, "-c", code, url],
                                  stderr=subprocess.PIPE, text=True) for _ in range(3)]
        results = [(p.wait(), p.stderr.read()) for p in procs]
        assert [r for r, _ in results] == [0, 0, 0], [e[-500:] for _, e in results]


def test_a_new_journal_is_created_in_one_transaction(tmp_path):
    """Every CREATE of a new SQLite journal commits once, together: the driver would
    otherwise commit each DDL statement on its own, each waiting for the disk
    (``synchronous=FULL``), and a journal whose opener died midway would lack tables."""
    from sqlalchemy import Engine, event

    statements: list[str] = []

    def trace(dbapi_conn, _record) -> None:
        dbapi_conn.set_trace_callback(statements.append)

    event.listen(Engine, "connect", trace)
    try:
        engine = open_store(f"sqlite:///{tmp_path / 'new.db'}")
    finally:
        event.remove(Engine, "connect", trace)
    creates = [s for s in statements if s.lstrip().upper().startswith("CREATE")]
    first, last = statements.index(creates[0]), statements.index(creates[-1])
    assert len(creates) >= 10
    assert any(s.startswith("BEGIN") for s in statements[:first])
    assert not any(s.strip().upper().startswith("COMMIT") for s in statements[first:last])
    assert any(s.strip().upper().startswith("COMMIT") for s in statements[last:])
    engine.dispose()


WRITER = """
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
c.execute("PRAGMA journal_mode=WAL")
c.execute("CREATE TABLE IF NOT EXISTS busy (a)")
print("ready", flush=True)
end = time.time() + 60
while time.time() < end:
    c.execute("BEGIN IMMEDIATE"); c.execute("INSERT INTO busy VALUES (1)"); c.execute("COMMIT")
    time.sleep(0.002)
"""


def test_a_journal_upgraded_while_another_process_writes_opens(tmp_path):
    """An existing journal that lacks a table (an upgrade adds one) opens while another
    process commits every 2 ms: the opener takes the write lock before it reads the
    schema and waits its turn. A deferred transaction that read, then wrote, failed at
    once ('database is locked') when the other had committed meanwhile."""
    import sqlite3

    db = tmp_path / "j.db"
    open_store(f"sqlite:///{db}").dispose()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready"
        for _ in range(30):
            c = sqlite3.connect(db, timeout=30)
            c.execute("DROP TABLE IF EXISTS names")
            c.commit()
            c.close()
            engine = open_store(f"sqlite:///{db}")
            assert "names" in inspect(engine).get_table_names()
            engine.dispose()
    finally:
        writer.kill()
        writer.wait()
