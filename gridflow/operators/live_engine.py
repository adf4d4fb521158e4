"""The live account engine: the replay's strategies and risk gate, orders on a real
exchange, positions from the exchange's fills.

Pure: candles (:class:`~gridflow.chunks.IndicatorChunk`), exchange state
(:class:`~gridflow.chunks.ExchangeUpdate`), broker outcomes
(:class:`~gridflow.events.OrderOutcome`), commands and a graceful stop's request
(:mod:`~gridflow.operators.live_shutdown`) in; journal records and
:class:`~gridflow.events.OrderIntent` items for the broker sink out. No I/O, no clock:
every time is exchange time, so a replay of the same inputs after a crash emits the
same intents with the same client order ids, which the broker recognises.

Decisions
---------
* **At each candle close** ``T`` (only once the exchange stream's watermark passed
  ``T``, so every fill of that candle is known): the strategy's quotes for the next
  candle become resting limit entries (each one through the risk gate: kill switches,
  pause, exchange minimums, margin cap counting every resting entry, max positions,
  correlation, cooldown), a reduce-only take profit and a reduce-only stop-market for the
  whole position (the tighter of ``avg_entry * (1 - sl_frac)`` and the trailing level;
  on spot a stop-limit and a watched take profit: :mod:`~gridflow.operators.live_protect`).
  A changed level is replaced (cancel first, place only if the cancel succeeded); a
  moved take profit or stop on contracts is placed before its predecessor is cancelled
  (both reduce-only); a flip or a ``flatten`` command closes at market.
* **At each exchange update** (fills, open orders, positions): fills move the position;
  the stop and take profit follow the position's amount and average entry at once; a
  position without a live stop gets one (``stop_missing`` is journaled when it had
  one before); a stop already crossed closes at market; a closed cycle cancels its
  remaining orders. When one update (or one catch-up of several closes) moves a take
  profit or stop more than once, only its last move is sent
  (``LiveBook.elide_superseded``).

Reconciliation (every update)
-----------------------------
An open order of gridflow's that the book lost (a start without recovery state) but the
broker's write-ahead table placed is rebuilt into its slot (``order_rebuilt``), or
cancelled when the slot holds a newer one (``order_superseded``). Open orders neither
knows are ``orphan_order`` events (gridflow's own are cancelled under
``orphan_policy = "cancel_ours"``, somebody else's never); exchange
positions that differ from the engine's for two updates in a row are
``position_mismatch`` events; positions on symbols the account does not trade are
``orphan_position`` events. Nothing unknown is ever traded.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from gridflow.chunks import ExchangeUpdate, JournalBatch
from gridflow.config.live import LiveConfig
from gridflow.event_kinds import EventKind, Reason
from gridflow.events import ExecutionReport, OrderOutcome
from gridflow.operators import candle_close, grid_kernel as gk, kernel_layout as kl
from gridflow.operators.engine import AccountEngine
from gridflow.operators.engine_decode import decode
from gridflow.operators.entry_gate import gate_and_log
from gridflow.operators.live_close import CloseMixin
from gridflow.operators.live_exchange_state import ExchangeStateMixin
from gridflow.operators.live_fills import FillMixin
from gridflow.operators.live_shutdown import ShutdownMixin
from gridflow.operators.live_watch import WatchMixin
from gridflow.operators.live_protect import protective_orders, take_profit_reached
from gridflow.operators.live_orders import (
    SIDE,
    Cycle,
    LiveBook,
    close_tag,
    event,
    same_order,
)
from gridflow.operators.live_reconcile import (
    apply_outcome,
    reconcile_orders,
    reconcile_positions,
    settle_strays,
)
from gridflow.operators.strategies.base import round_to_tick

_SEEN_MAX = 50_000
MARKET_CLOSES = ("FLATTEN", "FLIP", "EXIT", "TIME", "CLOSE")
"""Slots of the market orders that close a whole position (while one is on its way,
nothing else is placed for the symbol)."""
EXCHANGE_MARGIN_SHARE = 0.95
"""A new entry is sent without waiting for the cancels before it
(:attr:`~gridflow.events.OrderIntent.margin_held`) while every resting order's margin
and its own stay within this share of equity: what the exchange holds before any of
those cancels lands, with room for its own margin rules."""
CANDLE_WAIT_MS = 60_000
"""How long (exchange time after its close) a fill waits for a candle closing at or
before it that has not arrived yet."""


class LiveAccountEngine(ShutdownMixin, WatchMixin, ExchangeStateMixin, CloseMixin, FillMixin,
                        AccountEngine):
    """:class:`~gridflow.operators.engine.AccountEngine` whose fills come from the
    exchange. Same parameters, plus ``live`` (:class:`~gridflow.config.live.LiveConfig`;
    the engine keeps it without credentials: nothing secret is in engine state)."""

    def __init__(self, *args, live: LiveConfig | None = None, await_outcomes: bool = False,
                 **kw) -> None:
        super().__init__(*args, **kw)
        # with a broker-outcome stream: no start (adoption, rebuilt orders) before it has
        # replayed the journal's outcomes (:meth:`on_outcomes_replayed`)
        self.replayed = not await_outcomes
        self.live = (live or LiveConfig()).without_secrets()
        self.book = LiveBook(self.account.name, counters=self.counters)
        self.watermark = -1
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.once: set[tuple] = set()
        self.mismatch: dict[str, int] = {}
        self.unknown: dict[str, int] = {}
        self.marks: dict[int, tuple[int, float]] = {}
        self.deferred: list[ExecutionReport] = []
        self.booted = False
        self.unexplained: dict[str, tuple[float, float]] = {}
        self.equity_offset: float | None = None
        self.drifting = 0
        self.fill_ms = [0] * len(self.symbols)
        self.had_stop = [False] * len(self.symbols)
        self.stop_rejects = [0] * len(self.symbols)
        self.updates = 0  # exchange updates applied
        self.stop_refused_at = [-1] * len(self.symbols)  # ``updates`` at a counted refusal
        self.sent: OrderedDict[str, str] = OrderedDict()  # the write-ahead table's ids
        for s in self.symbols:
            self.book.cycles[s] = Cycle()

    # ---- inputs --------------------------------------------------------------------
    def _frontier(self) -> int | None:
        f = super()._frontier()
        if f is None:
            return None
        f = min(f, self.watermark - int(self.tf_ms.max()))
        if self.deferred:  # nothing past the first fill still to apply
            f = min(f, int(self.deferred[0].ts_ms) - int(self.tf_ms.max()))
        return f

    def on_exchange(self, upd: ExchangeUpdate) -> JournalBatch:
        """Apply one exchange poll in exchange-time order: each new fill (deduplicated by
        report id) after every candle that closed at or before it, then the marks,
        reconciliation, the candles the update unblocks and the protective orders.

        The order depends only on exchange times, never on how fills were grouped into
        polls, so decisions replayed after a restore are the originals (same client ids,
        prices, amounts). A fill of one of gridflow's own client ids that a decision not
        yet re-made may explain (a candle closing at or before it is still to come) waits
        for that decision instead of being an orphan.
        """
        out = JournalBatch()
        self.updates += 1
        ts = max(int(upd.server_ms), self.watermark)
        for k, err in enumerate(upd.errors):
            out.events.append(event(self.account.name, EventKind.EXCHANGE_ERROR, Reason.POLL_FAILED,
                                    ts, self.next_seq(), error=str(err)[:500]))
        for ch in upd.streams:
            kind = EventKind.STREAM_RESTORED if ch.get("status") == "restored" \
                else EventKind.STREAM_STALE
            out.events.append(event(self.account.name, kind, Reason(ch.get("reason", "")),
                                    ts, self.next_seq(), stream=str(ch.get("stream", "")),
                                    detail=str(ch.get("detail", ""))[:500]))
        waiting = {r.report_id for r in self.deferred}
        fresh = [r for r in upd.reports if r.report_id not in self.seen
                 and r.report_id not in waiting]
        self.deferred = sorted(self.deferred + fresh, key=lambda r: r.ts_ms)
        self.watermark = ts
        self._apply_fills(out)
        self._book_funding(upd.funding, out)
        for sym, px in (upd.marks or {}).items():
            if sym in self.index:
                self.marks[self.index[sym]] = (ts, float(px))
        self._risk(ts, out)
        if upd.open_orders is not None:
            reconcile_orders(self, upd.open_orders, ts, out, trades_ok=not upd.errors)
        if upd.positions is not None:
            reconcile_positions(self, upd.positions, ts, out)
        out.extend(self._process(self._frontier()))
        if not self.booted and self.replayed and upd.positions is not None and not self.deferred \
                and self.state.ai[kl.AI_LAST_TS] >= 0 and self.next_close() > ts:
            self._boot(upd, ts, out)  # once the warm-up and every closed candle are in
        if self.booted and upd.equity is not None:
            self._check_equity(float(upd.equity), ts, out)
        for s in range(len(self.symbols)):
            self._sync(s, self._decided(s), out, entries=False)
        self._watch(ts, len(upd.errors), out)
        self.book.elide_superseded(out, self.sent)  # a burst of fills: the last moves
        out.summaries.append(self.summary())
        return out

    def _apply_fills(self, out: JournalBatch) -> None:
        """Waiting fills in time order, each after the candles closing at or before it
        (:meth:`_frontier` stops at the first waiting fill); each fill is followed by the
        risk check at its price and its symbol's protective orders."""
        while self.deferred:
            rep = self.deferred[0]
            out.extend(self._process(self._frontier()))
            if self._awaits_decision(rep):
                return
            self.deferred.pop(0)
            self.seen[rep.report_id] = None
            if len(self.seen) > _SEEN_MAX:
                self.seen.popitem(last=False)
            self._fill(rep, out)
            s = self.index.get(rep.symbol)
            if s is not None:  # risk at the fill, as replay checks intrabar
                self.fill_ms[s] = max(self.fill_ms[s], int(rep.ts_ms))
                self.fill_px()[s] = (int(rep.ts_ms), float(rep.price))
                self._risk(rep.ts_ms, out, {s: rep.price})
                self._sync(s, self._decided(s), out, entries=False)

    def _awaits_decision(self, rep: ExecutionReport) -> bool:
        """Whether a candle closing at or before the fill is still to be processed (the
        fill then waits: the decision at that close comes first, as in replay). A fill of
        an own client id the book does not know waits for it (that decision may place the
        order); any other fill waits for that candle at most :data:`CANDLE_WAIT_MS` of
        exchange time after its close (a candle the exchange never publishes cannot hold
        the account)."""
        nc = self.next_close()
        if nc < 0 or nc > rep.ts_ms:
            return False
        if rep.client_order_id not in self.book.orders and rep.client_order_id.startswith("gf"):
            return True
        return self.watermark - nc < CANDLE_WAIT_MS

    def next_close(self) -> int:
        """Close time (ms UTC) of the next candle to process."""
        return self.event_time() + int(self.tf_ms.min()) if self.state.ai[kl.AI_LAST_TS] >= 0 \
            else -1

    def _decided(self, s: int) -> int:
        """Decision time of symbol ``s``'s protective orders: its last processed candle
        close or its last fill, whichever is later (exchange times: the same after a
        restore, whatever the poll in which the fill arrived)."""
        return max(int(self.state.si[s, kl.SI_QTS]), self.fill_ms[s])

    def on_outcomes_replayed(self) -> None:
        """Every broker outcome journaled before this start has been applied: the start
        may rebuild the orders the write-ahead table placed."""
        self.replayed = True

    def on_outcome(self, o: OrderOutcome) -> JournalBatch:
        """What the broker did with an intent (``live_reconcile.apply_outcome``)."""
        return apply_outcome(self, o)

    # ---- candles -------------------------------------------------------------------
    def _process(self, frontier: int | None) -> JournalBatch:
        ready = self._ready(frontier)
        if ready is None:
            return JournalBatch()
        a, ev_corr = ready
        out = JournalBatch()
        N = len(a["ts"])
        lo = 0
        while lo < N:
            hi = lo
            while hi < N and a["ts"][hi] == a["ts"][lo]:
                hi += 1
            self._group(a, ev_corr, lo, hi, out)
            lo = hi
        self.book.elide_superseded(out, self.sent)  # several closes: each chain's last
        out.summaries.append(self.summary())
        return out

    def _group(self, a, ev_corr, lo: int, hi: int, out: JournalBatch) -> None:
        st = self.state
        arrays = st.arrays()
        sf, si = st.sf, st.si
        close_ts = 0
        for e in range(lo, hi):
            # the exchange fills the orders between closes; at a close the engine does the
            # kernel's bookkeeping (fills, stops and funding are the exchange's)
            s = int(a["sym"][e])
            close_ts = int(a["ts"][e]) + int(self.tf_ms[s])
            si[s, kl.SI_OPENED_NOW] = 0  # the entry's place in the candle is not known
            candle_close.raise_best(s, a["open"][e], a["high"][e], a["low"][e], a["close"][e], sf, si)
            candle_close.close_candle(s, a["close"][e], 0.0, False, sf, si, st.filled, st.dn)
            si[s, kl.SI_STOPPED_NOW] = 0
            candle_close.rest_quote(s, close_ts, int(a["side"][e]), a["lv"][e], a["tp"][e],
                                    a["trail"][e], a["size"][e], a["stop"][e],
                                    int(a["exit"][e]), arrays)
            st.ai[kl.AI_CANDLES] += 1
            st.ai[kl.AI_LAST_TS] = int(a["ts"][e])
        buf_i = np.empty((16, kl.OI_W), np.int64)
        buf_f = np.empty((16, kl.OF_W), np.float64)
        n = gk._group_end(close_ts, self.equity_every_ms, sf, si, st.af,
                          st.ai, self.pf, self.mp, st.rw_ts, st.rw_eq, gk._caps(self.mp),
                          buf_i, buf_f, 0)
        out.extend(decode(buf_i[:n], buf_f[:n], self.account.name, self.symbols,
                          self.strategy_names, self.counters))
        if a["warm"][lo] or self.stopping_for() is not None:  # no entry once stopping
            return
        ctx = {"used": self._used_margin({int(x) for x in a["sym"][lo:hi]}),
               "held": self._used_margin(set()), "no_wait": set()}
        for e in range(lo, hi):
            self._sync(int(a["sym"][e]), close_ts, out, entries=True, ctx=ctx,
                       corr=ev_corr[e])

    # ---- decisions -----------------------------------------------------------------
    def _dust(self, s: int) -> float:
        return max(self.mp[s, kl.M_STEP] * 0.5, 1e-12)

    def _stop(self, s: int) -> tuple[float, bool]:
        stop, trailing = gk._stop(s, self.state.sf, self.state.si, self.mp)
        d = int(self.state.si[s, kl.SI_SIDE])
        return float(round_to_tick(np.array([stop]), self.ticks[s], d > 0)[0]), bool(trailing)

    def _used_margin(self, deciding: set[int]) -> float:
        """Margin (quote) of the open positions (the kernel's entry notional over the
        leverage, as the replay's gate counts it) plus every resting entry of the
        symbols not being decided now."""
        st = self.state
        lev = self.pf[kl.P_LEVERAGE]
        used = float(gk._marks(st.sf, st.si, self.mp, -1, 0.0)[1]) / lev
        for w in self.book.live():
            if w.slot.startswith("L") and self.index.get(w.symbol) not in deciding:
                used += (w.amount - w.filled) * (w.price or 0.0) / lev
        return used

    def _equity(self) -> tuple[float, int]:
        st = self.state
        unreal, _, _, _, n_open = gk._marks(st.sf, st.si, self.mp, -1, 0.0)
        return float(st.af[kl.AF_CASH] + unreal), int(n_open)

    def _sync(self, s: int, ts: int, out: JournalBatch, entries: bool, ctx=None,
              corr=None) -> None:
        """Bring the orders of symbol ``s`` to what the state wants (``entries``: also
        the grid levels, at a candle close)."""
        st, sym = self.state, self.symbols[s]
        amt = float(st.sf[s, kl.SF_AMT])
        pos = int(st.si[s, kl.SI_SIDE]) if amt > 0 else 0
        dust = pos != 0 and (amt < max(self.mp[s, kl.M_MIN_AMOUNT], self.mp[s, kl.M_STEP])
                             or (self.spot and amt * self.spot_floor(s)
                                 < self.mp[s, kl.M_MIN_NOTIONAL]))  # spot: no sell below it
        tag = close_tag(st, s, pos, entries, dust, ts, int(self.tf_ms[s]),
                        float(self.mp[s, kl.M_TIME_STOP]))
        if tag is not None:
            st.si[s, kl.SI_FLATTEN] = 0
            self._cancel_slots(sym, ts, out, keep=("SL",))
            if pos != 0:
                self._market_close(s, tag, ts, out)
            return
        if self.book.strays():
            settle_strays(self, sym, ts, out)
        if any(self.book.slot(sym, tag) for tag in MARKET_CLOSES) or (
                self.spot and self.book.slot(sym, "TP")):
            return  # a market close is on its way
        want: dict[str, tuple] = {}
        if pos == 0 and sym in self.unexplained:  # the exchange holds what we do not
            ex_amt, px = self.unexplained[sym]
            d = 1 if ex_amt > 0 else -1
            stop = float(round_to_tick(np.array([px * (1 - d * self.mp[s, kl.M_SL])]),
                                       self.ticks[s], d > 0)[0])
            if px > 0:
                want["PROTECT"] = (SIDE[-d], "stop_market", None, stop, abs(ex_amt), True)
        if dust:
            # below the exchange's minimum: no order can reduce it; say so once
            key = (EventKind.DUST_POSITION, sym, amt)
            if key not in self.once:
                self.once.add(key)
                out.events.append(event(self.account.name, EventKind.DUST_POSITION,
                                        Reason.BELOW_MIN_AMOUNT, ts, self.next_seq(), sym,
                                        amount=amt))
            return
        if pos != 0:
            stop, _ = self._stop(s)
            last = float(st.sf[s, kl.SF_LAST_CLOSE])
            tp = float(st.sf[s, kl.SF_TP])
            crossed = math.isfinite(last) and pos * last <= pos * stop
            if crossed or self.stop_rejects[s] >= 2:
                self._cancel_slots(sym, ts, out, keep=("SL",))
                self._market_close(s, "CLOSE", ts, out, crossed=crossed)
                return
            if self.spot and take_profit_reached(pos, tp, self.newest_price(s)):
                # the engine's take profit: the stop out, then the sell
                self._cancel_slots(sym, ts, out, keep=("SL",))
                self._market_close(s, "TP", ts, out)
                return
            want.update(protective_orders(self.spot, pos, stop, tp, amt, self.ticks[s],
                                          self.live.stop_limit_offset))
            cur = self.book.slot(sym, "SL")
            if cur is None and self.had_stop[s] and not entries:
                out.events.append(event(self.account.name, EventKind.STOP_MISSING,
                                        Reason.NO_LIVE_STOP, ts,
                                        self.next_seq(), sym, amount=amt, stop=stop))
            self.had_stop[s] = True
        if entries:
            self._entries(s, pos, ts, out, want, ctx, corr)
        for slot in [k for (sy, k) in list(self.book.slots) if sy == sym]:
            if slot not in want and (entries or not slot.startswith("L")):
                w = self.book.slot(sym, slot)
                if w is not None and not (slot.startswith("L") and w.filled > 0
                                          and pos != 0):
                    self.book.cancel(out, w, ts, self.next_seq())
        strat = self.strategy_names[s]
        for slot, (side, typ, price, stop, amount, reduce) in want.items():
            cur = self.book.slot(sym, slot)
            if cur is not None and same_order(cur, price, stop, amount, self.ticks[s],
                                              self.mp[s, kl.M_STEP]):
                continue
            if cur is not None and slot.startswith("L") and cur.filled > 0:
                continue  # a partly filled level keeps its price
            seq = self.next_seq()
            if not self.spot and (slot == "SL" or (slot == "TP" and cur is not None
                                                  and cur.amount < amount)):
                # never a moment without a stop: the old one is cancelled once the broker
                # saw its successor accepted. A take profit grown by a fill likewise (one
                # round trip after the fill, not two): the old one cannot close the whole
                # position, so the exchange takes the new one (a reduce-only limit behind
                # resting ones that close everything is refused, so other moves cancel
                # first). Spot: the base a sell locks is locked once: a replace
                self.book.place(out, symbol=sym, strategy=strat, slot=slot, side=side,
                                type=typ, amount=amount, ts=ts, seq=seq, price=price,
                                stop_price=stop, reduce_only=reduce,
                                cancel_after=cur.coid if cur else None)
                if cur is not None:
                    self.book.cancel(out, cur, ts, self.next_seq(), emit=False)
                continue
            self.book.place(out, symbol=sym, strategy=strat, slot=slot, side=side, type=typ,
                            amount=amount, ts=ts, seq=seq, price=price, stop_price=stop,
                            reduce_only=reduce, cancel_first=cur.coid if cur else None,
                            margin_held=ctx is not None and (sym, slot) in ctx["no_wait"])
            if cur is not None:
                self.book.cancel(out, cur, ts, seq, emit=False)

    def _entries(self, s, pos, ts, out, want, ctx, corr) -> None:
        """The quoted levels of ``s`` through the one entry gate
        (:func:`~gridflow.operators.entry_gate.gate_and_log`), with the margin of every
        resting entry counted as used."""
        st, sym = self.state, self.symbols[s]
        d = pos or int(st.si[s, kl.SI_QSIDE])
        if d == 0:
            return
        equity, n_open = self._equity()
        corr = np.full(len(self.symbols), 0.0) if corr is None or self.corr is None else corr
        resting = 0.0  # notional of the levels approved so far (the per-asset cap)
        for i in range(int(self.params[sym].levels_count)):
            px = float(st.qlv[s, i])
            if st.filled[s, i] or not px > 0:
                continue
            cur = self.book.slot(sym, f"L{i}")
            if cur is not None and cur.filled > 0:
                want[f"L{i}"] = (cur.side, "limit", cur.price, None, cur.amount, False)
                resting += (cur.amount - cur.filled) * (cur.price or 0.0)
                continue
            amount, bi, bf = gate_and_log(s, i, ts, px, d, equity, ctx["used"], n_open, corr,
                                          st, self.pf, self.mp, resting)
            if len(bi):
                out.extend(decode(bi, bf, self.account.name, self.symbols,
                                  self.strategy_names, self.counters))
            if amount > 0.0:
                resting += amount * px
                margin = amount * px / self.pf[kl.P_LEVERAGE]
                ctx["used"] += margin
                want[f"L{i}"] = (SIDE[d], "limit", px, None, amount, False)
                if cur is None and ctx["held"] + margin <= equity * EXCHANGE_MARGIN_SHARE:
                    ctx["held"] += margin  # held beside every order resting now
                    ctx["no_wait"].add((sym, f"L{i}"))
