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
"""

from __future__ import annotations

import math

from numba import njit

from gridflow.operators.kernel_layout import (
    AF_DAY_START,
    AF_PEAK,
    AI_KILL,
    K_KILL,
    P_DAILY,
    P_MAX_DD,
    P_ROLLING_DD,
    P_ROLLING_MS,
    P_SESSION_GRID,
    P_SESSION_SINGLE,
    emit,
)

OK = 0
DENY_KILL_SWITCH, DENY_MIN_NOTIONAL, DENY_MAX_MARGIN_RATIO, DENY_NO_EQUITY = 1, 2, 3, 4
DENY_BAD_PRICE, DENY_COOLDOWN, DENY_MAX_POSITIONS, DENY_CORRELATION, DENY_PAUSED = 5, 6, 7, 8, 9
DENY_DAILY_ENTRIES = 10

DENY_REASONS = {
    DENY_KILL_SWITCH: "KILL_SWITCH",
    DENY_MIN_NOTIONAL: "MIN_NOTIONAL",
    DENY_MAX_MARGIN_RATIO: "MAX_MARGIN_RATIO",
    DENY_NO_EQUITY: "NO_EQUITY",
    DENY_BAD_PRICE: "BAD_PRICE",
    DENY_COOLDOWN: "COOLDOWN",
    DENY_MAX_POSITIONS: "MAX_OPEN_POSITIONS",
    DENY_CORRELATION: "CORRELATION",
    DENY_PAUSED: "PAUSED",
    DENY_DAILY_ENTRIES: "DAILY_ENTRIES",
}
#: Names of the value and threshold a denial journals (``equity`` / ``none`` otherwise).
DENY_DETAIL = {
    "MAX_MARGIN_RATIO": ("margin_ratio_after", "max_margin_ratio"),
    "KILL_SWITCH": ("kill_switch_mask", "none"),
    "MIN_NOTIONAL": ("notional", "min_notional"),
    "COOLDOWN": ("cooldown_candles_left", "cooldown_candles"),
    "MAX_OPEN_POSITIONS": ("open_positions", "max_open_positions"),
    "CORRELATION": ("max_abs_correlation", "correlation_threshold"),
    "DAILY_ENTRIES": ("opened_today", "max_daily_entries"),
}

KS_SESSION_GRID, KS_SESSION_SINGLE, KS_DAILY, KS_ROLLING_DD, KS_MAX_DD = 1, 2, 4, 8, 16
KILL_SWITCH_REASONS = {
    KS_SESSION_GRID: "SESSION_LOSS_GRID",
    KS_SESSION_SINGLE: "SESSION_LOSS_SINGLE",
    KS_DAILY: "DAILY_LOSS",
    KS_ROLLING_DD: "ROLLING_DRAWDOWN",
    KS_MAX_DD: "MAX_DRAWDOWN",
}
KS_ALL = 31


def kill_switch_names(mask: int) -> list[str]:
    """Reason codes of the bits set in ``mask``, in bit order."""
    return [name for bit, name in KILL_SWITCH_REASONS.items() if mask & bit]


@njit(cache=True, _nrt=False)
def rule_kill_switch(kill_mask: int) -> int:
    """Deny every opening order while any kill switch is on."""
    return DENY_KILL_SWITCH if kill_mask != 0 else OK


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
def rule_margin_ratio(equity: float, used_margin: float, order_margin: float,
                      max_margin_ratio: float) -> int:
    """Deny when ``(used_margin + order_margin) / equity > max_margin_ratio``.

    Margins in quote currency (``notional / leverage``); a non-positive or non-finite
    equity denies with ``NO_EQUITY``.
    """
    if not math.isfinite(equity) or equity <= 0.0:
        return DENY_NO_EQUITY
    if (used_margin + order_margin) / equity > max_margin_ratio + 1e-12:
        return DENY_MAX_MARGIN_RATIO
    return OK


@njit(cache=True, _nrt=False)
def rule_new_position(opens_position: bool, cooldown_left: int, open_positions: int,
                      max_positions: int, max_abs_corr: float, corr_threshold: float) -> int:
    """Rules for the first level of a new position (and the cooldown for any entry):
    cooldown after a stop, max open positions, correlation with open positions (a
    non-finite correlation denies while the guard is on)."""
    if cooldown_left > 0:
        return DENY_COOLDOWN
    if not opens_position:
        return OK
    if open_positions >= max_positions:
        return DENY_MAX_POSITIONS
    if corr_threshold < 1.0 and not (max_abs_corr <= corr_threshold):
        return DENY_CORRELATION
    return OK


@njit(cache=True, _nrt=False)
def session_loss_tripped(pnl: float, capital: float, limit: float) -> bool:
    """True when ``pnl <= -limit * capital`` (quote); non-finite PnL trips (fail closed)."""
    if not math.isfinite(pnl):
        return True
    return capital > 0.0 and pnl <= -limit * capital


@njit(cache=True, _nrt=False)
def _trip(bit, value, threshold, ts, af, ai, out_i, out_f, n):
    if ai[AI_KILL] & bit:
        return n
    ai[AI_KILL] |= bit
    return emit(out_i, out_f, n, ai, K_KILL, ts, -1, 0, bit, ts, 0, value, threshold,
                af[AF_DAY_START], af[AF_PEAK], 0.0, 0.0)


@njit(cache=True, _nrt=False)
def check_kill_switches(ts, equity, pnl_grid, cap_grid, pnl_single, cap_single, af, ai, pf,
                        rw_ts, rw_eq, out_i, out_f, n):
    """Trip every kill switch whose rule fails at equity ``equity`` (quote) at ``ts``.

    A tripped bit is journaled once (``K_KILL`` with value and threshold); one that is
    already on is not tripped again. Returns the new event-log length.
    """
    if not math.isfinite(equity) or equity <= 0.0:  # nothing left to protect: fail closed
        value = equity / af[AF_PEAK] - 1.0 if af[AF_PEAK] > 0.0 else -1.0
        return _trip(KS_MAX_DD, min(value, -1.0), -pf[P_MAX_DD], ts, af, ai, out_i, out_f, n)
    if session_loss_tripped(pnl_grid, cap_grid, pf[P_SESSION_GRID]):
        n = _trip(KS_SESSION_GRID, pnl_grid / cap_grid, -pf[P_SESSION_GRID], ts, af, ai,
                  out_i, out_f, n)
    if session_loss_tripped(pnl_single, cap_single, pf[P_SESSION_SINGLE]):
        n = _trip(KS_SESSION_SINGLE, pnl_single / cap_single, -pf[P_SESSION_SINGLE], ts, af,
                  ai, out_i, out_f, n)
    day = af[AF_DAY_START]
    if equity <= day * (1.0 - pf[P_DAILY]):
        n = _trip(KS_DAILY, equity / day - 1.0, -pf[P_DAILY], ts, af, ai, out_i, out_f, n)
    peak = max(af[AF_PEAK], equity)
    if equity <= peak * (1.0 - pf[P_MAX_DD]):
        n = _trip(KS_MAX_DD, equity / peak - 1.0, -pf[P_MAX_DD], ts, af, ai, out_i, out_f, n)
    rpeak = equity
    start = ts - int(pf[P_ROLLING_MS])
    for j in range(rw_ts.shape[0]):
        if rw_ts[j] >= start and rw_eq[j] > rpeak:
            rpeak = rw_eq[j]
    if equity <= rpeak * (1.0 - pf[P_ROLLING_DD]):
        n = _trip(KS_ROLLING_DD, equity / rpeak - 1.0, -pf[P_ROLLING_DD], ts, af, ai,
                  out_i, out_f, n)
    return n
