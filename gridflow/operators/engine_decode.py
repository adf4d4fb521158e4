"""Turn the account kernel's event log into typed journal records."""

from __future__ import annotations

from collections import Counter

import numpy as np

from gridflow.chunks import JournalBatch
from gridflow.events import EquitySnapshot, ExecutionReport, JournalEvent, OrderRequest, TradeRecord
from gridflow.ids import client_order_id
from gridflow.operators import kernel_layout as kl
from gridflow.operators.risk import DENY_DETAIL, DENY_REASONS, KILL_SWITCH_REASONS

_SIDE = {1: "buy", -1: "sell"}
_POS = {1: "long", -1: "short"}
EXIT_REASONS = {kl.EXIT_TP: "TP", kl.EXIT_SL: "SL", kl.EXIT_TRAIL: "TRAIL", kl.EXIT_FLIP: "FLIP",
                kl.EXIT_FLATTEN: "FLATTEN"}
_TAG = {kl.TAG_TP: "TP", kl.TAG_SL: "SL", kl.TAG_FLIP: "FLIP", kl.TAG_FLATTEN: "FLATTEN"}


def decode(oi: np.ndarray, of: np.ndarray, account: str, symbols: list[str],
           strategies: list[str], counters: Counter) -> JournalBatch:
    """Records of ``n`` event-log rows (``oi`` int64 (n, 9), ``of`` float64 (n, 6)).

    ``symbols[i]`` / ``strategies[i]`` name symbol index ``i``; ``counters`` is updated.
    """
    b = JournalBatch()
    for (kind, ts, s, lvl, seq, reason, dts, side, taker), f in zip(oi.tolist(), of.tolist()):
        sym = symbols[s] if s >= 0 else ""
        if kind == kl.K_ENTRY or kind == kl.K_EXIT:
            entry = kind == kl.K_ENTRY
            tag = f"L{lvl}" if entry else _TAG[lvl]
            strat = strategies[s]
            coid = client_order_id(account, strat, sym, tag, dts)
            otype = ("limit" if tag[0] in "LT" else
                     "market" if tag in ("FLIP", "FLATTEN") else "stop_market")
            b.orders.append(OrderRequest(
                client_order_id=coid, account=account, strategy=strat, symbol=sym, tag=tag,
                ts_ms=dts, seq=seq, side=_SIDE[side], type=otype,
                price=f[0] if entry else f[5], amount=f[1], reduce_only=not entry,
            ))
            b.fills.append(ExecutionReport(
                report_id="fill-" + coid, client_order_id=coid, account=account, symbol=sym,
                ts_ms=ts, seq=seq, status="filled", side=_SIDE[side], price=f[0], amount=f[1],
                fee=f[2], liquidity="taker" if taker else "maker",
                realized_pnl=f[3],
            ))
            counters["entries" if entry else "exits_" + EXIT_REASONS[reason]] += 1
        elif kind == kl.K_TRADE:
            b.trades.append(TradeRecord(
                trade_id=f"{account}:{sym}:{dts}", account=account, symbol=sym, seq=seq,
                position_side=_POS[side], open_ts_ms=dts, close_ts_ms=ts, entries=lvl,
                amount=f[1], avg_entry=f[4], exit_price=f[0], pnl=f[3], fees=f[2],
                exit_reason=EXIT_REASONS[reason], funding=f[5],
            ))
        elif kind == kl.K_FUNDING:
            counters["funding_payments"] += 1
            b.events.append(JournalEvent(
                event_id=f"funding:{account}:{sym}:{ts}", kind="funding", reason="SETTLEMENT",
                ts_ms=ts, account=account, symbol=sym, seq=seq,
                detail={"position_side": _POS[side], "mark_price": f[0], "amount": f[1],
                        "rate": f[2], "payment": f[3], "avg_entry": f[4]},
            ))
        elif kind == kl.K_DENIED:
            code = DENY_REASONS[reason]
            vname, tname = DENY_DETAIL.get(code, ("equity", "none"))
            b.events.append(JournalEvent(
                event_id=f"order_denied:{account}:{seq}", kind="order_denied", reason=code,
                ts_ms=ts, account=account, symbol=sym, seq=seq,
                detail={"level": lvl, "side": _SIDE[side], "price": f[0], "amount": f[1],
                        vname: f[4], tname: f[5], "decision_ts_ms": dts},
            ))
        elif kind == kl.K_KILL or kind == kl.K_KILL_RESET:
            code = KILL_SWITCH_REASONS[reason]
            tripped = kind == kl.K_KILL
            counters["kill_switch_trips" if tripped else "kill_switch_resets"] += 1
            detail = ({"value": f[0], "threshold": f[1], "day_start_equity": f[2],
                       "peak_equity": f[3]} if tripped else
                      {"equity": f[0], "day_start_equity": f[1], "by": "DAY_ROLLOVER"})
            name = "kill_switch_tripped" if tripped else "kill_switch_reset"
            b.events.append(JournalEvent(
                event_id=f"{name}:{account}:{seq}", kind=name, reason=code, ts_ms=ts,
                account=account, symbol="", seq=seq, detail=detail,
            ))
        elif kind == kl.K_EQUITY:
            b.equity.append(EquitySnapshot(
                account=account, ts_ms=ts, equity=f[0], cash=f[1], unrealized=f[2],
                used_margin=f[3],
            ))
    return b
