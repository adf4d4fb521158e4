"""Names of journal runs and sweeps: one row each in the ``names`` table.

A name is what a person calls a run (``gridflow replay --name``) or a sweep /
walk-forward run (``gridflow sweep --name``, ``gridflow wfo --name``). It is unique per
kind in a journal, so it can stand for the id: :func:`resolve` takes either. The table
(:class:`~gridflow.journal.schema.NameRow`) is separate from ``runs`` and ``sweeps``, so
journals written before names need no migration.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError

from gridflow.journal.schema import NameRow, RunRow
from gridflow.journal.store import connect, insert_fn
from gridflow.journal.sweep_schema import SweepRow

__all__ = ["KINDS", "MAX_NAME_CHARS", "check_name", "check_name_free", "delete_name",
           "name_of", "names", "resolve", "set_name"]

#: kind -> (table of the named things, its id column).
KINDS: dict[str, tuple[Any, str]] = {"run": (RunRow.__table__, "run_id"),
                                     "sweep": (SweepRow.__table__, "sweep_id")}
MAX_NAME_CHARS = 100
"""Longest name accepted (characters)."""


def check_name(name: str) -> str:
    """``name`` without surrounding blanks, if it can be a name.

    Raises
    ------
    ValueError
        ``BAD_NAME``: empty, longer than :data:`MAX_NAME_CHARS`, or holding a control
        character (a newline, a tab...).
    """
    text = str(name).strip()
    if not text:
        raise ValueError("BAD_NAME: a name must not be empty")
    if len(text) > MAX_NAME_CHARS:
        raise ValueError(f"BAD_NAME: a name has at most {MAX_NAME_CHARS} characters, "
                         f"got {len(text)}")
    if not text.isprintable():
        raise ValueError(f"BAD_NAME: {text!r} holds a control character")
    return text


def _kind(kind: str) -> tuple[Any, str]:
    if kind not in KINDS:
        raise ValueError(f"name kind must be one of {sorted(KINDS)}, not {kind!r}")
    return KINDS[kind]


def names(url: str | Engine, kind: str) -> dict[str, str]:
    """Every name of ``kind`` (``"run"`` or ``"sweep"``): target id -> name.

    Raises
    ------
    ValueError
        On an unknown kind.
    """
    _kind(kind)
    t = NameRow.__table__
    with connect(url) as conn:
        rows = conn.execute(select(t.c.target_id, t.c.name).where(t.c.kind == kind)).all()
    return dict(sorted((str(a), str(b)) for a, b in rows))


def name_of(url: str | Engine, kind: str, target_id: str) -> str | None:
    """The name of one run or sweep, or None."""
    return names(url, kind).get(target_id)


def _check_free(conn: Any, kind: str, target_id: str, name: str) -> None:
    table, id_col = KINDS[kind]
    t = NameRow.__table__
    owner = conn.execute(select(t.c.target_id).where(t.c.kind == kind, t.c.name == name)
                         ).scalar_one_or_none()
    if owner is not None and owner != target_id:
        raise ValueError(f"NAME_TAKEN: the name {name!r} belongs to {kind} {owner!r}; "
                         "give another --name (names are unique in a journal)")
    if name != target_id and conn.execute(
            select(table.c[id_col]).where(table.c[id_col] == name)).first() is not None:
        raise ValueError(f"NAME_TAKEN: {name!r} is the id of another {kind}; give "
                         "another --name")


def check_name_free(url: str | Engine, kind: str, target_id: str, name: str) -> str:
    """``name`` (stripped) if ``target_id`` may take it: before a run starts, so that a
    name in use is refused before anything runs. Raises as :func:`set_name`."""
    _kind(kind)
    text = check_name(name)
    with connect(url) as conn:
        _check_free(conn, kind, target_id, text)
    return text


def set_name(url: str | Engine, kind: str, target_id: str, name: str,
             *, created_at_ms: int | None = None) -> str:
    """Give ``target_id`` the name ``name`` (replacing its old name; the same name again
    is a no-op).

    Parameters
    ----------
    url : str or sqlalchemy.Engine
    kind : str
        ``"run"`` (a journal run id) or ``"sweep"`` (a sweep or walk-forward id).
    target_id : str
        Need not be registered yet.
    name : str
        See :func:`check_name`.
    created_at_ms : int, optional
        Wall-clock ms UTC; defaults to now.

    Returns
    -------
    str
        The name stored (stripped).

    Raises
    ------
    ValueError
        ``BAD_NAME`` (see :func:`check_name`); ``NAME_TAKEN`` when another run (sweep)
        has this name or this id: names are unique per kind and journal, and may not
        hide an id.
    """
    _kind(kind)
    text = check_name(name)
    t = NameRow.__table__
    now = time.time_ns() // 1_000_000 if created_at_ms is None else int(created_at_ms)
    with connect(url) as conn:
        _check_free(conn, kind, target_id, text)
        stmt = insert_fn(conn.engine)(t)
        stmt = stmt.on_conflict_do_update(index_elements=["kind", "target_id"],
                                          set_={"name": stmt.excluded.name})
        try:
            conn.execute(stmt, {"kind": kind, "target_id": target_id, "name": text,
                                "created_at_ms": now})
            conn.commit()
        except IntegrityError:  # named by someone else in between
            raise ValueError(f"NAME_TAKEN: the name {text!r} was just given to another "
                             f"{kind}; give another --name") from None
    return text


def delete_name(conn: Any, kind: str, target_id: str) -> int:
    """Delete the name of ``target_id`` inside the caller's transaction ``conn``;
    returns the rows deleted (0 or 1)."""
    _kind(kind)
    t = NameRow.__table__
    return conn.execute(delete(t).where(t.c.kind == kind, t.c.target_id == target_id)).rowcount


def resolve(url: str | Engine, kind: str, ref: str) -> str | None:
    """The id ``ref`` stands for: itself when it is a registered id, else the id named
    ``ref``, else None (an id wins over a name; :func:`set_name` keeps them apart)."""
    table, id_col = _kind(kind)
    t = NameRow.__table__
    with connect(url) as conn:
        if conn.execute(select(table.c[id_col]).where(table.c[id_col] == ref)).first():
            return ref
        return conn.execute(select(t.c.target_id).where(t.c.kind == kind, t.c.name == ref)
                            ).scalar_one_or_none()
