"""A journal written before a column was added (``fills.fee_base``) opens, gets the
column, reads its old rows with the default and takes new rows: SQLite file and
PostgreSQL."""

from __future__ import annotations

from pg_helpers import pg_schema
from sqlalchemy import inspect, text

from gridflow.chunks import JournalBatch
from gridflow.events import ExecutionReport
from gridflow.journal.schema import ADDED_COLUMNS, open_store
from gridflow.journal.store import Journal, read_fills


def _report(rid: str, fee_base: float = 0.0) -> ExecutionReport:
    return ExecutionReport(report_id=rid, client_order_id="gf-1", account="a",
                           symbol="BTC/USDT", ts_ms=1_700_000_000_000, side="buy",
                           price=100.0, amount=0.5, fee=fee_base * 100.0, fee_base=fee_base)


def _old_then_new(url: str) -> None:
    engine = open_store(url)
    with engine.begin() as conn:  # the journal as it was before the column
        for table, cols in ADDED_COLUMNS.items():
            for name in cols:
                conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {name}"))
        conn.execute(text(
            "INSERT INTO fills (run_id, report_id, client_order_id, account, symbol, ts_ms, "
            "seq, status, side, price, amount, fee, liquidity, realized_pnl) VALUES "
            "('r', 'old', 'gf-0', 'a', 'BTC/USDT', 1, 0, 'filled', 'buy', 100, 1, 0.1, "
            "'taker', 0)"))
    assert "fee_base" not in {c["name"] for c in inspect(engine).get_columns("fills")}
    engine.dispose()
    j = Journal(url)  # opening it adds the column
    j.write("r", JournalBatch(fills=[_report("new", fee_base=0.0005)]))
    rows = {f["report_id"]: f for f in read_fills(url, "r")}
    assert rows["old"]["fee_base"] == 0.0 and rows["old"]["amount"] == 1.0
    assert rows["new"]["fee_base"] == 0.0005
    j.close()
    open_store(url).dispose()  # and a second open finds it there


def test_an_old_sqlite_journal_gets_the_added_columns(tmp_path):
    _old_then_new(f"sqlite:///{tmp_path / 'old.db'}")


def test_an_old_postgresql_journal_gets_the_added_columns():
    with pg_schema() as url:
        _old_then_new(url)
