"""Order bookkeeping of the live account engine: working orders, fills, exits.

Pure (no I/O): :class:`LiveBook` keeps the orders the engine asked the broker for, and
applies the exchange's fills to the account kernel's state arrays
(:class:`~gridflow.operators.kernel_layout.KernelState`), so positions, cash, fees, PnL
and the risk numbers live in the same place as in replay and paper mode.
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

from gridflow.event_kinds import EventKind, ExitReason, Reason
from gridflow.events import ExecutionReport, JournalEvent, OrderIntent, OrderRequest, TradeRecord
from gridflow.ids import client_order_id
from gridflow.operators import kernel_layout as kl
from gridflow.operators.engine_decode import EXIT_REASONS
from gridflow.operators.order_state import LIVE_STATES, OrderState, move
from gridflow.operators.position import book_entry, book_exit, end_cycle

SIDE = {1: "buy", -1: "sell"}
#: Orders a :class:`LiveBook` remembers after forgetting them, for late fills.
RETIRED_MAX = 4096
#: The exit reason of a cycle closed by an order of each exit slot (a market ``CLOSE``
#: after a crossed or refused stop counts as a stop).
EXIT_REASON = {"TP": ExitReason.TP, "SL": ExitReason.SL, "TRAIL": ExitReason.TRAIL,
               "FLIP": ExitReason.FLIP, "FLATTEN": ExitReason.FLATTEN, "TIME": ExitReason.TIME, "EXIT": ExitReason.SIGNAL,
               "CLOSE": ExitReason.SL}


@dataclass
class Working:
    """One order the engine asked the broker to place.

    ``state``: an :class:`~gridflow.operators.order_state.OrderState`, changed only by
    :meth:`LiveBook.move` (``"pending"``: intent emitted, not yet seen on the exchange;
    ``"open"``: seen among the exchange's open orders; ``"canceling"``: cancel emitted;
    ``"done"``: fully filled; ``"gone"``: rejected, skipped, cancelled, vanished).
    ``filled`` is the base amount filled so far; ``unseen`` counts consecutive
    exchange snapshots that did not list an order once seen; ``replaces`` is the client
    id of the order the broker cancels before placing this one (``cancel_first``);
    ``after`` the client id of the order the broker cancels once this one is accepted
    (``cancel_after``: a moved stop).
    """

    coid: str
    symbol: str
    slot: str
    side: str
    type: str
    price: float | None
    stop_price: float | None
    amount: float
    decision_ts: int
    seq: int
    strategy: str = ""
    filled: float = 0.0
    state: OrderState = OrderState.PENDING
    unseen: int = 0
    intent_reduce: bool = False
    replaces: str | None = None
    after: str | None = None
    elided: bool = False
    """Dropped before it was sent, superseded in the same step (:meth:`LiveBook.
    elide_superseded`)."""
    listed: int = 0
    """Exchange snapshots in a row that listed it open while it was being cancelled and
    its successor already rested (:func:`~gridflow.operators.live_reconcile.
    reconcile_orders` cancels it again at the second)."""

    @property
    def live(self) -> bool:
        """Still able to fill (asked for, seen, or not yet confirmed gone)."""
        return self.state in LIVE_STATES


def same_order(w: Working, price: float | None, stop: float | None, amount: float,
               tick: float, step: float) -> bool:
    """Whether live order ``w`` already is the wanted one: same prices (within half a
    ``tick``, quote) and amount (within half a ``step``, base; the remaining amount for
    exits)."""
    half_tick, half_step = (tick or 1e-12) * 0.5, (step or 1e-12) * 0.5

    def eq(x, y):
        return (x is None and y is None) or (
            x is not None and y is not None and abs(x - y) < half_tick)

    have = w.amount if w.slot.startswith("L") else w.amount - w.filled
    return eq(w.price, price) and eq(w.stop_price, stop) and abs(have - amount) < half_step


class OrderMap(dict):
    """``coid -> Working``, a dict that also keeps, in insertion order, the orders that
    may still fill: :meth:`live` lists them without walking the orders that are done or
    gone (kept in the book until the exchange's open orders have not listed them a few
    times, which in websocket mode is a few REST reconciliations: thousands of orders at
    a high order rate, walked at every fill before).

    Sound because ``done`` and ``gone`` are final as far as being live goes
    (:data:`~gridflow.operators.order_state.TRANSITIONS`): an order found not live is
    dropped from the list for good, unless it is put into the map again."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.maybe_live: dict[str, None] = dict.fromkeys(self)

    def __setitem__(self, coid: str, w: Working) -> None:
        new = coid not in self
        super().__setitem__(coid, w)
        # unpickling sets the items before it restores the attributes
        maybe = self.__dict__.setdefault("maybe_live", {})
        if new:  # a key put back after a pop goes last, as in the dict itself
            maybe.pop(coid, None)
        maybe[coid] = None

    def live(self) -> list[Working]:
        """The live orders (:attr:`Working.live`), oldest insertion first."""
        maybe = self.maybe_live
        out, dead = [], []
        for coid in maybe:
            w = self.get(coid)
            if w is not None and w.live:
                out.append(w)
            else:
                dead.append(coid)
        for coid in dead:
            del maybe[coid]
        return out


@dataclass
class Cycle:
    """The open position cycle of one symbol: totals for its trade record."""

    entered: float = 0.0
    exit_qty: float = 0.0
    exit_notional: float = 0.0
    reason: str = ""


@dataclass
class LiveBook:
    """Working orders by client id and by slot (``(symbol, "L0" | "TP" | "SL" ...)``).

    ``counters`` (the engine's event counters) counts the order moves
    :func:`~gridflow.operators.order_state.move` refused."""

    account: str
    orders: OrderMap = field(default_factory=OrderMap)
    slots: dict[tuple[str, str], str] = field(default_factory=dict)
    cycles: dict[str, Cycle] = field(default_factory=dict)
    placed: dict[tuple[str, str], int] = field(default_factory=dict)
    counters: Counter = field(default_factory=Counter)

    def move(self, w: Working, target: OrderState) -> bool:
        """Move ``w`` to ``target`` through the one transition table
        (:func:`~gridflow.operators.order_state.move`); an illegal move leaves it
        unchanged, is counted in :attr:`counters` and returns False.

        Raises
        ------
        IllegalTransition
            On an illegal move when :data:`~gridflow.operators.order_state.STRICT`.
        """
        return move(w, target, self.counters)

    def slot(self, symbol: str, slot: str) -> Working | None:
        """The live order of a slot, or None."""
        coid = self.slots.get((symbol, slot))
        w = self.orders.get(coid) if coid else None
        return w if w is not None and w.live else None

    def of_symbol(self, symbol: str) -> list[Working]:
        """Live orders of ``symbol``."""
        return [w for w in self.live() if w.symbol == symbol]

    def live(self) -> list[Working]:
        """The orders that may still fill, oldest first (:meth:`OrderMap.live`)."""
        if not isinstance(self.orders, OrderMap):  # a book pickled before OrderMap
            self.orders = OrderMap(self.orders)
        return self.orders.live()

    def place(self, out, *, symbol: str, strategy: str, slot: str, side: str, type: str,
              amount: float, ts: int, seq: int, price: float | None = None,
              stop_price: float | None = None, reduce_only: bool = False,
              cancel_first: str | None = None, cancel_after: str | None = None,
              ref_price: float | None = None, margin_held: bool = False) -> Working:
        """Record a new order and append its intent and journal row to ``out``
        (a :class:`~gridflow.chunks.JournalBatch`). The client id hashes the slot, the
        count of orders placed in that slot so far and the decision time: unique, and
        equal when the same decision is replayed after a crash (it depends on nothing
        else the engine did in between, such as journal events). ``ref_price`` is what the journal row of
        a market order shows (the last close)."""
        k = self.placed.get((symbol, slot), 0) + 1
        self.placed[(symbol, slot)] = k
        coid = client_order_id(self.account, strategy, symbol, f"{slot}#{k}", ts)
        w = Working(coid, symbol, slot, side, type, price, stop_price, amount, ts, seq,
                    strategy, intent_reduce=reduce_only, replaces=cancel_first,
                    after=cancel_after)
        self.orders[coid] = w
        self.slots[(symbol, slot)] = coid
        out.intents.append(OrderIntent(
            intent_id=f"{coid}:place", action="place", account=self.account, strategy=strategy,
            symbol=symbol, client_order_id=coid, tag=slot, ts_ms=ts, seq=seq, side=side,
            type=type, price=price, stop_price=stop_price, amount=amount,
            reduce_only=reduce_only, cancel_first=cancel_first, cancel_after=cancel_after,
            margin_held=margin_held,
        ))
        out.orders.append(OrderRequest(
            client_order_id=coid, account=self.account, strategy=strategy, symbol=symbol,
            tag=slot, ts_ms=ts, seq=seq, side=side,
            type=type, price=price or stop_price or ref_price, amount=amount,
            reduce_only=reduce_only,
        ))
        return w

    def cancel(self, out, w: Working, ts: int, seq: int, emit: bool = True) -> None:
        """Mark ``w`` as being cancelled; emit a cancel intent unless a replacement's
        ``cancel_first`` / ``cancel_after`` already carries it."""
        self.move(w, OrderState.CANCELING)
        if self.slots.get((w.symbol, w.slot)) == w.coid:
            del self.slots[(w.symbol, w.slot)]
        if emit:
            out.intents.append(OrderIntent(
                intent_id=f"{w.coid}:cancel", action="cancel", account=self.account,
                strategy=w.strategy, symbol=w.symbol, client_order_id=w.coid, tag=w.slot,
                ts_ms=ts, seq=seq, side=w.side, type=w.type, price=w.price,
                stop_price=w.stop_price, amount=w.amount, reduce_only=w.intent_reduce,
            ))

    def elide_superseded(self, out, sent=()) -> set[str]:
        """Drop from ``out`` (one engine step's :class:`~gridflow.chunks.JournalBatch`)
        every placed order that a later place of the same step already takes over from
        (``cancel_after``: a moved take profit or stop on contracts). ``A`` took over
        from ``P`` and ``B`` from ``A``: ``B`` takes over from ``P`` and ``A`` is never
        sent. A burst of fills in one update moves the take profit and the stop once per
        fill; only the last move is worth a round trip. The dropped orders keep their
        slot counts (:meth:`place`), so the ids of later decisions do not depend on how
        fills were grouped into updates.

        Kept: an order this step also cancels, one in ``sent`` (client ids the broker
        reported sent: a decision re-made after a restore), and replacements that cancel
        first (entries, spot): those must not outlive a restore that re-decides them
        one at a time. A dropped order an earlier life did send is cancelled once the
        broker reports it (``Working.elided``, :func:`~gridflow.operators.
        live_reconcile.apply_outcome`). Returns the dropped ids."""
        pos = {it.client_order_id: k for k, it in enumerate(out.intents) if it.action == "place"}
        cancelled = {it.client_order_id for it in out.intents if it.action == "cancel"}
        dropped: set[str] = set()
        for k, it in enumerate(out.intents):
            prev = it.cancel_after
            if it.action != "place" or prev not in pos or prev in cancelled or prev in sent:
                continue
            a, old = out.intents[pos[prev]], self.orders.get(prev)
            if a.cancel_first is not None or old is None \
                    or old.state != OrderState.CANCELING or old.filled > 0:
                continue  # a chain of two kinds, or known to rest (a fill, or done): kept
            out.intents[k] = it = it.model_copy(update={"cancel_after": a.cancel_after})
            w = self.orders.get(it.client_order_id)
            if w is not None:
                w.after = a.cancel_after
            self.move(old, OrderState.GONE)  # never sent
            old.elided = True
            dropped.add(prev)
        if dropped:
            out.intents[:] = [it for it in out.intents if not (
                it.action == "place" and it.client_order_id in dropped)]
            out.orders[:] = [o for o in out.orders if o.client_order_id not in dropped]
        return dropped

    def filled_out(self, coid: str) -> None:
        """Order ``coid`` filled completely: a replacement still waiting on its cancel
        will be skipped by the broker (the cancel finds nothing), so it is gone now and
        its slot free. Known from the exchange-time stream of fills, the same after a
        restore, instead of from the broker's answer, which comes in wall-clock order."""
        gone = [coid]
        while gone:  # and a replacement of a dropped replacement, whose cancel finds nothing
            old = gone.pop()
            for w in self.live():
                if w.replaces == old and w.state in (OrderState.PENDING, OrderState.CANCELING):
                    self.move(w, OrderState.GONE)  # never placed
                    gone.append(w.coid)
                    if self.slots.get((w.symbol, w.slot)) == w.coid:
                        del self.slots[(w.symbol, w.slot)]

    def forget(self, coid: str) -> None:
        """Drop an order no longer open on the exchange from the book. It stays among
        the :data:`RETIRED_MAX` most recently retired, so a fill the exchange reports
        late (a trade stream behind the order stream, a REST catch-up after an outage)
        is still booked to it (:meth:`find`), not an orphan."""
        w = self.orders.pop(coid, None)
        if w is None:
            return
        if self.slots.get((w.symbol, w.slot)) == coid:
            del self.slots[(w.symbol, w.slot)]
        retired = self._retired()
        retired[coid] = w
        while len(retired) > RETIRED_MAX:
            retired.popitem(last=False)

    def find(self, coid: str) -> Working | None:
        """The order ``coid`` of the book, or a retired one brought back into it (its
        slot stays with whatever holds it now); None if unknown."""
        w = self.orders.get(coid)
        if w is None:
            w = self._retired().pop(coid, None)
            if w is not None:
                self.orders[coid] = w
        return w

    def strays(self) -> set[str]:
        """Client ids of orders that rest outside their slot (see
        :func:`~gridflow.operators.live_reconcile.settle_strays`)."""
        return self.__dict__.setdefault("stray", set())

    def _retired(self) -> OrderedDict[str, Working]:
        # a book pickled before retired orders were kept has no such attribute
        return self.__dict__.setdefault("retired", OrderedDict())


def apply_entry(st: kl.KernelState, s: int, level: int, d: int, rep: ExecutionReport,
                w: Working, cyc: Cycle, step: float = 0.0, residue: float = 0.0) -> float:
    """Add an entry fill to position ``s`` (side ``d``: +1 long, -1 short) through the
    kernel's :func:`~gridflow.operators.position.book_entry` (amounts on the ``step``
    grid); the level counts as filled once its order is. Returns the base residue.

    A fee withheld in base (``rep.fee_base``, spot) is not received: the position grows
    by the rest plus the ``residue`` (base, below a step, that earlier fills left on the
    exchange), down to the ``step`` grid (what can be sold). What stays below a step is
    the new residue (returned): unsellable, so out of the position and its value out of
    the account (as fee, at this fill's price; a residue taken back in is credited)."""
    q, fee = rep.amount, rep.fee
    if rep.fee_base > 0.0:
        q = rep.amount - rep.fee_base
        if step > 0.0:
            old = float(st.sf[s, kl.SF_AMT])
            keep = max(math.floor((old + q + residue) / step + 1e-9) * step - old, 0.0)
            left = q + residue - keep
            fee += (left - residue) * rep.price
            q, residue = keep, left
    if book_entry(s, rep.ts_ms, d, q, rep.price, fee, step, st.sf, st.si, st.af):
        cyc.entered = cyc.exit_qty = cyc.exit_notional = 0.0
    cyc.entered += q
    if w.filled >= w.amount * (1 - 1e-9):
        if 0 <= level < st.filled.shape[1]:
            st.filled[s, level] = 1
            st.dn[s, level] = 0
        st.si[s, kl.SI_ENTRIES] += 1
    return residue


def apply_exit(st: kl.KernelState, s: int, rep: ExecutionReport, cyc: Cycle,
               step: float = 0.0) -> float:
    """Reduce position ``s`` by an exit fill (the kernel's
    :func:`~gridflow.operators.position.book_exit`); returns the realised PnL before
    fees."""
    q = min(rep.amount, float(st.sf[s, kl.SF_AMT]))
    pnl = book_exit(s, rep.amount, rep.price, rep.fee, step, st.sf, st.si, st.af)
    cyc.exit_qty += q
    cyc.exit_notional += q * rep.price
    return float(pnl)


_EXIT_CODE = {v: k for k, v in EXIT_REASONS.items()}


def close_cycle(st: kl.KernelState, s: int, account: str, symbol: str, ts: int, seq: int,
                cyc: Cycle, pf) -> TradeRecord:
    """The position of ``s`` is flat: its trade record, then the kernel's
    :func:`~gridflow.operators.position.end_cycle` (cooldown after a stop, the cycle
    resets; the grid re-arms at the next candle's decision)."""
    sf, si = st.sf, st.si
    d = int(si[s, kl.SI_SIDE])
    fees = float(sf[s, kl.SF_CYCLE_FEES])
    funding = float(sf[s, kl.SF_CYCLE_FUNDING])
    exit_px = cyc.exit_notional / cyc.exit_qty if cyc.exit_qty > 0 else float(sf[s, kl.SF_AVG])
    gross = d * cyc.exit_qty * (exit_px - sf[s, kl.SF_AVG])
    rec = TradeRecord(
        trade_id=f"{account}:{symbol}:{int(si[s, kl.SI_OPEN_TS])}", account=account,
        symbol=symbol, seq=seq, position_side="long" if d > 0 else "short",
        open_ts_ms=int(si[s, kl.SI_OPEN_TS]), close_ts_ms=ts,
        entries=max(1, int(si[s, kl.SI_ENTRIES])), amount=max(cyc.entered, 1e-12),
        avg_entry=float(sf[s, kl.SF_AVG]), exit_price=exit_px,
        pnl=gross - fees - funding, fees=fees, funding=funding,
        exit_reason=cyc.reason or ExitReason.CLOSE,
    )
    end_cycle(s, _EXIT_CODE.get(cyc.reason, 0), sf, si, pf)
    st.filled[s, :] = 0
    st.dn[s, :] = 0
    cyc.entered = cyc.exit_qty = cyc.exit_notional = 0.0
    cyc.reason = ""
    return rec


def event(account: str, kind: EventKind, reason: Reason | str, ts: int, seq: int,
          symbol: str = "", **detail) -> JournalEvent:
    """A journal event with a deterministic id ``kind:account:seq`` (``ts`` ms UTC;
    ``reason`` a :class:`~gridflow.event_kinds.Reason` member, or for the events listed
    in :mod:`gridflow.event_kinds` a name from outside gridflow)."""
    return JournalEvent(event_id=f"{kind}:{account}:{seq}", kind=kind, reason=reason,
                        ts_ms=ts, account=account, symbol=symbol, seq=seq, detail=detail)


def close_tag(st, s: int, pos: int, entries: bool, dust: bool, ts: int, tf_ms: int,
              time_stop: float) -> str | None:
    """The market close symbol ``s`` (position side ``pos``) needs at exchange time
    ``ts``, in the kernel's order: a ``FLATTEN`` command, then at a candle close
    (``entries``) a ``FLIP``, and, for a position above the exchange's minimum (not
    ``dust``), the strategy's ``EXIT`` signal and a due ``TIME`` stop
    (:func:`~gridflow.operators.risk.time_stop_due`); None for none."""
    from gridflow.operators.risk import time_stop_due

    if st.si[s, kl.SI_FLATTEN]:
        return "FLATTEN"
    if not entries or pos == 0:
        return None
    if st.si[s, kl.SI_QSIDE] == -pos:
        return "FLIP"
    if dust:
        return None
    if st.si[s, kl.SI_EXIT] != 0:
        return "EXIT"
    if time_stop_due(ts, int(st.si[s, kl.SI_OPEN_TS]), tf_ms, time_stop):
        return "TIME"
    return None
