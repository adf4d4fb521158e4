"""JournalSink inside real Bytewax flows, writing to a real SQLite file."""

from __future__ import annotations

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource, cluster_main, run_main

from gridflow.chunks import JournalBatch
from gridflow.control.report import journal_lines
from gridflow.dataflows.sinks import JournalSink
from gridflow.events import AccountSummary, EquitySnapshot, OrderRequest
from gridflow.journal.store import Journal, read_equity, read_orders, read_summaries

T0 = 1_700_000_000_000
H = 3_600_000


def batch(k: int, account: str = "acc") -> JournalBatch:
    """Engine output for candle ``k``: two grid orders, an equity point, a summary."""
    return JournalBatch(
        orders=[
            OrderRequest(
                client_order_id=f"{account}-{k}-{lvl}",
                account=account,
                strategy="grid",
                symbol="BTC/USDT",
                tag=f"L{lvl}",
                ts_ms=T0 + k * H,
                seq=2 * k + lvl,
                side="buy",
                type="limit",
                price=30_000.0 - 100 * lvl,
                amount=0.01,
            )
            for lvl in range(2)
        ],
        equity=[
            EquitySnapshot(
                account=account,
                ts_ms=T0 + k * H,
                equity=1000.0 + k,
                cash=1000.0,
                unrealized=float(k),
                used_margin=0.0,
            )
        ],
        summaries=[
            AccountSummary(
                account=account,
                candles=k + 1,
                last_ts_ms=T0 + k * H,
                initial_capital=1000.0,
                equity=1000.0 + k,
                cash=1000.0,
                fees_paid=0.0,
                realized_pnl=0.0,
            )
        ],
    )


def journal_flow(url: str, run_id: str, items: list) -> Dataflow:
    flow = Dataflow("journal_sink_test")
    stream = op.input("inp", flow, TestingSource(items))
    op.output("journal", stream, JournalSink(url, run_id))
    return flow


def test_sink_in_a_real_flow_writes_rows(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'runs' / 'journal.db'}"
    # batch 1 is delivered twice, as after a recovery replay
    items = [
        ("journal", batch(0)),
        ("journal", batch(1)),
        ("journal", batch(1)),
        ("journal", batch(2)),
        ("journal", JournalBatch()),
    ]
    run_main(journal_flow(url, "run-1", items))
    orders = read_orders(url, "run-1")
    assert [o["client_order_id"] for o in orders] == [
        f"acc-{k}-{lvl}" for k in range(3) for lvl in range(2)
    ]
    assert len(read_equity(url, "run-1")) == 3
    assert [s["candles"] for s in read_summaries(url, "run-1")] == [3]


def test_sink_has_one_partition_and_no_resume_state(tmp_path) -> None:
    sink = JournalSink(f"sqlite:///{tmp_path / 'j.db'}", "r")
    assert sink.list_parts() == ["journal"]
    part = sink.build_part("journal", "journal", None)
    try:
        part.write_batch([batch(0), batch(0)])
        assert part.snapshot() is None
    finally:
        part.close()
    assert len(read_orders(f"sqlite:///{tmp_path / 'j.db'}", "r")) == 2


def test_two_workers_write_the_same_journal_as_one(tmp_path) -> None:
    items = [("journal", batch(k, acc)) for k in range(6) for acc in ("a", "b")]
    url_1, url_2 = f"sqlite:///{tmp_path / 'w1.db'}", f"sqlite:///{tmp_path / 'w2.db'}"
    for url in (url_1, url_2):
        with Journal(url) as j:
            j.upsert_run("run", "h", "{}", "{}", "replay")
    run_main(journal_flow(url_1, "run", items))
    # keys other than "journal" still reach the single partition
    items_2 = [(f"k{i}", b) for i, (_, b) in enumerate(items)]
    cluster_main(journal_flow(url_2, "run", items_2), [], 0, worker_count_per_proc=2)
    lines = journal_lines(url_1)
    assert len(lines) == 24
    assert journal_lines(url_2) == lines


def test_recovery_replay_after_abort_leaves_the_uninterrupted_journal(tmp_path) -> None:
    """Abort mid-stream, resume with Bytewax recovery: replayed batches are ignored."""
    from datetime import timedelta

    from bytewax.recovery import RecoveryConfig, init_db_dir

    batches = [("journal", batch(k)) for k in range(6)]
    url_ref, url_rec = f"sqlite:///{tmp_path / 'ref.db'}", f"sqlite:///{tmp_path / 'rec.db'}"
    for url in (url_ref, url_rec):
        with Journal(url) as j:
            j.upsert_run("run", "h", "{}", "{}", "replay")
    run_main(journal_flow(url_ref, "run", batches))

    rec_dir = tmp_path / "recovery"
    rec_dir.mkdir()
    init_db_dir(rec_dir, 1)
    items = [*batches[:4], TestingSource.ABORT(), *batches[4:]]
    flow = journal_flow(url_rec, "run", items)
    config = RecoveryConfig(str(rec_dir))
    # a long epoch: the resume replays everything since the start, already written
    run_main(flow, epoch_interval=timedelta(seconds=30), recovery_config=config)
    assert len(read_orders(url_rec, "run")) == 8  # batches 0..3 landed before the abort
    run_main(flow, epoch_interval=timedelta(seconds=30), recovery_config=config)
    assert journal_lines(url_rec, include=("order", "equity")) == journal_lines(
        url_ref, include=("order", "equity")
    )
    assert read_summaries(url_rec, "run") == read_summaries(url_ref, "run")
