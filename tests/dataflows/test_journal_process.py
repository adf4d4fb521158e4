"""The replay's journal writer process (``JournalSink(process=True)``) on real SQLite
files: the same tables as the in-process writer, the same waits, and every failure of
the child (a write error, a lock held past the busy timeout, its death) raised in the
flow; a parent killed leaves the child no reason to stay."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest
from test_journal_sink_retry import RUN_ROW, locked_for
from test_sinks import batch

from gridflow.dataflows.sinks import JournalSink
from gridflow.journal import schema
from gridflow.journal.store import (
    Journal,
    read_equity,
    read_orders,
    read_summaries,
)
from gridflow.journal.writer_process import JournalWriterError, ProcessWriter


def tables(url: str) -> tuple:
    return (read_orders(url, "run"), read_equity(url, "run"), read_summaries(url, "run"))


def sink(path, **kw):
    return JournalSink(f"sqlite:///{path}", "run", run_row=RUN_ROW, **kw).build_part(
        "out", "journal", None)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is gone for our purpose
        return f.read().split(")")[-1].split()[0] != "Z"


def test_the_writer_process_leaves_the_tables_the_in_process_writer_leaves(tmp_path):
    """Repeated batches land once, summaries keep the most candles (the last of a tie),
    in any split; gathering and flushes (every ``PROCESS_FLUSH_RECORDS``) included."""
    sequence = [[batch(0)], [batch(1), batch(2), batch(1)], [batch(5)], [batch(3)],
                [batch(3), batch(4)], [batch(0, "other")], [batch(2)]]
    urls = {}
    for process in (False, True):
        path = tmp_path / f"{process}.db"
        part = sink(path, gather_s=0.2, process=process)
        if process:
            part.PROCESS_FLUSH_RECORDS = 5  # several transactions, as a long replay
            part._flush_records = 5
            assert part._process is not None
        for values in sequence:
            part.write_batch(values)
        part.close()
        urls[process] = f"sqlite:///{path}"
    assert tables(urls[True]) == tables(urls[False])
    assert [s["candles"] for s in read_summaries(urls[True], "run")] == [6, 1]
    assert not (tmp_path / "True.db-wal").exists()  # checkpointed and closed


def test_a_write_error_in_the_child_stops_the_flow_and_rolls_its_transaction_back(
        tmp_path):
    path = tmp_path / "j.db"
    part = sink(path, process=True)
    with sqlite3.connect(path) as con:
        con.execute("DROP TABLE equity")
    part.write_batch([batch(1)])  # orders then equity in one transaction
    with pytest.raises(JournalWriterError, match="no such table: equity"):
        part.snapshot()
    with pytest.raises(JournalWriterError):  # refused from then on, never silent
        part.write_batch([batch(2)])
    pid = part._process.pid
    part.close()  # raised once already: close only stops the child
    assert not alive(pid)
    assert read_orders(f"sqlite:///{path}", "run") == []  # nothing half-written


def test_a_failed_write_keeps_no_lock_and_a_non_ascii_path_is_the_parents_file(tmp_path):
    """An error other than a lock (here a NOT NULL column the journal does not know)
    rolls the transaction back at once: another writer gets the lock right after, not at
    the close. The child opens the file the parent named, by its bytes."""
    path = tmp_path / "é ü" / "jé.db"
    part = sink(path, process=True)
    with sqlite3.connect(path) as con:
        con.execute("DROP TABLE equity")
        con.execute("CREATE TABLE equity (run_id TEXT, account TEXT, ts_ms INTEGER, "
                    "equity REAL, cash REAL, unrealized REAL, used_margin REAL, "
                    "extra TEXT NOT NULL, PRIMARY KEY (run_id, account, ts_ms))")
    part.write_batch([batch(1)])
    with pytest.raises(JournalWriterError, match="NOT NULL constraint failed: equity.extra"):
        part.snapshot()
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # "database is locked" if the child still held it
    other.execute("ROLLBACK")
    other.close()
    part.close()
    assert sorted(p.name for p in path.parent.iterdir() if p.suffix == ".db") == ["jé.db"]


def test_a_lock_is_waited_out_with_the_sinks_retry_bound_and_counted(tmp_path, monkeypatch,
                                                                     caplog):
    """With SQLite's busy handler short, the child retries a locked transaction with the
    sink's LockRetry bound (as the in-process writer does): the rows land once after
    the lock, and the retries are counted and logged on the sink's LockRetry."""
    import logging

    monkeypatch.setattr(schema, "_SQLITE_BUSY_TIMEOUT_MS", 50)
    caplog.set_level(logging.INFO, logger="gridflow.journal.busy")
    path = tmp_path / "j.db"
    part = sink(path, process=True)
    timer = locked_for(path, 1.0)
    try:
        part.write_batch([batch(1), batch(2), batch(1)])
        part.snapshot()
        assert not timer.is_alive()
    finally:
        timer.join()
    part.close()
    assert len(read_orders(f"sqlite:///{path}", "run")) == 4
    assert part.retry.retries >= 1 and part.retry.episodes == 1
    assert "database locked" in caplog.text and "cleared after" in caplog.text


def test_a_lock_held_past_the_retry_bound_is_raised(tmp_path, monkeypatch):
    monkeypatch.setattr(schema, "_SQLITE_BUSY_TIMEOUT_MS", 50)
    path = tmp_path / "j.db"
    part = sink(path, process=True, lock_wait_s=0.3)
    timer = locked_for(path, 1.5)
    try:
        part.write_batch([batch(1)])
        with pytest.raises(JournalWriterError, match="database is locked"):
            part.snapshot()
        assert part.retry.retries >= 1
    finally:
        timer.join()
        part.close()


def test_the_child_ignores_interrupts_and_holds_no_secret(tmp_path, monkeypatch):
    """A Ctrl-C (SIGINT to the process group) or a service stop (SIGTERM) does not end
    the writer before its replay closes it; the child's environment holds none of the
    parent's variables but the locale, PATH and temp dirs."""
    monkeypatch.setenv("GRIDFLOW_TEST_SECRET", "s3cr3t-value")
    path = tmp_path / "j.db"
    part = sink(path, process=True)
    part.write_batch([batch(0)])
    part.snapshot()
    pid = part._process.pid
    with open(f"/proc/{pid}/environ", "rb") as f:
        env = f.read()
    assert b"s3cr3t-value" not in env and b"GRIDFLOW_TEST_SECRET" not in env
    os.kill(pid, signal.SIGINT)
    os.kill(pid, signal.SIGTERM)
    time.sleep(0.2)
    part.write_batch([batch(1)])
    part.close()
    assert len(read_orders(f"sqlite:///{path}", "run")) == 4


def test_a_killed_child_is_raised_at_the_next_write(tmp_path):
    path = tmp_path / "j.db"
    part = sink(path, process=True)
    part.write_batch([batch(0)])
    part.snapshot()
    os.kill(part._process.pid, signal.SIGKILL)
    with pytest.raises(JournalWriterError, match=r"exited \(code -9\)|sending failed"):
        for k in range(1, 200):  # the death is seen by the next write or wait
            part.write_batch([batch(k)])
            part.snapshot()
    part.close()
    assert len(read_orders(f"sqlite:///{path}", "run")) == 2  # what it committed stays


def test_a_killed_parent_leaves_no_child_and_keeps_what_was_committed(tmp_path):
    """SIGKILL of the replay's process: the child reads the end of its input, closes
    the database and exits; the committed rows are there, nothing is half-written."""
    path = tmp_path / "j.db"
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
        from test_sinks import batch
        from gridflow.journal.store import Journal
        from gridflow.journal.writer_process import ProcessWriter
        j = Journal("sqlite:///{path}")
        j.upsert_run("run", "h", "{{}}", "{{}}", "replay")
        w = ProcessWriter(j, "run")
        w.submit(batch(0)); w.sync()
        print(w.pid, flush=True)
        for k in range(1, 100000):
            w.submit(batch(k))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            text=True)
    child = int(proc.stdout.readline())
    time.sleep(0.3)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 20
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)
    orders = read_orders(f"sqlite:///{path}", "run")
    assert len(orders) >= 2 and len(orders) % 2 == 0  # whole batches only
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_only_sqlite_files_get_a_writer_process(tmp_path):
    memory = Journal("sqlite://")
    with pytest.raises(ValueError, match="SQLite file"):
        ProcessWriter(memory, "run")
    part = JournalSink("sqlite://", "run", run_row=RUN_ROW, process=True).build_part(
        "out", "journal", None)
    assert part._process is None  # written in process, as before
    part.write_batch([batch(0)])
    part.close()


def test_a_child_that_cannot_start_leaves_the_writing_in_process(tmp_path, monkeypatch,
                                                                 caplog):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    part = sink(tmp_path / "j.db", process=True)
    assert part._process is None
    assert "could not start" in caplog.text
    part.write_batch([batch(0)])
    part.close()
    assert len(read_orders(f"sqlite:///{tmp_path / 'j.db'}", "run")) == 2


def test_a_writer_dropped_without_close_ends_its_child_after_writing_what_it_got(
        tmp_path):
    """A flow aborted without closing its sink: once the writer is collected the child
    reads the end of its input, commits what it received and exits (no idle process
    per failed replay in a long-lived notebook or app)."""
    import gc

    url = f"sqlite:///{tmp_path / 'j.db'}"
    journal = Journal(url)
    journal.upsert_run(**RUN_ROW)
    writer = ProcessWriter(journal, "run")
    writer.submit(batch(0))
    writer.sync()
    writer.submit(batch(1))  # never waited for
    pid = writer.pid
    del writer
    gc.collect()
    deadline = time.monotonic() + 20
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)
    assert len(read_orders(url, "run")) == 4
    journal.close()
