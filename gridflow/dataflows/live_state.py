"""Live Bytewax source of one account's exchange state: fills, open orders, positions.

:class:`ExchangeStateSource` has one partition (the account) that polls every
``poll_s`` wall seconds and emits one :class:`~gridflow.chunks.ExchangeUpdate` per
cycle:

1. ``server_ms = fetch_time()`` first: it is the update's watermark (every fill
   stamped before it is in this or an earlier update). When it fails the cycle emits
   nothing.
2. Per symbol, ``fetch_my_trades`` from the symbol's time cursor up to ``server_ms``
   (windows of at most 7 days and 1000 trades). Trades are deduplicated by id; the
   client order id is resolved with ``fetch_order`` once per order id (bounded LRU).
3. ``fetch_open_orders`` of every symbol, regular and conditional (``trigger``:
   Binance USDT-M algo orders), then ``fetch_positions`` and ``fetch_balance`` (spot:
   one ``fetch_balance``, whose base balances stand for positions).

A failing part is reported in ``errors`` (ccxt class and redacted message) and left
None; the trade cursor of a symbol only advances when its fetch fully succeeded, so
nothing is lost.

Cursor and deduplication: after a good fetch the cursor of a symbol moves to
``server_ms - trade_overlap_ms`` (never back); the ids of reported trades stamped at or
after the cursor are kept, so the overlap finds them again without reporting them
twice. Both are in the resume state, with the order cache.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import ccxt
from bytewax.inputs import StatefulSourcePartition

from gridflow.chunks import ExchangeUpdate
from gridflow.dataflows.account_balances import contract_balance, contract_positions, spot_balance
from gridflow.dataflows.exchange_records import as_float, id_key, order_dict
from gridflow.dataflows.live_sources import _utcnow, backoff_s, describe_error
from gridflow.exchange.paging import read_window
from gridflow.exchange.retry import backoff_cap_s
from gridflow.exchange.venue import capabilities
from gridflow.events import ExecutionReport
from gridflow.exchange.client import ccxt_symbol

__all__ = ["ExchangeStatePartition", "StateResumeState", "check_args"]

log = logging.getLogger(__name__)

WEEK_MS = 7 * 86_400_000
"""Binance USDⓈ-M's widest ``userTrades`` time window, ms."""
DAY_MS = 86_400_000
"""Binance spot's widest ``myTrades`` time window, ms."""
TRADES_PAGE = {"binance": 1000, "binanceusdm": 1000, "bitget": 100}
"""Trades per ``fetch_my_trades`` request: each venue's maximum (Bitget's fill history
serves 100)."""
FUNDING_PAGE = {"binanceusdm": 1000, "bitget": 100}
"""Funding payments per ``fetch_funding_history`` request: each venue's maximum."""
ORDER_CACHE = 1024
"""Orders whose client id and fill progress are remembered (LRU)."""
MAX_RECENT = 50_000
"""Reported trade ids remembered per symbol, at most (the oldest go first)."""


class StateResumeState(NamedTuple):
    """Resume state of an :class:`ExchangeStatePartition` (plain, picklable).

    Attributes
    ----------
    cursors : dict[str, int]
        Config symbol to the trade time cursor, ms UTC (``fetch_my_trades`` ``since``).
    recent : dict[str, dict[str, int]]
        Config symbol to ``{trade id: trade ms}`` of reported trades at or after the
        cursor.
    orders : list[tuple[str, str, float, float]]
        Order cache, oldest first: ``(exchange order id, client order id, order amount
        base, amount filled so far by reported trades base)``.
    done : bool
        True once the final update was emitted.
    """

    cursors: dict
    recent: dict
    orders: list
    done: bool
    funding: dict | None = None
    """Config symbol to the funding-history cursor (ms UTC)."""


class Fetched(NamedTuple):
    """What the requests of one cycle returned (:meth:`ExchangeStatePartition.
    _fetch_cycle`), before any state changed."""

    server_ms: int
    trades: dict  # config symbol -> (cursor used, trades oldest first | error text)
    open_orders: list | None
    positions: dict | None
    balance: tuple  # (wallet, equity), either None
    marks: dict | None
    funding: tuple  # (rows, {symbol: moved cursor})
    errors: list


class ExchangeStatePartition(StatefulSourcePartition[ExchangeUpdate, StateResumeState]):
    """Poll one account; see the module docstring for the cycle.

    Parameters
    ----------
    exchange : ccxt.Exchange
        Used by this partition only.
    account : str
    symbols : list of str
        Config symbols; open orders and positions of other markets are left out.
    market_type : {"swap", "spot"}
    poll_s : float
        Wall seconds between cycles, > 0.
    end_ms : int, optional
        The update with ``server_ms >= end_ms + end_grace_ms`` is the last one.
    since_ms : int, optional
        Initial trade cursor of a fresh start; None: the first ``server_ms`` minus
        ``trade_overlap_ms`` (fills before the start are not reported).
    trade_overlap_ms : int
        How far behind ``server_ms`` the cursor stays, ms of exchange time.
    end_grace_ms : int, optional
        Default one poll, ``poll_s * 1000``.
    resume_state : StateResumeState or tuple, optional

    Raises
    ------
    ValueError
        ``poll_s <= 0``, no symbol, ``trade_overlap_ms < 0``.
    """

    def __init__(
        self,
        exchange: Any,
        account: str,
        symbols: list[str],
        market_type: str,
        poll_s: float,
        end_ms: int | None = None,
        since_ms: int | None = None,
        trade_overlap_ms: int = 60_000,
        end_grace_ms: int | None = None,
        resume_state: StateResumeState | tuple | None = None,
    ) -> None:
        check_args(poll_s, symbols, trade_overlap_ms)
        self.ex = exchange
        self.account = account
        self.symbols = list(symbols)
        self.market_type = market_type
        self.markets = {s: ccxt_symbol(s, market_type) for s in self.symbols}
        self.quote = self.symbols[0].split("/")[1].split(":")[0]
        self.poll_s = float(poll_s)
        self.end_ms = end_ms
        self.since_ms = since_ms
        self.overlap_ms = int(trade_overlap_ms)
        self.end_grace_ms = int(poll_s * 1000) if end_grace_ms is None else int(end_grace_ms)
        st = StateResumeState({}, {}, [], False) if resume_state is None else StateResumeState(
            *resume_state
        )
        self._cursors: dict[str, int] = {k: int(v) for k, v in st.cursors.items()}
        self._recent: dict[str, dict[str, int]] = {k: dict(v) for k, v in st.recent.items()}
        self._orders: OrderedDict[str, list] = OrderedDict(
            (oid, [cid, float(amt), float(filled)]) for oid, cid, amt, filled in st.orders
        )
        self._done = bool(st.done)
        self._funding_since: dict[str, int] = dict(st.funding or {})
        self._awake: datetime | None = None
        self._errors_in_row = 0
        self._limited: BaseException | None = None  # a rate-limit error this cycle
        self.error_count = 0
        """Total ccxt errors met."""

    # ------------------------------------------------------------------ Bytewax

    def next_batch(self) -> list[ExchangeUpdate]:
        """One update (nothing when ``fetch_time`` failed).

        Raises
        ------
        StopIteration
            After the final update (``end_ms``).
        """
        if self._done:
            raise StopIteration
        fetched = self._fetch_cycle()
        if fetched is None:
            self._schedule(1)
            return []
        return [self._apply_cycle(fetched)]

    def _fetch_cycle(self) -> Fetched | None:
        """The requests of a cycle (None when ``fetch_time`` failed). Reads the cursors,
        changes no state but the rate-limit note: a subclass may run it on another
        thread while the deduplication state is in use, and apply the result after
        (:meth:`_apply_cycle`)."""
        try:
            server_ms = self.ex.fetch_time()
            if server_ms is None:
                raise ccxt.ExchangeError("fetch_time returned no serverTime")
            server_ms = int(server_ms)
        except ccxt.BaseError as e:
            self._note(e)
            log.warning("exchange state %s: fetch_time: %s", self.account,
                        describe_error(e, self.ex))
            return None
        errors: list[str] = []
        trades: dict[str, tuple[int, list[dict] | str]] = {}
        for sym in self.symbols:
            cursor = self._cursors.get(sym)
            if cursor is None:
                cursor = self.since_ms if self.since_ms is not None \
                    else server_ms - self.overlap_ms
            try:
                trades[sym] = (cursor, self._fetch_trades(self.markets[sym], cursor, server_ms))
            except ccxt.BaseError as e:
                self._note(e)
                msg = describe_error(e, self.ex)
                log.warning("exchange state %s: trades %s: %s", self.account, sym, msg)
                trades[sym] = (cursor, msg)
        open_orders = self._part("open_orders", self._open_orders, errors)
        if self.market_type == "spot":  # one balance request: the base held, the quote
            positions, balance = self._part("balance", lambda: spot_balance(
                self.ex, self.symbols, self.quote), errors) or (None, (None, None))
        else:
            positions = self._part("positions", lambda: contract_positions(
                self.ex, self.markets), errors)
            balance = self._part("balance", lambda: contract_balance(self.ex, self.quote),
                                 errors) or (None, None)
        marks = self._part("marks", self._marks, errors)
        funding = (self._part("funding", lambda: self._funding(server_ms), errors)
                   if self.market_type == "swap" else None) or ([], {})
        return Fetched(server_ms, trades, open_orders, positions, balance, marks, funding,
                       errors)

    def _apply_cycle(self, f: Fetched) -> ExchangeUpdate:
        """The update of fetched cycle ``f``: new trades reported (deduplicated by id,
        cursors moved), funding cursors moved, the next cycle scheduled."""
        errors: list[str] = []
        reports: list[ExecutionReport] = []
        for sym, (cursor, trades) in f.trades.items():
            self._cursors.setdefault(sym, cursor)
            got, err = (([], trades) if isinstance(trades, str)
                        else self._new_trades(sym, trades, cursor, f.server_ms))
            reports.extend(got)
            if err:
                errors.append(f"trades {sym}: {err}")
        reports.sort(key=lambda r: r.ts_ms)  # stable: per-symbol order kept
        errors += f.errors
        rows, cursors = f.funding
        self._funding_since.update(cursors)
        self._schedule(len(errors))
        if self.end_ms is not None and f.server_ms >= self.end_ms + self.end_grace_ms:
            self._done = True
        return ExchangeUpdate(self.account, f.server_ms, reports, f.open_orders, f.positions,
                              f.balance[0], errors, f.marks, f.balance[1], rows)

    def next_awake(self) -> datetime | None:
        """Wall time of the next cycle (None: at once)."""
        return self._awake

    def snapshot(self) -> StateResumeState:
        """Trade cursors, recent trade ids, order cache and the end flag."""
        return StateResumeState(
            dict(self._cursors),
            {k: dict(v) for k, v in self._recent.items()},
            [(oid, v[0], v[1], v[2]) for oid, v in self._orders.items()],
            self._done,
            dict(self._funding_since),
        )

    def close(self) -> None:
        """Close the exchange's HTTP session (errors ignored)."""
        try:
            self.ex.close()
        except Exception as e:  # noqa: BLE001 - best effort at shutdown
            log.debug("closing the exchange session: %s", type(e).__name__)

    # ------------------------------------------------------------------ parts

    def _schedule(self, errors: int) -> float:
        """Count ``errors`` of a cycle and set the next awake (backoff if any); the wait."""
        self._errors_in_row = self._errors_in_row + 1 if errors else 0
        self.error_count += errors
        cap = backoff_cap_s(self._limited)
        self._limited = None
        wait = backoff_s(self.poll_s, self._errors_in_row, cap) if errors else self.poll_s
        self._awake = _utcnow() + timedelta(seconds=wait)
        return wait

    def _note(self, exc: BaseException) -> None:
        """Remember a rate-limit error of this cycle (it sets a longer backoff)."""
        if backoff_cap_s(exc) > backoff_cap_s(self._limited):
            self._limited = exc

    def _part(self, name: str, fn: Callable[[], Any], errors: list[str]) -> Any:
        try:
            return fn()
        except ccxt.BaseError as e:
            self._note(e)
            msg = describe_error(e, self.ex)
            log.warning("exchange state %s: %s: %s", self.account, name, msg)
            errors.append(f"{name}: {msg}")
            return None

    def _new_trades(self, sym: str, trades: list[dict], cursor: int,
                    server_ms: int) -> tuple[list[ExecutionReport], str]:
        """New reports of ``sym`` (``trades`` fetched from ``cursor`` to ``server_ms``,
        oldest first) and an error text ("" if none).

        Trades are reported in time order up to the first one whose client id cannot be
        resolved; the cursor moves only when all were fetched and resolved.
        """
        recent = self._recent.setdefault(sym, {})
        out: list[ExecutionReport] = []
        for t in trades:
            tid = str(t["id"])
            if tid in recent:
                continue
            try:
                out.append(self._report(sym, t))
            except ccxt.BaseError as e:
                msg = describe_error(e, self.ex)
                log.warning("exchange state %s: order of trade %s: %s", self.account, tid, msg)
                return out, msg
            recent[tid] = int(t["timestamp"])
        new_cursor = max(self._cursors.get(sym, cursor), server_ms - self.overlap_ms)
        self._cursors[sym] = new_cursor
        for tid in [k for k, ts in recent.items() if ts < new_cursor]:
            del recent[tid]
        for tid in sorted(recent, key=recent.__getitem__)[: max(0, len(recent) - MAX_RECENT)]:
            del recent[tid]
        return out, ""

    def _fetch_trades(self, market: str, cursor: int, server_ms: int) -> list[dict]:
        """Trades of ``market`` stamped in ``[cursor, server_ms]``, unique by id, oldest
        first: windows of <= 7 days (spot: 1 day), pages of the venue's maximum
        (:data:`TRADES_PAGE`), read whichever end of a window a venue pages from
        (:func:`~gridflow.exchange.paging.read_window`)."""
        rows = read_window(
            lambda since, limit, until: self.ex.fetch_my_trades(
                market, since=since, limit=limit, params={"until": until}),
            cursor, server_ms, TRADES_PAGE.get(self.ex.id, TRADES_PAGE["binance"]),
            DAY_MS if self.market_type == "spot" else WEEK_MS, server_ms)
        return sorted(rows, key=lambda t: (int(t["timestamp"]), id_key(t["id"])))

    def _report(self, sym: str, t: dict) -> ExecutionReport:
        """The report of trade ``t``; may call ``fetch_order`` (raises ccxt errors)."""
        oid = str(t.get("order") or "")
        amount = float(t.get("amount") or 0.0)
        price = float(t.get("price") or 0.0)
        entry = self._order(sym, oid) if oid else ["", 0.0, 0.0]
        fee = self._fee_quote(t, sym, price)  # may raise: before the fill is counted
        fee_info = t.get("fee") or {}
        fee_base = as_float(fee_info.get("cost"), 0.0) if (
            fee_info.get("currency") == sym.split("/")[0] and t.get("side") == "buy") else 0.0
        entry[2] += amount
        full = entry[1] > 0 and entry[2] >= entry[1] * (1 - 1e-9)
        info = t.get("info") or {}
        return ExecutionReport(
            report_id=f"trade-{t['id']}", client_order_id=entry[0], account=self.account,
            symbol=sym, ts_ms=int(t["timestamp"]), side=t["side"], price=price, amount=amount,
            status="filled" if full or entry[1] <= 0 else "partially_filled", fee=fee,
            liquidity="maker" if t.get("takerOrMaker") == "maker" else "taker",
            realized_pnl=as_float(info.get("realizedPnl", info.get("rp")), 0.0),
            fee_base=max(fee_base, 0.0),
        )

    def _order(self, sym: str, oid: str) -> list:
        """Cached ``[client id, amount, filled by reported trades]`` of order ``oid``."""
        entry = self._orders.get(oid)
        if entry is not None:
            self._orders.move_to_end(oid)
            return entry
        try:
            o = self.ex.fetch_order(oid, self.markets[sym])
            entry = [str(o.get("clientOrderId") or ""), as_float(o.get("amount"), 0.0), 0.0]
        except ccxt.OrderNotFound:
            log.warning("exchange state %s: order %s of a trade not found", self.account, oid)
            entry = ["", 0.0, 0.0]
        self._orders[oid] = entry
        while len(self._orders) > ORDER_CACHE:
            self._orders.popitem(last=False)
        return entry

    def _fee_quote(self, t: dict, sym: str, price: float) -> float:
        """Fee of trade ``t`` in quote currency (a base-currency fee times the price;
        another currency at its ticker's last price against the quote, 0 when that market
        does not exist)."""
        fee = t.get("fee") or {}
        cost = as_float(fee.get("cost"), 0.0)
        cur = fee.get("currency")
        if not cost or cur in (None, self.quote):
            return cost
        if cur == sym.split("/")[0]:
            return cost * price
        try:  # network errors propagate: the trade is retried next cycle
            ticker = self.ex.fetch_ticker(ccxt_symbol(f"{cur}/{self.quote}", self.market_type))
        except ccxt.BadSymbol:
            log.warning("exchange state %s: no %s/%s market to convert a fee; counted 0",
                        self.account, cur, self.quote)
            return 0.0
        return cost * as_float(ticker.get("last"), 0.0)

    def _open_orders(self) -> list[dict]:
        """Per market (Binance weighs a no-symbol request 40, one symbol 1): regular
        orders, then conditional ones (``trigger``: the USDT-M algo order API)."""
        out: list[dict] = []
        self.ex.load_markets()  # loaded once by ccxt; the capabilities read the market
        for market in self.markets.values():  # spot stop-limits are regular orders
            trigger = capabilities(self.ex, self.ex.market(market)).trigger_flag
            for params in ({}, {"trigger": True}) if trigger else ({},):
                out += [order_dict(o) for o in self.ex.fetch_open_orders(market, params=params)]
        return out

    def _marks(self) -> dict[str, float]:
        """Mark price per config symbol: the perpetual's mark price (one request for
        every market: ``fetch_mark_prices``, or the tickers' ``markPrice`` where the venue
        has no such call: Bitget), a spot market's last price."""
        markets = list(self.markets.values())
        if self.market_type == "swap" and self.ex.has.get("fetchMarkPrices"):
            tickers, keys = self.ex.fetch_mark_prices(markets), ("markPrice",)
        elif self.market_type == "swap":
            tickers, keys = self.ex.fetch_tickers(markets), ("markPrice", "last")
        else:
            tickers, keys = self.ex.fetch_tickers(markets), ("last",)
        out = {}
        for sym, market in self.markets.items():
            t = tickers.get(market) or {}
            px = next((as_float(t.get(k), math.nan) for k in keys if t.get(k) is not None),
                      math.nan)
            if math.isfinite(px) and px > 0:
                out[sym] = px
        return out

    def _funding(self, server_ms: int) -> tuple[list[dict], dict[str, int]]:
        """Funding settlements since each symbol's cursor (``fetch_funding_history``;
        at-least-once: the engine drops ids it has seen), oldest first, and the moved
        cursors (set by :meth:`_apply_cycle`)."""
        out, cursors = [], {}
        for sym, market in self.markets.items():
            since = self._funding_since.get(sym)
            if since is None:
                since = self.since_ms if self.since_ms is not None else server_ms - self.overlap_ms
            rows = read_window(
                lambda a, limit, until, m=market: self.ex.fetch_funding_history(
                    m, since=a, limit=limit, params={"until": until}),
                since, server_ms, FUNDING_PAGE.get(self.ex.id, FUNDING_PAGE["binanceusdm"]),
                server_ms - since + 1, server_ms)
            rows.sort(key=lambda r: int(r.get("timestamp") or 0))
            for r in rows:
                ts = int(r.get("timestamp") or 0)
                out.append({"id": str(r.get("id") or f"{sym}:{ts}"), "symbol": sym,
                            "ts_ms": ts, "paid": -as_float(r.get("amount"), 0.0)})
                since = max(since, ts)
            cursors[sym] = since
        return sorted(out, key=lambda r: r["ts_ms"]), cursors


def check_args(poll_s: float, symbols: list[str], overlap_ms: int) -> None:
    if not poll_s > 0:
        raise ValueError(f"poll_s must be > 0, got {poll_s}")
    if not symbols:
        raise ValueError("symbols must not be empty")
    if overlap_ms < 0:
        raise ValueError(f"trade_overlap_ms must be >= 0, got {overlap_ms}")
