"""The broker's journal rows (``broker_outcomes``): the write-ahead row of each order
intent before it is sent, and its final outcome after
(:mod:`gridflow.dataflows.broker_sink` owns the protocol)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, select

from gridflow.events import OrderOutcome
from gridflow.journal.schema import BrokerRow
from gridflow.journal.store import connect, insert_fn

#: Statuses after which an intent is done: nothing more is sent for it.
BROKER_TERMINAL = frozenset(
    {"sent", "duplicate", "rejected", "failed", "canceled", "not_found", "skipped"})


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
    table = BrokerRow.__table__
    follows = follows or {}
    statuses: list[str | None] = []
    followed: dict[int, str | None] = {}
    with connect(url) as conn:
        insert = insert_fn(conn.engine)(table).on_conflict_do_nothing(
            index_elements=["run_id", "intent_id"])

        def begin(outcome: OrderOutcome) -> str | None:
            if conn.execute(insert, _broker_params(run_id, outcome, status="sending")).rowcount:
                return None
            return conn.execute(select(table.c.status).where(
                table.c.run_id == run_id,
                table.c.intent_id == outcome.intent_id)).scalar_one()

        for i, outcome in enumerate(outcomes):
            statuses.append(begin(outcome))
            if statuses[-1] is None and i in follows:
                followed[i] = begin(follows[i])
        conn.commit()
    return statuses, followed


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
    table = BrokerRow.__table__
    key = ["run_id", "intent_id"]
    with connect(url) as conn:
        stmt = insert_fn(conn.engine)(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=key,
            set_={c.name: stmt.excluded[c.name] for c in table.c if c.name not in key})
        last = {o.intent_id: o for o in outcomes}
        conn.execute(stmt, [_broker_params(run_id, o) for o in last.values()])
        conn.commit()


def broker_ids(url: str | Engine, run_id: str, since_ms: int,
               statuses: frozenset[str]) -> list[tuple[str, int]]:
    """``(intent_id, ts_ms)`` of the rows in ``statuses`` whose ``ts_ms`` is at or after
    ``since_ms``: what a poller looks at before reading the rows it has not seen
    (:func:`read_broker` with ``intent_ids``)."""
    table = BrokerRow.__table__
    with connect(url) as conn:
        return [(r[0], int(r[1])) for r in conn.execute(
            select(table.c.intent_id, table.c.ts_ms).where(
                table.c.run_id == run_id, table.c.ts_ms >= since_ms,
                table.c.status.in_(sorted(statuses))))]


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
    table = BrokerRow.__table__
    where = [table.c.run_id == run_id]
    if statuses is not None:
        where.append(table.c.status.in_(sorted(statuses)))
    if intent_ids is not None:
        where.append(table.c.intent_id.in_(intent_ids))
    with connect(url) as conn:
        rows = [dict(m) for m in conn.execute(select(table).where(*where)).mappings()]
    for r in rows:
        del r["run_id"]
        r["faults"] = json.loads(r["faults"] or "[]")
    rows.sort(key=lambda r: (r["ts_ms"], r["intent_id"]))
    return rows


__all__ = ["BROKER_TERMINAL", "broker_begin", "broker_ids", "broker_begin_many", "broker_finish",
           "broker_finish_many", "read_broker"]
