"""Candles and the simulated clock of the fake exchange.

The clock ``now`` (ms UTC) is always the open time of the *forming* candle. Rows with
``ts < now`` are closed; the row with ``ts == now`` (if the symbol has one: data may have
gaps) is forming and is shown as ``open = high = low = close``, volume 0, like the first
instant of a live candle. :meth:`Feed.advance` moves ``now`` by one timeframe.
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
        self.now = start_ms
        self._last_ts = max(int(ts[-1]) for ts in self._ts.values())

    @property
    def symbols(self) -> list[str]:
        return list(self._ts)

    def left(self) -> int:
        """Candles still to close (the forming one included); 0 once data is exhausted."""
        if self.now > self._last_ts:
            return 0
        return (self._last_ts - self.now) // self.tf_ms + 1

    def advance(self) -> None:
        """Close the forming candle: ``now`` moves one timeframe on."""
        self.now += self.tf_ms

    def forming(self, sym: str) -> tuple[float, float, float, float, float] | None:
        """``(open, high, low, close, volume)`` of the candle forming at ``now`` (the
        full row, used by the matcher; clients never see its future values), or None."""
        ts = self._ts[sym]
        i = int(np.searchsorted(ts, self.now))
        if i < len(ts) and ts[i] == self.now:
            o, h, lo, c, v = self._ohlcv[sym][i]
            return float(o), float(h), float(lo), float(c), float(v)
        return None

    def price(self, sym: str) -> float:
        """Current price (quote): open of the forming candle, else the last close before
        ``now``, else the first open (clock before the symbol's data)."""
        ts = self._ts[sym]
        i = int(np.searchsorted(ts, self.now))
        if i < len(ts) and ts[i] == self.now:
            return float(self._ohlcv[sym][i, 0])
        if i > 0:
            return float(self._ohlcv[sym][i - 1, 3])
        return float(self._ohlcv[sym][0, 0])

    def first_price(self, sym: str) -> float:
        return float(self._ohlcv[sym][0, 0])

    def visible(self, sym: str) -> tuple[np.ndarray, np.ndarray]:
        """Timestamps and ``o, h, l, c, v`` rows a client may see: closed rows and the
        forming row reduced to its open (o = h = l = c, volume 0)."""
        ts = self._ts[sym]
        n = int(np.searchsorted(ts, self.now, side="right"))
        rows = self._ohlcv[sym][:n].copy()
        if n and ts[n - 1] == self.now:
            rows[-1, 1:4] = rows[-1, 0]
            rows[-1, 4] = 0.0
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
