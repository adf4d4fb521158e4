"""Rolling Pearson correlation of two symbols' log returns (not a per-symbol kind: the
account engine feeds it aligned closes of two symbols). Numerics as in
:mod:`gridflow.operators.indicators.statistics`."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from gridflow.operators.indicators._base import _NAN, _as_series, _State
from gridflow.operators.indicators.statistics import _CANCEL, _COLLAPSE, _FLAT2, _check_int

_CORR_F, _CORR_I = 16, 4


def _corr_step(xa, xb, ba, bb, fs, ist, w):
    """Correlation step; mutates its state (20 scalars would make an unwieldy tuple).
    ba, bb: rings of the last w returns of a and b; ist: closes seen (saturates at
    w + 1), ring position, equal-return runs of a and b; fs: previous closes, shifts
    ka, kb, (sum, compensation) pairs for da, db, da*da, db*db, da*db, then the peaks
    of the da*da and db*db sums since the last rebuild."""
    n, pos = ist[0], ist[1]
    if n == 0:
        ist[0], fs[0], fs[1] = 1, xa, xb
        return _NAN
    ra = _NAN
    if xa > 0.0 and fs[0] > 0.0:
        ra = math.log(xa / fs[0])
    rb = _NAN
    if xb > 0.0 and fs[1] > 0.0:
        rb = math.log(xb / fs[1])
    fs[0], fs[1] = xa, xb
    j = pos - 1 if pos > 0 else w - 1
    ist[2] = min(ist[2] + 1, w) if n > 1 and ra == ba[j] else 1
    ist[3] = min(ist[3] + 1, w) if n > 1 and rb == bb[j] else 1
    ka, kb = fs[2], fs[3]
    da, db, sign = ra - ka, rb - kb, 1.0
    for rem in range(2 if n > w else 1):  # add the new returns, then remove the oldest
        if rem == 1:
            da, db, sign = ba[pos] - ka, bb[pos] - kb, -1.0
        ys = (da, db, da * da, db * db, da * db)
        for q in range(5):  # Neumaier-compensated add of sign * ys[q]
            y, s = sign * ys[q], fs[4 + 2 * q]
            t = s + y
            fs[5 + 2 * q] += ((s - t) + y) if abs(s) >= abs(y) else ((y - t) + s)
            fs[4 + 2 * q] = t
        if rem == 0:  # peaks of the square sums, after the add
            if fs[8] > fs[14]:
                fs[14] = fs[8]
            if fs[10] > fs[15]:
                fs[15] = fs[10]
    if n <= w:
        n += 1
    ba[pos], bb[pos] = ra, rb
    ist[0], ist[1] = n, (pos + 1 if pos + 1 < w else 0)
    maa, mbb = (fs[8] + fs[9]) / w, (fs[10] + fs[11]) / w
    if n <= w or math.isnan(maa) or math.isnan(mbb):  # warm-up, or poisoned
        return _NAN
    if ist[2] >= w or ist[3] >= w:
        return 0.0  # a constant window (e.g. flat price): no co-movement
    ma, mb = (fs[4] + fs[5]) / w, (fs[6] + fs[7]) / w
    va, vb = maa - ma * ma, mbb - mb * mb
    if (maa > _CANCEL * va or mbb > _CANCEL * vb
            or fs[8] < _COLLAPSE * fs[14] or fs[10] < _COLLAPSE * fs[15]):
        ta, tb = 0.0, 0.0  # rebuild the sums two-pass around the means
        for i in range(w):
            ta += ba[i]
            tb += bb[i]
        ka, kb = ta / w, tb / w
        fs[2], fs[3] = ka, kb
        for q in range(4, 14):
            fs[q] = 0.0
        for i in range(w):  # compensated too: later removals would expose its error
            da, db = ba[i] - ka, bb[i] - kb
            ys = (da, db, da * da, db * db, da * db)
            for q in range(5):
                y, s = ys[q], fs[4 + 2 * q]
                t = s + y
                fs[5 + 2 * q] += ((s - t) + y) if abs(s) >= abs(y) else ((y - t) + s)
                fs[4 + 2 * q] = t
        fs[14], fs[15] = fs[8], fs[10]
        ma, mb = (fs[4] + fs[5]) / w, (fs[6] + fs[7]) / w
        va, vb = (fs[8] + fs[9]) / w - ma * ma, (fs[10] + fs[11]) / w - mb * mb
    mean_a, mean_b = ka + ma, kb + mb
    if va <= _FLAT2 * mean_a * mean_a or vb <= _FLAT2 * mean_b * mean_b:
        return 0.0  # constant up to rounding
    rho = ((fs[12] + fs[13]) / w - ma * mb) / (math.sqrt(va) * math.sqrt(vb))
    if rho > 1.0:  # rounding can overshoot +-1 by an ulp or so
        return 1.0
    if rho < -1.0:
        return -1.0
    return rho


_corr_step_nb = njit(cache=True)(_corr_step)


@njit(cache=True)
def _corr_one(xa, xb, fs, ist, w):
    return _corr_step_nb(xa, xb, fs[_CORR_F:_CORR_F + w], fs[_CORR_F + w:], fs, ist, w)


@njit(cache=True)
def _corr_kernel(xa, xb, out, fs, ist, w):
    ba, bb = fs[_CORR_F:_CORR_F + w], fs[_CORR_F + w:]
    for i in range(xa.shape[0]):
        out[i] = _corr_step_nb(xa[i], xb[i], ba, bb, fs, ist, w)


class CorrelationState(_State):
    """Incremental rolling Pearson correlation of two symbols' log returns.

    ``rho_t = cov(ra, rb) / (std(ra) * std(rb))`` over the last ``window`` return pairs,
    ``ra_t = ln(close_a_t / close_a_{t-1})`` and likewise ``rb``; dimensionless, clipped
    to [-1, 1]. The two series must be aligned candle by candle (same timestamps; the
    caller aligns them). If either window has zero variance (constant, e.g. a flat
    price, or std <= 1e-12 * |mean|: constant up to float rounding) the correlation is
    undefined and 0.0 is returned: NaN appears only during the warm-up.

    Parameters
    ----------
    window : int
        Number of return pairs, >= 2. First valid output at index ``window``; NaN before.

    Raises
    ------
    ValueError
        Naming ``window`` if it is not an int or is < 2.
    """

    _arrays = ("_fs", "_ist")

    def __init__(self, window: int) -> None:
        self.window = _check_int(window, "window", 2, "correlation")
        self._fs = np.zeros(_CORR_F + 2 * self.window, dtype=np.float64)
        self._ist = np.zeros(_CORR_I, dtype=np.int64)
        self._bind()

    def update(self, close_a: float, close_b: float) -> float:
        """Feed one aligned candle of both symbols (closes > 0); return rho or NaN."""
        return _corr_one(float(close_a), float(close_b), self._fs, self._ist, self.window)

    def update_many(self, close_a: np.ndarray, close_b: np.ndarray) -> np.ndarray:
        """Feed aligned chunks, shape (n,) each; return float64 correlations, shape (n,)."""
        xa, xb = _as_series(close_a, close_b)
        out = np.empty(xa.shape[0], dtype=np.float64)
        _corr_kernel(xa, xb, out, self._fs, self._ist, self.window)
        return out

    def __repr__(self) -> str:
        return f"CorrelationState({self.window})"


def correlation(close_a: np.ndarray, close_b: np.ndarray, window: int) -> np.ndarray:
    """Rolling Pearson correlation of two aligned series' log returns.

    Formula and zero-variance rule in :class:`CorrelationState`.

    Parameters
    ----------
    close_a, close_b : array_like, shape (n,)
        Closes of two symbols (> 0), aligned on the same candle timestamps.
    window : int
        Return pairs per window, >= 2.

    Returns
    -------
    np.ndarray
        float64, shape (n,), in [-1, 1]; NaN before index ``window``.

    Raises
    ------
    ValueError
        Bad ``window`` (named), inputs not 1-D or of different lengths.
    """
    return CorrelationState(window).update_many(close_a, close_b)
