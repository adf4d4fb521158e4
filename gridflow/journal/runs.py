"""The journal's runs as a catalogue: find a run by id or name, list runs with their
totals, delete a run.

Money in quote currency, timestamps ms UTC. Sweeps and walk-forward runs have their own
store (:mod:`gridflow.journal.sweep_store`); nothing here touches them.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, delete, func, select
from sqlmodel import SQLModel

from gridflow.journal import names as run_names
from gridflow.journal.schema import EquityRow, RunRow, SummaryRow, TradeRow
from gridflow.isotime import iso_utc
from gridflow.journal.store import connect, list_runs
from gridflow.timeframes import timeframe_to_ms

__all__ = ["candle_ms", "delete_run", "journal_tables", "resolve_run", "run_catalogue"]


def resolve_run(url: str | Engine, ref: str | None) -> str:
    """The run id ``ref`` names (an id or a run name), or the latest run when None.

    Raises
    ------
    LookupError
        ``NO_RUNS`` for a journal without runs; ``UNKNOWN_RUN`` (naming the latest
        runs there are, with their names) for a ``ref`` that is neither.
    """
    runs = list_runs(url)
    if not runs:
        where = url.url if isinstance(url, Engine) else url
        raise LookupError(f"NO_RUNS: the journal at {str(where)!r} has no registered run")
    if ref is None:
        return runs[-1]["run_id"]
    rid = run_names.resolve(url, "run", ref)
    if rid is None or rid not in {r["run_id"] for r in runs}:
        shown = ", ".join(r["run_id"] + (f" ({r['name']})" if r.get("name") else "")
                          for r in runs[-5:])
        more = f" (and {len(runs) - 5} older)" if len(runs) > 5 else ""
        raise LookupError(f"UNKNOWN_RUN: no run {ref!r} in the journal; runs: {shown}{more}")
    return rid


def candle_ms(run: dict[str, Any]) -> int:
    """The candle length (ms) of a ``runs`` row: the shortest timeframe of its data files
    (``data_json``), else the live timeframe of its config (``config_json``); 0 when
    neither is known. Rows with decoded ``data`` / ``config`` are read as they are."""
    def decoded(key: str) -> Any:
        if key in run:
            return run[key]
        try:
            return json.loads(run.get(f"{key}_json") or "null")
        except ValueError:
            return None

    data, config = decoded("data") or [], decoded("config") or {}
    tfs = [d.get("timeframe") for d in data if isinstance(d, dict)] if isinstance(
        data, list) else []
    if not tfs and isinstance(config, dict):
        tfs = [(config.get("live") or {}).get("timeframe")]
    out = []
    for tf in tfs:
        try:
            out.append(timeframe_to_ms(str(tf)))
        except (ValueError, KeyError, TypeError):
            continue
    return min(out) if out else 0


def journal_tables() -> list[Any]:
    """Every table holding rows of a run (a ``run_id`` column), children before
    ``runs``: the tables :func:`delete_run` empties of a run."""
    tables = [t for t in SQLModel.metadata.sorted_tables if "run_id" in t.c]
    return sorted(tables, key=lambda t: t.name == RunRow.__tablename__)


def delete_run(url: str | Engine, ref: str) -> dict[str, int]:
    """Delete every row of one run from every journal table, and its name, at once.

    Parameters
    ----------
    url : str or sqlalchemy.Engine
    ref : str
        Run id or run name (see :func:`resolve_run`).

    Returns
    -------
    dict[str, int]
        Table -> rows deleted (``names`` included); ``{"run_id": ...}`` is not there.

    Raises
    ------
    LookupError
        ``NO_RUNS`` / ``UNKNOWN_RUN`` as :func:`resolve_run` (nothing is deleted).

    Notes
    -----
    Commands (the ``commands`` table) are keyed by account, not by run, and stay. A flow
    still writing the run would write its rows again: stop it first.
    """
    rid = resolve_run(url, ref)
    out: dict[str, int] = {}
    with connect(url) as conn:
        for t in journal_tables():
            out[t.name] = int(conn.execute(delete(t).where(t.c.run_id == rid)).rowcount)
        out["names"] = int(run_names.delete_name(conn, "run", rid))
        conn.commit()
    return out


def run_catalogue(url: str | Engine) -> list[dict[str, Any]]:
    """Every run with its totals, oldest first (:func:`~gridflow.journal.store.list_runs`
    order).

    Returns
    -------
    list[dict]
        ``run_id``, ``name`` (or None), ``mode``, ``created_at_ms``, ``start_ms`` /
        ``end_ms`` (the window: the open of the first candle, i.e. the first equity
        snapshot less :func:`candle_ms`, to the last snapshot; None without), ``accounts``,
        ``candles`` (summed over the accounts), ``trades``, ``initial_capital``,
        ``final_equity`` and ``net_pnl = final_equity - initial_capital`` (quote, summed
        over the account summaries; 0.0 without any); ``created``, ``start``, ``end``:
        the three times as ISO 8601 UTC text (None where the ms are).
    """
    eq, sm, tr = EquityRow.__table__, SummaryRow.__table__, TradeRow.__table__
    with connect(url) as conn:
        window = {r[0]: (r[1], r[2]) for r in conn.execute(
            select(eq.c.run_id, func.min(eq.c.ts_ms), func.max(eq.c.ts_ms))
            .group_by(eq.c.run_id))}
        totals = {r[0]: r[1:] for r in conn.execute(
            select(sm.c.run_id, func.count(), func.sum(sm.c.candles),
                   func.sum(sm.c.initial_capital), func.sum(sm.c.equity))
            .group_by(sm.c.run_id))}
        trades = dict(conn.execute(select(tr.c.run_id, func.count()).group_by(tr.c.run_id))
                      .all())
    out = []
    for r in list_runs(url):
        rid = r["run_id"]
        first, last = window.get(rid, (None, None))
        n, candles, initial, final = totals.get(rid, (0, 0, 0.0, 0.0))
        initial, final = float(initial or 0.0), float(final or 0.0)
        start = None if first is None else int(first) - candle_ms(r)
        end = None if last is None else int(last)
        out.append({"run_id": rid, "name": r.get("name"), "mode": r["mode"],
                    "created_at_ms": int(r["created_at_ms"]), "start_ms": start,
                    "end_ms": end, "created": iso_utc(r["created_at_ms"]),
                    "start": None if start is None else iso_utc(start),
                    "end": None if end is None else iso_utc(end),
                    "accounts": int(n), "candles": int(candles or 0),
                    "trades": int(trades.get(rid, 0)), "initial_capital": initial,
                    "final_equity": final, "net_pnl": final - initial})
    return out
