"""Walk the forming candle's price path against resting orders.

The path is ``open -> low -> high -> close`` when ``close >= open``, else
``open -> high -> low -> close``: three legs, each lasting a third of the candle.
Along a leg, orders act in the order the price reaches them (ties: algo orders first,
then by id):

* a resting limit buy fills at its price (maker) when a falling leg reaches it, a
  limit sell when a rising leg reaches it (touching counts);
* an algo order triggers when the leg reaches its trigger in its direction (STOP buy /
  TAKE_PROFIT sell going up, STOP sell / TAKE_PROFIT buy going down); its MARKET order
  fills at ``trigger * (1 -/+ stop_slippage)`` (sell/buy, on the tick grid) as taker.

Before the legs, at the open: algo orders whose trigger the open has already passed
(a gap) trigger at the open price, resting MARKET remainders fill at the open (taker)
and limits the open has passed fill at their own price (maker).

Fill times are ``open_time + offset`` inside the candle (always < its close time): the
time the path reaches the price.

The walk can stop anywhere inside the candle (:func:`walk_to`) and resume later: the
state of the leg in progress (where it is, which orders it has already acted on) is
kept in ``book.walks``, so walking a candle in pieces gives the same fills, at the same
prices and times, as walking it whole (:func:`step_candle`) when nobody acts in between.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gridflow.fakex.book import OPEN, AlgoOrder, Book, Order

__all__ = ["close_candle", "step_candle", "walk", "walk_to"]


@dataclass
class Walk:
    """How far one symbol's forming candle has been walked."""

    u: float = 0.0  # ms after the open walked to
    started: bool = False  # the open has been handled
    leg: int = 0  # leg in progress (3: the path is done)
    pos: float | None = None  # price on the leg walked to
    done_orders: set[int] = field(default_factory=set)
    done_algos: set[int] = field(default_factory=set)


def step_candle(book: Book) -> None:
    """Match the forming candle of every symbol, then advance the clock one candle."""
    walk_to(book, book.feed.tf_ms)
    close_candle(book)


def walk_to(book: Book, offset: int) -> None:
    """Walk every symbol's forming candle up to ``offset`` ms after its open (at most
    the timeframe) and move the clock there."""
    try:
        for sym in book.feed.symbols:
            walk(book, sym, offset)
        book.feed.set_offset(offset)
    finally:
        book.mark.clear()


def close_candle(book: Book) -> None:
    """Close the fully walked forming candle: the next one forms (offset 0)."""
    book.walks.clear()
    book.feed.advance()


def walk(book: Book, sym: str, u1: float) -> None:
    """Walk ``sym``'s forming candle from where it stands to ``u1`` ms after its open.

    Leaves ``book.mark[sym]`` at the path price at ``u1`` (the caller clears it once the
    clock has moved there).
    """
    feed = book.feed
    path = feed.path(sym)
    if path is None:
        return
    t0, tf = feed.open_ms, feed.tf_ms
    w = book.walks.get(sym)
    if w is None:
        w = book.walks[sym] = Walk(pos=path[0])
    if not w.started:
        w.started = True
        book.mark[sym] = path[0]
        _at_open(book, sym, path[0], t0)
    for i in range(w.leg, 3):
        if u1 <= i * tf / 3:
            break
        end = u1 >= tf if i == 2 else u1 >= (i + 1) * tf / 3
        stop = path[i + 1] if end else feed.path_price(path, u1)
        _leg(book, sym, path[i], path[i + 1], t0 + i * tf / 3, tf / 3, t0 + tf - 1, w, stop)
        if not end:
            break
        w.leg, w.pos, w.done_orders, w.done_algos = i + 1, path[i + 1], set(), set()
    w.u = max(w.u, u1)
    book.mark[sym] = feed.path_price(path, u1)


def _triggers_up(a: AlgoOrder) -> bool:
    return (a.type.startswith("STOP") and a.side == "BUY") or (
        a.type.startswith("TAKE_PROFIT") and a.side == "SELL")


def _resting(book: Book, sym: str) -> list[Order]:
    return book.open_orders(sym)


def _waiting(book: Book, sym: str) -> list[AlgoOrder]:
    return book.open_algos(sym)


def _at_open(book: Book, sym: str, px: float, t: int) -> None:
    triggered: set[int] = set()
    for a in _waiting(book, sym):
        if book.would_trigger(a.type, a.side, a.trigger, px):
            triggered.add(book.trigger(a, px, t).order_id)
    for o in _resting(book, sym):
        if o.status not in OPEN or o.order_id in triggered:
            continue
        if o.type == "MARKET":
            book.fill(o, px, t, maker=False)
        elif (o.side == "BUY" and o.price >= px) or (o.side == "SELL" and o.price <= px):
            book.fill(o, o.price, t, maker=True)


def _leg(book: Book, sym: str, a: float, b: float, t_start: float, leg_ms: float,
         t_last: int, w: Walk, stop: float) -> None:
    """Walk the leg ``a -> b`` from ``w.pos`` to ``stop`` (both on the leg)."""
    if a == b:
        return
    down = b < a
    lo, hi = min(a, b), max(a, b)
    while True:
        pos = w.pos
        best: tuple[float, int, int, float] | None = None
        for al in _waiting(book, sym):
            if al.algo_id in w.done_algos or _triggers_up(al) == down:
                continue
            x = al.trigger
            if min(pos, stop) <= x <= max(pos, stop) and lo <= x <= hi:
                key = (abs(x - a), 0, al.algo_id, x)
                best = key if best is None or key < best else best
        for o in _resting(book, sym):
            if o.order_id in w.done_orders or o.type != "LIMIT":
                continue
            if (o.side == "BUY") != down:
                continue
            x = o.price
            if min(pos, stop) <= x <= max(pos, stop):
                key = (abs(x - a), 1, o.order_id, x)
                best = key if best is None or key < best else best
        if best is None:
            break
        _, kind, ident, x = best
        t = min(int(t_start + abs(x - a) / abs(b - a) * leg_ms), t_last)
        book.mark[sym] = x
        if kind == 0:
            w.done_algos.add(ident)
            child = book.trigger(book.algos[ident], x, t)
            if child.type == "MARKET":
                w.done_orders.add(child.order_id)
        else:
            w.done_orders.add(ident)
            o = book.orders[ident]
            book.fill(o, o.price, t, maker=True)
        w.pos = x
    w.pos = stop
