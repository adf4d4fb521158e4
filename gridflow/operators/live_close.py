"""Market closes of the live engine: :class:`CloseMixin` of
:class:`~gridflow.operators.live_engine.LiveAccountEngine` (pure, like the engine).

A whole position is closed by one reduce-only market order in its own slot (``CLOSE``
for a crossed stop, ``TP`` for spot's watched take profit, ``EXIT``, ``FLIP``,
``FLATTEN``, ``TIME``); the symbol's other orders are cancelled first, its stop kept
until the close is on its way (on spot the close replaces the stop, see
:mod:`~gridflow.operators.live_protect`).
"""

from __future__ import annotations

import math

from gridflow.chunks import JournalBatch
from gridflow.event_kinds import EventKind, Reason
from gridflow.operators import kernel_layout as kl
from gridflow.operators.live_orders import EXIT_REASON, SIDE, event
from gridflow.operators.live_protect import stop_limit_price
from gridflow.operators.order_state import OrderState

__all__ = ["CloseMixin"]


class CloseMixin:
    """Cancels and market closes; needs the engine's ``book``, ``state``, ``symbols``,
    ``strategy_names``, ``account``, ``live`` and ``next_seq``."""

    def _cancel_slots(self, sym: str, ts: int, out: JournalBatch, keep=()) -> None:
        for w in self.book.of_symbol(sym):
            if w.slot not in keep and w.state != OrderState.CANCELING:
                self.book.cancel(out, w, ts, self.next_seq())

    def _market_close(self, s: int, tag: str, ts: int, out: JournalBatch,
                      crossed: bool = False) -> None:
        """Close symbol ``s``'s position at market (slot ``tag``). On spot the stop
        holds the base: it is cancelled first and the sell goes only if that cancel
        succeeded (a stop that filled meanwhile is not sold twice). ``crossed``: the
        price went through the stop and the position is still open (its stop did not
        fill: a stop-limit gapped through its limit), journaled ``stop_not_filled``."""
        sym = self.symbols[s]
        if self.book.slot(sym, tag) is not None:
            return
        pos = int(self.state.si[s, kl.SI_SIDE])
        stop = self.book.slot(sym, "SL") if self.spot else None
        if crossed:
            out.events.append(event(
                self.account.name, EventKind.STOP_NOT_FILLED, Reason.PRICE_THROUGH_LIMIT
                if self.spot else Reason.STOP_CROSSED, ts, self.next_seq(), sym,
                amount=float(self.state.sf[s, kl.SF_AMT]), stop=stop.stop_price if stop
                else None, close=float(self.state.sf[s, kl.SF_LAST_CLOSE])))
        self.book.cycles[sym].reason = EXIT_REASON.get(tag, tag)
        seq = self.next_seq()
        self.book.place(out, symbol=sym, strategy=self.strategy_names[s], slot=tag,
                        side=SIDE[-pos], type="market", amount=float(self.state.sf[s, kl.SF_AMT]),
                        ts=ts, seq=seq, reduce_only=True,
                        ref_price=float(self.state.sf[s, kl.SF_LAST_CLOSE]),
                        cancel_first=stop.coid if stop is not None else None)
        if stop is not None:
            self.book.cancel(out, stop, ts, seq, emit=False)

    def fill_px(self) -> dict[int, tuple[int, float]]:
        """Symbol index -> ``(exchange ms, price)`` of its latest fill."""
        return self.__dict__.setdefault("_fill_px", {})  # absent from older snapshots

    def residue(self) -> dict[int, float]:
        """Symbol index -> base below a step its fills left on the exchange (spot:
        :func:`~gridflow.operators.live_orders.apply_entry`)."""
        return self.__dict__.setdefault("_residue", {})  # absent from older snapshots

    def newest_price(self, s: int) -> float:
        """The newest price of symbol ``s`` (quote) the engine decides on: its latest
        fill or its last candle close, whichever is later in exchange time. Never a
        polled mark: those are not replayed after a crash, and a decision must come out
        the same (same client id) when the inputs are replayed."""
        px = float(self.state.sf[s, kl.SF_LAST_CLOSE])
        fill = self.fill_px().get(s)
        if fill is not None and fill[0] >= int(self.state.si[s, kl.SI_QTS]):
            px = fill[1]
        return px

    def spot_floor(self, s: int) -> float:
        """The lowest price (quote) a spot sell of ``s`` may carry now: the newest price,
        or the stop-limit's limit below it (Binance checks a stop-limit's notional at its
        limit)."""
        px = self.newest_price(s)
        stop, _ = self._stop(s)
        if math.isfinite(stop) and stop > 0:
            px = min(px, stop_limit_price(stop, "sell", float(self.ticks[s]),
                                          self.live.stop_limit_offset))
        return px

    @property
    def spot(self) -> bool:
        """Trading a spot market (:mod:`~gridflow.operators.live_protect`'s scheme)."""
        return self.live.exchange.market_type == "spot"
