"""The one entry gate: sizing, the risk chain and the denial record of an opening order.

Replay, paper and sweep call it from the kernel's intrabar entry
(:func:`gridflow.operators.grid_kernel._try_entry`, at the level's price when the path
reaches it); live calls it from the live engine when a candle's levels become resting
orders. One implementation, so a rule added here holds on every path.

The risk chain, in this order (the first rule that fails names the denial):

1. ``KILL_SWITCH``: any kill switch is on (:mod:`gridflow.operators.risk`);
2. ``PAUSED``: the account or the symbol is paused (command);
3. ``BAD_PRICE``: a non-finite or non-positive price or amount (fail closed);
4. ``COOLDOWN``: candles left after a stop on the symbol (any entry);
5. ``MAX_OPEN_POSITIONS``: a new position when ``max_open_positions`` are open;
6. ``CORRELATION``: a new position correlated above the threshold with an open one;
7. ``DAILY_ENTRIES``: a new position when ``max_daily_entries`` positions of the symbol
   were already opened this UTC day (0 = off);
8. ``MIN_NOTIONAL``: below the exchange's minimum amount or notional;
9. ``SYMBOL_EXPOSURE`` (``NO_EQUITY`` when equity <= 0): the symbol's notional after
   the order over equity above ``max_symbol_exposure`` (0 = off);
10. ``MAX_MARGIN_RATIO`` (``NO_EQUITY`` when equity <= 0): used margin plus the order's
    over equity above ``max_margin_ratio``.

Rules 5-7 apply only to the first fill of a position ("a new position"); further grid
levels of an open position pass them. Closing orders (take profit, stop, flip, flatten)
never pass the gate.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from gridflow.operators.kernel_layout import (
    AI_KILL,
    AI_PAUSED,
    F_AMOUNT,
    F_PRICE,
    F_THRESHOLD,
    F_VALUE,
    I_DECISION_TS,
    I_LEVEL,
    I_REASON,
    I_SIDE,
    K_DENIED,
    M_LEVELS,
    M_MIN_AMOUNT,
    M_MIN_NOTIONAL,
    M_SL,
    M_STEP,
    OF_W,
    OI_W,
    P_COOLDOWN,
    P_CORR,
    P_LEVERAGE,
    P_MAX_DAILY,
    P_MAX_MR,
    P_MAX_POS,
    P_MAX_SYM,
    P_RISK_PER_TRADE,
    P_RISK_SIZING,
    SF_AMT,
    SF_AVG,
    SF_SIZE,
    SI_COOLDOWN,
    SI_DAY_OPENS,
    SI_OPEN_DAY,
    SI_PAUSED,
    SI_QTS,
    EventLog,
    emit_event,
)
from gridflow.operators.risk import (
    DENY_BAD_PRICE,
    DENY_COOLDOWN,
    DENY_CORRELATION,
    DENY_DAILY_ENTRIES,
    DENY_KILL_SWITCH,
    DENY_MAX_POSITIONS,
    DENY_NO_EQUITY,
    DENY_PAUSED,
    OK,
    rule_margin_ratio,
    rule_min_notional,
    rule_price,
    rule_symbol_exposure,
    utc_day,
)


def level_notional(sizing, alloc_quote: float, levels: int, leverage: float) -> float:
    """Notional (quote) of one grid level before any volatility scaling: the fixed
    ``notional_per_level_quote`` for ``fixed_notional`` sizing, else the symbol's
    allocation ``alloc_quote`` (capital / symbols) / ``levels`` x ``leverage`` (``equal``,
    and the base of ``vol_parity``; ``risk`` sizing replaces it at the fill,
    :func:`level_amount`). ``sizing`` is a :class:`~gridflow.config.models.SizingConfig`."""
    if sizing.mode == "fixed_notional":
        return sizing.notional_per_level_quote
    return alloc_quote / levels * leverage


def vol_parity_scale(target_vol, hv, max_scale):
    """``vol_parity`` sizing's factor on :func:`level_notional`: ``min(target_vol / hv,
    max_scale)`` (annualised volatilities as fractions; NaN while ``hv`` warms up, which
    leaves the level unsized). Scalars or arrays; the kernels run it compiled
    (:data:`vol_parity_scale_nb`)."""
    return np.minimum(target_vol / hv, max_scale)


#: :func:`vol_parity_scale` compiled for the kernels (one definition).
vol_parity_scale_nb = njit(cache=True, _nrt=False)(vol_parity_scale)


@njit(cache=True, _nrt=False, inline="always")
def level_amount(s, px, equity, sf, pf, mp):
    """Amount (base, floored to the step) of a level of symbol ``s`` at ``px`` (quote):
    ``risk`` sizing ``risk_per_trade * equity / (levels * sl_frac)`` of notional, else the
    notional per level decided with the quotes (``sf[s, SF_SIZE]``)."""
    if pf[P_RISK_SIZING] > 0.0:
        size = pf[P_RISK_PER_TRADE] * equity / (mp[s, M_LEVELS] * mp[s, M_SL])
    else:
        size = sf[s, SF_SIZE]
    amount = size / px
    step = mp[s, M_STEP]
    if step > 0.0 and math.isfinite(amount):
        amount = math.floor(amount / step + 1e-9) * step
    return amount


@njit(cache=True, _nrt=False, inline="always")
def max_abs_corr(s, corr, sf):
    """Largest ``|corr[o]|`` over the other symbols ``o`` with an open position (NaN
    propagates: an unknown correlation denies while the guard is on)."""
    m = 0.0
    for o in range(sf.shape[0]):
        if o != s and sf[o, SF_AMT] > 0.0:
            c = abs(corr[o])
            if not (c <= m):
                m = c
    return m


@njit(cache=True, _nrt=False, inline="always")
def opens_today(s, ts, si):
    """Positions of ``s`` opened on the UTC day of ``ts`` (ms) so far."""
    return si[s, SI_DAY_OPENS] if si[s, SI_OPEN_DAY] == utc_day(ts) else 0


@njit(cache=True, _nrt=False, inline="always")
def count_open(s, ts, si):
    """Book the opening of a position of ``s`` at ``ts`` (ms) for the daily rule."""
    day = utc_day(ts)
    if si[s, SI_OPEN_DAY] != day:
        si[s, SI_OPEN_DAY] = day
        si[s, SI_DAY_OPENS] = 0
    si[s, SI_DAY_OPENS] += 1


@njit(cache=True, _nrt=False, inline="always")
def gate_level(s, ts, px, amount, equity, used, resting, n_open, max_corr, sf, si, ai, pf,
               mp):
    """The risk chain (module docstring) for an opening order of ``amount`` (base) of
    symbol ``s`` at ``px`` (quote) at ``ts`` (ms UTC).

    ``equity`` (quote) and ``used`` margin (quote, every open position's and, live,
    every resting entry's) are the account's; ``resting`` the notional (quote) of the
    symbol's other entries resting beside this one (live; 0 in the kernel, where a level
    only counts once filled); ``n_open`` its open positions, ``max_corr`` the
    :func:`max_abs_corr` of ``s``.

    Returns
    -------
    (int, float, float)
        ``0`` or the ``DENY_*`` code, and the rule's value and threshold (journaled).
    """
    lev = pf[P_LEVERAGE]
    opens = sf[s, SF_AMT] == 0.0
    if ai[AI_KILL] != 0:
        return DENY_KILL_SWITCH, float(ai[AI_KILL]), 0.0
    if ai[AI_PAUSED] != 0 or si[s, SI_PAUSED] != 0:
        return DENY_PAUSED, equity, 0.0
    if rule_price(px, amount) != OK:
        return DENY_BAD_PRICE, equity, 0.0
    if si[s, SI_COOLDOWN] > 0:
        return DENY_COOLDOWN, float(si[s, SI_COOLDOWN]), pf[P_COOLDOWN]
    if opens:
        if n_open >= int(pf[P_MAX_POS]):
            return DENY_MAX_POSITIONS, float(n_open), pf[P_MAX_POS]
        if pf[P_CORR] < 1.0 and not (max_corr <= pf[P_CORR]):
            return DENY_CORRELATION, max_corr, pf[P_CORR]
        if pf[P_MAX_DAILY] > 0.0 and opens_today(s, ts, si) >= pf[P_MAX_DAILY]:
            return DENY_DAILY_ENTRIES, float(opens_today(s, ts, si)), pf[P_MAX_DAILY]
    r = rule_min_notional(px, amount, mp[s, M_MIN_AMOUNT], mp[s, M_MIN_NOTIONAL])
    if r != OK:
        return r, amount * px, mp[s, M_MIN_NOTIONAL]
    sym_notional = sf[s, SF_AMT] * sf[s, SF_AVG] + resting
    r = rule_symbol_exposure(equity, sym_notional, amount * px, pf[P_MAX_SYM])
    if r == DENY_NO_EQUITY:
        return r, equity, 0.0
    if r != OK:
        return r, (sym_notional + amount * px) / equity, pf[P_MAX_SYM]
    r = rule_margin_ratio(equity, used, amount * px / lev, pf[P_MAX_MR])
    if r == DENY_NO_EQUITY:
        return r, equity, 0.0
    x1 = (used + amount * px / lev) / equity
    return r, x1, pf[P_MAX_MR]


@njit(cache=True, _nrt=False, inline="always")
def deny_level(s, i, r, ts, d, px, amount, value, threshold, st, log, n):
    """Count denial ``r`` of level ``i`` of ``s`` (side ``d``, at ``px`` quote for
    ``amount`` base, the rule's ``value`` and ``threshold`` from :func:`gate_level`) in
    ``st`` (:class:`~gridflow.operators.kernel_layout.StateArrays`) and journal it in
    ``log`` once per level and reason in the cycle (``K_DENIED`` with the decision time
    of the quotes). Returns the new row count."""
    st.cnt[r] += 1
    if st.dn[s, i] == r:
        return n
    st.dn[s, i] = r
    n = emit_event(log, n, st.ai, K_DENIED, ts, s)
    ei, ef = log.ints[n - 1], log.floats[n - 1]
    ei[I_LEVEL] = i
    ei[I_REASON] = r
    ei[I_DECISION_TS] = st.si[s, SI_QTS]
    ei[I_SIDE] = d
    ef[F_PRICE] = px
    ef[F_AMOUNT] = amount
    ef[F_VALUE] = value
    ef[F_THRESHOLD] = threshold
    return n


def gate_and_log(s: int, i: int, ts: int, px: float, d: int, equity: float, used: float,
                 n_open: int, corr: np.ndarray, st, pf: np.ndarray, mp: np.ndarray,
                 resting: float = 0.0) -> tuple[float, np.ndarray, np.ndarray]:
    """One level through :func:`level_amount`, :func:`gate_level` and, when denied,
    :func:`deny_level`, from Python (the live engine; ``resting``: notional, quote, of
    the symbol's entries already approved beside this one). Returns the amount to place
    (0.0 when denied) and the event rows to decode."""
    log = EventLog(np.empty((1, OI_W), np.int64), np.empty((1, OF_W), np.float64))
    amount = level_amount(s, px, equity, st.sf, pf, mp)
    mc = max_abs_corr(s, corr, st.sf) if st.sf[s, SF_AMT] == 0.0 else 0.0
    r, x1, x2 = gate_level(s, ts, px, amount, equity, used, resting, n_open, mc, st.sf,
                           st.si, st.ai, pf, mp)
    if r == OK:
        return amount, log.ints[:0], log.floats[:0]
    n = deny_level(s, i, r, ts, d, px, amount, x1, x2, st.arrays(), log, 0)
    return 0.0, log.ints[:n], log.floats[:n]
