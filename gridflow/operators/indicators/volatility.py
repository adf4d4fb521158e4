"""Wilder true range and average true range (TA-Lib ``TRANGE``, ``ATR``): steps, kernels, states."""

from __future__ import annotations

import numpy as np
from numba import njit

from gridflow.operators.indicators._base import IndicatorKind, _NAN, _as_series, _check_period, _State

# --------------------------------------------------------------------------- steps
# State goes in as arguments and comes back in the returned tuple, so kernels keep it in
# registers. Do not call one step from another: the compiled copy could not call it.

def _tr_step(h, lo, c, n, pc):
    """True-range step; n: count (saturates at 1), pc: previous close."""
    if n == 0:
        return _NAN, 1, c
    tr = h - lo
    v = abs(pc - h)
    if v > tr:
        tr = v
    v = abs(pc - lo)
    if v > tr:
        tr = v
    return tr, n, c


def _atr_step(h, lo, c, n, pc, s, a, period):
    """ATR step; n: count (saturates at period + 1), pc: prev close, s: seed sum, a: ATR."""
    if n == 0:
        return _NAN, 1, c, s, a
    tr = h - lo  # same true range as _tr_step, inlined
    v = abs(pc - h)
    if v > tr:
        tr = v
    v = abs(pc - lo)
    if v > tr:
        tr = v
    if n > period:
        a = (a * (period - 1) + tr) / period  # Wilder smoothing, classic TA-Lib order
        return a, n, c, s, a
    s = s + tr
    if n == period:
        a = s / period
        return a, n + 1, c, s, a
    return _NAN, n + 1, c, s, a


_tr_step_nb = njit(cache=True)(_tr_step)
_atr_step_nb = njit(cache=True)(_atr_step)


@njit(cache=True)
def _tr_kernel(h, lo, c, out, fs, ist):
    n, pc = ist[0], fs[0]
    for i in range(h.shape[0]):
        out[i], n, pc = _tr_step_nb(h[i], lo[i], c[i], n, pc)
    ist[0], fs[0] = n, pc


@njit(cache=True)
def _atr_kernel(h, lo, c, out, fs, ist, period):
    n, pc, s, a = ist[0], fs[0], fs[1], fs[2]
    for i in range(h.shape[0]):
        out[i], n, pc, s, a = _atr_step_nb(h[i], lo[i], c[i], n, pc, s, a, period)
    ist[0], fs[0], fs[1], fs[2] = n, pc, s, a


# ---------------------------------------------------------------------- state classes

class TrueRangeState(_State):
    """Incremental true range (Wilder 1978; TA-Lib ``TRANGE``).

    ``TR_t = max(high_t - low_t, |high_t - close_{t-1}|, |low_t - close_{t-1}|)`` in
    quote currency. The first candle has no previous close: NaN at index 0, valid from 1.
    """

    _arrays = ("_fs", "_ist")

    def __init__(self) -> None:
        self._fs = np.zeros(1, dtype=np.float64)  # previous close
        self._ist = np.zeros(1, dtype=np.int64)  # count, saturating at 1
        self._bind()

    def update(self, high: float, low: float, close: float) -> float:
        """Feed one closed candle; return its true range or NaN (first candle)."""
        fs, ist = self._views
        out, ist[0], fs[0] = _tr_step(float(high), float(low), float(close), ist[0], fs[0])
        return out

    def update_many(self, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
        """Feed a chunk, arrays of shape (n,); return float64 true ranges, shape (n,)."""
        h, lo, c = _as_series(high, low, close)
        out = np.empty(h.shape[0], dtype=np.float64)
        _tr_kernel(h, lo, c, out, self._fs, self._ist)
        return out


class ATRState(_State):
    """Incremental average true range (Wilder 1978; TA-Lib ``ATR``).

    ``ATR_period = mean(TR_1 .. TR_period)``, then ``ATR_t = (ATR_{t-1} * (period - 1) +
    TR_t) / period``, in TA-Lib's operation order (see :class:`TrueRangeState` for TR).

    Parameters
    ----------
    period : int
        >= 1. First valid output at index ``period`` (TR needs a previous close); NaN
        before. ``period=1`` equals the true range from index 1.

    Raises
    ------
    ValueError
        If ``period`` is not an int or is < 1.
    """

    _arrays = ("_fs", "_ist")

    def __init__(self, period: int) -> None:
        self.period = _check_period(period, "atr")
        self._fs = np.zeros(3, dtype=np.float64)  # previous close, seed sum, current ATR
        self._ist = np.zeros(1, dtype=np.int64)  # count, saturating at period + 1
        self._bind()

    def update(self, high: float, low: float, close: float) -> float:
        """Feed one closed candle (quote currency); return the ATR or NaN."""
        fs, ist = self._views
        out, ist[0], fs[0], fs[1], fs[2] = _atr_step(
            float(high), float(low), float(close), ist[0], fs[0], fs[1], fs[2], self.period
        )
        return out

    def update_many(self, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
        """Feed a chunk, arrays of shape (n,); return float64 ATR values, shape (n,)."""
        h, lo, c = _as_series(high, low, close)
        out = np.empty(h.shape[0], dtype=np.float64)
        _atr_kernel(h, lo, c, out, self._fs, self._ist, self.period)
        return out


# ---------------------------------------------------------------------------- batch

def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """True range (Wilder 1978; TA-Lib ``TRANGE``); formula in :class:`TrueRangeState`.

    Parameters
    ----------
    high, low, close : array_like, shape (n,)
        Candle prices in quote currency.

    Returns
    -------
    np.ndarray
        float64, shape (n,), quote currency; NaN at index 0.

    Raises
    ------
    ValueError
        Inputs not 1-D or of different lengths.
    """
    return TrueRangeState().update_many(high, low, close)


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> np.ndarray:
    """Average true range (Wilder 1978; TA-Lib ``ATR``); formula in :class:`ATRState`.

    Parameters
    ----------
    high, low, close : array_like, shape (n,)
        Candle prices in quote currency.
    period : int
        Wilder smoothing period, >= 1.

    Returns
    -------
    np.ndarray
        float64, shape (n,), quote currency; NaN before index ``period``.

    Raises
    ------
    ValueError
        Bad ``period``, inputs not 1-D or of different lengths.
    """
    return ATRState(period).update_many(high, low, close)



KINDS = {
    "trange": IndicatorKind((), ("high", "low", "close"), (), TrueRangeState),
    "atr": IndicatorKind((("period", int),), ("high", "low", "close"), (), ATRState),
}
