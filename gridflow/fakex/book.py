"""Account, orders and fills of the fake exchange (one account, one-way mode, cross).

Prices are in quote currency (USDT), amounts in base currency, times in ms UTC (the
simulated clock). Not thread-safe: :class:`~gridflow.fakex.server.FakeExchange` calls
it under its lock.

Accounting: a position is a signed amount and an average entry price. Reducing it
realizes ``closed * (fill - entry) * sign``; the wallet balance moves by realized PnL
minus commission (``fee * price * qty`` in USDT, maker or taker rate) minus funding paid
(:mod:`gridflow.fakex.funding`). Unrealized PnL is taken at the mark (:meth:`Book.price`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gridflow.fakex.feed import Feed
from gridflow.fakex.markets import BinanceError, MarketSpec, on_grid

__all__ = ["OPEN", "AlgoOrder", "Book", "Order", "Trade"]

OPEN = ("NEW", "PARTIALLY_FILLED")
ALGO_TYPES = ("STOP_MARKET", "TAKE_PROFIT_MARKET", "STOP", "TAKE_PROFIT")
_CID_RE = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_EPS = 1e-12


@dataclass
class Order:
    """A regular order. ``price`` is 0 for MARKET; ``orig_type``/``stop_price``/
    ``algo_id`` are set on the MARKET or LIMIT order a triggered algo order placed."""

    order_id: int
    client_id: str
    symbol: str
    side: str
    type: str
    qty: float
    price: float
    tif: str
    reduce_only: bool
    time: int
    update_time: int
    status: str = "NEW"
    executed: float = 0.0
    cum_quote: float = 0.0
    orig_type: str = ""
    stop_price: float = 0.0
    close_position: bool = False
    algo_id: int | None = None

    @property
    def remaining(self) -> float:
        return max(0.0, self.qty - self.executed)

    @property
    def avg_price(self) -> float:
        return self.cum_quote / self.executed if self.executed > 0 else 0.0


@dataclass
class AlgoOrder:
    """A conditional order of the algo API (``algoType=CONDITIONAL``). Statuses: NEW,
    CANCELED, TRIGGERED (its order rests), FINISHED (its order filled), EXPIRED (its
    reduce-only order found no position)."""

    algo_id: int
    client_id: str
    symbol: str
    side: str
    type: str
    qty: float
    trigger: float
    price: float
    tif: str
    reduce_only: bool
    close_position: bool
    time: int
    update_time: int
    status: str = "NEW"
    trigger_time: int = 0
    actual_order_id: int | None = None


@dataclass
class Trade:
    """A fill: ``price`` in quote, ``qty`` in base, ``commission`` in
    ``commission_asset``, ``time`` in ms UTC."""

    id: int
    order_id: int
    client_id: str
    symbol: str
    side: str
    price: float
    qty: float
    commission: float
    realized_pnl: float
    time: int
    maker: bool
    commission_asset: str = "USDT"  # spot: the asset received (base for a buy)


@dataclass
class _Position:
    amount: float = 0.0
    entry: float = 0.0
    update_time: int = 0


@dataclass
class Book:
    """Orders, positions and wallet.

    ``partial`` decides whether a fill is partial (fault injection); ``mark`` holds the
    price the matcher is at while it walks a candle (else the feed's path price at the
    clock is used); ``walks`` the matcher's state in the forming candle
    (:class:`gridflow.fakex.matching.Walk` per symbol); ``funding`` the settlement
    schedule and payments (:class:`gridflow.fakex.funding.Funding`, or None).
    """

    feed: Feed
    specs: dict[str, MarketSpec]
    wallet: float
    maker_fee: float
    taker_fee: float
    stop_slippage: float
    leverage: float
    partial: Callable[[str, str], bool] = lambda cid, mid: False
    orders: dict[int, Order] = field(default_factory=dict)
    algos: dict[int, AlgoOrder] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)
    positions: dict[str, _Position] = field(default_factory=dict)
    accepted: Counter = field(default_factory=Counter)
    leverages: dict[str, int] = field(default_factory=dict)
    margin_types: dict[str, str] = field(default_factory=dict)  # sym -> ISOLATED / CROSSED
    mark: dict[str, float] = field(default_factory=dict)
    walks: dict[str, Any] = field(default_factory=dict)
    funding: Any = None
    _by_cid: dict[str, int] = field(default_factory=dict)
    _algo_by_cid: dict[str, int] = field(default_factory=dict)
    _used_cids: set[str] = field(default_factory=set)
    _maybe_open: dict[int, None] = field(default_factory=dict)  # ids, pruned when read
    _maybe_waiting: dict[int, None] = field(default_factory=dict)
    _next_order: int = 1_000_001
    _next_algo: int = 5_000_001
    _next_trade: int = 1
    _auto: int = 0

    # ---------------------------------------------------------------- helpers
    def spec_by_id(self, market_id: str | None) -> MarketSpec:
        for s in self.specs.values():
            if s.id == market_id:
                return s
        raise BinanceError(-1121, "Invalid symbol.")

    def price(self, sym: str) -> float:
        return self.mark.get(sym, self.feed.price(sym))

    def position(self, sym: str) -> _Position:
        return self.positions.setdefault(sym, _Position())

    def lev(self, sym: str) -> float:
        return float(self.leverages.get(sym, self.leverage))

    def unrealized(self) -> float:
        return sum(p.amount * (self.price(s) - p.entry) for s, p in self.positions.items())

    def position_margin(self) -> float:
        return sum(abs(p.amount) * self.price(s) / self.lev(s) for s, p in self.positions.items())

    def order_margin(self) -> float:
        return sum(o.remaining * (o.price or self.price(o.symbol)) / self.lev(o.symbol)
                   for o in self.open_orders() if not o.reduce_only and o.algo_id is None)

    def open_orders(self, sym: str | None = None) -> list[Order]:
        """Resting orders (``NEW`` / ``PARTIALLY_FILLED``), of ``sym`` or all, by id.

        Without walking the orders that are done: a filled, cancelled or expired order
        never rests again, so the ids of orders that once rested are kept in creation
        (= id) order and those found done are dropped for good."""
        return self._live(self._maybe_open, self.orders, OPEN, sym)

    def open_algos(self, sym: str | None = None) -> list[AlgoOrder]:
        """Conditional orders waiting for their trigger (``NEW``), of ``sym`` or all,
        by id (as :meth:`open_orders`)."""
        return self._live(self._maybe_waiting, self.algos, ("NEW",), sym)

    @staticmethod
    def _live(maybe: dict[int, None], rows: dict, statuses: tuple[str, ...],
              sym: str | None) -> list:
        out, done = [], []
        for i in maybe:
            x = rows.get(i)
            if x is None or x.status not in statuses:
                done.append(i)
            elif sym is None or x.symbol == sym:
                out.append(x)
        for i in done:
            del maybe[i]
        return out

    def _check_cid(self, cid: str | None) -> str:
        if cid is None or cid == "":
            self._auto += 1
            cid = f"fakex{self._auto:010d}"
        if not _CID_RE.match(cid):
            raise BinanceError(-4015, "Client order id is not valid.")
        if cid in self._used_cids:
            raise BinanceError(-4116, "ClientOrderId is duplicated.")
        return cid

    @staticmethod
    def _check_qty(spec: MarketSpec, qty: float, market: bool) -> None:
        if qty <= 0:
            raise BinanceError(-4003, "Quantity less than or equal to zero.")
        lot = "MARKET_LOT_SIZE" if market else "LOT_SIZE"
        if qty < spec.min_amount * (1 - 1e-9) or not on_grid(qty, spec.amount_step):
            raise BinanceError(-1013, f"Filter failure: {lot}")

    @staticmethod
    def _check_price(spec: MarketSpec, price: float) -> None:
        if price <= 0:
            raise BinanceError(-4001, "Price less than 0.")
        if price < spec.price_tick * (1 - 1e-9) or not on_grid(price, spec.price_tick):
            raise BinanceError(-1013, "Filter failure: PRICE_FILTER")

    def _min_notional(self, spec: MarketSpec, notional: float) -> None:
        if notional < spec.min_notional * (1 - 1e-9):
            raise BinanceError(-4164, f"Order's notional must be no smaller than "
                                      f"{spec.min_notional:g} (unless you choose reduce only).")

    def find_order(self, sym: str, order_id: str | None, cid: str | None, code: int) -> Order:
        """By exchange id or client id; ``code`` -2011 (cancel) or -2013 (query)."""
        oid = self._by_cid.get(cid) if cid else _int_or_none(order_id)
        o = self.orders.get(oid) if oid is not None else None
        if o is None or o.symbol != sym:
            raise BinanceError(code, "Unknown order sent." if code == -2011
                               else "Order does not exist.")
        return o

    def find_algo(self, sym: str | None, algo_id: str | None, cid: str | None,
                  code: int) -> AlgoOrder:
        aid = self._algo_by_cid.get(cid) if cid else _int_or_none(algo_id)
        a = self.algos.get(aid) if aid is not None else None
        if a is None or (sym is not None and a.symbol != sym):
            raise BinanceError(code, "Unknown order sent." if code == -2011
                               else "Order does not exist.")
        return a

    # -------------------------------------------------------------- placement
    def _closed_ahead(self, sym: str, side: str, price: float) -> float:
        """Base that resting reduce-only limits of ``side`` at ``price`` or better (for a
        sell: at or below it) close before a new one at ``price`` would fill."""
        return sum(o.remaining for o in self.open_orders(sym)
                   if o.side == side and o.reduce_only and o.type == "LIMIT"
                   and o.algo_id is None
                   and (o.price <= price + 1e-12 if side == "SELL" else o.price >= price - 1e-12))

    def place(self, spec: MarketSpec, side: str, typ: str, qty: float, price: float | None,
              tif: str, reduce_only: bool, cid: str | None) -> Order:
        """A new LIMIT or MARKET order: validated, accepted, filled at once if marketable.

        A limit buy at or above the current price (sell at or below) and a market order
        fill immediately as taker at the current price (open of the forming candle).

        Raises
        ------
        BinanceError
            -4015/-4116 client id, -4003/-1013 filters, -4164 notional, -2022 reduce-only
            without a position to reduce, -5022 post-only that would take, -2019 margin.
        """
        sym = spec.symbol
        cid = self._check_cid(cid)
        market = typ == "MARKET"
        self._check_qty(spec, qty, market)
        if not market:
            self._check_price(spec, float(price))
        cur = self.price(sym)
        ref = cur if market else float(price)
        pos = self.position(sym).amount
        if reduce_only:
            if not ((side == "SELL" and pos > _EPS) or (side == "BUY" and pos < -_EPS)):
                raise BinanceError(-2022, "ReduceOnly Order is rejected.")
            if not market and self._closed_ahead(sym, side, float(price)) >= abs(pos) - _EPS:
                # Binance refuses a reduce-only limit that resting reduce-only limits
                # filling before it (a better or equal price) would find already closed
                raise BinanceError(-2022, "ReduceOnly Order is rejected.")
        else:
            self._min_notional(spec, qty * ref)
        crosses = market or (side == "BUY" and ref >= cur) or (side == "SELL" and ref <= cur)
        if tif == "GTX" and crosses:
            raise BinanceError(-5022, "Due to the order could not be executed as maker, "
                                      "the Post Only order will be rejected.")
        if not reduce_only:
            need = self.position_margin() + self.order_margin() + qty * ref / self.lev(sym)
            if need > self.wallet + self.unrealized() + 1e-9:
                raise BinanceError(-2019, "Margin is insufficient.")
        now = self.feed.now
        o = Order(self._next_order, cid, sym, side, typ, qty, 0.0 if market else float(price),
                  "GTC" if market else tif, reduce_only, now, now)
        self._next_order += 1
        self._accept(o)
        if crosses:
            self.fill(o, cur, now, maker=False, allow_partial=tif != "FOK")
            if tif in ("IOC", "FOK") and o.status in OPEN:
                o.status = "EXPIRED"
        elif tif in ("IOC", "FOK"):
            o.status = "EXPIRED"
        return o

    def _accept(self, o: Order) -> None:
        self.orders[o.order_id] = o
        self._maybe_open[o.order_id] = None
        self._by_cid[o.client_id] = o.order_id
        self._used_cids.add(o.client_id)
        self.accepted[o.client_id] += 1

    def place_algo(self, spec: MarketSpec, side: str, typ: str, qty: float | None,
                   trigger: float, price: float | None, tif: str, reduce_only: bool,
                   close_position: bool, cid: str | None) -> AlgoOrder:
        """A conditional order. STOP* triggers when the price reaches ``trigger`` going
        up for a buy, down for a sell; TAKE_PROFIT* the other way round.

        Raises
        ------
        BinanceError
            As :meth:`place`, and -2021 if the trigger is already crossed.
        """
        sym = spec.symbol
        cid = self._check_cid(cid)
        if not close_position:
            self._check_qty(spec, float(qty or 0.0), typ.endswith("MARKET"))
        self._check_price(spec, trigger)
        if price is not None:
            self._check_price(spec, price)
        if self.would_trigger(typ, side, trigger, self.price(sym)):
            raise BinanceError(-2021, "Order would immediately trigger.")
        if not (reduce_only or close_position):
            self._min_notional(spec, float(qty) * trigger)
        now = self.feed.now
        a = AlgoOrder(self._next_algo, cid, sym, side, typ, float(qty or 0.0), trigger,
                      float(price or 0.0), tif, reduce_only or close_position, close_position,
                      now, now)
        self._next_algo += 1
        self.algos[a.algo_id] = a
        self._maybe_waiting[a.algo_id] = None
        self._algo_by_cid[cid] = a.algo_id
        self._used_cids.add(cid)
        self.accepted[cid] += 1
        return a

    @staticmethod
    def would_trigger(typ: str, side: str, trigger: float, px: float) -> bool:
        """True if an algo order of this kind triggers at price ``px``."""
        up = (typ.startswith("STOP") and side == "BUY") or (
            typ.startswith("TAKE_PROFIT") and side == "SELL")
        return px >= trigger if up else px <= trigger

    def cancel(self, o: Order) -> None:
        if o.status not in OPEN:
            raise BinanceError(-2011, "Unknown order sent.")
        o.status = "CANCELED"
        o.update_time = self.feed.now
        self._sync_algo(o)

    def cancel_algo(self, a: AlgoOrder) -> None:
        if a.status != "NEW":
            raise BinanceError(-2011, "Unknown order sent.")
        a.status = "CANCELED"
        a.update_time = self.feed.now

    # ------------------------------------------------------------------ fills
    def trigger(self, a: AlgoOrder, px: float, t: int) -> Order:
        """Trigger ``a`` at price ``px``: it places a MARKET order (STOP_MARKET,
        TAKE_PROFIT_MARKET), filled at ``px`` moved by ``stop_slippage`` against the
        trader, or a LIMIT order (STOP, TAKE_PROFIT) at its price. That order carries
        the algo order's ``clientAlgoId`` as its ``clientOrderId``."""
        pos = self.position(a.symbol).amount
        qty = abs(pos) if a.close_position else a.qty
        market = a.type.endswith("MARKET")
        o = self._triggered_order(a, qty, market, t)
        self.orders[o.order_id] = o
        self._maybe_open[o.order_id] = None
        self._by_cid[o.client_id] = o.order_id
        a.status, a.trigger_time, a.update_time = "TRIGGERED", t, t
        a.actual_order_id = o.order_id
        if qty <= _EPS:
            o.status = "EXPIRED"
        elif market:
            spec = self.specs[a.symbol]
            slip = self.stop_slippage if a.side == "SELL" else -self.stop_slippage
            self.fill(o, spec.round_price(px * (1 - slip)), t, maker=False)
        elif (a.side == "BUY" and a.price >= px) or (a.side == "SELL" and a.price <= px):
            self.fill(o, px, t, maker=False)
        self._sync_algo(o)
        return o

    def _triggered_order(self, a: AlgoOrder, qty: float, market: bool, t: int) -> Order:
        """The MARKET / LIMIT order ``a`` places when it triggers at ``t``: a new id
        (the spot book keeps the stop's id instead)."""
        o = Order(self._next_order, a.client_id, a.symbol, a.side,
                  "MARKET" if market else "LIMIT", qty, 0.0 if market else a.price,
                  "GTC" if market else a.tif, a.reduce_only, t, t, orig_type=a.type,
                  stop_price=a.trigger, close_position=a.close_position, algo_id=a.algo_id)
        self._next_order += 1
        return o

    def _sync_algo(self, o: Order) -> None:
        if o.algo_id is None or o.status in OPEN:
            return
        a = self.algos[o.algo_id]
        a.status = "EXPIRED" if o.executed <= _EPS and o.status == "EXPIRED" else "FINISHED"
        a.update_time = o.update_time

    def fill(self, o: Order, px: float, t: int, maker: bool, allow_partial: bool = True) -> None:
        """Fill what remains of ``o`` at ``px`` (or half of it, on a partial-fill
        fault). A reduce-only order is capped at the position and EXPIRED once the
        position is flat."""
        spec = self.specs[o.symbol]
        px = spec.round_price(px)
        qty = o.remaining
        if allow_partial and qty > spec.amount_step * 1.5 and self.partial(o.client_id, spec.id):
            qty = max(spec.amount_step, spec.floor_qty(qty / 2))
        pos = self.position(o.symbol)
        if o.reduce_only:
            room = pos.amount if o.side == "SELL" else -pos.amount
            qty = min(qty, spec.floor_qty(max(0.0, room)) if room > _EPS else 0.0)
            if qty <= _EPS:
                o.status, o.update_time = "EXPIRED", t
                self._sync_algo(o)
                return
        self._book_trade(o, spec, qty, px, t, maker)
        o.executed = round(o.executed + qty, spec.amount_decimals + 4)
        o.cum_quote += qty * px
        o.update_time = t
        if o.remaining <= spec.amount_step * 1e-6:
            o.status = "FILLED"
        elif o.reduce_only and abs(pos.amount) <= _EPS:
            o.status = "EXPIRED"
        else:
            o.status = "PARTIALLY_FILLED"
        self._sync_algo(o)

    def _book_trade(self, o: Order, spec: MarketSpec, qty: float, px: float, t: int,
                    maker: bool) -> None:
        pos = self.position(o.symbol)
        signed = qty if o.side == "BUY" else -qty
        pnl = 0.0
        if pos.amount == 0 or (pos.amount > 0) == (signed > 0):
            total = abs(pos.amount) + qty
            pos.entry = (abs(pos.amount) * pos.entry + qty * px) / total
        else:
            closed = min(qty, abs(pos.amount))
            pnl = closed * (px - pos.entry) * (1.0 if pos.amount > 0 else -1.0)
            if qty > abs(pos.amount) + _EPS:
                pos.entry = px
        pos.amount = round(pos.amount + signed, spec.amount_decimals + 4)
        if abs(pos.amount) <= _EPS:
            pos.amount, pos.entry = 0.0, 0.0
        pos.update_time = t
        fee = qty * px * (self.maker_fee if maker else self.taker_fee)
        self.wallet += pnl - fee
        self.trades.append(Trade(self._next_trade, o.order_id, o.client_id, o.symbol, o.side,
                                 px, qty, fee, pnl, t, maker))
        self._next_trade += 1


def _int_or_none(s: str | None) -> int | None:
    try:
        return int(s) if s not in (None, "") else None
    except ValueError:
        raise BinanceError(-1100, "Illegal characters found in a parameter.") from None
