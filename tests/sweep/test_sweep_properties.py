"""Property tests: the sweep engine equals the streaming account engine on random
parameters, risk limits, sizing modes and windows of real BTC/USDT 1h candles.

The reference is :class:`~gridflow.operators.engine.AccountEngine` fed the same candles
(warm-up chunk, then the traded window) and the same indicator values: trades, net PnL,
fees and funding must agree to 1e-6 USDT, and the sweep's drawdown and daily Sharpe must
agree with the engine's hourly equity snapshots. Tight risk limits make kill switches trip,
so the skipping logic (flat stretches, refused entries, frozen accounts) is exercised.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gridflow.chunks import CandleChunk, IndicatorChunk, JournalBatch
from gridflow.config.models import (
    AccountConfig,
    EnvelopeDcaParams,
    FeesConfig,
    GridAtrParams,
    GridMultiTfParams,
    GridTrendParams,
    MarketSpec,
    RiskConfig,
    SizingConfig,
)
from gridflow.data import bundled_candle_files
from gridflow.data.funding import bundled_funding_files
from gridflow.metrics import daily_sharpe, max_drawdown
from gridflow.operators.engine import AccountEngine
from gridflow.operators.strategies import strategy_indicators
from gridflow.sweep import IndicatorTable, SweepData, expand_grid, run_sweep

SYMBOL = "BTC/USDT"
FEES = FeesConfig(maker_fee=0.0002, taker_fee=0.0005, slippage=0.0005)
MARKET = MarketSpec(amount_step=0.00001, price_tick=0.01, min_notional=5.0)


@pytest.fixture(scope="module")
def btc():
    path = next(p for p in bundled_candle_files() if p.name.startswith("binance_BTC_USDT_1h"))
    data = SweepData.from_file(path, funding=bundled_funding_files()[SYMBOL])
    return data, IndicatorTable(data, 0)


side = st.sampled_from(["long", "short"])
frac = st.floats(0.0, 3.0).map(lambda x: round(x, 2))
sl = st.floats(0.005, 0.3).map(lambda x: round(x, 3))
period = st.integers(2, 80)
levels = st.integers(1, 5)

params = st.one_of(
    st.builds(GridAtrParams, side=side, sma_period=period, atr_period=period, levels=levels,
              atr_start=frac, atr_step=frac, sl_pct=sl),
    st.builds(lambda s, p, offs, x: EnvelopeDcaParams(side=s, sma_period=p, sl_pct=x,
                                                      offsets=tuple(sorted(offs))),
              side, period, st.sets(st.integers(2, 150).map(lambda i: i / 1000), min_size=1,
                                    max_size=4), sl),
    st.builds(GridMultiTfParams, htf=st.sampled_from(["4h", "12h"]),
              supertrend_period=st.integers(2, 15), supertrend_multiplier=st.floats(0.5, 4.0),
              sma_period=period, atr_period=period, levels=levels, atr_start=frac,
              atr_step=frac, sl_pct=sl),
    st.builds(lambda f, g, a, thr, lv, s0, s1, tr, x: GridTrendParams(
        ema_fast=f, ema_slow=f + g, adx_period=a, adx_threshold=thr, levels=lv,
        atr_start=s0, atr_step=s1, trail_atr=tr, sl_pct=x),
        st.integers(2, 30), st.integers(1, 60), st.integers(3, 20), st.floats(0.0, 40.0),
        levels, frac, frac, st.floats(0.3, 5.0), sl),
)
risk = st.builds(
    RiskConfig, max_margin_ratio=st.floats(0.2, 1.0), session_loss_grid=st.floats(0.02, 0.9),
    session_loss_single=st.floats(0.02, 0.9), daily_loss_limit=st.floats(0.01, 0.5),
    rolling_drawdown_pct=st.floats(0.05, 0.9), rolling_window_hours=st.integers(1, 96),
    max_drawdown_pct=st.floats(0.05, 0.9), cooldown_candles=st.integers(0, 20))
sizing = st.one_of(
    st.builds(SizingConfig, mode=st.just("equal")),
    st.builds(SizingConfig, mode=st.just("fixed_notional"),
              notional_per_level_quote=st.floats(10.0, 5000.0)),
    st.builds(SizingConfig, mode=st.just("risk"), risk_per_trade=st.floats(0.001, 0.1)),
    st.builds(SizingConfig, mode=st.just("vol_parity"), vol_window=st.integers(2, 200),
              target_vol=st.floats(0.05, 2.0), max_vol_scale=st.floats(1.0, 5.0)),
)


def _engine_run(data, table, acct, p, first, t0, t1):
    names = strategy_indicators(acct, p)
    table.ensure(names)
    eng = AccountEngine(acct, [SYMBOL], {SYMBOL: "1h"}, FEES, {SYMBOL: MARKET},
                        equity_every_ms=3_600_000,
                        funding={SYMBOL: _funding_series(data)})
    keys = [k for k in table.rows if any(k == n or k.startswith(n + ".") for n in names)]
    out = JournalBatch()
    for lo, hi, warm, last in ((first, t0, True, False), (t0, t1, False, True)):
        if hi <= lo:
            continue
        c = CandleChunk(SYMBOL, "1h", data.ts[lo:hi], data.open[lo:hi], data.high[lo:hi],
                        data.low[lo:hi], data.close[lo:hi], data.volume[lo:hi], lo, last, warm)
        out.extend(eng.on_chunk(IndicatorChunk(c, {k: table.matrix[table.rows[k], lo:hi]
                                                   for k in keys})))
    out.extend(eng.flush())
    return eng, out


def _funding_series(data):
    """Settlements back from the per-candle sums (one per settlement candle)."""
    idx = np.flatnonzero(data.fund)
    return data.ts[idx] + data.tf_ms, data.fund[idx]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=params, r=risk, sz=sizing, lev=st.sampled_from([1.0, 2.0, 5.0]),
       start=st.integers(2_000, 60_000), warm=st.integers(0, 1_500),
       length=st.integers(50, 2_500))
def test_sweep_equals_the_account_engine(btc, p, r, sz, lev, start, warm, length):
    data, _shared = btc
    first = max(0, start - warm)
    t0, t1 = start, min(len(data), start + length)
    table = IndicatorTable(data, first)
    acct = AccountConfig(name="prop", capital_quote=10_000.0, leverage=lev, symbols=(SYMBOL,),
                         strategies=(p,), risk=r, sizing=sz)
    eng, out = _engine_run(data, table, acct, p, first, t0, t1)
    res = run_sweep(data, acct, [p], FEES, MARKET, start_ms=int(data.ts[t0]),
                    end_ms=int(data.ts[t1 - 1]) + 1, first=first, table=table)
    s = eng.summary()
    event(f"trades: {'some' if len(out.trades) else 'none'}")
    event(f"kill switch: {'on' if s.kill_switch else 'off'}")
    event(f"denials: {'some' if any(k.startswith('denied') for k in s.counters) else 'none'}")
    assert res.metrics["trades"][0] == len(out.trades)
    assert abs(res.metrics["net_pnl"][0] - (s.equity - s.initial_capital)) <= 1e-6
    assert abs(res.metrics["fees"][0] - s.fees_paid) <= 1e-6
    assert abs(res.metrics["funding"][0] - s.funding_paid) <= 1e-6
    assert bool(res.raw[0, 16]) == bool(s.kill_switch)
    eq = [(e.ts_ms, e.equity) for e in out.equity if e.ts_ms > data.ts[t0]]
    ts = np.array([e[0] for e in eq], np.int64)
    curve = np.array([e[1] for e in eq])
    dd = max_drawdown(np.r_[acct.capital_quote, curve])
    assert res.metrics["max_drawdown"][0] == pytest.approx(dd, abs=1e-9)
    ref = daily_sharpe(ts, curve)  # returns form; the sweep's is the running-sums form
    got = res.metrics["sharpe"][0]
    assert math.isnan(got) == math.isnan(ref), (got, ref)
    if math.isfinite(got):
        assert got == pytest.approx(ref, rel=1e-6, abs=1e-9)


def test_combinations_are_independent_of_their_batch(btc):
    """A combination's metrics do not depend on which other combinations share the call."""
    data, table = btc
    combos, _p, _ = expand_grid("grid_atr", {"atr_start": [0.5, 1.5, 3.0],
                                             "sl_pct": [0.02, 0.1], "side": ["long", "short"]},
                                {"levels": 3})
    acct = AccountConfig(risk=RiskConfig(max_margin_ratio=1.0))
    kw = {"start_ms": int(data.ts[40_000]), "end_ms": int(data.ts[50_000]), "table": table}
    together = run_sweep(data, acct, combos, FEES, MARKET, **kw)
    for i in (0, 5, 11):
        alone = run_sweep(data, acct, [combos[i]], FEES, MARKET, **kw)
        assert (alone.raw[0] == together.raw[i]).all()
