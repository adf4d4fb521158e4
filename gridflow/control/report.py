"""Reports over the journal: a diffable event log and the performance summary.

:func:`journal_lines` renders a run as JSON lines holding only deterministic fields,
so two runs (``-w 1`` vs ``-w 2``, interrupted vs uninterrupted) compare with
``diff``. :func:`compute_report` gives the numbers a trader reads first.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, select

from gridflow import metrics
from gridflow.journal.runs import resolve_run
from gridflow.journal.schema import EquityRow, EventRow, FillRow, OrderRow, TradeRow, open_store
from gridflow.journal.schema import strict_json  # noqa: F401  (re-exported: one NaN rule)
from gridflow.journal.store import (
    read_equity,
    read_events,
    read_fills,
    read_orders,
    read_summaries,
    read_trades,
)

FILL_STATUSES = ("filled", "partially_filled")

#: record name -> (reader, time field, id field); the order of the keys is the rank
#: that breaks ties at equal (ts, account, seq): an order sorts before its fill.
_KINDS = {
    "order": (read_orders, "ts_ms", "client_order_id"),
    "fill": (read_fills, "ts_ms", "report_id"),
    "trade": (read_trades, "close_ts_ms", "trade_id"),
    "event": (read_events, "ts_ms", "event_id"),
    "equity": (read_equity, "ts_ms", None),
}


def _resolve_run(engine: Engine, run_id: str | None) -> str:
    """The run ``run_id`` names (a run id or a run name), else the latest run when
    ``run_id`` is None (:func:`gridflow.journal.runs.resolve_run`).

    Raises
    ------
    LookupError
        ``NO_RUNS`` for a journal without runs; ``UNKNOWN_RUN`` (naming the runs there
        are) for a run it does not have.
    """
    return resolve_run(engine, run_id)


def journal_lines(
    url: str | Engine, run_id: str | None = None, include: Iterable[str] = ("order", "fill")
) -> list[str]:
    """The journal of a run as deterministic, diffable JSON lines.

    Parameters
    ----------
    url : str or sqlalchemy.Engine
        Journal database.
    run_id : str, optional
        Defaults to the latest registered run.
    include : iterable of str
        Record kinds, any of ``"order"``, ``"fill"``, ``"trade"``, ``"event"``,
        ``"equity"``; orders and fills by default.

    Returns
    -------
    list[str]
        One ``json.dumps(record, sort_keys=True)`` per record, with a ``"record"``
        field naming its kind, merged in event order by
        ``(ts_ms, account, seq, kind rank, id)`` where the kind rank puts an order
        before its fill (then trade, event, equity) and ``ts_ms`` of a trade is its
        ``close_ts_ms``. Only the records' own fields are written: no ``run_id``, no
        wall-clock time, no database-assigned ids. Floats are printed with ``repr``.

    Raises
    ------
    LookupError
        If ``run_id`` is None and no run is registered.
    ValueError
        On an unknown kind in ``include``.
    """
    kinds = list(dict.fromkeys(include))
    unknown = [k for k in kinds if k not in _KINDS]
    if unknown:
        raise ValueError(f"UNKNOWN_RECORD_KIND: {unknown}; expected some of {list(_KINDS)}")
    engine = url if isinstance(url, Engine) else open_store(url)
    try:
        rid = _resolve_run(engine, run_id)
        keyed: list[tuple[tuple[Any, ...], str]] = []
        for rank, (kind, (reader, ts_field, id_field)) in enumerate(_KINDS.items()):
            if kind not in kinds:
                continue
            for row in reader(engine, rid):
                key = (
                    row[ts_field],
                    row["account"],
                    row.get("seq", 0),
                    rank,
                    row[id_field] if id_field else "",
                )
                row["record"] = kind
                keyed.append((key, json.dumps(row, sort_keys=True)))
    finally:
        if engine is not url:
            engine.dispose()
    keyed.sort(key=lambda kv: kv[0])
    return [line for _, line in keyed]


def equity_curve(
    rows: Iterable[tuple[int, str, float]], initial: dict[str, float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Account-summed equity per timestamp.

    Parameters
    ----------
    rows : iterable of (ts_ms, account, equity)
    initial : dict[str, float], optional
        Equity of an account before its first snapshot (its initial capital).

    Returns
    -------
    ts : np.ndarray of int64, shape (n,)
        Sorted distinct timestamps.
    equity : np.ndarray of float64, shape (n,)
        ``equity[i] = sum over accounts of the account's latest equity at or before
        ts[i]``; before an account's first snapshot its ``initial`` value is used, or
        its first snapshot when none is given. When every account has a snapshot at
        every timestamp this is simply the per-timestamp sum.
    """
    data = list(rows)
    if not data:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    ts_col = np.fromiter((r[0] for r in data), np.int64, len(data))
    eq_col = np.fromiter((r[2] for r in data), np.float64, len(data))
    accounts = sorted({r[1] for r in data})
    acc_idx = {a: i for i, a in enumerate(accounts)}
    acc_col = np.fromiter((acc_idx[r[1]] for r in data), np.int64, len(data))
    ts, t_idx = np.unique(ts_col, return_inverse=True)
    grid = np.full((ts.size, len(accounts)), np.nan)
    grid[t_idx, acc_col] = eq_col
    present = ~np.isnan(grid)
    last = np.where(present, np.arange(ts.size)[:, None], -1)
    np.maximum.accumulate(last, axis=0, out=last)
    filled = np.take_along_axis(grid, np.maximum(last, 0), axis=0)
    for j, acc in enumerate(accounts):
        before = last[:, j] < 0
        if before.any():
            first = grid[np.argmax(present[:, j]), j]
            filled[before, j] = (initial or {}).get(acc, first)
    return ts, filled.sum(axis=1)


def compute_report(url: str | Engine, run_id: str | None = None) -> dict[str, Any]:
    """Performance summary of one run.

    Parameters
    ----------
    url : str or sqlalchemy.Engine
    run_id : str, optional
        A run id or run name; defaults to the latest registered run.

    Returns
    -------
    dict
        The run's totals over its accounts (the trader's sections are
        :func:`build_report`'s):

        - ``run_id``, ``accounts`` (number of account summaries).
        - ``candles``: sum of ``SummaryRow.candles`` over accounts.
        - ``candles_rejected``, ``orders_denied``, ``kill_switch_trips``: number of
          events of kind ``candle_rejected``, ``data_gap``, ``order_denied``,
          ``kill_switch_tripped``.
        - ``orders``: order rows; ``fills``: execution reports with status
          ``filled`` or ``partially_filled``; ``trades``: closed round trips.
        - ``initial_capital``, ``final_equity``, ``realized_pnl``: sums over the
          account summaries; ``net_pnl = final_equity - initial_capital``;
          ``return_pct = net_pnl / initial_capital * 100``, a *percent* (0.0 without
          capital).
        - ``max_drawdown_pct``: :func:`gridflow.metrics.max_drawdown` of the
          account-summed equity curve (:func:`equity_curve`, after the initial capital
          as its first point) x 100, a positive *percent* of the running peak; NaN
          without equity snapshots.
        - ``sharpe``: :func:`gridflow.metrics.daily_sharpe` of that curve (daily
          returns, the first from the initial capital, annualised with sqrt(365)): the
          same curve and window as ``net_pnl``; NaN with fewer than two daily returns
          or zero variance (the one rule of :mod:`gridflow.metrics`).
        - ``win_rate``: *fraction* of trades with ``pnl > 0`` (0.0 without trades).
        - ``gross_profit = sum(pnl > 0)``, ``gross_loss = -sum(pnl < 0)``;
          ``profit_factor = gross_profit / gross_loss`` (``inf`` with profits and no
          loss, 0.0 with neither); ``avg_trade_pnl = mean(pnl)`` (0.0 without trades).
        - ``fees_paid``: sum of ``FillRow.fee`` (rebates count negative).
        - ``funding_paid``: funding paid on perpetual positions, summed over the
          account summaries (negative = received).
        - ``first_ts_ms``, ``last_ts_ms``: first and last equity timestamp (None
          without snapshots).

    Raises
    ------
    LookupError
        If ``run_id`` is None and no run is registered.
    """
    engine = url if isinstance(url, Engine) else open_store(url)
    try:
        rid = _resolve_run(engine, run_id)
        summaries = read_summaries(engine, rid)
        with engine.connect() as conn:
            ev, fi, tr, eq = (t.__table__.c for t in (EventRow, FillRow, TradeRow, EquityRow))
            kinds = dict(
                conn.execute(
                    select(ev.kind, func.count()).where(ev.run_id == rid).group_by(ev.kind)
                ).all()
            )
            fill_rows = conn.execute(select(fi.status, fi.fee).where(fi.run_id == rid)).all()
            pnl = np.array(
                conn.execute(select(tr.pnl).where(tr.run_id == rid)).scalars().all(), np.float64
            )
            eq_rows = conn.execute(
                select(eq.ts_ms, eq.account, eq.equity).where(eq.run_id == rid)
            ).all()
            orders = OrderRow.__table__
            n_orders = conn.execute(
                select(func.count()).select_from(orders).where(orders.c.run_id == rid)
            ).scalar_one()
    finally:
        if engine is not url:
            engine.dispose()

    initial = {s["account"]: float(s["initial_capital"]) for s in summaries}
    initial_capital = float(sum(initial.values()))
    final_equity = float(sum(float(s["equity"]) for s in summaries))
    net_pnl = final_equity - initial_capital
    ts, curve = equity_curve(eq_rows, initial)
    gross_profit = float(pnl[pnl > 0].sum())
    gross_loss = float(-pnl[pnl < 0].sum())
    if gross_loss > 0:
        profit_factor = gross_profit / gross_loss
    else:
        profit_factor = math.inf if gross_profit > 0 else 0.0
    return {
        "run_id": rid,
        "accounts": len(summaries),
        "candles": int(sum(int(s["candles"]) for s in summaries)),
        "candles_rejected": int(kinds.get("candle_rejected", 0)),
        "data_gaps": int(kinds.get("data_gap", 0)),
        "orders": int(n_orders),
        "fills": sum(1 for status, _ in fill_rows if status in FILL_STATUSES),
        "trades": int(pnl.size),
        "orders_denied": int(kinds.get("order_denied", 0)),
        "kill_switch_trips": int(kinds.get("kill_switch_tripped", 0)),
        "initial_capital": initial_capital,
        "final_equity": final_equity,
        "realized_pnl": float(sum(float(s["realized_pnl"]) for s in summaries)),
        "net_pnl": net_pnl,
        "return_pct": net_pnl / initial_capital * 100.0 if initial_capital else 0.0,
        "max_drawdown_pct": (metrics.max_drawdown(np.concatenate(([initial_capital], curve)))
                             * 100.0 if curve.size else math.nan),
        "sharpe": metrics.daily_sharpe(ts, curve, base=initial_capital) if ts.size else math.nan,
        "win_rate": float(np.mean(pnl > 0)) if pnl.size else 0.0,
        "gross_profit": gross_profit,
        "gross_loss": gross_loss,
        "profit_factor": profit_factor,
        "avg_trade_pnl": float(pnl.mean()) if pnl.size else 0.0,
        "fees_paid": float(sum(float(fee) for _, fee in fill_rows)),
        "funding_paid": float(sum(float(s.get("funding_paid") or 0.0) for s in summaries)),
        "first_ts_ms": int(ts[0]) if ts.size else None,
        "last_ts_ms": int(ts[-1]) if ts.size else None,
    }


def build_report(url: str | Engine, run_id: str | None = None) -> dict[str, Any]:
    """The full report of one run: :func:`compute_report`'s totals (its keys unchanged)
    and the trader's sections of :func:`gridflow.control.report_sections.report_sections`
    (header, overview per account, strategies, symbols, exit reasons, months,
    durations, kill-switch events, order denials, notes), as a dict whose floats may be
    NaN (undefined) or inf (:func:`strict_json` makes them null). Takes ``url`` and
    ``run_id`` (an id or a name) and raises as :func:`compute_report`.
    """
    from gridflow.control.report_data import load_run
    from gridflow.control.report_sections import report_sections

    engine = url if isinstance(url, Engine) else open_store(url)
    try:
        rep = compute_report(engine, run_id)
        rep.update(report_sections(load_run(engine, rep["run_id"]), rep["candles"]))
    finally:
        if engine is not url:
            engine.dispose()
    return rep
