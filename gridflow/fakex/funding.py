"""Funding settlements of the fake exchange's perpetuals.

A schedule gives, per config symbol (``"BTC/USDT"``), settlement times (ms UTC) and
rates (fractions per settlement, e.g. from :func:`gridflow.data.funding.read_funding`).
When the clock reaches a settlement time ``T`` (``T`` in ``(before, after]`` of a clock
move; a settlement at or before the start time is never paid), every open position of
that symbol pays ``amount_signed * mark * rate`` USDT: a long pays a positive rate, a
short receives it. The wallet balance moves by minus that payment and an income record
(``incomeType`` ``FUNDING_FEE``, ``income`` = minus the payment) is kept.

The mark is the price at ``T`` on the forming candle's path (the same path the matcher
walks); orders act on the path up to ``T`` first (fills at ``T`` included) and the
position after them pays. A settlement on a candle boundary (the usual case: 00/08/16
UTC on hourly candles) is paid when the candle *ending* at ``T`` closes, at that
candle's close, before anything happens in the next candle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from gridflow.fakex.book import Book

__all__ = ["Funding", "Payment"]

_TRAN0 = 7_000_000_001


@dataclass(frozen=True)
class Payment:
    """One funding settlement of one position. ``paid`` (USDT) is positive when the
    account paid, negative when it received; ``amount`` is the signed position (base)."""

    tran_id: int
    symbol: str
    time: int
    rate: float
    mark: float
    amount: float
    paid: float


class Funding:
    """Settlement schedule and the payments made so far.

    Parameters
    ----------
    schedule : dict or None
        Config symbol -> ``(times_ms, rates)``: int (n,) strictly increasing, float (n,)
        finite.
    symbols : list of str
        Symbols the exchange lists (every schedule key must be one).
    publish_lag_ms : int
        Exchange ms after a settlement before :meth:`history` lists it.

    Raises
    ------
    ValueError
        Unknown symbol, mismatched or non-1-D arrays, unsorted times, non-finite rates,
        a negative lag.
    """

    def __init__(self, schedule: dict[str, tuple[np.ndarray, np.ndarray]] | None,
                 symbols: list[str], publish_lag_ms: int = 0) -> None:
        if publish_lag_ms < 0:
            raise ValueError(f"publish_lag_ms must be >= 0, got {publish_lag_ms}")
        self.publish_lag_ms = int(publish_lag_ms)
        self._ts: dict[str, np.ndarray] = {}
        self._rate: dict[str, np.ndarray] = {}
        for sym, (ts, rate) in (schedule or {}).items():
            if sym not in symbols:
                raise ValueError(f"funding for {sym!r}, which has no candles ({symbols})")
            ts = np.asarray(ts, dtype=np.int64)
            rate = np.asarray(rate, dtype=np.float64)
            if ts.ndim != 1 or ts.shape != rate.shape:
                raise ValueError(f"{sym}: funding times and rates must be 1-D of equal "
                                 f"length, got {ts.shape} and {rate.shape}")
            if len(ts) > 1 and not (np.diff(ts) > 0).all():
                raise ValueError(f"{sym}: funding times must be strictly increasing")
            if not np.isfinite(rate).all():
                raise ValueError(f"{sym}: funding rates must be finite")
            self._ts[sym], self._rate[sym] = ts, rate
        self.payments: list[Payment] = []

    def due(self, after: int, until: int) -> list[int]:
        """Settlement times in ``(after, until]`` of any symbol, sorted, distinct."""
        out: set[int] = set()
        for ts in self._ts.values():
            lo = int(np.searchsorted(ts, after, side="right"))
            hi = int(np.searchsorted(ts, until, side="right"))
            out.update(ts[lo:hi].tolist())
        return sorted(out)

    def _rate_at(self, sym: str, t: int) -> float | None:
        ts = self._ts.get(sym)
        if ts is None:
            return None
        i = int(np.searchsorted(ts, t))
        return float(self._rate[sym][i]) if i < len(ts) and ts[i] == t else None

    def settle(self, book: Book, t: int) -> None:
        """Pay the settlements at ``t`` (the clock stands at ``t``) at the current price."""
        for sym in self._ts:
            rate = self._rate_at(sym, t)
            pos = book.positions.get(sym)
            if rate is None or pos is None or pos.amount == 0:
                continue
            mark = book.price(sym)
            paid = pos.amount * mark * rate
            book.wallet -= paid
            self.payments.append(Payment(_TRAN0 + len(self.payments), sym, t, rate, mark,
                                         pos.amount, paid))

    def history(self, sym: str, now: int, start: int | None, end: int | None,
                limit: int) -> list[tuple[int, float]]:
        """Settlements of ``sym`` listed by ``now`` (settled at least ``publish_lag_ms``
        before it) as Binance's ``/fapi/v1/fundingRate`` pages them: ``(time ms,
        rate)``, the first ``limit`` at or after ``start`` (and at or before ``end``),
        else the last ``limit`` at or before ``end`` (or now)."""
        ts = self._ts.get(sym)
        if ts is None:
            return []
        now -= self.publish_lag_ms
        top = min(now, end) if end is not None else now
        lo = 0 if start is None else int(np.searchsorted(ts, start, side="left"))
        hi = int(np.searchsorted(ts, top, side="right"))
        if start is not None:
            hi = min(hi, lo + limit)
        else:
            lo = max(lo, hi - limit)
        return [(int(t), float(r)) for t, r in zip(ts[lo:hi], self._rate[sym][lo:hi])]

    def last_rate(self, sym: str, now: int) -> float:
        """Rate of the latest settlement at or before ``now`` (0 if none)."""
        ts = self._ts.get(sym)
        if ts is None:
            return 0.0
        i = int(np.searchsorted(ts, now, side="right"))
        return float(self._rate[sym][i - 1]) if i > 0 else 0.0

    def next_time(self, sym: str, now: int) -> int:
        """Next settlement time after ``now``; without a schedule (or past its end) the
        next 00/08/16 UTC."""
        ts = self._ts.get(sym)
        if ts is not None:
            i = int(np.searchsorted(ts, now, side="right"))
            if i < len(ts):
                return int(ts[i])
        return (now // 28_800_000 + 1) * 28_800_000
