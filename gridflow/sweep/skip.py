"""Conservative "nothing can happen" tests of the sweep kernel (numba).

Every function here answers a question of the form *can this candle change anything?*
from unrounded prices and bounds, without the divisions of the exact path. A ``True``
(maybe) sends the candle through the exact engine functions; only a certain ``False``
skips it, so skipping never changes a result.

Tick rounding moves a level at most ``1e-9`` tick plus a few ulps away from its raw
price (:func:`~gridflow.operators.strategies.quote_kernel.round_price`); the margin
``2e-9 * tick + 1e-15 * |price|`` covers that.
"""

from __future__ import annotations

import math

from numba import njit

from gridflow.operators.strategies.quote_kernel import (
    KIND_ENVELOPE,
    KIND_GRID_ATR,
    KIND_MULTI_TF,
    Q_ADX,
    Q_KIND,
    Q_MULT,
    Q_SIDE,
    Q_TRAIL,
)


@njit(cache=True, _nrt=False)
def margin(price, tick):
    """Largest distance tick rounding can move ``price`` toward the market."""
    return 2e-9 * tick + 1e-15 * abs(price)


@njit(cache=True, _nrt=False)
def quote_shape(qp, x0, x1, x2, x3):
    """Side, take-profit centre and trailing distance of the quotes at one close, and
    whether levels are quoted, without computing the levels.

    Returns
    -------
    (side, center, levels_on, trail)
        ``center`` is the unrounded take profit (NaN for none).
    """
    kind = int(qp[Q_KIND])
    nan = math.nan
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
    if not (math.isfinite(x0) and math.isfinite(x1) and math.isfinite(x2) and math.isfinite(x3)):
        return 0, nan, False, nan
    diff = x0 - x2
    d = 1 if diff > 0.0 else (-1 if diff < 0.0 else 0)
    return d, nan, d != 0 and x3 >= qp[Q_ADX], qp[Q_TRAIL] * x1


@njit(cache=True, _nrt=False)
def raw_level(qp, kind, d, x0, x1, i):
    """Unrounded price of level ``i`` on side ``d``."""
    if kind == KIND_ENVELOPE:
        return x0 * qp[Q_MULT + i]
    return x0 - d * (x1 * qp[Q_MULT + i])


@njit(cache=True, _nrt=False)
def may_touch(d, raw, tick, lo, hi):
    """False only when a level of raw price ``raw`` on side ``d`` certainly stays
    unreached by a candle spanning ``[lo, hi]``."""
    m = margin(raw, tick)
    if d > 0:
        return not (lo > raw + m)
    return not (hi < raw - m)


@njit(cache=True, _nrt=False)
def denied_for_sure(used, size, step, hi, lev, max_mr, eq_max):
    """True when the margin rule certainly refuses an entry of notional ``size`` (quote,
    before the amount is floored to ``step``) at any price up to ``hi``, with ``used``
    margin already in use and equity at most ``eq_max`` at the fill; False when unsure
    (NaN ``size``: sizes that vary with the fill, never skipped)."""
    if not (eq_max > 0.0):
        return eq_max <= 0.0  # NO_EQUITY for every fill (NaN: unsure)
    order = (size - step * hi) / lev  # floor(size / px / step) * step * px >= size - step * px
    return used + order > (max_mr + 1e-12) * eq_max * (1.0 + 1e-9) + 1e-9


@njit(cache=True, _nrt=False)
def scan_flat(qp, tick, ind, r0, r1, r2, r3, lo, hi, t, t1, t0, size, step, lev, max_mr, cash,
              cooldown):
    """First candle in ``[t, t1)`` where a flat account's nearest level (level 0, the
    quotes of the previous close) may be reached and filled; ``t1`` if none. Level 0 is
    the nearest: ATR >= 0 and the multiples / envelope offsets increase with ``i``. A
    reached level is skipped when the entry is refused for sure (cooldown left, or the
    margin rule with the constant ``size``), which changes nothing but denial counts."""
    kind = int(qp[Q_KIND])
    for u in range(max(t, t0 + 1), t1):
        x0 = ind[r0, u - 1]
        if kind == KIND_GRID_ATR:  # the common case, inlined
            x1 = ind[r1, u - 1]
            d = int(qp[Q_SIDE])
            raw = x0 - d * (x1 * qp[Q_MULT])
            if not (raw == raw and may_touch(d, raw, tick, lo[u], hi[u])):
                continue
        else:
            x1 = ind[r1, u - 1]
            d, _, on, _ = quote_shape(qp, x0, x1, ind[r2, u - 1], ind[r3, u - 1])
            if not (d != 0 and on and may_touch(d, raw_level(qp, kind, d, x0, x1, 0),
                                                tick, lo[u], hi[u])):
                continue
        if cooldown - (u - t) > 0 or denied_for_sure(0.0, size, step, hi[u], lev, max_mr,
                                                      cash):
            continue
        return u
    return t1


@njit(cache=True, _nrt=False)
def position_may_change(qp, tick, x0, x1, x2, x3, pos, first_open, n_levels, lo, hi):
    """For an open position on side ``pos``: may the resting quotes (decided at the
    previous close from ``x0..x3``) flip it, take profit or fill level ``first_open``
    (the nearest unfilled one) during a candle spanning ``[lo, hi]``? Also returns the
    resting trailing distance (the stop is checked exactly by the caller).

    Returns
    -------
    (maybe, level, trail)
        ``maybe`` 0 (nothing), 1 (a flip or the take profit may happen), 2 (only a level
        may be reached; ``level`` is its unrounded price, for the caller's denial test).
    """
    d, center, on, trail = quote_shape(qp, x0, x1, x2, x3)
    if d == -pos:
        return 1, 0.0, trail
    if d != pos:  # no direction: no take profit, no levels
        return 0, 0.0, trail
    if center == center:
        m = margin(center, tick)
        if (pos > 0 and hi >= center - m) or (pos < 0 and lo <= center + m):
            return 1, 0.0, trail
    if on and first_open < n_levels:
        kind = int(qp[Q_KIND])
        raw = raw_level(qp, kind, pos, x0, x1, first_open)
        if may_touch(pos, raw, tick, lo, hi):
            return 2, raw, trail
    return 0, 0.0, trail
