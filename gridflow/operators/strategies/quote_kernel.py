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
Q_ENTRY_    funding grid: the funding rate (fraction per settlement) whose side opens
RATE        a grid, and the one at or below which (in absolute value) a position closes
Q_EXIT_
RATE
==========  ============================================================================

Inputs per kind, ``x0..x3`` (NaN in warm-up): grid ATR ``(SMA, ATR)``; envelope ``(SMA)``;
multi-timeframe ``(SMA, ATR, Supertrend direction)``; trend ``(EMA fast, ATR, EMA slow,
ADX)``; funding ``(SMA, ATR, last settled funding rate)``: a rate ``>= entry`` quotes a
short grid (shorts receive), ``<= -entry`` a long one, ``|rate| <= exit`` raises the
*exit* signal (an open position closes at the next open), in between the side of the
rate holds an open position without levels. Every kind also reads the gate ``g`` of its entry and regime filters
(:func:`gridflow.operators.strategies.filters.entry_gate`: 1.0 open, 0.0 closed): a
closed gate quotes no level (the side, the take profit and the trailing distance stay). Levels are tick-rounded away from the market (down for buys, up for sells) and a
non-positive level is NaN; the take profit is the centre rounded in the profit direction,
away from the grid (up for longs, down for shorts).

Beside the rule stands its bound, what the sweep's skip tests
(:mod:`gridflow.sweep.skip`) ask: :func:`quote_shape` (the decision without the level
prices), :func:`raw_level` (a level before rounding), :func:`rounding_margin` and
:func:`may_touch` (can a candle reach a quote?). :func:`quote_at` is built from the same
functions, so the bound cannot drift from the rule.

The kinds are the closed set :data:`KINDS`; a name or code outside it is refused where
it is encoded (:func:`kind_code`, :func:`check_kinds`: ``ValueError``), never quoted as
some other kind, and the numba code pays no check for it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

KIND_GRID_ATR, KIND_ENVELOPE, KIND_MULTI_TF, KIND_TREND, KIND_FUNDING = 0, 1, 2, 3, 4
#: Strategy name -> kind code: the whole set (the numba code trusts a ``qp`` to hold one).
KINDS = {"grid_atr": KIND_GRID_ATR, "envelope_dca": KIND_ENVELOPE,
         "grid_multi_tf": KIND_MULTI_TF, "grid_trend": KIND_TREND,
         "grid_funding": KIND_FUNDING}
KIND_CODES = frozenset(KINDS.values())
MAX_LEVELS = 20
Q_KIND, Q_SIDE, Q_LEVELS, Q_TICK, Q_ADX, Q_TRAIL, Q_MULT = range(7)
Q_ENTRY_RATE = Q_MULT + MAX_LEVELS  # funding grid: |rate| that opens a side
Q_EXIT_RATE = Q_ENTRY_RATE + 1  # funding grid: |rate| at or below which it closes
Q_W = Q_EXIT_RATE + 1


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
def quote_shape(qp, x0, x1, x2, x3, g):
    """The decision of :func:`quote_at` without the level prices: side, take-profit
    centre, whether levels are quoted and the trailing distance at one close (``g``:
    the filters' gate, levels only when ``g > 0``).

    The kind's branch trusts ``qp[Q_KIND]``: kinds are checked where they are encoded
    (:func:`kind_code`, :func:`check_kinds`), so the last branch is the trend grid.

    Returns
    -------
    (side, center, levels_on, trail, exit) : (int, float, bool, float, bool)
        Side +1 / -1 / 0 (warm-up or no direction), the unrounded take profit (quote;
        NaN for none), True when levels are quoted, trailing distance (quote; NaN for
        none), True when the strategy closes an open position at the next open.
    """
    if int(qp[Q_KIND]) == KIND_FUNDING:
        side, center, on, ex = _funding_shape(qp, x0, x1, x2)
        return side, center, on and g > 0.0, np.nan, ex
    side, center, on, trail = _shape(qp, x0, x1, x2, x3)
    return side, center, on and g > 0.0, trail, False


@njit(cache=True, _nrt=False, inline="always")
def _funding_shape(qp, x0, x1, x2):
    """The funding grid's decision: ``(side, center, on, exit)`` from SMA ``x0``, ATR
    ``x1`` and the last settled funding rate ``x2``."""
    nan = np.nan
    if not (math.isfinite(x0) and math.isfinite(x1) and math.isfinite(x2)):
        return 0, nan, False, False
    if abs(x2) <= qp[Q_EXIT_RATE]:
        return 0, nan, False, True
    d = -1 if x2 > 0.0 else 1  # the side the funding pays
    return d, x0, abs(x2) >= qp[Q_ENTRY_RATE], False


@njit(cache=True, _nrt=False, inline="always")
def _shape(qp, x0, x1, x2, x3):
    kind = int(qp[Q_KIND])
    nan = np.nan
    if kind == KIND_GRID_ATR:
        if not (math.isfinite(x0) and math.isfinite(x1)):
            return 0, nan, False, nan
        return int(qp[Q_SIDE]), x0, True, nan
    if kind == KIND_ENVELOPE:
        if not math.isfinite(x0):
            return 0, nan, False, nan
        return int(qp[Q_SIDE]), x0, True, nan
    if kind == KIND_MULTI_TF:
        if not (math.isfinite(x0) and math.isfinite(x1) and math.isfinite(x2) and x2 != 0.0):
            return 0, nan, False, nan
        return (-1 if x2 < 0.0 else 1), x0, True, nan
    # KIND_TREND
    if not (math.isfinite(x0) and math.isfinite(x1) and math.isfinite(x2) and math.isfinite(x3)):
        return 0, nan, False, nan
    diff = x0 - x2
    d = 1 if diff > 0.0 else (-1 if diff < 0.0 else 0)
    return d, nan, d != 0 and x3 >= qp[Q_ADX], qp[Q_TRAIL] * x1


@njit(cache=True, _nrt=False)
def raw_level(qp, kind, d, x0, x1, i):
    """Unrounded price (quote) of level ``i`` on side ``d``: ``x0 * factor_i`` (envelope)
    or ``x0 - d * x1 * multiple_i`` (ATR grids)."""
    if kind == KIND_ENVELOPE:
        return x0 * qp[Q_MULT + i]
    return x0 - d * (x1 * qp[Q_MULT + i])


@njit(cache=True, _nrt=False)
def quote_at(qp, x0, x1, x2, x3, g, lv):
    """Quotes decided at one candle close.

    Parameters
    ----------
    qp : float64 (Q_W,)
        Strategy parameters (:func:`quote_params`).
    x0, x1, x2, x3 : float
        Indicator values of the candle just closed (see the module docstring).
    g : float
        The filters' gate at that close (1.0 open, 0.0 closed: no level quoted).
    lv : float64 (>= L,)
        Receives the ``L`` level prices (quote; NaN = not quoted).

    Returns
    -------
    (side, take_profit, trail, exit) : (int, float, float, bool)
        Side +1 / -1 / 0 (warm-up or no direction), take profit price (NaN for none),
        trailing-stop distance in quote (NaN for none), the exit signal (close an open
        position at the next open).
    """
    side, center, on, trail, ex = quote_shape(qp, x0, x1, x2, x3, g)
    kind = int(qp[Q_KIND])
    tick = qp[Q_TICK]
    for i in range(int(qp[Q_LEVELS])):
        if on:
            lv[i] = _positive(round_price(raw_level(qp, kind, side, x0, x1, i), tick, side < 0))
        else:
            lv[i] = np.nan
    if math.isnan(center):  # no take profit (NaN is not rounded)
        return side, np.nan, trail, ex
    return side, round_price(center, tick, side > 0), trail, ex


# ---- the bound: can a quote be reached? (the sweep's skip tests) -------------------------
@njit(cache=True, _nrt=False)
def rounding_margin(price, tick):
    """Largest distance (quote) :func:`round_price` can move ``price`` toward the
    market: ``1e-9`` tick plus a few ulps, covered by ``2e-9 * tick + 1e-15 * |price|``."""
    return 2e-9 * tick + 1e-15 * abs(price)


@njit(cache=True, _nrt=False)
def may_touch(d, raw, tick, lo, hi):
    """False only when a quote of unrounded price ``raw`` (quote) met by a move against
    side ``d`` (a level of side ``d``, or the take profit of side ``-d``) certainly stays
    unreached by a candle spanning ``[lo, hi]``, whatever the tick rounding."""
    m = rounding_margin(raw, tick)
    if d > 0:
        return not (lo > raw + m)
    return not (hi < raw - m)


@njit(cache=True, _nrt=False)
def _quotes_loop(qp, x0, x1, x2, x3, g, side, lv, tp, trail, ex):
    for t in range(x0.shape[0]):
        s, p, r, e = quote_at(qp, x0[t], x1[t], x2[t], x3[t], g[t], lv[t])
        side[t] = s
        tp[t] = p
        trail[t] = r
        ex[t] = e


def quotes_array(qp: np.ndarray, x0, x1=None, x2=None, x3=None, gate=None):
    """:func:`quote_at` over a chunk of ``n`` candle closes.

    Parameters
    ----------
    qp : float64 (Q_W,)
    x0, x1, x2, x3 : float64 (n,) or None (unused inputs of the kind)
    gate : float64 (n,) or None
        The filters' gate (:func:`~gridflow.operators.strategies.filters.entry_gate`);
        None = always open.

    Returns
    -------
    (side int64 (n,), levels float64 (n, L), take_profit float64 (n,), trail float64 (n,),
    exit int64 (n,): 1 where the exit signal is raised)

    Raises
    ------
    ValueError
        ``qp`` holds no known kind (:func:`check_kinds`).
    """
    check_kinds(qp)
    x0 = np.ascontiguousarray(x0, dtype=np.float64)
    n = x0.shape[0]
    nan = np.full(n, np.nan)
    xs = [nan if x is None else np.ascontiguousarray(x, dtype=np.float64) for x in (x1, x2, x3)]
    L = int(qp[Q_LEVELS])
    side = np.zeros(n, np.int64)
    lv = np.full((n, L), np.nan)
    tp = np.full(n, np.nan)
    trail = np.full(n, np.nan)
    g = np.ones(n) if gate is None else np.ascontiguousarray(gate, dtype=np.float64)
    ex = np.zeros(n, np.int64)
    _quotes_loop(qp, x0, xs[0], xs[1], xs[2], g, side, lv, tp, trail, ex)
    return side, lv, tp, trail, ex


def kind_code(name: str) -> int:
    """The kind code (``KIND_*``) of strategy ``name``.

    Raises
    ------
    ValueError
        ``name`` is no quoted strategy kind (the numba code has no fallback for one).
    """
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"UNKNOWN_STRATEGY_KIND: {name!r}; one of {sorted(KINDS)}") from None


def check_kinds(qps: np.ndarray) -> None:
    """Check the kind column of ``qps`` float64 (Q_W,) or (C, Q_W) before numba reads it.

    Raises
    ------
    ValueError
        A ``qp`` row whose ``Q_KIND`` is not one of :data:`KIND_CODES`.
    """
    for k in np.atleast_2d(qps)[:, Q_KIND].tolist():
        if k not in KIND_CODES:
            raise ValueError(f"UNKNOWN_STRATEGY_KIND: code {k!r}; one of {sorted(KIND_CODES)}")


def quote_params(p, tick: float = 0.0) -> np.ndarray:
    """The ``qp`` vector (float64 (Q_W,)) of a strategy's parameters
    (:mod:`gridflow.config.strategies`) at price tick ``tick`` (quote).

    Raises
    ------
    ValueError
        ``p.name`` is no quoted strategy kind (:func:`kind_code`).
    """
    kind = kind_code(p.name)
    qp = np.zeros(Q_W)
    qp[Q_KIND] = kind
    qp[Q_LEVELS] = p.levels_count
    qp[Q_TICK] = tick
    if kind == KIND_ENVELOPE:
        d = 1 if p.side == "long" else -1
        off = np.asarray(p.offsets, dtype=np.float64)
        qp[Q_SIDE] = d
        qp[Q_MULT:Q_MULT + len(off)] = 1.0 - off if d > 0 else 1.0 / (1.0 - off)
        return qp
    k = p.atr_start + p.atr_step * np.arange(p.levels, dtype=np.float64)
    qp[Q_MULT:Q_MULT + p.levels] = k
    if kind == KIND_FUNDING:
        qp[Q_ENTRY_RATE] = p.entry_rate
        qp[Q_EXIT_RATE] = p.exit_rate
    if kind == KIND_GRID_ATR:
        qp[Q_SIDE] = 1 if p.side == "long" else -1
    elif kind == KIND_TREND:
        qp[Q_ADX] = p.adx_threshold
        qp[Q_TRAIL] = p.trail_atr
    return qp
