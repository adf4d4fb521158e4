"""What the trader's report reads from the journal, once: one run's rows, its window,
quote currency, the strategy of each symbol and the buy-and-hold prices.

Money in quote currency, timestamps ms UTC. :mod:`gridflow.control.report_sections`
computes the report's sections from a :class:`RunData`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from gridflow.event_kinds import EventKind
from gridflow.journal.runs import candle_ms
from gridflow.journal.schema import EquityRow, EventRow, FillRow, OrderRow, TradeRow
from gridflow.journal.store import list_runs, read_summaries
from gridflow.timeframes import timeframe_to_ms

#: Journal event kinds of the kill switches (tripped, reset at a day rollover or by a
#: command, restored at a live restart).
KILL_SWITCH_KINDS = (EventKind.KILL_SWITCH_TRIPPED, EventKind.KILL_SWITCH_RESET,
                     EventKind.KILL_SWITCH_RESTORED)


@dataclass
class RunData:
    """One run's rows, as the report needs them.

    Attributes
    ----------
    run : dict
        The ``runs`` row (``config_json`` decoded to ``config``, ``data_json`` to
        ``data``) and its ``name`` (or None).
    summaries : list of dict
        Latest account summaries, by account.
    trades : list of dict
        ``account, symbol, open_ts_ms, close_ts_ms, pnl, exit_reason`` per round trip.
    fills : list of dict
        ``account, symbol, ts_ms, fee, realized_pnl`` per execution report.
    funding : list of dict
        ``account, symbol, payment`` (quote, positive = paid), ``ts_ms`` per funding
        settlement.
    equity : list of tuple
        ``(ts_ms, account, equity)`` snapshots.
    events : list of dict
        Kill-switch and ``order_denied`` events: ``kind, reason, ts_ms, account,
        detail``.
    strategies : dict
        ``(account, symbol) -> strategy`` from the orders (and the summaries' positions).
    """

    run: dict[str, Any]
    summaries: list[dict[str, Any]]
    trades: list[dict[str, Any]]
    fills: list[dict[str, Any]]
    funding: list[dict[str, Any]]
    equity: list[tuple[int, str, float]]
    events: list[dict[str, Any]]
    strategies: dict[tuple[str, str], str] = field(default_factory=dict)

    def symbols(self, account: str) -> list[str]:
        """Symbols the account trades (its summary's positions, trades and orders),
        sorted."""
        out = {s for (a, s) in self.strategies if a == account}
        out |= {t["symbol"] for t in self.trades if t["account"] == account}
        for s in self.summaries:
            if s["account"] == account:
                out |= set(s.get("positions") or {})
        return sorted(out)


def _rows(conn, table, cols: tuple[str, ...], rid: str, *where) -> list[dict[str, Any]]:
    q = select(*(table.c[c] for c in cols)).where(table.c.run_id == rid, *where)
    return [dict(zip(cols, r)) for r in conn.execute(q).all()]


def load_run(engine: Engine, rid: str) -> RunData:
    """Read run ``rid`` (a registered id) from the journal at ``engine``."""
    run = dict(next(r for r in list_runs(engine) if r["run_id"] == rid))
    for key, default in (("config_json", {}), ("data_json", [])):
        try:
            run[key.removesuffix("_json")] = json.loads(run.get(key) or "null") or default
        except ValueError:
            run[key.removesuffix("_json")] = default
    summaries = read_summaries(engine, rid)
    tr, fi, ev, eq, od = (t.__table__ for t in (TradeRow, FillRow, EventRow, EquityRow, OrderRow))
    with engine.connect() as conn:
        trades = _rows(conn, tr, ("account", "symbol", "open_ts_ms", "close_ts_ms", "pnl",
                                  "exit_reason"), rid)
        fills = _rows(conn, fi, ("account", "symbol", "ts_ms", "fee", "realized_pnl"), rid)
        kinds = (*KILL_SWITCH_KINDS, EventKind.ORDER_DENIED, EventKind.FUNDING)
        events = _rows(conn, ev, ("kind", "reason", "ts_ms", "account", "symbol", "seq",
                                  "detail"), rid, ev.c.kind.in_([str(k) for k in kinds]))
        equity = [tuple(r) for r in conn.execute(
            select(eq.c.ts_ms, eq.c.account, eq.c.equity).where(eq.c.run_id == rid)
            .order_by(eq.c.ts_ms, eq.c.account)).all()]
        owned = conn.execute(select(od.c.account, od.c.symbol, od.c.strategy)
                             .where(od.c.run_id == rid).distinct()).all()
    trades.sort(key=lambda t: (t["close_ts_ms"], t["account"], t["symbol"]))
    events.sort(key=lambda e: (e["ts_ms"], e["account"], e["seq"]))
    funding = [{"account": e["account"], "symbol": e["symbol"], "ts_ms": e["ts_ms"],
                "payment": float((e["detail"] or {}).get("payment") or 0.0)}
               for e in events if e["kind"] == EventKind.FUNDING]
    strategies: dict[tuple[str, str], str] = {}
    for s in summaries:
        for sym, pos in (s.get("positions") or {}).items():
            if isinstance(pos, dict) and pos.get("strategy"):
                strategies[(s["account"], sym)] = str(pos["strategy"])
    strategies.update({(a, s): str(k) for a, s, k in owned})
    return RunData(run, summaries, trades, fills, funding, equity,
                   [e for e in events if e["kind"] != EventKind.FUNDING], strategies)


def quote_of(symbol: str) -> str:
    """``"BTC/USDT"`` and ``"BTC/USDT:USDT"`` -> ``"USDT"``; ``""`` if it has no quote."""
    return symbol.partition("/")[2].partition(":")[0]


def window(data: RunData) -> tuple[int | None, int | None]:
    """``(start_ms, end_ms)`` of the run: from the open of the first candle (the first
    equity snapshot, stamped at a candle close, minus
    :func:`gridflow.journal.runs.candle_ms`) to the last snapshot; ``(None, None)``
    without snapshots (as :func:`gridflow.journal.runs.run_catalogue`)."""
    if not data.equity:
        return None, None
    first = min(r[0] for r in data.equity)
    return first - candle_ms(data.run), max(r[0] for r in data.equity)


def open_positions(data: RunData, account: str) -> dict[str, dict[str, float]]:
    """Positions open at the end of the run, from the account's summary: symbol ->
    ``{"unrealized": d x amount x (last_close - avg_entry), "open_ts_ms": first fill
    after the symbol's last round trip}`` (quote, ms UTC)."""
    summary = next((s for s in data.summaries if s["account"] == account), {})
    out = {}
    for sym, p in (summary.get("positions") or {}).items():
        if not isinstance(p, dict) or not (p.get("amount") or 0) > 0:
            continue
        avg, last = p.get("avg_entry"), p.get("last_close")
        d = {"long": 1.0, "short": -1.0}.get(p.get("side"), 0.0)
        unreal = d * float(p["amount"]) * (float(last) - float(avg)) if (
            avg is not None and last is not None) else 0.0
        closed = [t["close_ts_ms"] for t in data.trades
                  if t["account"] == account and t["symbol"] == sym]
        after = max(closed) if closed else -(2 ** 62)
        opened = [f["ts_ms"] for f in data.fills if f["account"] == account
                  and f["symbol"] == sym and f["ts_ms"] > after]
        out[sym] = {"unrealized": unreal, "open_ts_ms": min(opened) if opened else None}
    return out


def buy_and_hold(data: RunData, start_ms: int | None, end_ms: int | None
                 ) -> tuple[dict[str, float], list[str]]:
    """Buy-and-hold return (fraction) of each symbol over ``[start_ms, end_ms]``: the
    close of its last candle closing by ``end_ms`` over the open of its first candle
    opening at or after ``start_ms``, read from the run's candle files (the config's
    ``data``).

    Returns
    -------
    (returns, notes)
        Symbol -> fraction for the symbols found; a note per file that could not be
        read or has no candle in the window.
    """
    from gridflow.config.models import DataFile
    from gridflow.data.candle_files import read_candle_file, resolve_data_files

    if start_ms is None or end_ms is None:
        return {}, []
    files = (data.run.get("config") or {}).get("data") or []
    try:
        resolved = resolve_data_files([DataFile(**f) for f in files])
    except (FileNotFoundError, ValueError, TypeError) as exc:
        return {}, [f"buy and hold: the run's candle files cannot be read ({exc})"]
    out, notes = {}, []
    for path, sym, tf in resolved:
        try:
            c = read_candle_file(path)
        except (OSError, ValueError) as exc:
            notes.append(f"buy and hold of {sym}: {exc}")
            continue
        ok = ((c["ts"] >= start_ms) & (c["ts"] + timeframe_to_ms(tf) <= end_ms)
              & np.isfinite(c["open"]) & np.isfinite(c["close"]))
        idx = np.flatnonzero(ok)
        if idx.size == 0 or not c["open"][idx[0]] > 0:
            notes.append(f"buy and hold of {sym}: no candle of {path.name} in the window")
            continue
        out[sym] = float(c["close"][idx[-1]] / c["open"][idx[0]] - 1.0)
    return out, notes


def per_symbol_pnl(data: RunData, account: str) -> dict[str, dict[str, float]]:
    """Net PnL of each symbol of ``account`` and its parts (quote): ``realized`` (fills)
    ``- fees`` (fills) ``- funding`` (settlements) ``+ unrealized`` (open position at the
    last close) = ``net_pnl``; ``closed_pnl`` (the round trips' net PnL) and
    ``open_pnl = net_pnl - closed_pnl`` (the open cycle: unrealized less its fees and
    funding so far; 0.0 for a flat symbol, whose difference is rounding). Their sum over
    symbols is the account's cash + unrealized minus its capital, its net PnL."""
    acc: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for f in data.fills:
        if f["account"] == account:
            acc[f["symbol"]]["realized"] += float(f["realized_pnl"] or 0.0)
            acc[f["symbol"]]["fees"] += float(f["fee"] or 0.0)
    for f in data.funding:
        if f["account"] == account:
            acc[f["symbol"]]["funding"] += f["payment"]
    for t in data.trades:
        if t["account"] == account:
            acc[t["symbol"]]["closed_pnl"] += float(t["pnl"])
    held = open_positions(data, account)
    for sym, p in held.items():
        acc[sym]["unrealized"] += p["unrealized"]
    for sym in data.symbols(account):
        acc[sym]["realized"] += 0.0
    out = {}
    for sym, a in sorted(acc.items()):
        net = a["realized"] - a["fees"] - a["funding"] + a["unrealized"]
        out[sym] = {"realized": a["realized"], "fees": a["fees"], "funding": a["funding"],
                    "unrealized": a["unrealized"], "net_pnl": net,
                    "closed_pnl": a["closed_pnl"],
                    "open_pnl": net - a["closed_pnl"] if sym in held else 0.0}
    return out

