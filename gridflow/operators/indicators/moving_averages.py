"""Simple and exponential moving averages (TA-Lib ``SMA``, ``EMA``): steps, kernels, states."""

from __future__ import annotations

import numpy as np
from numba import njit

from gridflow.operators.indicators._base import IndicatorKind, _NAN, _as_series, _check_period, _State

# --------------------------------------------------------------------------- steps
# State goes in as arguments and comes back in the returned tuple, so kernels keep it in
# registers. Do not call one step from another: the compiled copy could not call it.

def _sma_step(x, buf, n, pos, s, c, period):
    """SMA step; ``buf`` (ring, mutated), n: count (saturates at period), s + c: sum."""
    t = s + x  # Neumaier-compensated add of the new value
    if abs(s) >= abs(x):
        c += (s - t) + x
    else:
        c += (x - t) + s
    s = t
    if n >= period:
        y = -buf[pos]  # compensated removal of the value leaving the window
        t = s + y
        if abs(s) >= abs(y):
            c += (s - t) + y
        else:
            c += (y - t) + s
        s = t
    else:
        n += 1
    buf[pos] = x
    pos += 1
    if pos == period:
        pos = 0
    if n >= period:
        return (s + c) / period, n, pos, s, c
    return _NAN, n, pos, s, c


def _ema_step(x, n, s, e, period, k):
    """EMA step; n: count (saturates at period), s: seed sum, e: current EMA."""
    if n >= period:
        e = (x - e) * k + e  # TA-Lib order: ((x - prev) * k) + prev
        return e, n, s, e
    s = s + x
    n += 1
    if n == period:
        e = s / period
        return e, n, s, e
    return _NAN, n, s, e


_sma_step_nb = njit(cache=True)(_sma_step)
_ema_step_nb = njit(cache=True)(_ema_step)


@njit(cache=True)
def _sma_kernel(x, out, buf, fs, ist, period):
    n, pos, s, c = ist[0], ist[1], fs[0], fs[1]
    for i in range(x.shape[0]):
        out[i], n, pos, s, c = _sma_step_nb(x[i], buf, n, pos, s, c, period)
    ist[0], ist[1], fs[0], fs[1] = n, pos, s, c


@njit(cache=True)
def _ema_kernel(x, out, fs, ist, period, k):
    n, s, e = ist[0], fs[0], fs[1]
    for i in range(x.shape[0]):
        out[i], n, s, e = _ema_step_nb(x[i], n, s, e, period, k)
    ist[0], fs[0], fs[1] = n, s, e


# ---------------------------------------------------------------------- state classes

class SMAState(_State):
    """Incremental simple moving average (TA-Lib ``SMA``).

    ``SMA_t = mean(close_{t-period+1} .. close_t)``, kept as a ring buffer plus a
    Neumaier-compensated running sum, so it does not drift over long streams (TA-Lib's
    plain running sum agrees to ~1e-13 relative on real data).

    Parameters
    ----------
    period : int
        Window length in candles, >= 1. First valid output: the ``period``-th candle
        (index ``period - 1``); NaN before.

    Raises
    ------
    ValueError
        If ``period`` is not an int or is < 1.
    """

    _arrays = ("_buf", "_fs", "_ist")

    def __init__(self, period: int) -> None:
        self.period = _check_period(period, "sma")
        self._buf = np.zeros(self.period, dtype=np.float64)  # ring of the last closes
        self._fs = np.zeros(2, dtype=np.float64)  # running sum, compensation
        self._ist = np.zeros(2, dtype=np.int64)  # count (saturating), ring position
        self._bind()

    def update(self, close: float) -> float:
        """Feed one closed candle's close (quote currency); return the SMA or NaN."""
        buf, fs, ist = self._views
        out, ist[0], ist[1], fs[0], fs[1] = _sma_step(
            float(close), buf, ist[0], ist[1], fs[0], fs[1], self.period
        )
        return out

    def update_many(self, close: np.ndarray) -> np.ndarray:
        """Feed a chunk of closes, shape (n,); return float64 SMA values, shape (n,)."""
        (x,) = _as_series(close)
        out = np.empty(x.shape[0], dtype=np.float64)
        _sma_kernel(x, out, self._buf, self._fs, self._ist, self.period)
        return out


class EMAState(_State):
    """Incremental exponential moving average (TA-Lib ``EMA``, default compatibility).

    ``k = 2 / (period + 1)``; seeded at index ``period - 1`` with the SMA of the first
    ``period`` closes (TA-Lib's seeding), then ``EMA_t = (close_t - EMA_{t-1}) * k +
    EMA_{t-1}``, in TA-Lib's operation order.

    Parameters
    ----------
    period : int
        >= 1. First valid output at index ``period - 1``; NaN before.

    Raises
    ------
    ValueError
        If ``period`` is not an int or is < 1.
    """

    _arrays = ("_fs", "_ist")

    def __init__(self, period: int) -> None:
        self.period = _check_period(period, "ema")
        self.k = 2.0 / (self.period + 1)
        self._fs = np.zeros(2, dtype=np.float64)  # seed sum, current EMA
        self._ist = np.zeros(1, dtype=np.int64)  # count, saturating at period
        self._bind()

    def update(self, close: float) -> float:
        """Feed one closed candle's close (quote currency); return the EMA or NaN."""
        fs, ist = self._views
        out, ist[0], fs[0], fs[1] = _ema_step(
            float(close), ist[0], fs[0], fs[1], self.period, self.k
        )
        return out

    def update_many(self, close: np.ndarray) -> np.ndarray:
        """Feed a chunk of closes, shape (n,); return float64 EMA values, shape (n,)."""
        (x,) = _as_series(close)
        out = np.empty(x.shape[0], dtype=np.float64)
        _ema_kernel(x, out, self._fs, self._ist, self.period, self.k)
        return out


# ---------------------------------------------------------------------------- batch

def sma(close: np.ndarray, period: int) -> np.ndarray:
    """Simple moving average (TA-Lib ``SMA``); formula in :class:`SMAState`.

    Parameters
    ----------
    close : array_like, shape (n,)
        Closes in quote currency.
    period : int
        Window length in candles, >= 1.

    Returns
    -------
    np.ndarray
        float64, shape (n,), quote currency; NaN before index ``period - 1``.

    Raises
    ------
    ValueError
        Bad ``period``, or ``close`` not 1-D.
    """
    return SMAState(period).update_many(close)


def ema(close: np.ndarray, period: int) -> np.ndarray:
    """Exponential moving average (TA-Lib ``EMA``, SMA seed); formula in :class:`EMAState`.

    Parameters
    ----------
    close : array_like, shape (n,)
        Closes in quote currency.
    period : int
        >= 1; smoothing ``k = 2 / (period + 1)``.

    Returns
    -------
    np.ndarray
        float64, shape (n,), quote currency; NaN before index ``period - 1``.

    Raises
    ------
    ValueError
        Bad ``period``, or ``close`` not 1-D.
    """
    return EMAState(period).update_many(close)



KINDS = {
    "sma": IndicatorKind((("period", int),), ("close",), (), SMAState),
    "ema": IndicatorKind((("period", int),), ("close",), (), EMAState),
}
