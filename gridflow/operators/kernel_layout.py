"""State, parameter and event layout of the account step kernel (numpy struct-of-arrays).

Shared by :mod:`gridflow.operators.grid_kernel` (fills, PnL), :mod:`gridflow.operators.risk`
(rules, kill switches), :mod:`gridflow.sweep.kernel` and :mod:`gridflow.operators.engine`
(the Python shell). Columns are plain int constants so numba folds them; the kernels take
their arrays grouped in the records below (:class:`Candles`, :class:`QuoteArrays`,
:class:`StateArrays`, :class:`Params`, :class:`EventLog`: module-level ``NamedTuple`` s of
arrays, which numba passes and caches like tuples).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

# ---- event log -------------------------------------------------------------------------
K_ENTRY, K_EXIT, K_TRADE, K_DENIED, K_KILL, K_EQUITY, K_KILL_RESET, K_FUNDING = 1, 2, 3, 4, 5, 6, 7, 8
TAG_TP, TAG_SL, TAG_FLIP, TAG_FLATTEN, TAG_TIME, TAG_EXIT = -1, -2, -3, -4, -5, -6
EXIT_TP, EXIT_SL, EXIT_TRAIL, EXIT_FLIP, EXIT_FLATTEN, EXIT_TIME, EXIT_SIGNAL = 1, 2, 3, 4, 5, 6, 7
OI_W = 9  # int64 columns of an event row (I_*)
OF_W = 6  # float64 columns of an event row (F_*)
# Each column constant names ONE quantity; several share a column when no kind uses two of
# them (EVENT_FIELDS says which kind uses which). Every row has I_KIND, I_TS (ms UTC),
# I_SYM (symbol index, -1 = the account) and I_SEQ (event sequence number).
I_KIND, I_TS, I_SYM, I_SEQ = 0, 1, 2, 4
I_LEVEL = 3  # grid level index of an entry or a denial
I_TAG = 3  # order tag of an exit (TAG_*)
I_ENTRIES = 3  # entries (fills) of a round trip
I_REASON = 5  # EXIT_* (exit, trade), DENY_* (denied), KS_* bit (kill, kill reset)
I_DECISION_TS = 6  # close time (ms UTC) of the quotes the order rested on
I_OPEN_TS = 6  # first-entry time (ms UTC) of the position
I_SIDE = 7  # order side: +1 buy, -1 sell
I_POS_SIDE = 7  # position side: +1 long, -1 short
I_TAKER = 8  # 1 taker, 0 maker
# float columns; prices, money in quote currency, amounts in base
F_PRICE = 0  # fill price (after slippage) of an entry / exit; a denied level's price
F_EXIT_PRICE = 0  # exit fill price of a round trip
F_MARK_PRICE = 0  # price a funding payment is computed at (the candle close)
F_EQUITY = 0  # account equity (cash + unrealized)
F_AMOUNT = 1  # base amount
F_CASH = 1  # account cash
F_FEE = 2  # fee of one fill (positive = paid)
F_FEES = 2  # fees of a whole round trip
F_RATE = 2  # funding rate (fraction per settlement)
F_UNREALIZED = 2  # unrealized PnL of the open positions
F_DAY_START = 2  # equity at the day's 00:00 UTC (the DAILY_LOSS reference)
F_PNL = 3  # realized PnL of a fill before fees (0 for an entry)
F_NET_PNL = 3  # round trip PnL net of fees and funding
F_PAYMENT = 3  # funding payment (positive = paid)
F_USED_MARGIN = 3  # margin of the open positions (entry notional / leverage)
F_PEAK = 3  # all-time equity peak (the MAX_DRAWDOWN reference)
F_AVG_ENTRY = 4  # average entry price of the position
F_VALUE = 4  # value of the rule that denied or tripped (its unit is the rule's)
F_ORDER_PRICE = 5  # an exit's order price before slippage (limit / stop / open)
F_FUNDING = 5  # funding paid over a round trip (positive = paid)
F_THRESHOLD = 5  # threshold of the rule that denied or tripped


class EventFields(NamedTuple):
    """The named view of one event kind (a row of :data:`EVENT_FIELDS`)."""

    name: str
    ints: dict[str, int]  #: field name -> int column, besides kind, ts, sym, seq
    floats: dict[str, int]  #: field name -> float column


#: THE table of the event log: for each kind code, the columns it uses and their names.
#: The kernels write (``emit_event`` then named stores) and the decoder
#: (:mod:`gridflow.operators.engine_decode`) reads rows through these constants only; a
#: column a kind does not name stays 0.
EVENT_FIELDS: dict[int, EventFields] = {
    K_ENTRY: EventFields("entry", {
        "level": I_LEVEL, "decision_ts": I_DECISION_TS, "side": I_SIDE, "taker": I_TAKER}, {
        "price": F_PRICE, "amount": F_AMOUNT, "fee": F_FEE, "pnl": F_PNL,
        "avg_entry": F_AVG_ENTRY}),
    K_EXIT: EventFields("exit", {
        "tag": I_TAG, "reason": I_REASON, "decision_ts": I_DECISION_TS, "side": I_SIDE,
        "taker": I_TAKER}, {
        "price": F_PRICE, "amount": F_AMOUNT, "fee": F_FEE, "pnl": F_PNL,
        "avg_entry": F_AVG_ENTRY, "order_price": F_ORDER_PRICE}),
    K_TRADE: EventFields("trade", {
        "entries": I_ENTRIES, "reason": I_REASON, "open_ts": I_OPEN_TS,
        "position_side": I_POS_SIDE}, {
        "exit_price": F_EXIT_PRICE, "amount": F_AMOUNT, "fees": F_FEES, "net_pnl": F_NET_PNL,
        "avg_entry": F_AVG_ENTRY, "funding": F_FUNDING}),
    K_DENIED: EventFields("denied", {
        "level": I_LEVEL, "reason": I_REASON, "decision_ts": I_DECISION_TS, "side": I_SIDE}, {
        "price": F_PRICE, "amount": F_AMOUNT, "value": F_VALUE, "threshold": F_THRESHOLD}),
    K_KILL: EventFields("kill", {"reason": I_REASON}, {
        "day_start": F_DAY_START, "peak": F_PEAK, "value": F_VALUE, "threshold": F_THRESHOLD}),
    K_EQUITY: EventFields("equity", {}, {
        "equity": F_EQUITY, "cash": F_CASH, "unrealized": F_UNREALIZED,
        "used_margin": F_USED_MARGIN}),
    K_KILL_RESET: EventFields("kill_reset", {"reason": I_REASON}, {
        "equity": F_EQUITY, "day_start": F_DAY_START}),
    K_FUNDING: EventFields("funding", {"open_ts": I_OPEN_TS, "position_side": I_POS_SIDE}, {
        "mark_price": F_MARK_PRICE, "amount": F_AMOUNT, "rate": F_RATE, "payment": F_PAYMENT,
        "avg_entry": F_AVG_ENTRY}),
}


def event_fields(ints_row, floats_row) -> dict:
    """One event row (int64 (OI_W,), float64 (OF_W,)) as ``{name: value}`` through
    :data:`EVENT_FIELDS` (with ``kind`` as its name, ``ts``, ``sym``, ``seq``).

    Raises
    ------
    KeyError
        The row's kind code is not in the table.
    """
    f = EVENT_FIELDS[int(ints_row[I_KIND])]
    out = {"kind": f.name, "ts": int(ints_row[I_TS]), "sym": int(ints_row[I_SYM]),
           "seq": int(ints_row[I_SEQ])}
    out.update({k: int(ints_row[c]) for k, c in f.ints.items()})
    out.update({k: float(floats_row[c]) for k, c in f.floats.items()})
    return out

# ---- per-symbol float state --------------------------------------------------------------
(SF_AMT, SF_AVG, SF_CYCLE_FEES, SF_LAST_CLOSE, SF_TP, SF_BEST, SF_TRAIL, SF_SESSION_PNL,
 SF_SIZE, SF_CYCLE_FUNDING, SF_STOP_Q, SF_STOP_DIST) = range(12)
SF_W = 12
# ---- per-symbol int state ----------------------------------------------------------------
(SI_SIDE, SI_OPEN_TS, SI_ENTRIES, SI_QSIDE, SI_QTS, SI_COOLDOWN, SI_OPENED_NOW, SI_STOPPED_NOW,
 SI_PAUSED, SI_FLATTEN, SI_OPEN_DAY, SI_DAY_OPENS, SI_EXIT) = range(13)
SI_W = 13
# ---- account float state -----------------------------------------------------------------
AF_CASH, AF_FEES, AF_REALIZED, AF_CAPITAL, AF_DAY_START, AF_PEAK, AF_FUNDING = range(7)
AF_W = 7
# ---- account int state -------------------------------------------------------------------
AI_KILL, AI_SEQ, AI_CANDLES, AI_LAST_TS, AI_DAY, AI_RW_POS, AI_PAUSED = range(7)
AI_W = 7
# ---- account params ----------------------------------------------------------------------
(P_LEVERAGE, P_MAKER, P_TAKER, P_SLIP, P_MAX_MR, P_SESSION_GRID, P_SESSION_SINGLE,
 P_DAILY, P_ROLLING_DD, P_ROLLING_MS, P_MAX_DD, P_MAX_POS, P_CORR, P_COOLDOWN,
 P_RISK_SIZING, P_RISK_PER_TRADE, P_MAX_DAILY, P_MAX_SYM) = range(18)
P_W = 18
#: Account parameters copied as they are from ``RiskConfig`` fields.
RISK_PARAMS = ((P_MAX_MR, "max_margin_ratio"), (P_SESSION_GRID, "session_loss_grid"),
               (P_SESSION_SINGLE, "session_loss_single"), (P_DAILY, "daily_loss_limit"),
               (P_ROLLING_DD, "rolling_drawdown_frac"), (P_MAX_DD, "max_drawdown_frac"),
               (P_MAX_POS, "max_open_positions"), (P_CORR, "correlation_threshold"),
               (P_COOLDOWN, "cooldown_candles"), (P_MAX_DAILY, "max_daily_entries"),
               (P_MAX_SYM, "max_symbol_exposure"))
# ---- per-symbol params -------------------------------------------------------------------
M_STEP, M_MIN_AMOUNT, M_MIN_NOTIONAL, M_SL, M_GRID, M_LEVELS, M_ALLOC, M_TIME_STOP = range(8)
M_W = 8


# ---- the kernels' records ------------------------------------------------------------------
class Candles(NamedTuple):
    """Closed candles of one account, ``N`` rows sorted by ``(ts, symbol index)`` (one
    symbol's in the sweep, where ``sym`` is all 0)."""

    sym: np.ndarray  #: int64 (N,): symbol index
    ts: np.ndarray  #: int64 (N,): open time, ms UTC
    open: np.ndarray  #: float64 (N,), quote
    high: np.ndarray  #: float64 (N,), quote
    low: np.ndarray  #: float64 (N,), quote
    close: np.ndarray  #: float64 (N,), quote
    #: float64 (N,): sum of the funding rates (fractions per settlement) settled in
    #: ``(open, close]`` of each candle; 0 for none or a spot symbol
    funding: np.ndarray


class QuoteArrays(NamedTuple):
    """Quotes decided at each candle's close (``N`` rows, as :class:`Candles`); they rest
    during that symbol's next candle."""

    side: np.ndarray  #: int64 (N,): +1 long, -1 short, 0 none
    levels: np.ndarray  #: float64 (N, L): entry level prices, quote (NaN = not quoted)
    take_profit: np.ndarray  #: float64 (N,): quote (NaN = none)
    trail: np.ndarray  #: float64 (N,): trailing-stop distance, quote (NaN = none)
    size: np.ndarray  #: float64 (N,): notional per level, quote
    #: float64 (N,): the k x ATR initial stop's distance from the average entry a
    #: position opening on these quotes keeps for its cycle, quote (NaN = none)
    stop: np.ndarray
    #: int64 (N,): 1 = the strategy's exit signal (an open position closes at the open)
    exit: np.ndarray


class StateArrays(NamedTuple):
    """The arrays of a :class:`KernelState` (same names, shapes and meaning), as the
    kernels take them; updated in place."""

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


class Params(NamedTuple):
    """An account's parameters (the kernels read them, never write them)."""

    account: np.ndarray  #: float64 (P_W,): leverage, fees, risk limits, sizing (P_*)
    #: float64 (S, M_W): per symbol amount step, minimums, stop distance, grid flag,
    #: levels, allocation, time stop in candles (0 = off) (M_*)
    market: np.ndarray
    tf_ms: np.ndarray  #: int64 (S,): timeframe of each symbol, ms
    #: equity snapshots (K_EQUITY) at candle-time closes that are multiples of this (ms)
    equity_every_ms: int


class EventLog(NamedTuple):
    """The kernels' event log: one row per event, its columns named by kind in
    :data:`EVENT_FIELDS`."""

    ints: np.ndarray  #: int64 (cap, OI_W)
    floats: np.ndarray  #: float64 (cap, OF_W)


@dataclass
class KernelState:
    """Picklable state of one account (arrays updated in place by the kernel, which takes
    them as one :class:`StateArrays` record: :meth:`arrays`). It stays a dataclass so
    Bytewax snapshots of an engine pickled by earlier versions still load.

    Attributes
    ----------
    sf : float64 (S, SF_W)
        Per symbol: position amount (base, >= 0), average entry (quote), fees of the open
        cycle, last close, resting take profit, best price since entry, resting trailing
        distance (quote), session PnL (realized minus fees and funding since the session
        start), resting notional per level (quote), funding paid in the open cycle (quote,
        positive = paid), the resting k x ATR stop distance and the open cycle's (fixed
        when it opened; quote, 0 = none).
    si : int64 (S, SI_W)
        Per symbol: position side (+1 long, -1 short, 0 flat), first-entry time (ms),
        entries in the cycle, side of the resting quotes, decision time of the quotes,
        cooldown candles left, 1 if the position opened / was stopped in the current
        candle, 1 if paused (no new entries), 1 if a flatten is pending (close at the next
        open), the UTC day number of the last position opened and the positions opened
        on that day (the daily-entries rule), 1 if the resting quotes carry the
        strategy's exit signal.
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
        reset_state(st.arrays(), capital_quote)
        return st

    def arrays(self) -> StateArrays:
        """The arrays as the kernels take them (the same objects: updated in place)."""
        return StateArrays(self.sf, self.si, self.qlv, self.filled, self.dn, self.cnt,
                           self.af, self.ai, self.rw_ts, self.rw_eq)


from numba import njit  # noqa: E402


@njit(cache=True, _nrt=False)
def emit_event(log, n, ai, kind, ts, sym):
    """Start event row ``n`` of ``log`` (:class:`EventLog`): kind, time ``ts`` (ms UTC),
    symbol index ``sym`` (-1 = the account) and the next sequence number (``ai[AI_SEQ]``
    advances); every other column 0. The caller then writes the kind's fields by their
    column constants (:data:`EVENT_FIELDS`) into row ``n``. Returns ``n + 1``."""
    for j in range(OI_W):  # constant trip counts: unrolled
        log.ints[n, j] = 0
    for j in range(OF_W):
        log.floats[n, j] = 0.0
    log.ints[n, I_KIND] = kind
    log.ints[n, I_TS] = ts
    log.ints[n, I_SYM] = sym
    log.ints[n, I_SEQ] = ai[AI_SEQ]
    ai[AI_SEQ] += 1
    return n + 1


@njit(cache=True, _nrt=False)
def reset_state(st, capital_quote):
    """Put the arrays of ``st`` (:class:`StateArrays`) in the state of a fresh account
    with ``capital_quote`` (quote) of cash: flat, nothing quoted, no switch, no history."""
    sf, af, ai = st.sf, st.af, st.ai
    sf[:] = 0.0
    sf[:, SF_LAST_CLOSE] = np.nan
    sf[:, SF_TP] = np.nan
    sf[:, SF_TRAIL] = np.nan
    sf[:, SF_SIZE] = np.nan
    st.si[:] = 0
    st.qlv[:] = np.nan
    st.filled[:] = 0
    st.dn[:] = 0
    st.cnt[:] = 0
    af[:] = 0.0
    af[AF_CASH] = capital_quote
    af[AF_CAPITAL] = capital_quote
    af[AF_DAY_START] = capital_quote
    af[AF_PEAK] = capital_quote
    ai[:] = 0
    ai[AI_LAST_TS] = -1
    ai[AI_DAY] = -1
    st.rw_ts[:] = -1
    st.rw_eq[:] = 0.0
