"""Storage of parameter sweeps and walk-forward runs: tables, writers, readers.

Tables ``sweeps`` (one row per run), ``sweep_results`` (metrics of one combination;
a plain sweep has ``window = -1``, ``phase = "full"``, a walk-forward run windows
``0..W-1`` with phases ``"is"``/``"oos"``), ``wfo_windows`` and ``wfo_summaries`` live
in the journal database (defined in :mod:`gridflow.journal.sweep_schema`, created
with the journal tables by :func:`~gridflow.journal.schema.open_store`).

Writes are idempotent upserts on natural keys (the statements of
:mod:`gridflow.journal.store`). Money in quote currency, rates and drawdowns as
fractions, timestamps ms UTC. Metrics may be NaN or +-inf (SQLite stores NaN as NULL,
read back as NaN). JSON columns have sorted keys; non-finite floats in them are stored
as ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` (valid PostgreSQL JSON) and decoded back.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, Float, Integer, Table, delete, select, update
from sqlmodel import SQLModel

from gridflow.journal.schema import NameRow
from gridflow.journal.store import RawInsert, connect, insert_fn
from gridflow.journal.sweep_schema import (
    METRICS,
    RESULT_KEY,
    WINDOW_KEY,
    SweepResultRow,
    SweepRow,
    WfoSummaryRow,
    WfoWindowRow,
)

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


# --- value conversion -----------------------------------------------------------------
def _jsonable(v: Any) -> Any:
    """Plain JSON values: numpy scalars unwrapped, tuples as lists, non-finite floats
    as their string tokens."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def _unjson(v: Any) -> Any:
    """Inverse of :func:`_jsonable` (the tokens back to floats)."""
    if isinstance(v, str):
        return _NONFINITE.get(v, v)
    if isinstance(v, dict):
        return {k: _unjson(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_unjson(x) for x in v]
    return v


def _row(model: type[SQLModel], data: dict[str, Any], **fixed: Any) -> dict[str, Any]:
    """Parameters of one row: unknown keys refused, defaults filled, JSON made plain."""
    fields, table = model.model_fields, model.__table__
    data = {**data, **fixed}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{model.__tablename__}: unknown columns {unknown}")
    row: dict[str, Any] = {}
    for name, info in fields.items():
        if name in data:
            v = data[name]
        elif info.is_required():
            raise ValueError(f"{model.__tablename__}: missing column {name!r}")
        else:
            v = info.get_default(call_default_factory=True)
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and v.is_integer() and isinstance(table.c[name].type, Integer):
            v = int(v)  # counts computed in float arrays
        row[name] = _jsonable(v) if isinstance(v, (dict, list, tuple)) else v
    reserved = set(fields) - {"params"}
    clash = sorted(reserved & set(row.get("params") or {}))
    if clash:
        raise ValueError(f"{model.__tablename__}: parameter names {clash} clash with columns")
    return row


def _upsert(conn: Connection, model: type[SQLModel], key: Iterable[str],
            rows: list[dict[str, Any]]) -> None:
    """``INSERT .. ON CONFLICT (key) DO UPDATE`` of every other column."""
    if not rows:
        return
    table, index = model.__table__, list(key)
    stmt = insert_fn(conn.engine)(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=index,
        set_={c.name: stmt.excluded[c.name] for c in table.c if c.name not in index})
    if conn.engine.dialect.name == "sqlite":
        raw = RawInsert(conn.engine, stmt)
        conn.exec_driver_sql(raw.sql, raw.params(rows))
    else:
        conn.execute(stmt, rows)


def _dedup(rows: list[dict[str, Any]], key: tuple[str, ...]) -> list[dict[str, Any]]:
    """Last row per key (one statement must not touch a row twice on PostgreSQL)."""
    return list({tuple(r[k] for k in key): r for r in rows}.values())


def _fetch(conn: Connection, table: Table, **where: Any) -> list[dict[str, Any]]:
    """Rows of ``table`` whose columns equal the non-None ``where`` values."""
    q = select(table).where(*(table.c[k] == v for k, v in where.items() if v is not None))
    return [dict(m) for m in conn.execute(q).mappings()]


def _frame(table: Table, rows: list[dict[str, Any]], sort: list[str]) -> pd.DataFrame:
    """Rows to a frame: ``params`` expanded to columns placed after ``sort``, floats
    as float64 (NULL -> NaN), ints as int64; ``attrs["params"]`` names the parameters."""
    params = [_unjson(r.pop("params") or {}) for r in rows]
    cols = [c for c in table.c if c.name != "params"]
    base = pd.DataFrame(rows, columns=[c.name for c in cols])
    for c in cols:
        if isinstance(c.type, Float):
            base[c.name] = pd.to_numeric(base[c.name], errors="coerce").astype("float64")
        elif isinstance(c.type, Integer):
            base[c.name] = base[c.name].astype("int64")
    names = sorted({k for p in params for k in p})
    expanded = pd.DataFrame(params, columns=names)  # (pandas 2 reads an empty index as
    expanded.index = base.index                      # field names in from_records)
    n = len(sort)
    df = pd.concat([base.iloc[:, :n], expanded, base.iloc[:, n:]], axis=1)
    df = df.sort_values(sort, kind="stable").reset_index(drop=True)
    df.attrs["params"] = names
    return df


def param_names(df: pd.DataFrame) -> list[str]:
    """The parameter columns of a frame of :func:`read_results` or :func:`read_wfo`
    (``df.attrs["params"]`` restricted to the columns still in ``df``)."""
    return [p for p in df.attrs.get("params", []) if p in df.columns]


# --- sweeps and results ---------------------------------------------------------------
def create_sweep(url: str | Engine, sweep_id: str, kind: str, strategy: str,
                 symbols: list[str], spec: dict[str, Any], n_combos: int, *,
                 created_at_ms: int | None = None) -> None:
    """Register a sweep; registering it again (a restart) keeps the first row.

    Parameters
    ----------
    url : str or sqlalchemy.Engine
        Journal URL (see :func:`~gridflow.journal.schema.open_store`) or an engine.
    sweep_id, kind, strategy : str
        ``kind`` is ``"sweep"`` or ``"wfo"``, ``strategy`` e.g. ``"grid_atr"``.
    symbols : list[str]
    spec : dict
        Full spec (parameter grid, window, account config), stored as sorted JSON.
    n_combos : int
        Parameter combinations per symbol (and window).
    created_at_ms : int, optional
        Wall-clock ms UTC; defaults to now.

    Raises
    ------
    ValueError
        On an unknown ``kind``, or if ``sweep_id`` exists with a different kind,
        strategy, symbols or spec (``SWEEP_SPEC_MISMATCH``): use a new id.
    """
    if kind not in ("sweep", "wfo"):
        raise ValueError(f"sweep kind must be 'sweep' or 'wfo', not {kind!r}")
    now = time.time_ns() // 1_000_000 if created_at_ms is None else int(created_at_ms)
    row = {"sweep_id": sweep_id, "kind": kind, "strategy": strategy,
           "symbols": [str(s) for s in symbols], "n_combos": int(n_combos),
           "spec_json": json.dumps(_jsonable(spec), sort_keys=True),
           "status": "running", "elapsed_s": 0.0, "created_at_ms": now}
    table = SweepRow.__table__
    with connect(url) as conn:
        stmt = insert_fn(conn.engine)(table).on_conflict_do_nothing(index_elements=["sweep_id"])
        conn.execute(stmt, row)
        stored = dict(conn.execute(select(table).where(table.c.sweep_id == sweep_id))
                      .mappings().one())
        conn.commit()
    fields = ("kind", "strategy", "symbols", "spec_json", "n_combos")
    if any(stored[f] != row[f] for f in fields):
        raise ValueError(f"SWEEP_SPEC_MISMATCH: sweep {sweep_id!r} exists with another "
                         "kind, strategy, symbols or spec; use a new sweep_id")


def write_results(url: str | Engine, rows: list[dict[str, Any]]) -> int:
    """Upsert result rows (idempotent by ``(sweep_id, symbol, window, phase, combo_id)``).

    Parameters
    ----------
    url : str or sqlalchemy.Engine
        Pass an engine when writing often (a URL opens and closes one per call).
    rows : list of dict
        The key, ``params`` (name -> JSON value) and metrics of :data:`METRICS`
        (missing floats are stored as NaN, missing counts as 0).

    Returns
    -------
    int
        Rows written after deduplication by key (the last duplicate wins).

    Raises
    ------
    ValueError
        On an unknown or missing key column, or a parameter named like a column.
    """
    params = _dedup([_row(SweepResultRow, r) for r in rows], RESULT_KEY)
    if not params:
        return 0
    with connect(url) as conn:
        _upsert(conn, SweepResultRow, RESULT_KEY, params)
        conn.commit()
    return len(params)


def finish_sweep(url: str | Engine, sweep_id: str, elapsed_s: float) -> None:
    """Mark a sweep ``"done"`` after ``elapsed_s`` seconds of run time.

    Raises
    ------
    KeyError
        Unknown ``sweep_id``.
    """
    table = SweepRow.__table__
    with connect(url) as conn:
        n = conn.execute(update(table).where(table.c.sweep_id == sweep_id)
                         .values(status="done", elapsed_s=float(elapsed_s))).rowcount
        conn.commit()
    if not n:
        raise KeyError(f"unknown sweep {sweep_id!r}")


def list_sweeps(url: str | Engine) -> list[dict[str, Any]]:
    """Every stored sweep as :class:`SweepRow` fields and ``name`` (given with
    ``--name``, :mod:`gridflow.journal.names`, or None), newest first (by
    ``(created_at_ms, sweep_id)`` descending)."""
    table, names = SweepRow.__table__, NameRow.__table__
    named = table.outerjoin(names, (names.c.kind == "sweep")
                            & (names.c.target_id == table.c.sweep_id))
    with connect(url) as conn:
        rows = [dict(m) for m in conn.execute(
            select(table, names.c.name).select_from(named)).mappings()]
    rows.sort(key=lambda r: (r["created_at_ms"], r["sweep_id"]), reverse=True)
    return rows


def read_results(url: str | Engine, sweep_id: str, *, symbol: str | None = None,
                 window: int | None = None, phase: str | None = None) -> pd.DataFrame:
    """Results of a sweep, one row per ``(symbol, window, phase, combo_id)``.

    Parameters
    ----------
    url : str or sqlalchemy.Engine
    sweep_id : str
    symbol, window, phase : optional
        Filters (equality).

    Returns
    -------
    pandas.DataFrame
        Columns ``sweep_id, symbol, window, phase, combo_id``, then one column per
        parameter (sorted names; ``attrs["params"]``, see :func:`param_names`), then
        :data:`METRICS` (floats float64 with NaN for NULL, ints int64). Sorted by
        ``(symbol, window, phase, combo_id)``.
    """
    table = SweepResultRow.__table__
    with connect(url) as conn:
        rows = _fetch(conn, table, sweep_id=sweep_id, symbol=symbol, window=window,
                      phase=phase)
    return _frame(table, rows, list(RESULT_KEY))


# --- walk-forward ---------------------------------------------------------------------


def write_wfo(url: str | Engine, sweep_id: str, symbol: str, windows: list[dict[str, Any]],
              summary: dict[str, Any], grade: str) -> None:
    """Store the walk-forward windows, report and grade of one symbol (idempotent;
    stored windows of ``(sweep_id, symbol)`` missing from ``windows`` are deleted).

    Parameters
    ----------
    url : str or sqlalchemy.Engine
    sweep_id, symbol : str
    windows : list of dict
        :class:`WfoWindowRow` columns but ``sweep_id``/``symbol`` (times ms UTC, net PnL
        in quote, ``oos_max_drawdown`` a fraction).
    summary : dict
        The report (floats, strings, lists), e.g. ``dsr``, ``mc_p_value``,
        ``consistency``, ``oos_is_ratio``, ``stability``.
    grade : str
        Letter grade, e.g. ``"B"``.
    """
    rows = _dedup([_row(WfoWindowRow, w, sweep_id=sweep_id, symbol=symbol) for w in windows],
                  WINDOW_KEY)
    summ = _row(WfoSummaryRow, {"sweep_id": sweep_id, "symbol": symbol, "grade": str(grade),
                                "report": summary})
    table = WfoWindowRow.__table__
    with connect(url) as conn:
        conn.execute(delete(table).where(
            table.c.sweep_id == sweep_id, table.c.symbol == symbol,
            table.c.window.not_in([r["window"] for r in rows])))
        _upsert(conn, WfoWindowRow, WINDOW_KEY, rows)
        _upsert(conn, WfoSummaryRow, ("sweep_id", "symbol"), [summ])
        conn.commit()


def read_wfo(url: str | Engine, sweep_id: str) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Walk-forward windows and summaries of a run.

    Returns
    -------
    windows : pandas.DataFrame
        Columns ``sweep_id, symbol, window``, the parameters of the picked combination
        (``attrs["params"]``), then the other :class:`WfoWindowRow` columns; sorted by
        ``(symbol, window)``.
    summaries : dict
        Symbol -> ``{"grade": ..., **report}`` (non-finite floats restored).
    """
    table = WfoWindowRow.__table__
    with connect(url) as conn:
        rows = _fetch(conn, table, sweep_id=sweep_id)
        summ = _fetch(conn, WfoSummaryRow.__table__, sweep_id=sweep_id)
    windows = _frame(table, rows, list(WINDOW_KEY))
    summaries = {r["symbol"]: {"grade": r["grade"], **_unjson(r["report"] or {})}
                 for r in sorted(summ, key=lambda r: r["symbol"])}
    return windows, summaries


__all__ = [
    "METRICS", "RESULT_KEY", "SweepResultRow", "SweepRow",
    "WfoSummaryRow", "WfoWindowRow", "create_sweep", "finish_sweep", "list_sweeps",
    "param_names", "read_results", "read_wfo", "write_results", "write_wfo",
]
