"""The broker's write-ahead rows (``broker_begin_many``): one statement for a batch, the
same answers as one row at a time: who owns each intent (None: inserted now), what an
existing row says, an intent given twice, a replacement's cancel begun only with its
place. SQLite file and PostgreSQL."""

from __future__ import annotations

from pg_helpers import pg_schema
from sqlalchemy import event

from gridflow.events import OrderOutcome
from gridflow.journal.broker_rows import broker_begin_many, broker_finish, read_broker
from gridflow.journal.store import open_store


def _o(i: int, action: str = "place") -> OrderOutcome:
    return OrderOutcome(intent_id=f"i{i}:{action}", client_order_id=f"gf{i}", action=action,
                        account="a", symbol="BTC/USDT", tag="L0", status="sending")


def _protocol(url: str) -> None:
    engine = open_store(url)
    inserts = []
    event.listen(engine, "before_cursor_execute",
                 lambda *a: inserts.append(a[2]) if a[2].lstrip().upper().startswith(
                     "INSERT") else None)
    try:
        # a batch: two new intents, one of them twice; the replacement's cancel of i2
        statuses, follows = broker_begin_many(engine, "r", [_o(1), _o(2), _o(1)],
                                              {1: _o(9, "cancel")})
        assert (statuses, follows) == ([None, None, "sending"], {1: None})
        assert len(inserts) == 2  # the batch's rows in one statement, its follow in one
        broker_finish(engine, "r", _o(2).model_copy(update={"status": "sent"}))
        # met again (a restart): stored statuses; a follow only where its place is new
        statuses, follows = broker_begin_many(engine, "r", [_o(2), _o(3), _o(1)],
                                              {0: _o(8, "cancel"), 1: _o(9, "cancel")})
        assert (statuses, follows) == (["sent", None, "sending"], {1: "sending"})
        rows = {r["intent_id"]: r["status"] for r in read_broker(engine, "r")}
        assert rows == {"i1:place": "sending", "i2:place": "sent", "i3:place": "sending",
                        "i9:cancel": "sending"}  # i8's place was not new: never begun
        assert broker_begin_many(engine, "r", [], {}) == ([], {})
    finally:
        engine.dispose()


def test_write_ahead_rows_sqlite(tmp_path) -> None:
    _protocol(f"sqlite:///{tmp_path / 'j.db'}")


def test_write_ahead_rows_postgresql() -> None:
    with pg_schema() as url:
        _protocol(url)
