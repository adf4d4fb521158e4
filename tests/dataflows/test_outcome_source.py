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
