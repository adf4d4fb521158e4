"""Reconciliation of the live account engine with the exchange (pure functions of the
engine's state and one exchange snapshot; they only journal, cancel gridflow's own
orphan orders and never trade anything unknown)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gridflow.chunks import JournalBatch
from gridflow.operators import kernel_layout as kl
from gridflow.operators.live_orders import Working, event

if TYPE_CHECKING:
    from gridflow.operators.live_engine import LiveAccountEngine

ORPHAN_GRACE = 3  # exchange snapshots an unknown open order must survive to be an orphan


def _explainable(self: "LiveAccountEngine", created_ms: int | None) -> bool:
    """Whether a decision the engine has still to (re)make may have placed an own order
    created at ``created_ms``: a fill waits, a fill up to then is not in yet, or a candle
    closing before it is still to be processed (after a restore)."""
    if self.deferred:
        return True
    if created_ms is None:
        return False
    return created_ms >= self.watermark or self.next_close() <= created_ms


def reconcile_orders(self: "LiveAccountEngine", open_orders: list, ts: int,
                     out: JournalBatch) -> None:
    """Open orders on the exchange against the engine's book: seen, vanished, orphans."""
    seen = {o["client_order_id"]: o for o in open_orders}
    for coid, w in list(self.book.orders.items()):
        if coid in seen:
            w.unseen = 0
            if w.state == "pending":
                w.state = "open"
            continue
        if w.state == "pending":
            continue  # the broker has not answered yet
        w.unseen += 1
        if w.unseen < 2:
            continue
        if w.state == "open":  # vanished without our cancel and without a fill
            out.events.append(event(self.account.name, "order_vanished", "NOT_OPEN", ts,
                                    self.next_seq(), w.symbol, client_order_id=coid,
                                    tag=w.slot, filled=w.filled, amount=w.amount))
            w.state = "gone"
        if w.unseen >= 3:
            self.book.forget(coid)
    for coid in list(self.unknown):
        if coid not in seen or coid in self.book.orders:
            del self.unknown[coid]
    for coid, o in seen.items():
        if coid in self.book.orders or ("orphan_order", coid) in self.once:
            continue
        # after a crash the engine resumes behind the exchange and re-decides its own
        # recent orders within a poll or two: only an order still unknown after
        # ORPHAN_GRACE snapshots is an orphan
        self.unknown[coid] = self.unknown.get(coid, 0) + 1
        if self.unknown[coid] < ORPHAN_GRACE or (coid.startswith("gf") and _explainable(
                self, o.get("ts"))):
            continue
        del self.unknown[coid]
        self.once.add(("orphan_order", coid))
        ours = coid.startswith("gf")
        out.events.append(event(self.account.name, "orphan_order",
                                "GRIDFLOW_ID" if ours else "FOREIGN", ts, self.next_seq(),
                                o.get("symbol", ""), client_order_id=coid,
                                side=o.get("side"), type=o.get("type"),
                                price=o.get("price"), amount=o.get("amount"),
                                action="cancel" if ours and self.live.orphan_policy
                                == "cancel_ours" else "none"))
        if ours and self.live.orphan_policy == "cancel_ours":
            typ = "stop_market" if o.get("stop_price") else "limit"
            w = Working(coid, o.get("symbol", ""), "ORPHAN", o.get("side") or "buy", typ,
                        o.get("price"), o.get("stop_price"), float(o.get("amount") or 0.0),
                        ts, 0, state="open")
            self.book.orders[coid] = w
            self.book.cancel(out, w, ts, self.next_seq())

def reconcile_positions(self: "LiveAccountEngine", positions: dict, ts: int,
                        out: JournalBatch) -> None:
    """Exchange positions against the engine's: mismatches (two polls in a row) and
    positions on symbols the account does not trade, journaled once each."""
    st = self.state
    for sym in sorted(set(positions) | set(self.symbols)):
        ex_amt = float(positions.get(sym, {}).get("amount", 0.0) or 0.0)
        if sym not in self.index:
            key = ("orphan_position", sym, ex_amt)
            if ex_amt and key not in self.once:
                self.once.add(key)
                out.events.append(event(self.account.name, "orphan_position",
                                        "NOT_TRADED_BY_ACCOUNT", ts, self.next_seq(), sym,
                                        amount=ex_amt))
            continue
        s = self.index[sym]
        mine = float(st.si[s, kl.SI_SIDE] * st.sf[s, kl.SF_AMT])
        if abs(ex_amt - mine) <= self._dust(s):
            self.mismatch[sym] = 0
            self.unexplained.pop(sym, None)
            continue
        self.mismatch[sym] = self.mismatch.get(sym, 0) + 1
        key = ("position_mismatch", sym, round(ex_amt, 12), round(mine, 12))
        if self.mismatch[sym] >= 2 and key not in self.once:
            self.once.add(key)
            out.events.append(event(self.account.name, "position_mismatch",
                                    "EXCHANGE_DIFFERS", ts, self.next_seq(), sym,
                                    exchange_amount=ex_amt, engine_amount=mine))
        # a position the engine holds flat for two polls: never leave it without a stop
        # (a reduce-only PROTECT stop for the exchange's amount; the account's books are
        # not touched, the fills that explain it may still come)
        if self.mismatch[sym] >= 2 and mine == 0.0:
            px = float(positions.get(sym, {}).get("entry_price") or 0.0)
            self.unexplained[sym] = (ex_amt, px)
