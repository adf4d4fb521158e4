"""Market regime of the trailing window (``regime``): crash / bull / bear / range, the
rule's one definition, its numba kernels and the streaming state.

The rule (first match wins; thresholds inclusive, ratio comparisons with ``_EPS`` = 1e-9
of floating-point slack; the table with its rationale is
:data:`gridflow.wfo.regimes.REGIME_RULES`):

==========  ====  ==========================================================================
label       code  rule on the closes of one window
==========  ====  ==========================================================================
``crash``   0     worst drawdown >= :data:`CRASH_DRAWDOWN` (0.30) AND its peak-to-trough
                  span ``(trough - peak) * timeframe_ms`` <= :data:`CRASH_DAYS` (30) days
``bull``    1     total return ``close[-1] / close[0] - 1`` >= +:data:`TREND_RETURN` (0.15)
``bear``    2     total return <= -:data:`TREND_RETURN`
``range``   3     anything else
==========  ====  ==========================================================================

:func:`regime_code` classifies; :func:`window_worst_drawdown` finds the worst drawdown
with the tie rules and the arithmetic of :func:`gridflow.metrics.worst_drawdown` (bit
for bit: depth ``1.0 - close / running_max``, trough = first index of the largest depth,
peak = latest index up to the trough holding the running maximum). The walk-forward's
:func:`gridflow.wfo.regimes.regime_label` calls the same :func:`regime_code`.

The indicator ``regime_<window>`` (:class:`RegimeState`, :func:`market_regime`) gives at
candle ``t`` the code of the window ``close[t - window + 1 .. t]`` as float64 (0.0, 1.0,
2.0 or 3.0): exactly ``REGIME_CODES[regime_label(close[t-window+1 : t+1], timeframe_ms)]``.
It reads only closed candles up to ``t`` (causal). Warm-up: NaN for the first
``window - 1`` candles. A close that is not finite or not > 0 makes the output NaN for
the ``window`` candles whose window holds it (``regime_label`` would refuse such a
window), after which the indicator recovers: it has no state beyond the window.

Cost: O(window) per candle (a scan of a ring buffer of the last ``window`` closes, kept
twice so that the window is always one contiguous slice), about 1.5 ns per close
scanned: ~65 ms for 60k candles at window 720.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from gridflow.indicator_names import SIGNATURES
from gridflow.operators.indicators._base import _NAN, IndicatorKind, _as_series, _State
from gridflow.operators.indicators.statistics import _check_int
from gridflow.timeframes import DAY_MS

CRASH_DRAWDOWN = 0.30
"""Minimum worst drawdown (fraction of the peak) of a crash."""
CRASH_DAYS = 30
"""Maximum peak-to-trough span (days) of a crash's worst drawdown."""
TREND_RETURN = 0.15
"""Minimum absolute total return (fraction) of a bull / bear window."""
_EPS = 1e-9
"""Floating-point slack of the ratio comparisons (100 -> 115 is exactly +15 %)."""

REGIMES = ("crash", "bull", "bear", "range")
"""Regime labels in code order: ``REGIMES[code]`` is the label of a code."""
REGIME_CODES = {label: code for code, label in enumerate(REGIMES)}
"""Label -> code: ``{"crash": 0, "bull": 1, "bear": 2, "range": 3}``."""


# --------------------------------------------------------------------------- the rule

@njit(cache=True)
def regime_code(depth, span_ms, total_return):
    """Regime code of one window from its worst drawdown and total return (numba).

    Parameters
    ----------
    depth : float
        Worst drawdown of the window's closes, a fraction of the peak (0.3 = 30 %), as
        :func:`window_worst_drawdown` / :func:`gridflow.metrics.worst_drawdown` return it.
    span_ms : int
        Peak-to-trough span of that drawdown in ms: ``(trough - peak) * timeframe_ms``.
    total_return : float
        ``close[-1] / close[0] - 1`` (fraction).

    Returns
    -------
    int
        0 crash, 1 bull, 2 bear, 3 range (:data:`REGIME_CODES`): the first matching rule
        of the module docstring. NaN inputs match no threshold (a NaN depth skips crash;
        a NaN total return gives range): check the inputs first.
    """
    if depth >= CRASH_DRAWDOWN - _EPS and span_ms <= CRASH_DAYS * DAY_MS:
        return 0
    if total_return >= TREND_RETURN - _EPS:
        return 1
    if total_return <= -TREND_RETURN + _EPS:
        return 2
    return 3


@njit(cache=True)
def window_worst_drawdown(close):
    """Deepest peak-to-trough fall of one window of closes (numba).

    Same result as :func:`gridflow.metrics.worst_drawdown`, bit for bit, for finite
    closes > 0: depth ``max_t (1.0 - close_t / max_{s<=t} close_s)``, trough = the first
    index reaching that depth, peak = the latest index up to the trough holding the
    running maximum (the shortest span).

    Parameters
    ----------
    close : np.ndarray of float64, shape (n,), n >= 1
        Closes in quote currency, oldest first, finite and > 0 (not checked: a NaN / inf
        or non-positive value gives a meaningless result).

    Returns
    -------
    depth : float
        Positive fraction of the peak; 0.0 if the window never falls below a previous
        peak.
    peak, trough : int
        Indices into ``close``; ``(0, 0)`` with depth 0.0.
    """
    best, peak, trough = 0.0, 0, 0
    top, at_top = close[0], 0
    for i in range(close.shape[0]):
        x = close[i]
        if x >= top:  # a new running max, or the latest index holding it
            top, at_top = x, i
        dd = 1.0 - x / top  # as gridflow.metrics.drawdown: 1 - E_t / max_{s<=t} E_s
        if dd > best:  # strict: the first index reaching the max depth
            best, peak, trough = dd, at_top, i
    return best, peak, trough



# --------------------------------------------------------------------------- kernels
# State: ``buf`` float64 (2 * w,) = the ring of the last w closes, each written at
# ``pos`` and ``pos + w`` so that the window (oldest first) is always buf[pos:pos + w];
# ``ist`` int64 = candles seen, ring position, index of the last invalid close (-1: none).
_I = 3


@njit(cache=True)
def _regime_step(x, buf, ist, w, tf_ms):
    n, pos = ist[0], ist[1]
    buf[pos] = x
    buf[pos + w] = x
    if not (x > 0.0 and x < math.inf):  # NaN, inf or <= 0: windows holding it are NaN
        ist[2] = n
    n += 1
    pos = pos + 1 if pos + 1 < w else 0
    ist[0], ist[1] = n, pos
    if n < w or ist[2] >= n - w:  # warm-up, or an invalid close in the window
        return _NAN
    win = buf[pos:pos + w]
    depth, peak, trough = window_worst_drawdown(win)
    return float(regime_code(depth, (trough - peak) * tf_ms, win[w - 1] / win[0] - 1.0))


@njit(cache=True)
def _regime_kernel(x, out, buf, ist, w, tf_ms):
    for i in range(x.shape[0]):
        out[i] = _regime_step(x[i], buf, ist, w, tf_ms)


# ---------------------------------------------------------------------- state class

class RegimeState(_State):
    """Incremental market regime of the last ``window`` closes (module docstring).

    Output at candle ``t``: float64 code of ``close[t - window + 1 .. t]``, 0.0 crash,
    1.0 bull, 2.0 bear, 3.0 range (:data:`REGIME_CODES`), equal to
    :func:`gridflow.wfo.regimes.regime_label` of that window; NaN for the first
    ``window - 1`` candles and for windows holding a close that is not finite or > 0.
    Feeding a series in any split of chunks gives the same values; picklable at any
    point (state in two numpy arrays: 2 * ``window`` floats and 3 ints).

    Parameters
    ----------
    window : int
        Closes per window (candles), >= 2. First valid output at index ``window - 1``.
    timeframe_ms : int
        Candle length in ms, > 0 (3_600_000 for 1h): the crash rule's span is
        ``(trough - peak) * timeframe_ms``, so data gaps shorten it.

    Raises
    ------
    ValueError
        Naming ``window`` or ``timeframe_ms`` if not an int, ``window < 2`` or
        ``timeframe_ms <= 0``.
    """

    _arrays = ("_buf", "_ist")

    def __init__(self, window: int, timeframe_ms: int) -> None:
        self.window = _check_int(window, "window", 2, "regime")
        self.timeframe_ms = _check_int(timeframe_ms, "timeframe_ms", 1, "regime")
        self._buf = np.zeros(2 * self.window, dtype=np.float64)
        self._ist = np.zeros(_I, dtype=np.int64)
        self._ist[2] = -1  # no invalid close seen
        self._bind()

    def update(self, close: float) -> float:
        """Feed one closed candle's close (quote currency, > 0); return its code or NaN."""
        return _regime_step(float(close), self._buf, self._ist, self.window, self.timeframe_ms)

    def update_many(self, close: np.ndarray) -> np.ndarray:
        """Feed a chunk of closes, shape (n,); return float64 codes (or NaN), shape (n,)."""
        (x,) = _as_series(close)
        out = np.empty(x.shape[0], dtype=np.float64)
        _regime_kernel(x, out, self._buf, self._ist, self.window, self.timeframe_ms)
        return out

    def __repr__(self) -> str:
        return f"RegimeState({self.window}, timeframe_ms={self.timeframe_ms})"


# ---------------------------------------------------------------------------- batch

def market_regime(close: np.ndarray, window: int, timeframe_ms: int) -> np.ndarray:
    """Regime code of every trailing window of ``window`` closes; see :class:`RegimeState`.

    Parameters
    ----------
    close : array_like, shape (n,)
        Closes in quote currency, > 0, oldest first.
    window : int
        Closes per window, >= 2.
    timeframe_ms : int
        Candle length in ms, > 0.

    Returns
    -------
    np.ndarray
        float64, shape (n,): 0.0 crash, 1.0 bull, 2.0 bear, 3.0 range
        (:data:`REGIME_CODES`); NaN before index ``window - 1``.

    Raises
    ------
    ValueError
        Bad ``window`` / ``timeframe_ms`` (named in the message), or ``close`` not 1-D.
    """
    return RegimeState(window, timeframe_ms).update_many(close)


KINDS = {"regime": IndicatorKind(SIGNATURES["regime"], RegimeState)}
