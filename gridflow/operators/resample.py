"""Multi-timeframe: resample closed candles into higher-timeframe candles, no look-ahead.

A higher-timeframe (HTF) bucket ``[B, B + htf)`` is aligned to UTC multiples of its
length (4h buckets start at 00, 04, 08 ... UTC; 1d at 00:00 UTC). It is emitted only
once it is **closed**:

* by the candle that completes it (``ts + tf == B + htf``): the HTF candle closes at
  that candle's close, so a decision taken at that close may use it;
* or, when that last candle is missing (a data gap), by the first candle of a later
  bucket: the HTF candle then becomes visible to that later candle.

A bucket with missing candles (a gap, or data starting mid-bucket) is emitted with
what it has: open of its first candle, max high, min low, close of its last candle,
summed volume. The open HTF bucket is never visible to anyone.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gridflow.timeframes import timeframe_to_ms

# state: int [bucket start (-1 = none)], float [open, high, low, close, volume]


@njit(cache=True)
def _resample_kernel(ts, o, h, lo, c, v, tf_ms, htf_ms, st_i, st_f, out_ts, out, closed):
    """out: float64 (cap, 5) rows of open, high, low, close, volume."""
    n_out = 0
    for i in range(ts.shape[0]):
        b = ts[i] - ts[i] % htf_ms
        if st_i[0] >= 0 and b != st_i[0]:  # a later bucket began: the open one closed
            out_ts[n_out] = st_i[0]
            out[n_out, :] = st_f
            n_out += 1
            st_i[0] = -1
        if st_i[0] < 0:
            st_i[0] = b
            st_f[0], st_f[1], st_f[2], st_f[3], st_f[4] = o[i], h[i], lo[i], c[i], v[i]
        else:
            st_f[1] = max(st_f[1], h[i])
            st_f[2] = min(st_f[2], lo[i])
            st_f[3] = c[i]
            st_f[4] += v[i]
        if ts[i] + tf_ms == b + htf_ms:  # this candle completes its bucket
            out_ts[n_out] = b
            out[n_out, :] = st_f
            n_out += 1
            st_i[0] = -1
        closed[i] = n_out
    return n_out


class Resampler:
    """Incremental resampler of one symbol's closed candles into a higher timeframe.

    Parameters
    ----------
    timeframe : str
        Timeframe of the input candles (``"1h"``).
    target : str
        Higher timeframe (``"4h"``, ``"1d"``): a whole multiple of ``timeframe`` that
        divides one day or is a whole number of days (weeks are not supported: their
        exchange alignment is Monday, not the epoch).

    Raises
    ------
    ValueError
        If ``target`` is not a whole multiple (> 1x) of ``timeframe``, or is weekly.
    """

    def __init__(self, timeframe: str, target: str) -> None:
        self.tf_ms = timeframe_to_ms(timeframe)
        self.htf_ms = timeframe_to_ms(target)
        if target.endswith("w"):
            raise ValueError(f"target timeframe {target!r}: weekly resampling is not supported")
        if self.htf_ms <= self.tf_ms or self.htf_ms % self.tf_ms:
            raise ValueError(
                f"target timeframe {target!r} must be a whole multiple (> 1x) of {timeframe!r}"
            )
        day = 86_400_000
        if not (day % self.htf_ms == 0 or self.htf_ms % day == 0):
            raise ValueError(f"target timeframe {target!r} must divide a day or be whole days")
        self.timeframe = timeframe
        self.target = target
        self._i = np.full(1, -1, dtype=np.int64)
        self._f = np.zeros(5)

    def update(self, ts, open, high, low, close, volume) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Feed the next closed candles (one chunk, increasing ``ts``).

        Parameters
        ----------
        ts : int64 (n,)
            Candle open times, ms UTC.
        open, high, low, close, volume : float64 (n,)

        Returns
        -------
        htf : dict[str, np.ndarray]
            The HTF candles closed during this chunk (``ts`` = bucket open time, ms UTC,
            and ``open high low close volume``), oldest first, shape (m,).
        closed : int64 (n,)
            For each input candle, how many of those HTF candles are closed as of its
            close (``closed[i] - 1`` indexes the newest visible one; 0 = none new).
        """
        ts = np.ascontiguousarray(ts, dtype=np.int64)
        n = ts.shape[0]
        cap = 2 * n + 1
        out = np.empty((cap, 5))
        out_ts = np.empty(cap, dtype=np.int64)
        closed = np.empty(n, dtype=np.int64)
        f64 = [np.ascontiguousarray(a, dtype=np.float64) for a in (open, high, low, close, volume)]
        m = _resample_kernel(ts, *f64, self.tf_ms, self.htf_ms, self._i, self._f,
                             out_ts, out, closed)
        htf = {"ts": out_ts[:m].copy()}
        for j, k in enumerate(("open", "high", "low", "close", "volume")):
            htf[k] = np.ascontiguousarray(out[:m, j])
        return htf, closed

    def __repr__(self) -> str:
        return f"Resampler({self.timeframe!r} -> {self.target!r})"
