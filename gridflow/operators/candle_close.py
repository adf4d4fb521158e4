"""The bookkeeping at a candle's close, once for every path (numba kernels).

:func:`close_candle` (denial marks, cooldown, last mark, re-arming, whether funding is
due), :func:`raise_best` (the trailing stop's best price) and :func:`rest_quote` (the
quotes decided at a close rest during the next candle) are called by the replay kernel
(:func:`gridflow.operators.grid_kernel.run_steps`), the sweep kernel
(:mod:`gridflow.sweep.kernel`), the live engine's closes
(:mod:`gridflow.operators.live_engine`) and the backtest chart
(:mod:`gridflow.control.app.chart_data`). State arrays as in
:mod:`gridflow.operators.kernel_layout`; prices in quote currency, times in ms UTC.
"""

from __future__ import annotations

from numba import njit

from gridflow.operators.kernel_layout import (
    SF_AMT,
    SF_BEST,
    SF_LAST_CLOSE,
    SF_SIZE,
    SF_STOP_Q,
    SF_TP,
    SF_TRAIL,
    SI_COOLDOWN,
    SI_EXIT,
    SI_OPENED_NOW,
    SI_QSIDE,
    SI_QTS,
    SI_SIDE,
    SI_STOPPED_NOW,
)


@njit(cache=True, _nrt=False)
def close_candle(s, close, rate, was_open, sf, si, filled, dn):
    """The bookkeeping at the close of a candle of ``s``, after its fills: a position
    that closed during the candle clears its denial marks (``dn``); the cooldown counts
    down one candle, except on the candle whose stop started it; the close (quote)
    becomes the symbol's last mark; a flat symbol re-arms every level (a filled level
    re-arms only when flat). ``was_open``: the position was open at the candle's open.

    Returns True when the open perpetual position pays funding at this close (``rate``,
    a fraction, is not 0): the caller then books it with :func:`_funding` (kept out of
    this function so that the sweep's per-candle call passes only the arrays it needs).
    The replay kernel, the sweep kernel and the live engine call it."""
    flat = sf[s, SF_AMT] == 0.0
    L = filled.shape[1]
    if was_open and flat:
        for i in range(L):
            dn[s, i] = 0
    if si[s, SI_COOLDOWN] > 0 and not si[s, SI_STOPPED_NOW]:
        si[s, SI_COOLDOWN] -= 1
    sf[s, SF_LAST_CLOSE] = close
    if flat:
        for i in range(L):
            filled[s, i] = 0
        return False
    return rate != 0.0


@njit(cache=True, _nrt=False)
def raise_best(s, o, h, l, c, sf, si):
    """Move the open position's best price since entry (``SF_BEST``, quote: the
    trailing stop's anchor) to the candle's (OHLC, quote) high for a long, low for a
    short; on the candle that opened the position (``SI_OPENED_NOW``) only the path after
    the entry counts: up to the high and then the close if the candle rose, the close
    otherwise (mirrored for a short). Nothing when flat. The replay kernel, the sweep's
    quiet candles and the live engine's closes call it. Not ``inline="always"``: numba's
    IR inlining of it made the sweep's quiet-candle loop 25 % slower (measured); LLVM
    inlines it anyway."""
    d = si[s, SI_SIDE]
    if d == 0:
        return
    if si[s, SI_OPENED_NOW]:
        after = (h if c >= o else c) if d > 0 else (c if c >= o else l)
    else:
        after = h if d > 0 else l
    if d * after > d * sf[s, SF_BEST]:
        sf[s, SF_BEST] = after


@njit(cache=True, _nrt=False)
def rest_quote(s, ts, side, levels, take_profit, trail, size, stop, ex, st):
    """Quotes decided at the close ``ts`` (ms UTC) rest during the next candle of ``s``:
    ``side`` (+1 / -1 / 0), ``levels`` float64 (<= L,) entry prices (quote; NaN = none),
    take profit and trailing distance (quote; NaN = none), ``size`` notional per level
    (quote), ``stop`` the k x ATR stop distance a position opening on them keeps (quote;
    NaN = none), ``ex`` 1 for the strategy's exit signal (an open position closes at
    the next open). The replay kernel, the sweep and the live engine call it."""
    sf, si = st.sf, st.si
    si[s, SI_QSIDE] = side
    si[s, SI_QTS] = ts
    sf[s, SF_TP] = take_profit
    sf[s, SF_TRAIL] = trail
    sf[s, SF_SIZE] = size
    sf[s, SF_STOP_Q] = stop
    si[s, SI_EXIT] = ex
    for i in range(levels.shape[0]):
        st.qlv[s, i] = levels[i]


__all__ = ["close_candle", "raise_best", "rest_quote"]
