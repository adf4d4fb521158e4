"""The journal sink waits out a real SQLite lock held by another connection."""

from __future__ import annotations

import logging
import sqlite3
import threading

import pytest
from sqlalchemy.exc import OperationalError
from test_sinks import batch

from gridflow.dataflows.sinks import JournalSink
from gridflow.journal import schema
from gridflow.journal.busy import LockRetry, is_locked
from gridflow.journal.store import read_equity, read_orders

RUN_ROW = {"run_id": "run", "config_hash": "h", "config_json": "{}", "data_json": "{}",
           "mode": "replay"}


def locked_for(path, seconds: float) -> threading.Timer:
    """Another connection takes the write lock now (``BEGIN EXCLUSIVE`` with a row of
    its own) and commits after ``seconds``; returns the started timer."""
    con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    con.execute("BEGIN EXCLUSIVE")
    con.execute("INSERT INTO runs VALUES ('other', 'h', '{}', '{}', 'replay', 0)")

    def release() -> None:
        con.execute("COMMIT")
        con.close()

    timer = threading.Timer(seconds, release)
    timer.start()
    return timer


@pytest.mark.parametrize("busy_timeout_ms", [0, 30_000], ids=["lock-reported", "busy-wait"])
def test_a_write_during_a_lock_lands_once_after_it(tmp_path, monkeypatch, caplog,
                                                   busy_timeout_ms) -> None:
    """With SQLite's busy handler off the lock error reaches the sink, which retries
    with backoff; with it on (the default 30 s) SQLite waits itself. Either way the
    batch lands after the lock is released, once."""
    monkeypatch.setattr(schema, "_SQLITE_BUSY_TIMEOUT_MS", busy_timeout_ms)
    path = tmp_path / "j.db"
    part = JournalSink(f"sqlite:///{path}", "run", run_row=RUN_ROW).build_part(
        "out", "journal", None)
    part.write_batch([batch(0)])
    caplog.set_level(logging.INFO, logger="gridflow.journal.busy")
    timer = locked_for(path, 1.0)
    part.write_batch([batch(1), batch(2), batch(1)])  # blocks until the lock is gone
    assert not timer.is_alive()  # the write could only land after the release
    timer.join()
    part.close()
    url = f"sqlite:///{path}"
    orders = read_orders(url, "run")
    assert sorted(o["client_order_id"] for o in orders) == sorted(
        f"acc-{k}-{lvl}" for k in range(3) for lvl in range(2))
    assert len(read_equity(url, "run")) == 3
    with sqlite3.connect(path) as con:  # the other writer's row is there too
        assert con.execute("SELECT count(*) FROM runs").fetchone() == (2,)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    if busy_timeout_ms == 0:
        assert part.retry.retries >= 2 and part.retry.episodes == 1
        assert len(warnings) == 1 and "database locked" in warnings[0].getMessage()
        assert "cleared after" in caplog.records[-1].getMessage()
    else:
        assert part.retry.retries == 0 and not warnings


def test_a_lock_longer_than_the_bound_raises(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(schema, "_SQLITE_BUSY_TIMEOUT_MS", 0)
    path = tmp_path / "j.db"
    part = JournalSink(f"sqlite:///{path}", "run", run_row=RUN_ROW,
                       lock_wait_s=0.3).build_part("out", "journal", None)
    timer = locked_for(path, 2.0)
    try:
        with pytest.raises(OperationalError) as err:
            part.write_batch([batch(1)])
        assert is_locked(err.value) and part.retry.retries >= 1
    finally:
        timer.join()
    part.write_batch([batch(1)])  # the next batch after the lock: written
    assert len(read_orders(f"sqlite:///{path}", "run")) == 2
    part.close()


def test_other_errors_are_not_retried(tmp_path) -> None:
    path = tmp_path / "j.db"
    part = JournalSink(f"sqlite:///{path}", "run", run_row=RUN_ROW).build_part(
        "out", "journal", None)
    with sqlite3.connect(path) as con:
        con.execute("DROP TABLE orders")
    with pytest.raises(OperationalError, match="no such table"):
        part.write_batch([batch(1)])
    assert part.retry.retries == 0
    part.close()


def test_lock_retry_counts_episodes_and_gives_back_the_result() -> None:
    calls = []

    def flaky(n: int) -> str:
        calls.append(n)
        if len(calls) < 3:
            raise OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
        return "done"

    retry = LockRetry("test", sleep=lambda s: None)
    assert retry(flaky, 7) == "done" and calls == [7, 7, 7]
    assert (retry.retries, retry.episodes) == (2, 1)
    assert retry(lambda: 1) == 1 and retry.episodes == 1
    with pytest.raises(ValueError):
        retry(lambda: (_ for _ in ()).throw(ValueError("not a lock")))


@pytest.mark.parametrize("mode", [{"background": True}, {"process": True}],
                         ids=["thread", "process"])
def test_a_background_sink_queues_while_locked_and_an_epoch_end_waits_for_the_rows(
        tmp_path, mode) -> None:
    """``background=True`` (the live flow) and ``process=True`` (the replay's writer
    process): a batch written while another connection holds the lock is queued and
    the worker goes on; the end of the epoch (``snapshot``) returns only once every
    queued batch is committed, merged batches included, each row once."""
    path = tmp_path / "j.db"
    part = JournalSink(f"sqlite:///{path}", "run", run_row=RUN_ROW,
                       **mode).build_part("out", "journal", None)
    try:
        part.write_batch([batch(0)])
        part.snapshot()
        timer = locked_for(path, 1.0)
        for k in (1, 2, 1, 3):
            part.write_batch([batch(k)])
        assert timer.is_alive()  # the worker did not wait for the lock
        part.snapshot()
        assert not timer.is_alive()  # ... the epoch's end did
        timer.join()
        orders = read_orders(f"sqlite:///{path}", "run")
        assert sorted(o["client_order_id"] for o in orders) == sorted(
            f"acc-{k}-{lvl}" for k in range(4) for lvl in range(2))
    finally:
        part.close()


def test_a_background_write_error_is_raised_on_the_worker(tmp_path) -> None:
    path = tmp_path / "j.db"
    part = JournalSink(f"sqlite:///{path}", "run", run_row=RUN_ROW,
                       background=True).build_part("out", "journal", None)
    with sqlite3.connect(path) as con:
        con.execute("DROP TABLE orders")
    part.write_batch([batch(1)])  # queued: the error comes from the writer thread
    with pytest.raises(OperationalError, match="no such table"):
        part.snapshot()
    part.close()
