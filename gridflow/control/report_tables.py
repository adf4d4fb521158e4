"""Plain-text tables of the trader's report (:func:`gridflow.control.report.build_report`)
and of the run list (:func:`gridflow.journal.runs.run_catalogue`).

Every column and overview row is named by its key in ``--json``, so a figure is found
in both the same way; the header states the one unit convention. Numbers are printed
with two decimals and thousands separators (``1,234.57``), counts as whole numbers,
undefined figures (NaN, None) as ``n/a``. Text columns align left, numbers right.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any


NA = "n/a"
"""How an undefined figure (NaN or None) is printed."""

#: Overview rows, in order (``buy_hold_by_symbol_pct`` adds one row per symbol).
OVERVIEW_ROWS = ("initial_capital", "final_equity", "net_pnl", "return_pct", "cagr_pct",
                 "max_drawdown_pct", "sharpe", "sortino", "calmar", "exposure_pct", "trades",
                 "win_rate_pct", "profit_factor", "avg_trade_pnl", "fees_paid", "funding_paid",
                 "buy_hold_pct", "kill_switch")

#: Section key -> (title, columns) of the report's tables, in print order.
TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "strategies": ("per strategy", ("account", "strategy", "symbols", "trades",
                                    "win_rate_pct", "profit_factor", "closed_pnl", "open_pnl",
                                    "net_pnl", "contribution_pct", "fees_paid",
                                    "funding_paid")),
    "symbols": ("per symbol", ("account", "symbol", "strategy", "trades", "win_rate_pct",
                               "profit_factor", "closed_pnl", "open_pnl", "net_pnl",
                               "fees_paid", "funding_paid", "buy_hold_pct")),
    "exit_reasons": ("per exit reason", ("account", "exit_reason", "trades", "win_rate_pct",
                                         "avg_trade_pnl", "net_pnl", "mean_hours")),
    "months": ("per month (UTC)", ("account", "month", "trades", "net_pnl", "return_pct")),
    "durations": ("trade durations (entry candle to exit candle)",
                  ("account", "trades", "mean_hours", "median_hours", "max_hours")),
    "kill_switch_events": ("kill-switch events", ("time", "account", "event", "reason",
                                                  "value_pct", "threshold_pct", "by")),
    "denials": ("order denials (events journaled once per level, reason and cycle; "
                "attempts counted by the engine)", ("account", "reason", "events",
                                                    "attempts")),
}

#: Columns of ``gridflow runs list``.
RUN_COLUMNS = ("run_id", "name", "mode", "created", "start", "end", "accounts", "candles",
               "trades", "net_pnl")


def cell(value: Any) -> str:
    """One value as table text: see the module doc (lists joined with ``", "``)."""
    if value is None:
        return NA
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,d}"
    if isinstance(value, float):
        if math.isnan(value):
            return NA
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:,.2f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value) if value != "" else "-"


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Rows as an aligned text table under a header of ``columns``.

    Parameters
    ----------
    rows : sequence of dict
        Column -> value (a missing column prints ``n/a``).
    columns : sequence of str

    Returns
    -------
    str
        Header, a rule of dashes and one line per row, columns two spaces apart;
        numbers (and ``n/a``) align right, text left, and a header right when its
        whole column is numbers. ``(none)`` without rows.
    """
    if not rows:
        return "(none)"
    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    flags = [[_numeric(r.get(c)) or r.get(c) is None for c in columns] for r in rows]
    right = [all(f[i] for f in flags) for i in range(len(columns))]
    widths = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(columns)]

    def line(items: Iterable[str], align: Iterable[bool]) -> str:
        return "  ".join(x.rjust(w) if r else x.ljust(w)
                         for x, w, r in zip(items, widths, align)).rstrip()

    return "\n".join([line(columns, right), line(("-" * w for w in widths), right),
                      *(line(c, f) for c, f in zip(cells, flags))])


def header(rep: dict[str, Any]) -> str:
    """The report's header: run, name, mode, window (ISO), candles, accounts, units."""
    win = rep.get("window") or {}
    days = win.get("days")
    span = (f"{win['start']} to {win['end']} ({days:,.2f} days)" if win.get("start")
            else "no equity snapshot")
    units = rep.get("units") or {}
    name = f"  name: {rep['name']}" if rep.get("name") else ""
    return "\n".join([
        f"run {rep['run_id']}{name}  ({rep.get('mode') or '?'}, created {rep.get('created')})",
        f"window {span}; {rep.get('candles', 0):,d} candles; {rep.get('accounts', 0)} "
        f"account(s)",
        f"units: money in {units.get('money', 'quote currency')}; returns, rates and shares "
        "in percent (*_pct); trade durations in hours (*_hours); times ISO 8601 UTC",
    ])


def overview(rep: dict[str, Any]) -> str:
    """The overview as a table: one row per figure, one column per account."""
    accounts = rep.get("overview") or []
    if not accounts:
        return "(no account)"
    rows = []
    for key in OVERVIEW_ROWS:
        rows.append({"metric": key, **{a["account"]: a.get(key) for a in accounts}})
        if key == "buy_hold_pct":
            syms = sorted({s for a in accounts for s in a.get("buy_hold_by_symbol_pct", {})})
            rows += [{"metric": f"buy_hold_pct[{s}]",
                      **{a["account"]: a.get("buy_hold_by_symbol_pct", {}).get(s)
                         for a in accounts}} for s in syms]
    return table(rows, ["metric", *(a["account"] for a in accounts)])


def _section(title: str, body: str) -> str:
    return f"\n== {title}\n{body}"


def render_report(rep: dict[str, Any], sections: Sequence[str] | None = None) -> str:
    """The report as text: header, overview, then the tables of :data:`TABLES` (all by
    default, or the keys in ``sections``), then the notes."""
    keys = list(TABLES) if sections is None else [k for k in TABLES if k in sections]
    parts = [header(rep), _section("overview (per account)", overview(rep))]
    for key in keys:
        title, cols = TABLES[key]
        parts.append(_section(title, table(rep.get(key) or [], cols)))
    if sections is None and rep.get("notes"):
        parts.append(_section("notes", "\n".join(f"- {n}" for n in rep["notes"])))
    return "\n".join(parts)


def render_runs(runs: Sequence[dict[str, Any]]) -> str:
    """``gridflow runs list``: one line per run of
    :func:`gridflow.journal.runs.run_catalogue` (its ISO times)."""
    rows = [{**r, "name": r.get("name") or ""} for r in runs]
    return table(rows, RUN_COLUMNS) if rows else "(no run in this journal)"
