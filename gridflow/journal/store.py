"""The journal store: the idempotent bulk writer and the readers.

The tables and :func:`open_store` are defined in :mod:`gridflow.journal.schema` and
re-exported here, so ``from gridflow.journal.store import OrderRow, open_store`` works.

Writes are idempotent by natural key: Bytewax recovery replays up to one snapshot
interval of input, and a replayed batch must leave the journal unchanged. SQLite is
the embedded default; PostgreSQL works through the same code (the upsert statements
are built with the dialect of the engine).
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Self

from sqlalchemy import JSON, Connection, Engine, bindparam, select
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from gridflow.chunks import JournalBatch
from gridflow.journal.schema import (
    JSON_SERIALIZER,
    TABLES,
    BrokerRow,
    EquityRow,
    EventRow,
    FillRow,
    NameRow,
    OrderRow,
    RunRow,
    SummaryRow,
    TradeRow,
    open_store,
    sqlite_file_of,
)


def insert_fn(engine: Engine) -> Callable[..., Any]:
    """The dialect's ``insert`` construct (it has ``on_conflict_do_nothing`` /
    ``on_conflict_do_update``) for ``engine``.

    Raises
    ------
    NotImplementedError
        For a database other than SQLite or PostgreSQL.
    """
    name = engine.dialect.name
    if name == "sqlite":
        return sqlite_dialect.insert
    if name == "postgresql":
        return pg_dialect.insert
    raise NotImplementedError(f"journal supports sqlite and postgresql, not {name!r}")


def _statements(engine: Engine) -> dict[str, Any]:
    """One INSERT per table: do-nothing on conflict, summaries keep max ``candles``."""
    insert = insert_fn(engine)
    stmts: dict[str, Any] = {}
    for attr, (model, key) in TABLES.items():
        table = model.__table__
        stmt = insert(table)
        index = ["run_id", *key]
        if attr == "summaries":
            stmt = stmt.on_conflict_do_update(
                index_elements=index,
                set_={c.name: stmt.excluded[c.name] for c in table.c if c.name not in index},
                where=stmt.excluded.candles >= table.c.candles,
            )
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=index)
        stmts[attr] = stmt
    return stmts


_COMPILED: dict[tuple[str, str], tuple[dict[str, Any], dict[str, RawInsert]]] = {}


def _compiled(engine: Engine) -> tuple[dict[str, Any], dict[str, RawInsert]]:
    """The INSERT of each table for ``engine``'s dialect and, on SQLite, their compiled
    :class:`RawInsert`; built once per dialect and process (a sweep or the app opens
    a journal per run; compiling them took a few milliseconds each time)."""
    key = (engine.dialect.name, str(engine.dialect.paramstyle))
    if key not in _COMPILED:
        stmts = _statements(engine)
        raw = ({a: RawInsert(engine, st) for a, st in stmts.items()}
               if engine.dialect.name == "sqlite" else {})
        _COMPILED[key] = (stmts, raw)
    return _COMPILED[key]


class RawInsert:
    """A compiled positional INSERT fed tuples straight to ``cursor.executemany``.

    Used for SQLite, where SQLAlchemy's per-row parameter processing costs twice the
    insert itself. Parameters need no conversion there except JSON columns, which are
    serialised here with the engine's serializer (sorted keys). :meth:`params` takes
    dict rows; :meth:`records` takes journal records (pydantic models whose fields are
    the table's columns but ``run_id``) without building a dict per row.
    """

    def __init__(self, engine: Engine, stmt: Any) -> None:
        compiled = stmt.compile(dialect=engine.dialect)
        if not compiled.positional or compiled.positiontup is None:
            raise ValueError("raw insert needs a positional paramstyle")
        self.sql = str(compiled)
        names = list(compiled.positiontup)
        self.getter = operator.itemgetter(*names)
        table = stmt.table
        self.json_cols = [n for n in names if isinstance(table.c[n].type, JSON)]
        # records: run_id first, then the record's fields in statement order
        self._fields = names[1:] if names[:1] == ["run_id"] else None
        if self._fields:
            self._attrs = operator.attrgetter(*self._fields)
            self._json_at = [i for i, n in enumerate(self._fields) if n in self.json_cols]

    def params(self, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        for col in self.json_cols:
            dumps = JSON_SERIALIZER
            for r in rows:
                r[col] = dumps(r[col])
        getter = self.getter
        return [getter(r) for r in rows]

    def records(self, run_id: str, records: list[Any]) -> list[tuple[Any, ...]]:
        """Parameter tuples of ``records`` for ``run_id``.

        Records of one pydantic model whose fields are the statement's columns in
        statement order (every journal record) give their values straight from the
        instance ``__dict__`` (a frozen model with ``extra="forbid"`` holds exactly its
        fields there), about half the cost of reading each attribute by name.

        Raises
        ------
        ValueError
            If the statement does not start with ``run_id`` (use :meth:`params`).
        """
        if not self._fields:
            raise ValueError("records() needs an INSERT whose first column is run_id")
        get = self._attrs
        if len(self._fields) == 1:
            return [(run_id, get(r)) for r in records]
        if not self._json_at:
            if self._in_order(records):
                return [(run_id, *r.__dict__.values()) for r in records]
            return [(run_id, *get(r)) for r in records]
        dumps, at, out = JSON_SERIALIZER, self._json_at, []
        for r in records:
            v = list(get(r))
            for i in at:
                v[i] = dumps(v[i])
            out.append((run_id, *v))
        return out

    def _in_order(self, records: list[Any]) -> bool:
        """True when every record is of one model whose fields are, in order, the
        statement's columns after ``run_id`` and which keeps nothing else in its
        ``__dict__`` (frozen, ``extra="forbid"``)."""
        model = type(records[0]) if records else None
        fields = getattr(model, "model_fields", None)
        if fields is None or list(fields) != self._fields:
            return False
        config = getattr(model, "model_config", {})
        if config.get("extra") != "forbid" or not config.get("frozen"):
            return False
        return all(type(r) is model for r in records)


def kept_records(batch: JournalBatch) -> dict[str, list[Any]]:
    """The records of a batch per table, deduplicated by natural key: deterministic
    records keep their first occurrence (what insert-or-ignore does); summaries keep
    the largest ``candles`` (the last one on ties, matching the ``>=`` of the upsert).
    Deduplicating here also keeps PostgreSQL's multi-row ``INSERT .. ON CONFLICT`` from
    touching one row twice in a statement.

    Returns
    -------
    dict[str, list]
        ``JournalBatch`` attribute name to records, only for non-empty attributes.
    """
    out: dict[str, list[Any]] = {}
    for attr, (_model, key) in TABLES.items():
        records = getattr(batch, attr)
        if not records:
            continue
        if attr == "summaries":
            best: dict[Any, Any] = {}
            for rec in records:
                old = best.get(rec.account)
                if old is None or rec.candles >= old.candles:
                    best[rec.account] = rec
            out[attr] = list(best.values())
            continue
        keyf = operator.attrgetter(*key)
        kept: dict[Any, Any] = {}
        for rec in records:
            kept.setdefault(keyf(rec), rec)
        out[attr] = list(kept.values()) if len(kept) < len(records) else list(records)
    return out


class Journal:
    """Idempotent bulk writer of journal batches.

    Parameters
    ----------
    url : str
        SQLAlchemy URL, see :func:`open_store`.

    Notes
    -----
    :meth:`write` runs one transaction per batch and one ``executemany`` of a single
    INSERT statement per table. Orders, fills, trades, equity snapshots and events are
    deterministic, so a conflict on the natural key means "already written" and is
    ignored; account summaries are upserted keeping the largest ``candles``. Writing
    any batches any number of times, in any split or order, gives the same tables.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = open_store(url)
        self._stmts, self._raw = _compiled(self.engine)

    def upsert_run(
        self, run_id: str, config_hash: str, config_json: str, data_json: str, mode: str
    ) -> None:
        """Register a run; registering it again (a restart) keeps the first row.

        Parameters
        ----------
        run_id, config_hash, config_json, data_json, mode : str
            ``data_json`` describes the input data (files, symbols, ranges);
            ``mode`` is e.g. ``"replay"``, ``"paper"`` or ``"live"``.

        Raises
        ------
        ValueError
            If ``run_id`` already exists with a different ``config_hash``: its journal
            rows came from another configuration and must not be mixed with new ones.
        """
        table = RunRow.__table__
        row = {
            "run_id": run_id,
            "config_hash": config_hash,
            "config_json": config_json,
            "data_json": data_json,
            "mode": mode,
            "created_at_ms": time.time_ns() // 1_000_000,
        }
        stmt = insert_fn(self.engine)(table).on_conflict_do_nothing(index_elements=["run_id"])
        with self.engine.begin() as conn:
            conn.execute(stmt, row)
            stored = conn.execute(
                select(table.c.config_hash).where(table.c.run_id == run_id)
            ).scalar_one()
        if stored != config_hash:
            raise ValueError(
                f"RUN_CONFIG_MISMATCH: run {run_id!r} exists with config_hash {stored!r}, "
                f"refusing {config_hash!r}; use a new run_id"
            )

    def sqlite_file(self) -> str | None:
        """Path of the journal's SQLite file, or None (PostgreSQL, an in-memory or
        ``file:`` URI database)."""
        return sqlite_file_of(self.engine.url)

    def insert_sql(self) -> dict[str, str]:
        """SQLite only: the INSERT of each table (``JournalBatch`` attribute -> SQL with
        ``?`` parameters), taking the tuples of :meth:`rows`."""
        return {attr: raw.sql for attr, raw in self._raw.items()}

    def rows(self, run_id: str, batch: JournalBatch) -> list[tuple[str, list[tuple]]]:
        """SQLite only: ``batch`` as ``(table attribute, parameter tuples)`` pairs in
        table order, the rows :meth:`write` inserts (see its notes on repeated keys).

        Raises
        ------
        ValueError
            On a journal that is not SQLite.
        """
        if not self._raw:
            raise ValueError("row tuples are built for SQLite journals only")
        return [(attr, self._raw[attr].records(run_id, recs))
                for attr in TABLES if (recs := getattr(batch, attr))]

    def write(self, run_id: str, batch: JournalBatch) -> int:
        """Write every record of ``batch`` in one transaction (idempotent).

        Parameters
        ----------
        run_id : str
        batch : JournalBatch

        Returns
        -------
        int
            Rows sent (rows already in the journal are sent and ignored by the
            database).

        Notes
        -----
        On PostgreSQL the batch is first deduplicated by natural key
        (:func:`kept_records`): one multi-row ``INSERT .. ON CONFLICT`` may not touch a
        row twice. On SQLite the rows go in as they are: ``executemany`` runs the
        statement row by row in batch order, so a repeated key is ignored after its
        first row and a summary is replaced by each later one with at least its
        ``candles``, which is exactly what the deduplication keeps.
        """
        if self._raw:
            rows = self.rows(run_id, batch)
            if not rows:
                return 0
            with self.engine.begin() as conn:
                for attr, params in rows:
                    conn.exec_driver_sql(self._raw[attr].sql, params)
            return sum(len(p) for _a, p in rows)
        kept = kept_records(batch)
        if not kept:
            return 0
        with self.engine.begin() as conn:
            for attr, recs in kept.items():
                conn.execute(self._stmts[attr],
                             [{"run_id": run_id, **rec.__dict__} for rec in recs])
        return sum(len(p) for p in kept.values())

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- readers --------------------------------------------------------------------------

#: Deterministic sort key of each table (Python string order = SQLite BINARY order,
#: independent of a PostgreSQL collation).
SORT_KEYS: dict[str, tuple[str, ...]] = {
    "orders": ("ts_ms", "account", "seq", "client_order_id"),
    "fills": ("ts_ms", "account", "seq", "report_id"),
    "trades": ("close_ts_ms", "account", "seq", "trade_id"),
    "equity": ("ts_ms", "account"),
    "events": ("ts_ms", "account", "seq", "event_id"),
    "summaries": ("account",),
}


@contextmanager
def connect(url: str | Engine) -> Iterator[Connection]:
    """A connection to the journal at ``url`` (an open engine is used as is; a URL is
    opened with :func:`~gridflow.journal.schema.open_store` and disposed after)."""
    if isinstance(url, Engine):
        with url.connect() as conn:
            yield conn
        return
    engine = open_store(url)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def _read(url: str | Engine, run_id: str, attr: str) -> list[dict[str, Any]]:
    table = TABLES[attr][0].__table__
    with connect(url) as conn:
        result = conn.execute(select(table).where(table.c.run_id == run_id))
        rows = [dict(m) for m in result.mappings()]
    for r in rows:
        del r["run_id"]
    keys = SORT_KEYS[attr]
    rows.sort(key=lambda r: tuple(r[k] for k in keys))
    return rows


def read_orders(url: str | Engine, run_id: str) -> list[dict[str, Any]]:
    """Orders of a run as dicts of :class:`~gridflow.events.OrderRequest` fields.

    Parameters
    ----------
    url : str or sqlalchemy.Engine
    run_id : str

    Returns
    -------
    list[dict]
        Without ``run_id``, sorted by ``(ts_ms, account, seq, client_order_id)``.
    """
    return _read(url, run_id, "orders")


def read_fills(url: str | Engine, run_id: str) -> list[dict[str, Any]]:
    """Execution reports of a run, sorted by ``(ts_ms, account, seq, report_id)``."""
    return _read(url, run_id, "fills")


def read_trades(url: str | Engine, run_id: str) -> list[dict[str, Any]]:
    """Closed trades of a run, sorted by ``(close_ts_ms, account, seq, trade_id)``."""
    return _read(url, run_id, "trades")


def read_equity(url: str | Engine, run_id: str) -> list[dict[str, Any]]:
    """Equity snapshots of a run, sorted by ``(ts_ms, account)``."""
    return _read(url, run_id, "equity")


def read_events(url: str | Engine, run_id: str) -> list[dict[str, Any]]:
    """Journal events of a run, sorted by ``(ts_ms, account, seq, event_id)``."""
    return _read(url, run_id, "events")


def read_summaries(url: str | Engine, run_id: str) -> list[dict[str, Any]]:
    """Latest account summaries of a run, sorted by ``account``."""
    return _read(url, run_id, "summaries")


def complete_accounts(url: str | Engine, run_id: str) -> set[str]:
    """Accounts of a run whose latest summary says the run is complete (the account
    column only: the command and shutdown sources ask this many times a second)."""
    with connect(url) as conn:
        return set(conn.execute(_COMPLETE, {"run_id": run_id}).scalars())


_SUMMARIES = SummaryRow.__table__
_COMPLETE = select(_SUMMARIES.c.account).where(_SUMMARIES.c.run_id == bindparam("run_id"),
                                               _SUMMARIES.c.complete.is_(True))


def list_runs(url: str | Engine) -> list[dict[str, Any]]:
    """Every registered run, oldest first.

    Returns
    -------
    list[dict]
        :class:`~gridflow.journal.schema.RunRow` fields and ``name`` (the run's name,
        :mod:`gridflow.journal.names`, or None), sorted by ``(created_at_ms, run_id)``.
    """
    table, names = RunRow.__table__, NameRow.__table__
    named = table.outerjoin(names, (names.c.kind == "run") & (names.c.target_id == table.c.run_id))
    with connect(url) as conn:
        rows = [dict(m) for m in conn.execute(
            select(table, names.c.name).select_from(named)).mappings()]
    rows.sort(key=lambda r: (r["created_at_ms"], r["run_id"]))
    return rows


def latest_run_id(url: str | Engine) -> str | None:
    """The most recently registered run (largest ``created_at_ms``), or None."""
    runs = list_runs(url)
    return runs[-1]["run_id"] if runs else None


# --- broker outcomes (write-ahead journal of the broker sink) -------------------------

#: Broker statuses after which an intent is never sent again.
__all__ = [
    "SORT_KEYS",
    "TABLES",
    "BrokerRow",
    "EquityRow",
    "EventRow",
    "FillRow",
    "Journal",
    "OrderRow",
    "RunRow",
    "SummaryRow",
    "TradeRow",
    "complete_accounts",
    "kept_records",
    "latest_run_id",
    "list_runs",
    "open_store",
    "read_equity",
    "read_events",
    "read_fills",
    "read_orders",
    "read_summaries",
    "read_trades",
]
