"""The broker's journal rows (``broker_outcomes``): the write-ahead row of each order
intent before it is sent, and its final outcome after
(:mod:`gridflow.dataflows.broker_sink` owns the protocol)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, bindparam, select

from gridflow.events import OrderOutcome
from gridflow.journal.schema import BrokerRow
from gridflow.journal.store import connect, insert_fn

#: Statuses after which an intent is done: nothing more is sent for it.
BROKER_TERMINAL = frozenset(
    {"sent", "duplicate", "rejected", "failed", "canceled", "not_found", "skipped"})


_TABLE = BrokerRow.__table__
_KEY = ["run_id", "intent_id"]
_IDS = select(_TABLE.c.intent_id, _TABLE.c.ts_ms).where(
    _TABLE.c.run_id == bindparam("b_run"), _TABLE.c.ts_ms >= bindparam("b_since"),
    _TABLE.c.status.in_(bindparam("b_statuses", expanding=True)))
_WRITES: dict[str, tuple[Any, Any]] = {}  # dialect -> (begin insert, finish upsert)
_READS: dict[tuple[bool, bool], Any] = {}  # (by status, by intent id) -> select
# Built once, not per call: the broker and the outcome reader run these many times a
# second, and SQLAlchemy derives a cache key from every newly built statement.


def _writes(engine: Engine) -> tuple[Any, Any]:
    """``(insert-or-ignore returning the intent ids it inserted, upsert)`` of
    ``broker_outcomes`` in ``engine``'s dialect."""
    got = _WRITES.get(engine.dialect.name)
    if got is None:
        insert = insert_fn(engine)
        upsert = insert(_TABLE)
        upsert = upsert.on_conflict_do_update(
            index_elements=_KEY,
            set_={c.name: upsert.excluded[c.name] for c in _TABLE.c if c.name not in _KEY})
        got = _WRITES[engine.dialect.name] = (
            insert(_TABLE).on_conflict_do_nothing(index_elements=_KEY).returning(
                _TABLE.c.intent_id), upsert)
    return got


def _read_statement(by_status: bool, by_id: bool) -> Any:
    got = _READS.get((by_status, by_id))
    if got is None:
        where = [_TABLE.c.run_id == bindparam("b_run")]
        if by_status:
            where.append(_TABLE.c.status.in_(bindparam("b_statuses", expanding=True)))
        if by_id:
            where.append(_TABLE.c.intent_id.in_(bindparam("b_ids", expanding=True)))
        got = _READS[(by_status, by_id)] = select(_TABLE).where(*where)
    return got


def _broker_params(run_id: str, outcome: OrderOutcome, **override: Any) -> dict[str, Any]:
    row = {"run_id": run_id, **outcome.model_dump(), **override}
    row["faults"] = json.dumps(list(row["faults"]))
    return row


def broker_begin(url: str | Engine, run_id: str, outcome: OrderOutcome) -> str | None:
    """Write ahead: insert ``outcome`` as a ``"sending"`` row unless the intent has one.

    Parameters
    ----------
    url : str or sqlalchemy.Engine
        Journal URL (see :func:`open_store`) or an open engine (cheaper per call).
    run_id : str
    outcome : OrderOutcome
        Identifies the intent (``intent_id``) and fills the row; its ``status`` is
        replaced by ``"sending"``.

    Returns
    -------
    str or None
        None when the row was inserted now (the caller owns the request); otherwise
        the stored status of the existing row (``"sending"`` = a previous attempt
        crashed with its outcome unknown, or one of :data:`BROKER_TERMINAL`).

    Raises
    ------
    sqlalchemy.exc.SQLAlchemyError
        The journal cannot be written.
    """
    return broker_begin_many(url, run_id, [outcome])[0][0]


def broker_begin_many(
        url: str | Engine, run_id: str, outcomes: list[OrderOutcome],
        follows: Mapping[int, OrderOutcome] | None = None,
) -> tuple[list[str | None], dict[int, str | None]]:
    """:func:`broker_begin` for several intents in one transaction (one commit: a
    batch of intents costs one durable write before any of them is sent).

    Parameters
    ----------
    url, run_id
        As :func:`broker_begin`.
    outcomes : list[OrderOutcome]
        The intents to begin, in order.
    follows : mapping, optional
        Index into ``outcomes`` -> a second row begun with it only when that intent's
        row is inserted now: a replacement's cancel of its old order, whose row
        exists only if the replacement itself is being sent.

    Returns
    -------
    (list[str or None], dict[int, str or None])
        Per outcome, in order, what :func:`broker_begin` returns for it; and per
        follow row begun, keyed like ``follows``, the same. An intent id given twice
        is inserted at its first occurrence and reads ``"sending"`` at the second.

    Raises
    ------
    sqlalchemy.exc.SQLAlchemyError
        The journal cannot be written (nothing of the batch is written).
    """
    follows = follows or {}
    with connect(url) as conn:
        inserted: set[str] = set()  # intent ids whose row this call inserted
        mains = _begin_rows(conn, run_id, outcomes, inserted)
        parents = [i for i in follows if mains[i][0]]
        subs = _begin_rows(conn, run_id, [follows[i] for i in parents], inserted)
        found = {o.intent_id for o in outcomes} | {follows[i].intent_id for i in parents}
        stored = _stored_statuses(conn, run_id, found - inserted)
        statuses = [None if own else "sending" if mine else stored[o.intent_id]
                    for (own, mine), o in zip(mains, outcomes)]
        followed = {i: None if own else "sending" if mine else stored[follows[i].intent_id]
                    for i, (own, mine) in zip(parents, subs)}
        conn.commit()
    return statuses, followed


def _begin_rows(conn: Any, run_id: str, outcomes: list[OrderOutcome], inserted: set[str]
                ) -> list[tuple[bool, bool]]:
    """Insert the ``"sending"`` rows of ``outcomes`` not stored yet, in one statement
    (``INSERT ... ON CONFLICT DO NOTHING RETURNING``: one round through SQLAlchemy for
    a batch instead of one per intent). Per outcome: (its row was inserted here, at this
    occurrence; its row was inserted by this call at an earlier occurrence or an
    earlier :func:`_begin_rows`, so it reads ``"sending"``). ``inserted`` gains the ids
    inserted."""
    fresh: dict[str, dict[str, Any]] = {}
    for o in outcomes:
        if o.intent_id not in inserted and o.intent_id not in fresh:
            fresh[o.intent_id] = _broker_params(run_id, o, status="sending")
    now: set[str] = set()
    if fresh:  # executemany with RETURNING: SQLAlchemy sends it as multi-row INSERTs
        now = {r[0] for r in conn.execute(_writes(conn.engine)[0], list(fresh.values()))}
    out: list[tuple[bool, bool]] = []
    first: set[str] = set()
    for o in outcomes:
        own = o.intent_id in now and o.intent_id not in first
        first.add(o.intent_id)
        out.append((own, not own and (o.intent_id in now or o.intent_id in inserted)))
    inserted |= now
    return out


def _stored_statuses(conn: Any, run_id: str, ids: set[str]) -> dict[str, str]:
    """Intent id -> the status of its stored row, for ``ids`` (one select)."""
    if not ids:
        return {}
    rows = conn.execute(_read_statement(False, True), {"b_run": run_id, "b_ids": sorted(ids)})
    return {r.intent_id: r.status for r in rows}


def broker_finish(url: str | Engine, run_id: str, outcome: OrderOutcome) -> None:
    """Store the final ``outcome`` of an intent: status, exchange id, attempts, error
    and faults (inserted if :func:`broker_begin` was skipped)."""
    broker_finish_many(url, run_id, [outcome])


def broker_finish_many(url: str | Engine, run_id: str, outcomes: list[OrderOutcome]) -> None:
    """:func:`broker_finish` for several outcomes in one transaction (one commit); of
    two outcomes of one intent, the later is stored.

    Raises
    ------
    sqlalchemy.exc.SQLAlchemyError
        The journal cannot be written (nothing of the batch is written).
    """
    if not outcomes:
        return
    with connect(url) as conn:
        stmt = _writes(conn.engine)[1]
        last = {o.intent_id: o for o in outcomes}
        conn.execute(stmt, [_broker_params(run_id, o) for o in last.values()])
        conn.commit()


def broker_ids(url: str | Engine, run_id: str, since_ms: int,
               statuses: frozenset[str]) -> list[tuple[str, int]]:
    """``(intent_id, ts_ms)`` of the rows in ``statuses`` whose ``ts_ms`` is at or after
    ``since_ms``: what a poller looks at before reading the rows it has not seen
    (:func:`read_broker` with ``intent_ids``)."""
    with connect(url) as conn:
        return [(r[0], int(r[1])) for r in conn.execute(_IDS, {
            "b_run": run_id, "b_since": since_ms, "b_statuses": sorted(statuses)})]


def read_broker(url: str | Engine, run_id: str, statuses: frozenset[str] | None = None,
                intent_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """Broker outcomes of a run as dicts of :class:`~gridflow.events.OrderOutcome`
    fields (``faults`` decoded to a list), sorted by ``(ts_ms, intent_id)``.

    Parameters
    ----------
    statuses : frozenset[str], optional
        Only rows in these statuses (e.g. :data:`BROKER_TERMINAL`).
    intent_ids : list[str], optional
        Only these intents.
    """
    params: dict[str, Any] = {"b_run": run_id}
    if statuses is not None:
        params["b_statuses"] = sorted(statuses)
    if intent_ids is not None:
        params["b_ids"] = list(intent_ids)
    stmt = _read_statement(statuses is not None, intent_ids is not None)
    with connect(url) as conn:
        rows = [dict(m) for m in conn.execute(stmt, params).mappings()]
    for r in rows:
        del r["run_id"]
        r["faults"] = json.loads(r["faults"] or "[]")
    rows.sort(key=lambda r: (r["ts_ms"], r["intent_id"]))
    return rows


__all__ = ["BROKER_TERMINAL", "broker_begin", "broker_ids", "broker_begin_many", "broker_finish",
           "broker_finish_many", "read_broker"]
