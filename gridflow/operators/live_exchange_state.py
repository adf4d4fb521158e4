"""What the live account engine does with an exchange update besides fills: the first
state after a start (adoption, announcements), funding settlements, the equity check
against the exchange's wallet, and the kill switches between candle closes.

A mixin of :class:`~gridflow.operators.live_engine.LiveAccountEngine` (it uses the
engine's state, book and journal helpers); pure, no I/O.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from gridflow.chunks import ExchangeUpdate, JournalBatch
from gridflow.event_kinds import EventKind, Reason
from gridflow.operators import kernel_layout as kl
from gridflow.operators.engine_decode import decode
from gridflow.operators.live_orders import event
from gridflow.operators.live_reconcile import rebuild
from gridflow.operators.live_risk import check_marked, marked_equity, marked_prices
from gridflow.operators.order_state import OrderState
from gridflow.operators.position import book_entry, book_funding
from gridflow.operators.risk import kill_switch_names


class ExchangeStateMixin:
    """Start, funding, equity and between-closes risk of the live engine."""

    def __setstate__(self, state: dict) -> None:
        """Restore a snapshot; fields added since it was taken get their defaults (a
        snapshot of an engine that ran has already booted)."""
        state.setdefault("marks", {})
        state.setdefault("deferred", [])
        state.setdefault("fill_ms", [0] * len(state["symbols"]))
        state.setdefault("booted", True)
        state.setdefault("unexplained", {})
        state.setdefault("equity_offset", None)
        state.setdefault("drifting", 0)
        state.setdefault("sent", OrderedDict())
        state.setdefault("replayed", True)
        state.setdefault("updates", 0)
        state.setdefault("stop_refused_at", [-1] * len(state["symbols"]))
        if "book" in state and "counters" not in state["book"].__dict__:
            state["book"].counters = state["counters"]  # refused order moves count here
        self.__dict__.update(state)

    def live_time(self) -> int:
        """The engine's newest exchange time (ms UTC): the close of the last processed
        candle or the exchange-state watermark, whichever is later; 0 before either."""
        return max(int(self.watermark), int(self.event_time()), 0)

    def apply_command(self, cmd: Any, ts_ms: int | None = None) -> JournalBatch:
        """:meth:`AccountEngine.apply_command` at :meth:`live_time` by default: a reset
        between two candle closes is journaled after the trip it resets, not at the
        last close."""
        return super().apply_command(cmd, self.live_time() if ts_ms is None else ts_ms)

    def restore(self, summary: dict) -> None:
        """:meth:`AccountEngine.restore`, and the account's money from the journaled
        summary (cash, fees, realized PnL, funding): a cold start continues the run's
        account; its positions are adopted from the exchange at the first state."""
        super().restore(summary)
        af = self.state.af
        for col, key in ((kl.AF_CASH, "cash"), (kl.AF_FEES, "fees_paid"),
                         (kl.AF_REALIZED, "realized_pnl"), (kl.AF_FUNDING, "funding_paid")):
            if summary.get(key) is not None:
                af[col] = float(summary[key])

    def _boot(self, upd: ExchangeUpdate, ts: int, out: JournalBatch) -> None:
        """The first exchange state after a start without recovery state: rebuild the open
        orders the broker's write-ahead table placed into the book (so the stop resting
        on the exchange is kept, not doubled), announce the start and every kill switch
        restored from the journal, and adopt the exchange's
        positions on the account's symbols that the engine does not hold (amount and
        average entry from the exchange; the update's protective orders cover them, and
        max positions and the margin cap count them from now on)."""
        self.booted = True
        st, name = self.state, self.account.name
        switches = kill_switch_names(int(st.ai[kl.AI_KILL]))
        for reason in switches:
            out.events.append(event(name, EventKind.KILL_SWITCH_RESTORED, Reason(reason), ts,
                                    self.next_seq(), restored_from="journal"))
        for o in upd.open_orders or ():  # what the write-ahead table placed, first
            if o["client_order_id"] in self.sent and o["client_order_id"] not in self.book.orders:
                rebuild(self, o["client_order_id"], o, ts, out)
        for sym, pos in sorted(upd.positions.items()):
            self.adopt(sym, pos, ts, out, Reason.EXCHANGE_POSITION)
        out.events.append(event(
            name, EventKind.ENGINE_STARTED, Reason.LIVE, ts, self.next_seq(), mode="live",
            venue=self.live.exchange.id, symbols=list(self.symbols), equity=self.equity(),
            wallet=upd.balance, exchange_equity=upd.equity, kill_switches=switches,
            positions={s: p["amount"] for s, p in self.positions().items() if p["amount"]}))

    def adopt(self, sym: str, pos: dict, ts: int, out: JournalBatch, reason: Reason) -> bool:
        """Take over the exchange position ``pos`` (``amount`` signed base,
        ``entry_price`` quote) of a traded symbol the engine holds flat: booked as one
        entry at the exchange's average (no fee), journaled (``position_adopted``) and,
        from this update on, covered by a stop and counted by max positions and the margin
        cap. Returns False (nothing done) for an untraded symbol, a held one, dust or a
        missing price."""
        s = self.index.get(sym)
        st = self.state
        amt = float(pos.get("amount") or 0.0)
        px = float(pos.get("entry_price") or 0.0)
        if s is None or st.sf[s, kl.SF_AMT] > 0 or abs(amt) <= self._dust(s) or not px > 0:
            return False
        d = 1 if amt > 0 else -1
        book_entry(s, ts, d, abs(amt), px, 0.0, float(self.mp[s, kl.M_STEP]), st.sf, st.si,
                   st.af)
        st.si[s, kl.SI_ENTRIES] = 1
        self.fill_ms[s] = max(self.fill_ms[s], ts)  # its stop is decided now
        self.book.cycles[sym].entered = abs(amt)
        out.events.append(event(self.account.name, EventKind.POSITION_ADOPTED, reason, ts,
                                self.next_seq(), sym, amount=amt, avg_entry=px))
        return True

    def _book_funding(self, rows: list[dict], out: JournalBatch) -> None:
        """The exchange's funding settlements (each id once), booked as in replay
        (:func:`~gridflow.operators.position.book_funding`: cash, session PnL, the open
        cycle's funding) and journaled as ``funding`` events."""
        st = self.state
        for r in rows:
            key = "funding-" + str(r["id"])
            s = self.index.get(r["symbol"])
            if key in self.seen or s is None:
                continue
            self.seen[key] = None
            pay, d, amt = float(r["paid"]), int(st.si[s, kl.SI_SIDE]), float(st.sf[s, kl.SF_AMT])
            px = float(marked_prices(st, self.marks)[s])
            rate = pay / (d * amt * px) if d and amt > 0 and px > 0 else 0.0
            book_funding(s, pay, st.sf, st.af)
            log = kl.EventLog(np.empty((1, kl.OI_W), np.int64), np.empty((1, kl.OF_W)))
            kl.emit_event(log, 0, st.ai, kl.K_FUNDING, int(r["ts_ms"]), s)
            ei, ef = log.ints[0], log.floats[0]
            ei[kl.I_OPEN_TS], ei[kl.I_POS_SIDE] = int(st.si[s, kl.SI_OPEN_TS]), d or 1
            ef[kl.F_MARK_PRICE], ef[kl.F_AMOUNT], ef[kl.F_RATE] = px, amt, rate
            ef[kl.F_PAYMENT], ef[kl.F_AVG_ENTRY] = pay, float(st.sf[s, kl.SF_AVG])
            out.extend(decode(log.ints, log.floats, self.account.name, self.symbols,
                              self.strategy_names, self.counters))

    def _check_equity(self, exchange_equity: float, ts: int, out: JournalBatch) -> None:
        """The engine's equity (cash + unrealized at the exchange's marks) against the
        exchange's (wallet + unrealized). The difference found at the first comparison
        (capital allocated out of a larger wallet) is the reference; a drift from it
        beyond ``live.equity_drift_alert`` for two polls in a row is journaled
        (``equity_drift``), alerted, and reconciled: the engine's cash moves by the drift,
        so sizing and every loss limit use the exchange's figure from then on."""
        mine = marked_equity(self.state, self.mp, marked_prices(self.state, self.marks))
        if self.equity_offset is None:
            self.equity_offset = exchange_equity - mine
        drift = exchange_equity - self.equity_offset - mine
        if abs(drift) <= self.live.equity_drift_alert * max(abs(mine), 1e-9):
            self.drifting = 0
            return
        self.drifting += 1
        if self.drifting == 2:  # not a poll that saw the clock move: reconcile
            out.events.append(event(self.account.name, EventKind.EQUITY_DRIFT,
                                    Reason.EXCHANGE_DIFFERS, ts,
                                    self.next_seq(), engine_equity=mine,
                                    exchange_equity=exchange_equity, drift=drift,
                                    offset=self.equity_offset,
                                    threshold=self.live.equity_drift_alert,
                                    cash_adjusted_by=drift))
            self.state.af[kl.AF_CASH] += drift  # sizing and loss limits use the exchange's
            self.drifting = 0

    def _risk(self, ts: int, out: JournalBatch, fill: dict[int, float] | None = None) -> None:
        """Between candle closes: mark the account to market (``fill`` prices first, then
        the exchange's marks) and check every kill switch on that equity
        (:mod:`~gridflow.operators.live_risk`). While a switch is on, every resting entry
        of the account is cancelled at once; take profits and stops stay."""
        prices = marked_prices(self.state, self.marks, fill, ts if fill else None)
        bi, bf, n = check_marked(self.state, self.pf, self.mp, prices, ts)
        if n:
            out.extend(decode(bi, bf, self.account.name, self.symbols, self.strategy_names,
                              self.counters))
        if not self.state.ai[kl.AI_KILL]:
            return
        for w in self.book.live():
            if w.slot.startswith("L") and w.state in (OrderState.PENDING, OrderState.OPEN):
                self.book.cancel(out, w, ts, self.next_seq())
