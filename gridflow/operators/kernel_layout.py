"""State and parameter layout of the account step kernel (numpy struct-of-arrays).

Shared by :mod:`gridflow.operators.grid_kernel` (fills, PnL), :mod:`gridflow.operators.risk`
(rules, kill switches) and :mod:`gridflow.operators.engine` (the Python shell). Columns are
plain int constants so numba folds them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# ---- event log -------------------------------------------------------------------------
K_ENTRY, K_EXIT, K_TRADE, K_DENIED, K_KILL, K_EQUITY, K_KILL_RESET, K_FUNDING = 1, 2, 3, 4, 5, 6, 7, 8
TAG_TP, TAG_SL, TAG_FLIP, TAG_FLATTEN = -1, -2, -3, -4
EXIT_TP, EXIT_SL, EXIT_TRAIL, EXIT_FLIP, EXIT_FLATTEN = 1, 2, 3, 4, 5
OI_W = 9  # kind, ts, sym, level/tag/entries, seq, reason, decision ts / open ts, side, taker
OF_W = 6  # price, amount, fee, pnl, x1, x2

# ---- per-symbol float state --------------------------------------------------------------
(SF_AMT, SF_AVG, SF_CYCLE_FEES, SF_LAST_CLOSE, SF_TP, SF_BEST, SF_TRAIL, SF_SESSION_PNL,
 SF_SIZE, SF_CYCLE_FUNDING) = range(10)
SF_W = 10
# ---- per-symbol int state ----------------------------------------------------------------
(SI_SIDE, SI_OPEN_TS, SI_ENTRIES, SI_QSIDE, SI_QTS, SI_COOLDOWN, SI_OPENED_NOW, SI_STOPPED_NOW,
 SI_PAUSED, SI_FLATTEN, SI_OPEN_DAY, SI_DAY_OPENS) = range(12)
SI_W = 12
# ---- account float state -----------------------------------------------------------------
AF_CASH, AF_FEES, AF_REALIZED, AF_CAPITAL, AF_DAY_START, AF_PEAK, AF_FUNDING = range(7)
AF_W = 7
# ---- account int state -------------------------------------------------------------------
AI_KILL, AI_SEQ, AI_CANDLES, AI_LAST_TS, AI_DAY, AI_RW_POS, AI_PAUSED = range(7)
AI_W = 7
# ---- account params ----------------------------------------------------------------------
(P_LEVERAGE, P_MAKER, P_TAKER, P_SLIP, P_MAX_MR, P_SESSION_GRID, P_SESSION_SINGLE,
 P_DAILY, P_ROLLING_DD, P_ROLLING_MS, P_MAX_DD, P_MAX_POS, P_CORR, P_COOLDOWN,
 P_RISK_SIZING, P_RISK_PER_TRADE, P_MAX_DAILY) = range(17)
P_W = 17
#: Account parameters copied as they are from ``RiskConfig`` fields.
RISK_PARAMS = ((P_MAX_MR, "max_margin_ratio"), (P_SESSION_GRID, "session_loss_grid"),
               (P_SESSION_SINGLE, "session_loss_single"), (P_DAILY, "daily_loss_limit"),
               (P_ROLLING_DD, "rolling_drawdown_pct"), (P_MAX_DD, "max_drawdown_pct"),
               (P_MAX_POS, "max_open_positions"), (P_CORR, "correlation_threshold"),
               (P_COOLDOWN, "cooldown_candles"), (P_MAX_DAILY, "max_daily_entries"))
# ---- per-symbol params -------------------------------------------------------------------
M_STEP, M_MIN_AMOUNT, M_MIN_NOTIONAL, M_SL, M_GRID, M_LEVELS, M_ALLOC = range(7)
M_W = 7


@dataclass
class KernelState:
    """Picklable state of one account (arrays updated in place by the kernel).

    Attributes
    ----------
    sf : float64 (S, SF_W)
        Per symbol: position amount (base, >= 0), average entry (quote), fees of the open
        cycle, last close, resting take profit, best price since entry, resting trailing
        distance (quote), session PnL (realized minus fees and funding since the session
        start), resting notional per level (quote), funding paid in the open cycle (quote,
        positive = paid).
    si : int64 (S, SI_W)
        Per symbol: position side (+1 long, -1 short, 0 flat), first-entry time (ms),
        entries in the cycle, side of the resting quotes, decision time of the quotes,
        cooldown candles left, 1 if the position opened / was stopped in the current
        candle, 1 if paused (no new entries), 1 if a flatten is pending (close at the next
        open), the UTC day number of the last position opened and the positions opened
        on that day (the daily-entries rule).
    qlv : float64 (S, L)
        Resting entry level prices (NaN = not quoted).
    filled : uint8 (S, L)
        1 where the level is filled in the open cycle.
    dn : int64 (S, L)
        Last denial reason journaled per level in the cycle (repeats are only counted).
    cnt : int64 (32,)
        Denials counted per reason code.
    af : float64 (AF_W,)
        Cash, fees paid, realized PnL, initial capital, equity at the day's 00:00 UTC,
        equity peak since the last max-drawdown reset, funding paid (positive = paid;
        quote).
    ai : int64 (AI_W,)
        Kill switch bit mask, event sequence, candles processed, last candle time (ms),
        current UTC day number, rolling-window ring position, 1 if the account is paused.
    rw_ts, rw_eq : int64 / float64 (R,)
        Ring of hourly equity marks for the rolling drawdown window.
    """

    sf: np.ndarray
    si: np.ndarray
    qlv: np.ndarray
    filled: np.ndarray
    dn: np.ndarray
    cnt: np.ndarray
    af: np.ndarray
    ai: np.ndarray
    rw_ts: np.ndarray
    rw_eq: np.ndarray

    @classmethod
    def new(cls, n_symbols: int, levels: int, capital_quote: float, window_hours: int
            ) -> "KernelState":
        st = cls(
            np.zeros((n_symbols, SF_W)),
            np.zeros((n_symbols, SI_W), dtype=np.int64),
            np.zeros((n_symbols, levels)),
            np.zeros((n_symbols, levels), dtype=np.uint8),
            np.zeros((n_symbols, levels), dtype=np.int64),
            np.zeros(32, dtype=np.int64),
            np.zeros(AF_W),
            np.zeros(AI_W, dtype=np.int64),
            np.zeros(window_hours + 1, dtype=np.int64),
            np.zeros(window_hours + 1),
        )
        reset_state(*st.arrays(), capital_quote)
        return st

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The arrays in the kernel's argument order."""
        return (self.sf, self.si, self.qlv, self.filled, self.dn, self.cnt, self.af, self.ai,
                self.rw_ts, self.rw_eq)


from numba import njit  # noqa: E402


@njit(cache=True, _nrt=False)
def emit(out_i, out_f, n, ai, kind, ts, sym, level, reason, dts, side, f0, f1, f2, f3, f4, f5):
    """Append one row to the event log; returns the new row count (seq advances)."""
    out_i[n, 0] = kind
    out_i[n, 1] = ts
    out_i[n, 2] = sym
    out_i[n, 3] = level
    out_i[n, 4] = ai[AI_SEQ]
    out_i[n, 5] = reason
    out_i[n, 6] = dts
    out_i[n, 7] = side
    out_i[n, 8] = 0
    out_f[n, 0] = f0
    out_f[n, 1] = f1
    out_f[n, 2] = f2
    out_f[n, 3] = f3
    out_f[n, 4] = f4
    out_f[n, 5] = f5
    ai[AI_SEQ] += 1
    return n + 1


@njit(cache=True, _nrt=False)
def reset_state(sf, si, qlv, filled, dn, cnt, af, ai, rw_ts, rw_eq, capital_quote):
    """Put :class:`KernelState` arrays in the state of a fresh account with
    ``capital_quote`` (quote) of cash: flat, nothing quoted, no switch, no history."""
    sf[:] = 0.0
    sf[:, SF_LAST_CLOSE] = np.nan
    sf[:, SF_TP] = np.nan
    sf[:, SF_TRAIL] = np.nan
    sf[:, SF_SIZE] = np.nan
    si[:] = 0
    qlv[:] = np.nan
    filled[:] = 0
    dn[:] = 0
    cnt[:] = 0
    af[:] = 0.0
    af[AF_CASH] = capital_quote
    af[AF_CAPITAL] = capital_quote
    af[AF_DAY_START] = capital_quote
    af[AF_PEAK] = capital_quote
    ai[:] = 0
    ai[AI_LAST_TS] = -1
    ai[AI_DAY] = -1
    rw_ts[:] = -1
    rw_eq[:] = 0.0
