"""Journal store: schema, idempotent bulk writes, readers (real SQLite files)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pg_helpers import pg_schema
from sqlalchemy import func, select, text

from gridflow.chunks import JournalBatch
from gridflow.events import (
    AccountSummary,
    EquitySnapshot,
    ExecutionReport,
    JournalEvent,
    OrderRequest,
    TradeRecord,
)
from gridflow.journal.store import (
    TABLES,
    Journal,
    latest_run_id,
    list_runs,
    open_store,
    read_equity,
    read_events,
    read_fills,
    read_orders,
    read_summaries,
    read_trades,
)

T0 = 1_700_000_000_000
H = 3_600_000
MODELS = {
    "orders": OrderRequest,
    "fills": ExecutionReport,
    "trades": TradeRecord,
    "equity": EquitySnapshot,
    "events": JournalEvent,
    "summaries": AccountSummary,
}
READERS = {
    "orders": read_orders,
    "fills": read_fills,
    "trades": read_trades,
    "equity": read_equity,
    "events": read_events,
    "summaries": read_summaries,
}


# --- record factories: content is a pure function of the natural key ------------------
def order(i: int, account: str = "acc1") -> OrderRequest:
    return OrderRequest(
        client_order_id=f"{account}-o{i}",
        account=account,
        strategy="grid",
        symbol="BTC/USDT",
        tag=f"L{i % 5}",
        ts_ms=T0 + (i // 2) * H,
        seq=i,
        side="buy" if i % 2 else "sell",
        type="limit",
        price=30_000.0 + i * 0.1,
        amount=0.001 * (i + 1),
        reduce_only=bool(i % 3 == 0),
    )


def fill(i: int, account: str = "acc1") -> ExecutionReport:
    return ExecutionReport(
        report_id=f"{account}-f{i}",
        client_order_id=f"{account}-o{i}",
        account=account,
        symbol="BTC/USDT",
        ts_ms=T0 + (i // 2) * H,
        seq=i,
        side="buy" if i % 2 else "sell",
        price=30_000.0 + i * 0.1,
        amount=0.001 * (i + 1),
        fee=0.01 * i,
        liquidity="maker",
        realized_pnl=0.5 * i,
    )


def trade(i: int, account: str = "acc1") -> TradeRecord:
    return TradeRecord(
        trade_id=f"{account}:BTC/USDT:{T0 + i * H}",
        account=account,
        symbol="BTC/USDT",
        seq=i,
        position_side="long",
        open_ts_ms=T0 + i * H,
        close_ts_ms=T0 + (i + 2) * H,
        entries=1 + i % 3,
        amount=0.01,
        avg_entry=30_000.0,
        exit_price=30_100.0 - 0.5 * i,
        pnl=1.0 - 0.5 * i,
        fees=0.2,
        exit_reason="TP" if i % 2 else "SL",
    )


def snap(i: int, account: str = "acc1") -> EquitySnapshot:
    return EquitySnapshot(
        account=account,
        ts_ms=T0 + i * H,
        equity=1000.0 + i,
        cash=990.0 + i,
        unrealized=10.0,
        used_margin=5.0 * i,
    )


def event(i: int, account: str = "acc1") -> JournalEvent:
    kind = ("candle_rejected", "order_denied", "kill_switch_tripped")[i % 3]
    return JournalEvent(
        event_id=f"{kind}:{account}:{i}",
        kind=kind,
        reason="MAX_MARGIN_RATIO",
        ts_ms=T0 + i * H,
        account=account,
        symbol="BTC/USDT",
        seq=i,
        detail={"value": 0.8 + i, "limit": 0.5, "nested": {"z": 1, "a": [1, 2]}},
    )


def summary(candles: int, account: str = "acc1") -> AccountSummary:
    return AccountSummary(
        account=account,
        candles=candles,
        last_ts_ms=T0 + candles * H,
        initial_capital=1000.0,
        equity=1000.0 + candles,
        cash=900.0 + candles,
        fees_paid=0.1 * candles,
        realized_pnl=2.0 * candles,
        kill_switch="SESSION_LOSS" if candles % 2 else "",
        counters={"fills": candles},
    )


def full_batch(n: int = 6) -> JournalBatch:
    return JournalBatch(
        orders=[order(i) for i in range(n)] + [order(i, "acc2") for i in range(n)],
        fills=[fill(i) for i in range(n)] + [fill(i, "acc2") for i in range(n)],
        trades=[trade(i) for i in range(n)],
        equity=[snap(i) for i in range(n)] + [snap(i, "acc2") for i in range(n)],
        events=[event(i) for i in range(n)],
        summaries=[summary(3), summary(5, "acc2")],
    )


def counts(url: str, run_id: str) -> dict[str, int]:
    engine = open_store(url)
    try:
        with engine.connect() as conn:
            return {
                attr: conn.execute(
                    select(func.count())
                    .select_from(m.__table__)
                    .where(m.__table__.c.run_id == run_id)
                ).scalar_one()
                for attr, (m, _) in TABLES.items()
            }
    finally:
        engine.dispose()


# --- schema and engine ----------------------------------------------------------------
def test_tables_mirror_event_models() -> None:
    for attr, (model, key) in TABLES.items():
        cols = set(model.__table__.c.keys())
        assert cols == {"run_id", *MODELS[attr].model_fields}, attr
        pk = {c.name for c in model.__table__.primary_key}
        assert pk == {"run_id", *key}, attr


def test_open_store_relative_url_creates_dirs_and_sets_wal(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = open_store("sqlite:///deep/er/journal.db")
    try:
        assert (tmp_path / "deep" / "er" / "journal.db").exists()
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
            assert conn.execute(text("PRAGMA busy_timeout")).scalar_one() == 30_000
            names = set(conn.execute(text("SELECT name FROM sqlite_master")).scalars())
        assert {m.__tablename__ for m, _ in TABLES.values()} | {"runs"} <= names
    finally:
        engine.dispose()


def test_open_store_absolute_url(tmp_path) -> None:
    path = tmp_path / "a" / "b.db"
    engine = open_store(f"sqlite:///{path}")  # sqlite:////abs/... with the leading slash
    engine.dispose()
    assert str(path).startswith("/") and path.exists()


# --- writes ---------------------------------------------------------------------------
def test_write_twice_is_idempotent_for_every_table(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'j.db'}"
    batch = full_batch()
    with Journal(url) as journal:
        journal.write("r1", batch)
        first = counts(url, "r1")
        journal.write("r1", batch)
        assert counts(url, "r1") == first
        journal.write("r1", JournalBatch())  # empty batch: no-op
    assert first == {
        "orders": 12,
        "fills": 12,
        "trades": 6,
        "equity": 12,
        "events": 6,
        "summaries": 2,
    }
    for attr, reader in READERS.items():
        got = reader(url, "r1")
        want = [r.model_dump() for r in getattr(batch, attr)]
        assert sorted(got, key=repr) == sorted(want, key=repr), attr
        # rows rebuild the pydantic records
        assert [MODELS[attr](**d) for d in got]


def test_duplicates_inside_one_batch_and_other_runs_are_separate(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'j.db'}"
    batch = full_batch(3)
    batch.extend(full_batch(3))
    with Journal(url) as journal:
        journal.write("r1", batch)
        journal.write("r2", full_batch(2))
    assert counts(url, "r1")["orders"] == 6
    assert counts(url, "r2")["orders"] == 4


def test_rows_take_each_value_from_its_own_column_whatever_the_model(tmp_path) -> None:
    # journal records give their values in field order (RawInsert's fast path); a
    # record whose fields are in another order, or a mixed list, is read by name
    from pydantic import BaseModel, ConfigDict

    o = order(1)
    names = list(type(o).model_fields)

    class Reordered(BaseModel):
        model_config = ConfigDict(frozen=True, extra="forbid")
        __annotations__ = {n: type(o).model_fields[n].annotation for n in reversed(names)}

    url = f"sqlite:///{tmp_path / 'j.db'}"
    with Journal(url) as journal:
        raw = journal._raw["orders"]
        want = ("r", *(getattr(o, n) for n in raw._fields))
        other = Reordered(**o.model_dump())
        assert list(other.__dict__) != list(o.__dict__)
        assert raw.records("r", [o]) == [want]
        assert raw.records("r", [other]) == [want]
        assert raw.records("r", [o, other]) == [want, want]
        journal.write("r", JournalBatch(orders=[other, order(2)]))
    got = sorted(read_orders(url, "r"), key=lambda d: d["seq"])
    assert [OrderRequest(**d) for d in got] == [o, order(2)]


def test_summaries_keep_largest_candles(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'j.db'}"
    with Journal(url) as journal:
        journal.write("r", JournalBatch(summaries=[summary(5)]))
        journal.write("r", JournalBatch(summaries=[summary(3)]))  # stale replay
        assert read_summaries(url, "r") == [summary(5).model_dump()]
        journal.write("r", JournalBatch(summaries=[summary(7)]))
        assert read_summaries(url, "r") == [summary(7).model_dump()]
        journal.write("r", JournalBatch(summaries=[summary(9), summary(8), summary(4, "b")]))
    assert read_summaries(url, "r") == [summary(9).model_dump(), summary(4, "b").model_dump()]


def test_one_batch_keeps_the_first_row_of_a_key_and_the_last_of_the_most_candles(tmp_path):
    # SQLite takes a batch as it comes (no deduplication pass): the insert ignores a
    # key's later rows, the summary upsert keeps the most candles, the last on ties
    url = f"sqlite:///{tmp_path / 'j.db'}"
    first, other = order(1), order(1).model_copy(update={"price": 1.5, "amount": 9.0})
    tie_a = summary(5)
    tie_b = summary(5).model_copy(update={"equity": 7.0, "kill_switch": "TIE"})
    with Journal(url) as journal:
        journal.write("r", JournalBatch(orders=[first, other],
                                        summaries=[summary(3), tie_a, summary(4), tie_b]))
    assert [OrderRequest(**d) for d in read_orders(url, "r")] == [first]
    assert read_summaries(url, "r") == [tie_b.model_dump()]


def test_readers_sort_deterministically(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'j.db'}"
    with Journal(url) as journal:
        journal.write("r", JournalBatch(orders=[order(i) for i in reversed(range(8))]))
        journal.write("r", JournalBatch(orders=[order(i, "acc0") for i in range(8)]))
    rows = read_orders(url, "r")
    keys = [(r["ts_ms"], r["account"], r["seq"], r["client_order_id"]) for r in rows]
    assert keys == sorted(keys) and len(keys) == 16


def test_runs_register_and_refuse_a_different_config(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'j.db'}"
    assert latest_run_id(url) is None
    with Journal(url) as journal:
        journal.upsert_run("r1", "h1", '{"a": 1}', '{"files": []}', "replay")
        journal.upsert_run("r1", "h1", '{"a": 1}', '{"files": []}', "replay")  # restart
        journal.upsert_run("r2", "h2", "{}", "{}", "paper")
        with pytest.raises(ValueError, match="RUN_CONFIG_MISMATCH"):
            journal.upsert_run("r1", "other", "{}", "{}", "replay")
    runs = list_runs(url)
    assert [r["run_id"] for r in runs] == ["r1", "r2"]
    assert runs[0]["config_json"] == '{"a": 1}' and runs[1]["mode"] == "paper"
    assert latest_run_id(url) == "r2"


# --- at-least-once delivery -----------------------------------------------------------
POOL = {
    "orders": [order(i, a) for a in ("x", "y") for i in range(4)],
    "fills": [fill(i, a) for a in ("x", "y") for i in range(4)],
    "trades": [trade(i) for i in range(4)],
    "equity": [snap(i, a) for a in ("x", "y") for i in range(3)],
    "events": [event(i) for i in range(4)],
    "summaries": [summary(c, a) for a in ("x", "y") for c in range(1, 6)],
}
_pick = {attr: st.lists(st.sampled_from(recs), max_size=6) for attr, recs in POOL.items()}
batches_st = st.lists(st.fixed_dictionaries(_pick), min_size=1, max_size=5)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=batches_st, data=st.data())
def test_random_redelivery_ends_with_the_distinct_rows(batches, data) -> None:
    # every batch at least once, then random repeats anywhere (Bytewax recovery replay)
    order_idx = list(range(len(batches))) + data.draw(
        st.lists(st.integers(0, len(batches) - 1), max_size=6), label="repeats"
    )
    order_idx = data.draw(st.permutations(order_idx), label="delivery")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'j.db'}"
        with Journal(url) as journal:
            for i in order_idx:
                journal.write("run", JournalBatch(**{k: list(v) for k, v in batches[i].items()}))
        for attr, (_model, key) in TABLES.items():
            delivered = [r for b in batches for r in b[attr]]
            got = READERS[attr](url, "run")
            if attr == "summaries":
                best: dict[str, AccountSummary] = {}
                for r in delivered:
                    if r.account not in best or r.candles > best[r.account].candles:
                        best[r.account] = r
                want = [best[a].model_dump() for a in sorted(best)]
                assert got == want
            else:
                distinct = {tuple(getattr(r, k) for k in key): r for r in delivered}
                assert len(got) == len(distinct), attr
                assert {tuple(d[k] for k in key) for d in got} == set(distinct), attr


def test_postgresql_upserts() -> None:
    with pg_schema() as url:
        run = f"pg-{time.time_ns()}"
        batch = full_batch()
        batch.summaries += [summary(9), summary(4)]  # same key twice in one statement
        with Journal(url) as journal:
            journal.upsert_run(run, "h", "{}", "{}", "replay")
            journal.write(run, batch)
            journal.write(run, batch)
        assert counts(url, run)["orders"] == 12
        assert read_summaries(url, run)[0] == summary(9).model_dump()
        assert read_events(url, run) == sorted(
            (e.model_dump() for e in batch.events), key=lambda d: (d["ts_ms"], d["seq"])
        )
