"""The account step kernel: paper matching, fees, PnL and risk for grid strategies.

One numba function, :func:`run_steps`, advances one account over a sequence of closed
candles (many symbols, sorted by ``(ts, symbol index)``). The streaming account engine
calls it for whatever candles are ready; a sweep can call it for a whole history. State
is a handful of numpy arrays (:class:`~gridflow.operators.kernel_layout.KernelState`), so
it pickles for Bytewax snapshots and results do not depend on how candles were chunked.

Timing (no look-ahead)
----------------------
Quotes (side, level prices, take profit, trailing distance, size) decided at the close
of candle ``t`` rest during candle ``t+1`` of the same symbol. Fills are stamped with the
open time of the candle in which they happen; equity snapshots with close times.

Intrabar rule (the same in replay and sweep)
---------------------------------------------
A flip (quotes on the other side of an open position) closes it at the candle's open
(market: taker fee and slippage), and so do the strategy's exit signal (the funding
grid's normalised funding) and a due time stop (the strategy's
``time_stop_candles``: :func:`~gridflow.operators.risk.time_stop_due`). Orders the
market already gapped through at the open
were marketable when placed at the previous close: they fill at the open as taker, the
take profit first, then the gapped levels in price order, the stop checked before each
level that lies beyond it and once more after them (recomputed from the average entry
after every fill; README, *Fill model*, rule 9). Price then travels ``open -> low -> high -> close``
when ``close >= open`` and ``open -> high -> low -> close`` otherwise. Along each leg,
orders trigger in the order the price reaches them:

* entries (limit, maker fee) fill at their level price;
* the stop (stop-market, taker fee plus slippage) sits at the tightest of ``avg_entry *
  (1 - sl_frac)``, the k x ATR initial stop ``avg_entry - k * ATR`` (ATR of the close
  that quoted the opening level, fixed for the cycle; ``sl_atr``) and ``best - trail``
  for a long (mirrored for a short), where ``best`` is the best price since entry up to
  the previous close; when a level and the stop are
  at the same price the stop goes first (conservative);
* the take profit (limit, maker fee) fills on a favourable leg.

After a position closes it re-arms at the next candle, never within the same one.

Funding (perpetuals): at each settlement inside a candle, a position still open at the
candle's close pays ``side * amount * close * rate`` (receives it when negative); the
round trip's net PnL counts the funding of its cycle.
"""

from __future__ import annotations

from numba import njit

from gridflow.operators.candle_close import close_candle, raise_best, rest_quote
from gridflow.operators.entry_gate import (
    deny_level,
    gate_level,
    level_amount,
    max_abs_corr,
)
from gridflow.operators.kernel_layout import (
    AF_CASH,
    AF_DAY_START,
    AI_CANDLES,
    AI_LAST_TS,
    EXIT_FLATTEN,
    EXIT_FLIP,
    EXIT_SIGNAL,
    EXIT_SL,
    EXIT_TIME,
    EXIT_TP,
    EXIT_TRAIL,
    F_AMOUNT,
    F_AVG_ENTRY,
    F_CASH,
    F_DAY_START,
    F_EQUITY,
    F_EXIT_PRICE,
    F_FEE,
    F_FEES,
    F_FUNDING,
    F_MARK_PRICE,
    F_NET_PNL,
    F_ORDER_PRICE,
    F_PAYMENT,
    F_PNL,
    F_PRICE,
    F_RATE,
    F_UNREALIZED,
    F_USED_MARGIN,
    I_DECISION_TS,
    I_ENTRIES,
    I_LEVEL,
    I_OPEN_TS,
    I_POS_SIDE,
    I_REASON,
    I_SIDE,
    I_TAG,
    I_TAKER,
    K_ENTRY,
    K_EQUITY,
    K_EXIT,
    K_FUNDING,
    K_KILL_RESET,
    K_TRADE,
    M_ALLOC,
    M_GRID,
    M_SL,
    M_TIME_STOP,
    P_LEVERAGE,
    P_MAKER,
    P_SLIP,
    P_TAKER,
    SF_AMT,
    SF_AVG,
    SF_BEST,
    SF_CYCLE_FEES,
    SF_CYCLE_FUNDING,
    SF_LAST_CLOSE,
    SF_SESSION_PNL,
    SF_STOP_DIST,
    SF_TP,
    SF_TRAIL,
    SI_ENTRIES,
    SI_EXIT,
    SI_FLATTEN,
    SI_OPEN_TS,
    SI_OPENED_NOW,
    SI_QSIDE,
    SI_QTS,
    SI_SIDE,
    SI_STOPPED_NOW,
    TAG_FLATTEN,
    TAG_FLIP,
    TAG_EXIT,
    TAG_SL,
    TAG_TIME,
    TAG_TP,
    EventLog,
    emit_event,
)
from gridflow.operators.position import book_entry, book_exit, book_funding, end_cycle
from gridflow.operators.risk import (
    KS_DAILY,
    check_kill_switches,
    day_rolls,
    is_hour_mark,
    mark_rolling,
    raise_peak,
    start_day,
    time_stop_due,
    utc_day,
)


@njit(cache=True, _nrt=False, inline="always")
def _marks(sf, si, mp, sym, price):
    """Unrealized PnL, entry notional, session PnL of grid / single symbols, open count;
    symbol ``sym`` marked at ``price``, the others at their last close."""
    unreal = 0.0
    notional = 0.0
    pnl_grid = 0.0
    pnl_single = 0.0
    n_open = 0
    for s in range(sf.shape[0]):
        u = 0.0
        amt = sf[s, SF_AMT]
        if amt > 0.0:
            mark = price if s == sym else sf[s, SF_LAST_CLOSE]
            u = si[s, SI_SIDE] * amt * (mark - sf[s, SF_AVG])
            notional += amt * sf[s, SF_AVG]
            n_open += 1
        unreal += u
        if mp[s, M_GRID] > 0.0:
            pnl_grid += sf[s, SF_SESSION_PNL] + u
        else:
            pnl_single += sf[s, SF_SESSION_PNL] + u
    return unreal, notional, pnl_grid, pnl_single, n_open


@njit(cache=True, _nrt=False)
def _caps(mp):
    cap_grid = 0.0
    cap_single = 0.0
    for s in range(mp.shape[0]):
        if mp[s, M_GRID] > 0.0:
            cap_grid += mp[s, M_ALLOC]
        else:
            cap_single += mp[s, M_ALLOC]
    return cap_grid, cap_single


@njit(cache=True, _nrt=False, inline="always")
def _stop(s, sf, si, mp):
    """Stop price of the open position of ``s`` and whether the trailing leg sets it:
    the tightest of ``avg * (1 - d * sl_frac)``, the k x ATR initial stop ``avg - d *
    dist`` (when the cycle has one) and the trailing level ``best - d * trail``."""
    d = si[s, SI_SIDE]
    stop = sf[s, SF_AVG] * (1.0 - d * mp[s, M_SL])
    dist = sf[s, SF_STOP_DIST]
    if dist > 0.0:
        atr_stop = sf[s, SF_AVG] - d * dist
        if d * atr_stop > d * stop:
            stop = atr_stop
    trail = sf[s, SF_TRAIL]
    if trail > 0.0 and sf[s, SF_BEST] > 0.0:
        ts_ = sf[s, SF_BEST] - d * trail
        if d * ts_ > d * stop:
            return ts_, True
    return stop, False


@njit(cache=True, _nrt=False, inline="always")
def _close(s, ts, px, taker, slip, tag, reason, st, prm, log, n):
    """Close the whole position of ``s`` at ``px`` (before slippage) as a maker (``taker``
    0) or taker (1) fill; log the exit and the round trip."""
    sf, si = st.sf, st.si
    pf = prm.account
    fee_rate = pf[P_TAKER] if taker else pf[P_MAKER]
    d = si[s, SI_SIDE]
    amt = sf[s, SF_AMT]
    fill = px * (1.0 - d * slip)
    fee = amt * fill * fee_rate
    pnl = book_exit(s, amt, fill, fee, 0.0, sf, si, st.af)
    avg = sf[s, SF_AVG]
    n = emit_event(log, n, st.ai, K_EXIT, ts, s)
    ei, ef = log.ints[n - 1], log.floats[n - 1]
    ei[I_TAG] = tag
    ei[I_REASON] = reason
    ei[I_DECISION_TS] = si[s, SI_QTS]
    ei[I_SIDE] = -d
    ei[I_TAKER] = taker
    ef[F_PRICE] = fill
    ef[F_AMOUNT] = amt
    ef[F_FEE] = fee
    ef[F_PNL] = pnl
    ef[F_AVG_ENTRY] = avg
    ef[F_ORDER_PRICE] = px
    fees = sf[s, SF_CYCLE_FEES]
    funding = sf[s, SF_CYCLE_FUNDING]
    n = emit_event(log, n, st.ai, K_TRADE, ts, s)
    ei, ef = log.ints[n - 1], log.floats[n - 1]
    ei[I_ENTRIES] = si[s, SI_ENTRIES]
    ei[I_REASON] = reason
    ei[I_OPEN_TS] = si[s, SI_OPEN_TS]
    ei[I_POS_SIDE] = d
    ef[F_EXIT_PRICE] = fill
    ef[F_AMOUNT] = amt
    ef[F_FEES] = fees
    ef[F_NET_PNL] = pnl - fees - funding
    ef[F_AVG_ENTRY] = avg
    ef[F_FUNDING] = funding
    end_cycle(s, reason, sf, si, pf)
    return n


@njit(cache=True, _nrt=False)
def _funding(s, ts, price, rate, st, log, n):
    """Funding of the open perpetual position of ``s`` at a settlement (``ts``, ms UTC):
    ``payment = side * amount * price * rate`` (quote; positive = paid, so longs pay a
    positive rate), ``price`` the candle close standing in for the mark price."""
    sf, si = st.sf, st.si
    d = si[s, SI_SIDE]
    amt = sf[s, SF_AMT]
    pay = d * amt * price * rate
    book_funding(s, pay, sf, st.af)
    n = emit_event(log, n, st.ai, K_FUNDING, ts, s)
    ei, ef = log.ints[n - 1], log.floats[n - 1]
    ei[I_OPEN_TS] = si[s, SI_OPEN_TS]
    ei[I_POS_SIDE] = d
    ef[F_MARK_PRICE] = price
    ef[F_AMOUNT] = amt
    ef[F_RATE] = rate
    ef[F_PAYMENT] = pay
    ef[F_AVG_ENTRY] = sf[s, SF_AVG]
    return n


@njit(cache=True, _nrt=False, inline="always")
def _stop_out(s, ts, a, st, prm, log, n):
    stop, trailing = _stop(s, st.sf, st.si, prm.market)
    d = st.si[s, SI_SIDE]
    px = a if d * a <= d * stop else stop
    reason = EXIT_TRAIL if trailing else EXIT_SL
    return _close(s, ts, px, 1, prm.account[P_SLIP], TAG_SL, reason, st, prm, log, n)


@njit(cache=True, _nrt=False, inline="always")
def _try_entry(s, i, ts, px, d, taker, corr, st, prm, caps, log, n):
    """Gate and, if allowed, fill level ``i`` of ``s`` at ``px`` (``corr``: the
    correlation row of the candle). Returns ``n``."""
    sf, si, af, ai = st.sf, st.si, st.af, st.ai
    pf, mp = prm.account, prm.market
    unreal, notional, pnl_g, pnl_s, n_open = _marks(sf, si, mp, s, px)
    equity = af[AF_CASH] + unreal
    n = check_kill_switches(ts, equity, pnl_g, caps[0], pnl_s, caps[1], af, ai, pf,
                            st.rw_ts, st.rw_eq, log.ints, log.floats, n)
    amount = level_amount(s, px, equity, sf, pf, mp)
    max_corr = max_abs_corr(s, corr, sf) if sf[s, SF_AMT] == 0.0 else 0.0
    r, x1, x2 = gate_level(s, ts, px, amount, equity, notional / pf[P_LEVERAGE], 0.0,
                           n_open, max_corr, sf, si, ai, pf, mp)
    if r != 0:
        return deny_level(s, i, r, ts, d, px, amount, x1, x2, st, log, n)
    fee = amount * px * (pf[P_TAKER] if taker else pf[P_MAKER])
    if book_entry(s, ts, d, amount, px, fee, 0.0, sf, si, af):
        si[s, SI_OPENED_NOW] = 1
    si[s, SI_ENTRIES] += 1
    st.filled[s, i] = 1
    st.dn[s, i] = 0
    n = emit_event(log, n, ai, K_ENTRY, ts, s)
    ei, ef = log.ints[n - 1], log.floats[n - 1]
    ei[I_LEVEL] = i
    ei[I_DECISION_TS] = si[s, SI_QTS]
    ei[I_SIDE] = d
    ei[I_TAKER] = taker
    ef[F_PRICE] = px
    ef[F_AMOUNT] = amount
    ef[F_FEE] = fee
    ef[F_PNL] = 0.0  # an entry realizes nothing
    ef[F_AVG_ENTRY] = sf[s, SF_AVG]
    return n


@njit(cache=True, _nrt=False, inline="always")
def _adverse_leg(s, ts, a, b, d, taker, corr, st, prm, caps, log, n):
    """Entries and the stop along a leg moving against side ``d``; ``(n, closed)``."""
    sf, si, qlv, filled = st.sf, st.si, st.qlv, st.filled
    mp = prm.market
    for i in range(qlv.shape[1]):
        if filled[s, i]:
            continue
        lv = qlv[s, i]
        if not (lv > 0.0) or d * b > d * lv:
            continue
        if sf[s, SF_AMT] > 0.0:  # the stop first when reached before (or at) this level
            stop, _ = _stop(s, sf, si, mp)
            if d * stop >= d * lv and d * b <= d * stop:
                return _stop_out(s, ts, a, st, prm, log, n), True
        px = a if d * a <= d * lv else lv
        n = _try_entry(s, i, ts, px, d, taker, corr, st, prm, caps, log, n)
    if sf[s, SF_AMT] > 0.0:
        stop, _ = _stop(s, sf, si, mp)
        if d * b <= d * stop:
            return _stop_out(s, ts, a, st, prm, log, n), True
    return n, False


@njit(cache=True, _nrt=False, inline="always")
def _candle(s, ts, o, h, l, c, corr, st, prm, caps, log, n):
    """One candle of symbol ``s`` (open time ``ts`` ms UTC, OHLC in quote) against its
    resting quotes: flatten, flip, gaps at the open, then the path (module docstring).
    ``corr``: float64 (S,) correlation row of the candle. Returns ``n``."""
    sf, si = st.sf, st.si
    slip = prm.account[P_SLIP]
    pos = si[s, SI_SIDE]
    if si[s, SI_FLATTEN]:  # a flatten command: close at the open, market
        si[s, SI_FLATTEN] = 0
        if pos != 0:
            return _close(s, ts, o, 1, slip, TAG_FLATTEN, EXIT_FLATTEN, st, prm, log, n)
    if pos != 0 and si[s, SI_QSIDE] == -pos:  # a flip: close at the open
        return _close(s, ts, o, 1, slip, TAG_FLIP, EXIT_FLIP, st, prm, log, n)
    if pos != 0 and si[s, SI_EXIT]:  # the strategy's exit signal: at the open
        return _close(s, ts, o, 1, slip, TAG_EXIT, EXIT_SIGNAL, st, prm, log, n)
    if pos != 0 and time_stop_due(ts, si[s, SI_OPEN_TS], prm.tf_ms[s],
                                  prm.market[s, M_TIME_STOP]):  # the time stop: at the open
        return _close(s, ts, o, 1, slip, TAG_TIME, EXIT_TIME, st, prm, log, n)
    d = pos if pos != 0 else si[s, SI_QSIDE]
    if d == 0:
        return n
    # the open: orders the market already gapped through were marketable when placed at
    # the previous close; they fill at the open as taker (the take profit first)
    if pos != 0:
        tp = sf[s, SF_TP]
        if tp > 0.0 and d * o >= d * tp:
            return _close(s, ts, o, 1, 0.0, TAG_TP, EXIT_TP, st, prm, log, n)
    n, closed = _adverse_leg(s, ts, o, o, d, 1, corr, st, prm, caps, log, n)
    if closed:
        return n
    path = (o, l, h, c) if c >= o else (o, h, l, c)
    for k in range(3):
        a = path[k]
        b = path[k + 1]
        if d * b < d * a:
            n, closed = _adverse_leg(s, ts, a, b, d, 0, corr, st, prm, caps, log, n)
            if closed:
                return n
        elif d * b > d * a and si[s, SI_SIDE] != 0:
            tp = sf[s, SF_TP]
            if tp > 0.0 and d * b >= d * tp:
                px = a if d * a >= d * tp else tp
                return _close(s, ts, px, 0, 0.0, TAG_TP, EXIT_TP, st, prm, log, n)
    raise_best(s, o, h, l, c, sf, si)
    return n


@njit(cache=True, _nrt=False)
def _group_end(ts, equity_every_ms, sf, si, af, ai, pf, mp, rw_ts, rw_eq, caps, out_i,
               out_f, n):
    """Day rollover, hourly rolling mark, kill switch checks and the equity snapshot at
    the candle-time close ``ts`` (ms UTC), the rules of :mod:`gridflow.operators.risk`;
    snapshots when ``ts`` is a multiple of ``equity_every_ms``; ``caps``: the grid /
    single capitals (:func:`_caps`). Returns ``n``.

    It takes the arrays it reads, not their records (:func:`group_end` is the record
    form): the sweep calls it in its candle loop, where passing whole records cost about
    3 % of the default-risk sweep (measured), and the live engine calls it too."""
    unreal, notional, pnl_g, pnl_s, _ = _marks(sf, si, mp, -1, 0.0)
    equity = af[AF_CASH] + unreal
    day = utc_day(ts)
    if day_rolls(day, ai):
        prev_start = af[AF_DAY_START]
        if start_day(day, equity, af, ai):  # the daily-loss switch cleared
            n = emit_event(EventLog(out_i, out_f), n, ai, K_KILL_RESET, ts, -1)
            out_i[n - 1, I_REASON] = KS_DAILY
            ef = out_f[n - 1]
            ef[F_EQUITY] = equity
            ef[F_DAY_START] = prev_start
    if is_hour_mark(ts):
        mark_rolling(ts, equity, ai, rw_ts, rw_eq)
    n = check_kill_switches(ts, equity, pnl_g, caps[0], pnl_s, caps[1], af, ai, pf,
                            rw_ts, rw_eq, out_i, out_f, n)
    raise_peak(equity, af)
    if ts % equity_every_ms == 0:
        n = emit_event(EventLog(out_i, out_f), n, ai, K_EQUITY, ts, -1)
        ef = out_f[n - 1]
        ef[F_EQUITY] = equity
        ef[F_CASH] = af[AF_CASH]
        ef[F_UNREALIZED] = unreal
        ef[F_USED_MARGIN] = notional / pf[P_LEVERAGE]
    return n


@njit(cache=True, _nrt=False, inline="always")
def group_end(ts, st, prm, caps, log, n):
    """:func:`_group_end` at the candle-time close ``ts`` (ms UTC) of the account ``st``
    (:class:`~gridflow.operators.kernel_layout.StateArrays`) with parameters ``prm``,
    logging into ``log``. Returns ``n``."""
    return _group_end(ts, prm.equity_every_ms, st.sf, st.si, st.af, st.ai, prm.account,
                      prm.market, st.rw_ts, st.rw_eq, caps, log.ints, log.floats, n)


@njit(cache=True, _nrt=False)
def run_steps(candles, quotes, corr, st, prm, log):
    """Advance one account over ``N`` candles sorted by ``(ts, symbol index)``.

    Parameters
    ----------
    candles : :class:`~gridflow.operators.kernel_layout.Candles` (N rows)
        Symbol index, open time (ms UTC), OHLC (quote) and funding rates of each candle;
        an open position pays ``side * amount * close * rate`` at the candle close.
    quotes : :class:`~gridflow.operators.kernel_layout.QuoteArrays` (N rows, L levels)
        Quotes decided at each candle's close (side, level prices, take profit, trailing
        distance, notional per level in quote); they rest during that symbol's next candle.
    corr : float64 (N, S)
        ``|corr|`` guard input: correlation of the candle's symbol with every symbol as of
        the previous candle time (NaN when unknown).
    st : :class:`~gridflow.operators.kernel_layout.StateArrays`
        The account's state, updated in place.
    prm : :class:`~gridflow.operators.kernel_layout.Params`
        Account and per-symbol parameters, timeframes (ms), equity snapshot cadence (ms).
    log : :class:`~gridflow.operators.kernel_layout.EventLog`
        Receives the events; ``cap >= N * (2 * L + 8) + 8`` rows.

    Returns
    -------
    int
        Rows written to the event log.
    """
    sym, ev_ts, c, fund = candles.sym, candles.ts, candles.close, candles.funding
    sf, si, ai = st.sf, st.si, st.ai
    tf_ms = prm.tf_ms
    n = 0
    N = ev_ts.shape[0]
    caps = _caps(prm.market)
    for e in range(N):
        s = sym[e]
        ts = ev_ts[e]
        was_open = sf[s, SF_AMT] > 0.0
        si[s, SI_OPENED_NOW] = 0
        si[s, SI_STOPPED_NOW] = 0
        n = _candle(s, ts, candles.open[e], candles.high[e], candles.low[e], c[e], corr[e],
                    st, prm, caps, log, n)
        close_ts = ts + tf_ms[s]
        if close_candle(s, c[e], fund[e], was_open, sf, si, st.filled, st.dn):
            n = _funding(s, close_ts, c[e], fund[e], st, log, n)
        rest_quote(s, close_ts, quotes.side[e], quotes.levels[e], quotes.take_profit[e],
                   quotes.trail[e], quotes.size[e], quotes.stop[e], quotes.exit[e], st)
        ai[AI_CANDLES] += 1
        ai[AI_LAST_TS] = ts
        if e == N - 1 or ev_ts[e + 1] != ts:
            n = group_end(close_ts, st, prm, caps, log, n)
    return n
