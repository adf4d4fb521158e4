"""Rolling statistics of log returns: annualised historical volatility (``hv``) and its
rolling z-score (``hvz``): steps, kernels, states. The rolling correlation of two
symbols lives in :mod:`gridflow.operators.indicators.pairs` and shares the
numerics described here.

All of them work on log returns ``r_t = ln(close_t / close_{t-1})`` of closed candles.
Windows count *returns*, so a window of ``w`` returns needs ``w + 1`` closes: the first
valid output is at index ``w`` (``w + z_window - 1`` for the z-score); NaN before.
Outside the warm-up the output is never NaN for positive finite closes. As in the other
indicator modules, a close that is not > 0 or not finite poisons the indicator: NaN for
that candle and all later ones.

Numerics: O(1) per candle, plus an O(window) rebuild when needed. Each window keeps
Neumaier-compensated running sums of ``d = x - k`` and ``d * d`` (and ``d_a * d_b``)
around a shift ``k``, so adding and removing values does not drift over long streams.
``var = mean(d**2) - mean(d)**2`` loses digits when ``|mean - k| >> std``; whenever
``mean(d**2) > 1000 * var`` the sums are rebuilt two-pass from the ring buffer with
``k`` = the window mean, which leaves at most ~1e-13 relative error in ``var``. They are
also rebuilt when ``sum(d**2)`` has fallen below 1e-8 of its peak since the last rebuild
(a volatile stretch left the window): the compensation terms carry rounding of order
1e-32 * peak, which would otherwise show in a near-flat window. A window of exactly equal
values (a flat price: all returns 0.0) has variance exactly 0.0 (tracked as the length of
the current run of equal values, not computed).

As elsewhere, plain-Python step functions are compiled with ``njit(cache=True)`` and
drive the chunk kernels. Unlike there, ``update`` calls compiled code too (one numba call,
~0.3 µs; the pure-Python steps take 1-3 µs here), so single updates, chunks and batch
results run the same machine code and are bit-identical; the uncompiled steps give the
same bits as well (tested).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from gridflow.indicator_names import SIGNATURES
from gridflow.operators.indicators._base import _NAN, IndicatorKind, _as_series, _State

MS_PER_YEAR = 365 * 86_400_000
"""Milliseconds in the 365-day year used to annualise: crypto trades 24/7, so a 1h
timeframe has 8760 periods per year (not 252 trading days)."""

_CANCEL = 1e3  # rebuild the sums when mean(d**2) > _CANCEL * var ...
_COLLAPSE = 1e-8  # ... or when sum(d**2) < _COLLAPSE * its peak since the last rebuild
_FLAT2 = 1e-24  # var <= _FLAT2 * mean**2 (std <= 1e-12 |mean|): equal up to rounding


def _check_int(value, name: str, minimum: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(  # noqa: TRY004 -- ValueError for every bad parameter, as _base
            f"{what} {name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{what} {name} must be >= {minimum}, got {value}")
    return int(value)


def _periods_per_year(timeframe_ms, what: str) -> float:
    return MS_PER_YEAR / _check_int(timeframe_ms, "timeframe_ms", 1, what)


# --------------------------------------------------------------------------- steps
# State goes in as arguments and comes back in the returned tuple, so kernels keep it in
# registers. Do not call one step from another: the compiled copy could not call it.

def _roll_step(x, buf, n, pos, run, k, s1, c1, s2, c2, hi, w):
    """Push ``x`` into a window of the last w values; return ``(var, dev, mean, *state)``:
    population variance (NaN until w values are held; exactly 0.0 for w equal values),
    ``x - mean`` and the mean. buf: ring (mutated); n: values held (saturates at w); run:
    current run of equal values (saturates at w); s1 + c1, s2 + c2: compensated sums of
    x - k and (x - k)**2; hi: peak of s2 since the last rebuild."""
    j = pos - 1 if pos > 0 else w - 1
    if n > 0 and x == buf[j]:
        if run < w:
            run += 1
    else:
        run = 1
    d = x - k
    t = s1 + d  # Neumaier-compensated adds of d and d*d
    c1 += ((s1 - t) + d) if abs(s1) >= abs(d) else ((d - t) + s1)
    s1 = t
    y = d * d
    t = s2 + y
    c2 += ((s2 - t) + y) if abs(s2) >= abs(y) else ((y - t) + s2)
    s2 = t
    if s2 > hi:
        hi = s2
    if n == w:  # window full: compensated removal of the oldest value
        d = k - buf[pos]
        t = s1 + d
        c1 += ((s1 - t) + d) if abs(s1) >= abs(d) else ((d - t) + s1)
        s1 = t
        y = -(d * d)
        t = s2 + y
        c2 += ((s2 - t) + y) if abs(s2) >= abs(y) else ((y - t) + s2)
        s2 = t
    else:
        n += 1
    buf[pos] = x
    pos = pos + 1 if pos + 1 < w else 0
    mm = (s2 + c2) / w
    if n < w or math.isnan(mm):  # warm-up, or poisoned by a NaN / inf input
        return _NAN, _NAN, _NAN, n, pos, run, k, s1, c1, s2, c2, hi
    if run >= w:
        return 0.0, 0.0, x, n, pos, run, k, s1, c1, s2, c2, hi
    m = (s1 + c1) / w
    v = mm - m * m
    if mm > _CANCEL * v or s2 < _COLLAPSE * hi:  # rebuild two-pass around the mean
        t = 0.0
        for i in range(w):
            t += buf[i]
        k = t / w
        s1, s2, c1, c2 = 0.0, 0.0, 0.0, 0.0
        for i in range(w):  # compensated too: later removals would expose its error
            d = buf[i] - k
            t = s1 + d
            c1 += ((s1 - t) + d) if abs(s1) >= abs(d) else ((d - t) + s1)
            s1 = t
            y = d * d
            t = s2 + y
            c2 += ((s2 - t) + y) if abs(s2) >= abs(y) else ((y - t) + s2)
            s2 = t
        hi = s2
        m = (s1 + c1) / w
        v = (s2 + c2) / w - m * m
    if v < 0.0:
        v = 0.0
    return v, (x - k) - m, k + m, n, pos, run, k, s1, c1, s2, c2, hi


_roll_step_nb = njit(cache=True)(_roll_step)

# State layout: ``fs`` float64 = scalars, then ring buffer(s); ``ist`` int64 = counters.
# A rolling window is fs: k, s1, c1, s2, c2, hi + ring | ist: n, pos, run. HV puts the
# previous close (NaN before the first candle) in front: fs = pc, window; hvz appends the
# window of HV values. ``*_one`` run one candle (used by ``update``).
_W_F, _W_I = 6, 3


@njit(cache=True)
def _hv_one(x, fs, ist, w, f):
    pc, out = fs[0], _NAN
    fs[0] = x
    if not math.isnan(pc):  # NaN before the first close
        r = math.log(x / pc) if x > 0.0 and pc > 0.0 else _NAN
        v, _, _, ist[0], ist[1], ist[2], fs[1], fs[2], fs[3], fs[4], fs[5], fs[6] = (
            _roll_step_nb(r, fs[1 + _W_F:1 + _W_F + w], ist[0], ist[1], ist[2],
                          fs[1], fs[2], fs[3], fs[4], fs[5], fs[6], w))
        out = math.sqrt(v * f)
    return out


@njit(cache=True)
def _z_one(h, fs, ist, zw):
    if math.isnan(h):  # HV warm-up (or poisoned)
        return _NAN
    v, dev, mean, ist[0], ist[1], ist[2], fs[0], fs[1], fs[2], fs[3], fs[4], fs[5] = (
        _roll_step_nb(h, fs[_W_F:], ist[0], ist[1], ist[2],
                      fs[0], fs[1], fs[2], fs[3], fs[4], fs[5], zw))
    if v <= _FLAT2 * mean * mean:  # HVs equal up to rounding (False for NaN)
        return 0.0
    return dev / math.sqrt(v)


@njit(cache=True)
def _hvz_one(x, fs, ist, w, zw, f):
    return _z_one(_hv_one(x, fs, ist, w, f), fs[1 + _W_F + w:], ist[_W_I:], zw)


@njit(cache=True)
def _hv_kernel(x, out, fs, ist, w, f):
    buf = fs[1 + _W_F:1 + _W_F + w]
    n, pos, run = ist[0], ist[1], ist[2]
    pc, k, s1, c1, s2, c2, hi = fs[0], fs[1], fs[2], fs[3], fs[4], fs[5], fs[6]
    for i in range(x.shape[0]):
        out[i] = _NAN
        if not math.isnan(pc):
            r = math.log(x[i] / pc) if x[i] > 0.0 and pc > 0.0 else _NAN
            v, _, _, n, pos, run, k, s1, c1, s2, c2, hi = _roll_step_nb(
                r, buf, n, pos, run, k, s1, c1, s2, c2, hi, w)
            out[i] = math.sqrt(v * f)
        pc = x[i]
    ist[0], ist[1], ist[2] = n, pos, run
    fs[0], fs[1], fs[2], fs[3], fs[4], fs[5], fs[6] = pc, k, s1, c1, s2, c2, hi


@njit(cache=True)
def _hvz_kernel(x, out, fs, ist, w, zw, f):
    _hv_kernel(x, out, fs, ist, w, f)  # HV values into ``out``, then z-scored in place
    zf, zi = fs[1 + _W_F + w:], ist[_W_I:]
    buf = zf[_W_F:]
    n, pos, run = zi[0], zi[1], zi[2]
    k, s1, c1, s2, c2, hi = zf[0], zf[1], zf[2], zf[3], zf[4], zf[5]
    for i in range(x.shape[0]):
        h = out[i]
        if not math.isnan(h):  # as _z_one
            v, dev, mean, n, pos, run, k, s1, c1, s2, c2, hi = _roll_step_nb(
                h, buf, n, pos, run, k, s1, c1, s2, c2, hi, zw)
            out[i] = 0.0 if v <= _FLAT2 * mean * mean else dev / math.sqrt(v)
    zi[0], zi[1], zi[2] = n, pos, run
    zf[0], zf[1], zf[2], zf[3], zf[4], zf[5] = k, s1, c1, s2, c2, hi


# ---------------------------------------------------------------------- state classes

class HistVolState(_State):
    """Incremental historical volatility of log returns, annualised.

    ``r_t = ln(close_t / close_{t-1})``; ``HV_t = std(r_{t-window+1} .. r_t, ddof=1) *
    sqrt(periods_per_year)`` with ``periods_per_year = 365 * 86_400_000 / timeframe_ms``
    (crypto trades 24/7: 8760 for 1h candles, 365 for 1d). Unit: fraction per year,
    0.65 = 65 % annualised volatility. A window of equal returns gives exactly 0.0.

    Parameters
    ----------
    window : int
        Number of returns in the window, >= 2. First valid output at index ``window``
        (``window + 1`` closes); NaN before.
    timeframe_ms : int
        Candle length in milliseconds, > 0 (3_600_000 for 1h).

    Raises
    ------
    ValueError
        Naming ``window`` or ``timeframe_ms`` if not an int, ``window < 2`` or
        ``timeframe_ms <= 0``.
    """

    _arrays = ("_fs", "_ist")

    def __init__(self, window: int, timeframe_ms: int) -> None:
        self.window = _check_int(window, "window", 2, "hv")
        self.periods_per_year = _periods_per_year(timeframe_ms, "hv")
        self.timeframe_ms = int(timeframe_ms)
        self._f = self.periods_per_year * self.window / (self.window - 1)
        self._fs = np.zeros(1 + _W_F + self.window, dtype=np.float64)
        self._fs[0] = np.nan  # no previous close yet
        self._ist = np.zeros(_W_I, dtype=np.int64)
        self._bind()

    def update(self, close: float) -> float:
        """Feed one closed candle's close (quote currency, > 0); return HV or NaN."""
        return _hv_one(float(close), self._fs, self._ist, self.window, self._f)

    def update_many(self, close: np.ndarray) -> np.ndarray:
        """Feed a chunk of closes, shape (n,); return float64 HV values, shape (n,)."""
        (x,) = _as_series(close)
        out = np.empty(x.shape[0], dtype=np.float64)
        _hv_kernel(x, out, self._fs, self._ist, self.window, self._f)
        return out

    def __repr__(self) -> str:
        return f"HistVolState({self.window}, timeframe_ms={self.timeframe_ms})"


class HistVolZState(_State):
    """Incremental rolling z-score of the historical volatility.

    ``z_t = (HV_t - mean(HV)) / std(HV)`` over the last ``z_window`` HV values
    (:class:`HistVolState`), population std (``ddof=0``): the window is the whole
    reference sample, and ``|z| <= sqrt(z_window - 1)``. Dimensionless. When the window's
    HVs are equal (std 0, or std <= 1e-12 * mean HV: equal up to float rounding, e.g. the
    same set of returns in a different order) the z-score is 0.0, never NaN or inf.
    Just above that, z is ill-conditioned (an HV rounding error of 1e-16 relative moves z
    by ~1e-16 * mean / std); on real data this only happens with ``z_window=2``, where z
    is exactly -1, 0 or +1 anyway.

    Parameters
    ----------
    window : int
        HV window in returns, >= 2.
    z_window : int
        Number of HV values in the z-score window, >= 2. First valid output at index
        ``window + z_window - 1``; NaN before.
    timeframe_ms : int
        Candle length in milliseconds, > 0.

    Raises
    ------
    ValueError
        Naming ``window``, ``z_window`` or ``timeframe_ms`` if not an int, a window < 2
        or ``timeframe_ms <= 0``.
    """

    _arrays = ("_fs", "_ist")

    def __init__(self, window: int, z_window: int, timeframe_ms: int) -> None:
        self.window = _check_int(window, "window", 2, "hvz")
        self.z_window = _check_int(z_window, "z_window", 2, "hvz")
        self.periods_per_year = _periods_per_year(timeframe_ms, "hvz")
        self.timeframe_ms = int(timeframe_ms)
        self._f = self.periods_per_year * self.window / (self.window - 1)
        self._fs = np.zeros(1 + 2 * _W_F + self.window + self.z_window, dtype=np.float64)
        self._fs[0] = np.nan  # no previous close yet
        self._ist = np.zeros(2 * _W_I, dtype=np.int64)
        self._bind()

    def update(self, close: float) -> float:
        """Feed one closed candle's close (quote currency, > 0); return z or NaN."""
        return _hvz_one(float(close), self._fs, self._ist, self.window, self.z_window, self._f)

    def update_many(self, close: np.ndarray) -> np.ndarray:
        """Feed a chunk of closes, shape (n,); return float64 z-scores, shape (n,)."""
        (x,) = _as_series(close)
        out = np.empty(x.shape[0], dtype=np.float64)
        _hvz_kernel(x, out, self._fs, self._ist, self.window, self.z_window, self._f)
        return out

    def __repr__(self) -> str:
        return f"HistVolZState({self.window}, {self.z_window}, timeframe_ms={self.timeframe_ms})"


# ---------------------------------------------------------------------------- batch

def hist_vol(close: np.ndarray, window: int, timeframe_ms: int) -> np.ndarray:
    """Annualised historical volatility of log returns; formula in :class:`HistVolState`.

    Parameters
    ----------
    close : array_like, shape (n,)
        Closes in quote currency, > 0.
    window : int
        Returns per window, >= 2.
    timeframe_ms : int
        Candle length in ms, > 0; annualisation ``sqrt(365 * 86_400_000 / timeframe_ms)``.

    Returns
    -------
    np.ndarray
        float64, shape (n,), fraction per year (0.65 = 65 %); NaN before index ``window``.

    Raises
    ------
    ValueError
        Bad ``window`` / ``timeframe_ms`` (named in the message), or ``close`` not 1-D.
    """
    return HistVolState(window, timeframe_ms).update_many(close)


def hist_vol_zscore(close: np.ndarray, window: int, z_window: int,
                    timeframe_ms: int) -> np.ndarray:
    """Rolling z-score (ddof=0) of the historical volatility; see :class:`HistVolZState`.

    Parameters
    ----------
    close : array_like, shape (n,)
        Closes in quote currency, > 0.
    window : int
        HV window in returns, >= 2.
    z_window : int
        HV values per z-score window, >= 2.
    timeframe_ms : int
        Candle length in ms, > 0.

    Returns
    -------
    np.ndarray
        float64, shape (n,), dimensionless; NaN before index ``window + z_window - 1``;
        0.0 where the window's HVs are equal.

    Raises
    ------
    ValueError
        Bad ``window`` / ``z_window`` / ``timeframe_ms`` (named), or ``close`` not 1-D.
    """
    return HistVolZState(window, z_window, timeframe_ms).update_many(close)


KINDS = {
    "hv": IndicatorKind(SIGNATURES["hv"], HistVolState),
    "hvz": IndicatorKind(SIGNATURES["hvz"], HistVolZState),
}
