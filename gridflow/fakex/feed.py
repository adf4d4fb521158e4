"""Candles and the simulated clock of the fake exchange.

The clock is ``now = open_ms + offset`` (ms UTC): ``open_ms`` is the open time of the
*forming* candle and ``offset`` (``0 <= offset <= tf``) how far the clock has moved inside
it. Rows with ``ts < open_ms`` are closed; the row with ``ts == open_ms`` (if the symbol
has one: data may have gaps) is forming.

Inside the forming candle the price follows the path the matcher walks: ``open -> low ->
high -> close`` when ``close >= open``, else ``open -> high -> low -> close``, three
straight legs of a third of the candle each (:meth:`Feed.path_price`). Clients see the
forming candle as Binance shows it: its open, the high and low of the path so far, the
path price now as close, and the volume pro rata of the time elapsed (at ``offset == 0``:
``open = high = low = close``, volume 0). :meth:`Feed.advance` closes the candle.
"""

from __future__ import annotations

import numpy as np

from gridflow.timeframes import timeframe_to_ms

__all__ = ["Feed"]


class Feed:
    """Per-symbol candle arrays and the clock.

    Parameters
    ----------
    candles : dict of str to np.ndarray
        Config symbol -> array (n, 6) float64 ``ts_ms, open, high, low, close, volume``,
        ``ts`` strictly increasing and aligned to the timeframe.
    timeframe : str
        ccxt timeframe of the rows (``"1h"``).
    start_ms : int
        Open time of the first forming candle; must be on the timeframe grid of the data
        and covered by at least one symbol.

    Raises
    ------
    ValueError
        Bad shapes, unsorted or misaligned timestamps, non-finite prices, or a start
        outside the data.
    """

    def __init__(self, candles: dict[str, np.ndarray], timeframe: str, start_ms: int) -> None:
        if not candles:
            raise ValueError("candles must hold at least one symbol")
        self.tf_ms = timeframe_to_ms(timeframe)
        self.timeframe = timeframe
        self._ts: dict[str, np.ndarray] = {}
        self._ohlcv: dict[str, np.ndarray] = {}
        for sym, arr in candles.items():
            a = np.asarray(arr, dtype=np.float64)
            if a.ndim != 2 or a.shape[1] != 6 or len(a) == 0:
                raise ValueError(f"{sym}: candles must be a non-empty (n, 6) array, got {a.shape}")
            ts = a[:, 0].astype(np.int64)
            if np.any(np.diff(ts) <= 0):
                raise ValueError(f"{sym}: timestamps must be strictly increasing")
            if np.any(ts % self.tf_ms != 0):
                raise ValueError(f"{sym}: timestamps must be aligned to {timeframe}")
            if not np.all(np.isfinite(a[:, 1:5])) or np.any(a[:, 1:5] <= 0):
                raise ValueError(f"{sym}: prices must be finite and > 0")
            self._ts[sym] = ts
            self._ohlcv[sym] = np.ascontiguousarray(a[:, 1:6])
        start_ms = int(start_ms)
        if start_ms % self.tf_ms != 0:
            raise ValueError(f"start_ms {start_ms} is not aligned to {timeframe}")
        if not any(ts[0] <= start_ms <= ts[-1] for ts in self._ts.values()):
            raise ValueError(f"start_ms {start_ms} is outside the candles of every symbol")
        self.open_ms = start_ms
        self.offset = 0
        self._last_ts = max(int(ts[-1]) for ts in self._ts.values())

    @property
    def now(self) -> int:
        """The clock (ms UTC): forming candle open + offset inside it."""
        return self.open_ms + self.offset

    @property
    def symbols(self) -> list[str]:
        return list(self._ts)

    def left(self) -> int:
        """Candles still to close (the forming one included); 0 once data is exhausted."""
        if self.open_ms > self._last_ts:
            return 0
        return (self._last_ts - self.open_ms) // self.tf_ms + 1

    def advance(self) -> None:
        """Close the forming candle: the next one forms, offset 0."""
        self.open_ms += self.tf_ms
        self.offset = 0

    def set_offset(self, offset: int) -> None:
        """Move the clock inside the forming candle (``offset`` ms after its open)."""
        offset = int(offset)
        if not self.offset <= offset <= self.tf_ms:
            raise ValueError(f"offset {offset} outside [{self.offset}, {self.tf_ms}]")
        self.offset = offset

    def forming(self, sym: str) -> tuple[float, float, float, float, float] | None:
        """``(open, high, low, close, volume)`` of the candle forming at ``now`` (the
        full row, used by the matcher; clients never see its future values), or None."""
        ts = self._ts[sym]
        i = int(np.searchsorted(ts, self.open_ms))
        if i < len(ts) and ts[i] == self.open_ms:
            o, h, lo, c, v = self._ohlcv[sym][i]
            return float(o), float(h), float(lo), float(c), float(v)
        return None

    def path(self, sym: str) -> tuple[float, float, float, float] | None:
        """The four vertices of the forming candle's price path, or None (no row)."""
        row = self.forming(sym)
        if row is None:
            return None
        o, h, lo, c, _ = row
        return (o, lo, h, c) if c >= o else (o, h, lo, c)

    def path_price(self, path: tuple[float, float, float, float], u: float) -> float:
        """Price on ``path`` at ``u`` ms after the candle open (linear along each leg)."""
        tf = self.tf_ms
        if u <= 0:
            return path[0]
        if u >= tf:
            return path[3]
        i = min(int(u * 3 // tf), 2)
        start = i * tf / 3
        a, b = path[i], path[i + 1]
        return a + (b - a) * (u - start) / (tf / 3)

    def path_so_far(self, path: tuple[float, float, float, float], u: float
                    ) -> tuple[float, float, float]:
        """``(high, low, price)`` of ``path`` walked from the open to ``u``."""
        px = self.path_price(path, u)
        seen = [path[0], px] + [path[i] for i in (1, 2) if i * self.tf_ms / 3 <= u]
        return max(seen), min(seen), px

    def price(self, sym: str) -> float:
        """Current price (quote): the forming candle's path price at the clock, else the
        last close before it, else the first open (clock before the symbol's data)."""
        path = self.path(sym)
        if path is not None:
            return self.path_price(path, self.offset)
        ts = self._ts[sym]
        i = int(np.searchsorted(ts, self.open_ms))
        if i > 0:
            return float(self._ohlcv[sym][i - 1, 3])
        return float(self._ohlcv[sym][0, 0])

    def first_price(self, sym: str) -> float:
        return float(self._ohlcv[sym][0, 0])

    def visible(self, sym: str) -> tuple[np.ndarray, np.ndarray]:
        """Timestamps and ``o, h, l, c, v`` rows a client may see: closed rows and the
        forming row as walked so far (open, high and low of the path so far, close = the
        path price now, volume pro rata of the time elapsed)."""
        ts = self._ts[sym]
        n = int(np.searchsorted(ts, self.open_ms, side="right"))
        rows = self._ohlcv[sym][:n].copy()
        if n and ts[n - 1] == self.open_ms:
            path = self.path(sym)
            rows[-1, 1:4] = self.path_so_far(path, self.offset)
            rows[-1, 4] *= self.offset / self.tf_ms
        return ts[:n], rows

    def klines(self, sym: str, start: int | None, end: int | None, limit: int
               ) -> list[list]:
        """Binance kline rows: ``[openTime, "o", "h", "l", "c", "v", closeTime,
        "quoteVolume", trades, "takerBuyBase", "takerBuyQuote", "0"]``.

        With ``start``: the first ``limit`` rows at or after it (and at or before
        ``end``); otherwise the last ``limit`` rows at or before ``end`` (or now). The
        last visible row is the forming candle.
        """
        ts, rows = self.visible(sym)
        lo = 0 if start is None else int(np.searchsorted(ts, start, side="left"))
        hi = len(ts) if end is None else int(np.searchsorted(ts, end, side="right"))
        if hi <= lo:
            return []
        if start is not None:
            hi = min(hi, lo + limit)
        else:
            lo = max(lo, hi - limit)
        out = []
        for t, (o, h, lo_, c, v) in zip(ts[lo:hi].tolist(), rows[lo:hi].tolist()):
            out.append([t, repr(o), repr(h), repr(lo_), repr(c), repr(v), t + self.tf_ms - 1,
                        repr(round(v * c, 8)), 0, "0", "0", "0"])
        return out
