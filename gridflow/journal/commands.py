"""The command table: control commands are rows, read in insertion order.

The Panel app, the notebooks and :class:`gridflow.control.client.GridflowClient` write
commands here (:func:`issue_command`); the dataflow's command source reads them
(:func:`read_commands`) and the account engine applies them and journals an
acknowledgement (``command_applied`` or ``command_rejected`` events,
``event_id = "command_ack:{account}:{command_id}"``).

Order
-----
``commands.command_id`` is the store's primary key, but its values say nothing about
order: another writer may insert any id (negative, ``2**63 - 1``, with gaps), and once
the largest SQLite rowid is taken SQLite hands out random ones. So the order is kept
apart, in the ``command_order`` table this module owns (created on first use, also in
journals whose ``commands`` table predates it): ``seq`` (1, 2, 3 ... in commit order)
and the ``command_id`` it orders (unique). Every command gets the next ``seq`` when it
is registered: :func:`issue_command` registers its own row in the transaction that
inserts it, after any row some other writer inserted before it; a reader first
registers the rows nobody registered yet (ordered by id among themselves). A reader
then needs only the last ``seq`` it read to find every later command exactly once.

``seq`` is ``max + 1`` under the table's primary key, not a database sequence: two
writers that race for the same ``seq`` (PostgreSQL) collide on the key and the loser
retries after the winner committed, so ``seq`` values become visible in increasing
order and a reader never skips one committed late. Only SQLAlchemy Core constructs
are used (a window function in ``INSERT .. SELECT``: SQLite >= 3.25, PostgreSQL).

Commands are append-only: nothing in gridflow deletes them. A row deleted by hand
should take its ``command_order`` row with it: a reader looks for unregistered rows
only when the two tables' row counts differ, and a new row with a deleted row's id
would count as registered.
"""

from __future__ import annotations

import json
import time
import weakref
from typing import Any

import tenacity
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Integer,
    String,
    Table,
    case,
    exists,
    func,
    insert,
    literal,
    select,
    type_coerce,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from gridflow.journal.busy import is_locked
from gridflow.journal.schema import SQLModel, open_store

COMMANDS = Table(
    "commands",
    SQLModel.metadata,
    Column("command_id", Integer, primary_key=True, autoincrement=True),
    Column("account", String, nullable=False, index=True),
    Column("kind", String, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("issued_at_ms", BigInteger, nullable=False),
    Column("issued_by", String, nullable=False),
)

COMMAND_ORDER = Table(
    "command_order",
    SQLModel.metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("command_id", BigInteger, nullable=False, unique=True),
)
"""Insertion order of the commands: ``seq`` 1, 2, 3 ... and the command it orders."""

_READY: weakref.WeakSet[Engine] = weakref.WeakSet()
_ATTEMPTS = 8  # register / issue: lock waits and lost races for a seq


def _engine(url: str | Engine) -> Engine:
    eng = url if isinstance(url, Engine) else open_store(url)
    if eng not in _READY:  # create the tables once per engine, not on every poll
        COMMANDS.create(eng, checkfirst=True)
        COMMAND_ORDER.create(eng, checkfirst=True)
        _READY.add(eng)
    return eng


def _race(exc: BaseException) -> bool:
    """A lock error or a lost race for a ``seq`` / registration (unique key)."""
    if is_locked(exc):
        return True
    text = str(getattr(exc, "orig", exc)).lower()
    return isinstance(exc, IntegrityError) and ("unique" in text or "duplicate key" in text)


def _retrying(fn, *args):
    """``fn(*args)`` (one transaction) again after a lock error or a lost race."""
    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(_ATTEMPTS),
        wait=tenacity.wait_random_exponential(multiplier=0.02, max=1.0),
        retry=tenacity.retry_if_exception(_race), reraise=True,
    )(fn, *args)


def _unregistered():
    c, o = COMMANDS.c, COMMAND_ORDER.c
    return ~exists().where(o.command_id == c.command_id)


_UNREGISTERED = (select(func.count()).select_from(COMMANDS).scalar_subquery()
                 - select(func.count()).select_from(COMMAND_ORDER).scalar_subquery())
"""Rows of ``commands`` minus rows of ``command_order``: > 0 when some command has no
``seq`` yet (a cheap check: two counts, no join)."""
_NEWEST = select(func.coalesce(func.max(COMMAND_ORDER.c.seq), 0)).scalar_subquery()
_PROBE = select(_UNREGISTERED, _NEWEST)  # built once: a poll runs it many times a second
_COUNT = select(_UNREGISTERED)


def _unregistered_count(conn: Connection) -> int:
    """:data:`_UNREGISTERED`, read."""
    return int(conn.execute(_COUNT).scalar_one())


def _probe(conn: Connection) -> tuple[int, int]:
    """``(unregistered rows, newest seq)`` in one statement (0 when there is none): a
    reader that read up to the newest ``seq`` and finds no unregistered row has nothing
    to read."""
    got = conn.execute(_PROBE).one()
    return int(got[0]), int(got[1])


def _register(conn: Connection, last: int | None = None) -> None:
    """Give every unregistered command the next ``seq`` values, in id order, ``last``
    (a command id) after all others; one ``INSERT .. SELECT`` statement."""
    c, o = COMMANDS.c, COMMAND_ORDER.c
    top = select(func.coalesce(func.max(o.seq), 0)).scalar_subquery()
    if last is not None and _unregistered_count(conn) == 1:  # only ``last``: no join
        conn.execute(insert(COMMAND_ORDER).from_select(
            ["seq", "command_id"], select(top + 1, literal(last, BigInteger))))
        return
    order = [c.command_id] if last is None else [case((c.command_id == last, 1), else_=0),
                                                 c.command_id]
    pending = select((top + func.row_number().over(order_by=order)).label("seq"),
                     c.command_id).where(_unregistered())
    conn.execute(insert(COMMAND_ORDER).from_select(["seq", "command_id"], pending))


def register_commands(url: str | Engine) -> None:
    """Give the rows other writers inserted directly their ``seq`` (see the module doc).

    Whether there are any is told by the row counts of the two tables (checked on every
    poll); only then are the unregistered rows looked for.
    """
    eng = _engine(url)
    with eng.connect() as conn:
        if _unregistered_count(conn) == 0:
            return

    def once() -> None:
        with eng.begin() as conn:
            _register(conn)

    _retrying(once)


def issue_command(url: str | Engine, account: str, kind: str, payload: dict[str, Any] | None,
                  issued_by: str, issued_at_ms: int | None = None) -> int:
    """Append a command; returns its ``command_id``.

    Nothing is validated here on purpose: the command source validates every command
    and the engine applies it, each journaling a rejection with its reason, so a
    malformed command is visible in the journal like any other. ``payload`` must be
    JSON-serialisable. The command is registered (given its ``seq``) in the same
    transaction, after the unregistered rows of other writers.

    Raises
    ------
    TypeError
        If ``payload`` cannot be serialised to JSON.
    sqlalchemy.exc.OperationalError
        The database stayed locked through the retries.
    """
    json.dumps(payload or {})
    eng = _engine(url)
    row = {"account": account, "kind": kind, "payload": payload or {},
           "issued_at_ms": int(issued_at_ms if issued_at_ms is not None
                               else time.time() * 1000),
           "issued_by": issued_by}

    def once() -> int:
        with eng.begin() as conn:  # the insert first: it takes SQLite's write lock
            cid = int(conn.execute(insert(COMMANDS).values(**row)).inserted_primary_key[0])
            _register(conn, last=cid)
        return cid

    return _retrying(once)


def read_commands(url: str | Engine, after_seq: int = 0, limit: int = 1000
                  ) -> list[dict[str, Any]]:
    """Commands registered after ``after_seq``, oldest first (registering new rows of
    other writers first).

    Returns
    -------
    list[dict]
        The ``commands`` columns plus ``seq``. ``payload`` is what the database holds:
        a dict, or (SQLite) the stored text or bytes as they are, since another writer
        may have stored anything; :class:`~gridflow.events.Command` validates it.
    """
    eng = _engine(url)
    with eng.connect() as conn:
        unregistered, newest = _probe(conn)
    if unregistered:
        register_commands(eng)
    elif newest <= after_seq:
        return []  # the usual poll: one cheap statement, no join
    c, o = COMMANDS.c, COMMAND_ORDER.c
    cols = [o.seq, c.command_id, c.account, c.kind,
            type_coerce(c.payload, String).label("payload"),
            c.issued_at_ms, c.issued_by]
    with eng.connect() as conn:
        rows = conn.execute(
            select(*cols).join_from(COMMAND_ORDER, COMMANDS, o.command_id == c.command_id)
            .where(o.seq > after_seq).order_by(o.seq).limit(limit)
        ).mappings().all()
    return [dict(r) for r in rows]


def last_command_seq(url: str | Engine) -> int:
    """The ``seq`` of the latest command (0 when none), after registering new rows:
    a reader starting there reads only commands issued from now on."""
    eng = _engine(url)
    register_commands(eng)
    with eng.connect() as conn:
        v = conn.execute(select(func.max(COMMAND_ORDER.c.seq))).scalar()
    return int(v or 0)


def seq_after_id(url: str | Engine, after_id: int) -> int:
    """The ``seq`` a reader that read every command up to id ``after_id`` resumes after
    (the resume state of command sources before ``seq`` existed was the last id)."""
    eng = _engine(url)
    register_commands(eng)
    with eng.connect() as conn:
        v = conn.execute(select(func.max(COMMAND_ORDER.c.seq))
                         .where(COMMAND_ORDER.c.command_id <= after_id)).scalar()
    return int(v or 0)


def last_command_id(url: str | Engine) -> int:
    """The highest command id so far (0 when none); says whether a command was written,
    not which one was last (ids need not increase: see the module doc)."""
    eng = _engine(url)
    with eng.connect() as conn:
        v = conn.execute(select(func.max(COMMANDS.c.command_id))).scalar()
    return int(v or 0)
