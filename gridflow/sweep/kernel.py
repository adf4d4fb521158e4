"""The sweep kernel: one symbol's candles x many parameter combinations, in numba.

Each combination is an independent single-symbol account run over candles
``[t0, t1)``, through the **same** functions as the streaming account engine: quotes
from :func:`~gridflow.operators.strategies.quote_kernel.quote_at`, fills, fees, stops,
take profits and the risk gate from :func:`gridflow.operators.grid_kernel._candle`, the
day rollover and kill switches from ``_group_end``, the bookkeeping at each close
(cooldown, last mark, funding, re-arming) from ``close_candle``. What the sweep adds is
*skipping*: a candle in which provably nothing can happen (flat and the
nearest level not reached, or in a position with no level, stop, take profit or flip
reached) only does the bookkeeping those functions would have done, without calling them.
The skip tests are conservative (any doubt takes the exact path), so results equal a
replay of the same account to the last bit. The bookkeeping and the tests call the rules
and their bounds where they live: the day rollover, the rolling-drawdown ring and the
kill-switch bound in :mod:`gridflow.operators.risk`, the quotes' reachability in
:mod:`gridflow.operators.strategies.quote_kernel` (through :mod:`gridflow.sweep.skip`).

Metrics are accumulated on the fly (:data:`MET_NAMES`, columns ``MET_*``);
:mod:`gridflow.sweep.metrics` turns them into Sharpe, Sortino, Calmar...

The kernel takes a few records: the candles (:class:`~gridflow.operators.kernel_layout.Candles`),
their :class:`Calendar`, the :class:`Combos`, the :class:`Window` and the account's
:class:`~gridflow.operators.kernel_layout.Params`, and writes into :class:`SweepOut`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from gridflow.operators import kernel_layout as kl
from gridflow.operators.candle_close import close_candle, raise_best, rest_quote
from gridflow.operators.entry_gate import vol_parity_scale_nb
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
    time_stop_due,
)
from gridflow.operators.strategies.quote_kernel import Q_LEVELS, Q_TICK, quote_at, rounding_margin
from gridflow.operators.strategies.stops import stop_distance
from gridflow.sweep.skip import position_may_change, scan_flat
from gridflow.timeframes import HOUR_MS

NO_EQUITY_SNAPSHOTS = 1 << 62

MET_NAMES = ("equity", "max_drawdown", "days", "sum_r", "sum_r2", "sum_down2", "exposed",
             "candles", "trades", "wins", "gross_profit", "gross_loss", "max_consecutive_losses",
             "fees", "funding", "exact_steps", "kill_mask")
(MET_EQUITY, MET_MAXDD, MET_DAYS, MET_SUM_R, MET_SUM_R2, MET_SUM_DOWN2, MET_EXPOSED,
 MET_CANDLES, MET_TRADES, MET_WINS, MET_GROSS_P, MET_GROSS_L, MET_MAX_CONSEC, MET_FEES,
 MET_FUNDING, MET_EXACT, MET_KILL) = range(17)
MET_W = 17
TRADE_FIELDS = ("open_ts_ms", "close_ts_ms", "side", "entries", "amount", "avg_entry",
                "exit_price", "pnl", "fees", "funding", "exit_reason")
TR_W = len(TRADE_FIELDS)


# scratch state of the metrics (besides the accumulators of ``met``)
S_PEAK, S_PREV_DAY, S_STREAK, S_DAY_I = range(4)


class Calendar(NamedTuple):
    """Where each of the ``T`` candles closes (:class:`~gridflow.sweep.data.SweepData`)."""

    day: np.ndarray  #: int64 (T,): UTC day number of the close
    hourly: np.ndarray  #: uint8 (T,): 1 where the close is on a whole hour
    hour_idx: np.ndarray  #: int64 (H,): indices of those candles
    hour_cum: np.ndarray  #: int64 (T+1,): running count of those candles
    #: int64 (T+1,): running count of day-ending candles (the next close is on another
    #: UTC day, or the last)
    day_cum: np.ndarray


class Combos(NamedTuple):
    """The ``C`` parameter combinations and the indicator series they read."""

    #: float64 (K, T): distinct indicator series (computed once, shared); a row of NaN
    #: stands for an unused input
    ind: np.ndarray
    #: int64 (C, 5): rows of ``ind`` giving ``x0..x3`` and the filters' gate ``g``
    #: (``quote_at``)
    xrows: np.ndarray
    qps: np.ndarray  #: float64 (C, Q_W): quote parameters
    sl: np.ndarray  #: float64 (C,): stop distance (fraction)
    size_base: np.ndarray  #: float64 (C,): notional per level before volatility scaling
    hv_row: np.ndarray  #: int64 (C,): row of the annualised volatility, or -1
    vol: np.ndarray  #: float64 (2,): target volatility and maximum scale (vol_parity)
    time_stop: np.ndarray  #: float64 (C,): time stop in candles (0 = off)
    sl_atr: np.ndarray  #: float64 (C,): k of the k x ATR stop (0 = off)
    atr_row: np.ndarray  #: int64 (C,): row of ``ind`` with that stop's ATR


class Window(NamedTuple):
    """The candles a sweep runs over and its accounts' starting point."""

    t_first: int  #: first candle the equivalent replay reads (its warm-up start)
    t0: int  #: first traded candle (quotes of earlier candles are neutral)
    t1: int  #: end (exclusive)
    capital: float  #: initial equity of each combination's account (quote)
    window_hours: int  #: rolling drawdown window (hours)


class SweepOut(NamedTuple):
    """What the sweep kernel writes."""

    met: np.ndarray  #: float64 (C, MET_W): accumulated metrics (MET_NAMES)
    #: float64 (C, D) or (0, D): with C rows, each combination's equity at the last
    #: close of each UTC day from ``t0`` (D >= number of days; NaN past the end)
    daily: np.ndarray
    #: float64 (C, K, TR_W) or (0, K, TR_W): with C rows, each combination's first K
    #: round trips (TRADE_FIELDS); ``met[:, MET_TRADES]`` counts them all
    trades: np.ndarray


class Acc(NamedTuple):
    """One combination's metric accumulators (inside the kernel)."""

    met: np.ndarray  #: float64 (MET_W,): its row of ``SweepOut.met``
    scratch: np.ndarray  #: float64 (4,): S_PEAK, S_PREV_DAY, S_STREAK, S_DAY_I
    daily: np.ndarray  #: float64 (D,): its row of ``SweepOut.daily``, or (0,): not kept


@njit(cache=True, _nrt=False, inline="always")
def drawdown_step(eq, peak, max_dd):
    """One step of :func:`gridflow.metrics.max_drawdown` (``max_t 1 - E_t / max_{s<=t}
    E_s``) over an equity curve fed one value at a time.

    Parameters
    ----------
    eq : float
        The next equity (quote).
    peak, max_dd : float
        Running peak (quote) and largest drawdown so far (positive fraction of the peak)
        before ``eq``; start from the first equity and 0.0.

    Returns
    -------
    (peak, max_dd) : (float, float)
        After ``eq``. The fall is measured as ``(peak - eq) / peak`` (``1 - eq / peak``
        up to rounding), divided only when it is deeper than ``max_dd``.
    """
    if eq > peak:
        return eq, max_dd
    if peak - eq > max_dd * peak:
        return peak, (peak - eq) / peak
    return peak, max_dd


@njit(cache=True, _nrt=False)
def _close_metrics(eq, exposed, t, t1, day, acc):
    """Account for the equity ``eq`` (quote) at the close of candle ``t``."""
    m, sc = acc.met, acc.scratch
    if exposed:
        m[MET_EXPOSED] += 1
    sc[S_PEAK], m[MET_MAXDD] = drawdown_step(eq, sc[S_PEAK], m[MET_MAXDD])
    if t == t1 - 1 or day[t + 1] != day[t]:
        _day_end(eq, acc)


@njit(cache=True, _nrt=False)
def _day_end(eq, acc):
    m, sc = acc.met, acc.scratch
    prev = sc[S_PREV_DAY]
    if prev == prev:
        r = eq / prev - 1.0
        m[MET_DAYS] += 1
        m[MET_SUM_R] += r
        m[MET_SUM_R2] += r * r
        if r < 0.0:
            m[MET_SUM_DOWN2] += r * r
    sc[S_PREV_DAY] = eq
    if acc.daily.shape[0]:
        acc.daily[int(sc[S_DAY_I])] = eq
    sc[S_DAY_I] += 1


@njit(cache=True, _nrt=False)
def _flat_stretch(t, te, t1, eq, ts, tf_ms, cal, st, acc):
    """Candles ``[t, te)`` of a flat account in which nothing can fill, all at once:
    cooldown, day rollover, rolling-window marks and metrics, as per-candle processing
    would leave them (equity is constant: ``eq``, the cash)."""
    si, ai = st.si, st.ai
    n = te - t
    cd = si[0, kl.SI_COOLDOWN]
    si[0, kl.SI_COOLDOWN] = cd - n if cd > n else 0
    if day_rolls(cal.day[te - 1], ai):
        start_day(cal.day[te - 1], eq, st.af, ai)
    hour_cum = cal.hour_cum
    keep = skip_marks(hour_cum[te] - hour_cum[t], ai, st.rw_ts)
    for j in range(hour_cum[te] - keep, hour_cum[te]):
        mark_rolling(ts[cal.hour_idx[j]] + tf_ms, eq, ai, st.rw_ts, st.rw_eq)
    m, sc = acc.met, acc.scratch
    sc[S_PEAK], m[MET_MAXDD] = drawdown_step(eq, sc[S_PEAK], m[MET_MAXDD])  # eq is constant
    day_cum = cal.day_cum
    ends = day_cum[te] - day_cum[t]
    if te == t1 and not (day_cum[t1] - day_cum[t1 - 1]):
        ends += 1  # the window's last close ends its last day
    for _ in range(min(ends, 1)):
        _day_end(eq, acc)
    if ends > 1:  # later day ends of a constant equity: zero returns
        m[MET_DAYS] += ends - 1
        if acc.daily.shape[0]:
            i = int(sc[S_DAY_I])
            for j in range(i, i + ends - 1):
                acc.daily[j] = eq
        sc[S_DAY_I] += ends - 1


@njit(cache=True, _nrt=False)
def _quiet_group_end(eq, pnl_g, pnl_s, caps, t, close_ts, day, hourly, af, ai, rw_ts, rw_eq,
                     pf):
    """``_group_end`` of a candle with no kill switch on, when no switch can trip:
    returns False (and changes nothing) when one might, so the caller runs the exact
    one. The rolling peak is bounded by the all-time peak (every mark is a group-end
    equity, and the sweep never resets the peak). Takes the arrays it reads, not their
    records: it runs at every close in a position, and a call passing whole records
    costs the sweep a few percent (as for ``_group_end``)."""
    day_start = eq if day_rolls(day[t], ai) else af[kl.AF_DAY_START]  # rollover first
    if kill_switch_may_trip(eq, pnl_g, caps[0], pnl_s, caps[1], day_start, af[kl.AF_PEAK],
                            pf):
        return False
    _close_books(eq, t, close_ts, day, hourly, af, ai, rw_ts, rw_eq)
    raise_peak(eq, af)
    return True


@njit(cache=True, _nrt=False)
def _close_books(eq, t, close_ts, day, hourly, af, ai, rw_ts, rw_eq):
    """What ``_group_end`` does at the close of candle ``t`` (at ``close_ts``, ms UTC)
    besides the checks, the peak and the snapshot: the day rollover and the hourly mark
    of equity ``eq`` (quote). Takes arrays, as :func:`_quiet_group_end`."""
    if day_rolls(day[t], ai):
        start_day(day[t], eq, af, ai)
    if hourly[t]:
        mark_rolling(close_ts, eq, ai, rw_ts, rw_eq)


@njit(cache=True, _nrt=False)
def candle_step(s, ts, o, h, l, c, corr, st, prm, caps, log, n):
    """The account step's ``_candle`` (inlined here) behind one real call: the sweep runs
    it for few candles, and inlining it into the kernel's loop slows every other one."""
    return _candle(s, ts, o, h, l, c, corr, st, prm, caps, log, n)


@njit(cache=True, _nrt=False)
def _log_trade(row, ei, ef):
    """One round trip of the event log (a ``K_TRADE`` row ``ei, ef``) into ``row``
    (TRADE_FIELDS)."""
    row[0] = ei[kl.I_OPEN_TS]  # open_ts_ms
    row[1] = ei[kl.I_TS]  # close_ts_ms
    row[2] = ei[kl.I_POS_SIDE]  # side
    row[3] = ei[kl.I_ENTRIES]  # entries
    row[4] = ef[kl.F_AMOUNT]  # amount
    row[5] = ef[kl.F_AVG_ENTRY]  # avg_entry
    row[6] = ef[kl.F_EXIT_PRICE]  # exit_price
    row[7] = ef[kl.F_NET_PNL]  # pnl, net of fees and funding
    row[8] = ef[kl.F_FEES]  # fees
    row[9] = ef[kl.F_FUNDING]  # funding
    row[10] = ei[kl.I_REASON]  # exit reason code (kernel_layout EXIT_*)


@njit(cache=True, _nrt=False)
def _entry_refused(raw, tick, pos, amt, lo, hi, size, grid, caps, sf, af, pf, mp):
    """An open position's nearest unfilled level (unrounded ``raw``) may be reached in a
    candle spanning ``[lo, hi]``: True when its entry (and so every deeper one) is
    certainly refused by the margin rule and no kill switch can trip at any fill price of
    the candle (the entry path checks them intrabar), so the candle changes nothing but
    denial counts. (No cooldown runs while a position is open: it blocks the entry that
    opens one.) Takes arrays, as :func:`_quiet_group_end`."""
    lev = pf[kl.P_LEVERAGE]
    avg = sf[0, kl.SF_AVG]
    m = rounding_margin(raw, tick)
    best_fill = raw + m if pos > 0 else raw - m  # fills are at or beyond the level
    eq_max = af[kl.AF_CASH] + pos * amt * (best_fill - avg)
    used = amt * avg / lev
    if not margin_denied_for_sure(used, size, mp[0, kl.M_STEP], hi, lev,
                                  pf[kl.P_MAX_MR], eq_max):
        return False
    worst = lo if pos > 0 else hi
    u = pos * amt * (worst - avg)
    eq = af[kl.AF_CASH] + u
    pnl = sf[0, kl.SF_SESSION_PNL] + u
    return not kill_switch_may_trip(eq, pnl if grid else 0.0, caps[0], 0.0 if grid else pnl,
                                    caps[1], af[kl.AF_DAY_START], af[kl.AF_PEAK], pf)


@njit(cache=True, nogil=True)
def sweep_kernel(candles, cal, combos, win, prm, out):
    """Run every combination over candles ``[t0, t1)`` of one symbol.

    Parameters
    ----------
    candles : :class:`~gridflow.operators.kernel_layout.Candles` (T rows, ``sym`` all 0)
        Open times (ms UTC), OHLC (quote) and the funding rate falling at each candle's
        close (0 on spot).
    cal : Calendar
        UTC days and whole hours of the closes.
    combos : Combos
        Quote, stop and sizing parameters of the C combinations and their indicators.
    win : Window
        ``t_first, t0, t1``, initial capital (quote), rolling drawdown window (hours).
    prm : :class:`~gridflow.operators.kernel_layout.Params`
        ``account`` float64 (P_W,); ``market`` float64 (1, M_W) the symbol's step and
        minimums (the kernel sets stop, grid flag, levels and allocation = capital per
        combination); ``tf_ms`` int64 (1,) the timeframe; ``equity_every_ms`` unused.
    out : SweepOut
        Receives the metrics, and the daily equity and round trips when they have C rows.
    """
    ts, o, h, l, c, fund = (candles.ts, candles.open, candles.high, candles.low,
                            candles.close, candles.funding)
    day, hourly = cal.day, cal.hourly
    ind, xrows, qps, size_base, hv_row, vol = (combos.ind, combos.xrows, combos.qps,
                                               combos.size_base, combos.hv_row, combos.vol)
    t0, t1, capital = win.t0, win.t1, win.capital
    met, daily, trades = out.met, out.daily, out.trades
    pf = prm.account
    tf_ms = prm.tf_ms[0]
    C = xrows.shape[0]
    L = 1
    for k in range(C):
        L = max(L, int(qps[k, Q_LEVELS]))
    R = win.window_hours + 1
    st = kl.StateArrays(np.zeros((1, kl.SF_W)), np.zeros((1, kl.SI_W), np.int64),
                        np.full((1, L), np.nan), np.zeros((1, L), np.uint8),
                        np.zeros((1, L), np.int64), np.zeros(32, np.int64), np.zeros(kl.AF_W),
                        np.zeros(kl.AI_W, np.int64), np.full(R, -1, np.int64), np.zeros(R))
    sf, si, filled, af, ai = st.sf, st.si, st.filled, st.af, st.ai
    rw_ts, rw_eq = st.rw_ts, st.rw_eq
    mp = np.zeros((1, kl.M_W))
    mp0 = prm.market[0]
    kprm = kl.Params(pf, mp, prm.tf_ms, NO_EQUITY_SNAPSHOTS)
    corr = np.zeros(1)
    cap = 4 * L + 40
    log = kl.EventLog(np.zeros((cap, kl.OI_W), np.int64), np.zeros((cap, kl.OF_W)))
    out_i, out_f = log.ints, log.floats
    lvq = np.full(L, np.nan)
    sc = np.zeros(4)
    no_daily = np.zeros(0)
    per_hour = max(1, HOUR_MS // tf_ms)
    seed_from = max(win.t_first, t0 - (R + 1) * per_hour)
    rec = daily.shape[0] == C
    log_trades = trades.shape[0] == C
    lev = pf[kl.P_LEVERAGE]
    max_mr = pf[kl.P_MAX_MR]
    for k in range(C):
        qp = qps[k]
        r0, r1, r2, r3, r4 = xrows[k, 0], xrows[k, 1], xrows[k, 2], xrows[k, 3], xrows[k, 4]
        tick = qp[Q_TICK]
        nlv = int(qp[Q_LEVELS])
        m = met[k]
        m[:] = 0.0
        acc = Acc(m, sc, daily[k] if rec else no_daily)
        # ---- a fresh account, as AccountEngine starts one ------------------------
        kl.reset_state(st, capital)
        mp[0, :] = mp0
        mp[0, kl.M_SL] = combos.sl[k]
        mp[0, kl.M_GRID] = 1.0 if nlv > 1 else 0.0
        mp[0, kl.M_LEVELS] = nlv
        mp[0, kl.M_ALLOC] = capital
        mp[0, kl.M_TIME_STOP] = combos.time_stop[k]
        caps = _caps(mp)
        grid = nlv > 1
        # notional per level when it does not depend on the fill (NaN: it does)
        size_c = size_base[k] if hv_row[k] < 0 and pf[kl.P_RISK_SIZING] == 0.0 else np.nan
        # warm-up closes the replay also processed (flat): day and rolling-window marks
        for t in range(seed_from, t0):
            _close_books(capital, t, ts[t] + tf_ms, day, hourly, af, ai, rw_ts, rw_eq)
        sc[S_PEAK] = capital
        sc[S_PREV_DAY] = np.nan
        sc[S_STREAK] = 0.0
        sc[S_DAY_I] = 0.0
        t = t0
        while t < t1:
            amt = sf[0, kl.SF_AMT]
            pos = si[0, kl.SI_SIDE]
            if amt == 0.0:
                kill = ai[kl.AI_KILL]
                if kill & KS_RESET_ONLY:  # flat behind a switch only a reset clears: frozen
                    _flat_stretch(t, t1, t1, af[kl.AF_CASH], ts, tf_ms, cal, st, acc)
                    break
                if kill == 0:
                    te = scan_flat(qp, tick, ind, r0, r1, r2, r3, r4, l, h, t, t1, t0, size_c,
                                   mp0[kl.M_STEP], lev, max_mr, af[kl.AF_CASH],
                                   si[0, kl.SI_COOLDOWN])
                    if te > t:
                        _flat_stretch(t, te, t1, af[kl.AF_CASH], ts, tf_ms, cal, st, acc)
                        sf[0, kl.SF_LAST_CLOSE] = c[te - 1]
                        t = te
                        continue
            # ---- candle t: may anything happen? ----------------------------------
            x0 = x1 = x2 = x3 = g = np.nan
            if t - 1 >= t0:
                x0 = ind[r0, t - 1]
                x1 = ind[r1, t - 1]
                x2 = ind[r2, t - 1]
                x3 = ind[r3, t - 1]
                g = ind[r4, t - 1]
            slow = amt == 0.0  # flat here: scan_flat found a possible touch (or a switch)
            if pos != 0:
                first_open = 0
                while first_open < nlv and filled[0, first_open]:
                    first_open += 1
                maybe, raw, trail = position_may_change(qp, tick, x0, x1, x2, x3, g, pos,
                                                        first_open, nlv, l[t], h[t])
                sf[0, kl.SF_TRAIL] = trail
                slow = maybe != 0
                if maybe == 2 and ai[kl.AI_KILL] == 0:  # only a level: refused for sure?
                    slow = not _entry_refused(raw, tick, pos, amt, l[t], h[t], size_c, grid,
                                              caps, sf, af, pf, mp)
                if not slow:  # the time stop closes at this open
                    slow = time_stop_due(ts[t], si[0, kl.SI_OPEN_TS], tf_ms, mp[0, kl.M_TIME_STOP])
                if not slow:
                    stop, _ = _stop(0, sf, si, mp)
                    adv = l[t] if pos > 0 else h[t]
                    slow = pos * adv <= pos * stop
            n = 0
            si[0, kl.SI_OPENED_NOW] = 0
            si[0, kl.SI_STOPPED_NOW] = 0
            if slow:
                m[MET_EXACT] += 1
                q_side, q_tp, q_trail, q_exit = quote_at(qp, x0, x1, x2, x3, g, lvq)
                if t - 1 < t0:
                    q_side, q_tp, q_exit = 0, np.nan, False
                    for i in range(nlv):
                        lvq[i] = np.nan
                size = size_base[k]
                if hv_row[k] >= 0:
                    size = size * vol_parity_scale_nb(vol[0], ind[hv_row[k], t - 1], vol[1])
                stop_d = np.nan
                if t - 1 >= t0:
                    stop_d = stop_distance(combos.sl_atr[k], ind[combos.atr_row[k], t - 1])
                rest_quote(0, ts[t], q_side, lvq[:nlv], q_tp, q_trail, size, stop_d,
                           1 if q_exit else 0, st)
                n = candle_step(0, ts[t], o[t], h[t], l[t], c[t], corr, st, kprm, caps, log, 0)
            elif pos != 0:  # what _candle does when nothing triggers: the best price
                raise_best(0, o[t], h[t], l[t], c[t], sf, si)
            close_ts = ts[t] + tf_ms
            if close_candle(0, c[t], fund[t], amt > 0.0, sf, si, filled, st.dn):
                n = _funding(0, close_ts, c[t], fund[t], st, log, n)
            amt = sf[0, kl.SF_AMT]
            u = 0.0
            if amt > 0.0:
                u = si[0, kl.SI_SIDE] * amt * (c[t] - sf[0, kl.SF_AVG])
            eq = af[kl.AF_CASH] + u
            quiet = ai[kl.AI_KILL] == 0
            if quiet and (slow or amt > 0.0):
                pnl = sf[0, kl.SF_SESSION_PNL] + u
                quiet = _quiet_group_end(eq, pnl if grid else 0.0, 0.0 if grid else pnl,
                                         caps, t, close_ts, day, hourly, af, ai, rw_ts, rw_eq,
                                         pf)
            elif quiet:  # flat, equity unchanged since the last full check
                _close_books(eq, t, close_ts, day, hourly, af, ai, rw_ts, rw_eq)
            if not quiet:
                n = _group_end(close_ts, NO_EQUITY_SNAPSHOTS, sf, si, af, ai, pf, mp,
                               rw_ts, rw_eq, caps, out_i, out_f, n)
            for j in range(n):
                if out_i[j, kl.I_KIND] == kl.K_TRADE:
                    net = out_f[j, kl.F_NET_PNL]
                    if log_trades and m[MET_TRADES] < trades.shape[1]:
                        _log_trade(trades[k, int(m[MET_TRADES])], out_i[j], out_f[j])
                    m[MET_TRADES] += 1
                    if net > 0.0:
                        m[MET_WINS] += 1
                        m[MET_GROSS_P] += net
                        sc[S_STREAK] = 0.0
                    elif net < 0.0:
                        m[MET_GROSS_L] -= net
                        sc[S_STREAK] += 1.0
                        if sc[S_STREAK] > m[MET_MAX_CONSEC]:
                            m[MET_MAX_CONSEC] = sc[S_STREAK]
            _close_metrics(eq, amt > 0.0, t, t1, day, acc)
            t += 1
        m[MET_EQUITY] = af[kl.AF_CASH] + (
            si[0, kl.SI_SIDE] * sf[0, kl.SF_AMT] * (sf[0, kl.SF_LAST_CLOSE] - sf[0, kl.SF_AVG])
            if sf[0, kl.SF_AMT] > 0.0 else 0.0)
        m[MET_CANDLES] = t1 - t0
        m[MET_FEES] = af[kl.AF_FEES]
        m[MET_FUNDING] = af[kl.AF_FUNDING]
        m[MET_KILL] = ai[kl.AI_KILL]
