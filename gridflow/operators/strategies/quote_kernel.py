"""The quote rule of every grid strategy as one scalar numba function.

:func:`quote_at` turns the indicator values of one candle close into the resting quotes
(side, level prices, take profit, trailing distance). The streaming strategies
(:mod:`gridflow.operators.strategies`) call it through :func:`quotes_array` for a chunk
and the sweep kernel (:mod:`gridflow.sweep.kernel`) calls it per candle and combination:
one implementation, so a parameter set quotes the same prices in a replay and in a sweep.

A strategy's parameters become a float vector ``qp`` (:func:`quote_params`):

==========  ============================================================================
column      meaning
==========  ============================================================================
Q_KIND      ``KIND_GRID_ATR`` / ``KIND_ENVELOPE`` / ``KIND_MULTI_TF`` / ``KIND_TREND``
Q_SIDE      +1 long / -1 short (grid ATR, envelope DCA); unused by the others
Q_LEVELS    number of levels ``L``
Q_TICK      price tick (quote); 0 disables rounding
Q_ADX       ADX threshold of the trend grid
Q_TRAIL     trailing distance in ATRs (trend grid)
Q_MULT+i    level ``i``: ATR multiple ``atr_start + i * atr_step`` (ATR grids) or price
            factor ``1 - offset_i`` / ``1 / (1 - offset_i)`` (envelope long / short)
==========  ============================================================================

Inputs per kind, ``x0..x3`` (NaN in warm-up): grid ATR ``(SMA, ATR)``; envelope ``(SMA)``;
multi-timeframe ``(SMA, ATR, Supertrend direction)``; trend ``(EMA fast, ATR, EMA slow,
ADX)``. Levels are tick-rounded away from the market (down for buys, up for sells) and a
non-positive level is NaN; the take profit is the centre rounded in the profit direction,
away from the grid (up for longs, down for shorts).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

KIND_GRID_ATR, KIND_ENVELOPE, KIND_MULTI_TF, KIND_TREND = 0, 1, 2, 3
KINDS = {"grid_atr": KIND_GRID_ATR, "envelope_dca": KIND_ENVELOPE,
         "grid_multi_tf": KIND_MULTI_TF, "grid_trend": KIND_TREND}
MAX_LEVELS = 20
Q_KIND, Q_SIDE, Q_LEVELS, Q_TICK, Q_ADX, Q_TRAIL, Q_MULT = range(7)
Q_W = Q_MULT + MAX_LEVELS


@njit(cache=True, _nrt=False)
def round_price(raw, tick, up):
    """``raw`` rounded to the tick (quote), up (ceil) or down (floor), with a 1e-9 tick
    tolerance so a price already on the grid stays; ``tick <= 0`` returns ``raw``."""
    if tick <= 0.0:
        return raw
    if up:
        return math.ceil(raw / tick - 1e-9) * tick
    return math.floor(raw / tick + 1e-9) * tick


@njit(cache=True, _nrt=False)
def _positive(x):
    return x if x > 0.0 else np.nan


@njit(cache=True, _nrt=False)
def _atr_levels(qp, center, atr, d, lv):
    tick = qp[Q_TICK]
    for i in range(int(qp[Q_LEVELS])):
        dist = atr * qp[Q_MULT + i]
        lv[i] = _positive(round_price(center - d * dist, tick, d < 0))


@njit(cache=True, _nrt=False)
def quote_at(qp, x0, x1, x2, x3, lv):
    """Quotes decided at one candle close.

    Parameters
    ----------
    qp : float64 (Q_W,)
        Strategy parameters (:func:`quote_params`).
    x0, x1, x2, x3 : float
        Indicator values of the candle just closed (see the module docstring).
    lv : float64 (>= L,)
        Receives the ``L`` level prices (quote; NaN = not quoted).

    Returns
    -------
    (side, take_profit, trail) : (int, float, float)
        Side +1 / -1 / 0 (warm-up or no direction), take profit price (NaN for none),
        trailing-stop distance in quote (NaN for none).
    """
    kind = int(qp[Q_KIND])
    L = int(qp[Q_LEVELS])
    tick = qp[Q_TICK]
    for i in range(L):
        lv[i] = np.nan
    if kind == KIND_GRID_ATR:
        d = int(qp[Q_SIDE])
        if not (math.isfinite(x0) and math.isfinite(x1)):
            return 0, np.nan, np.nan
        _atr_levels(qp, x0, x1, d, lv)
        return d, round_price(x0, tick, d > 0), np.nan
    if kind == KIND_ENVELOPE:
        d = int(qp[Q_SIDE])
        if not math.isfinite(x0):
            return 0, np.nan, np.nan
        for i in range(L):
            lv[i] = _positive(round_price(x0 * qp[Q_MULT + i], tick, d < 0))
        return d, round_price(x0, tick, d > 0), np.nan
    if kind == KIND_MULTI_TF:
        if not (math.isfinite(x0) and math.isfinite(x1) and math.isfinite(x2) and x2 != 0.0):
            return 0, np.nan, np.nan
        d = -1 if x2 < 0.0 else 1
        _atr_levels(qp, x0, x1, d, lv)
        return d, round_price(x0, tick, d > 0), np.nan
    # KIND_TREND
    if not (math.isfinite(x0) and math.isfinite(x1) and math.isfinite(x2)
            and math.isfinite(x3)):
        return 0, np.nan, np.nan
    diff = x0 - x2
    side = 1 if diff > 0.0 else (-1 if diff < 0.0 else 0)
    if side != 0 and x3 >= qp[Q_ADX]:
        _atr_levels(qp, x0, x1, side, lv)
    return side, np.nan, qp[Q_TRAIL] * x1


@njit(cache=True, _nrt=False)
def _quotes_loop(qp, x0, x1, x2, x3, side, lv, tp, trail):
    for t in range(x0.shape[0]):
        s, p, r = quote_at(qp, x0[t], x1[t], x2[t], x3[t], lv[t])
        side[t] = s
        tp[t] = p
        trail[t] = r


def quotes_array(qp: np.ndarray, x0, x1=None, x2=None, x3=None):
    """:func:`quote_at` over a chunk of ``n`` candle closes.

    Parameters
    ----------
    qp : float64 (Q_W,)
    x0, x1, x2, x3 : float64 (n,) or None (unused inputs of the kind)

    Returns
    -------
    (side int64 (n,), levels float64 (n, L), take_profit float64 (n,), trail float64 (n,))
    """
    x0 = np.ascontiguousarray(x0, dtype=np.float64)
    n = x0.shape[0]
    nan = np.full(n, np.nan)
    xs = [nan if x is None else np.ascontiguousarray(x, dtype=np.float64) for x in (x1, x2, x3)]
    L = int(qp[Q_LEVELS])
    side = np.zeros(n, np.int64)
    lv = np.full((n, L), np.nan)
    tp = np.full(n, np.nan)
    trail = np.full(n, np.nan)
    _quotes_loop(qp, x0, xs[0], xs[1], xs[2], side, lv, tp, trail)
    return side, lv, tp, trail


def quote_params(p, tick: float = 0.0) -> np.ndarray:
    """The ``qp`` vector (float64 (Q_W,)) of a strategy's parameters
    (:mod:`gridflow.config.strategies`) at price tick ``tick`` (quote)."""
    qp = np.zeros(Q_W)
    qp[Q_KIND] = KINDS[p.name]
    qp[Q_LEVELS] = p.levels_count
    qp[Q_TICK] = tick
    if p.name == "envelope_dca":
        d = 1 if p.side == "long" else -1
        off = np.asarray(p.offsets, dtype=np.float64)
        qp[Q_SIDE] = d
        qp[Q_MULT:Q_MULT + len(off)] = 1.0 - off if d > 0 else 1.0 / (1.0 - off)
        return qp
    k = p.atr_start + p.atr_step * np.arange(p.levels, dtype=np.float64)
    qp[Q_MULT:Q_MULT + p.levels] = k
    if p.name == "grid_atr":
        qp[Q_SIDE] = 1 if p.side == "long" else -1
    elif p.name == "grid_trend":
        qp[Q_ADX] = p.adx_threshold
        qp[Q_TRAIL] = p.trail_atr
    return qp
