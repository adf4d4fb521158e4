"""What a test reads of the local exchange's book: orders, trades, positions, balances,
funding payments, accepted client ids (:class:`BookViews`, a mixin of
:class:`~gridflow.fakex.server.FakeExchange`; each read under the exchange lock).

Prices in quote (USDT), amounts in base, times in ms UTC (simulated clock)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from gridflow.fakex.views import algo_record, order_record, trade_record

__all__ = ["BookViews"]


class BookViews:
    """Read-only views of ``self._book`` under ``self._lock``."""

    def spec(self, symbol: str) -> Any:
        """The :class:`~gridflow.fakex.markets.MarketSpec` of config symbol ``symbol``
        (tick, step, minimum amount and notional)."""
        with self._lock:
            return self._book.specs[symbol]

    def orders(self) -> list[dict[str, Any]]:
        """Every accepted order, regular and algo, by time then id (see ``views``)."""
        with self._lock:
            rows = [order_record(o) for o in self._book.orders.values()]
            rows += [algo_record(self._book, a) for a in self._book.algos.values()]
        return sorted(rows, key=lambda r: (r["time"], r["algo"], r["orderId"]))

    def trades(self) -> list[dict[str, Any]]:
        with self._lock:
            return [trade_record(t) for t in self._book.trades]

    def positions(self, mark: bool = False) -> dict[str, dict[str, float]]:
        """Open positions: ``amount`` (signed, base; spot: held minus initial base) and
        ``entry_price``; with ``mark`` also ``mark`` and ``unrealized`` (USDT at it)."""
        with self._lock:
            out = {}
            for s, p in self._book.positions.items():
                if p.amount == 0:
                    continue
                out[s] = {"amount": p.amount, "entry_price": p.entry}
                if mark:
                    px = self._book.price(s)
                    out[s].update(mark=px, unrealized=p.amount * (px - p.entry))
            return out

    def balance(self) -> float:
        """Wallet balance (USDT): initial + realized PnL - commissions - funding paid
        (spot: the USDT balance, free + locked)."""
        with self._lock:
            return self._book.wallet

    def balances(self) -> dict[str, dict[str, float]]:
        """Spot only: asset -> ``free``, ``locked``, ``total`` (base and quote)."""
        with self._lock:
            return self._book.balance_table()  # AttributeError on a futures dialect

    def unrealized(self) -> float:
        """Unrealized PnL (USDT) of all positions at the mark (the current path price)."""
        with self._lock:
            return self._book.unrealized()

    def equity(self) -> float:
        """Margin balance (USDT): wallet + unrealized PnL at the mark (spot: USDT + the
        base held at the current price)."""
        with self._lock:
            return self._book.wallet + self._book.unrealized()

    def funding_payments(self) -> list[dict[str, Any]]:
        """Funding settlements paid so far, in time order: ``symbol``, ``time`` (ms),
        ``paid`` (USDT, positive = the account paid), ``rate``, ``mark``, ``amount``
        (signed position, base) and ``tranId`` (the ``/fapi/v1/income`` row's)."""
        with self._lock:
            return [{"symbol": p.symbol, "time": p.time, "paid": p.paid, "rate": p.rate,
                     "mark": p.mark, "amount": p.amount, "tranId": p.tran_id}
                    for p in self._book.funding.payments]

    def accepted_client_ids(self) -> Counter:
        """clientOrderId / clientAlgoId -> times an order with it was accepted."""
        with self._lock:
            return Counter(self._book.accepted)

