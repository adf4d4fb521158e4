"""The daily report (:class:`gridflow.control.daily_report.DailyReport`) as text for a
phone, and its delivery through Apprise.

The text is short lines without column alignment (a chat app wraps and uses a
proportional font): a title line with the day's total, then per account its PnL and
how it is made, equity, trades, strategies, symbols, open positions; then the day's
kill-switch events and data gaps. Money is printed with two decimals and thousands
separators, signed where it is a gain or loss (``+1,234.57``); prices and amounts with
about six significant digits; times of the day as ``HH:MM`` UTC.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pydantic import SecretStr

from gridflow.control.daily_report import AccountDay, DailyReport, DataIssue, SwitchEvent
from gridflow.event_kinds import EventKind
from gridflow.isotime import iso_utc
from gridflow.operators.alerts import fmt_num

__all__ = ["daily_title", "render_daily_text", "send_daily_report"]

log = logging.getLogger(__name__)


def _pnl(x: float) -> str:
    return f"{x:+,.2f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.2f}%"


def _hhmm(iso: str) -> str:
    return iso[11:16]


def _trades(n: int, win_pct: float) -> str:
    return f"{n} trade{'s' if n != 1 else ''}" + (f", win {win_pct:.0f}%" if n else "")


def _quote(rep: DailyReport) -> str:
    quotes = {a.quote for a in rep.accounts}
    return next(iter(quotes)) if len(quotes) == 1 else ""


def daily_title(rep: DailyReport) -> str:
    """One line: the day, the booked PnL and trades summed over the accounts (the quote
    named when every account has the same), and the kill-switch trips of the day."""
    net = sum(a.net_pnl for a in rep.accounts)
    trades = sum(a.trades for a in rep.accounts)
    trips = sum(1 for e in rep.kill_switch_events if e.event == EventKind.KILL_SWITCH_TRIPPED)
    quote = f" {_quote(rep)}".rstrip()
    return (f"gridflow daily {rep.date}: PnL {_pnl(net)}{quote}, {trades} trade"
            f"{'s' if trades != 1 else ''}"
            + (f", {trips} kill-switch trip{'s' if trips != 1 else ''}" if trips else ""))


def _account_lines(a: AccountDay, as_of: str | None) -> list[str]:
    q = f" {a.quote}".rstrip()
    out = [(f"[{a.account}] PnL {_pnl(a.net_pnl)}{q} = realized {_pnl(a.realized)}"
            f" - fees {a.fees_paid:,.2f} - funding {a.funding_paid:,.2f}"),
           (f" equity {a.equity_start:,.2f} -> {a.equity_end:,.2f} ({_pnl(a.equity_change)};"
            f" unrealized {_pnl(a.unrealized_change)})"),
           f" {_trades(a.trades, a.win_rate_pct)}, closed PnL {_pnl(a.closed_pnl)}"]
    if len(a.strategies) > 1:
        out.append(" by strategy:")
        out += [f"  {s.strategy or '?'} {_pnl(s.net_pnl)} ({_trades(s.trades, s.win_rate_pct)})"
                for s in a.strategies]
    out.append(" by symbol:")
    for s in a.symbols:
        extra = "".join(f", {k} {v:,.2f}" for k, v in (("fees", s.fees_paid),
                                                       ("funding", s.funding_paid)) if v)
        out.append(f"  {s.symbol} {_pnl(s.net_pnl)} ({_trades(s.trades, s.win_rate_pct)}"
                   f"{extra})")
    if a.kill_switch:
        out.append(f" kill switch on now: {a.kill_switch}")
    if a.positions:
        out.append(f" open positions (as of {as_of or 'now'}):")
    for p in a.positions:
        entry = f" @ {fmt_num(p.avg_entry)}" if p.avg_entry is not None else ""
        last = f", last {fmt_num(p.last_close)}" if p.last_close is not None else ""
        out.append(f"  {p.symbol} {p.side} {fmt_num(p.amount)}{entry}{last},"
                   f" uPnL {_pnl(p.unrealized)}, TP {_pct(p.take_profit_distance_pct)},"
                   f" stop {_pct(p.stop_distance_pct)}")
    return out


def _switch_line(e: SwitchEvent) -> str:
    what = e.event.removeprefix("kill_switch_")
    if e.value_pct is not None:
        what += f" {e.reason} at {e.value_pct:+.2f}% (limit {_pct(e.threshold_pct)})"
    else:
        what += f" {e.reason}" + (f" by {e.by}" if e.by else "")
    return f" {_hhmm(e.time)} {e.account} {what}"


def _issue_line(g: DataIssue) -> str:
    who = " ".join(x for x in (g.account, g.symbol) if x)
    d = g.detail
    if g.kind == EventKind.DATA_GAP and "missing" in d:
        span = (f" between {_hhmm(iso_utc(d['from_ts_ms']))} and {_hhmm(iso_utc(d['to_ts_ms']))}"
                if "from_ts_ms" in d and "to_ts_ms" in d else "")
        text = f"{d['missing']} candle(s) missing{span}"
    else:
        text = g.reason + (f" ({d['stream']})" if d.get("stream") else "")
    return f" {_hhmm(g.time)} {who} {g.kind}: {text}"


def render_daily_text(rep: DailyReport) -> str:
    """The report as text (see the module doc): :func:`daily_title`, the run, then a
    block per account, the day's kill-switch events and data gaps (``none`` when there
    are none)."""
    lines = [daily_title(rep), f"run {rep.run_id}" + (f" ({rep.name})" if rep.name else "")
             + f", {rep.mode or '?'}; UTC day {rep.start} to {rep.end}"]
    for a in rep.accounts:
        lines += ["", *_account_lines(a, rep.positions_as_of)]
    lines += ["", "kill switches:" + ("" if rep.kill_switch_events else " none")]
    lines += [_switch_line(e) for e in rep.kill_switch_events]
    lines += ["data gaps:" + ("" if rep.data_gaps else " none")]
    lines += [_issue_line(g) for g in rep.data_gaps]
    return "\n".join(lines)


def send_daily_report(report: DailyReport, apprise_urls: Sequence[str | SecretStr],
                      timeout_s: float = 10.0) -> bool:
    """Send the report through Apprise: :func:`daily_title` as the title,
    :func:`render_daily_text` as the body, notification type ``warning`` on a day with
    a kill-switch trip, else ``info``.

    Uses the alert sink's Apprise setup (:mod:`gridflow.dataflows.alert_sink`): the
    URLs' secrets are redacted from every log, connect and read timeouts are
    ``timeout_s`` per target. Blocks for the delivery (call it off the dataflow's
    thread).

    Parameters
    ----------
    report : DailyReport
    apprise_urls : sequence of str or SecretStr
        Apprise URLs (``tgram://...``, ``json://host:port/path``).
    timeout_s : float
        Connect and read timeout per target, s.

    Returns
    -------
    bool
        True when every target took it; False (and a warning naming no URL) otherwise.

    Raises
    ------
    ValueError
        Without URLs, or for one that is not an Apprise URL (named by position).
    """
    from gridflow.dataflows.alert_sink import NOTIFY_TYPES, _build_apprise

    if isinstance(apprise_urls, (str, SecretStr)) or not apprise_urls:
        raise ValueError("apprise_urls must be a non-empty list of Apprise URLs")
    urls = [u if isinstance(u, SecretStr) else SecretStr(u) for u in apprise_urls]
    notifier = _build_apprise(urls, timeout_s)
    tripped = any(e.event == EventKind.KILL_SWITCH_TRIPPED for e in report.kill_switch_events)
    try:
        ok = bool(notifier.notify(title=daily_title(report), body=render_daily_text(report),
                                  notify_type=NOTIFY_TYPES["warning" if tripped else "info"]))
    except Exception as e:  # noqa: BLE001 - a failed delivery is reported, never raised
        log.warning("daily report %s not delivered (%s)", report.date, type(e).__name__)
        return False
    if not ok:
        log.warning("daily report %s not delivered to all of %d target(s)", report.date,
                    len(urls))
    return ok
