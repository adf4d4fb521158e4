"""The account engine: one capital pool, every candle of its symbols, in event-time order.

Pure: candles and commands in, journal records out, no I/O and no wall clock. The
Bytewax account step wraps it (:mod:`gridflow.dataflows.steps`); a notebook or a test can
drive it directly.

Ordering
--------
Chunks of different symbols arrive in any interleaving (and chunked differently with one
or two workers). The engine buffers them and only processes candles up to the
*frontier*: the smallest last-seen candle time over the symbols still streaming. All
candles of one open time are then complete and are processed in the order of the
account's sorted symbol list, so results never depend on arrival order or chunking.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from pydantic import BaseModel

from gridflow.chunks import IndicatorChunk, JournalBatch
from gridflow.config.models import AccountConfig, FeesConfig, MarketSpec
from gridflow.data.funding import FUNDING_SETTLED, funding_per_candle, last_rate
from gridflow.event_kinds import EventKind, Reason
from gridflow.events import AccountSummary, Command, JournalEvent
from gridflow.operators import grid_kernel as gk
from gridflow.operators import kernel_layout as kl
from gridflow.operators.correlation_guard import CorrelationGuard
from gridflow.operators.engine_commands import apply_command
from gridflow.operators.engine_decode import decode
from gridflow.operators.entry_gate import level_notional, vol_parity_scale
from gridflow.operators.risk import (
    DENY_REASONS,
    KILL_SWITCH_REASONS,
    kill_switch_names,
)
from gridflow.operators.strategies import FUNDING_RATE, INPUTS, STRATEGIES, sizing_indicator
from gridflow.timeframes import timeframe_to_ms, utc_day

_OHLC = ("open", "high", "low", "close")


def account_params(account: AccountConfig, fees: FeesConfig) -> np.ndarray:
    """The kernel's account parameter vector ``pf`` (float64 (P_W,), see
    :mod:`~gridflow.operators.kernel_layout`): leverage, fees, risk limits, sizing."""
    risk, sz = account.risk, account.sizing
    pf = np.zeros(kl.P_W)
    pf[kl.P_LEVERAGE] = account.leverage
    pf[kl.P_MAKER], pf[kl.P_TAKER], pf[kl.P_SLIP] = fees.maker_fee, fees.taker_fee, fees.slippage
    for col, name in kl.RISK_PARAMS:
        pf[col] = getattr(risk, name)
    pf[kl.P_ROLLING_MS] = risk.rolling_window_hours * 3_600_000
    pf[kl.P_RISK_SIZING] = 1.0 if sz.mode == "risk" else 0.0
    pf[kl.P_RISK_PER_TRADE] = sz.risk_per_trade
    return pf


def _plain(v: Any) -> Any:
    if isinstance(v, BaseModel):
        return {k: _plain(x) for k, x in v.__dict__.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(_plain(x) for x in v)
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def _outdated(v: Any) -> bool:
    """Whether ``v`` holds a model lacking one of its class's fields (unpickled from
    an earlier version), at any depth."""
    if isinstance(v, BaseModel):
        return bool(set(type(v).model_fields) - set(v.__dict__)) or any(
            _outdated(x) for x in v.__dict__.values())
    if isinstance(v, (list, tuple)):
        return any(_outdated(x) for x in v)
    if isinstance(v, dict):
        return any(_outdated(x) for x in v.values())
    return False


def refreshed(m: BaseModel) -> BaseModel:
    """``m`` itself, or, when it (or a model inside it) was unpickled from an earlier
    version and lacks fields added since, ``m`` validated anew from the fields it has:
    the missing ones take their defaults."""
    return type(m).model_validate(_plain(m)) if _outdated(m) else m


def widen(a: np.ndarray, width: int) -> np.ndarray:
    """``a`` (1-D, or 2-D by rows) with its last axis zero-padded to ``width`` columns
    (the array itself when it already has them).

    Raises
    ------
    ValueError
        ``a`` has more columns than ``width`` (a snapshot of a newer version)."""
    have = a.shape[-1]
    if have == width:
        return a
    if have > width:
        raise ValueError(f"state array has {have} columns, this version knows {width}: "
                         "a snapshot of a newer gridflow")
    pad = [(0, 0)] * (a.ndim - 1) + [(0, width - have)]
    return np.ascontiguousarray(np.pad(a, pad))


def market_params(step: float, min_amount: float, min_notional: float, p,
                  alloc_quote: float) -> np.ndarray:
    """One symbol's row of the kernel's market parameters ``mp`` (float64 (M_W,), see
    :mod:`~gridflow.operators.kernel_layout`): the venue's amount step (base), minimum
    amount (base) and notional (quote), and from the strategy parameters ``p`` the stop
    distance, grid flag, levels, allocation (quote) and time stop (candles)."""
    row = np.zeros(kl.M_W)
    row[kl.M_STEP], row[kl.M_MIN_AMOUNT], row[kl.M_MIN_NOTIONAL] = step, min_amount, min_notional
    row[kl.M_SL] = p.sl_frac
    row[kl.M_GRID] = 1.0 if p.is_grid else 0.0
    row[kl.M_LEVELS] = p.levels_count
    row[kl.M_ALLOC] = alloc_quote
    row[kl.M_TIME_STOP] = p.time_stop_candles
    return row


class AccountEngine:
    """Positions, cash, margin, PnL, strategies and risk gate of one account.

    Parameters
    ----------
    account : AccountConfig
    symbols : sequence of str
        Candidate symbols (with data); those its strategies allow are traded, processed
        in sorted order within one candle time.
    timeframes : dict[str, str]
        ccxt timeframe of each symbol's candles.
    fees : FeesConfig
    markets : dict[str, MarketSpec]
        Precision and limits; a missing symbol has no rounding and no minimums.
    equity_every_ms : int
        Equity snapshot cadence in event time (ms).
    funding : dict[str, (int64 (m,), float64 (m,))], optional
        Settlement times (ms UTC) and rates (fractions) of the symbols traded as
        perpetuals (:func:`~gridflow.data.funding.read_funding`); others pay none.
        Chunks whose values carry ``funding_rate`` / ``funding_settled`` (a live
        funding-fed source) use those instead.

    Raises
    ------
    ValueError
        If no symbol is allowed by a strategy, or a timeframe is missing.
    """

    def __init__(self, account: AccountConfig, symbols, timeframes: dict[str, str],
                 fees: FeesConfig, markets: dict[str, MarketSpec],
                 equity_every_ms: int = 3_600_000, funding=None) -> None:
        self.account = account
        self.params = account.assignment(sorted(symbols))
        if not self.params:
            raise ValueError(f"account {account.name!r}: no symbol of {sorted(symbols)} is "
                             "allowed by its strategies")
        self.symbols = sorted(self.params)
        self.index = {s: i for i, s in enumerate(self.symbols)}
        missing = [s for s in self.symbols if s not in timeframes]
        if missing:
            raise ValueError(f"account {account.name!r}: no timeframe for {missing}")
        self.tf_ms = np.array([timeframe_to_ms(timeframes[s]) for s in self.symbols], np.int64)
        self.equity_every_ms = int(equity_every_ms)
        self.funding = {s: v for s, v in (funding or {}).items() if s in self.index}
        self.strategy_names = [self.params[s].name for s in self.symbols]
        fallback = [i for i, st in enumerate(account.strategies) if not st.symbols]
        self.strategy_index = {
            s: next((i for i, st in enumerate(account.strategies) if s in st.symbols),
                    fallback[0] if fallback else -1)
            for s in self.symbols
        }
        self.levels = max(p.levels_count for p in self.params.values())
        S = len(self.symbols)
        alloc = account.capital_quote / S
        self.ticks = [markets.get(s, MarketSpec()).price_tick for s in self.symbols]
        risk = account.risk
        self.pf = account_params(account, fees)
        self.mp = np.zeros((S, kl.M_W))
        for i, s in enumerate(self.symbols):
            m, p = markets.get(s, MarketSpec()), self.params[s]
            self.mp[i] = market_params(m.amount_step, m.min_amount, m.min_notional, p, alloc)
        self.state = kl.KernelState.new(S, self.levels, account.capital_quote,
                                        risk.rolling_window_hours)
        self.corr = None
        if risk.correlation_threshold < 1.0:
            window = max(2, risk.correlation_window_hours * 3_600_000 // int(self.tf_ms[0]))
            self.corr = CorrelationGuard(S, int(window))
        self.pending: dict[str, list[IndicatorChunk]] = {s: [] for s in self.symbols}
        self.seen_ts: dict[str, int | None] = {s: None for s in self.symbols}
        self._idle_told = False  # no_candles journaled (absent in older snapshots)
        self.done: dict[str, bool] = {s: False for s in self.symbols}
        self.counters: Counter[str] = Counter()

    def __setstate__(self, state: dict) -> None:
        """Load a pickled engine (a Bytewax snapshot), also one pickled by an earlier
        version whose parameter or state arrays had fewer columns: they are widened
        to the current layout (:func:`widen`), the new columns at their neutral value
        (0: a rule added later is off for a run that never set it), and its config
        models (account, strategy parameters, live settings) are rebuilt with the
        fields added since at their defaults (:func:`refreshed`). Without this the
        kernels, which do not check bounds, would read past an old array's end."""
        self.__dict__.update(state)
        for name, value in list(self.__dict__.items()):  # configs of an earlier version
            if isinstance(value, BaseModel):
                setattr(self, name, refreshed(value))
            elif isinstance(value, dict) and any(isinstance(v, BaseModel)
                                                 for v in value.values()):
                setattr(self, name, {k: refreshed(v) if isinstance(v, BaseModel) else v
                                     for k, v in value.items()})
        self.pf = widen(self.pf, kl.P_W)
        self.mp = widen(self.mp, kl.M_W)
        st = self.state
        st.sf = widen(st.sf, kl.SF_W)
        st.si = widen(st.si, kl.SI_W)

    # ---- streaming interface -------------------------------------------------------
    def on_chunk(self, chunk: IndicatorChunk) -> JournalBatch:
        """Buffer one symbol's chunk and process every candle that is now complete."""
        sym = chunk.candles.symbol
        if sym not in self.index:
            return JournalBatch()
        if len(chunk.candles):
            self.pending[sym].append(chunk)
            self.seen_ts[sym] = int(chunk.candles.ts[-1])
        if chunk.candles.last:
            self.done[sym] = True
        return self._process(self._frontier())

    def flush(self) -> JournalBatch:
        """Process everything buffered (end of input)."""
        return self._process(np.iinfo(np.int64).max)

    def apply_command(self, cmd: Command, ts_ms: int | None = None) -> JournalBatch:
        """Apply a control command (:mod:`gridflow.operators.engine_commands`) at event
        time ``ts_ms`` (default: the close of the last processed candle); journals the
        acknowledgement, ``command_applied`` or ``command_rejected`` with a reason."""
        return apply_command(self, cmd, self.event_time() if ts_ms is None else ts_ms)

    def event_time(self) -> int:
        """Close time (ms UTC) of the last processed candle; 0 before any."""
        last = int(self.state.ai[kl.AI_LAST_TS])
        return last + int(self.tf_ms.min()) if last >= 0 else 0

    def next_seq(self) -> int:
        """Take the next event sequence number."""
        self.state.ai[kl.AI_SEQ] += 1
        return int(self.state.ai[kl.AI_SEQ])

    def restore(self, summary: dict) -> None:
        """Continue from the journaled summary of an earlier process of the same run
        (a restart without Bytewax recovery state): its kill switches stay on, and the
        candle count and event sequence go on where they stopped, so new journal rows
        never collide with old ones. Positions are not rebuilt here (live mode
        reconciles them with the exchange).
        """
        codes = {v: k for k, v in KILL_SWITCH_REASONS.items()}
        for name in filter(None, str(summary.get("kill_switch", "")).split(",")):
            self.state.ai[kl.AI_KILL] |= codes[name]
        self.state.ai[kl.AI_CANDLES] = int(summary.get("candles", 0))
        self.state.ai[kl.AI_SEQ] = int(summary.get("seq", 0))
        last = int(summary.get("last_ts_ms", -1) or -1)
        if last >= 0:  # candles replayed from before the restored day roll no day over
            self.state.ai[kl.AI_DAY] = utc_day(last + int(self.tf_ms.min()))

    def _frontier(self) -> int | None:
        f = np.iinfo(np.int64).max
        for s in self.symbols:
            if self.done[s]:
                continue
            t = self.seen_ts[s]
            if t is None:
                return None
            f = min(f, t)
        return f

    # ---- processing ----------------------------------------------------------------
    def _take_ready(self, frontier: int):
        parts = []
        for s in self.symbols:
            chunks = self.pending[s]
            k = 0
            while k < len(chunks) and chunks[k].candles.ts[0] <= frontier:
                k += 1
            if k == 0:
                continue
            ready = chunks[:k]
            last = ready[-1]
            keep = last.candles.ts > frontier
            self.pending[s] = chunks[k:]
            if keep.any():
                rest = IndicatorChunk(last.candles.take(keep),
                                      {n: v[keep] for n, v in last.values.items()})
                self.pending[s].insert(0, rest)
                ready[-1] = IndicatorChunk(last.candles.take(~keep),
                                           {n: v[~keep] for n, v in last.values.items()})
            cat = np.concatenate
            cols = {f: cat([getattr(r.candles, f) for r in ready]) for f in ("ts", *_OHLC)}
            cols["warm"] = cat([np.full(len(r.candles), r.candles.warmup) for r in ready])
            vals = {n: cat([r.values[n] for r in ready]) for n in ready[0].values}
            parts.append((s, cols, vals))
        return parts

    def _quotes(self, s: str, vals: dict[str, np.ndarray], n: int, ts: np.ndarray):
        i = self.index[s]
        p = self.params[s]
        if FUNDING_RATE in INPUTS[p.name](p) and FUNDING_RATE not in vals:
            # the last settled rate at each close, from the funding file (a live source
            # attaches it to the candles instead: dataflows.funding_feed)
            close_ts = np.asarray(ts, np.int64) + self.tf_ms[i]
            vals = {**vals, FUNDING_RATE: last_rate(close_ts, *self.funding[s])
                    if s in self.funding else np.full(n, np.nan)}
        q = STRATEGIES[p.name][1](p, vals, self.ticks[i])
        lv = np.full((n, self.levels), np.nan)
        lv[:, : q.levels.shape[1]] = q.levels
        sz = self.account.sizing
        lev = self.account.leverage
        size = np.full(n, level_notional(sz, self.mp[i, kl.M_ALLOC], p.levels_count, lev))
        hv_name = sizing_indicator(self.account)
        if hv_name is not None:
            size = size * vol_parity_scale(sz.target_vol, vals[hv_name], sz.max_vol_scale)
        return q.side, lv, q.take_profit, q.trail, size, q.stop, q.exit

    def _assemble(self, parts) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Ready parts -> candle, quote and correlation arrays sorted by (ts, symbol).

        Warm-up candles get neutral quotes (side 0, no levels): they feed indicators and
        marks but never trade."""
        cols: dict[str, list] = {k: [] for k in ("sym", "ts", *_OHLC, "warm", "side", "lv",
                                                 "tp", "trail", "size", "stop", "exit",
                                                 "fund")}
        for s, c, vals in parts:
            n = len(c["ts"])
            cols["sym"].append(np.full(n, self.index[s], np.int64))
            for f in ("ts", *_OHLC, "warm"):
                cols[f].append(c[f])
            fund = np.zeros(n)
            if FUNDING_SETTLED in vals:  # from the live source (dataflows.funding_feed)
                fund = vals[FUNDING_SETTLED]
            elif s in self.funding:
                fund = funding_per_candle(c["ts"], int(self.tf_ms[self.index[s]]),
                                          *self.funding[s])
            cols["fund"].append(fund)
            side, lv, tp, trail, size, stop, ex = self._quotes(s, vals, n, c["ts"])
            warm = c["warm"]
            if warm.any():
                side = np.where(warm, 0, side)
                lv = np.where(warm[:, None], np.nan, lv)
                tp = np.where(warm, np.nan, tp)
                stop = np.where(warm, np.nan, stop)
                ex = np.where(warm, 0, ex)
            for k, v in zip(("side", "lv", "tp", "trail", "size", "stop", "exit"),
                            (side, lv, tp, trail, size, stop, ex)):
                cols[k].append(v)
        sym = np.concatenate(cols["sym"])
        ts = np.concatenate(cols["ts"])
        order = np.lexsort((sym, ts))
        a = {k: np.concatenate(v)[order] for k, v in cols.items()}
        N = len(order)
        S = len(self.symbols)
        if self.corr is not None:
            group = np.r_[0, np.cumsum(np.diff(a["ts"]) != 0)]
            per_group = self.corr.update(group, a["sym"], a["close"])
            ev_corr = per_group[group, a["sym"]]
        else:
            ev_corr = np.zeros((N, S))
        return a, ev_corr

    def _ready(self, frontier: int | None):
        """The buffered candles complete up to ``frontier``, assembled
        (:meth:`_assemble`); None when there are none."""
        if frontier is None:
            return None
        parts = self._take_ready(frontier)
        return self._assemble(parts) if parts else None

    def _process(self, frontier: int | None) -> JournalBatch:
        ready = self._ready(frontier)
        if ready is None:
            return self._ended_without_candles()
        a, ev_corr = ready
        N = len(a["ts"])
        cap = N * (2 * self.levels + 9) + 8
        log = kl.EventLog(np.empty((cap, kl.OI_W), np.int64), np.empty((cap, kl.OF_W)))
        n = gk.run_steps(
            kl.Candles(a["sym"], a["ts"], a["open"], a["high"], a["low"], a["close"], a["fund"]),
            kl.QuoteArrays(a["side"].astype(np.int64), np.ascontiguousarray(a["lv"]), a["tp"],
                           a["trail"], a["size"], a["stop"], a["exit"].astype(np.int64)),
            np.ascontiguousarray(ev_corr), self.state.arrays(),
            kl.Params(self.pf, self.mp, self.tf_ms, self.equity_every_ms), log,
        )
        batch = decode(log.ints[:n], log.floats[:n], self.account.name, self.symbols,
                       self.strategy_names, self.counters)
        batch.summaries.append(self.summary())
        return batch

    def _ended_without_candles(self) -> JournalBatch:
        """Nothing to process. If every symbol's input has ended and not one valid candle
        reached this account (all refused by validation, none in the window), say so once
        with a ``no_candles`` event and a ``complete`` summary, so that a replay waiting
        for every account to complete ends instead of waiting forever."""
        if (not all(self.done.values()) or any(self.pending.values())
                or int(self.state.ai[kl.AI_CANDLES]) > 0 or getattr(self, "_idle_told", False)):
            return JournalBatch()
        self._idle_told = True
        seq = self.next_seq()
        seen = [t for t in self.seen_ts.values() if t is not None]
        out = JournalBatch()
        out.events.append(JournalEvent(
            event_id=f"{EventKind.NO_CANDLES}:{self.account.name}:{seq}",
            kind=EventKind.NO_CANDLES, reason=Reason.NO_VALID_CANDLES,
            ts_ms=max(seen) if seen else 0, account=self.account.name, seq=seq,
            detail={"symbols": list(self.symbols)},
        ))
        out.summaries.append(self.summary())
        return out

    # ---- views -------------------------------------------------------------------
    @property
    def kill_switch(self) -> str:
        """Reason codes of the active kill switches, comma-separated, or ``""``."""
        return ",".join(kill_switch_names(int(self.state.ai[kl.AI_KILL])))

    def equity(self) -> float:
        """Cash plus unrealized PnL at the last closes, quote currency."""
        st = self.state
        unreal = gk._marks(st.sf, st.si, self.mp, -1, 0.0)[0]
        return float(st.af[kl.AF_CASH] + unreal)

    def counter_dict(self) -> dict[str, int]:
        """Event counters, denials per reason included (``denied_MAX_MARGIN_RATIO``)."""
        out = dict(self.counters)
        for code, name in DENY_REASONS.items():
            if self.state.cnt[code]:
                out["denied_" + name] = int(self.state.cnt[code])
        return dict(sorted(out.items()))

    def summary(self) -> AccountSummary:
        """Running totals (candles processed, equity, cash, fees, counters)."""
        st = self.state
        return AccountSummary(
            account=self.account.name,
            candles=int(st.ai[kl.AI_CANDLES]),
            last_ts_ms=int(st.ai[kl.AI_LAST_TS]),
            seq=int(st.ai[kl.AI_SEQ]),
            initial_capital=float(st.af[kl.AF_CAPITAL]),
            equity=self.equity(),
            cash=float(st.af[kl.AF_CASH]),
            fees_paid=float(st.af[kl.AF_FEES]),
            funding_paid=float(st.af[kl.AF_FUNDING]),
            realized_pnl=float(st.af[kl.AF_REALIZED]),
            kill_switch=self.kill_switch,
            counters=self.counter_dict(),
            paused=bool(st.ai[kl.AI_PAUSED]),
            complete=all(self.done.values()) and not any(self.pending.values()),
            positions=self.positions(),
        )

    def positions(self) -> dict[str, dict]:
        """Per traded symbol: side, amount (base), average entry, entries, the resting
        grid levels (price, filled), take profit and stop (quote) and their distances
        from the last close (fractions, signed), paused flag."""
        st = self.state
        out = {}
        for s, i in self.index.items():
            amt = float(st.sf[i, kl.SF_AMT])
            side = int(st.si[i, kl.SI_SIDE]) or int(st.si[i, kl.SI_QSIDE])
            stop = None
            if amt > 0:
                stop = float(gk._stop(i, st.sf, st.si, self.mp)[0])
            levels = [{"price": None if not np.isfinite(p) else float(p), "filled": bool(f)}
                      for p, f in zip(st.qlv[i], st.filled[i])]
            tp = float(st.sf[i, kl.SF_TP])
            last = float(st.sf[i, kl.SF_LAST_CLOSE])
            dist = (lambda px: None if px is None or not (np.isfinite(px) and last > 0)
                    else px / last - 1.0)
            out[s] = {
                "strategy": self.params[s].name,
                "side": {1: "long", -1: "short"}.get(side, "flat"),
                "amount": amt,
                "avg_entry": float(st.sf[i, kl.SF_AVG]) if amt > 0 else None,
                "entries": int(st.si[i, kl.SI_ENTRIES]),
                "levels": levels[: self.params[s].levels_count],
                "take_profit": tp if np.isfinite(tp) else None,
                "stop": stop,
                "last_close": None if not np.isfinite(st.sf[i, kl.SF_LAST_CLOSE])
                else float(st.sf[i, kl.SF_LAST_CLOSE]),
                "paused": bool(st.si[i, kl.SI_PAUSED]),
                "take_profit_distance": dist(tp if np.isfinite(tp) else None),
                "stop_distance": dist(stop),
            }
        return out
