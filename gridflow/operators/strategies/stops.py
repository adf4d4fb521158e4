"""The k x ATR initial stop of a strategy (``sl_atr``): the distance from the average
entry that a position opening on a close's quotes keeps for its whole cycle.

:func:`stop_distance` is the one rule (numba, scalar): the streaming strategies apply it
to a chunk (:func:`stop_distances`) and the sweep kernel per candle, so a replay, a live
run and a sweep stop a position at the same price. The account kernel
(``grid_kernel._stop``) takes the tighter of it and the ``sl_frac`` stop (and the
trailing stop).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from gridflow.operators.indicators import indicator_name


@njit(cache=True, _nrt=False)
def stop_distance(k, atr):
    """``k * atr`` (quote) for ``k > 0`` and a finite ``atr > 0`` (ATR of the candle
    just closed, Wilder 1978); NaN (no ATR stop) otherwise."""
    if k > 0.0 and math.isfinite(atr) and atr > 0.0:
        return k * atr
    return np.nan


@njit(cache=True, _nrt=False)
def _distances(k, atr, out):
    for i in range(atr.shape[0]):
        out[i] = stop_distance(k, atr[i])


def stop_indicator(p) -> str | None:
    """The ATR the k x ATR stop of strategy parameters ``p`` reads (``atr_<sl_atr_period>``),
    or None when ``p.sl_atr`` is 0 (off)."""
    return indicator_name("atr", p.sl_atr_period) if p.sl_atr > 0.0 else None


def stop_distances(p, values: dict[str, np.ndarray], n: int) -> np.ndarray:
    """The k x ATR stop distance (quote) at each of ``n`` candle closes: float64 (n,),
    NaN where there is none (off, ATR warming up).

    Raises
    ------
    KeyError
        ``values`` lacks the ATR (:func:`stop_indicator`).
    """
    out = np.full(n, np.nan)
    name = stop_indicator(p)
    if name is not None:
        _distances(float(p.sl_atr), np.ascontiguousarray(values[name], dtype=np.float64), out)
    return out


__all__ = ["stop_distance", "stop_distances", "stop_indicator"]
