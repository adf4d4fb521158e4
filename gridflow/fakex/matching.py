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

Fill times are ``open_time + offset`` inside the candle (always < its close time).
"""

from __future__ import annotations

from gridflow.fakex.book import OPEN, AlgoOrder, Book, Order

__all__ = ["step_candle"]


def step_candle(book: Book) -> None:
    """Match the forming candle of every symbol, then advance the clock one candle."""
    feed = book.feed
    t0, tf = feed.now, feed.tf_ms
    for sym in feed.symbols:
        row = feed.forming(sym)
        if row is None:
            continue
        o, h, lo, c, _ = row
        path = [o, lo, h, c] if c >= o else [o, h, lo, c]
        try:
            book.mark[sym] = o
            _at_open(book, sym, o, t0)
            for i in range(3):
                _leg(book, sym, path[i], path[i + 1], t0 + i * tf / 3, tf / 3, t0 + tf - 1)
        finally:
            book.mark.pop(sym, None)
    feed.advance()


def _triggers_up(a: AlgoOrder) -> bool:
    return (a.type.startswith("STOP") and a.side == "BUY") or (
        a.type.startswith("TAKE_PROFIT") and a.side == "SELL")


def _resting(book: Book, sym: str) -> list[Order]:
    return sorted((o for o in book.orders.values() if o.symbol == sym and o.status in OPEN),
                  key=lambda o: o.order_id)


def _waiting(book: Book, sym: str) -> list[AlgoOrder]:
    return sorted((a for a in book.algos.values() if a.symbol == sym and a.status == "NEW"),
                  key=lambda a: a.algo_id)


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
         t_last: int) -> None:
    if a == b:
        return
    down = b < a
    lo, hi = min(a, b), max(a, b)
    done_orders: set[int] = set()
    done_algos: set[int] = set()
    pos = a
    while True:
        best: tuple[float, int, int, float] | None = None
        for al in _waiting(book, sym):
            if al.algo_id in done_algos or _triggers_up(al) == down:
                continue
            x = al.trigger
            if min(pos, b) <= x <= max(pos, b) and lo <= x <= hi:
                key = (abs(x - a), 0, al.algo_id, x)
                best = key if best is None or key < best else best
        for o in _resting(book, sym):
            if o.order_id in done_orders or o.type != "LIMIT":
                continue
            if (o.side == "BUY") != down:
                continue
            x = o.price
            if min(pos, b) <= x <= max(pos, b):
                key = (abs(x - a), 1, o.order_id, x)
                best = key if best is None or key < best else best
        if best is None:
            return
        _, kind, ident, x = best
        t = min(int(t_start + abs(x - a) / abs(b - a) * leg_ms), t_last)
        book.mark[sym] = x
        if kind == 0:
            done_algos.add(ident)
            child = book.trigger(book.algos[ident], x, t)
            if child.type == "MARKET":
                done_orders.add(child.order_id)
        else:
            done_orders.add(ident)
            o = book.orders[ident]
            book.fill(o, o.price, t, maker=True)
        pos = x
