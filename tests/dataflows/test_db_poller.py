"""Journal reads off the Bytewax worker thread (gridflow.dataflows.db_poller): the
command and outcome sources in background mode on a real SQLite journal read what the
synchronous ones read, in order, resume exactly, end with the run, and wake at once on
the broker's notification."""

from __future__ import annotations

import threading
import time

import pytest

from gridflow.chunks import JournalBatch
from gridflow.dataflows.command_source import CommandSource
from gridflow.dataflows.db_poller import BackgroundReader, notify, outcomes_key
from gridflow.dataflows.outcome_source import OutcomeSource
from gridflow.events import AccountSummary, OrderOutcome, OutcomesReplayed
from gridflow.journal.broker_rows import broker_finish
from gridflow.journal.commands import issue_command
from gridflow.journal.store import Journal


def outcome(n: int, status: str = "sent") -> OrderOutcome:
    return OrderOutcome(intent_id=f"gf{n}:place", client_order_id=f"gf{n}", action="place",
                        account="a", symbol="BTC/USDT", tag="SL", status=status,
                        ts_ms=1_000 + n)


def until(part, n: int, deadline_s: float = 20.0) -> list:
    """``next_batch`` until ``n`` items came (or the deadline: then what came)."""
    got: list = []
    end = time.monotonic() + deadline_s
    while len(got) < n and time.monotonic() < end:
        got += part.next_batch()
        time.sleep(0.002)
    return got


def test_reader_hands_over_results_in_order_and_raises_its_error_after_them() -> None:
    calls = iter([1, 2, 3])

    def read() -> int:
        try:
            return next(calls)
        except StopIteration:
            raise RuntimeError("journal gone") from None

    r = BackgroundReader(read, 0.0, "test-reader")
    got: list[int] = []
    with pytest.raises(RuntimeError, match="journal gone"):
        end = time.monotonic() + 20
        while time.monotonic() < end:
            got += r.take()
            time.sleep(0.001)
    assert got == [1, 2, 3]
    r.close()
    with pytest.raises(ValueError):
        BackgroundReader(read, -1.0, "bad")


def test_a_notification_starts_a_read_long_before_the_poll_is_due() -> None:
    reads = threading.Semaphore(0)
    r = BackgroundReader(lambda: reads.release(), 3600.0, "test-reader", wake_on="k1")
    assert reads.acquire(timeout=10)  # the first read, at once
    notify("other-key")
    assert not reads.acquire(timeout=0.2)  # another key wakes nothing; no poll due
    notify("k1")
    assert reads.acquire(timeout=10)
    r.close()
    notify("k1")  # nobody listens any more: a no-op
    assert not reads.acquire(timeout=0.2)


def test_background_outcomes_arrive_on_notify_once_each_and_resume_exactly(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'j.db'}"
    broker_finish(url, "r", outcome(1))
    # a safety poll of an hour: only the first read and the notifications read
    src = OutcomeSource(url, "r", poll_s=3600.0, until_run_complete=False,
                        accounts={"a": 1}, background=True)
    part = src.build_part("broker_outcomes", "broker_outcomes", None)
    try:
        first = until(part, 2)
        assert first == [outcome(1), OutcomesReplayed(account="a")]
        for n in (2, 3):
            broker_finish(url, "r", outcome(n).model_copy(update={"ts_ms": 5_000 + n}))
        notify(outcomes_key("r"))
        assert [o.client_order_id for o in until(part, 2)] == ["gf2", "gf3"]
        state = part.snapshot()
    finally:
        part.close()
    assert state == {"gf1:place", "gf2:place", "gf3:place"}
    broker_finish(url, "r", outcome(4, "canceled").model_copy(update={"ts_ms": 6_000}))
    resumed = src.build_part("broker_outcomes", "broker_outcomes", state)
    try:
        again = until(resumed, 2)
    finally:
        resumed.close()
    assert [(o.client_order_id, o.status) for o in again[:1]] == [("gf4", "canceled")]
    assert again[1:] == [OutcomesReplayed(account="a")]


def test_background_commands_in_order_then_the_end_of_the_run(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'j.db'}"
    with Journal(url) as j:
        j.upsert_run("run", "h", "{}", "{}", "replay")
    src = CommandSource(url, {"t"}, poll_s=0.01, until_run_complete="run", background=True)
    part = src.build_part("commands", "commands", None)
    try:
        ids = [issue_command(url, "t", "pause", {}, "u") for _ in range(3)]
        ids.append(issue_command(url, "nobody", "pause", {}, "u"))  # rejected, once
        got = until(part, 4)
        assert [x[0] for x in got] == ["command", "command", "command", "rejected"]
        assert [x[1].command_id for x in got[:3]] == ids[:3]
        assert part.snapshot()["seq"] > 0 and part.rejected == 1
        done = AccountSummary(account="t", candles=1, last_ts_ms=0, initial_capital=1.0,
                              equity=1.0, cash=1.0, fees_paid=0.0, realized_pnl=0.0,
                              complete=True)
        with Journal(url) as j:
            j.write("run", JournalBatch(summaries=[done]))
        with pytest.raises(StopIteration):
            end = time.monotonic() + 20
            while time.monotonic() < end:
                assert part.next_batch() == []
                time.sleep(0.005)
    finally:
        part.close()
