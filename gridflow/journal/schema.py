"""Journal schema: SQLModel tables, one per record kind, and the engine set-up.

Every table carries ``run_id`` plus the fields of its pydantic model in
:mod:`gridflow.events` under the same names, so a row read back builds the model
again (``OrderRequest(**row)``). Primary keys are the records' natural keys, which is
what makes journal writes idempotent (:class:`gridflow.journal.store.Journal`).
Integer columns are BIGINT (ms timestamps overflow PostgreSQL INTEGER); dict fields
are JSON, serialised by :data:`JSON_SERIALIZER`: sorted keys, strict JSON (a NaN or
infinite float is stored as null), so every backend accepts it.
"""

from __future__ import annotations

import functools
import json
import math
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    Connection,
    Engine,
    Index,
    UniqueConstraint,
    create_engine,
    event,
    make_url,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool
from sqlmodel import Field, SQLModel

import gridflow.journal.sweep_schema  # noqa: F401  (its tables are created with these)
from gridflow.journal.columns import big

# numpy scalars that sneak in through ``model_construct`` would make sqlite3 refuse
# the parameter; np.float64 is a float subclass and needs nothing.
for _np_type, _py in ((np.int64, int), (np.int32, int), (np.float32, float), (np.bool_, bool)):
    sqlite3.register_adapter(_np_type, _py)


_strict_dumps = functools.partial(json.dumps, sort_keys=True, allow_nan=False)


def strict_json(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, +-inf) replaced by None, in nested
    dicts and lists too (strict JSON has no NaN / Infinity); numpy scalars as Python,
    tuples as lists. The one such rule: journal JSON columns (:func:`json_serializer`)
    and the ``--json`` output of the reports (:mod:`gridflow.control.report`) use it."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def json_serializer(value: Any) -> str:
    """Text of a JSON column: sorted keys (deterministic text) and strict JSON.

    Python's ``json.dumps`` writes NaN and infinities as the bare tokens ``NaN`` /
    ``Infinity``, which SQLite stores but PostgreSQL refuses (``Token "NaN" is
    invalid``); here they become ``null`` (:func:`strict_json`), on every backend alike,
    and numpy scalars plain numbers. This is the one serializer of JSON columns: the
    engines of :func:`open_store` and the raw SQLite insert of
    :mod:`gridflow.journal.store` use it.

    Parameters
    ----------
    value : Any
        A JSON-able value (dicts, lists, str, int, float, bool, None).

    Returns
    -------
    str

    Raises
    ------
    TypeError
        For a value ``json`` cannot encode (e.g. a numpy array, a set).
    """
    try:
        return _strict_dumps(value)
    except (ValueError, TypeError):  # a non-finite float or a numpy scalar: walk the value
        return _strict_dumps(strict_json(value))


#: Serializer of JSON columns (:func:`json_serializer`).
JSON_SERIALIZER = json_serializer


class RunRow(SQLModel, table=True):
    """One run (backtest, paper or live session) and what it was started with.

    ``created_at_ms`` is wall-clock time and is not part of the deterministic journal.
    """

    __tablename__ = "runs"
    run_id: str = Field(primary_key=True)
    config_hash: str
    config_json: str
    data_json: str
    mode: str
    created_at_ms: int = big()


class OrderRow(SQLModel, table=True):
    """An :class:`~gridflow.events.OrderRequest`; key ``(run_id, client_order_id)``."""

    __tablename__ = "orders"
    run_id: str = Field(primary_key=True)
    client_order_id: str = Field(primary_key=True)
    account: str
    strategy: str
    symbol: str
    tag: str
    ts_ms: int = big()
    seq: int = big()
    side: str
    type: str
    price: float
    amount: float
    reduce_only: bool = False


class FillRow(SQLModel, table=True):
    """An :class:`~gridflow.events.ExecutionReport`; key ``(run_id, report_id)``."""

    __tablename__ = "fills"
    run_id: str = Field(primary_key=True)
    report_id: str = Field(primary_key=True)
    client_order_id: str
    account: str
    symbol: str
    ts_ms: int = big()
    seq: int = big(default=0)
    status: str = "filled"
    side: str
    price: float
    amount: float
    fee: float = 0.0
    liquidity: str = "taker"
    realized_pnl: float = 0.0
    fee_base: float = 0.0


class TradeRow(SQLModel, table=True):
    """A :class:`~gridflow.events.TradeRecord`; key ``(run_id, trade_id)``."""

    __tablename__ = "trades"
    run_id: str = Field(primary_key=True)
    trade_id: str = Field(primary_key=True)
    account: str
    symbol: str
    seq: int = big()
    position_side: str
    open_ts_ms: int = big()
    close_ts_ms: int = big()
    entries: int
    amount: float
    avg_entry: float
    exit_price: float
    pnl: float
    fees: float
    exit_reason: str
    funding: float = 0.0


class EquityRow(SQLModel, table=True):
    """An :class:`~gridflow.events.EquitySnapshot`; key ``(run_id, account, ts_ms)``."""

    __tablename__ = "equity"
    run_id: str = Field(primary_key=True)
    account: str = Field(primary_key=True)
    ts_ms: int = big(primary_key=True)
    equity: float
    cash: float
    unrealized: float
    used_margin: float


class EventRow(SQLModel, table=True):
    """A :class:`~gridflow.events.JournalEvent`; key ``(run_id, event_id)``."""

    __tablename__ = "events"
    run_id: str = Field(primary_key=True)
    event_id: str = Field(primary_key=True)
    kind: str = Field(index=True)
    reason: str
    ts_ms: int = big()
    account: str = ""
    symbol: str = ""
    seq: int = big(default=0)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class SummaryRow(SQLModel, table=True):
    """The latest :class:`~gridflow.events.AccountSummary` of an account.

    Key ``(run_id, account)``; the row with the largest ``candles`` wins.
    """

    __tablename__ = "account_summaries"
    run_id: str = Field(primary_key=True)
    account: str = Field(primary_key=True)
    candles: int = big()
    last_ts_ms: int = big()
    seq: int = big(default=0)
    initial_capital: float
    equity: float
    cash: float
    fees_paid: float
    realized_pnl: float
    funding_paid: float = 0.0
    kill_switch: str = ""
    counters: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    paused: bool = False
    complete: bool = False
    positions: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class BrokerRow(SQLModel, table=True):
    """An :class:`~gridflow.events.OrderOutcome` of the broker sink; key
    ``(run_id, intent_id)``.

    Written ahead as ``status = "sending"`` before the request and updated once the
    outcome is known (:func:`gridflow.journal.broker_rows.broker_begin` /
    :func:`~gridflow.journal.broker_rows.broker_finish`). ``faults`` is JSON text (a list of
    ccxt error class names); ``ts_ms`` is wall-clock ms UTC of the last update.
    Indexed on ``(run_id, ts_ms)``: the live flow's outcome source reads the newest
    rows many times a second (without it every read scanned the run's rows, a tenth of
    the flow's CPU after a few thousand orders).
    """

    __tablename__ = "broker_outcomes"
    __table_args__ = (Index("ix_broker_outcomes_run_ts", "run_id", "ts_ms"),)
    run_id: str = Field(primary_key=True)
    intent_id: str = Field(primary_key=True)
    client_order_id: str = Field(index=True)
    action: str
    account: str
    symbol: str
    tag: str = ""
    status: str
    exchange_order_id: str = ""
    attempts: int = 0
    error: str = ""
    faults: str = "[]"
    ts_ms: int = big(default=0)


_RUN_TS_INDEX = next(i for i in BrokerRow.__table__.indexes
                     if i.name == "ix_broker_outcomes_run_ts")


class NameRow(SQLModel, table=True):
    """A name a person gave a journal run (``kind = "run"``) or a sweep / walk-forward
    run (``kind = "sweep"``); key ``(kind, target_id)``, ``name`` unique per kind.

    A table of its own, so journals written before names need no migration (it is
    created by :func:`open_store`); read and written by :mod:`gridflow.journal.names`.
    ``created_at_ms`` is wall-clock ms UTC.
    """

    __tablename__ = "names"
    __table_args__ = (UniqueConstraint("kind", "name", name="uq_names_kind_name"),)
    kind: str = Field(primary_key=True)
    target_id: str = Field(primary_key=True)
    name: str
    created_at_ms: int = big()


#: ``JournalBatch`` attribute -> (table, natural key without ``run_id``), write order.
TABLES: dict[str, tuple[type[SQLModel], tuple[str, ...]]] = {
    "orders": (OrderRow, ("client_order_id",)),
    "fills": (FillRow, ("report_id",)),
    "trades": (TradeRow, ("trade_id",)),
    "equity": (EquityRow, ("account", "ts_ms")),
    "events": (EventRow, ("event_id",)),
    "summaries": (SummaryRow, ("account",)),
}

_SQLITE_BUSY_TIMEOUT_MS = 30_000


def sqlite_pragmas() -> tuple[str, ...]:
    """The settings of every connection to an SQLite journal file: WAL (readers never
    block the writer), ``synchronous=FULL`` (a committed transaction survives a power
    loss) and a busy timeout (a second writer waits up to 30 s for the lock instead of
    failing). The journal writer process (:mod:`gridflow.journal.writer_process`) runs
    the same statements."""
    return ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
            f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")


def _in_memory(u: Any) -> bool:
    """Whether the SQLite URL ``u`` (a SQLAlchemy ``URL``) names an in-memory database."""
    return (u.database or "") in ("", ":memory:") or u.query.get("mode") == "memory"


def sqlite_file_of(url: Any) -> str | None:
    """The file path of an SQLite journal URL (str or ``URL``), as SQLite opens it; None
    for another database, an in-memory one or a ``file:`` URI."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or _in_memory(u) or u.database.startswith("file:"):
        return None
    return u.database


def open_store(url: str) -> Engine:
    """Open (and create if needed) the journal database.

    Parameters
    ----------
    url : str
        SQLAlchemy URL: ``sqlite:///relative.db``, ``sqlite:////abs/path.db``,
        ``sqlite://`` (in memory, one shared connection) or
        ``postgresql+psycopg://user:pw@host/db``.

    Returns
    -------
    sqlalchemy.Engine
        With every table of ``SQLModel.metadata`` created (the journal, the command
        table when :mod:`gridflow.journal.commands` is loaded, and the sweep tables of
        :mod:`gridflow.journal.sweep_schema`). For an SQLite file the
        parent directories are created and each connection is set to
        ``journal_mode=WAL`` (readers never block the writer), ``synchronous=FULL``
        and ``busy_timeout=30000`` ms (a second writer waits instead of failing).
    """
    u = make_url(url)
    serializer = JSON_SERIALIZER
    if u.get_backend_name() != "sqlite":
        engine = create_engine(u, json_serializer=serializer, pool_pre_ping=True)
    else:
        db = u.database or ""
        if _in_memory(u):
            engine = create_engine(
                u,
                json_serializer=serializer,
                poolclass=StaticPool,
                connect_args={"check_same_thread": False},
            )
        else:
            if not db.startswith("file:"):
                Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(u, json_serializer=serializer)
        event.listen(engine, "connect", _sqlite_pragmas)
    _create_tables(engine)
    return engine


_CREATE_LOCK = threading.Lock()


def _create_tables(engine: Engine, attempts: int = 3) -> None:
    """Create the missing tables, index and columns of a journal. ``create_all`` checks
    which tables exist, then creates the others: two openers of one new journal (the
    threads of a flow's sinks and sources, another process) can both find a table
    missing, and the second ``CREATE`` fails (``table ... already exists``). Openers of
    this process take turns; a race with another process is retried (the table is then
    found and skipped), at most ``attempts`` times in all.

    Raises
    ------
    sqlalchemy.exc.SQLAlchemyError
        Still failing at the last attempt.
    """
    for attempt in range(1, attempts + 1):
        try:
            with _CREATE_LOCK:
                if engine.dialect.name == "sqlite":
                    with engine.connect() as conn:
                        if _complete(conn):  # the usual open: nothing to write
                            return
                        # one transaction for all of it: the driver commits each DDL
                        # statement on its own otherwise, and with synchronous=FULL
                        # each commit waits for the disk (a new journal: 20 commits).
                        # IMMEDIATE takes the write lock first, waiting for another
                        # writer (busy_timeout): a deferred transaction that read the
                        # schema then wrote failed at once when one had committed
                        conn.exec_driver_sql("BEGIN IMMEDIATE")
                        if conn.exec_driver_sql(
                                "SELECT count(*) FROM sqlite_master").scalar_one() == 0:
                            for ddl in _new_file_ddl(engine.dialect):  # a new file
                                conn.exec_driver_sql(ddl)
                        else:
                            _create_all(conn)
                        conn.commit()
                else:
                    _create_all(engine)
            return
        except SQLAlchemyError:
            if attempt == attempts:
                raise
            time.sleep(0.05 * attempt)


_DDL: dict[tuple[str, tuple], tuple[str, ...]] = {}


def _new_file_ddl(dialect: Any) -> tuple[str, ...]:
    """``CREATE TABLE`` and ``CREATE INDEX`` of every table of ``SQLModel.metadata``,
    in dependency order, as ``create_all`` issues them on an empty database: compiled
    once per process and definition of the tables (compiling them took most of a new
    journal's open; ``tests/journal/test_new_file_ddl.py`` checks the two give the same
    schema). The key holds the table objects with their column and index names: a table
    redefined under its name, or given a column, is another key; a column changed in
    place (same name, ``extend_existing``) is not seen, which the journal's tables,
    fixed when their modules load, never do."""
    from sqlalchemy.schema import CreateIndex, CreateTable

    key = (dialect.name, tuple((t, tuple(t.columns.keys()),
                                tuple(sorted(i.name or "" for i in t.indexes)))
                               for t in SQLModel.metadata.sorted_tables))
    if key not in _DDL:
        out: list[str] = []
        for table in SQLModel.metadata.sorted_tables:
            out.append(str(CreateTable(table).compile(dialect=dialect)).strip())
            out.extend(str(CreateIndex(ix).compile(dialect=dialect)).strip()
                       for ix in sorted(table.indexes, key=lambda i: i.name or ""))
        _DDL[key] = tuple(out)
    return _DDL[key]


def _complete(conn: Connection) -> bool:
    """Whether the journal has every table, the index and the columns
    :func:`_create_all` makes (read only)."""
    from sqlalchemy import inspect

    insp = inspect(conn)
    if not set(SQLModel.metadata.tables) <= set(insp.get_table_names()):
        return False
    table = _RUN_TS_INDEX.table.name
    if _RUN_TS_INDEX.name not in {i["name"] for i in insp.get_indexes(table)}:
        return False
    return all(set(cols) <= {c["name"] for c in insp.get_columns(t)}
               for t, cols in ADDED_COLUMNS.items())


def _create_all(bind: Engine | Connection) -> None:
    SQLModel.metadata.create_all(bind)
    _RUN_TS_INDEX.create(bind, checkfirst=True)  # older journals lack it
    _add_columns(bind)


ADDED_COLUMNS: dict[str, dict[str, str]] = {"fills": {"fee_base": "FLOAT NOT NULL DEFAULT 0"}}
"""Columns added to a table after journals were written: table -> name -> SQL type and
default. A journal opened without them gets them (``ALTER TABLE ... ADD COLUMN``), so its
old rows read with the default."""


def _add_columns(engine: Engine | Connection) -> None:
    """Add the :data:`ADDED_COLUMNS` an existing journal lacks (another process adding
    the same column at the same moment is fine). On PostgreSQL the ALTER waits at most
    5 s for its lock (a long transaction on the table makes the open fail, instead of
    every other query queueing behind the ALTER). Given a connection (SQLite's opener),
    the ALTER runs in its transaction."""
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import DBAPIError

    for table, cols in ADDED_COLUMNS.items():
        have = {c["name"] for c in inspect(engine).get_columns(table)}
        for name, ddl in cols.items():
            if name in have:
                continue
            if isinstance(engine, Connection):
                engine.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {ddl}"))
                continue
            try:
                with engine.begin() as conn:
                    if engine.dialect.name == "postgresql":  # wait for a lock at most 5 s
                        # rather than queue every query on the table behind the ALTER
                        conn.execute(text("SET LOCAL lock_timeout = '5s'"))
                    conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {ddl}"))
            except DBAPIError:
                if name not in {c["name"] for c in inspect(engine).get_columns(table)}:
                    raise


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    try:
        for sql in sqlite_pragmas():
            cur.execute(sql)
    finally:
        cur.close()
