"""Websocket event bodies of the fake exchange, and the journal that finds them.

Bodies follow Binance USDⓈ-M's market and user-data streams as ccxt.pro's ``binance``
parses them (numbers as strings; prices in quote currency (USDT), amounts in base
currency, times in ms UTC on the simulated clock):

* ``kline`` (``<sym>@kline_<tf>``): ``k`` has ``t, T, s, i, f, L, o, c, h, l, v, n, x,
  q, V, Q, B``, the numbers of the REST ``/fapi/v1/klines`` row of the same candle.
* ``markPriceUpdate`` (``<sym>@markPrice``, ``@markPrice@1s``; a list on
  ``!markPrice@arr``): ``p, i, P, r, T`` of REST ``/fapi/v1/premiumIndex``.
* ``ORDER_TRADE_UPDATE``: ``x`` NEW / TRADE / CANCELED / EXPIRED, ``X`` the order status;
  a TRADE carries ``l, L, z, ap, n, N, rp, t, m`` with ``t`` the REST ``userTrades`` id.
* ``ALGO_UPDATE``: a conditional order (``aid``, ``caid``, ``X`` NEW / CANCELED /
  TRIGGERED / FINISHED / EXPIRED, ``ai`` the order a trigger placed).
* ``ACCOUNT_UPDATE``: ``a.m`` ORDER (after each trade: ``B`` the USDT wallet, ``P`` the
  traded symbol's position) or FUNDING_FEE (``B`` only).

:class:`Journal` watches a :class:`~gridflow.fakex.book.Book` (it swaps the book's
``orders``, ``algos``, ``trades`` and funding ``payments`` containers for ones that
report each new entry) and, after each operation, :meth:`Journal.drain` returns the user
events of that operation in exchange-time order (ties: in the order they happened) and
:func:`market_events` the market events of a clock move. Not thread-safe: call under
the exchange's lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gridflow.fakex.book import OPEN, AlgoOrder, Book, Order, Trade
from gridflow.fakex.markets import fmt, fmt_num
from gridflow.fakex.views import mark_json

__all__ = ["USER", "Journal", "Msg", "kline_stream", "known_streams", "mark_streams",
           "market_events"]

USER = "user"  # the stream name of user-data messages
_F8 = 8
_ALGO_OPEN = ("NEW", "TRIGGERED")
_EPS = 1e-12


@dataclass(frozen=True)
class Msg:
    """One websocket message: ``streams`` it belongs to (:data:`USER` for the user-data
    stream, else market stream names such as ``"btcusdt@kline_1h"``), its exchange
    ``time`` (ms) and JSON ``body``."""

    streams: tuple[str, ...]
    time: int
    body: Any


def kline_stream(market_id: str, timeframe: str) -> str:
    return f"{market_id.lower()}@kline_{timeframe}"


def mark_streams(market_id: str) -> tuple[str, str]:
    m = market_id.lower()
    return f"{m}@markPrice", f"{m}@markPrice@1s"


class _Tape(list):
    """A list that reports every ``append``."""

    def __init__(self, items: Any, hook: Any) -> None:
        super().__init__(items)
        self._hook = hook

    def append(self, item: Any) -> None:
        super().append(item)
        self._hook(item)


class _KeyTape(dict):
    """A dict that reports every value stored under a new key."""

    def __init__(self, items: Any, hook: Any) -> None:
        super().__init__(items)
        self._hook = hook

    def __setitem__(self, key: Any, value: Any) -> None:
        new = key not in self
        super().__setitem__(key, value)
        if new:
            self._hook(value)


@dataclass
class _Rec:
    time: int
    body: dict[str, Any]
    wallet_delta: float | None = None  # ACCOUNT_UPDATE: its ``B`` is filled at drain
    balance_change: float = 0.0


class Journal:
    """Turns what happens in ``book`` into user-data events (see the module docstring).

    Parameters
    ----------
    book : Book
        The exchange's book; its containers are replaced by reporting ones now.
    """

    def __init__(self, book: Book) -> None:
        self.book = book
        self._recs: list[_Rec] = []
        self._open: dict[int, str] = {o.order_id: o.status for o in book.orders.values()
                                      if o.status in OPEN}
        self._open_algos: dict[int, str] = {a.algo_id: a.status for a in book.algos.values()
                                            if a.status in _ALGO_OPEN}
        self._wallet = book.wallet
        self._realized: dict[str, float] = {}
        for t in book.trades:
            self._realized[t.symbol] = self._realized.get(t.symbol, 0.0) + t.realized_pnl
        book.orders = _KeyTape(book.orders, self._on_order)
        book.algos = _KeyTape(book.algos, self._on_algo)
        book.trades = _Tape(book.trades, self._on_trade)
        if book.funding is not None:
            book.funding.payments = _Tape(book.funding.payments, self._on_payment)

    # ------------------------------------------------------------- hooks
    def _on_order(self, o: Order) -> None:
        if o.algo_id is not None:
            a = self.book.algos[o.algo_id]
            self._algo(a, "TRIGGERED", o.time, child=o)
            self._open_algos[a.algo_id] = "TRIGGERED"
        self._order(o, "NEW", "NEW", o.time)
        self._open[o.order_id] = "NEW"

    def _on_algo(self, a: AlgoOrder) -> None:
        self._algo(a, "NEW", a.time)
        self._open_algos[a.algo_id] = "NEW"

    def _on_trade(self, t: Trade) -> None:
        book = self.book
        o = book.orders[t.order_id]
        spec = book.specs[t.symbol]
        z = o.executed + t.qty  # the book updates the order after booking the trade
        quote = o.cum_quote + t.qty * t.price
        status = "FILLED" if o.qty - z <= spec.amount_step * 1e-6 else "PARTIALLY_FILLED"
        self._order(o, "TRADE", status, t.time, trade=t, filled=z, avg=quote / z)
        self._open[o.order_id] = status
        self._realized[t.symbol] = self._realized.get(t.symbol, 0.0) + t.realized_pnl
        pos = book.position(t.symbol)
        mark = book.price(t.symbol)
        p = {"s": spec.id, "pa": spec.qty_str(pos.amount), "ep": fmt_num(pos.entry, _F8),
             "bep": fmt_num(pos.entry, _F8), "cr": fmt_num(self._realized[t.symbol], _F8),
             "up": fmt_num(pos.amount * (mark - pos.entry), _F8), "mt": "cross",
             "iw": "0", "ps": "BOTH", "ma": "USDT"}
        self._account(t.time, "ORDER", [p], t.realized_pnl - t.commission, 0.0)

    def _on_payment(self, p: Any) -> None:
        self._account(p.time, "FUNDING_FEE", [], -p.paid, -p.paid)

    # ----------------------------------------------------------- records
    def _order(self, o: Order, x: str, status: str, t: int, trade: Trade | None = None,
               filled: float | None = None, avg: float | None = None) -> None:
        spec = self.book.specs[o.symbol]
        filled = o.executed if filled is None else filled
        avg = o.avg_price if avg is None else avg
        body = {
            "s": spec.id, "c": o.client_id, "S": o.side, "o": o.type, "f": o.tif,
            "q": spec.qty_str(o.qty), "p": spec.price_str(o.price),
            "ap": fmt(avg, spec.price_decimals + 3), "sp": spec.price_str(o.stop_price),
            "x": x, "X": status, "i": o.order_id, "l": "0", "z": spec.qty_str(filled),
            "L": "0", "T": t, "t": 0, "b": "0", "a": "0", "m": False, "R": o.reduce_only,
            "wt": "CONTRACT_PRICE", "ot": o.orig_type or o.type, "ps": "BOTH",
            "cp": o.close_position, "rp": "0", "pP": False, "si": 0, "ss": 0,
            "V": "EXPIRE_MAKER", "pm": "NONE", "gtd": 0,
        }
        if trade is not None:
            body.update({"l": spec.qty_str(trade.qty), "L": spec.price_str(trade.price),
                         "N": "USDT", "n": fmt_num(trade.commission, _F8), "t": trade.id,
                         "m": trade.maker, "rp": fmt_num(trade.realized_pnl, _F8)})
        self._recs.append(_Rec(t, {"e": "ORDER_TRADE_UPDATE", "E": t, "T": t, "o": body}))

    def _algo(self, a: AlgoOrder, status: str, t: int, child: Order | None = None) -> None:
        spec = self.book.specs[a.symbol]
        if child is None and a.actual_order_id is not None:
            child = self.book.orders.get(a.actual_order_id)
        body = {
            "caid": a.client_id, "aid": a.algo_id, "at": "CONDITIONAL", "o": a.type,
            "s": spec.id, "S": a.side, "ps": "BOTH", "f": a.tif, "q": spec.qty_str(a.qty),
            "X": status, "ai": str(child.order_id) if child else "",
            "ap": fmt(child.avg_price if child else 0.0, spec.price_decimals + 3),
            "aq": spec.qty_str(child.executed if child else 0.0),
            "act": child.type if child else "0", "tp": spec.price_str(a.trigger),
            "p": spec.price_str(a.price), "V": "EXPIRE_MAKER", "wt": "CONTRACT_PRICE",
            "pm": "NONE", "cp": a.close_position, "pP": False, "R": a.reduce_only,
            "tt": t if child is not None and status == "TRIGGERED" else a.trigger_time,
            "gtd": 0,
        }
        self._recs.append(_Rec(t, {"e": "ALGO_UPDATE", "E": t, "T": t, "o": body}))

    def _account(self, t: int, reason: str, positions: list[dict[str, Any]], delta: float,
                 balance_change: float) -> None:
        body = {"e": "ACCOUNT_UPDATE", "E": t, "T": t, "a": {"m": reason, "B": [], "P": positions}}
        self._recs.append(_Rec(t, body, wallet_delta=delta, balance_change=balance_change))

    # ------------------------------------------------------------- drain
    def drain(self) -> list[Msg]:
        """User events since the last drain, in exchange-time order. Status changes
        no hook saw (cancels, expiries, an algo order finishing) are dated at the
        order's ``update_time`` and come after what happened at or before it."""
        book = self.book
        for oid, seen in list(self._open.items()):
            o = book.orders[oid]
            if o.status != seen and o.status in ("CANCELED", "EXPIRED"):
                self._order(o, o.status, o.status, o.update_time)
            if o.status in OPEN:
                self._open[oid] = o.status
            else:
                del self._open[oid]
        for aid, seen in list(self._open_algos.items()):
            a = book.algos[aid]
            if a.status != seen and a.status != "TRIGGERED":
                self._algo(a, a.status, a.update_time)
            if a.status in _ALGO_OPEN:
                self._open_algos[aid] = a.status
            else:
                del self._open_algos[aid]
        recs, self._recs = self._recs, []
        recs.sort(key=lambda r: r.time)  # stable: ties keep the order they happened in
        last = max((i for i, r in enumerate(recs) if r.wallet_delta is not None), default=-1)
        out = []
        for i, r in enumerate(recs):
            if r.wallet_delta is not None:
                self._wallet = book.wallet if i == last else self._wallet + r.wallet_delta
                w = fmt_num(self._wallet, _F8)
                r.body["a"]["B"] = [{"a": "USDT", "wb": w, "cw": w,
                                     "bc": fmt_num(r.balance_change, _F8)}]
            out.append(Msg((USER,), r.time, r.body))
        return out


def market_events(book: Book, prev_open: int, prev_now: int, wanted: frozenset[str]
                  ) -> list[Msg]:
    """Market events of a clock move from ``prev_now`` (forming candle open
    ``prev_open``) to the book's clock, for the ``wanted`` streams only: a final kline
    (``x: true``) per candle closed, the forming kline (``x: false``), then the mark
    price of every symbol. ``E`` is the clock now. No move: no events."""
    feed = book.feed
    now = feed.now
    if now == prev_now or not wanted:
        return []
    out: list[Msg] = []
    tf = feed.timeframe
    specs = [(sym, book.specs[sym]) for sym in feed.symbols]
    for ts in range(prev_open, feed.open_ms, feed.tf_ms):
        for sym, spec in specs:
            stream = kline_stream(spec.id, tf)
            if stream in wanted:
                rows = feed.klines(sym, ts, ts, 1)
                if rows:
                    out.append(Msg((stream,), now, _kline(spec.id, tf, rows[0], True, now)))
    for sym, spec in specs:
        stream = kline_stream(spec.id, tf)
        if stream in wanted:
            rows = feed.klines(sym, None, None, 1)
            if rows and rows[0][0] == feed.open_ms:
                out.append(Msg((stream,), now, _kline(spec.id, tf, rows[0], False, now)))
    marks = []
    for _sym, spec in specs:
        m = mark_json(book, spec)
        body = {"e": "markPriceUpdate", "E": now, "s": spec.id, "p": m["markPrice"],
                "i": m["indexPrice"], "P": m["estimatedSettlePrice"],
                "r": m["lastFundingRate"], "T": m["nextFundingTime"]}
        marks.append(body)
        streams = tuple(s for s in mark_streams(spec.id) if s in wanted)
        if streams:
            out.append(Msg(streams, now, body))
    arr = tuple(s for s in ("!markPrice@arr", "!markPrice@arr@1s") if s in wanted)
    if arr:
        out.append(Msg(arr, now, marks))
    return out


def _kline(market_id: str, tf: str, row: list, final: bool, now: int) -> dict[str, Any]:
    t, o, h, lo, c, v, close_t, q, n, vb, qb, _ = row
    return {"e": "kline", "E": now, "s": market_id, "k": {
        "t": t, "T": close_t, "s": market_id, "i": tf, "f": 0, "L": 0, "o": o, "c": c,
        "h": h, "l": lo, "v": v, "n": n, "x": final, "q": q, "V": vb, "Q": qb, "B": "0"}}


def known_streams(book: Book) -> set[str]:
    """Every market stream name the exchange can serve."""
    out = {"!markPrice@arr", "!markPrice@arr@1s"}
    for spec in book.specs.values():
        out.add(kline_stream(spec.id, book.feed.timeframe))
        out.update(mark_streams(spec.id))
    return out
