"""The account engine: one capital pool, every candle of its symbols, in event-time order.

Pure: candles in, journal records out, no I/O and no wall clock. The Bytewax account
step wraps it (:mod:`gridflow.dataflows.account_step`), and a notebook or a test can
drive it directly.

Ordering
--------
Chunks of different symbols arrive in any interleaving (and chunked differently with
one or two workers). The engine buffers them and only processes candles up to the
*frontier*: the smallest last-seen candle time over the symbols still streaming. All
candles of one open time are then complete, and they are processed in the fixed order
of the account's sorted symbol list, so results never depend on arrival order or
chunking.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from gridflow.chunks import IndicatorChunk, JournalBatch
from gridflow.config.models import AccountConfig, FeesConfig, MarketSpec
from gridflow.events import AccountSummary, EquitySnapshot, ExecutionReport, JournalEvent
from gridflow.events import OrderRequest, TradeRecord
from gridflow.ids import client_order_id
from gridflow.operators import grid_kernel as gk
from gridflow.operators.risk import DENY_REASONS, KILL_SWITCH_REASONS
from gridflow.operators.strategies.grid_atr import grid_atr_indicators, grid_atr_quotes
from gridflow.timeframes import timeframe_to_ms

_SIDE = {1: "buy", -1: "sell"}
_POS = {1: "long", -1: "short"}
_EXIT = {gk.EXIT_TP: "TP", gk.EXIT_SL: "SL"}


class AccountEngine:
    """Positions, cash, margin, PnL, strategy and risk gate of one account.

    Parameters
    ----------
    account : AccountConfig
    symbols : sequence of str
        The symbols it trades; processed in sorted order within one candle time.
    timeframes : dict[str, str]
        ccxt timeframe of each symbol's candles.
    fees : FeesConfig
    markets : dict[str, MarketSpec]
        Precision and limits; a missing symbol has no rounding and no minimums.
    equity_every_ms : int
        Equity snapshot cadence in event time (ms).

    Raises
    ------
    ValueError
        If ``symbols`` is empty or a timeframe is missing.
    """

    def __init__(
        self,
        account: AccountConfig,
        symbols: list[str] | tuple[str, ...],
        timeframes: dict[str, str],
        fees: FeesConfig,
        markets: dict[str, MarketSpec],
        equity_every_ms: int = 3_600_000,
    ) -> None:
        if not symbols:
            raise ValueError(f"account {account.name!r} has no symbols to trade")
        self.account = account
        self.symbols = sorted(symbols)
        self.index = {s: i for i, s in enumerate(self.symbols)}
        missing = [s for s in self.symbols if s not in timeframes]
        if missing:
            raise ValueError(f"account {account.name!r}: no timeframe for {missing}")
        self.tf_ms = np.array([timeframe_to_ms(timeframes[s]) for s in self.symbols], np.int64)
        self.equity_every_ms = int(equity_every_ms)
        p = account.strategy
        self.strategy_name = p.name
        self.sma_name, self.atr_name = grid_atr_indicators(p)
        self.ticks = [markets.get(s, MarketSpec()).price_tick for s in self.symbols]
        self.pf = np.zeros(gk.P_W)
        self.pf[gk.P_MARGIN_PER_LEVEL] = account.capital_quote / len(self.symbols) / p.levels
        self.pf[gk.P_LEVERAGE] = account.leverage
        self.pf[gk.P_SL] = p.sl_pct
        self.pf[gk.P_MAKER] = fees.maker_fee
        self.pf[gk.P_TAKER] = fees.taker_fee
        self.pf[gk.P_SLIP] = fees.slippage
        self.pf[gk.P_MAX_MR] = account.risk.max_margin_ratio
        self.pf[gk.P_SESSION_LOSS] = account.risk.session_loss_limit
        self.mp = np.zeros((len(self.symbols), gk.M_W))
        for i, s in enumerate(self.symbols):
            m = markets.get(s, MarketSpec())
            self.mp[i] = (m.amount_step, m.min_amount, m.min_notional)
        self.state = gk.KernelState.new(len(self.symbols), p.levels, account.capital_quote)
        self.pending: dict[str, list[IndicatorChunk]] = {s: [] for s in self.symbols}
        self.seen_ts: dict[str, int | None] = {s: None for s in self.symbols}
        self.done: dict[str, bool] = {s: False for s in self.symbols}
        self.counters: Counter[str] = Counter()

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
            if keep.any():
                rest = IndicatorChunk(last.candles.take(keep), {n: v[keep] for n, v in last.values.items()})
                self.pending[s] = [rest] + chunks[k:]
                upto = ~keep
                ready[-1] = IndicatorChunk(last.candles.take(upto), {n: v[upto] for n, v in last.values.items()})
            else:
                self.pending[s] = chunks[k:]
            cat = np.concatenate
            parts.append((
                s,
                cat([r.candles.ts for r in ready]),
                {f: cat([getattr(r.candles, f) for r in ready]) for f in ("open", "high", "low", "close")},
                cat([r.values[self.sma_name] for r in ready]),
                cat([r.values[self.atr_name] for r in ready]),
            ))
        return parts

    def _process(self, frontier: int | None) -> JournalBatch:
        if frontier is None:
            return JournalBatch()
        parts = self._take_ready(frontier)
        if not parts:
            return JournalBatch()
        p = self.account.strategy
        L = p.levels
        syms, tss, o, h, lo, c, qside, qlv, qtp = [], [], [], [], [], [], [], [], []
        for s, ts, cols, sma, atr in parts:
            i = self.index[s]
            q = grid_atr_quotes(p, sma, atr, self.ticks[i])
            syms.append(np.full(len(ts), i, np.int64))
            tss.append(ts)
            o.append(cols["open"])
            h.append(cols["high"])
            lo.append(cols["low"])
            c.append(cols["close"])
            qside.append(q.side)
            qlv.append(q.levels)
            qtp.append(q.take_profit)
        sym = np.concatenate(syms)
        ts = np.concatenate(tss)
        order = np.lexsort((sym, ts))
        N = len(order)
        cap = N * (2 * L + 4) + 1
        out_i = np.empty((cap, gk.OI_W), np.int64)
        out_f = np.empty((cap, gk.OF_W), np.float64)
        st = self.state
        n = gk.run_steps(
            sym[order], ts[order],
            np.concatenate(o)[order], np.concatenate(h)[order],
            np.concatenate(lo)[order], np.concatenate(c)[order],
            np.concatenate(qside)[order], np.concatenate(qlv)[order], np.concatenate(qtp)[order],
            self.tf_ms, self.equity_every_ms,
            st.sf, st.si, st.qlv, st.filled, st.dn, st.cnt, st.af, st.ai, self.pf, self.mp, out_i, out_f,
        )
        batch = self._decode(out_i[:n], out_f[:n])
        batch.summaries.append(self.summary())
        return batch

    # ---- decoding ------------------------------------------------------------------
    def _decode(self, oi: np.ndarray, of: np.ndarray) -> JournalBatch:
        b = JournalBatch()
        acct = self.account.name
        strat = self.strategy_name
        rows_i = oi.tolist()
        rows_f = of.tolist()
        for (kind, ts, s, lvl, seq, reason, dts, side), f in zip(rows_i, rows_f):
            sym = self.symbols[s] if s >= 0 else ""
            if kind == gk.K_ENTRY or kind == gk.K_EXIT:
                entry = kind == gk.K_ENTRY
                tag = f"L{lvl}" if entry else ("TP" if lvl == gk.TAG_TP else "SL")
                coid = client_order_id(acct, strat, sym, tag, dts)
                otype = "limit" if tag != "SL" else "stop_market"
                b.orders.append(OrderRequest(
                    client_order_id=coid, account=acct, strategy=strat, symbol=sym, tag=tag,
                    ts_ms=dts, seq=seq, side=_SIDE[side], type=otype,
                    price=f[0] if entry else f[5], amount=f[1], reduce_only=not entry,
                ))
                b.fills.append(ExecutionReport(
                    report_id="fill-" + coid, client_order_id=coid, account=acct, symbol=sym,
                    ts_ms=ts, seq=seq, status="filled", side=_SIDE[side], price=f[0],
                    amount=f[1], fee=f[2], liquidity="taker" if otype == "stop_market" else "maker",
                    realized_pnl=f[3],
                ))
                self.counters["entries" if entry else "exits_" + tag] += 1
            elif kind == gk.K_TRADE:
                b.trades.append(TradeRecord(
                    trade_id=f"{acct}:{sym}:{dts}", account=acct, symbol=sym, seq=seq,
                    position_side=_POS[side], open_ts_ms=dts, close_ts_ms=ts, entries=lvl,
                    amount=f[1], avg_entry=f[4], exit_price=f[0], pnl=f[3], fees=f[2],
                    exit_reason=_EXIT[reason],
                ))
            elif kind == gk.K_DENIED:
                code = DENY_REASONS[reason]
                b.events.append(JournalEvent(
                    event_id=f"order_denied:{acct}:{seq}", kind="order_denied", reason=code,
                    ts_ms=ts, account=acct, symbol=sym, seq=seq,
                    detail={"level": lvl, "side": _SIDE[side], "price": f[0], "amount": f[1],
                            "margin_ratio_after": f[4], "max_margin_ratio": f[5],
                            "decision_ts_ms": dts},
                ))
            elif kind == gk.K_KILL:
                code = KILL_SWITCH_REASONS[reason]
                self.counters["kill_switch_trips"] += 1
                b.events.append(JournalEvent(
                    event_id=f"kill_switch_tripped:{acct}:{seq}", kind="kill_switch_tripped",
                    reason=code, ts_ms=ts, account=acct, symbol=sym, seq=seq,
                    detail={"equity": f[0], "session_start_equity": f[1],
                            "session_return": f[4], "threshold": f[5]},
                ))
            elif kind == gk.K_EQUITY:
                b.equity.append(EquitySnapshot(
                    account=acct, ts_ms=ts, equity=f[0], cash=f[1], unrealized=f[2],
                    used_margin=f[3],
                ))
        return b

    # ---- views -------------------------------------------------------------------
    @property
    def kill_switch(self) -> str:
        """Reason code of the active kill switch, or ``""``."""
        return KILL_SWITCH_REASONS.get(int(self.state.ai[gk.AI_KILL]), "")

    def equity(self) -> float:
        """Cash plus unrealized PnL at the last closes, quote currency."""
        st = self.state
        unreal, _ = gk._marks(st.sf, st.si, -1, 0.0)
        return float(st.af[gk.AF_CASH] + unreal)

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
            candles=int(st.ai[gk.AI_CANDLES]),
            last_ts_ms=int(st.ai[gk.AI_LAST_TS]),
            initial_capital=float(st.af[gk.AF_CAPITAL]),
            equity=self.equity(),
            cash=float(st.af[gk.AF_CASH]),
            fees_paid=float(st.af[gk.AF_FEES]),
            realized_pnl=float(st.af[gk.AF_REALIZED]),
            kill_switch=self.kill_switch,
            counters=self.counter_dict(),
        )
