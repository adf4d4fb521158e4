"""Market-regime label of a walk-forward window from its close prices.

Rules, checked in this order (the first match wins):

==========  ==========================================================================
label       rule
==========  ==========================================================================
``crash``   worst drawdown of the closes >= ``CRASH_DRAWDOWN`` (30 %) AND the
            peak-to-trough span of that worst drawdown <= ``CRASH_DAYS`` (30 days)
``bull``    total return ``close[-1] / close[0] − 1`` >= ``+TREND_RETURN`` (+15 %)
``bear``    total return <= ``−TREND_RETURN`` (−15 %)
``range``   anything else
==========  ==========================================================================

All thresholds are inclusive; ratio comparisons allow ``_EPS`` (1e-9) of floating-point
slack so that e.g. 100 → 115 counts as exactly +15 %. Only the *worst* drawdown is timed:
a 40 % slide over 60 days that contains a fast 30 % leg is not a crash. The span is
``(trough − peak) · tf_ms``, i.e. measured in candles, so data gaps shorten it.
Thresholds are conventional rules of thumb (a 20 % fall defines a bear market in the
equity-market press; crypto's volatility motivates the wider ±15 % over a window and
30 % for a crash), not estimates from data.
"""

from __future__ import annotations

import numpy as np

# The thresholds and the classification have one definition, shared with the streaming
# indicator ``regime_<window>``: gridflow.operators.indicators.regime.
from gridflow.operators.indicators.regime import (
    _EPS,  # noqa: F401 -- re-exported: the 1e-9 slack of the table above
    CRASH_DAYS,
    CRASH_DRAWDOWN,
    REGIMES,
    TREND_RETURN,
    regime_code,
)
from gridflow.wfo.stats import worst_drawdown

__all__ = ["CRASH_DAYS", "CRASH_DRAWDOWN", "REGIMES", "REGIME_RULES", "TREND_RETURN",
           "regime_label", "regime_labels"]

REGIME_RULES = __doc__
"""The rule table above, for reports."""


def regime_label(close, tf_ms: int) -> str:
    """Label one window's market as ``"crash"``, ``"bull"``, ``"bear"`` or ``"range"``.

    Parameters
    ----------
    close : array_like, shape (n,)
        Close prices in quote currency, oldest first, finite and > 0, n >= 1.
    tf_ms : int
        Candle timeframe in ms (spacing of ``close``).

    Returns
    -------
    str
        The first matching rule of :data:`REGIME_RULES` (module docstring): crash by
        worst drawdown (:func:`gridflow.wfo.stats.worst_drawdown`) and its span, then
        bull / bear by total return, else range; classified by
        :func:`gridflow.operators.indicators.regime.regime_code`, the rule the causal
        indicator ``regime_<window>`` uses.
    """
    c = np.asarray(close, dtype=np.float64)
    if c.ndim != 1 or c.size == 0:
        raise ValueError(f"close must be a non-empty 1-D array, got shape {c.shape}")
    if not np.all(np.isfinite(c)) or np.any(c <= 0):
        raise ValueError("close prices must be finite and > 0")
    if not tf_ms > 0:
        raise ValueError(f"tf_ms must be > 0, got {tf_ms!r}")
    depth, peak, trough = worst_drawdown(c)
    return REGIMES[regime_code(depth, (trough - peak) * tf_ms, float(c[-1] / c[0] - 1.0))]


def regime_labels(ts_ms, close, windows, tf_ms: int | None = None) -> list[str]:
    """Regime label of each half-open window ``[start_ms, end_ms)`` of one price series.

    Parameters
    ----------
    ts_ms : array_like of int, shape (n,)
        Candle times in ms UTC, strictly increasing.
    close : array_like, shape (n,)
        Close prices in quote currency.
    windows : sequence of (int, int)
        ``(start_ms, end_ms)`` pairs; candles with ``start_ms <= ts < end_ms`` belong
        to the window.
    tf_ms : int, optional
        Candle timeframe in ms; default the smallest gap between consecutive ``ts_ms``.

    Returns
    -------
    list of str
        :func:`regime_label` of every window, in the order given.

    Raises
    ------
    ValueError
        If a window holds no candle, or the inputs are malformed.
    """
    ts = np.asarray(ts_ms, dtype=np.int64)
    c = np.asarray(close, dtype=np.float64)
    if ts.ndim != 1 or ts.shape != c.shape:
        raise ValueError(f"ts_ms {ts.shape} and close {c.shape} must be 1-D, same length")
    gaps = np.diff(ts)
    if np.any(gaps <= 0):
        raise ValueError("ts_ms must be strictly increasing")
    if tf_ms is None:
        if gaps.size == 0:
            raise ValueError("tf_ms is needed when there are fewer than 2 candles")
        tf_ms = int(gaps.min())
    labels = []
    for start, end in windows:
        lo, hi = np.searchsorted(ts, [start, end], side="left")
        if hi <= lo:
            raise ValueError(f"window [{start}, {end}) holds no candle")
        labels.append(regime_label(c[lo:hi], tf_ms))
    return labels
