"""How one exchange fill changes the live engine's book and position (pure; a mixin of
:class:`~gridflow.operators.live_engine.LiveAccountEngine`).

An entry's fill grows the position (:func:`~gridflow.operators.live_orders.apply_entry`);
a take profit's, stop's or close's fill shrinks it
(:func:`~gridflow.operators.live_orders.apply_exit`) and closes the cycle once what is
left is dust, cancelling the symbol's other orders. A fill of an unknown order is an
``orphan_fill`` event; an entry against the position or an exit without one is
``fill_inconsistent``. Nothing here sends anything: the caller syncs the protective
orders after it.
"""

from __future__ import annotations

from gridflow.chunks import JournalBatch
from gridflow.event_kinds import EventKind, ExitReason, Reason
from gridflow.events import ExecutionReport
from gridflow.operators import kernel_layout as kl
from gridflow.operators.live_orders import (
    EXIT_REASON,
    apply_entry,
    apply_exit,
    close_cycle,
    event,
)
from gridflow.operators.live_reconcile import check_slippage
from gridflow.operators.order_state import OrderState

__all__ = ["FillMixin"]


class FillMixin:
    """``_fill``: one deduplicated, time-ordered fill into the book and the position."""

    def _fill(self, rep: ExecutionReport, out: JournalBatch) -> None:
        """Book fill ``rep`` (one report of the exchange, exchange ms ``ts_ms``) to its order
        and the position; journal rows and cancels go to ``out``."""
        seq = self.next_seq()
        out.fills.append(rep.model_copy(update={"seq": seq, "account": self.account.name}))
        w = self.book.find(rep.client_order_id)
        if w is None or rep.symbol not in self.index:
            out.events.append(event(self.account.name, EventKind.ORPHAN_FILL, Reason.UNKNOWN_ORDER,
                                    rep.ts_ms, self.next_seq(), rep.symbol,
                                    client_order_id=rep.client_order_id, side=rep.side,
                                    price=rep.price, amount=rep.amount))
            return
        s = self.index[rep.symbol]
        st, cyc = self.state, self.book.cycles[rep.symbol]
        w.filled += rep.amount
        if w.filled >= w.amount * (1 - 1e-9):
            self.book.move(w, OrderState.DONE)
            self.book.filled_out(w.coid)
        check_slippage(self, w, rep, out)
        if w.slot.startswith("L"):
            d = 1 if rep.side == "buy" else -1
            if st.sf[s, kl.SF_AMT] > 0 and st.si[s, kl.SI_SIDE] != d:
                out.events.append(event(self.account.name, EventKind.FILL_INCONSISTENT,
                                        Reason.ENTRY_AGAINST_POSITION,
                                        rep.ts_ms, self.next_seq(), rep.symbol,
                                        client_order_id=w.coid))
                return
            res = self.residue()
            res[s] = apply_entry(st, s, int(w.slot[1:]), d, rep, w, cyc,
                                 float(self.mp[s, kl.M_STEP]), res.get(s, 0.0))
            self.counters["entries"] += int(w.state == OrderState.DONE)
            return
        if st.sf[s, kl.SF_AMT] <= 0:
            out.events.append(event(self.account.name, EventKind.FILL_INCONSISTENT,
                                    Reason.EXIT_WITHOUT_POSITION,
                                    rep.ts_ms, self.next_seq(), rep.symbol, client_order_id=w.coid))
            return
        reason = EXIT_REASON.get(w.slot, ExitReason.SL)
        if w.slot == "SL" and self._stop(s)[1]:
            reason = ExitReason.TRAIL
        cyc.reason = reason
        apply_exit(st, s, rep, cyc, float(self.mp[s, kl.M_STEP]))
        if st.sf[s, kl.SF_AMT] <= self._dust(s):
            out.trades.append(close_cycle(st, s, self.account.name, rep.symbol, rep.ts_ms,
                                          self.next_seq(), cyc, self.pf))
            self.counters["exits_" + reason] += 1
            self.had_stop[s] = False
            self.stop_rejects[s] = 0
            for other in self.book.of_symbol(rep.symbol):
                if other.state != OrderState.DONE:
                    self.book.cancel(out, other, rep.ts_ms, self.next_seq())
