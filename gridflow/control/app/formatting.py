"""Text of the control app: UTC dates, rounded numbers, one human line per journal event.

No Panel import: the views, the tests and a notebook use the same words.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

def iso(ts_ms: Any) -> str:
    """``YYYY-MM-DD HH:MM`` UTC of a ms timestamp ("" for None or a negative time)."""
    if ts_ms is None or isinstance(ts_ms, bool):
        return ""
    try:
        t = int(ts_ms)
    except (TypeError, ValueError):
        return str(ts_ms)
    if t < 0:
        return ""
    return datetime.fromtimestamp(t / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def num(v: Any) -> str:
    """A number for people: ``12,345.68`` from 1,000 up (2 decimals, thousands
    separated), else 5 significant digits (``0.5913``, ``-0.074974``); integers whole;
    NaN and infinities as ``n/a``; anything else via :func:`fmt`."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return fmt(v)
    if isinstance(v, int):
        return f"{v:,}"
    if not math.isfinite(v):
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:,.2f}"
    return f"{v:.5g}"


def pct(frac: Any) -> str:
    """A fraction as a percent with 2 decimals (``-0.075`` -> ``-7.50 %``)."""
    if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not math.isfinite(frac):
        return "n/a"
    return f"{100 * frac:.2f} %"


def fmt(v: Any) -> str:
    """A table cell: numbers via :func:`num`, grid levels compact (``○`` resting,
    ``●`` filled), booleans yes/no, other containers as compact ``key value`` text."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)):
        return num(v)
    if isinstance(v, list) and v and all(isinstance(x, dict) and "price" in x for x in v):
        return " ".join(("●" if x.get("filled") else "○") + num(x.get("price")) for x in v)
    if isinstance(v, dict):
        return detail_text(v)
    if isinstance(v, (list, tuple)):
        return ", ".join(fmt(x) for x in v)
    return str(v)


def detail_text(detail: dict[str, Any], skip: tuple[str, ...] = ()) -> str:
    """``key value, key value`` of a detail dict: ``*ts_ms`` keys as UTC dates,
    numbers rounded; keys in ``skip`` and ``None`` values left out."""
    parts = []
    for k, v in detail.items():
        if k in skip or v is None:
            continue
        if k.endswith("ts_ms"):
            k, text = k.removesuffix("ts_ms").rstrip("_") or "time", f"{iso(v)} UTC"
        else:
            text = fmt(v)
        parts.append(f"{k.replace('_', ' ')} {text}")
    return ", ".join(parts)


def _by(d: dict[str, Any]) -> str:
    who = d.get("by") or d.get("issued_by")
    cid = d.get("command_id")
    if who == "DAY_ROLLOVER":
        return "at the UTC day rollover"
    return (f"by {who}" if who else "") + (f" (command {cid})" if cid is not None else "")


def _denied(e: dict[str, Any], d: dict[str, Any]) -> str:
    lvl = d.get("level")
    head = (f"{d.get('side', '')} L{lvl}" if lvl is not None else d.get("side", "")).strip()
    rest = detail_text(d, ("level", "side", "price", "amount", "decision_ts_ms", "none"))
    return (f"Denied {head} {num(d.get('amount'))} @ {num(d.get('price'))}: "
            f"{e.get('reason', '')}" + (f" ({rest})" if rest else ""))


def _command(e: dict[str, Any], d: dict[str, Any], applied: bool) -> str:
    kind = str(d.get("kind") or e.get("reason", "")).replace("_", " ")
    payload = d.get("payload") or {}
    on = f" on {payload['symbol']}" if isinstance(payload, dict) and payload.get("symbol") else ""
    who = _by(d)
    if applied:
        return f"Command {kind}{on} applied {who}".strip()
    why = d.get("error") or ""
    return (f"Command {kind}{on} rejected: {e.get('reason', '')}"
            + (f" — {why}" if why else "") + (f"; {who}" if who else ""))


def _funding(d: dict[str, Any]) -> str:
    pay = d.get("payment")
    verb = "received" if isinstance(pay, (int, float)) and pay < 0 else "paid"
    amount = num(abs(pay)) if isinstance(pay, (int, float)) else num(pay)
    rate = d.get("rate")
    rate_s = f"{100 * rate:.4f} %" if isinstance(rate, (int, float)) else num(rate)
    return (f"Funding on a {d.get('position_side', '')} position: {verb} {amount} "
            f"(rate {rate_s}, mark {num(d.get('mark_price'))})")


def event_line(e: dict[str, Any]) -> str:
    """One short sentence of a journal event (a ``read_events`` row): what happened,
    with rounded numbers and UTC dates, never raw JSON."""
    kind = str(e.get("kind", ""))
    reason = str(e.get("reason", "") or "")
    d = e.get("detail") or {}
    if not isinstance(d, dict):
        d = {"detail": d}
    if kind == "kill_switch_tripped":
        return (f"Kill switch {reason} tripped: {pct(d.get('value'))} against a limit of "
                f"{pct(d.get('threshold'))} (peak equity {num(d.get('peak_equity'))})")
    if kind == "kill_switch_reset":
        return f"Kill switch {reason} reset {_by(d)}, equity {num(d.get('equity'))}"
    if kind == "kill_switch_restored":
        return f"Kill switch {reason} still on after the restart"
    if kind == "order_denied":
        return _denied(e, d)
    if kind in ("command_applied", "command_rejected"):
        return _command(e, d, kind == "command_applied")
    if kind == "funding":
        return _funding(d)
    if kind == "data_gap":
        return (f"{num(d.get('missing'))} candles missing between {iso(d.get('from_ts_ms'))} "
                f"and {iso(d.get('to_ts_ms'))} UTC")
    if kind == "candle_rejected" and d.get("message"):
        return f"Candle rejected ({reason}): {d['message']}"
    rest = detail_text(d)
    head = kind.replace("_", " ").capitalize() + (f" ({reason})" if reason else "")
    return f"{head}: {rest}" if rest else head


def event_rows(events: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Table rows of journal events, newest first: ``time`` (UTC), ``event`` (the
    kind), ``symbol`` and ``what`` (:func:`event_line`)."""
    return [{"time": iso(e.get("ts_ms")), "event": str(e.get("kind", "")).replace("_", " "),
             "symbol": e.get("symbol") or "", "what": event_line(e)}
            for e in reversed(events)]
