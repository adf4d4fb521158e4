"""Reconciliation of the live account engine with the exchange and the broker (pure
functions of the engine's state and one exchange snapshot or broker outcome; they only
journal, rebuild or cancel gridflow's own orders and never trade anything unknown)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from gridflow.chunks import JournalBatch
from gridflow.event_kinds import ORDER_OUTCOME_KINDS, EventKind, Reason
from gridflow.events import OrderOutcome
from gridflow.operators import kernel_layout as kl
from gridflow.operators.live_orders import Working, event
from gridflow.operators.order_state import OrderState

if TYPE_CHECKING:
    from gridflow.operators.live_engine import LiveAccountEngine

ORPHAN_GRACE = 3  # exchange snapshots an unknown open order must survive to be an orphan
SENT_MAX = 50_000  # client ids of the write-ahead table remembered
SLOTS = re.compile(r"^(L\d+|TP|SL|PROTECT)$")  # slots an order can be rebuilt into


def apply_outcome(self: "LiveAccountEngine", o: OrderOutcome) -> JournalBatch:
    """What the broker did with an intent. A place it carried out (``sent`` /
    ``duplicate``) is remembered as the write-ahead table's (after a start without
    recovery state the outcome source replays the whole table, so the engine knows every
    order of the run). A refused, failed or skipped place frees its slot (the next update
    decides again; a refused stop counts towards a market close only while it is the
    stop the position relies on); a confirmed cancel ends the order. A refused or failed
    place is journaled (``order_rejected`` / ``order_failed``) with the exchange's error
    class as its reason, else ``REJECTED`` / ``FAILED``. A refused stop the position
    relied on is decided again at once, not at the next exchange message (a stream may
    have nothing to say for a while): a new stop, or after two refusals a market close;
    refusals count once per exchange update (a refusal before the engine saw the state
    that caused it, a take profit's fill, neither counts again nor is retried). A place
    this life dropped as superseded (``Working.elided``) that the broker reports sent
    (an earlier life sent it before a restore) is cancelled."""
    out = JournalBatch()
    if o.action == "place" and o.status in ("sent", "duplicate"):
        self.sent[o.client_order_id] = o.tag
        while len(self.sent) > SENT_MAX:
            self.sent.popitem(last=False)
    w = self.book.orders.get(o.client_order_id)
    if w is None:
        return out
    if o.action == "place" and o.status in ("sent", "duplicate") and w.elided \
            and w.state == OrderState.GONE:
        # dropped as superseded, yet an earlier life had sent it: it rests unwanted
        w.elided = False
        self.book.cancel(out, w, max(self.watermark, 0), self.next_seq())
        return out
    if o.action == "place" and o.status in ("sent", "duplicate") and w.type == "market" \
            and w.state == OrderState.PENDING:
        # a market order never rests: once accepted, an exchange snapshot without it
        # means it is done; one that expired part-filled then frees its slot (the stop)
        self.book.move(w, OrderState.OPEN)
    if o.action == "place" and o.status in ("rejected", "failed", "skipped"):
        current = self.book.slots.get((w.symbol, w.slot)) == w.coid
        self.book.move(w, OrderState.GONE)
        if current:
            del self.book.slots[(w.symbol, w.slot)]
        refused_stop = w.slot == "SL" and o.status == "rejected" and current
        if refused_stop:
            s = self.index[w.symbol]
            # one refusal counts per exchange update: a second one before the next
            # update may come from exchange state not seen yet (a take profit filled
            # meanwhile), so it neither counts towards the market close nor is retried
            refused_stop = self.stop_refused_at[s] != self.updates
            if refused_stop:
                self.stop_rejects[s] += 1
                self.stop_refused_at[s] = self.updates
        if o.status != "skipped":
            out.events.append(event(self.account.name, ORDER_OUTCOME_KINDS[o.status],
                                    o.error.split(":")[0][:64] or Reason(o.status.upper()),
                                    max(self.watermark, 0), self.next_seq(), w.symbol,
                                    client_order_id=w.coid, tag=w.slot, error=o.error[:500]))
        _restore_predecessor(self, w)
        if refused_stop and self.replayed and not any(
                x.symbol == w.symbol and x.slot == "SL" for x in self.book.live()):
            # nothing protects the position (a refused move leaves the old stop resting,
            # whatever order the outcomes come in): it must not wait for the next
            # exchange message, so its stop is decided again now (a second counted
            # refusal closes it at market)
            self._sync(s, self._decided(s), out, entries=False)
    elif o.action == "cancel" and o.status in ("canceled", "not_found"):
        if w.state == OrderState.CANCELING:
            self.book.move(w, OrderState.GONE)
    elif o.action == "cancel" and o.status in ("skipped", "failed", "rejected") \
            and w.state == OrderState.CANCELING:
        # its successor was refused, or the cancel itself was (a spot replace then skips
        # the sell): it still rests, back in its slot (a snapshot without it ends it)
        self.book.move(w, OrderState.OPEN)
        _restore_predecessor(self, w)
    if out:
        out.summaries.append(self.summary())
    return out


def check_slippage(self: "LiveAccountEngine", w, rep, out: JournalBatch) -> None:
    """A fill of order ``w`` worse than its limit or trigger by more than
    ``live.slippage_alert`` (a fraction): a ``slippage`` event (reason: the order's slot,
    ``"L0"``, ``"SL"`` ..., not a Reason member)."""
    ref = w.stop_price if w.stop_price else w.price
    if not ref or not rep.price:
        return
    worse = (rep.price - ref) / ref if w.side == "buy" else (ref - rep.price) / ref
    if worse > self.live.slippage_alert:
        out.events.append(event(self.account.name, EventKind.SLIPPAGE, w.slot, rep.ts_ms,
                                self.next_seq(), w.symbol, client_order_id=w.coid,
                                order_price=ref, fill_price=rep.price, slippage=worse,
                                threshold=self.live.slippage_alert))


def _restore_predecessor(self: "LiveAccountEngine", w) -> None:
    """Give a slot back to the order that still rests in it: ``w`` itself when its cancel
    was skipped, or the order ``w`` was to take over from (``cancel_after``) when ``w``
    was refused after that skip (the two outcomes of one replacement may come in either
    order). While a newer live order holds the slot the rested one is kept aside, as a
    stray, for :func:`settle_strays`."""
    old = w if w.state == OrderState.OPEN else self.book.orders.get(w.after or "")
    if old is None or old.state != OrderState.OPEN:
        return
    holder = self.book.slot(old.symbol, old.slot)
    if holder is None:
        self.book.slots[(old.symbol, old.slot)] = old.coid
    if holder is None or holder is old:
        self.book.strays().discard(old.coid)
    else:
        self.book.strays().add(old.coid)


def settle_strays(self: "LiveAccountEngine", symbol: str, ts: int, out: JournalBatch) -> None:
    """Orders of ``symbol`` that still rest outside their slot (a stop kept because its
    successor was refused, while a newer successor was on its way): back into the slot
    if it is empty, cancelled once the slot's order rests on the exchange (``open``),
    kept while it is still ``pending``. Called at every sync; the set is nearly always
    empty."""
    strays = self.book.strays()
    for coid in list(strays):
        w = self.book.orders.get(coid)
        if w is None or w.state != OrderState.OPEN:
            strays.discard(coid)
            continue
        if w.symbol != symbol:
            continue
        holder = self.book.slot(symbol, w.slot)
        if holder is None or holder is w:
            self.book.slots[(symbol, w.slot)] = coid
            strays.discard(coid)
        elif holder.state == OrderState.OPEN:
            self.book.cancel(out, w, ts, self.next_seq())
            strays.discard(coid)


def _explainable(self: "LiveAccountEngine", created_ms: int | None) -> bool:
    """Whether a decision the engine has still to (re)make may have placed an own order
    created at ``created_ms``: a fill waits, a fill up to then is not in yet, or a candle
    closing before it is still to be processed (after a restore)."""
    if self.deferred:
        return True
    if created_ms is None:
        return False
    return created_ms >= self.watermark or self.next_close() <= created_ms


LISTED_RECANCEL = 2
"""Exchange snapshots in a row listing an order being cancelled, whose successor in its
slot already rests, after which it is cancelled again."""


def reconcile_orders(self: "LiveAccountEngine", open_orders: list, ts: int,
                     out: JournalBatch, trades_ok: bool = True) -> None:
    """Open orders on the exchange against the engine's book: seen, vanished, orphans; an
    order being cancelled that is still listed while its successor rests is cancelled
    again (:data:`LISTED_RECANCEL`).
    A market order (it never rests) counts as unseen only in an update whose trades
    were all read (``trades_ok``): its fill may be in the trades that failed."""
    seen = {o["client_order_id"]: o for o in open_orders}
    filling = {r.client_order_id for r in self.deferred}
    for coid, w in list(self.book.orders.items()):
        if coid in seen:
            w.unseen = 0
            if w.state == OrderState.PENDING:
                self.book.move(w, OrderState.OPEN)
            holder = self.book.slot(w.symbol, w.slot) \
                if w.state == OrderState.CANCELING else None  # only those being cancelled
            stuck = holder is not None and holder is not w and holder.state == OrderState.OPEN
            w.listed = w.listed + 1 if stuck else 0
            if w.listed == LISTED_RECANCEL:  # its cancel was lost (a restore that
                # regrouped a replacement chain): the successor rests, so cancel it now
                self.book.cancel(out, w, ts, self.next_seq())
            continue
        if w.state == OrderState.PENDING or coid in filling or (
                w.type == "market" and not trades_ok):
            continue  # the broker has not answered yet / its fill waits for a candle
        w.unseen += 1
        if w.unseen < 2:
            continue
        if w.state == OrderState.OPEN:  # vanished without our cancel and without a fill
            out.events.append(event(self.account.name, EventKind.ORDER_VANISHED,
                                    Reason.NOT_OPEN, ts, self.next_seq(), w.symbol,
                                    client_order_id=coid, tag=w.slot, filled=w.filled,
                                    amount=w.amount))
            self.book.move(w, OrderState.GONE)
        if w.unseen >= 3:
            self.book.forget(coid)
    for coid in list(self.unknown):
        if coid not in seen or coid in self.book.orders:
            del self.unknown[coid]
    for coid, o in seen.items():
        if coid in self.book.orders or (EventKind.ORPHAN_ORDER, coid) in self.once:
            continue
        # after a crash the engine resumes behind the exchange and re-decides its own
        # recent orders within a poll or two: only an order still unknown after
        # ORPHAN_GRACE snapshots is an orphan
        self.unknown[coid] = self.unknown.get(coid, 0) + 1
        if self.unknown[coid] < ORPHAN_GRACE or (coid.startswith("gf") and _explainable(
                self, o.get("ts"))):
            continue
        del self.unknown[coid]
        if coid in self.sent and rebuild(self, coid, o, ts, out):
            continue
        self.once.add((EventKind.ORPHAN_ORDER, coid))
        ours = coid.startswith("gf")
        out.events.append(event(self.account.name, EventKind.ORPHAN_ORDER,
                                Reason.GRIDFLOW_ID if ours else Reason.FOREIGN, ts, self.next_seq(),
                                o.get("symbol", ""), client_order_id=coid,
                                side=o.get("side"), type=o.get("type"),
                                price=o.get("price"), amount=o.get("amount"),
                                action="cancel" if ours and self.live.orphan_policy
                                == "cancel_ours" else "none"))
        if ours and self.live.orphan_policy == "cancel_ours":
            typ = "stop_market" if o.get("stop_price") else "limit"
            w = Working(coid, o.get("symbol", ""), "ORPHAN", o.get("side") or "buy", typ,
                        o.get("price"), o.get("stop_price"), float(o.get("amount") or 0.0),
                        ts, 0, state=OrderState.OPEN)
            self.book.orders[coid] = w
            self.book.cancel(out, w, ts, self.next_seq())

def rebuild(self: "LiveAccountEngine", coid: str, o: dict, ts: int,
             out: JournalBatch) -> bool:
    """An open order the write-ahead table placed but the book does not hold: back into
    its slot when that is free (``order_rebuilt``; the next sync keeps it if it is what
    the state wants, else replaces it), cancelled when the slot holds a newer order
    (``order_superseded``). False when the order cannot be placed in a slot (an untraded
    symbol, an unknown slot): it is then an orphan."""
    sym, slot = o.get("symbol", ""), self.sent[coid]
    if sym not in self.index or not SLOTS.match(slot):
        return False
    w = Working(coid, sym, slot, o.get("side") or "buy", o.get("type") or "limit",
                o.get("price"), o.get("stop_price"), float(o.get("amount") or 0.0), ts, 0,
                self.strategy_names[self.index[sym]], filled=float(o.get("filled") or 0.0),
                state=OrderState.OPEN, intent_reduce=bool(o.get("reduce_only")))
    self.book.orders[coid] = w
    kind = EventKind.ORDER_REBUILT
    if self.book.slot(sym, slot) is None:
        self.book.slots[(sym, slot)] = coid
    else:
        kind = EventKind.ORDER_SUPERSEDED
    out.events.append(event(self.account.name, kind, Reason.WRITE_AHEAD_TABLE, ts, self.next_seq(),
                            sym, client_order_id=coid, tag=slot, side=w.side, type=w.type,
                            price=w.price, stop_price=w.stop_price, amount=w.amount,
                            filled=w.filled))
    if kind == EventKind.ORDER_SUPERSEDED:
        self.book.cancel(out, w, ts, self.next_seq())
    return True


def reconcile_positions(self: "LiveAccountEngine", positions: dict, ts: int,
                        out: JournalBatch) -> None:
    """Exchange positions against the engine's: mismatches (two polls in a row) and
    positions on symbols the account does not trade, journaled once each. On spot a
    "position" is the base balance: more than the engine holds is the owner's (never
    adopted nor protected), less is a mismatch."""
    st = self.state
    for sym in sorted(set(positions) | set(self.symbols)):
        ex_amt = float(positions.get(sym, {}).get("amount", 0.0) or 0.0)
        if sym not in self.index:
            key = (EventKind.ORPHAN_POSITION, sym, ex_amt)
            if ex_amt and key not in self.once:
                self.once.add(key)
                out.events.append(event(self.account.name, EventKind.ORPHAN_POSITION,
                                        Reason.NOT_TRADED_BY_ACCOUNT, ts, self.next_seq(), sym,
                                        amount=ex_amt))
            continue
        s = self.index[sym]
        mine = float(st.si[s, kl.SI_SIDE] * st.sf[s, kl.SF_AMT])
        if self.spot and ex_amt >= mine - self._dust(s):
            ex_amt = mine  # spot: base held beyond the engine's is the owner's, not ours
        if abs(ex_amt - mine) <= self._dust(s):
            self.mismatch[sym] = 0
            self.unexplained.pop(sym, None)
            continue
        self.mismatch[sym] = self.mismatch.get(sym, 0) + 1
        key = (EventKind.POSITION_MISMATCH, sym, round(ex_amt, 12), round(mine, 12))
        if self.mismatch[sym] >= 2 and key not in self.once:
            self.once.add(key)
            out.events.append(event(self.account.name, EventKind.POSITION_MISMATCH,
                                    Reason.EXCHANGE_DIFFERS, ts, self.next_seq(), sym,
                                    exchange_amount=ex_amt, engine_amount=mine))
        # a position the engine holds flat for two polls: never leave it without a stop
        # (a reduce-only PROTECT stop for the exchange's amount; the account's books are
        # not touched, the fills that explain it may still come)
        if self.mismatch[sym] >= 2 and mine == 0.0:
            px = float(positions.get(sym, {}).get("entry_price") or 0.0)
            self.unexplained[sym] = (ex_amt, px)
