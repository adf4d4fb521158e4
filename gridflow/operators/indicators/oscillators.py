"""Moving average convergence/divergence (TA-Lib ``MACD``): step, kernel, state.

Same scheme as :mod:`~gridflow.operators.indicators.moving_averages` (one plain-Python
step on scalars, compiled by numba into the chunk kernel), with one difference: TA-Lib
C >= 0.8 computes its EMA recursions with a fused multiply-add, ``fma(x - prev, k,
prev)``, and so does this step, which makes the three outputs bit-identical to TA-Lib
(a plain multiply-add differs by an ulp of the EMAs, which is large relative to the
line and histogram near their zero crossings). Python 3.11 has no ``math.fma``: the
uncompiled :func:`_fma` is exact but slow (``fractions``, a test reference only), so
``update`` runs the *compiled* step too, in a one-candle function on the state arrays
(~0.25 µs); single updates, chunks and batch are bit-identical.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from numba import njit
from numba.core import types
from numba.extending import intrinsic, overload

from gridflow.indicator_names import SIGNATURES
from gridflow.operators.indicators._base import (
    _NAN,
    IndicatorKind,
    _as_series,
    _check_period,
    _State,
)


def _fma(a, b, c):
    """``a * b + c`` with a single rounding (IEEE fma); exact rational pure-Python
    reference, ~µs. Compiled code uses the ``llvm.fma`` intrinsic instead."""
    return float(Fraction(a) * Fraction(b) + Fraction(c))


@intrinsic
def _fma_llvm(typingctx, a, b, c):
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return sig, codegen


@overload(_fma)
def _fma_overload(a, b, c):
    return lambda a, b, c: _fma_llvm(a, b, c)


# --------------------------------------------------------------------------- step
# State goes in as arguments and comes back in the returned tuple (kernel registers).


def _macd_step(x, n, sf, ss, sg, ef, es, eg, fast, slow, signal, kf, ks, kg):
    """MACD step; n: candles seen (saturates at slow + signal - 1), sf / ss / sg: seed
    sums of the fast, slow and signal EMAs, ef / es / eg: the EMAs. Returns
    ``(line, signal, hist, n, sf, ss, sg, ef, es, eg)``."""
    if n < slow - 1:  # warm-up of both close EMAs
        ss = ss + x
        if n >= slow - fast:  # TA-Lib seeds the fast EMA on the last `fast` closes
            sf = sf + x
        return _NAN, _NAN, _NAN, n + 1, sf, ss, sg, ef, es, eg
    if n == slow - 1:  # both EMAs seeded with their SMA at index slow - 1
        ss = ss + x
        sf = sf + x
        es = ss / slow
        ef = sf / fast
    else:
        ef = _fma(x - ef, kf, ef)  # TA-Lib 0.8: fma((x - prev), k, prev)
        es = _fma(x - es, ks, es)
    line = ef - es
    last = slow + signal - 2  # first valid index
    if n < last:
        return _NAN, _NAN, _NAN, n + 1, sf, ss, sg + line, ef, es, eg
    if n == last:
        sg = sg + line
        eg = sg / signal
        return line, eg, line - eg, n + 1, sf, ss, sg, ef, es, eg
    eg = _fma(line - eg, kg, eg)
    return line, eg, line - eg, n, sf, ss, sg, ef, es, eg


_macd_step_nb = njit(cache=True, inline="always")(_macd_step)


@njit(cache=True, _nrt=False)  # allocates nothing: no refcounting (see bands.py)
def _macd_kernel(x, line, sig, hist, fs, ist, fast, slow, signal, kf, ks, kg):
    n = ist[0]
    sf, ss, sg, ef, es, eg = fs[0], fs[1], fs[2], fs[3], fs[4], fs[5]
    for i in range(x.shape[0]):
        line[i], sig[i], hist[i], n, sf, ss, sg, ef, es, eg = _macd_step_nb(
            x[i], n, sf, ss, sg, ef, es, eg, fast, slow, signal, kf, ks, kg
        )
    ist[0] = n
    fs[0], fs[1], fs[2], fs[3], fs[4], fs[5] = sf, ss, sg, ef, es, eg


@njit(cache=True, _nrt=False)
def _macd_update(x, fs, ist, fast, slow, signal, kf, ks, kg):
    line, sig, hist, ist[0], fs[0], fs[1], fs[2], fs[3], fs[4], fs[5] = _macd_step_nb(
        x, ist[0], fs[0], fs[1], fs[2], fs[3], fs[4], fs[5], fast, slow, signal, kf, ks, kg
    )
    return line, sig, hist


# ---------------------------------------------------------------------- state class


class MACDState(_State):
    """Incremental MACD (G. Appel, 1979; TA-Lib ``MACD``, default compatibility).

    With ``EMA_p`` TA-Lib's exponential average (``k = 2 / (p + 1)``, seeded with an
    SMA, then ``EMA_t = (x_t - EMA_{t-1}) * k + EMA_{t-1}`` as one fused multiply-add):

    * ``line = EMA_fast(close) - EMA_slow(close)``, from index ``slow - 1``. TA-Lib
      quirk, reproduced: both close EMAs start at index ``slow - 1``, so the fast EMA
      is seeded with the SMA of closes ``slow - fast .. slow - 1`` (not of the first
      ``fast`` closes, as a standalone ``EMA(fast)`` would be);
    * ``signal = EMA_signal(line)``, seeded with the SMA of the first ``signal`` line
      values (indices ``slow - 1 .. slow + signal - 2``);
    * ``hist = line - signal``.

    All three are in quote currency and NaN before index ``slow + signal - 2`` (TA-Lib
    hides the line during the signal warm-up too).

    Parameters
    ----------
    fast, slow, signal : int
        EMA periods, ``1 <= fast < slow`` and ``signal >= 1`` (TA-Lib additionally
        requires ``fast, slow >= 2`` and swaps ``fast > slow`` silently; here that is an
        error).

    Raises
    ------
    ValueError
        Naming the parameter: a period that is not an int or is < 1, or ``fast >= slow``.
    """

    _arrays = ("_fs", "_ist")

    def __init__(self, fast: int, slow: int, signal: int) -> None:
        self.fast = _check_period(fast, "macd fast")
        self.slow = _check_period(slow, "macd slow")
        self.signal = _check_period(signal, "macd signal")
        if self.fast >= self.slow:
            raise ValueError(
                f"macd fast period must be < slow period, got fast={self.fast}, slow={self.slow}"
            )
        self.kf = 2.0 / (self.fast + 1)
        self.ks = 2.0 / (self.slow + 1)
        self.kg = 2.0 / (self.signal + 1)
        self._fs = np.zeros(6, dtype=np.float64)  # seed sums fast/slow/signal, EMAs f/s/g
        self._ist = np.zeros(1, dtype=np.int64)  # count, saturating at slow + signal - 1
        self._bind()

    def update(self, close: float) -> tuple[float, float, float]:
        """Feed one closed candle's close (quote currency).

        Returns
        -------
        tuple of float
            ``(line, signal, hist)`` in quote currency; NaN during warm-up.
        """
        return _macd_update(float(close), self._fs, self._ist, self.fast, self.slow,
                            self.signal, self.kf, self.ks, self.kg)

    def update_many(self, close: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Feed a chunk of closes, shape (n,).

        Returns
        -------
        tuple of np.ndarray
            ``(line, signal, hist)``, float64, shape (n,) each, quote currency.
        """
        (x,) = _as_series(close)
        line, sig, hist = (np.empty(x.shape[0], dtype=np.float64) for _ in range(3))
        _macd_kernel(x, line, sig, hist, self._fs, self._ist, self.fast, self.slow,
                     self.signal, self.kf, self.ks, self.kg)
        return line, sig, hist

    def __repr__(self) -> str:
        return f"MACDState({self.fast}, {self.slow}, {self.signal})"


# ---------------------------------------------------------------------------- batch


def macd(close: np.ndarray, fast: int = 12, slow: int = 26,
         signal: int = 9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MACD line, signal and histogram (TA-Lib ``MACD``); formula in :class:`MACDState`.

    Parameters
    ----------
    close : array_like, shape (n,)
        Closes in quote currency.
    fast, slow, signal : int
        EMA periods, ``1 <= fast < slow``, ``signal >= 1``.

    Returns
    -------
    tuple of np.ndarray
        ``(line, signal, hist)``, float64, shape (n,) each, quote currency; NaN before
        index ``slow + signal - 2``.

    Raises
    ------
    ValueError
        Bad period (naming it), ``fast >= slow``, or ``close`` not 1-D.
    """
    return MACDState(fast, slow, signal).update_many(close)


KINDS = {
    "macd": IndicatorKind(SIGNATURES["macd"], MACDState),
}
