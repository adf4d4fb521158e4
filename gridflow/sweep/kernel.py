"""The sweep kernel: one symbol's candles x many parameter combinations, in numba.

Each combination is an independent single-symbol account run over candles
``[t0, t1)``, through the **same** functions as the streaming account engine: quotes
from :func:`~gridflow.operators.strategies.quote_kernel.quote_at`, fills, fees, stops,
take profits and the risk gate from :func:`gridflow.operators.grid_kernel._candle`, the
day rollover and kill switches from ``_group_end``, funding from ``_funding``. What
the sweep adds is *skipping*: a candle in which provably nothing can happen (flat and the
nearest level not reached, or in a position with no level, stop, take profit or flip
reached) only does the bookkeeping those functions would have done, without calling them.
The skip tests are conservative (any doubt takes the exact path), so results equal a
replay of the same account to the last bit. The bookkeeping and the tests call the rules
and their bounds where they live: the day rollover, the rolling-drawdown ring and the
kill-switch bound in :mod:`gridflow.operators.risk`, the quotes' reachability in
:mod:`gridflow.operators.strategies.quote_kernel` (through :mod:`gridflow.sweep.skip`).

Metrics are accumulated on the fly (:data:`MET_NAMES`); :mod:`gridflow.sweep.metrics`
turns them into Sharpe, Sortino, Calmar...
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gridflow.operators import kernel_layout as kl
from gridflow.operators.grid_kernel import _candle, _caps, _funding, _group_end, _stop
from gridflow.operators.risk import (
    KS_RESET_ONLY,
    day_rolls,
    kill_switch_may_trip,
    margin_denied_for_sure,
    mark_rolling,
    raise_peak,
    skip_marks,
    start_day,
)
from gridflow.operators.strategies.quote_kernel import Q_LEVELS, Q_TICK, quote_at, rounding_margin
from gridflow.sweep.skip import position_may_change, scan_flat

HOUR_MS = 3_600_000
NO_EQUITY_SNAPSHOTS = 1 << 62

MET_NAMES = ("equity", "max_drawdown", "days", "sum_r", "sum_r2", "sum_down2", "exposed",
             "candles", "trades", "wins", "gross_profit", "gross_loss", "max_consecutive_losses",
             "fees", "funding", "exact_steps", "kill_mask")
(M_EQUITY, M_MAXDD, M_DAYS, M_SUM_R, M_SUM_R2, M_SUM_DOWN2, M_EXPOSED, M_CANDLES, M_TRADES,
 M_WINS, M_GROSS_P, M_GROSS_L, M_MAX_CONSEC, M_FEES, M_FUNDING, M_EXACT, M_KILL) = range(17)
MET_W = 17
TRADE_FIELDS = ("open_ts_ms", "close_ts_ms", "side", "entries", "amount", "avg_entry",
                "exit_price", "pnl", "fees", "funding", "exit_reason")
TR_W = len(TRADE_FIELDS)


# scratch state of the metrics (besides the accumulators of ``met``)
S_PEAK, S_PREV_DAY, S_STREAK, S_DAY_I = range(4)


@njit(cache=True, _nrt=False)
def _close_metrics(eq, exposed, t, t1, day, m, st, daily, k, rec):
    """Account for the equity ``eq`` (quote) at the close of candle ``t``."""
    if exposed:
        m[M_EXPOSED] += 1
    peak = st[S_PEAK]
    if eq > peak:
        st[S_PEAK] = eq
    elif peak - eq > m[M_MAXDD] * peak:  # a deeper drawdown (no division otherwise)
        m[M_MAXDD] = (peak - eq) / peak
    if t == t1 - 1 or day[t + 1] != day[t]:
        _day_end(eq, m, st, daily, k, rec)


@njit(cache=True, _nrt=False)
def _day_end(eq, m, st, daily, k, rec):
    prev = st[S_PREV_DAY]
    if prev == prev:
        r = eq / prev - 1.0
        m[M_DAYS] += 1
        m[M_SUM_R] += r
        m[M_SUM_R2] += r * r
        if r < 0.0:
            m[M_SUM_DOWN2] += r * r
    st[S_PREV_DAY] = eq
    if rec:
        daily[k, int(st[S_DAY_I])] = eq
    st[S_DAY_I] += 1


@njit(cache=True, _nrt=False)
def _flat_stretch(t, te, t1, ts, tf_ms, day, hour_idx, hour_cum, day_cum, eq, si, sf, ai, af,
                  rw_ts, rw_eq, m, st, daily, k, rec):
    """Candles ``[t, te)`` of a flat account in which nothing can fill, all at once:
    cooldown, day rollover, rolling-window marks and metrics, as per-candle processing
    would leave them (equity is constant: the cash)."""
    n = te - t
    cd = si[0, kl.SI_COOLDOWN]
    si[0, kl.SI_COOLDOWN] = cd - n if cd > n else 0
    if day_rolls(day[te - 1], ai):
        start_day(day[te - 1], eq, af, ai)
    keep = skip_marks(hour_cum[te] - hour_cum[t], ai, rw_ts)
    for j in range(hour_cum[te] - keep, hour_cum[te]):
        mark_rolling(ts[hour_idx[j]] + tf_ms, eq, ai, rw_ts, rw_eq)
    if eq > st[S_PEAK]:
        st[S_PEAK] = eq
    elif eq < st[S_PEAK]:
        dd = (st[S_PEAK] - eq) / st[S_PEAK]
        if dd > m[M_MAXDD]:
            m[M_MAXDD] = dd
    ends = day_cum[te] - day_cum[t]
    if te == t1 and not (day_cum[t1] - day_cum[t1 - 1]):
        ends += 1  # the window's last close ends its last day
    for _ in range(min(ends, 1)):
        _day_end(eq, m, st, daily, k, rec)
    if ends > 1:  # later day ends of a constant equity: zero returns
        m[M_DAYS] += ends - 1
        if rec:
            i = int(st[S_DAY_I])
            for j in range(i, i + ends - 1):
                daily[k, j] = eq
        st[S_DAY_I] += ends - 1


@njit(cache=True, _nrt=False)
def _quiet_group_end(eq, pnl_g, cap_g, pnl_s, cap_s, t, close_ts, day, hourly, af, ai, pf,
                     rw_ts, rw_eq):
    """``_group_end`` of a candle with no kill switch on, when no switch can trip:
    returns False (and changes nothing) when one might, so the caller runs the exact
    one. The rolling peak is bounded by the all-time peak (every mark is a group-end
    equity, and the sweep never resets the peak)."""
    day_start = eq if day_rolls(day[t], ai) else af[kl.AF_DAY_START]  # rollover first
    if kill_switch_may_trip(eq, pnl_g, cap_g, pnl_s, cap_s, day_start, af[kl.AF_PEAK], pf):
        return False
    _close_books(eq, t, close_ts, day, hourly, af, ai, rw_ts, rw_eq)
    raise_peak(eq, af)
    return True


@njit(cache=True, _nrt=False)
def _close_books(eq, t, close_ts, day, hourly, af, ai, rw_ts, rw_eq):
    """What ``_group_end`` does at the close of candle ``t`` (at ``close_ts``, ms UTC)
    besides the checks, the peak and the snapshot: the day rollover and the hourly mark
    of equity ``eq`` (quote)."""
    if day_rolls(day[t], ai):
        start_day(day[t], eq, af, ai)
    if hourly[t]:
        mark_rolling(close_ts, eq, ai, rw_ts, rw_eq)


@njit(cache=True, _nrt=False)
def candle_step(s, ts, o, h, l, c, e, ev_corr, sf, si, qlv, filled, dn, cnt, af, ai, pf,
                mp, rw_ts, rw_eq, caps, out_i, out_f, n):
    """The account step's ``_candle`` (inlined here) behind one real call: the sweep runs
    it for few candles, and inlining it into the kernel's loop slows every other one."""
    return _candle(s, ts, o, h, l, c, e, ev_corr, sf, si, qlv, filled, dn, cnt, af, ai, pf,
                   mp, rw_ts, rw_eq, caps, out_i, out_f, n)


@njit(cache=True, _nrt=False)
def _log_trade(row, oi, of):
    """One round trip of the event log (a ``K_TRADE`` row) into ``row`` (TRADE_FIELDS)."""
    row[0] = oi[6]  # open_ts_ms
    row[1] = oi[1]  # close_ts_ms
    row[2] = oi[7]  # side
    row[3] = oi[3]  # entries
    row[4] = of[1]  # amount
    row[5] = of[4]  # avg_entry
    row[6] = of[0]  # exit_price
    row[7] = of[3]  # pnl, net of fees and funding
    row[8] = of[2]  # fees
    row[9] = of[5]  # funding
    row[10] = oi[5]  # exit reason code (kernel_layout EXIT_*)


@njit(cache=True, _nrt=False)
def _entry_refused(raw, tick, pos, amt, t, size, lev, max_mr, cap_g, cap_s, grid, lo, hi, sf,
                   si, af, pf, mp):
    """An open position's nearest unfilled level (unrounded ``raw``) may be reached in
    candle ``t``: True when its entry (and so every deeper one) is certainly refused by
    the margin rule and no kill switch can trip at any fill price of the candle (the
    entry path checks them intrabar), so the candle changes nothing but denial counts.
    (No cooldown runs while a position is open: it blocks the entry that opens one.)"""
    avg = sf[0, kl.SF_AVG]
    m = rounding_margin(raw, tick)
    best_fill = raw + m if pos > 0 else raw - m  # fills are at or beyond the level
    eq_max = af[kl.AF_CASH] + pos * amt * (best_fill - avg)
    used = amt * avg / lev
    if not margin_denied_for_sure(used, size, mp[0, kl.M_STEP], hi[t], lev, max_mr, eq_max):
        return False
    worst = lo[t] if pos > 0 else hi[t]
    u = pos * amt * (worst - avg)
    eq = af[kl.AF_CASH] + u
    pnl = sf[0, kl.SF_SESSION_PNL] + u
    return not kill_switch_may_trip(eq, pnl if grid else 0.0, cap_g, 0.0 if grid else pnl,
                                    cap_s, af[kl.AF_DAY_START], af[kl.AF_PEAK], pf)


@njit(cache=True, nogil=True)
def sweep_kernel(ts, o, h, l, c, fund, day, hourly, hour_idx, hour_cum, day_cum, ind, xrows,
                 qps, sl, size_base, hv_row, vol, t_first, t0, t1, tf_ms, pf, mp0, capital,
                 window_hours, met, daily, trades):
    """Run every combination over candles ``[t0, t1)`` of one symbol.

    Parameters
    ----------
    ts : int64 (T,)
        Candle open times, ms UTC. ``o, h, l, c`` float64 (T,): OHLC, quote currency.
    fund : float64 (T,)
        Funding rate falling at each candle's close (0 on spot).
    day : int64 (T,)
        UTC day number of each candle's close; ``hourly`` uint8 (T,): 1 where the close
        is on a whole hour; ``hour_idx`` int64 (H,) the indices of those candles and
        ``hour_cum`` int64 (T+1,) their running count; ``day_cum`` int64 (T+1,) running
        count of day-ending candles (the next close is on another UTC day, or the last).
    ind : float64 (K, T)
        Distinct indicator series (computed once, shared by the combinations); a row of
        NaN stands for an unused input.
    xrows : int64 (C, 4)
        Rows of ``ind`` giving each combination's ``x0..x3`` (see ``quote_at``).
    qps : float64 (C, Q_W)
        Quote parameters per combination; ``sl`` float64 (C,) stop distance (fraction).
    size_base : float64 (C,)
        Notional per level (quote) before the volatility scaling; ``hv_row`` int64 (C,)
        row of the annualised volatility (or -1), ``vol`` float64 (2,) target volatility
        and maximum scale of ``vol_parity`` sizing.
    t_first, t0, t1 : int
        First candle the equivalent replay reads (its warm-up start), first traded
        candle, end (exclusive). Quotes of candles before ``t0`` are neutral.
    tf_ms : int
        Timeframe (ms). ``pf`` float64 (P_W,) account parameters, ``mp0`` float64 (M_W,)
        market parameters (step, minimums; allocation = capital).
    capital : float
        Initial equity (quote). ``window_hours``: rolling drawdown window.
    met : float64 (C, MET_W)
        Receives the accumulated metrics (:data:`MET_NAMES`).
    daily : float64 (C, D) or (0, D)
        When it has C rows, receives each combination's equity at the last close of
        each UTC day from ``t0`` (D >= number of days; NaN past the end).
    trades : float64 (C, K, TR_W) or (0, K, TR_W)
        When it has C rows, receives each combination's first K round trips
        (:data:`TRADE_FIELDS`); ``met[:, M_TRADES]`` counts them all.
    """
    C = xrows.shape[0]
    L = 1
    for k in range(C):
        L = max(L, int(qps[k, Q_LEVELS]))
    R = window_hours + 1
    sf = np.zeros((1, kl.SF_W))
    si = np.zeros((1, kl.SI_W), np.int64)
    qlv = np.full((1, L), np.nan)
    filled = np.zeros((1, L), np.uint8)
    dn = np.zeros((1, L), np.int64)
    cnt = np.zeros(32, np.int64)
    af = np.zeros(kl.AF_W)
    ai = np.zeros(kl.AI_W, np.int64)
    rw_ts = np.full(R, -1, np.int64)
    rw_eq = np.zeros(R)
    mp = np.zeros((1, kl.M_W))
    ev_corr = np.zeros((1, 1))
    cap = 4 * L + 40
    out_i = np.zeros((cap, kl.OI_W), np.int64)
    out_f = np.zeros((cap, kl.OF_W))
    lvq = np.full(L, np.nan)
    st = np.zeros(4)
    per_hour = max(1, HOUR_MS // tf_ms)
    seed_from = max(t_first, t0 - (R + 1) * per_hour)
    rec = daily.shape[0] == C
    log_trades = trades.shape[0] == C
    lev = pf[kl.P_LEVERAGE]
    max_mr = pf[kl.P_MAX_MR]
    for k in range(C):
        qp = qps[k]
        r0, r1, r2, r3 = xrows[k, 0], xrows[k, 1], xrows[k, 2], xrows[k, 3]
        tick = qp[Q_TICK]
        nlv = int(qp[Q_LEVELS])
        m = met[k]
        m[:] = 0.0
        # ---- a fresh account, as AccountEngine starts one ------------------------
        kl.reset_state(sf, si, qlv, filled, dn, cnt, af, ai, rw_ts, rw_eq, capital)
        mp[0, :] = mp0
        mp[0, kl.M_SL] = sl[k]
        mp[0, kl.M_GRID] = 1.0 if nlv > 1 else 0.0
        mp[0, kl.M_LEVELS] = nlv
        mp[0, kl.M_ALLOC] = capital
        caps = _caps(mp)
        cap_g, cap_s = caps
        grid = nlv > 1
        # notional per level when it does not depend on the fill (NaN: it does)
        size_c = size_base[k] if hv_row[k] < 0 and pf[kl.P_RISK_SIZING] == 0.0 else np.nan
        # warm-up closes the replay also processed (flat): day and rolling-window marks
        for t in range(seed_from, t0):
            _close_books(capital, t, ts[t] + tf_ms, day, hourly, af, ai, rw_ts, rw_eq)
        st[S_PEAK] = capital
        st[S_PREV_DAY] = np.nan
        st[S_STREAK] = 0.0
        st[S_DAY_I] = 0.0
        t = t0
        while t < t1:
            amt = sf[0, kl.SF_AMT]
            pos = si[0, kl.SI_SIDE]
            if amt == 0.0:
                kill = ai[kl.AI_KILL]
                if kill & KS_RESET_ONLY:  # flat behind a switch only a reset clears: frozen
                    _flat_stretch(t, t1, t1, ts, tf_ms, day, hour_idx, hour_cum, day_cum,
                                  af[kl.AF_CASH], si, sf, ai, af, rw_ts, rw_eq, m, st, daily,
                                  k, rec)
                    break
                if kill == 0:
                    te = scan_flat(qp, tick, ind, r0, r1, r2, r3, l, h, t, t1, t0, size_c,
                                   mp0[kl.M_STEP], lev, max_mr, af[kl.AF_CASH],
                                   si[0, kl.SI_COOLDOWN])
                    if te > t:
                        _flat_stretch(t, te, t1, ts, tf_ms, day, hour_idx, hour_cum, day_cum,
                                      af[kl.AF_CASH], si, sf, ai, af, rw_ts, rw_eq, m, st,
                                      daily, k, rec)
                        sf[0, kl.SF_LAST_CLOSE] = c[te - 1]
                        t = te
                        continue
            # ---- candle t: may anything happen? ----------------------------------
            x0 = x1 = x2 = x3 = np.nan
            if t - 1 >= t0:
                x0 = ind[r0, t - 1]
                x1 = ind[r1, t - 1]
                x2 = ind[r2, t - 1]
                x3 = ind[r3, t - 1]
            slow = amt == 0.0  # flat here: scan_flat found a possible touch (or a switch)
            if pos != 0:
                first_open = 0
                while first_open < nlv and filled[0, first_open]:
                    first_open += 1
                maybe, raw, trail = position_may_change(qp, tick, x0, x1, x2, x3, pos,
                                                        first_open, nlv, l[t], h[t])
                sf[0, kl.SF_TRAIL] = trail
                slow = maybe != 0
                if maybe == 2 and ai[kl.AI_KILL] == 0:  # only a level: refused for sure?
                    slow = not _entry_refused(raw, tick, pos, amt, t, size_c, lev, max_mr,
                                              cap_g, cap_s, grid, l, h, sf, si, af, pf, mp)
                if not slow:
                    stop, _ = _stop(0, sf, si, mp)
                    adv = l[t] if pos > 0 else h[t]
                    slow = pos * adv <= pos * stop
            n = 0
            if slow:
                m[M_EXACT] += 1
                q_side, q_tp, q_trail = quote_at(qp, x0, x1, x2, x3, lvq)
                if t - 1 < t0:
                    q_side, q_tp = 0, np.nan
                    for i in range(nlv):
                        lvq[i] = np.nan
                for i in range(nlv):
                    qlv[0, i] = lvq[i]
                si[0, kl.SI_QSIDE] = q_side
                si[0, kl.SI_QTS] = ts[t]
                sf[0, kl.SF_TP] = q_tp
                sf[0, kl.SF_TRAIL] = q_trail
                size = size_base[k]
                if hv_row[k] >= 0:
                    r = vol[0] / ind[hv_row[k], t - 1]
                    if r > vol[1]:
                        r = vol[1]
                    size = size * r
                sf[0, kl.SF_SIZE] = size
                si[0, kl.SI_OPENED_NOW] = 0
                si[0, kl.SI_STOPPED_NOW] = 0
                n = candle_step(0, ts[t], o[t], h[t], l[t], c[t], 0, ev_corr, sf, si, qlv, filled,
                                dn, cnt, af, ai, pf, mp, rw_ts, rw_eq, caps, out_i, out_f, 0)
                if amt > 0.0 and sf[0, kl.SF_AMT] == 0.0:
                    for i in range(L):
                        dn[0, i] = 0
            elif pos != 0:  # what _candle does when nothing triggers: the best price
                after = h[t] if pos > 0 else l[t]
                if pos * after > pos * sf[0, kl.SF_BEST]:
                    sf[0, kl.SF_BEST] = after
            if si[0, kl.SI_COOLDOWN] > 0 and not (slow and si[0, kl.SI_STOPPED_NOW]):
                si[0, kl.SI_COOLDOWN] -= 1
            sf[0, kl.SF_LAST_CLOSE] = c[t]
            close_ts = ts[t] + tf_ms
            amt = sf[0, kl.SF_AMT]
            if fund[t] != 0.0 and amt > 0.0:
                n = _funding(0, close_ts, c[t], fund[t], sf, si, af, ai, out_i, out_f, n)
            u = 0.0
            if amt > 0.0:
                u = si[0, kl.SI_SIDE] * amt * (c[t] - sf[0, kl.SF_AVG])
            else:
                for i in range(L):
                    filled[0, i] = 0
            eq = af[kl.AF_CASH] + u
            quiet = ai[kl.AI_KILL] == 0
            if quiet and (slow or amt > 0.0):
                pnl = sf[0, kl.SF_SESSION_PNL] + u
                quiet = _quiet_group_end(eq, pnl if grid else 0.0, cap_g,
                                         0.0 if grid else pnl, cap_s, t, close_ts, day,
                                         hourly, af, ai, pf, rw_ts, rw_eq)
            elif quiet:  # flat, equity unchanged since the last full check
                _close_books(eq, t, close_ts, day, hourly, af, ai, rw_ts, rw_eq)
            if not quiet:
                n = _group_end(close_ts, tf_ms, NO_EQUITY_SNAPSHOTS, sf, si, af, ai, pf, mp,
                               rw_ts, rw_eq, caps, out_i, out_f, n)
            for j in range(n):
                if out_i[j, 0] == kl.K_TRADE:
                    net = out_f[j, 3]
                    if log_trades and m[M_TRADES] < trades.shape[1]:
                        _log_trade(trades[k, int(m[M_TRADES])], out_i[j], out_f[j])
                    m[M_TRADES] += 1
                    if net > 0.0:
                        m[M_WINS] += 1
                        m[M_GROSS_P] += net
                        st[S_STREAK] = 0.0
                    elif net < 0.0:
                        m[M_GROSS_L] -= net
                        st[S_STREAK] += 1.0
                        if st[S_STREAK] > m[M_MAX_CONSEC]:
                            m[M_MAX_CONSEC] = st[S_STREAK]
            _close_metrics(eq, amt > 0.0, t, t1, day, m, st, daily, k, rec)
            t += 1
        m[M_EQUITY] = af[kl.AF_CASH] + (
            si[0, kl.SI_SIDE] * sf[0, kl.SF_AMT] * (sf[0, kl.SF_LAST_CLOSE] - sf[0, kl.SF_AVG])
            if sf[0, kl.SF_AMT] > 0.0 else 0.0)
        m[M_CANDLES] = t1 - t0
        m[M_FEES] = af[kl.AF_FEES]
        m[M_FUNDING] = af[kl.AF_FUNDING]
        m[M_KILL] = ai[kl.AI_KILL]
