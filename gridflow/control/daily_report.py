"""The daily report of one run: what happened on one UTC day, from the journal.

:func:`daily_report` reads the run once (:func:`gridflow.control.report_data.load_run`,
as ``gridflow report``), keeps the rows of the day and computes each figure with the
report's own rules (:func:`~gridflow.control.report_data.per_symbol_pnl`,
:func:`~gridflow.control.report_sections.trade_stats`): per account, strategy and symbol
the day's booked PnL, trades and win rate, fees and funding; the account's equity
change; the open positions with their distances to take profit and stop; the
kill-switch events and the data gaps of the day. :mod:`gridflow.control.daily_report_text`
renders it as text and sends it through Apprise.

Which day a row belongs to
--------------------------
The day is ``[00:00, 24:00)`` UTC. Fills and round trips are stamped with the open of
their candle (a round trip with its exit candle's), events with their time: each
belongs to the day its stamp is in. An equity snapshot is stamped with a candle's
close, and a funding settlement is booked on the candle that closes at its time, so
both belong to the day that candle ends (a close or settlement at 00:00 ends the day
before: the month rule of ``gridflow report``). So the day's booked PnL is exactly the
change of the accounts' cash between the snapshots at the day's two ends.

Money in quote currency, rates in percent (``*_pct``), times ms UTC (``*_ms``) and
ISO 8601 UTC.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine, select

from gridflow.control.report_data import (
    RunData,
    load_run,
    open_positions,
    per_symbol_pnl,
    quote_of,
    window,
)
from gridflow.control.report_sections import _kill_rows, trade_stats
from gridflow.event_kinds import EventKind
from gridflow.isotime import iso_utc
from gridflow.journal.runs import resolve_run
from gridflow.journal.schema import EventRow, open_store
from gridflow.timeframes import DAY_MS

__all__ = ["DATA_ISSUE_KINDS", "AccountDay", "DailyReport", "DataIssue", "OpenPosition",
           "StrategyDay", "SwitchEvent", "SymbolDay", "build_daily_report", "daily_report",
           "day_window", "parse_day"]

#: Journal event kinds the report lists as data gaps: missing or rejected candles, a
#: symbol without closed candles, an exchange stream not trusted (and their recoveries).
DATA_ISSUE_KINDS = (EventKind.DATA_GAP, EventKind.CANDLE_REJECTED, EventKind.NO_CANDLES,
                    EventKind.DATA_STALE, EventKind.DATA_FRESH, EventKind.STREAM_STALE,
                    EventKind.STREAM_RESTORED)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Figures(_Model):
    """The day's figures of a symbol, a strategy or an account (quote currency).

    ``net_pnl = realized - fees_paid - funding_paid`` (booked: the fills' realized PnL
    less their fees, less the funding paid; ``gridflow report``'s net PnL without the
    open positions' unrealized PnL); ``closed_pnl`` is the net PnL of the round trips
    closed that day (entries' fees and funding included, whenever paid); ``trades``
    counts them, ``win_rate_pct`` is the share with net PnL > 0 (0.0 without trades).
    """

    realized: float
    fees_paid: float
    funding_paid: float
    net_pnl: float
    trades: int
    win_rate_pct: float
    closed_pnl: float


class SymbolDay(_Figures):
    """One symbol of an account on the day."""

    symbol: str
    strategy: str


class StrategyDay(_Figures):
    """One strategy of an account on the day: its symbols' figures summed."""

    strategy: str
    symbols: list[str]


class OpenPosition(_Model):
    """A position open at :attr:`DailyReport.positions_as_of` (the account summary).

    ``amount`` in base currency, prices in quote; ``unrealized`` at ``last_close``;
    distances are signed percent of ``last_close`` (``+2.0`` = 2 % above it); None
    where the engine has no take profit or stop.
    """

    symbol: str
    strategy: str
    side: str
    amount: float
    avg_entry: float | None
    last_close: float | None
    unrealized: float
    take_profit: float | None
    take_profit_distance_pct: float | None
    stop: float | None
    stop_distance_pct: float | None
    open_since: str | None


class AccountDay(_Figures):
    """One account on the day.

    ``equity_start`` / ``equity_end``: the last equity snapshot at or before the day's
    start / end (the initial capital before the first); ``equity_change`` is their
    difference and ``unrealized_change = equity_change - net_pnl`` the change of the
    open positions' value. ``kill_switch``: the switches on at the end of the run
    (comma-separated); ``symbols`` and ``strategies`` sum to the account's figures.
    """

    account: str
    quote: str
    equity_start: float
    equity_end: float
    equity_change: float
    unrealized_change: float
    kill_switch: str
    symbols: list[SymbolDay]
    strategies: list[StrategyDay]
    positions: list[OpenPosition]


class SwitchEvent(_Model):
    """A kill switch tripped, reset or restored that day (``gridflow report``'s row):
    the rule's value and threshold in percent of equity, what reset it (``by``)."""

    time: str
    ts_ms: int
    account: str
    event: str
    reason: str
    value_pct: float | None
    threshold_pct: float | None
    by: str | None


class DataIssue(_Model):
    """A data gap of the day: a :data:`DATA_ISSUE_KINDS` event (``detail`` as
    journaled, e.g. ``from_ts_ms``, ``to_ts_ms``, ``missing`` of a ``data_gap``)."""

    time: str
    ts_ms: int
    kind: str
    reason: str
    account: str
    symbol: str
    detail: dict[str, Any]


class DailyReport(_Model):
    """The daily report of run ``run_id`` for the UTC day ``date`` (``YYYY-MM-DD``,
    ``[start_ms, end_ms)``). ``positions_as_of`` is the time of the run's last equity
    snapshot: the positions are the latest, the end of the day only for the run's
    last day."""

    run_id: str
    name: str | None
    mode: str | None
    date: str
    start: str
    end: str
    start_ms: int
    end_ms: int
    positions_as_of: str | None
    accounts: list[AccountDay]
    kill_switch_events: list[SwitchEvent]
    data_gaps: list[DataIssue]


def parse_day(text: str | None) -> date:
    """The UTC day ``text`` names (``YYYY-MM-DD``), or yesterday (UTC) when None.

    Raises
    ------
    ValueError
        For anything else, naming the format.
    """
    if text is None:
        return datetime.now(UTC).date() - timedelta(days=1)
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise ValueError(f"--date must be a UTC day as YYYY-MM-DD (e.g. 2024-03-01), "
                         f"got {text!r}") from None


def day_window(day: date) -> tuple[int, int]:
    """``(start_ms, end_ms)`` of the UTC day ``day``: its 00:00 and the next day's."""
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1000
    return start, start + DAY_MS


def _day_rows(data: RunData, start: int, end: int) -> RunData:
    """The rows of ``data`` that belong to ``[start, end)`` (see the module doc), the
    summaries without positions (no unrealized PnL: the day's booked figures)."""
    def inside(t: int) -> bool:
        return start <= t < end

    return RunData(
        run=data.run, summaries=[{**s, "positions": {}} for s in data.summaries],
        trades=[t for t in data.trades if inside(t["close_ts_ms"])],
        fills=[f for f in data.fills if inside(f["ts_ms"])],
        funding=[f for f in data.funding if start < f["ts_ms"] <= end],
        equity=[r for r in data.equity if start < r[0] <= end],
        events=[e for e in data.events if inside(e["ts_ms"])],
        strategies=data.strategies)


def _figures(parts: list[dict[str, float]], pnl: list[float]) -> dict[str, Any]:
    """Summed PnL parts (:func:`per_symbol_pnl` rows) and the trade stats of ``pnl``."""
    stats = trade_stats(pnl)
    return {"realized": sum(p["realized"] for p in parts),
            "fees_paid": sum(p["fees"] for p in parts),
            "funding_paid": sum(p["funding"] for p in parts),
            "net_pnl": sum(p["net_pnl"] for p in parts),
            "trades": stats["trades"], "win_rate_pct": stats["win_rate_pct"],
            "closed_pnl": float(sum(pnl))}


def _equity_at(data: RunData, account: str, t: int, default: float) -> float:
    """The account's last equity snapshot at or before ``t`` (``default`` before any)."""
    out = default
    for ts, acc, eq in data.equity:  # sorted by time
        if ts > t:
            break
        if acc == account:
            out = float(eq)
    return out


def _positions(data: RunData, summary: dict[str, Any]) -> list[OpenPosition]:
    """The account's open positions from its summary (distances fractions -> percent)."""
    held = open_positions(data, summary["account"])
    out = []
    for sym, p in sorted((summary.get("positions") or {}).items()):
        if sym not in held:
            continue

        def pct(key: str, p=p) -> float | None:
            return None if p.get(key) is None else float(p[key]) * 100.0

        opened = held[sym]["open_ts_ms"]
        out.append(OpenPosition(
            symbol=sym, strategy=str(p.get("strategy") or ""), side=str(p.get("side")),
            amount=float(p["amount"]), avg_entry=p.get("avg_entry"),
            last_close=p.get("last_close"), unrealized=held[sym]["unrealized"],
            take_profit=p.get("take_profit"), take_profit_distance_pct=pct("take_profit_distance"),
            stop=p.get("stop"), stop_distance_pct=pct("stop_distance"),
            open_since=iso_utc(opened) if opened is not None else None))
    return out


def _account(data: RunData, day: RunData, summary: dict[str, Any], start: int, end: int
             ) -> AccountDay:
    """One account's day (see :class:`AccountDay`)."""
    acc = summary["account"]
    parts = per_symbol_pnl(day, acc)
    symbols = []
    by_strategy: dict[str, list[str]] = defaultdict(list)
    for sym, p in parts.items():
        strategy = data.strategies.get((acc, sym), "")
        by_strategy[strategy].append(sym)
        pnl = [t["pnl"] for t in day.trades if t["account"] == acc and t["symbol"] == sym]
        symbols.append(SymbolDay(symbol=sym, strategy=strategy, **_figures([p], pnl)))
    strategies = [
        StrategyDay(strategy=k, symbols=syms, **_figures(
            [parts[s] for s in syms],
            [t["pnl"] for t in day.trades if t["account"] == acc and t["symbol"] in syms]))
        for k, syms in sorted(by_strategy.items())]
    initial = float(summary["initial_capital"])
    eq0 = _equity_at(data, acc, start, initial)
    eq1 = _equity_at(data, acc, end, eq0)
    total = _figures(list(parts.values()),
                     [t["pnl"] for t in day.trades if t["account"] == acc])
    quotes = sorted({quote_of(s) for s in parts} - {""})
    return AccountDay(
        account=acc, quote=",".join(quotes), equity_start=eq0, equity_end=eq1,
        equity_change=eq1 - eq0, unrealized_change=eq1 - eq0 - total["net_pnl"],
        kill_switch=str(summary.get("kill_switch") or ""), symbols=symbols,
        strategies=strategies, positions=_positions(data, summary), **total)


def build_daily_report(data: RunData, day: date, issues: list[dict[str, Any]]
                       ) -> DailyReport:
    """The daily report of a loaded run.

    Parameters
    ----------
    data : RunData
        :func:`gridflow.control.report_data.load_run`.
    day : datetime.date
        The UTC day.
    issues : list of dict
        The day's :data:`DATA_ISSUE_KINDS` events (``kind, reason, ts_ms, account,
        symbol, detail``), in time order.

    Raises
    ------
    LookupError
        ``NO_DATA`` when the run has no equity snapshot, fill, round trip or event on
        that day (naming the run's window).
    """
    start, end = day_window(day)
    rows = _day_rows(data, start, end)
    rid = data.run["run_id"]
    if not (rows.equity or rows.fills or rows.trades or rows.funding or rows.events
            or issues):
        first, last = window(data)
        span = (f"{iso_utc(first)} to {iso_utc(last)}" if first is not None
                else "no equity snapshot yet")
        raise LookupError(f"NO_DATA: run {rid} has nothing journaled on {day.isoformat()} "
                          f"(UTC); its window: {span}")
    last = window(data)[1]
    return DailyReport(
        run_id=rid, name=data.run.get("name"), mode=data.run.get("mode"),
        date=day.isoformat(), start=iso_utc(start), end=iso_utc(end), start_ms=start,
        end_ms=end, positions_as_of=iso_utc(last) if last is not None else None,
        accounts=[_account(data, rows, s, start, end) for s in data.summaries],
        kill_switch_events=[SwitchEvent(**r) for r in _kill_rows(rows)],
        data_gaps=[DataIssue(time=iso_utc(e["ts_ms"]), **e) for e in issues])


def _issues(engine: Engine, rid: str, start: int, end: int) -> list[dict[str, Any]]:
    """The :data:`DATA_ISSUE_KINDS` events of run ``rid`` in ``[start, end)``."""
    ev = EventRow.__table__.c
    cols = (ev.kind, ev.reason, ev.ts_ms, ev.account, ev.symbol, ev.detail)
    q = select(*cols).where(ev.run_id == rid, ev.ts_ms >= start, ev.ts_ms < end,
                            ev.kind.in_([str(k) for k in DATA_ISSUE_KINDS]))
    with engine.connect() as conn:
        rows = conn.execute(q.order_by(ev.ts_ms, ev.account, ev.seq, ev.symbol)).all()
    return [{"kind": k, "reason": r, "ts_ms": int(t), "account": a, "symbol": s,
             "detail": d or {}} for k, r, t, a, s, d in rows]


def daily_report(url_or_engine: str | Engine, run_id: str | None, day: date) -> DailyReport:
    """The daily report of one run for the UTC day ``day`` (see :class:`DailyReport`).

    Parameters
    ----------
    url_or_engine : str or sqlalchemy.Engine
        The journal.
    run_id : str or None
        A run id or name; the latest run when None.
    day : datetime.date

    Raises
    ------
    LookupError
        ``NO_RUNS`` / ``UNKNOWN_RUN`` (:func:`gridflow.journal.runs.resolve_run`);
        ``NO_DATA`` for a day without journal rows.
    """
    engine = url_or_engine if isinstance(url_or_engine, Engine) else open_store(url_or_engine)
    try:
        rid = resolve_run(engine, run_id)
        data = load_run(engine, rid)
        issues = _issues(engine, rid, *day_window(day))
    finally:
        if engine is not url_or_engine:
            engine.dispose()
    return build_daily_report(data, day, issues)
