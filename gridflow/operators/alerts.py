"""Human alerts derived from the journal stream, and their event-time throttle.

Pure functions and picklable state only: no I/O, no wall clock. Delivery is the job
of :class:`gridflow.dataflows.alert_sink.AlertSink`.

Wiring in a flow (``batches`` is a stream of :class:`~gridflow.chunks.JournalBatch`)::

    def throttle(state, alerts):
        state = state or AlertThrottle({"data_gap": 3_600_000}, default_ms=300_000)
        return state, state.admit(alerts)[0]

    alerts = op.key_on("alerts_key", op.map("alerts", batches, alerts_from_batch),
                       lambda _: "alerts")
    admitted = op.stateful_map("alert_throttle", alerts, throttle)
    op.output("notify", op.flat_map("unkey", admitted, lambda kv: kv[1]), AlertSink(urls))

Times are ms UTC (``ts_ms``), prices and PnL in quote currency, amounts in base
currency, ratios are fractions shown as percentages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from gridflow.chunks import JournalBatch
from gridflow.event_kinds import EventKind, ExitReason, RecordAlertKind
from gridflow.events import ExecutionReport, JournalEvent, OrderRequest, TradeRecord
from gridflow.isotime import iso_utc

#: Every alert kind: the journal event kinds alerted (:class:`EventKind` values, the keys
#: of ``_EVENT_BUILDERS``) and the :class:`RecordAlertKind` values (a test keeps them equal).
AlertKind = Literal["kill_switch_tripped", "kill_switch_reset", "grid_level_opened",
                    "grid_cycle_closed", "order_denied", "data_gap", "price_reanchored",
                    # live trading (gridflow.operators.live_engine)
                    "orphan_order", "orphan_position", "orphan_fill", "position_mismatch",
                    "stop_missing", "stop_not_filled", "slippage", "order_rejected",
                    "order_failed",
                    "order_vanished", "exchange_error", "fill_inconsistent",
                    "engine_started", "position_adopted", "kill_switch_restored",
                    "equity_drift", "stream_stale", "stream_restored",
                    # running unattended (gridflow.operators.live_watch)
                    "daily_heartbeat", "data_stale", "data_fresh", "exchange_error_rate",
                    "shutdown"]
Severity = Literal["info", "warning", "critical"]

#: Kinds whose cooldown defaults to 0 ms (never suppressed) in :class:`AlertThrottle`.
KILL_SWITCH_KINDS = frozenset({EventKind.KILL_SWITCH_TRIPPED, EventKind.KILL_SWITCH_RESET})
#: Same default (0 ms): those, and ``shutdown`` (a stop and the next start's view of it
#: come at nearly the same exchange time; each must be told).
UNTHROTTLED_KINDS = KILL_SWITCH_KINDS | {EventKind.SHUTDOWN}


class Alert(BaseModel):
    """One notification, derived from a journal record.

    Attributes
    ----------
    alert_id : str
        Deterministic ``"{kind}:{event id | client order id | trade id}"``.
    kind : AlertKind
    account, symbol : str
        Empty when not applicable (data gaps have no account).
    ts_ms : int
        Event time, ms UTC (fill time, close time, event time); the throttle clock.
    title, body : str
        Short human text; prices and PnL (signed) in quote currency.
    severity : {"info", "warning", "critical"}
    detail : dict
        The numbers behind the text.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    alert_id: str = Field(min_length=1)
    kind: AlertKind
    account: str = ""
    symbol: str = ""
    ts_ms: int = Field(ge=0)
    title: str
    body: str
    severity: Severity
    detail: dict[str, Any] = Field(default_factory=dict)


# ---- formatting ---------------------------------------------------------------------
def fmt_num(x: float, sig: int = 6) -> str:
    """About ``sig`` significant digits, thousands separators, no exponent, >= 2 decimals.

    ``41250.5 -> "41,250.50"``, ``0.00001234 -> "0.00001234"``, ``1.5 -> "1.50"``.
    """
    x = float(x)
    if not math.isfinite(x) or x == 0:
        return str(x) if x else "0.00"
    a = abs(x)
    decimals = sig - len(str(int(a))) if a >= 1 else sig - 1 - math.floor(math.log10(a))
    whole, _, frac = f"{x:,.{min(max(decimals, 2), 12)}f}".partition(".")
    return f"{whole}.{frac.rstrip('0').ljust(2, '0')}"


def fmt_money(x: float) -> str:
    """A quote-currency sum (notional, equity, fee): cents, or 4 significant digits below 1."""
    return f"{x:,.2f}" if abs(x) >= 1 or x == 0 else fmt_num(x, 4)


def _ccys(symbol: str) -> tuple[str, str]:
    """(base, quote) currencies of a ccxt symbol: ``"BTC/USDT:USDT" -> ("BTC", "USDT")``."""
    if "/" not in symbol:
        return "base", "quote"
    base, quote = symbol.split("/", 1)
    return base, quote.split(":", 1)[0] or "quote"


def _detail_text(detail: dict[str, Any]) -> str:
    return ", ".join(f"{k}={fmt_num(v) if isinstance(v, float) else v}" for k, v in detail.items())


def _who(account: str, symbol: str) -> str:
    return " ".join(p for p in (f"[{account}]" if account else "", symbol) if p)


def _from_event(ev: JournalEvent, severity: Severity, title: str, body: str) -> Alert:
    key = ev.event_id if ev.event_id.startswith(ev.kind + ":") else f"{ev.kind}:{ev.event_id}"
    return Alert(alert_id=key, kind=ev.kind, account=ev.account, symbol=ev.symbol,
                 ts_ms=ev.ts_ms, severity=severity, title=title, body=body,
                 detail={"reason": ev.reason, **ev.detail})


# ---- one builder per source record ------------------------------------------------
def _kill_switch(ev: JournalEvent) -> Alert:
    tripped, rest = ev.kind == EventKind.KILL_SWITCH_TRIPPED, dict(ev.detail)
    unit = f" {_ccys(ev.symbol)[1]}" if ev.symbol else ""  # account-level: currency unknown
    parts = [f"rule {ev.reason}"]
    if {"session_return", "threshold"} <= rest.keys():
        parts.append(f"session return {rest.pop('session_return') * 100:+.2f} % "
                     f"vs threshold {rest.pop('threshold') * 100:+.2f} %")
    elif {"value", "threshold"} <= rest.keys():
        parts.append(f"value {fmt_num(rest.pop('value'))} "
                     f"vs threshold {fmt_num(rest.pop('threshold'))}")
    for k in [k for k, v in rest.items() if "equity" in k and isinstance(v, int | float)]:
        parts.append(f"{k.replace('_', ' ')} {fmt_money(rest.pop(k))}{unit}")
    if rest:
        parts.append(_detail_text(rest))
    what = "tripped, new entries blocked" if tripped else "reset, entries allowed again"
    acct = ev.account or "?"
    return _from_event(
        ev, "critical" if tripped else "info",
        f"[{acct}] Kill switch {'TRIPPED' if tripped else 'reset'}: {ev.reason}",
        f"Kill switch {what} on account {acct} at {iso_utc(ev.ts_ms)}; {'; '.join(parts)}.",
    )


def _denied(ev: JournalEvent) -> Alert:
    d, (base, ccy) = ev.detail, _ccys(ev.symbol)
    order = ""
    if "price" in d and "amount" in d:
        lvl = f"L{d['level']} " if "level" in d else ""
        side = f"{d['side']} " if "side" in d else ""
        notional = float(d["price"]) * float(d["amount"])
        order = (f"{lvl}{side}{fmt_num(d['amount'])} {base} @ {fmt_num(d['price'])} {ccy} "
                 f"(notional {fmt_money(notional)} {ccy}) ")
    body = f"{ev.symbol} {order}denied at {iso_utc(ev.ts_ms)}: {ev.reason}"
    rest = {k: v for k, v in d.items()
            if k not in ("level", "side", "price", "amount", "decision_ts_ms")}
    if {"margin_ratio_after", "max_margin_ratio"} <= rest.keys():
        body += (f" (margin ratio after {rest['margin_ratio_after'] * 100:.2f} % > "
                 f"limit {rest['max_margin_ratio'] * 100:.2f} %)")
    elif rest:
        body += f" ({_detail_text(rest)})"
    return _from_event(ev, "warning", f"{_who(ev.account, ev.symbol)} order denied: {ev.reason}",
                       body + ".")


def _gap(ev: JournalEvent) -> Alert:
    d = ev.detail
    if {"from_ts_ms", "to_ts_ms", "missing"} <= d.keys():
        return _from_event(
            ev, "warning", f"{ev.symbol} data gap: {d['missing']} candle(s) missing",
            f"{ev.symbol}: {d['missing']} candle(s) missing between "
            f"{iso_utc(int(d['from_ts_ms']))} and {iso_utc(int(d['to_ts_ms']))}.",
        )
    return _from_event(ev, "warning", f"{ev.symbol} data gap",
                       f"{ev.symbol}: data gap at {iso_utc(ev.ts_ms)} ({_detail_text(d)}).")


def _level_opened(o: OrderRequest, fills: list[ExecutionReport]) -> Alert:
    amount = sum(f.amount for f in fills)
    price = sum(f.price * f.amount for f in fills) / amount
    fee = sum(f.fee for f in fills)
    ts = max(f.ts_ms for f in fills)
    (base, ccy), grid = _ccys(o.symbol), "long" if o.side == "buy" else "short"
    return Alert(
        alert_id=f"{RecordAlertKind.GRID_LEVEL_OPENED}:{o.client_order_id}",
        kind=RecordAlertKind.GRID_LEVEL_OPENED,
        account=o.account, symbol=o.symbol, ts_ms=ts, severity="info",
        title=f"{_who(o.account, o.symbol)} {grid} grid level {o.tag} opened",
        body=(f"{o.symbol} {grid} grid level {o.tag} filled at {iso_utc(ts)}: "
              f"{'bought' if o.side == 'buy' else 'sold'} {fmt_num(amount)} {base} @ "
              f"{fmt_num(price)} {ccy} (notional {fmt_money(price * amount)} {ccy}, "
              f"fee {fmt_money(fee)} {ccy})."),
        detail={"tag": o.tag, "side": o.side, "price": price, "amount": amount, "fee": fee,
                "limit_price": o.price, "client_order_id": o.client_order_id},
    )


def _cycle_closed(t: TradeRecord) -> Alert:
    (base, ccy), held_min = _ccys(t.symbol), max(0, t.close_ts_ms - t.open_ts_ms) // 60_000
    return Alert(
        alert_id=f"{RecordAlertKind.GRID_CYCLE_CLOSED}:{t.trade_id}",
        kind=RecordAlertKind.GRID_CYCLE_CLOSED,
        account=t.account, symbol=t.symbol, ts_ms=t.close_ts_ms,
        severity="warning" if t.exit_reason == ExitReason.SL or t.pnl < 0 else "info",
        title=(f"{_who(t.account, t.symbol)} {t.position_side} grid closed by "
               f"{t.exit_reason}: {t.pnl:+,.2f} {ccy}"),
        body=(f"{t.symbol} {t.position_side} grid closed by {t.exit_reason} at "
              f"{iso_utc(t.close_ts_ms)}: net PnL {t.pnl:+,.2f} {ccy} after fees "
              f"{fmt_money(t.fees)} {ccy}; {t.entries} level(s), {fmt_num(t.amount)} {base}, "
              f"avg entry {fmt_num(t.avg_entry)} -> exit {fmt_num(t.exit_price)} {ccy}; "
              f"held {held_min // 60}h{held_min % 60:02d}m."),
        detail={k: getattr(t, k) for k in ("trade_id", "pnl", "fees", "exit_reason", "entries",
                                           "amount", "avg_entry", "exit_price", "open_ts_ms")},
    )


#: Live-trading events: (severity, what happened).
_LIVE = {
    EventKind.ORPHAN_ORDER: ("critical", "open order unknown to the engine"),
    EventKind.ORPHAN_POSITION: ("critical", "position on a symbol the account does not trade"),
    EventKind.ORPHAN_FILL: ("critical", "fill of an order unknown to the engine"),
    EventKind.POSITION_MISMATCH: ("critical", "exchange position differs from the engine's"),
    EventKind.STOP_MISSING: ("critical",
                             "open position found without a live stop; stop re-placed"),
    EventKind.STOP_NOT_FILLED: ("critical", "price went through the stop and the position "
                                "stayed open (a stop-limit gapped past its limit); closed at "
                                "market"),
    EventKind.SLIPPAGE: ("warning", "fill worse than its order price beyond the threshold"),
    EventKind.ORDER_REJECTED: ("warning", "order rejected"),
    EventKind.ORDER_FAILED: ("critical", "order not sent after every retry"),
    EventKind.ORDER_VANISHED: ("warning", "order left the book without our cancel or a fill"),
    EventKind.EXCHANGE_ERROR: ("warning", "exchange poll failed"),
    EventKind.STREAM_STALE: ("warning", "exchange stream not trusted; polling by REST"),
    EventKind.STREAM_RESTORED: ("info", "exchange stream caught up and trusted again"),
    EventKind.FILL_INCONSISTENT: ("critical", "fill inconsistent with the engine's position"),
    EventKind.ENGINE_STARTED: ("info", "live engine started"),
    EventKind.POSITION_ADOPTED: ("warning", "exchange position adopted at start; stop placed"),
    EventKind.KILL_SWITCH_RESTORED: ("critical", "kill switch still on after the restart"),
    EventKind.EQUITY_DRIFT: ("critical", "engine equity differs from the exchange's"),
    EventKind.PRICE_REANCHORED: ("warning", "candles moved beyond the price-jump band and "
                                 "agree with each other; the band follows them"),
    EventKind.DAILY_HEARTBEAT: ("info", "daily heartbeat: the flow is running"),
    EventKind.DATA_STALE: ("critical", "no closed candle for longer than its bound"),
    EventKind.DATA_FRESH: ("info", "closed candles again"),
    EventKind.EXCHANGE_ERROR_RATE: ("critical", "exchange errors over the configured rate"),
    EventKind.SHUTDOWN: ("warning", "live flow stopped"),
}


def _live(ev: JournalEvent) -> Alert:
    severity, what = _LIVE[ev.kind]
    return _from_event(ev, severity, f"{_who(ev.account, ev.symbol)} {ev.kind}: {ev.reason}",
                       f"{what} at {iso_utc(ev.ts_ms)} ({_detail_text(ev.detail)}).")


_EVENT_BUILDERS = {EventKind.KILL_SWITCH_TRIPPED: _kill_switch,
                   EventKind.KILL_SWITCH_RESET: _kill_switch,
                   EventKind.ORDER_DENIED: _denied, EventKind.DATA_GAP: _gap,
                   **{k: _live for k in _LIVE}}


def alerts_from_batch(batch: JournalBatch) -> list[Alert]:
    """Alerts worth a human's attention in one engine (or validation) output.

    Parameters
    ----------
    batch : JournalBatch
        What one engine call emitted.

    Returns
    -------
    list of Alert
        Sorted by ``ts_ms`` (stable: batch order breaks ties). ``kill_switch_tripped``
        (critical) and ``kill_switch_reset`` (info) events; ``grid_level_opened``
        (info) per entry order (tag ``"L..."``) with fills in the batch (same
        ``client_order_id``, amount > 0: fill VWAP, last fill time; an entry without
        fill is a resting order, no alert); ``grid_cycle_closed`` per trade (warning
        if stopped out or net PnL < 0, else info); ``order_denied`` and ``data_gap``
        events (warning). Other records give no alert.
    """
    out = [_EVENT_BUILDERS[ev.kind](ev) for ev in batch.events if ev.kind in _EVENT_BUILDERS]
    fills: dict[str, list[ExecutionReport]] = {}
    for f in batch.fills:
        if f.status in ("filled", "partially_filled") and f.amount > 0:
            fills.setdefault(f.client_order_id, []).append(f)
    for o in batch.orders:
        if o.tag.startswith("L") and o.client_order_id in fills:
            out.append(_level_opened(o, fills[o.client_order_id]))
    out.extend(_cycle_closed(t) for t in batch.trades)
    out.sort(key=lambda a: a.ts_ms)
    return out


@dataclass(slots=True)
class AlertThrottle:
    """Per-(kind, account, symbol) cooldown in event time; picklable Bytewax state.

    Parameters
    ----------
    cooldown_ms : dict[str, int], optional
        Cooldown per alert kind, ms of event time.
    default_ms : int
        Cooldown of kinds missing from ``cooldown_ms``, ms (default 5 minutes),
        **except** the kill-switch and shutdown kinds (:data:`UNTHROTTLED_KINDS`):
        same rule, but their default cooldown is 0 ms, so they are never suppressed
        unless ``cooldown_ms`` names them.

    Attributes
    ----------
    last_ts_ms : dict[tuple[str, str, str], int]
        ``ts_ms`` of the last admitted alert per key.
    suppressed : dict[str, int]
        Suppressed alerts per kind since creation.

    Notes
    -----
    An alert with cooldown ``c > 0`` is admitted iff its key has no admitted alert
    yet or ``ts_ms >= last + c``; otherwise it is suppressed and counted. A late
    alert (``ts_ms`` before the last admitted one of its key) is therefore
    suppressed. Admitted alerts of one key are thus at least ``c`` apart in event
    time whatever the arrival order. With ``c == 0`` every alert is admitted.
    """

    cooldown_ms: dict[str, int] = field(default_factory=dict)
    default_ms: int = 300_000
    last_ts_ms: dict[tuple[str, str, str], int] = field(default_factory=dict)
    suppressed: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.cooldown_ms) - set(get_args(AlertKind)))
        if unknown:
            raise ValueError(f"unknown alert kind(s) in cooldown_ms: {unknown}")
        bad = {k: v for k, v in self.cooldown_ms.items() if v < 0}
        if self.default_ms < 0 or bad:
            raise ValueError(f"cooldowns must be >= 0 ms, got default_ms={self.default_ms}, {bad}")

    def cooldown_for(self, kind: str) -> int:
        """Cooldown of ``kind`` in ms (explicit, else 0 for kill-switch kinds, else default)."""
        if kind in self.cooldown_ms:
            return self.cooldown_ms[kind]
        return 0 if kind in UNTHROTTLED_KINDS else self.default_ms

    def admit(self, alerts: list[Alert]) -> tuple[list[Alert], int]:
        """Filter ``alerts`` in order, updating the state.

        Returns
        -------
        sent : list of Alert
            Admitted alerts, in input order.
        suppressed : int
            Alerts suppressed by this call (also added to :attr:`suppressed`).
        """
        sent: list[Alert] = []
        n = 0  # suppressed by this call
        for a in alerts:
            cd = self.cooldown_for(a.kind)
            key = (a.kind, a.account, a.symbol)
            last = self.last_ts_ms.get(key)
            if cd > 0 and last is not None and a.ts_ms < last + cd:
                self.suppressed[a.kind] = self.suppressed.get(a.kind, 0) + 1
                n += 1
                continue
            if last is None or a.ts_ms > last:
                self.last_ts_ms[key] = a.ts_ms
            sent.append(a)
        return sent, n
