"""Relative strength index (Wilder 1978; TA-Lib ``RSI``): step, kernel, state, batch.

Same structure as :mod:`~gridflow.operators.indicators.moving_averages`: one plain-Python
step on scalars, compiled by numba into the chunk kernel; ``update`` runs the uncompiled
step on memoryviews of the state arrays, so single updates, chunks and the batch
function are bit-identical.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gridflow.indicator_names import SIGNATURES
from gridflow.operators.indicators._base import (
    _NAN,
    IndicatorKind,
    _as_series,
    _check_period,
    _State,
)


def _check_wilder_period(period, what: str) -> int:
    """``_check_period`` plus TA-Lib's lower bound of 2 for RSI / ADX."""
    period = _check_period(period, what)
    if period < 2:
        raise ValueError(f"{what} period must be >= 2 (TA-Lib's range), got {period}")
    return period


# --------------------------------------------------------------------------- step
# State goes in as arguments and comes back in the returned tuple (see moving_averages).

def _rsi_step(x, n, px, g, lo, period, inv):
    """RSI step; n: count (saturates at period + 1), px: previous close, g / lo: average
    gain / loss (plain sums of the changes until the seed candle); inv = 1 / period."""
    if n == 0:
        return _NAN, 1, x, g, lo
    d = x - px
    up = d if d > 0 else 0.0  # gain; the loss is up - d (exactly -d, or +0.0)
    if n > period:
        g = (g * (period - 1) + up) * inv  # TA-Lib C 0.8's order: scale, add, * 1/period
        lo = (lo * (period - 1) + (up - d)) * inv
    else:
        g = g + up
        lo = lo + (up - d)
        if n < period:
            return _NAN, n + 1, x, g, lo
        g = g * inv  # seed: simple averages of the first `period` changes
        lo = lo * inv
        n += 1
    t = g + lo
    if t > 0.0:
        return 100.0 * (g / t), n, x, g, lo
    return 0.0, n, x, g, lo  # no change over the window: TA-Lib returns 0, not NaN


_rsi_step_nb = njit(cache=True)(_rsi_step)


@njit(cache=True)
def _rsi_kernel(x, out, fs, ist, period, inv):
    n, px, g, lo = ist[0], fs[0], fs[1], fs[2]
    for i in range(x.shape[0]):
        out[i], n, px, g, lo = _rsi_step_nb(x[i], n, px, g, lo, period, inv)
    ist[0], fs[0], fs[1], fs[2] = n, px, g, lo


# ---------------------------------------------------------------------- state class

class RSIState(_State):
    """Incremental relative strength index (Wilder 1978; TA-Lib ``RSI``).

    With ``d_t = close_t - close_{t-1}``, gains ``max(d, 0)`` and losses ``max(-d, 0)``:
    the seed averages are the simple means of the first ``period`` gains / losses
    (candles 1..period, TA-Lib's default, non-Metastock seeding); then Wilder smoothing
    ``avg_t = (avg_{t-1} * (period - 1) + x_t) * (1 / period)`` -- TA-Lib C 0.8 multiplies
    by the reciprocal, and so does this, in the same operation order.
    ``RSI_t = 100 * avg_gain_t / (avg_gain_t + avg_loss_t)``; when both averages are
    exactly 0 (constant closes over the window) RSI is 0.0, as TA-Lib returns.

    Parameters
    ----------
    period : int
        Wilder period, >= 2 (TA-Lib's range). First valid output at index ``period``
        (the seed needs ``period`` changes); NaN before.

    Raises
    ------
    ValueError
        If ``period`` is not an int or is < 2 (message starts ``rsi period``).

    Notes
    -----
    Output in points, 0..100. Bit-identical to TA-Lib 0.8 (C 0.8.1, x86-64) on the bundled
    candle files; older TA-Lib C releases divide by ``period`` instead (~1e-15 relative apart).
    ``update`` takes ~0.4 µs.
    """

    _arrays = ("_fs", "_ist")

    def __init__(self, period: int) -> None:
        self.period = _check_wilder_period(period, "rsi")
        self.inv = 1.0 / self.period
        self._fs = np.zeros(3, dtype=np.float64)  # previous close, avg gain, avg loss
        self._ist = np.zeros(1, dtype=np.int64)  # count, saturating at period + 1
        self._bind()

    def update(self, close: float) -> float:
        """Feed one closed candle's close (quote currency); return the RSI (0..100) or NaN."""
        fs, ist = self._views
        out, ist[0], fs[0], fs[1], fs[2] = _rsi_step(
            float(close), ist[0], fs[0], fs[1], fs[2], self.period, self.inv
        )
        return out

    def update_many(self, close: np.ndarray) -> np.ndarray:
        """Feed a chunk of closes, shape (n,); return float64 RSI values, shape (n,)."""
        (x,) = _as_series(close)
        out = np.empty(x.shape[0], dtype=np.float64)
        _rsi_kernel(x, out, self._fs, self._ist, self.period, self.inv)
        return out


# ---------------------------------------------------------------------------- batch

def rsi(close: np.ndarray, period: int = 14) -> np.ndarray:
    """Relative strength index (Wilder 1978; TA-Lib ``RSI``); formula in :class:`RSIState`.

    Parameters
    ----------
    close : array_like, shape (n,)
        Closes in quote currency, finite (a NaN poisons all later values, as in TA-Lib).
    period : int, default 14
        Wilder period, >= 2.

    Returns
    -------
    np.ndarray
        float64, shape (n,), points in 0..100; NaN before index ``period``.

    Raises
    ------
    ValueError
        Bad ``period``, or ``close`` not 1-D.
    """
    return RSIState(period).update_many(close)


KINDS = {
    "rsi": IndicatorKind(SIGNATURES["rsi"], RSIState),
}
