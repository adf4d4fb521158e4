"""Conservative "nothing can happen" tests of the sweep kernel (numba).

Every function here answers a question of the form *can this candle change anything?*
from unrounded prices and bounds, without the divisions of the exact path. A ``True``
(maybe) sends the candle through the exact engine functions; only a certain ``False``
skips it, so skipping never changes a result.

The bounds themselves stand beside their rules in the operators layer: the quotes'
(:func:`~gridflow.operators.strategies.quote_kernel.quote_shape`,
:func:`~gridflow.operators.strategies.quote_kernel.may_touch`, which covers the tick
rounding) and the margin rule's
(:func:`~gridflow.operators.risk.margin_denied_for_sure`); this module only scans
candles with them.
"""

from __future__ import annotations

from numba import njit

from gridflow.operators.risk import margin_denied_for_sure
from gridflow.operators.strategies.quote_kernel import (
    KIND_GRID_ATR,
    Q_KIND,
    Q_SIDE,
    may_touch,
    quote_shape,
    raw_level,
)


@njit(cache=True, _nrt=False)
def scan_flat(qp, tick, ind, r0, r1, r2, r3, r4, lo, hi, t, t1, t0, size, step, lev, max_mr,
              cash, cooldown):
    """First candle in ``[t, t1)`` where a flat account's nearest level (level 0, the
    quotes of the previous close) may be reached and filled; ``t1`` if none. Level 0 is
    the nearest: ATR >= 0 and the multiples / envelope offsets increase with ``i``. A
    reached level is skipped when the entry is refused for sure (cooldown left, or the
    margin rule with the constant ``size``), which changes nothing but denial counts.
    Row ``r4`` of ``ind`` is the filters' gate: a closed gate quotes no level."""
    kind = int(qp[Q_KIND])
    for u in range(max(t, t0 + 1), t1):
        x0 = ind[r0, u - 1]
        x1 = ind[r1, u - 1]
        g = ind[r4, u - 1]
        if kind == KIND_GRID_ATR:  # the common case: its shape is known without the branch
            d = int(qp[Q_SIDE])
            raw = raw_level(qp, KIND_GRID_ATR, d, x0, x1, 0)
            if not (g > 0.0 and raw == raw and may_touch(d, raw, tick, lo[u], hi[u])):
                continue
        else:
            d, _, on, _, _ = quote_shape(qp, x0, x1, ind[r2, u - 1], ind[r3, u - 1], g)
            if not (d != 0 and on and may_touch(d, raw_level(qp, kind, d, x0, x1, 0),
                                                tick, lo[u], hi[u])):
                continue
        if cooldown - (u - t) > 0 or margin_denied_for_sure(0.0, size, step, hi[u], lev,
                                                             max_mr, cash):
            continue
        return u
    return t1


@njit(cache=True, _nrt=False)
def position_may_change(qp, tick, x0, x1, x2, x3, g, pos, first_open, n_levels, lo, hi):
    """For an open position on side ``pos``: may the resting quotes (decided at the
    previous close from ``x0..x3`` and the filters' gate ``g``) flip it, take profit or fill level ``first_open``
    (the nearest unfilled one) during a candle spanning ``[lo, hi]``? Also returns the
    resting trailing distance (the stop is checked exactly by the caller).

    Returns
    -------
    (maybe, level, trail)
        ``maybe`` 0 (nothing), 1 (a flip, the exit signal or the take profit may
        happen), 2 (only a level
        may be reached; ``level`` is its unrounded price, for the caller's denial test).
    """
    d, center, on, trail, ex = quote_shape(qp, x0, x1, x2, x3, g)
    if d == -pos or ex:  # a flip or the exit signal closes it at the open
        return 1, 0.0, trail
    if d != pos:  # no direction: no take profit, no levels
        return 0, 0.0, trail
    if center == center and may_touch(-pos, center, tick, lo, hi):  # the take profit
        return 1, 0.0, trail
    if on and first_open < n_levels:
        kind = int(qp[Q_KIND])
        raw = raw_level(qp, kind, pos, x0, x1, first_open)
        if may_touch(pos, raw, tick, lo, hi):
            return 2, raw, trail
    return 0, 0.0, trail
