"""The command table: control commands are rows, ordered by their id.

The Panel app, the notebooks and :class:`gridflow.control.client.GridflowClient` write
commands here; the dataflow's command source reads them in id order and the account
engine applies them and journals an acknowledgement (``command_applied`` or
``command_rejected`` events, ``event_id = "command_ack:{account}:{command_id}"``).
"""

from __future__ import annotations

import json
import time
import weakref
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Integer, String, Table, insert, select
from sqlalchemy.engine import Engine

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


_READY: weakref.WeakSet[Engine] = weakref.WeakSet()


def _engine(url: str | Engine) -> Engine:
    eng = url if isinstance(url, Engine) else open_store(url)
    if eng not in _READY:  # create the table once per engine, not on every poll
        COMMANDS.create(eng, checkfirst=True)
        _READY.add(eng)
    return eng


def issue_command(url: str | Engine, account: str, kind: str, payload: dict[str, Any] | None,
                  issued_by: str, issued_at_ms: int | None = None) -> int:
    """Append a command; returns its ``command_id``.

    Nothing is validated here on purpose: the engine validates every command and
    journals a rejection with its reason, so a malformed command is visible in the
    journal like any other. ``payload`` must be JSON-serialisable.

    Raises
    ------
    TypeError
        If ``payload`` cannot be serialised to JSON.
    """
    json.dumps(payload or {})
    eng = _engine(url)
    with eng.begin() as conn:
        res = conn.execute(insert(COMMANDS).values(
            account=account, kind=kind, payload=payload or {},
            issued_at_ms=int(issued_at_ms if issued_at_ms is not None else time.time() * 1000),
            issued_by=issued_by,
        ))
        return int(res.inserted_primary_key[0])


def read_commands(url: str | Engine, after_id: int, limit: int = 1000) -> list[dict[str, Any]]:
    """Commands with ``command_id > after_id``, oldest first."""
    eng = _engine(url)
    with eng.connect() as conn:
        rows = conn.execute(
            select(COMMANDS).where(COMMANDS.c.command_id > after_id)
            .order_by(COMMANDS.c.command_id).limit(limit)
        ).mappings().all()
    return [dict(r) for r in rows]


def last_command_id(url: str | Engine) -> int:
    """The highest command id so far (0 when none)."""
    from sqlalchemy import func

    eng = _engine(url)
    with eng.connect() as conn:
        v = conn.execute(select(func.max(COMMANDS.c.command_id))).scalar()
    return int(v or 0)
