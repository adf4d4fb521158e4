"""A Binance spot account on the fake exchange's book: balances, locking, fees in kind.

:class:`SpotBook` is the shared :class:`~gridflow.fakex.book.Book` (orders, fills, the
matching engine's hooks) with a wallet per asset instead of margin and positions.
Prices are in quote (USDT), amounts in base, times in ms UTC; balances, locks and
commissions are kept to 8 decimals, as Binance keeps them.

Balances: every asset has ``free`` and ``locked``. A resting buy locks ``price * qty``
quote; a sell of any type (stop-limits included, before and after their trigger) locks
``qty`` base. A fill releases the lock of what it fills and moves the balances: a BUY
pays ``qty * fill_price`` quote and receives ``qty - commission`` base (commission
``qty * rate`` in base), a SELL pays ``qty`` base and receives ``qty * fill_price -
commission`` quote (commission in quote), as Binance charges without BNB. A cancelled or
expired order releases what it still locks. MARKET orders do not rest: they lock
nothing, fill at once (a remainder a partial-fill fault leaves is EXPIRED). No leverage,
no shorts, no funding.

Stop-limits: a ``STOP_LOSS_LIMIT`` / ``TAKE_PROFIT_LIMIT`` order waits as a conditional
order of the book (:class:`~gridflow.fakex.book.AlgoOrder`, ``isWorking`` false) under
its own order id. When the path reaches its trigger (:mod:`gridflow.fakex.matching`) it
becomes a LIMIT order at its price with the same id and client id (``isWorking`` true),
and fills on the path like any limit: at once as taker if its price is marketable at the
trigger, else resting. A candle that opens beyond both the trigger and the limit (a gap)
triggers it at the open and leaves it resting unfilled until the price comes back to
its limit.

``positions`` holds, per symbol, the base held (free + locked) minus the initial base
balance (negative once more than was bought is sold) and the average fill price of that
net amount, so the exchange's ``positions()`` compares runs; ``wallet`` is the quote
balance (free + locked).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gridflow.fakex.book import OPEN, AlgoOrder, Book, Order, Trade
from gridflow.fakex.markets import BinanceError, MarketSpec, on_grid
from gridflow.fakex.spot_markets import SpotRules, spot_rules

__all__ = ["INSUFFICIENT", "SPOT_TYPES", "STOP_TYPES", "SpotBook", "SpotOrder", "kind",
           "order_id"]

STOP_TYPES = ("STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
SPOT_TYPES = ("LIMIT", "MARKET", "LIMIT_MAKER", *STOP_TYPES)
INSUFFICIENT = "Account has insufficient balance for requested action."
QUOTE = "USDT"
_CID_RE = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_TOL = 1e-9

SpotOrder = Order | AlgoOrder
"""A spot order: an :class:`Order` (working) or a stop-limit waiting for its trigger."""


def q8(x: float) -> float:
    """``x`` to 8 decimals (Binance's balance and commission precision)."""
    return round(x, 8)


def order_id(x: SpotOrder) -> int:
    """The Binance ``orderId`` of a spot order (a waiting stop's is its algo id)."""
    return x.algo_id if isinstance(x, AlgoOrder) else x.order_id


def kind(x: SpotOrder) -> str:
    """The Binance order ``type`` (``LIMIT_MAKER``, ``STOP_LOSS_LIMIT`` ... kept after
    the order is working)."""
    return x.type if isinstance(x, AlgoOrder) else (x.orig_type or x.type)


def _fail(name: str) -> BinanceError:
    return BinanceError(-1013, f"Filter failure: {name}")


@dataclass
class SpotBook(Book):
    """The book of a spot account (see the module docstring).

    ``wallet`` (a :class:`Book` field) starts as the quote balance; ``initial_base``
    gives the starting base balances (asset -> amount, e.g. ``{"BTC": 0.5}``).

    Raises
    ------
    ValueError
        ``initial_base`` names an asset no symbol trades, or a negative amount.
    """

    initial_base: dict[str, float] = field(default_factory=dict)
    free: dict[str, float] = field(default_factory=dict)
    locked: dict[str, float] = field(default_factory=dict)
    locks: dict[int, float] = field(default_factory=dict)  # order id -> amount locked
    quote_qty: dict[int, float] = field(default_factory=dict)  # MARKET quoteOrderQty
    rules: dict[str, SpotRules] = field(default_factory=dict)
    _cids: dict[tuple[str, str], int] = field(default_factory=dict)  # (sym, cid) -> id

    def __post_init__(self) -> None:
        bases = {s.base for s in self.specs.values()}
        bad = {a for a, v in self.initial_base.items() if a not in bases or v < 0}
        if bad:
            raise ValueError(f"spot balances must be >= 0 and of traded bases {sorted(bases)}, "
                             f"got {sorted(bad)}")
        for asset in sorted(bases | {QUOTE}):
            self.free[asset] = q8(float(self.initial_base.get(asset, 0.0)))
            self.locked[asset] = 0.0
        self.free[QUOTE] = q8(self.wallet)
        self.rules = {sym: spot_rules(spec) for sym, spec in self.specs.items()}

    # -------------------------------------------------------------- balances
    def total(self, asset: str) -> float:
        return q8(self.free[asset] + self.locked[asset])

    def balance_table(self) -> dict[str, dict[str, float]]:
        """Asset -> ``free``, ``locked``, ``total``."""
        return {a: {"free": self.free[a], "locked": self.locked[a], "total": self.total(a)}
                for a in self.free}

    def unrealized(self) -> float:
        """Spot: the base held (free + locked) valued at the current prices (quote), so
        ``wallet + unrealized()`` is the account's value."""
        return sum(self.total(s.base) * self.price(sym) for sym, s in self.specs.items())

    def _move(self, asset: str, free: float = 0.0, locked: float = 0.0) -> None:
        self.free[asset] = q8(self.free[asset] + free)
        self.locked[asset] = q8(self.locked[asset] + locked)
        if asset == QUOTE:
            self.wallet = self.total(QUOTE)

    def _asset(self, x: SpotOrder) -> str:
        spec = self.specs[x.symbol]
        return spec.quote if x.side == "BUY" else spec.base

    def _need(self, asset: str, amount: float) -> None:
        if amount > self.free[asset] + _TOL:
            raise BinanceError(-2010, INSUFFICIENT)

    def _lock(self, x: SpotOrder, amount: float) -> None:
        self._move(self._asset(x), -amount, amount)
        self.locks[order_id(x)] = amount

    def _unlock(self, x: SpotOrder, amount: float | None = None) -> None:
        """Release ``amount`` (all if None) of what ``x`` locks."""
        oid = order_id(x)
        held = self.locks.get(oid, 0.0)
        amt = held if amount is None else min(amount, held)
        self._move(self._asset(x), amt, -amt)
        rest = q8(held - amt)
        if amount is None or rest <= 0:
            self.locks.pop(oid, None)
        else:
            self.locks[oid] = rest

    # ------------------------------------------------------------- look-ups
    def open_spot(self, sym: str | None = None) -> list[SpotOrder]:
        """Open orders (working ones and stops waiting for their trigger), by id."""
        return sorted(self.open_orders(sym) + self.open_algos(sym), key=order_id)

    def all_spot(self, sym: str) -> list[SpotOrder]:
        """Every order of ``sym``, by id (a triggered stop as the order it became)."""
        rows = [o for o in self.orders.values() if o.symbol == sym]
        rows += [a for a in self.algos.values() if a.symbol == sym and a.actual_order_id is None]
        return sorted(rows, key=order_id)

    def find_spot(self, sym: str, oid: int | None, cid: str | None, code: int) -> SpotOrder:
        """By order id or client id; ``code`` -2011 (cancel) or -2013 (query)."""
        if cid:
            oid = self._cids.get((sym, cid))
        x = (self.orders.get(oid) or self.algos.get(oid)) if oid is not None else None
        if x is None or x.symbol != sym:
            raise BinanceError(code, "Unknown order sent." if code == -2011
                               else "Order does not exist.")
        return x

    def _is_open(self, oid: int) -> bool:
        o = self.orders.get(oid)
        if o is not None:
            return o.status in OPEN
        a = self.algos.get(oid)
        return a is not None and a.status == "NEW"

    def _spot_cid(self, sym: str, cid: str | None) -> str:
        if not cid:
            self._auto += 1
            return f"fakex{self._auto:010d}"
        if not _CID_RE.match(cid):
            raise BinanceError(-1100, "Illegal characters found in parameter "
                                      "'newClientOrderId'; legal range is "
                                      "'^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.")
        oid = self._cids.get((sym, cid))
        if oid is not None and self._is_open(oid):
            raise BinanceError(-2010, "Duplicate order sent.")
        return cid

    # --------------------------------------------------------------- filters
    @staticmethod
    def _lot(spec: MarketSpec, r: SpotRules, qty: float, market: bool) -> None:
        if qty <= 0:
            raise BinanceError(-1013, "Invalid quantity.")
        if qty < spec.min_amount * (1 - _TOL) or qty > r.max_qty * (1 + _TOL) \
                or not on_grid(qty, spec.amount_step):
            raise _fail("LOT_SIZE")
        if market and qty > r.market_max_qty * (1 + _TOL):
            raise _fail("MARKET_LOT_SIZE")

    @staticmethod
    def _price_ok(spec: MarketSpec, r: SpotRules, price: float) -> None:
        if price <= 0:
            raise BinanceError(-1013, "Invalid price.")
        if price < spec.price_tick * (1 - _TOL) or price > r.max_price * (1 + _TOL) \
                or not on_grid(price, spec.price_tick):
            raise _fail("PRICE_FILTER")

    @staticmethod
    def _percent(r: SpotRules, side: str, price: float, cur: float) -> None:
        up, down = (r.bid_up, r.bid_down) if side == "BUY" else (r.ask_up, r.ask_down)
        if not cur * down <= price <= cur * up:
            raise _fail("PERCENT_PRICE_BY_SIDE")

    @staticmethod
    def _notional(spec: MarketSpec, r: SpotRules, notional: float, market: bool) -> None:
        if notional < spec.min_notional * (1 - _TOL) or (
                not market and notional > r.max_notional * (1 + _TOL)):
            raise _fail("NOTIONAL")

    def _counts(self, sym: str, r: SpotRules, typ: str) -> None:
        live = self.open_spot(sym)
        if len(live) >= r.max_orders:
            raise _fail("MAX_NUM_ORDERS")
        if typ in STOP_TYPES and sum(kind(x) in STOP_TYPES for x in live) >= r.max_algo_orders:
            raise _fail("MAX_NUM_ALGO_ORDERS")

    # ------------------------------------------------------------- placement
    def place_spot(self, spec: MarketSpec, side: str, typ: str, qty: float | None,
                   price: float | None, stop: float | None, tif: str, cid: str | None,
                   quote_qty: float | None = None) -> SpotOrder:
        """A new spot order (``typ`` in :data:`SPOT_TYPES`), checked as Binance checks
        it, accepted, its balance locked and filled at once if marketable.

        ``qty`` in base (MARKET: or ``quote_qty`` in quote, spent at the current price,
        amount rounded down to the step); ``price`` the limit, ``stop`` the trigger of a
        stop-limit (quote); ``tif`` GTC / IOC / FOK (ignored for MARKET, LIMIT_MAKER).

        Raises
        ------
        BinanceError
            -1100 bad client id; -2010 "Duplicate order sent." (the client id of an open
            order of the symbol); -1013 invalid quantity / price and filter failures
            (LOT_SIZE, MARKET_LOT_SIZE, PRICE_FILTER, PERCENT_PRICE_BY_SIDE, NOTIONAL,
            MAX_NUM_ORDERS, MAX_NUM_ALGO_ORDERS); -2010 "Order would immediately match
            and take." (LIMIT_MAKER), "Order would trigger immediately." (a stop-limit
            whose trigger the price has already reached) and "Account has insufficient
            balance for requested action.".
        """
        sym, r = spec.symbol, self.rules[spec.symbol]
        cid = self._spot_cid(sym, cid)
        cur = spec.round_price(self.price(sym))
        market = typ == "MARKET"
        if market and quote_qty is not None:
            self._notional(spec, r, quote_qty, True)
            qty = spec.floor_qty(quote_qty / cur)
        self._lot(spec, r, float(qty or 0.0), market)
        if not market:
            self._price_ok(spec, r, float(price))
            self._percent(r, side, float(price), cur)
        if stop is not None:
            self._price_ok(spec, r, stop)
        if not (market and quote_qty is not None):
            self._notional(spec, r, qty * (cur if market else price), market)
        self._counts(sym, r, typ)
        crosses = market or (side == "BUY" and price >= cur) or (side == "SELL" and price <= cur)
        if typ == "LIMIT_MAKER" and crosses:
            raise BinanceError(-2010, "Order would immediately match and take.")
        if typ in STOP_TYPES and self.would_trigger(typ, side, stop, self.price(sym)):
            raise BinanceError(-2010, "Order would trigger immediately.")
        if market:
            return self._market(spec, side, qty, cur, cid, quote_qty)
        amount = q8(price * qty) if side == "BUY" else qty
        self._need(spec.quote if side == "BUY" else spec.base, amount)
        now = self.feed.now
        if typ in STOP_TYPES:
            x: SpotOrder = AlgoOrder(self._next_order, cid, sym, side, typ, qty, stop, price,
                                     tif, False, False, now, now)
            self.algos[x.algo_id] = x
            self._maybe_waiting[x.algo_id] = None
            self.accepted[cid] += 1
        else:
            x = Order(self._next_order, cid, sym, side, "LIMIT", qty, price,
                      "GTC" if typ == "LIMIT_MAKER" else tif, False, now, now,
                      orig_type="" if typ == "LIMIT" else typ)
            self._accept(x)
        self._next_order += 1
        self._cids[(sym, cid)] = order_id(x)
        self._lock(x, amount)
        if isinstance(x, Order):
            if crosses:
                self.fill(x, cur, now, maker=False, allow_partial=tif != "FOK")
            self._expire_rest(x, tif, now)
        return x

    def _market(self, spec: MarketSpec, side: str, qty: float, cur: float, cid: str,
                quote_qty: float | None) -> Order:
        if side == "BUY":
            self._need(spec.quote, q8(qty * cur))
        else:
            self._need(spec.base, qty)
        now = self.feed.now
        o = Order(self._next_order, cid, spec.symbol, side, "MARKET", qty, 0.0, "GTC", False,
                  now, now)
        self._next_order += 1
        self._accept(o)
        self._cids[(spec.symbol, cid)] = o.order_id
        if quote_qty is not None:
            self.quote_qty[o.order_id] = quote_qty
        self.fill(o, cur, now, maker=False)
        self._expire_rest(o, "IOC", now)
        return o

    def _expire_rest(self, o: Order, tif: str, t: int) -> None:
        """An IOC / FOK order (and a MARKET one) does not rest: what is left expires."""
        if tif in ("IOC", "FOK") and o.status in OPEN:
            o.status, o.update_time = "EXPIRED", t
            self._unlock(o)
            self._sync_algo(o)

    # ----------------------------------------------------- book overrides
    def cancel(self, o: Order) -> None:
        super().cancel(o)
        self._unlock(o)

    def cancel_algo(self, a: AlgoOrder) -> None:
        super().cancel_algo(a)
        self._unlock(a)

    def cancel_spot(self, x: SpotOrder) -> None:
        """Cancel an open order or a waiting stop (-2011 if it is done)."""
        if isinstance(x, AlgoOrder):
            self.cancel_algo(x)
        else:
            self.cancel(x)

    def _triggered_order(self, a: AlgoOrder, qty: float, market: bool, t: int) -> Order:
        """A triggered stop-limit is the same order working: its id, client id and
        creation time, a LIMIT at its price."""
        return Order(a.algo_id, a.client_id, a.symbol, a.side, "LIMIT", qty, a.price, a.tif,
                     False, a.time, t, orig_type=a.type, stop_price=a.trigger,
                     algo_id=a.algo_id)

    def trigger(self, a: AlgoOrder, px: float, t: int) -> Order:
        o = super().trigger(a, px, t)
        self._expire_rest(o, o.tif, t)
        return o

    def fill(self, o: Order, px: float, t: int, maker: bool, allow_partial: bool = True) -> None:
        super().fill(o, px, t, maker, allow_partial)
        if o.status not in OPEN:
            self._unlock(o)

    def _book_trade(self, o: Order, spec: MarketSpec, qty: float, px: float, t: int,
                    maker: bool) -> None:
        """Spot fill of ``qty`` at ``px``: release its lock, pay, receive net of the
        commission (base for a BUY, quote for a SELL)."""
        rate = self.maker_fee if maker else self.taker_fee
        cost = q8(qty * px)
        if o.order_id in self.locks:
            self._unlock(o, q8(qty * o.price) if o.side == "BUY" else qty)
        if o.side == "BUY":
            fee, asset = q8(qty * rate), spec.base
            self._move(spec.quote, free=-cost)
            self._move(spec.base, free=qty - fee)
        else:
            fee, asset = q8(cost * rate), spec.quote
            self._move(spec.base, free=-qty)
            self._move(spec.quote, free=cost - fee)
        self._track(spec, px, t)
        self.trades.append(Trade(self._next_trade, o.order_id, o.client_id, o.symbol, o.side,
                                 px, qty, fee, 0.0, t, maker, commission_asset=asset))
        self._next_trade += 1

    def _track(self, spec: MarketSpec, px: float, t: int) -> None:
        """``positions[sym]``: base held minus the initial base, and the average fill
        price of that net amount (weighted while it grows, kept while it shrinks)."""
        pos = self.position(spec.symbol)
        a0, a1 = pos.amount, q8(self.total(spec.base) - self.initial_base.get(spec.base, 0.0))
        if a1 == 0:
            pos.entry = 0.0
        elif a0 == 0 or (a0 > 0) != (a1 > 0):
            pos.entry = px
        elif abs(a1) > abs(a0):
            pos.entry = (abs(a0) * pos.entry + (abs(a1) - abs(a0)) * px) / abs(a1)
        pos.amount, pos.update_time = a1, t
