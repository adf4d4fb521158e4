"""``gridflow status``: the accounts of the runs still going, from the journal.

A run's account is *running* while its summary is not ``complete`` (a live or paper
flow has no end unless ``live.end_ms`` gives one; a flow killed before its end stays
so too: its last heartbeat tells which). For each: equity against the capital, open
positions, active kill switches, paused flag, the last candle the engine processed and
the last ``heartbeat`` event (exchange time, ISO 8601 UTC; ``n/a`` without one). Money
in the quote currency.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select

from gridflow.event_kinds import EventKind
from gridflow.isotime import iso_utc
from gridflow.journal.runs import resolve_run
from gridflow.journal.schema import EventRow, SummaryRow
from gridflow.journal.store import connect, list_runs

__all__ = ["account_status", "render_status"]


def account_status(url: str | Engine, run: str | None = None) -> list[dict[str, Any]]:
    """The running accounts (every run), or every account of run ``run``.

    Parameters
    ----------
    url : str or Engine
        Journal database.
    run : str, optional
        A run id or name: its accounts, complete or not.

    Returns
    -------
    list[dict]
        Sorted by run creation then account; each: ``run_id``, ``name`` (the run's, or
        None), ``mode``, ``account``, ``equity``, ``initial_capital``, ``return_pct``
        (percent), ``positions`` (symbol -> ``side``, ``amount`` (base), ``avg_entry``
        (quote)) of the open ones, ``kill_switches`` (list), ``paused``, ``complete``,
        ``last_candle`` / ``last_heartbeat`` (ISO 8601 UTC or None) and their ``_ms``.

    Raises
    ------
    LookupError
        ``run`` names no run (``UNKNOWN_RUN``), or the journal has none (``NO_RUNS``).
    """
    runs = {r["run_id"]: r for r in list_runs(url)}
    rid = resolve_run(url, run) if run is not None else None
    s, e = SummaryRow.__table__, EventRow.__table__
    q = select(s)
    q = q.where(s.c.run_id == rid) if rid is not None else q.where(s.c.complete.is_(False))
    beats = (select(e.c.run_id, e.c.account, func.max(e.c.ts_ms).label("ts"))
             .where(e.c.kind == EventKind.HEARTBEAT.value).group_by(e.c.run_id, e.c.account))
    if rid is not None:
        beats = beats.where(e.c.run_id == rid)
    with connect(url) as conn:
        rows = [dict(m) for m in conn.execute(q).mappings()]
        last_beat = {(r.run_id, r.account): r.ts for r in conn.execute(beats)}
    out = []
    for r in rows:
        info = runs.get(r["run_id"], {})
        beat = last_beat.get((r["run_id"], r["account"]))
        cap = r["initial_capital"]
        out.append({
            "run_id": r["run_id"], "name": info.get("name"), "mode": info.get("mode"),
            "account": r["account"], "equity": r["equity"], "initial_capital": cap,
            "return_pct": (r["equity"] / cap - 1.0) * 100.0 if cap else None,
            "positions": {sym: {"side": p.get("side"), "amount": p.get("amount"),
                                "avg_entry": p.get("avg_entry")}
                          for sym, p in sorted((r["positions"] or {}).items())
                          if p.get("amount")},
            "kill_switches": [k for k in (r["kill_switch"] or "").split(",") if k],
            "paused": bool(r["paused"]), "complete": bool(r["complete"]),
            "last_candle_ms": r["last_ts_ms"], "last_candle": iso_utc(r["last_ts_ms"]),
            "last_heartbeat_ms": beat,
            "last_heartbeat": iso_utc(beat) if beat is not None else None,
            "_order": (info.get("created_at_ms", 0), r["run_id"], r["account"]),
        })
    out.sort(key=lambda x: x.pop("_order"))
    return out


def render_status(rows: list[dict[str, Any]]) -> str:
    """:func:`account_status` rows as text, one block per account."""
    if not rows:
        return "no running account (every run in the journal is complete); --run RUN shows one"
    blocks = []
    for r in rows:
        title = r["run_id"] + (f" ({r['name']})" if r["name"] else "")
        pos = "; ".join(f"{s} {p['side']} {p['amount']:g}"
                        + (f" @ {p['avg_entry']:,.6g}" if p["avg_entry"] else "")
                        for s, p in r["positions"].items()) or "none"
        ret = f", {r['return_pct']:+.2f} %" if r["return_pct"] is not None else ""
        blocks.append("\n".join([
            f"run {title} [{r['mode'] or '?'}] account {r['account']}"
            + (" (complete)" if r["complete"] else ""),
            f"  equity          {r['equity']:,.2f} (capital {r['initial_capital']:,.2f}{ret})",
            f"  positions       {pos}",
            f"  kill switches   {', '.join(r['kill_switches']) or 'none'}",
            f"  paused          {'yes' if r['paused'] else 'no'}",
            f"  last candle     {r['last_candle']}",
            f"  last heartbeat  {r['last_heartbeat'] or 'n/a'}",
        ]))
    return "\n\n".join(blocks)
