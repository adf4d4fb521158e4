"""Price channels: Bollinger Bands (TA-Lib ``BBANDS``) and the Donchian channel.

Each indicator is one plain-Python *step* on scalars (the single definition), compiled by
numba (``inline="always"``) into two functions that run the same machine operations on
the state arrays: the chunk kernel (``update_many``, batch) and a one-candle update
(``update``, ~0.25 µs: faster than the uncompiled step on memoryviews, 0.55-0.7 µs, and
free of O(period) Python loops when the ring is recomputed or a block is scanned). Single
updates, chunks and batch are therefore bit-identical. Prices in quote currency; inputs
must be finite.
"""

from __future__ import annotations

import math

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

# --------------------------------------------------------------------------- steps
# State goes in as arguments and comes back in the returned tuple (kernel registers).


def _bb_step(x, buf, n, pos, k, d1, d2, a, period, inv, nbdev):
    """Bollinger step; ``buf`` (ring, mutated), n: count (saturates at period), pos: ring
    position (oldest value), k: shift (window mean at the last recompute), d1 / d2: sums
    of ``x - k`` and ``(x - k)**2`` over the window, a: largest ``dn**2 + do**2`` of the
    updates since the last recompute (scale of the sums' rounding errors); inv: 1 / period."""
    if n >= period:
        dn = x - k
        do = buf[pos] - k
        e = dn - do
        d1 = d1 + e
        d2 = d2 + e * (dn + do)
        a = max(a, dn * dn + do * do) if e != 0.0 else a  # e == 0: sums exact, unchanged
    else:
        n += 1
    buf[pos] = x
    pos += 1
    m1 = d1 * inv
    var = d2 * inv - m1 * m1
    # Exact two-pass recompute when the ring wraps (every `period` candles: the running
    # sums never drift), or when the variance is small against their rounding errors
    # (<= ~period * 1e-16 * a; e.g. a flat window after a spike): a flat window gives 0.
    if pos == period or (n >= period and var < 1e-4 * a):
        pos = 0 if pos == period else pos
        s = 0.0
        for i in range(period):
            s = s + buf[i]
        k = s * inv
        d1 = 0.0
        d2 = 0.0
        for i in range(period):
            e = buf[i] - k
            d1 = d1 + e
            d2 = d2 + e * e
        a = 0.0
        m1 = d1 * inv
        var = d2 * inv - m1 * m1
    if n < period:
        return _NAN, _NAN, _NAN, n, pos, k, d1, d2, a
    mid = k + m1
    dev = nbdev * math.sqrt(var) if var > 0.0 else 0.0
    return mid + dev, mid, mid - dev, n, pos, k, d1, d2, a


# Donchian positions and counts are unsigned (np.uint64, constants below): numba then
# indexes the ring without the negative-index wraparound code (~25% of the kernel time).
_U0, _U1, _U2 = np.uint64(0), np.uint64(1), np.uint64(2)


def _donchian_step(h, lo, buf, t, pos, ph, pl, period):
    """Donchian step (van Herk / Gil-Werman sliding max / min, streaming); ``buf``
    (mutated): highs ``[0, period]`` and lows ``[period + 1, 2 * period + 1]``, each
    ``period`` slots and a sentinel (-inf / +inf, never written); t: candles seen before
    this one; pos: position in the current block of ``period`` candles; ph / pl: highest
    high / lowest low of the block so far (prefix extremes). Slots before pos hold this
    block's values, slots from pos on the previous block's suffix extremes (the max /
    min of its slots ``i .. period - 1``), so the window is ``max(suffix[pos + 1],
    prefix)``; a completed block is turned into its suffix extremes in place (O(period)
    every period candles: O(1) per candle, no data-dependent branch). t, pos and
    period are np.uint64 (compiled: no wraparound code on the indices)."""
    buf[pos] = h
    buf[period + _U1 + pos] = lo
    ph = max(ph, h)
    pl = min(pl, lo)
    s = buf[pos + _U1]  # previous block's suffix (the sentinel on a block's last candle)
    up = max(ph, s)
    s = buf[period + _U2 + pos]
    dn = min(pl, s)
    pos += _U1
    if pos == period:  # loop written here, not in a helper: keeps refcounts out of kernels
        sh = buf[period - _U1]
        sl = buf[period + period]
        for k in range(period - _U1):
            i = period - _U2 - k
            v = buf[i]
            sh = max(sh, v)
            buf[i] = sh
            v = buf[period + _U1 + i]
            sl = min(sl, v)
            buf[period + _U1 + i] = sl
        pos = _U0
        ph = -math.inf
        pl = math.inf
    t += _U1
    if t < period:
        return _NAN, _NAN, t, pos, ph, pl
    return up, dn, t, pos, ph, pl


_bb_step_nb = njit(cache=True, inline="always")(_bb_step)
_donchian_step_nb = njit(cache=True, inline="always")(_donchian_step)

# Kernels allocate nothing, so they run without numba's reference counting
# (``_nrt=False``): with a loop in an inlined step, numba's refcount pruning may keep an
# atomic incref/decref of the ring buffer in every iteration (3-10x slower).


@njit(cache=True, _nrt=False)
def _bb_kernel(x, up, mid, low, buf, fs, ist, period, inv, nbdev):
    n, pos, k, d1, d2, a = ist[0], ist[1], fs[0], fs[1], fs[2], fs[3]
    for i in range(x.shape[0]):
        up[i], mid[i], low[i], n, pos, k, d1, d2, a = _bb_step_nb(
            x[i], buf, n, pos, k, d1, d2, a, period, inv, nbdev
        )
    ist[0], ist[1], fs[0], fs[1], fs[2], fs[3] = n, pos, k, d1, d2, a


@njit(cache=True, _nrt=False)
def _donchian_kernel(h, lo, up, low, buf, fs, ist, period):
    t, pos, ph, pl, p = ist[0], ist[1], fs[0], fs[1], np.uint64(period)
    for i in range(h.shape[0]):
        up[i], low[i], t, pos, ph, pl = _donchian_step_nb(h[i], lo[i], buf, t, pos, ph, pl, p)
    ist[0], ist[1], fs[0], fs[1] = t, pos, ph, pl


@njit(cache=True, _nrt=False)
def _bb_update(x, buf, fs, ist, period, inv, nbdev):
    up, mid, low, ist[0], ist[1], fs[0], fs[1], fs[2], fs[3] = _bb_step_nb(
        x, buf, ist[0], ist[1], fs[0], fs[1], fs[2], fs[3], period, inv, nbdev
    )
    return up, mid, low


@njit(cache=True, _nrt=False)
def _donchian_update(h, lo, buf, fs, ist, period):
    up, low, ist[0], ist[1], fs[0], fs[1] = _donchian_step_nb(
        h, lo, buf, ist[0], ist[1], fs[0], fs[1], np.uint64(period)
    )
    return up, low


# ---------------------------------------------------------------------- state classes


def _check_nbdev(nbdev) -> float:
    if isinstance(nbdev, bool) or not isinstance(nbdev, (int, float, np.integer, np.floating)):
        raise ValueError(  # noqa: TRY004 (contract: ValueError naming the parameter)
            f"bbands nbdev must be a number, got {type(nbdev).__name__} {nbdev!r}"
        )
    value = float(nbdev)
    if not math.isfinite(value) or value < 0.0:
        raise ValueError(f"bbands nbdev must be finite and >= 0, got {nbdev!r}")
    return value


class BollingerState(_State):
    """Incremental Bollinger Bands (Bollinger 2001; TA-Lib ``BBANDS``, ``matype=0``).

    ``middle = SMA(close, period)``, ``sd = sqrt(mean((close - middle)**2))`` over the
    same ``period`` closes (population std, ddof=0, as TA-Lib), ``upper = middle +
    nbdev * sd``, ``lower = middle - nbdev * sd`` (one multiplier both ways: TA-Lib's
    ``nbdevup == nbdevdn``). A constant window gives ``sd == 0`` exactly: the three
    bands are equal.

    O(1) per candle without cancellation: running sums of ``close - k`` and ``(close -
    k)**2``, the shift ``k`` being the window mean at the last exact two-pass recompute.
    The recompute runs every ``period`` candles (amortized O(1); errors never grow with
    stream length) and also whenever the variance gets small against the sums' rounding
    (a flat window after a move), so there is no ``E[x^2] - E[x]^2`` cancellation at
    high prices and a flat window gives exactly ``sd = 0``. Measured on the bundled 1h
    data: ~1e-15 relative to an extended-precision reference (TA-Lib: ~1e-13, up to
    6e-11 on a band near zero); agreement with TA-Lib is well within 1e-9.

    Parameters
    ----------
    period : int
        Window length in candles, >= 1 (``period=1``: ``sd = 0``). First valid output
        at index ``period - 1``; NaN before.
    nbdev : float
        Width in standard deviations, finite and >= 0.

    Raises
    ------
    ValueError
        Naming the parameter: ``period`` not an int or < 1; ``nbdev`` not a number,
        not finite or negative.
    """

    _arrays = ("_buf", "_fs", "_ist")

    def __init__(self, period: int, nbdev: float) -> None:
        self.period = _check_period(period, "bbands")
        self.nbdev = _check_nbdev(nbdev)
        self.inv = 1.0 / self.period
        self._buf = np.zeros(self.period, dtype=np.float64)  # ring of the last closes
        # shift k, sum(x - k), sum((x - k)**2), error scale a
        self._fs = np.zeros(4, dtype=np.float64)
        self._ist = np.zeros(2, dtype=np.int64)  # count (saturating), ring position
        self._bind()

    def update(self, close: float) -> tuple[float, float, float]:
        """Feed one closed candle's close; return ``(upper, middle, lower)`` in quote
        currency, NaN during warm-up."""
        return _bb_update(float(close), self._buf, self._fs, self._ist, self.period, self.inv,
                          self.nbdev)

    def update_many(self, close: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Feed a chunk of closes, shape (n,); return ``(upper, middle, lower)``,
        float64 arrays of shape (n,)."""
        (x,) = _as_series(close)
        up, mid, low = (np.empty(x.shape[0], dtype=np.float64) for _ in range(3))
        _bb_kernel(x, up, mid, low, self._buf, self._fs, self._ist, self.period, self.inv,
                   self.nbdev)
        return up, mid, low

    def __repr__(self) -> str:
        return f"BollingerState({self.period}, {self.nbdev!r})"


class DonchianState(_State):
    """Incremental Donchian channel (R. Donchian's price channel; no TA-Lib function,
    equals TA-Lib ``MAX(high, period)`` / ``MIN(low, period)``).

    ``upper_t = max(high_{t-period+1} .. high_t)``, ``lower_t = min(low_{t-period+1} ..
    low_t)``: the last ``period`` candles *including* the current one (shift the output
    by one candle for a breakout rule against the previous channel). Van Herk /
    Gil-Werman sliding max / min in streaming form: the stream is cut into blocks of
    ``period`` candles; the window ending at a candle is the tail of the previous block
    plus the head of the current one, so its high (low) is the larger (smaller) of the
    previous block's suffix extreme from there on and the current block's running
    (prefix) extreme.
    When a block completes, its suffix extremes are computed once in place (O(period)
    every ``period`` candles). O(1) per candle whatever the data (no rescan, no
    data-dependent branch; a monotonic series costs the same as market data), O(period)
    memory (one block of highs and one of lows). Max / min are exact: the outputs equal
    TA-Lib's and a numpy sliding-window max / min bit for bit. Inputs must be finite
    (not checked).

    Parameters
    ----------
    period : int
        Window length in candles, >= 1. First valid output at index ``period - 1``;
        NaN before.

    Raises
    ------
    ValueError
        If ``period`` is not an int or is < 1.
    """

    _arrays = ("_buf", "_fs", "_ist")

    def __init__(self, period: int) -> None:
        self.period = _check_period(period, "donchian")
        # blocks of highs | lows, each followed by its sentinel (-inf | +inf); before the
        # first block completes, the "previous block" is all sentinels (never wins)
        self._buf = np.empty(2 * self.period + 2, dtype=np.float64)
        self._buf[: self.period + 1] = -np.inf
        self._buf[self.period + 1 :] = np.inf
        self._fs = np.array([-np.inf, np.inf])  # block's highest high, lowest low so far
        self._ist = np.zeros(2, dtype=np.uint64)  # candles seen, position in the block
        self._bind()

    def update(self, high: float, low: float) -> tuple[float, float]:
        """Feed one closed candle's high and low; return ``(upper, lower)`` in quote
        currency, NaN during warm-up."""
        return _donchian_update(float(high), float(low), self._buf, self._fs, self._ist,
                                self.period)

    def update_many(self, high: np.ndarray, low: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Feed a chunk, arrays of shape (n,); return ``(upper, lower)``, float64
        arrays of shape (n,)."""
        h, lo = _as_series(high, low)
        up, low_out = np.empty(h.shape[0]), np.empty(h.shape[0])
        _donchian_kernel(h, lo, up, low_out, self._buf, self._fs, self._ist, self.period)
        return up, low_out


# ---------------------------------------------------------------------------- batch


def bbands(close: np.ndarray, period: int = 20,
           nbdev: float = 2.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bollinger Bands (Bollinger 2001; TA-Lib ``BBANDS(close, period, nbdev, nbdev,
    matype=0)``); formula in :class:`BollingerState`.

    Parameters
    ----------
    close : array_like, shape (n,)
        Closes in quote currency.
    period : int
        Window length in candles, >= 1.
    nbdev : float
        Width in population standard deviations, finite and >= 0.

    Returns
    -------
    tuple of np.ndarray
        ``(upper, middle, lower)``, float64, shape (n,) each, quote currency; NaN
        before index ``period - 1``.

    Raises
    ------
    ValueError
        Bad ``period`` or ``nbdev`` (naming it), or ``close`` not 1-D.
    """
    return BollingerState(period, nbdev).update_many(close)


def donchian(high: np.ndarray, low: np.ndarray, period: int) -> tuple[np.ndarray, np.ndarray]:
    """Donchian channel: highest high and lowest low of the last ``period`` candles,
    current one included; formula in :class:`DonchianState`.

    Parameters
    ----------
    high, low : array_like, shape (n,)
        Candle highs and lows in quote currency.
    period : int
        Window length in candles, >= 1.

    Returns
    -------
    tuple of np.ndarray
        ``(upper, lower)``, float64, shape (n,) each, quote currency; NaN before index
        ``period - 1``.

    Raises
    ------
    ValueError
        Bad ``period``, inputs not 1-D or of different lengths.
    """
    return DonchianState(period).update_many(high, low)


KINDS = {
    "bbands": IndicatorKind(SIGNATURES["bbands"], BollingerState),
    "donchian": IndicatorKind(SIGNATURES["donchian"], DonchianState),
}
