"""Risk gate: small uniform rules that fail closed, and the account's kill switches.

Each opening-order rule is a numba function returning ``0`` (pass) or a stable reason
code; :func:`gridflow.operators.entry_gate.gate_level` chains them, in one documented
order, for **every** opening order (every grid level, not only the first), on every path
(replay, paper, live, sweep). Closing and reduce-only orders (take profit, stop, flip close) never
pass through the gate, so a kill switch can never trap a position. A rule missing an
input (non-finite price or equity) denies; it never substitutes 0.

Kill switches are bits of one mask; while any bit is set nothing opens. They trip at
every candle-time close and intrabar before each entry (:func:`check_kill_switches`):

=====================  =================================================  ============
bit / reason           trips when                                          clears
=====================  =================================================  ============
SESSION_LOSS_GRID      grid symbols' session PnL <= -limit x their capital  reset command
SESSION_LOSS_SINGLE    same for single-position strategies                  reset command
DAILY_LOSS             equity <= (1 - limit) x equity at 00:00 UTC         next 00:00 UTC
ROLLING_DRAWDOWN       equity <= (1 - pct) x peak of the last N hours       reset command
MAX_DRAWDOWN           equity <= (1 - pct) x all-time peak, or <= 0, NaN    reset command
=====================  =================================================  ============

Each condition is one named function (:func:`session_loss_tripped`,
:func:`daily_loss_tripped`, :func:`drawdown_tripped`, :func:`equity_lost`), and so is the
UTC day rollover (:func:`day_rolls`, :func:`start_day`). Beside each rule stands its
*bound*, the "can this happen?" form the sweep kernel skips candles with
(:func:`kill_switch_may_trip`, :func:`margin_denied_for_sure`; :func:`skip_marks` for the
rolling ring): the replay (:mod:`gridflow.operators.grid_kernel`), live and sweep
(:mod:`gridflow.sweep`) paths all call these, so a rule and its bound change together.
"""

from __future__ import annotations

import math

from numba import njit

from gridflow.event_kinds import Reason
from gridflow.operators.kernel_layout import (
    AF_DAY_START,
    AF_PEAK,
    AI_DAY,
    AI_KILL,
    AI_RW_POS,
    F_DAY_START,
    F_PEAK,
    F_THRESHOLD,
    F_VALUE,
    I_REASON,
    K_KILL,
    P_DAILY,
    P_MAX_DD,
    P_ROLLING_DD,
    P_ROLLING_MS,
    P_SESSION_GRID,
    P_SESSION_SINGLE,
    EventLog,
    emit_event,
)
from gridflow.timeframes import is_hour_mark as _is_hour_mark
from gridflow.timeframes import utc_day as _utc_day

OK = 0
DENY_KILL_SWITCH, DENY_MIN_NOTIONAL, DENY_MAX_MARGIN_RATIO, DENY_NO_EQUITY = 1, 2, 3, 4
DENY_BAD_PRICE, DENY_COOLDOWN, DENY_MAX_POSITIONS, DENY_CORRELATION, DENY_PAUSED = 5, 6, 7, 8, 9
DENY_DAILY_ENTRIES, DENY_SYMBOL_EXPOSURE = 10, 11

DENY_REASONS = {
    DENY_KILL_SWITCH: Reason.KILL_SWITCH,
    DENY_MIN_NOTIONAL: Reason.MIN_NOTIONAL,
    DENY_MAX_MARGIN_RATIO: Reason.MAX_MARGIN_RATIO,
    DENY_NO_EQUITY: Reason.NO_EQUITY,
    DENY_BAD_PRICE: Reason.BAD_PRICE,
    DENY_COOLDOWN: Reason.COOLDOWN,
    DENY_MAX_POSITIONS: Reason.MAX_OPEN_POSITIONS,
    DENY_CORRELATION: Reason.CORRELATION,
    DENY_PAUSED: Reason.PAUSED,
    DENY_DAILY_ENTRIES: Reason.DAILY_ENTRIES,
    DENY_SYMBOL_EXPOSURE: Reason.SYMBOL_EXPOSURE,
}
#: Names of the value and threshold a denial journals (``equity`` / ``none`` otherwise).
DENY_DETAIL = {
    Reason.MAX_MARGIN_RATIO: ("margin_ratio_after", "max_margin_ratio"),
    Reason.KILL_SWITCH: ("kill_switch_mask", "none"),
    Reason.MIN_NOTIONAL: ("notional", "min_notional"),
    Reason.COOLDOWN: ("cooldown_candles_left", "cooldown_candles"),
    Reason.MAX_OPEN_POSITIONS: ("open_positions", "max_open_positions"),
    Reason.CORRELATION: ("max_abs_correlation", "correlation_threshold"),
    Reason.DAILY_ENTRIES: ("opened_today", "max_daily_entries"),
    Reason.SYMBOL_EXPOSURE: ("symbol_exposure_after", "max_symbol_exposure"),
}

KS_SESSION_GRID, KS_SESSION_SINGLE, KS_DAILY, KS_ROLLING_DD, KS_MAX_DD = 1, 2, 4, 8, 16
KILL_SWITCH_REASONS = {
    KS_SESSION_GRID: Reason.SESSION_LOSS_GRID,
    KS_SESSION_SINGLE: Reason.SESSION_LOSS_SINGLE,
    KS_DAILY: Reason.DAILY_LOSS,
    KS_ROLLING_DD: Reason.ROLLING_DRAWDOWN,
    KS_MAX_DD: Reason.MAX_DRAWDOWN,
}
KS_ALL = 31
#: Switches only a reset command clears (DAILY_LOSS also clears at the day rollover).
KS_RESET_ONLY = KS_ALL & ~KS_DAILY


def kill_switch_names(mask: int) -> list[str]:
    """Reason codes of the bits set in ``mask``, in bit order."""
    return [name for bit, name in KILL_SWITCH_REASONS.items() if mask & bit]


#: :func:`gridflow.timeframes.utc_day` and :func:`gridflow.timeframes.is_hour_mark`,
#: compiled for the kernels (one definition each, at the bottom of the layers).
utc_day = njit(cache=True, _nrt=False)(_utc_day)
is_hour_mark = njit(cache=True, _nrt=False)(_is_hour_mark)


@njit(cache=True, _nrt=False)
def day_rolls(day, ai):
    """True when a candle-time close on UTC day ``day`` (:func:`utc_day`) starts a new
    account day: a day after the current one ``ai[AI_DAY]`` (history replayed from
    before a restored day rolls nothing over)."""
    return day > ai[AI_DAY]


@njit(cache=True, _nrt=False)
def start_day(day, equity, af, ai):
    """The day rollover (call it when :func:`day_rolls`): day ``day`` starts at
    ``equity`` (quote, the DAILY_LOSS reference) and the DAILY_LOSS switch clears,
    except on the account's first day.

    Returns True when it cleared the switch (the caller journals ``K_KILL_RESET``).
    """
    cleared = ai[AI_DAY] >= 0 and (ai[AI_KILL] & KS_DAILY) != 0
    if cleared:
        ai[AI_KILL] &= ~KS_DAILY
    ai[AI_DAY] = day
    af[AF_DAY_START] = equity
    return cleared


@njit(cache=True, _nrt=False)
def rule_price(price: float, amount: float) -> int:
    """Deny a non-finite or non-positive price or amount (fail closed)."""
    if not (math.isfinite(price) and price > 0.0 and math.isfinite(amount)):
        return DENY_BAD_PRICE
    return OK


@njit(cache=True, _nrt=False)
def rule_min_notional(price: float, amount: float, min_amount: float, min_notional: float) -> int:
    """Deny an order below the exchange's minimum amount (base) or notional (quote)."""
    if amount <= 0.0 or amount < min_amount or amount * price < min_notional:
        return DENY_MIN_NOTIONAL
    return OK


@njit(cache=True, _nrt=False)
def rule_symbol_exposure(equity: float, symbol_notional: float, order_notional: float,
                         max_exposure: float) -> int:
    """Deny when one symbol's notional after the order, ``(symbol_notional +
    order_notional) / equity``, exceeds ``max_exposure`` (a multiple of equity; 0 = off).

    Notionals in quote currency at entry prices (the position's amount x average entry,
    plus, live, the symbol's other resting entries); a non-positive or non-finite equity
    denies with ``NO_EQUITY`` while the cap is on.
    """
    if max_exposure <= 0.0:
        return OK
    return _share_rule(equity, symbol_notional + order_notional, max_exposure,
                       DENY_SYMBOL_EXPOSURE)


@njit(cache=True, _nrt=False)
def time_stop_due(ts: int, open_ts: int, tf_ms: int, candles: float) -> bool:
    """The time stop of a position opened at ``open_ts`` (ms UTC; a fill time, or the
    open time of the candle it filled in) is due at the candle opening at ``ts``: the
    position has been held through ``candles`` candle closes (its entry candle counts as
    one), ``ts - candle_open(open_ts) >= candles * tf_ms``. ``candles <= 0`` = off."""
    if candles <= 0.0:
        return False
    return ts - (open_ts - open_ts % tf_ms) >= candles * tf_ms


@njit(cache=True, _nrt=False)
def rule_margin_ratio(equity: float, used_margin: float, order_margin: float,
                      max_margin_ratio: float) -> int:
    """Deny when ``(used_margin + order_margin) / equity > max_margin_ratio``.

    Margins in quote currency (``notional / leverage``); a non-positive or non-finite
    equity denies with ``NO_EQUITY``.
    """
    return _share_rule(equity, used_margin + order_margin, max_margin_ratio,
                       DENY_MAX_MARGIN_RATIO)


@njit(cache=True, _nrt=False, inline="always")
def _share_rule(equity, amount, cap, code):
    """``NO_EQUITY`` for a non-positive or non-finite ``equity``, ``code`` when
    ``amount / equity`` exceeds ``cap`` (1e-12 slack), else OK (quote amounts)."""
    if not math.isfinite(equity) or equity <= 0.0:
        return DENY_NO_EQUITY
    if amount / equity > cap + 1e-12:
        return code
    return OK


@njit(cache=True, _nrt=False)
def margin_denied_for_sure(used, size, step, hi, lev, max_mr, eq_max):
    """Bound of :func:`rule_margin_ratio` (the sweep's skip test): True when the rule
    certainly refuses an entry of notional ``size`` (quote, before the amount is floored
    to ``step`` base) at any price up to ``hi`` (quote), with ``used`` margin (quote)
    already in use, leverage ``lev`` and equity at most ``eq_max`` (quote) at the fill;
    False when unsure (a NaN ``size``: sizes that vary with the fill, never skipped)."""
    if not (eq_max > 0.0):
        return eq_max <= 0.0  # NO_EQUITY for every fill (NaN: unsure)
    order = (size - step * hi) / lev  # floor(size / px / step) * step * px >= size - step * px
    return used + order > (max_mr + 1e-12) * eq_max * (1.0 + 1e-9) + 1e-9


@njit(cache=True, _nrt=False)
def session_loss_tripped(pnl: float, capital: float, limit: float) -> bool:
    """True when ``pnl <= -limit * capital`` (quote); non-finite PnL trips (fail closed)."""
    if not math.isfinite(pnl):
        return True
    return capital > 0.0 and pnl <= -limit * capital


@njit(cache=True, _nrt=False)
def equity_lost(equity: float) -> bool:
    """MAX_DRAWDOWN's fail-closed leg: True when ``equity`` (quote) is non-finite or
    ``<= 0`` (nothing left to protect)."""
    return not (math.isfinite(equity) and equity > 0.0)


@njit(cache=True, _nrt=False)
def daily_loss_tripped(equity: float, day_start: float, limit: float) -> bool:
    """DAILY_LOSS: True when ``equity <= (1 - limit) * day_start`` (quote; ``limit`` a
    fraction, ``day_start`` the equity at the day's 00:00 UTC)."""
    return equity <= day_start * (1.0 - limit)


@njit(cache=True, _nrt=False)
def drawdown_tripped(equity: float, peak: float, pct: float) -> bool:
    """MAX_DRAWDOWN (all-time ``peak``) and ROLLING_DRAWDOWN (the window's ``peak``,
    :func:`rolling_peak`): True when ``equity <= (1 - pct) * peak`` (quote)."""
    return equity <= peak * (1.0 - pct)


@njit(cache=True, _nrt=False)
def raise_peak(equity, af):
    """Take a close's ``equity`` (quote) into the all-time peak ``af[AF_PEAK]`` that
    MAX_DRAWDOWN measures from (after that close's checks)."""
    if equity > af[AF_PEAK]:
        af[AF_PEAK] = equity


@njit(cache=True, _nrt=False)
def mark_rolling(ts, equity, ai, rw_ts, rw_eq):
    """Append the hourly mark (``ts`` ms UTC, ``equity`` quote) to the rolling-drawdown
    ring ``rw_ts, rw_eq`` (R,), overwriting the oldest; the position ``ai[AI_RW_POS]``
    stays in ``[0, R]``."""
    p = ai[AI_RW_POS]
    if p >= rw_ts.shape[0]:
        p = 0
    rw_ts[p] = ts
    rw_eq[p] = equity
    ai[AI_RW_POS] = p + 1


@njit(cache=True, _nrt=False)
def skip_marks(count, ai, rw_ts):
    """Shortcut of ``count`` :func:`mark_rolling` calls in a row: advances the ring
    position past the ``count - R`` marks later ones overwrite, and returns how many of
    the last marks the caller still writes (``min(count, R)``)."""
    R = rw_ts.shape[0]
    if count > R:
        ai[AI_RW_POS] = (ai[AI_RW_POS] + (count - R) - 1) % R + 1
        return R
    return count


@njit(cache=True, _nrt=False)
def rolling_peak(ts, equity, window_ms, rw_ts, rw_eq):
    """Peak (quote) of ``equity`` and the ring's marks at or after ``ts - window_ms``."""
    rpeak = equity
    start = ts - int(window_ms)
    for j in range(rw_ts.shape[0]):
        if rw_ts[j] >= start and rw_eq[j] > rpeak:
            rpeak = rw_eq[j]
    return rpeak


@njit(cache=True, _nrt=False)
def _trip(bit, value, threshold, ts, af, ai, out_i, out_f, n):
    if ai[AI_KILL] & bit:
        return n
    ai[AI_KILL] |= bit
    n = emit_event(EventLog(out_i, out_f), n, ai, K_KILL, ts, -1)
    out_i[n - 1, I_REASON] = bit
    ev = out_f[n - 1]
    ev[F_VALUE] = value
    ev[F_THRESHOLD] = threshold
    ev[F_DAY_START] = af[AF_DAY_START]
    ev[F_PEAK] = af[AF_PEAK]
    return n


@njit(cache=True, _nrt=False)
def check_kill_switches(ts, equity, pnl_grid, cap_grid, pnl_single, cap_single, af, ai, pf,
                        rw_ts, rw_eq, out_i, out_f, n):
    """Trip every kill switch whose rule fails at equity ``equity`` (quote) at ``ts``.

    A tripped bit is journaled once (``K_KILL`` with its value, threshold, the day-start
    equity and the peak, by their ``kernel_layout`` columns) into rows ``n...`` of
    ``out_i, out_f`` (an :class:`~gridflow.operators.kernel_layout.EventLog`'s arrays: the
    live risk check passes its own); one that is already on is not tripped again.
    Returns the new event-log length.
    """
    if equity_lost(equity):
        value = equity / af[AF_PEAK] - 1.0 if af[AF_PEAK] > 0.0 else -1.0
        return _trip(KS_MAX_DD, min(value, -1.0), -pf[P_MAX_DD], ts, af, ai, out_i, out_f, n)
    if session_loss_tripped(pnl_grid, cap_grid, pf[P_SESSION_GRID]):
        n = _trip(KS_SESSION_GRID, pnl_grid / cap_grid, -pf[P_SESSION_GRID], ts, af, ai,
                  out_i, out_f, n)
    if session_loss_tripped(pnl_single, cap_single, pf[P_SESSION_SINGLE]):
        n = _trip(KS_SESSION_SINGLE, pnl_single / cap_single, -pf[P_SESSION_SINGLE], ts, af,
                  ai, out_i, out_f, n)
    day = af[AF_DAY_START]
    if daily_loss_tripped(equity, day, pf[P_DAILY]):
        n = _trip(KS_DAILY, equity / day - 1.0, -pf[P_DAILY], ts, af, ai, out_i, out_f, n)
    peak = max(af[AF_PEAK], equity)
    if drawdown_tripped(equity, peak, pf[P_MAX_DD]):
        n = _trip(KS_MAX_DD, equity / peak - 1.0, -pf[P_MAX_DD], ts, af, ai, out_i, out_f, n)
    rpeak = rolling_peak(ts, equity, pf[P_ROLLING_MS], rw_ts, rw_eq)
    if drawdown_tripped(equity, rpeak, pf[P_ROLLING_DD]):
        n = _trip(KS_ROLLING_DD, equity / rpeak - 1.0, -pf[P_ROLLING_DD], ts, af, ai,
                  out_i, out_f, n)
    return n


@njit(cache=True, _nrt=False)
def kill_switch_may_trip(equity, pnl_grid, cap_grid, pnl_single, cap_single, day_start,
                         peak, pf):
    """Bound of :func:`check_kill_switches` (the sweep's skip test): False only when no
    switch can trip at ``equity`` (quote), session PnLs ``pnl_*`` over capitals ``cap_*``
    (quote) and the day's start equity ``day_start``.

    ``peak`` (quote) must bound both the all-time peak and every mark of the rolling
    window: the all-time peak does while no reset lowers it (every mark is a close's
    equity the peak has taken in), as in the sweep. Changes nothing.
    """
    if equity_lost(equity):
        return True
    if session_loss_tripped(pnl_grid, cap_grid, pf[P_SESSION_GRID]):
        return True
    if session_loss_tripped(pnl_single, cap_single, pf[P_SESSION_SINGLE]):
        return True
    if daily_loss_tripped(equity, day_start, pf[P_DAILY]):
        return True
    peak = max(peak, equity)
    return (drawdown_tripped(equity, peak, pf[P_MAX_DD])
            or drawdown_tripped(equity, peak, pf[P_ROLLING_DD]))
