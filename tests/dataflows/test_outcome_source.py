"""The broker-outcome source on a real SQLite journal: each terminal outcome once, the
replay marker after the first read, and a resume that neither loses nor repeats one."""

from __future__ import annotations

from gridflow.dataflows.outcome_source import OutcomeSource
from gridflow.events import OrderOutcome, OutcomesReplayed
from gridflow.journal.broker_rows import broker_begin, broker_finish


def outcome(n: int, status: str, account: str = "a") -> OrderOutcome:
    return OrderOutcome(intent_id=f"gf{n}:place", client_order_id=f"gf{n}", action="place",
                        account=account, symbol="BTC/USDT", tag="SL", status=status,
                        ts_ms=1_000 + n)


def test_terminal_outcomes_once_then_one_marker_per_account_and_an_exact_resume(tmp_path):
    url = f"sqlite:///{tmp_path / 'j.db'}"
    broker_begin(url, "r", outcome(1, "sending"))
    broker_finish(url, "r", outcome(1, "sent"))
    broker_begin(url, "r", outcome(2, "sending", "b"))  # in flight: not yet an outcome
    src = OutcomeSource(url, "r", poll_s=0.0, until_run_complete=False, accounts={"b": 1, "a": 2})
    part = src.build_part("broker_outcomes", "broker_outcomes", None)
    first = part.next_batch()
    assert [(o.client_order_id, o.status) for o in first[:1]] == [("gf1", "sent")]
    assert first[1:] == [OutcomesReplayed(account="a"), OutcomesReplayed(account="b")]
    assert part.next_batch() == []  # nothing new, and the markers only once
    broker_finish(url, "r", outcome(2, "rejected", "b"))
    state = part.snapshot()
    resumed = src.build_part("broker_outcomes", "broker_outcomes", state)
    again = resumed.next_batch()
    # after a resume: only what was not emitted before, then the markers again
    assert [(o.client_order_id, o.status) for o in again[:1]] == [("gf2", "rejected")]
    assert again[1:] == [OutcomesReplayed(account="a"), OutcomesReplayed(account="b")]


def test_polls_read_recent_outcomes_and_a_whole_read_catches_a_late_one(tmp_path, monkeypatch):
    """After the first (whole) read a poll reads only the rows of the last minute of
    outcome time; an outcome committed with an older time is caught by the next whole
    read (every FULL_READ_S)."""
    import gridflow.journal.broker_rows as rows_mod
    from gridflow.dataflows import outcome_source as mod

    url = f"sqlite:///{tmp_path / 'j.db'}"
    t0 = 1_700_000_000_000
    for n in range(3):
        broker_finish(url, "r", outcome(n, "sent").model_copy(update={"ts_ms": t0 + n}))
    calls = []
    real_read, real_ids = rows_mod.read_broker, rows_mod.broker_ids
    monkeypatch.setattr(rows_mod, "read_broker", lambda *a, **kw: calls.append(
        ("rows", kw.get("intent_ids"))) or real_read(*a, **kw))
    monkeypatch.setattr(rows_mod, "broker_ids", lambda url, run, since, st: calls.append(
        ("ids", since)) or real_ids(url, run, since, st))
    part = OutcomeSource(url, "r", poll_s=0.0, until_run_complete=False).build_part(
        "broker_outcomes", "broker_outcomes", None)
    assert [o.client_order_id for o in part.next_batch()] == ["gf0", "gf1", "gf2"]
    broker_finish(url, "r", outcome(3, "sent").model_copy(update={"ts_ms": t0 + 10}))
    assert [o.client_order_id for o in part.next_batch()] == ["gf3"]
    # the whole table once; then the ids of the last moments, and only the new rows
    assert calls == [("rows", None), ("ids", t0 + 2 - mod.SLACK_MS), ("rows", ["gf3:place"])]
    late = outcome(4, "canceled").model_copy(update={"ts_ms": t0 - 2 * mod.SLACK_MS})
    broker_finish(url, "r", late)
    assert part.next_batch() == []  # older than the poll's window
    part._next_full = 0.0  # FULL_READ_S passed
    assert [o.client_order_id for o in part.next_batch()] == ["gf4"]
    assert calls[-1] == ("rows", None)
