"""Booking fills into a position: the one home of the entry, exit and end-of-cycle
arithmetic (cash, fees, realized and session PnL, average entry, cooldown).

The kernel's paper fills (:func:`gridflow.operators.grid_kernel._try_entry` and
``_close``: replay, paper, sweep) and the exchange's fills in live
(:mod:`gridflow.operators.live_orders`) book through these functions, so a position's
numbers are computed the same way whichever path filled it. Prices in quote currency,
amounts in base currency, fees in quote (positive = paid), times in ms UTC.
"""

from __future__ import annotations

import math

from numba import njit

from gridflow.operators.entry_gate import count_open
from gridflow.operators.kernel_layout import (
    AF_CASH,
    AF_FEES,
    AF_FUNDING,
    AF_REALIZED,
    EXIT_SL,
    EXIT_TRAIL,
    P_COOLDOWN,
    SF_AMT,
    SF_AVG,
    SF_BEST,
    SF_CYCLE_FEES,
    SF_CYCLE_FUNDING,
    SF_SESSION_PNL,
    SF_STOP_DIST,
    SF_STOP_Q,
    SI_COOLDOWN,
    SI_ENTRIES,
    SI_OPEN_TS,
    SI_SIDE,
    SI_STOPPED_NOW,
)


@njit(cache=True, _nrt=False, inline="always")
def on_step(x, step):
    """``x`` on the amount grid (nearest multiple of ``step``; unchanged if ``step`` is
    0): exchange fills are whole steps, so their sums must not drift below a step."""
    if step > 0.0:
        return math.floor(x / step + 0.5) * step
    return x


@njit(cache=True, _nrt=False, inline="always")
def book_entry(s, ts, d, q, px, fee, step, sf, si, af):
    """Add ``q`` at ``px`` with ``fee`` to the position of ``s`` (side ``d``: +1 long,
    -1 short). A flat symbol opens a new cycle at ``ts`` (counted for the daily-entries
    rule) whose k x ATR stop distance is the resting quotes' (kept for the cycle).
    ``step`` > 0 keeps the amount on the exchange's grid. Returns True when this
    fill opened the position."""
    old = sf[s, SF_AMT]
    opened = old == 0.0
    if opened:
        si[s, SI_SIDE] = d
        si[s, SI_OPEN_TS] = ts
        si[s, SI_ENTRIES] = 0
        sf[s, SF_BEST] = px
        dist = sf[s, SF_STOP_Q]
        sf[s, SF_STOP_DIST] = dist if dist > 0.0 else 0.0
        count_open(s, ts, si)
    if q > 0.0:
        sf[s, SF_AVG] = (old * sf[s, SF_AVG] + q * px) / (old + q)
        sf[s, SF_AMT] = on_step(old + q, step)
    sf[s, SF_CYCLE_FEES] += fee
    sf[s, SF_SESSION_PNL] -= fee
    af[AF_CASH] -= fee
    af[AF_FEES] += fee
    return opened


@njit(cache=True, _nrt=False, inline="always")
def book_exit(s, q, px, fee, step, sf, si, af):
    """Reduce the position of ``s`` by ``q`` (at most its amount) filled at ``px`` with
    ``fee``; returns the realized PnL before fees (quote)."""
    q = min(q, sf[s, SF_AMT])
    pnl = si[s, SI_SIDE] * q * (px - sf[s, SF_AVG])
    af[AF_CASH] += pnl - fee
    af[AF_FEES] += fee
    af[AF_REALIZED] += pnl
    sf[s, SF_SESSION_PNL] += pnl - fee
    sf[s, SF_CYCLE_FEES] += fee
    sf[s, SF_AMT] = max(0.0, on_step(sf[s, SF_AMT] - q, step))
    return pnl


@njit(cache=True, _nrt=False, inline="always")
def end_cycle(s, reason, sf, si, pf):
    """The position of ``s`` is closed (``reason``: an ``EXIT_*`` code): a stop starts the
    cooldown; the cycle's numbers reset (the grid re-arms at the next decision)."""
    if reason == EXIT_SL or reason == EXIT_TRAIL:
        si[s, SI_COOLDOWN] = int(pf[P_COOLDOWN])
        si[s, SI_STOPPED_NOW] = 1
    sf[s, SF_AMT] = 0.0
    sf[s, SF_AVG] = 0.0
    sf[s, SF_CYCLE_FEES] = 0.0
    sf[s, SF_CYCLE_FUNDING] = 0.0
    sf[s, SF_BEST] = 0.0
    sf[s, SF_STOP_DIST] = 0.0
    si[s, SI_SIDE] = 0
    si[s, SI_ENTRIES] = 0
    si[s, SI_OPEN_TS] = 0


@njit(cache=True, _nrt=False, inline="always")
def book_funding(s, pay, sf, af):
    """Book a funding payment of the position of ``s`` (quote; positive = paid): cash,
    the account's funding total, session PnL and the open cycle's funding."""
    af[AF_CASH] -= pay
    af[AF_FUNDING] += pay
    sf[s, SF_SESSION_PNL] -= pay
    sf[s, SF_CYCLE_FUNDING] += pay
