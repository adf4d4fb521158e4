"""Turn the account kernel's event log into typed journal records."""

from __future__ import annotations

from collections import Counter

import numpy as np

from gridflow.chunks import JournalBatch
from gridflow.event_kinds import EventKind, ExitReason, Reason
from gridflow.events import EquitySnapshot, ExecutionReport, JournalEvent, OrderRequest, TradeRecord
from gridflow.ids import client_order_id
from gridflow.operators import kernel_layout as kl
from gridflow.operators.risk import DENY_DETAIL, DENY_REASONS, KILL_SWITCH_REASONS

_SIDE = {1: "buy", -1: "sell"}
_POS = {1: "long", -1: "short"}
EXIT_REASONS = {kl.EXIT_TP: ExitReason.TP, kl.EXIT_SL: ExitReason.SL,
                kl.EXIT_TRAIL: ExitReason.TRAIL, kl.EXIT_FLIP: ExitReason.FLIP,
                kl.EXIT_FLATTEN: ExitReason.FLATTEN, kl.EXIT_TIME: ExitReason.TIME,
                kl.EXIT_SIGNAL: ExitReason.SIGNAL}
_TAG = {kl.TAG_TP: "TP", kl.TAG_SL: "SL", kl.TAG_FLIP: "FLIP", kl.TAG_FLATTEN: "FLATTEN",
        kl.TAG_TIME: "TIME", kl.TAG_EXIT: "EXIT"}


def decode(oi: np.ndarray, of: np.ndarray, account: str, symbols: list[str],
           strategies: list[str], counters: Counter) -> JournalBatch:
    """Records of ``n`` event-log rows (``oi`` int64 (n, OI_W), ``of`` float64 (n, OF_W)),
    each read through its kind's named columns (``kernel_layout.EVENT_FIELDS``).

    ``symbols[i]`` / ``strategies[i]`` name symbol index ``i``; ``counters`` is updated.
    """
    b = JournalBatch()
    for i, f in zip(oi.tolist(), of.tolist()):
        kind, ts, s, seq = i[kl.I_KIND], i[kl.I_TS], i[kl.I_SYM], i[kl.I_SEQ]
        sym = symbols[s] if s >= 0 else ""
        if kind == kl.K_ENTRY or kind == kl.K_EXIT:
            entry = kind == kl.K_ENTRY
            tag = f"L{i[kl.I_LEVEL]}" if entry else _TAG[i[kl.I_TAG]]
            strat = strategies[s]
            dts, side = i[kl.I_DECISION_TS], _SIDE[i[kl.I_SIDE]]
            coid = client_order_id(account, strat, sym, tag, dts)
            otype = ("limit" if entry or tag == "TP" else
                     "stop_market" if tag == "SL" else "market")
            b.orders.append(OrderRequest(
                client_order_id=coid, account=account, strategy=strat, symbol=sym, tag=tag,
                ts_ms=dts, seq=seq, side=side, type=otype,
                price=f[kl.F_PRICE] if entry else f[kl.F_ORDER_PRICE], amount=f[kl.F_AMOUNT],
                reduce_only=not entry,
            ))
            b.fills.append(ExecutionReport(
                report_id="fill-" + coid, client_order_id=coid, account=account, symbol=sym,
                ts_ms=ts, seq=seq, status="filled", side=side, price=f[kl.F_PRICE],
                amount=f[kl.F_AMOUNT], fee=f[kl.F_FEE],
                liquidity="taker" if i[kl.I_TAKER] else "maker", realized_pnl=f[kl.F_PNL],
            ))
            counters["entries" if entry else "exits_" + EXIT_REASONS[i[kl.I_REASON]]] += 1
        elif kind == kl.K_TRADE:
            opened = i[kl.I_OPEN_TS]
            b.trades.append(TradeRecord(
                trade_id=f"{account}:{sym}:{opened}", account=account, symbol=sym, seq=seq,
                position_side=_POS[i[kl.I_POS_SIDE]], open_ts_ms=opened, close_ts_ms=ts,
                entries=i[kl.I_ENTRIES], amount=f[kl.F_AMOUNT], avg_entry=f[kl.F_AVG_ENTRY],
                exit_price=f[kl.F_EXIT_PRICE], pnl=f[kl.F_NET_PNL], fees=f[kl.F_FEES],
                exit_reason=EXIT_REASONS[i[kl.I_REASON]], funding=f[kl.F_FUNDING],
            ))
        elif kind == kl.K_FUNDING:
            counters["funding_payments"] += 1
            b.events.append(JournalEvent(
                event_id=f"{EventKind.FUNDING}:{account}:{sym}:{ts}", kind=EventKind.FUNDING,
                reason=Reason.SETTLEMENT,
                ts_ms=ts, account=account, symbol=sym, seq=seq,
                detail={"position_side": _POS[i[kl.I_POS_SIDE]],
                        "mark_price": f[kl.F_MARK_PRICE], "amount": f[kl.F_AMOUNT],
                        "rate": f[kl.F_RATE], "payment": f[kl.F_PAYMENT],
                        "avg_entry": f[kl.F_AVG_ENTRY]},
            ))
        elif kind == kl.K_DENIED:
            code = DENY_REASONS[i[kl.I_REASON]]
            vname, tname = DENY_DETAIL.get(code, ("equity", "none"))
            b.events.append(JournalEvent(
                event_id=f"{EventKind.ORDER_DENIED}:{account}:{seq}",
                kind=EventKind.ORDER_DENIED, reason=code,
                ts_ms=ts, account=account, symbol=sym, seq=seq,
                detail={"level": i[kl.I_LEVEL], "side": _SIDE[i[kl.I_SIDE]],
                        "price": f[kl.F_PRICE], "amount": f[kl.F_AMOUNT],
                        vname: f[kl.F_VALUE], tname: f[kl.F_THRESHOLD],
                        "decision_ts_ms": i[kl.I_DECISION_TS]},
            ))
        elif kind == kl.K_KILL or kind == kl.K_KILL_RESET:
            code = KILL_SWITCH_REASONS[i[kl.I_REASON]]
            tripped = kind == kl.K_KILL
            counters["kill_switch_trips" if tripped else "kill_switch_resets"] += 1
            detail = ({"value": f[kl.F_VALUE], "threshold": f[kl.F_THRESHOLD],
                       "day_start_equity": f[kl.F_DAY_START], "peak_equity": f[kl.F_PEAK]}
                      if tripped else
                      {"equity": f[kl.F_EQUITY], "day_start_equity": f[kl.F_DAY_START],
                       "by": "DAY_ROLLOVER"})
            name = EventKind.KILL_SWITCH_TRIPPED if tripped else EventKind.KILL_SWITCH_RESET
            b.events.append(JournalEvent(
                event_id=f"{name}:{account}:{seq}", kind=name, reason=code, ts_ms=ts,
                account=account, symbol="", seq=seq, detail=detail,
            ))
        elif kind == kl.K_EQUITY:
            b.equity.append(EquitySnapshot(
                account=account, ts_ms=ts, equity=f[kl.F_EQUITY], cash=f[kl.F_CASH],
                unrealized=f[kl.F_UNREALIZED], used_margin=f[kl.F_USED_MARGIN],
            ))
    return b
