"""The trader's report sections of one run: overview per account, tables per strategy,
symbol, exit reason and month, trade durations, kill-switch events, order denials.

One unit convention (:data:`UNITS`): money in the quote currency, returns, rates and
shares in percent (keys ending ``_pct``), trade durations in hours (``_hours``), the
window in days. Every metric is :mod:`gridflow.metrics`' (Sharpe, Sortino, Calmar,
drawdown, CAGR = annualised return, exposure); the equity curve of an account starts at
its initial capital at the open of the run's first candle, so its Sharpe, drawdown and
net PnL come from one curve over one window.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

import numpy as np

from gridflow import metrics
from gridflow.control.report_data import (
    KILL_SWITCH_KINDS,
    RunData,
    buy_and_hold,
    open_positions,
    per_symbol_pnl,
    quote_of,
    window,
)
from gridflow.event_kinds import EventKind, ExitReason
from gridflow.isotime import iso_utc
from gridflow.timeframes import DAY_MS, HOUR_MS

UNITS = {"money": "quote currency ({quote})", "returns_rates_shares": "percent (keys *_pct)",
         "durations": "hours (keys *_hours); the window in days",
         "times": "ISO 8601 UTC"}
"""The report's one unit convention (``{quote}`` filled in)."""

#: Residual rows when symbols do not add up to the account (e.g. an adopted position).
OTHER = "(other)"
_TOL = 1e-6


def _pct(x: float) -> float:
    return float(x) * 100.0


def _pf(pnl: np.ndarray) -> float:
    """Profit factor: gross profit / gross loss (inf with profits and no loss, 0.0 with
    neither), as the run totals of :func:`gridflow.control.report.compute_report`."""
    gp, gl = float(pnl[pnl > 0].sum()), float(-pnl[pnl < 0].sum())
    return gp / gl if gl > 0 else (math.inf if gp > 0 else 0.0)


def trade_stats(pnl: list[float]) -> dict[str, Any]:
    """``trades``, ``win_rate_pct`` (share with net PnL > 0; 0.0 without trades),
    ``profit_factor``, ``avg_trade_pnl`` (quote) of round trips' net PnL."""
    a = np.asarray(pnl, dtype=np.float64)
    return {"trades": int(a.size), "win_rate_pct": _pct(np.mean(a > 0)) if a.size else 0.0,
            "profit_factor": _pf(a), "avg_trade_pnl": float(a.mean()) if a.size else 0.0}


def _hours(trades: list[dict[str, Any]]) -> np.ndarray:
    return np.asarray([(t["close_ts_ms"] - t["open_ts_ms"]) / HOUR_MS for t in trades],
                      dtype=np.float64)


def _curve(data: RunData, account: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [(ts, eq) for ts, acc, eq in data.equity if acc == account]
    return (np.asarray([r[0] for r in rows], np.int64),
            np.asarray([r[1] for r in rows], np.float64))


def _overview(data: RunData, summary: dict[str, Any], start: int | None, end: int | None,
              bh: dict[str, float]) -> dict[str, Any]:
    """One account's overview row (see :func:`report_sections`)."""
    acc = summary["account"]
    initial, final = float(summary["initial_capital"]), float(summary["equity"])
    net = final - initial
    ts, eq = _curve(data, acc)
    total = net / initial if initial else math.nan
    days = (end - start) / DAY_MS if start is not None and end is not None else math.nan
    returns = metrics.daily_returns(ts, eq, base=initial)[1]
    max_dd = metrics.max_drawdown(np.concatenate(([initial], eq))) if eq.size else math.nan
    trades = [t for t in data.trades if t["account"] == acc]
    spans = [(t["open_ts_ms"], t["close_ts_ms"]) for t in trades]
    spans += [(p["open_ts_ms"], end) for p in open_positions(data, acc).values()
              if p["open_ts_ms"] is not None and end is not None]
    syms = data.symbols(acc)
    held = [bh[s] for s in syms if s in bh]
    return {
        "account": acc, "quote": ",".join(sorted({quote_of(s) for s in syms} - {""})),
        "initial_capital": initial, "final_equity": final, "net_pnl": net,
        "return_pct": _pct(total) if initial else 0.0,
        "cagr_pct": _pct(metrics.annualised_return(total, days)),
        "max_drawdown_pct": _pct(max_dd),
        "sharpe": metrics.sharpe(returns), "sortino": metrics.sortino(returns),
        "calmar": metrics.calmar(total, days, max_dd),
        "exposure_pct": _pct(metrics.exposure([a for a, _ in spans], [b for _, b in spans],
                                              start, end)) if start is not None else math.nan,
        **trade_stats([t["pnl"] for t in trades]),
        "fees_paid": float(sum(float(f["fee"] or 0.0) for f in data.fills
                               if f["account"] == acc)),
        "funding_paid": float(summary.get("funding_paid") or 0.0),
        "buy_hold_pct": _pct(np.mean(held)) if held and len(held) == len(syms) else math.nan,
        "buy_hold_by_symbol_pct": {s: _pct(bh[s]) if s in bh else math.nan for s in syms},
        "kill_switch": summary.get("kill_switch") or "",
    }


def _symbol_rows(data: RunData, overview: dict[str, Any], bh: dict[str, float]
                 ) -> list[dict[str, Any]]:
    """Per-symbol rows of one account; a residual row :data:`OTHER` keeps their sum
    equal to the account's net PnL."""
    acc, initial = overview["account"], overview["initial_capital"]
    parts = per_symbol_pnl(data, acc)
    rows = []
    for sym, p in parts.items():
        trades = [t for t in data.trades if t["account"] == acc and t["symbol"] == sym]
        rows.append({"account": acc, "symbol": sym,
                     "strategy": data.strategies.get((acc, sym), OTHER),
                     **trade_stats([t["pnl"] for t in trades]),
                     "closed_pnl": p["closed_pnl"], "open_pnl": p["open_pnl"],
                     "net_pnl": p["net_pnl"], "fees_paid": p["fees"],
                     "funding_paid": p["funding"],
                     "contribution_pct": _pct(p["net_pnl"] / initial) if initial else 0.0,
                     "buy_hold_pct": _pct(bh[sym]) if sym in bh else math.nan})
    rest = overview["net_pnl"] - sum(r["net_pnl"] for r in rows)
    if abs(rest) > _TOL:
        rows.append({"account": acc, "symbol": OTHER, "strategy": OTHER,
                     **trade_stats([]), "closed_pnl": 0.0, "open_pnl": rest, "net_pnl": rest,
                     "fees_paid": 0.0, "funding_paid": 0.0,
                     "contribution_pct": _pct(rest / initial) if initial else 0.0,
                     "buy_hold_pct": math.nan})
    return rows


def _strategy_rows(data: RunData, symbol_rows: list[dict[str, Any]], initial: float
                   ) -> list[dict[str, Any]]:
    """Per-strategy rows of one account: its symbols' rows summed."""
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in symbol_rows:
        by[r["strategy"]].append(r)
    out = []
    for strat, rows in sorted(by.items()):
        acc = rows[0]["account"]
        syms = [r["symbol"] for r in rows]
        pnl = [t["pnl"] for t in data.trades if t["account"] == acc and t["symbol"] in syms]
        net = sum(r["net_pnl"] for r in rows)
        out.append({"account": acc, "strategy": strat, "symbols": syms, **trade_stats(pnl),
                    **{k: sum(r[k] for r in rows) for k in ("closed_pnl", "open_pnl")},
                    "net_pnl": net, "fees_paid": sum(r["fees_paid"] for r in rows),
                    "funding_paid": sum(r["funding_paid"] for r in rows),
                    "contribution_pct": _pct(net / initial) if initial else 0.0})
    return out


def _exit_rows(data: RunData, acc: str) -> list[dict[str, Any]]:
    """Round trips of one account by exit reason (:class:`ExitReason` order first)."""
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for t in data.trades:
        if t["account"] == acc:
            by[t["exit_reason"]].append(t)
    order = {str(r): i for i, r in enumerate(ExitReason)}
    out = []
    for reason in sorted(by, key=lambda r: (order.get(r, len(order)), r)):
        ts = by[reason]
        h = _hours(ts)
        out.append({"account": acc, "exit_reason": reason, **trade_stats([t["pnl"] for t in ts]),
                    "net_pnl": float(sum(t["pnl"] for t in ts)),
                    "mean_hours": float(h.mean())})
    return out


def _month(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m")


def _month_rows(data: RunData, overview: dict[str, Any]) -> list[dict[str, Any]]:
    """UTC months of one account: equity change from the last snapshot of the previous
    month (the initial capital first) to the month's last (the final equity last), so
    the rows sum to the net PnL; ``return_pct`` of the month's starting equity; trades
    by the month of their exit candle. A snapshot is stamped with a candle's close and
    belongs to the month that candle ends (a close at 00:00 on the 1st ends the month
    before)."""
    acc = overview["account"]
    ts, eq = _curve(data, acc)
    ends: dict[str, float] = {}
    for t, e in zip(ts.tolist(), eq.tolist()):
        ends[_month(t - 1)] = e
    trades = Counter(_month(t["close_ts_ms"]) for t in data.trades if t["account"] == acc)
    months = sorted(set(ends) | set(trades))
    if not months:
        return []
    ends[months[-1]] = overview["final_equity"]
    out, prev = [], overview["initial_capital"]
    for m in months:
        end = ends.get(m, prev)
        out.append({"account": acc, "month": m, "trades": int(trades.get(m, 0)),
                    "net_pnl": end - prev, "return_pct": _pct(end / prev - 1.0) if prev > 0
                    else math.nan})
        prev = end
    return out


def _duration_row(data: RunData, acc: str) -> dict[str, Any]:
    """Durations of one account's round trips, from the open of the entry candle to the
    open of the exit candle, in hours (NaN without trades)."""
    h = _hours([t for t in data.trades if t["account"] == acc])
    stat = (lambda f: float(f(h)) if h.size else math.nan)
    return {"account": acc, "trades": int(h.size), "mean_hours": stat(np.mean),
            "median_hours": stat(np.median), "max_hours": stat(np.max)}


def _kill_rows(data: RunData) -> list[dict[str, Any]]:
    """Every kill-switch event in time order: a trip with its rule's value and
    threshold (the engine's fractions of equity, as percent: ``-2.0`` = 2 % below the
    day's start, the peak or the capital), a reset with what reset it."""
    def pct(x: Any) -> float | None:
        return None if x is None else _pct(x)

    out = []
    for e in data.events:
        if e["kind"] not in KILL_SWITCH_KINDS:
            continue
        d = e["detail"] or {}
        out.append({"time": iso_utc(e["ts_ms"]), "ts_ms": int(e["ts_ms"]),
                    "account": e["account"], "event": str(e["kind"]), "reason": e["reason"],
                    "value_pct": pct(d.get("value")), "threshold_pct": pct(d.get("threshold")),
                    "by": d.get("by")})
    return out


def _denial_rows(data: RunData) -> list[dict[str, Any]]:
    """``order_denied`` events by account and reason (a denial is journaled once per
    level and reason in a cycle) and the attempts the engine counted
    (``denied_<REASON>`` of its summary; None when it kept no count)."""
    events = Counter((e["account"], e["reason"]) for e in data.events
                     if e["kind"] == EventKind.ORDER_DENIED)
    attempts = {(s["account"], k.removeprefix("denied_")): int(v)
                for s in data.summaries for k, v in (s.get("counters") or {}).items()
                if k.startswith("denied_")}
    keys = sorted(set(events) | set(attempts), key=lambda k: (k[0], -events.get(k, 0), k[1]))
    return [{"account": a, "reason": r, "events": int(events.get((a, r), 0)),
             "attempts": attempts.get((a, r))} for a, r in keys]


def report_sections(data: RunData, candles: int) -> dict[str, Any]:
    """The report's sections of a loaded run.

    Parameters
    ----------
    data : RunData
        :func:`gridflow.control.report_data.load_run`.
    candles : int
        Candles processed, summed over the accounts (for the header).

    Returns
    -------
    dict
        ``name``, ``mode``, ``created`` (ISO), ``window`` (``start``, ``end`` ISO,
        ``start_ms``, ``end_ms``, ``days``), ``candles``, ``units``, ``overview`` (one
        row per account: capital, equity, ``net_pnl``, ``return_pct``, ``cagr_pct``,
        ``max_drawdown_pct``, ``sharpe``, ``sortino``, ``calmar``, ``exposure_pct``,
        ``trades``, ``win_rate_pct``, ``profit_factor``, ``avg_trade_pnl``,
        ``fees_paid``, ``funding_paid``, ``buy_hold_pct`` (equal-weight mix of the
        account's symbols, NaN unless each has a price), ``buy_hold_by_symbol_pct``,
        ``kill_switch`` active at the end), ``strategies``, ``symbols`` (their
        ``net_pnl`` sum to the account's), ``exit_reasons``, ``months`` (``net_pnl``
        sums to the account's), ``durations``, ``kill_switch_events``, ``denials``,
        ``notes``.
    """
    start, end = window(data)
    bh, notes = buy_and_hold(data, start, end)
    quotes = sorted({quote_of(s) for s in bh} | {quote_of(sym) for (_, sym) in data.strategies}
                    - {""})
    out: dict[str, Any] = {
        "name": data.run.get("name"), "mode": data.run.get("mode"),
        "created": iso_utc(data.run["created_at_ms"]),
        "window": {"start": iso_utc(start) if start is not None else None,
                   "end": iso_utc(end) if end is not None else None,
                   "start_ms": start, "end_ms": end,
                   "days": (end - start) / DAY_MS if start is not None else None},
        "candles": int(candles),
        "units": {k: v.format(quote=", ".join(quotes) or "quote") for k, v in UNITS.items()},
        "overview": [], "strategies": [], "symbols": [], "exit_reasons": [], "months": [],
        "durations": [], "kill_switch_events": _kill_rows(data), "denials": _denial_rows(data),
        "notes": notes,
    }
    for s in data.summaries:
        ov = _overview(data, s, start, end, bh)
        sym_rows = _symbol_rows(data, ov, bh)
        if any(r["symbol"] == OTHER for r in sym_rows):
            out["notes"].append(f"{ov['account']}: {OTHER} holds PnL no symbol explains "
                                "(a position adopted or changed outside gridflow)")
        out["overview"].append(ov)
        out["symbols"] += sym_rows
        out["strategies"] += _strategy_rows(data, sym_rows, ov["initial_capital"])
        out["exit_reasons"] += _exit_rows(data, ov["account"])
        out["months"] += _month_rows(data, ov)
        out["durations"].append(_duration_row(data, ov["account"]))
    return out
