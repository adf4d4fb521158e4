"""The account step kernel: paper matching, fees, PnL and risk for grid strategies.

One numba function, :func:`run_steps`, advances one account over a sequence of closed
candles (many symbols, sorted by ``(ts, symbol index)``). The streaming account engine
calls it for whatever candles are ready; a sweep calls it for a whole history. State is
a handful of numpy arrays (:class:`KernelState`), so it pickles for Bytewax snapshots and
results do not depend on how candles were chunked.

Timing (no look-ahead)
----------------------
The quotes (grid level prices, take-profit price, side) computed at the close of candle
``t`` rest during candle ``t+1`` of the same symbol. Fills are stamped with the open time
of the candle in which they happen; equity snapshots with candle close times.

Intrabar rule (the same in replay and sweep)
---------------------------------------------
Price is assumed to travel ``open -> low -> high -> close`` when ``close >= open`` and
``open -> high -> low -> close`` otherwise. Along each leg, orders trigger in the order
the price reaches them:

* grid entries (limit, maker fee) fill at their level price, or at the leg's start price
  when the market opened beyond it (a gap fills at the better open);
* the stop loss (stop-market, taker fee plus slippage) triggers at
  ``avg_entry * (1 - sl_pct)`` for a long (``1 + sl_pct`` for a short); when a level and
  the stop are at the same price, the stop goes first (conservative);
* the take profit (limit at the SMA, maker fee) fills on a favourable leg.

After a grid closes (TP or SL) it re-arms at the next candle, never within the same one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from gridflow.operators.risk import KS_OFF, KS_SESSION_LOSS, gate_entry, session_loss_tripped

# output kinds
K_ENTRY = 1
K_EXIT = 2
K_TRADE = 3
K_DENIED = 4
K_KILL = 5
K_EQUITY = 6

TAG_TP = -1
TAG_SL = -2
EXIT_TP = 1
EXIT_SL = 2

# out_i columns: kind, ts, sym, level/tag/entries, seq, reason, decision ts / open ts, side
OI_W = 8
# out_f columns: price, amount, fee, pnl, x1, x2
OF_W = 6

# per-symbol float state
SF_AMT, SF_AVG, SF_CYCLE_FEES, SF_LAST_CLOSE, SF_TP = 0, 1, 2, 3, 4
SF_W = 5
# per-symbol int state
SI_SIDE, SI_OPEN_TS, SI_ENTRIES, SI_QSIDE, SI_QTS = 0, 1, 2, 3, 4
SI_W = 5
# account float state
AF_CASH, AF_SESSION_START, AF_FEES, AF_REALIZED, AF_CAPITAL = 0, 1, 2, 3, 4
AF_W = 5
# account int state
AI_KILL, AI_SEQ, AI_CANDLES, AI_LAST_TS = 0, 1, 2, 3
AI_W = 4
# params
P_MARGIN_PER_LEVEL, P_LEVERAGE, P_SL, P_MAKER, P_TAKER, P_SLIP, P_MAX_MR, P_SESSION_LOSS = range(8)
P_W = 8
# per-symbol market params
M_STEP, M_MIN_AMOUNT, M_MIN_NOTIONAL = 0, 1, 2
M_W = 3


@dataclass
class KernelState:
    """Picklable state of one account for :func:`run_steps`.

    Attributes
    ----------
    sf : float64 (S, 5)
        Per symbol: position amount (base, >= 0), average entry (quote), fees of the
        open cycle (quote), last close (quote), resting take-profit price (quote).
    si : int64 (S, 5)
        Per symbol: position side (+1 long, -1 short, 0 flat), first-entry time (ms),
        entries in the cycle, side of the resting quotes, decision time of the quotes.
    qlv : float64 (S, L)
        Resting grid level prices (NaN = not quoted).
    filled : uint8 (S, L)
        1 where the level is filled in the open cycle.
    af : float64 (5,)
        Cash (quote), session start equity, fees paid, realized PnL, initial capital.
    ai : int64 (4,)
        Kill switch code, event sequence number, candles processed, last candle time.
    dn : int64 (S, L)
        Last denial reason journaled for each level in the open cycle: a level denied
        again for the same reason is counted but not journaled again until the cycle
        ends, the level fills or the reason changes.
    cnt : int64 (16,)
        Denials counted per reason code.
    """

    sf: np.ndarray
    si: np.ndarray
    qlv: np.ndarray
    filled: np.ndarray
    af: np.ndarray
    ai: np.ndarray
    dn: np.ndarray
    cnt: np.ndarray

    @classmethod
    def new(cls, n_symbols: int, levels: int, capital_quote: float) -> "KernelState":
        sf = np.zeros((n_symbols, SF_W))
        sf[:, SF_LAST_CLOSE] = np.nan
        sf[:, SF_TP] = np.nan
        af = np.zeros(AF_W)
        af[AF_CASH] = capital_quote
        af[AF_SESSION_START] = capital_quote
        af[AF_CAPITAL] = capital_quote
        ai = np.zeros(AI_W, dtype=np.int64)
        ai[AI_LAST_TS] = -1
        return cls(
            sf,
            np.zeros((n_symbols, SI_W), dtype=np.int64),
            np.full((n_symbols, levels), np.nan),
            np.zeros((n_symbols, levels), dtype=np.uint8),
            af,
            ai,
            np.zeros((n_symbols, levels), dtype=np.int64),
            np.zeros(16, dtype=np.int64),
        )


@njit(cache=True)
def _marks(sf, si, sym, price):
    """Equity parts with symbol ``sym`` marked at ``price``, others at last close."""
    unreal = 0.0
    notional = 0.0
    for s in range(sf.shape[0]):
        amt = sf[s, SF_AMT]
        if amt > 0.0:
            mark = price if s == sym else sf[s, SF_LAST_CLOSE]
            unreal += si[s, SI_SIDE] * amt * (mark - sf[s, SF_AVG])
            notional += amt * sf[s, SF_AVG]
    return unreal, notional


@njit(cache=True)
def _emit(out_i, out_f, n, ai, kind, ts, sym, level, reason, dts, side, f0, f1, f2, f3, f4, f5):
    out_i[n, 0] = kind
    out_i[n, 1] = ts
    out_i[n, 2] = sym
    out_i[n, 3] = level
    out_i[n, 4] = ai[AI_SEQ]
    out_i[n, 5] = reason
    out_i[n, 6] = dts
    out_i[n, 7] = side
    out_f[n, 0] = f0
    out_f[n, 1] = f1
    out_f[n, 2] = f2
    out_f[n, 3] = f3
    out_f[n, 4] = f4
    out_f[n, 5] = f5
    ai[AI_SEQ] += 1
    return n + 1


@njit(cache=True)
def _close(s, ts, px, fee_rate, slip, tag, sf, si, af, ai, out_i, out_f, n):
    """Close the whole position of symbol ``s`` at ``px`` (before slippage)."""
    d = si[s, SI_SIDE]
    amt = sf[s, SF_AMT]
    fill = px * (1.0 - d * slip)
    fee = amt * fill * fee_rate
    pnl = d * amt * (fill - sf[s, SF_AVG])
    af[AF_CASH] += pnl - fee
    af[AF_FEES] += fee
    af[AF_REALIZED] += pnl
    n = _emit(out_i, out_f, n, ai, K_EXIT, ts, s, tag, 0, si[s, SI_QTS], -d,
              fill, amt, fee, pnl, sf[s, SF_AVG], px)
    fees = sf[s, SF_CYCLE_FEES] + fee
    reason = EXIT_TP if tag == TAG_TP else EXIT_SL
    n = _emit(out_i, out_f, n, ai, K_TRADE, ts, s, si[s, SI_ENTRIES], reason, si[s, SI_OPEN_TS], d,
              fill, amt, fees, pnl - fees, sf[s, SF_AVG], 0.0)
    sf[s, SF_AMT] = 0.0
    sf[s, SF_AVG] = 0.0
    sf[s, SF_CYCLE_FEES] = 0.0
    si[s, SI_SIDE] = 0
    si[s, SI_ENTRIES] = 0
    si[s, SI_OPEN_TS] = 0
    return n


@njit(cache=True)
def _adverse_leg(s, ts, a, b, d, sf, si, qlv, filled, dn, cnt, af, ai, pf, mp, out_i, out_f, n):
    """Entries and the stop along a leg moving against grid side ``d``.

    Returns ``(n, closed)``.
    """
    L = qlv.shape[1]
    for i in range(L):
        if filled[s, i]:
            continue
        lv = qlv[s, i]
        if not (lv > 0.0) or d * b > d * lv:
            continue
        # stop first when reached before (or at) this level
        if sf[s, SF_AMT] > 0.0:
            stop = sf[s, SF_AVG] * (1.0 - d * pf[P_SL])
            if d * stop >= d * lv and d * b <= d * stop:
                px = a if d * a <= d * stop else stop
                return _close(s, ts, px, pf[P_TAKER], pf[P_SLIP], TAG_SL, sf, si, af, ai,
                              out_i, out_f, n), True
        px = a if d * a <= d * lv else lv
        step = mp[s, M_STEP]
        amount = pf[P_MARGIN_PER_LEVEL] * pf[P_LEVERAGE] / px
        if step > 0.0:
            amount = math.floor(amount / step + 1e-9) * step
        unreal, notional = _marks(sf, si, s, px)
        equity = af[AF_CASH] + unreal
        if ai[AI_KILL] == KS_OFF and session_loss_tripped(
            equity, af[AF_SESSION_START], pf[P_SESSION_LOSS]
        ):
            ai[AI_KILL] = KS_SESSION_LOSS
            n = _emit(out_i, out_f, n, ai, K_KILL, ts, s, 0, KS_SESSION_LOSS, ts, 0, equity,
                      af[AF_SESSION_START], 0.0, 0.0, equity / af[AF_SESSION_START] - 1.0,
                      -pf[P_SESSION_LOSS])
        used = notional / pf[P_LEVERAGE]
        r = gate_entry(ai[AI_KILL], px, amount, mp[s, M_MIN_AMOUNT], mp[s, M_MIN_NOTIONAL],
                       equity, used, pf[P_LEVERAGE], pf[P_MAX_MR])
        if r != 0:
            cnt[r] += 1
            if dn[s, i] == r:
                continue
            dn[s, i] = r
            ratio = (used + amount * px / pf[P_LEVERAGE]) / equity if equity > 0 else np.inf
            n = _emit(out_i, out_f, n, ai, K_DENIED, ts, s, i, r, si[s, SI_QTS], d,
                      px, amount, 0.0, 0.0, ratio, pf[P_MAX_MR])
            continue
        fee = amount * px * pf[P_MAKER]
        old = sf[s, SF_AMT]
        if old == 0.0:
            si[s, SI_SIDE] = d
            si[s, SI_OPEN_TS] = ts
            si[s, SI_ENTRIES] = 0
        sf[s, SF_AVG] = (old * sf[s, SF_AVG] + amount * px) / (old + amount)
        sf[s, SF_AMT] = old + amount
        sf[s, SF_CYCLE_FEES] += fee
        si[s, SI_ENTRIES] += 1
        filled[s, i] = 1
        dn[s, i] = 0
        af[AF_CASH] -= fee
        af[AF_FEES] += fee
        n = _emit(out_i, out_f, n, ai, K_ENTRY, ts, s, i, 0, si[s, SI_QTS], d,
                  px, amount, fee, 0.0, sf[s, SF_AVG], 0.0)
    if sf[s, SF_AMT] > 0.0:
        stop = sf[s, SF_AVG] * (1.0 - d * pf[P_SL])
        if d * b <= d * stop:
            px = a if d * a <= d * stop else stop
            return _close(s, ts, px, pf[P_TAKER], pf[P_SLIP], TAG_SL, sf, si, af, ai,
                          out_i, out_f, n), True
    return n, False


@njit(cache=True)
def _favourable_leg(s, ts, a, b, d, sf, si, af, ai, pf, out_i, out_f, n):
    """Take profit along a leg moving with position side ``d``. Returns ``(n, closed)``."""
    tp = sf[s, SF_TP]
    if sf[s, SF_AMT] > 0.0 and tp > 0.0 and d * b >= d * tp:
        px = a if d * a >= d * tp else tp
        return _close(s, ts, px, pf[P_MAKER], 0.0, TAG_TP, sf, si, af, ai, out_i, out_f, n), True
    return n, False


@njit(cache=True)
def _candle(s, ts, o, h, l, c, sf, si, qlv, filled, dn, cnt, af, ai, pf, mp, out_i, out_f, n):
    d = si[s, SI_SIDE]
    if d == 0:
        d = si[s, SI_QSIDE]
    if d == 0:
        return n
    if c >= o:
        path = (o, l, h, c)
    else:
        path = (o, h, l, c)
    for k in range(3):
        a = path[k]
        b = path[k + 1]
        if d * b < d * a:
            # entries only while the resting quotes are on the position's side
            if si[s, SI_SIDE] != 0 or si[s, SI_QSIDE] == d:
                n, closed = _adverse_leg(s, ts, a, b, d, sf, si, qlv, filled, dn, cnt, af, ai,
                                         pf, mp, out_i, out_f, n)
                if closed:
                    return n
        elif d * b > d * a and si[s, SI_SIDE] != 0:
            n, closed = _favourable_leg(s, ts, a, b, d, sf, si, af, ai, pf, out_i, out_f, n)
            if closed:
                return n
    return n


@njit(cache=True)
def run_steps(ev_sym, ev_ts, o, h, l, c, nq_side, nq_lv, nq_tp, tf_ms, equity_every_ms,
              sf, si, qlv, filled, dn, cnt, af, ai, pf, mp, out_i, out_f):
    """Advance one account over ``N`` candles sorted by ``(ts, symbol index)``.

    Parameters
    ----------
    ev_sym, ev_ts : int64 (N,)
        Symbol index and candle open time (ms UTC) of each candle.
    o, h, l, c : float64 (N,)
        OHLC in quote currency.
    nq_side : int64 (N,); nq_lv : float64 (N, L); nq_tp : float64 (N,)
        Quotes decided at the close of each candle (side +1/-1/0, level prices, take
        profit price; NaN = none); they rest during that symbol's next candle.
    tf_ms : int64 (S,)
        Timeframe of each symbol in ms.
    equity_every_ms : int
        An equity snapshot is written at each group close time that is a multiple.
    sf, si, qlv, filled, dn, cnt, af, ai : state arrays of :class:`KernelState` (updated in place).
    pf : float64 (8,)
        Margin per level (quote), leverage, sl_pct, maker fee, taker fee, slippage,
        max margin ratio, session loss limit (fractions).
    mp : float64 (S, 3)
        Amount step (base), min amount (base), min notional (quote) per symbol.
    out_i : int64 (cap, 8); out_f : float64 (cap, 6)
        Event log buffers; ``cap >= N * (2 * L + 4) + 1``.

    Returns
    -------
    int
        Number of rows written to the event log.
    """
    n = 0
    N = ev_ts.shape[0]
    L = qlv.shape[1]
    for e in range(N):
        s = ev_sym[e]
        ts = ev_ts[e]
        was_open = sf[s, SF_AMT] > 0.0
        n = _candle(s, ts, o[e], h[e], l[e], c[e], sf, si, qlv, filled, dn, cnt, af, ai, pf, mp,
                    out_i, out_f, n)
        if was_open and sf[s, SF_AMT] == 0.0:
            for i in range(L):
                dn[s, i] = 0
        sf[s, SF_LAST_CLOSE] = c[e]
        # quotes for this symbol's next candle
        close_ts = ts + tf_ms[s]
        si[s, SI_QSIDE] = nq_side[e]
        si[s, SI_QTS] = close_ts
        sf[s, SF_TP] = nq_tp[e]
        for i in range(L):
            qlv[s, i] = nq_lv[e, i]
        if sf[s, SF_AMT] == 0.0:
            for i in range(L):
                filled[s, i] = 0
        ai[AI_CANDLES] += 1
        ai[AI_LAST_TS] = ts
        if e == N - 1 or ev_ts[e + 1] != ts:
            unreal, notional = _marks(sf, si, -1, 0.0)
            equity = af[AF_CASH] + unreal
            if ai[AI_KILL] == KS_OFF and session_loss_tripped(
                equity, af[AF_SESSION_START], pf[P_SESSION_LOSS]
            ):
                ai[AI_KILL] = KS_SESSION_LOSS
                n = _emit(out_i, out_f, n, ai, K_KILL, close_ts, -1, 0, KS_SESSION_LOSS,
                          close_ts, 0, equity, af[AF_SESSION_START], 0.0, 0.0,
                          equity / af[AF_SESSION_START] - 1.0, -pf[P_SESSION_LOSS])
            if close_ts % equity_every_ms == 0:
                n = _emit(out_i, out_f, n, ai, K_EQUITY, close_ts, -1, 0, 0, close_ts, 0,
                          equity, af[AF_CASH], unreal, notional / pf[P_LEVERAGE], 0.0, 0.0)
    return n
