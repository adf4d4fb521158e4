"""The sweep engine equals the replay dataflow, combination by combination.

For each strategy (the funding grid on BTC's real funding rates) and a sixth case with
the options of issue 18 on (time stop, k x ATR stop, entry filters, regime filter,
per-asset exposure cap), 50 random parameter combinations (seeded) run two ways on the
bundled real BTC/USDT 1h candles with BTC perpetual funding: as 50 accounts of **one Bytewax
replay** (the journal's trades and final equity), and through :func:`run_sweep`. The
round trips must be the same (times, side, entries, amounts, prices, exit reason; PnL,
fees and funding of each to 1e-6 USDT) and the net PnL equal to 1e-6 USDT. The accounts use
different sizing modes, leverage and risk limits (default limits for grid ATR, so kill
switches trip and the frozen-account path is exercised), Binance tick / step / minimum
notional, and a window whose indicators warm up on the three months before it.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from bytewax.testing import run_main

from gridflow.config.models import (
    AccountConfig,
    DataFile,
    FeesConfig,
    FundingFile,
    MarketSpec,
    RiskConfig,
    SizingConfig,
)
from gridflow.config.strategies import (
    EnvelopeDcaParams,
    GridAtrParams,
    GridFundingParams,
    GridMultiTfParams,
    GridTrendParams,
)
from gridflow.data import bundled_candle_files
from gridflow.data.funding import bundled_funding_files
from gridflow.dataflows.replay import build
from gridflow.journal.store import read_events, read_summaries, read_trades
from gridflow.sweep import IndicatorTable, SweepData, run_sweep

SYMBOL = "BTC/USDT"
FIRST, START, END = "2023-09-01", "2024-01-01", "2024-04-15"
N = 50
FEES = FeesConfig(maker_fee=0.0002, taker_fee=0.0005, slippage=0.0005)
MARKET = MarketSpec(amount_step=0.00001, price_tick=0.01, min_notional=5.0)
RELAXED = RiskConfig(max_margin_ratio=1.0, session_loss_grid=0.6, session_loss_single=0.6,
                     daily_loss_limit=0.2, rolling_drawdown_pct=0.5, max_drawdown_pct=0.7,
                     cooldown_candles=3)
# the daily-entries rule on: at most one (two) new positions per UTC day
DAILY_1 = RELAXED.model_copy(update={"max_daily_entries": 1})
DAILY_2 = RELAXED.model_copy(update={"max_daily_entries": 2})


def _ms(iso: str) -> int:
    return int(np.datetime64(iso, "ms").astype(np.int64))


def _grid_atr(rng):
    return GridAtrParams(side=rng.choice(["long", "short"]), sma_period=int(rng.integers(5, 100)),
                         atr_period=int(rng.integers(3, 50)), levels=int(rng.integers(1, 6)),
                         atr_start=round(float(rng.uniform(0.2, 3.0)), 2),
                         atr_step=round(float(rng.uniform(0.0, 1.5)), 2),
                         sl_pct=round(float(rng.uniform(0.01, 0.25)), 3))


def _envelope(rng):
    k = int(rng.integers(1, 5))
    offs = np.sort(rng.choice(np.arange(3, 150), size=k, replace=False)) / 1000.0
    return EnvelopeDcaParams(side=rng.choice(["long", "short"]),
                             sma_period=int(rng.integers(5, 100)),
                             offsets=tuple(float(x) for x in offs),
                             sl_pct=round(float(rng.uniform(0.01, 0.25)), 3))


def _multi_tf(rng):
    return GridMultiTfParams(htf=rng.choice(["4h", "8h", "12h", "1d"]),
                             supertrend_period=int(rng.integers(3, 20)),
                             supertrend_multiplier=round(float(rng.uniform(1.0, 5.0)), 2),
                             sma_period=int(rng.integers(5, 100)),
                             atr_period=int(rng.integers(3, 50)), levels=int(rng.integers(1, 6)),
                             atr_start=round(float(rng.uniform(0.2, 3.0)), 2),
                             atr_step=round(float(rng.uniform(0.0, 1.5)), 2),
                             sl_pct=round(float(rng.uniform(0.01, 0.25)), 3))


def _trend(rng):
    fast = int(rng.integers(3, 40))
    return GridTrendParams(ema_fast=fast, ema_slow=fast + int(rng.integers(2, 120)),
                           adx_period=int(rng.integers(5, 30)),
                           adx_threshold=round(float(rng.uniform(5.0, 40.0)), 1),
                           atr_period=int(rng.integers(3, 50)), levels=int(rng.integers(1, 5)),
                           atr_start=round(float(rng.uniform(0.0, 2.0)), 2),
                           atr_step=round(float(rng.uniform(0.0, 1.5)), 2),
                           trail_atr=round(float(rng.uniform(0.5, 6.0)), 2),
                           sl_pct=round(float(rng.uniform(0.01, 0.25)), 3))


def _funding(rng):
    entry = round(float(rng.uniform(0.00005, 0.0004)), 6)
    return GridFundingParams(sma_period=int(rng.integers(5, 100)),
                             atr_period=int(rng.integers(3, 50)), levels=int(rng.integers(1, 5)),
                             atr_start=round(float(rng.uniform(0.2, 3.0)), 2),
                             atr_step=round(float(rng.uniform(0.0, 1.5)), 2),
                             entry_rate=entry,
                             exit_rate=round(entry * float(rng.uniform(0.0, 0.9)), 7),
                             sl_frac=round(float(rng.uniform(0.01, 0.25)), 3))


def _entry_filter(rng):
    f = {}
    if rng.random() < 0.6:
        f["rsi_band"] = (float(rng.integers(15, 45)), float(rng.integers(55, 90)))
        f["rsi_period"] = int(rng.integers(5, 30))
    if rng.random() < 0.5:
        w = float(rng.uniform(0.8, 2.5))
        f["hvz_band"] = (-w, w)
        f["hv_window"], f["hvz_window"] = int(rng.integers(12, 72)), int(rng.integers(24, 300))
    if rng.random() < 0.4 or not f:
        f["macd_hist_min"] = float(rng.uniform(-60.0, 20.0))
    return f


def _regime_filter(rng):
    blocked = [r for r in ("crash", "bull", "bear", "range") if rng.random() < 0.35]
    blocked = [r for r in blocked if r != "bull"] if len(blocked) == 4 else blocked or ["bear"]
    return {"window": int(rng.integers(24, 720)), **{r: "block" for r in blocked}}


def _options(rng):
    """Grid ATR and envelope DCA with the options of issue 18 on: a time stop (or
    none), a k x ATR stop, entry filters, a regime filter, under a per-asset exposure cap
    (the template's risk)."""
    p = _grid_atr(rng) if rng.random() < 0.6 else _envelope(rng)
    ts = int(rng.integers(2, 80)) if rng.random() < 0.8 else 0
    doc = {**p.model_dump(), "time_stop_candles": ts}
    if rng.random() < 0.5:
        doc.update(sl_atr=round(float(rng.uniform(0.5, 8.0)), 2),
                   sl_atr_period=int(rng.integers(5, 50)))
    if rng.random() < 0.7:
        doc["entry_filter"] = _entry_filter(rng)
    if rng.random() < 0.6:
        doc["regime_filter"] = _regime_filter(rng)
    return type(p).model_validate(doc)


# strategy -> (parameter draw, account template: leverage, risk, sizing)
CASES = {
    "grid_atr": (_grid_atr, 2.0, RiskConfig(), SizingConfig(mode="equal")),
    "envelope_dca": (_envelope, 1.0, DAILY_1, SizingConfig(mode="fixed_notional",
                                                           notional_per_level_quote=900.0)),
    "grid_multi_tf": (_multi_tf, 3.0, RELAXED, SizingConfig(mode="risk", risk_per_trade=0.02)),
    "grid_trend": (_trend, 2.0, DAILY_2, SizingConfig(mode="vol_parity", vol_window=48)),
    "grid_funding": (_funding, 2.0, RELAXED, SizingConfig(mode="equal")),
    "options": (_options, 2.0, RELAXED.model_copy(update={"max_symbol_exposure": 1.0}),
                SizingConfig(mode="equal")),
}


def _account(name: str, p, leverage, risk, sizing) -> AccountConfig:
    return AccountConfig(name=name, capital_quote=10_000.0, leverage=leverage,
                         symbols=(SYMBOL,), strategies=(p,), risk=risk, sizing=sizing)


@pytest.fixture(scope="module")
def parity(tmp_path_factory):
    """Run the 4 x 50 accounts through one replay and through the sweep engine."""
    rng = np.random.default_rng(20261121)
    btc = next(p for p in bundled_candle_files() if p.name.startswith("binance_BTC_USDT_1h"))
    funding = bundled_funding_files()[SYMBOL]
    data = SweepData.from_file(btc, funding=funding)
    first, t0 = data.index(_ms(FIRST), 0), data.index(_ms(START), 0)
    combos = {s: [draw(rng) for _ in range(N)] for s, (draw, *_rest) in CASES.items()}
    accounts = [_account(f"{s[:6]}{i:02d}", p, *CASES[s][1:])
                for s in CASES for i, p in enumerate(combos[s])]
    db = f"sqlite:///{tmp_path_factory.mktemp('parity')}/parity.db"
    run_main(build(None, db_url=db, run_id="parity", data=[DataFile(path=str(btc))],
                   funding=[FundingFile(path=str(funding))], fees=FEES,
                   markets={SYMBOL: MARKET}, accounts=accounts, start_ms=START, end_ms=END,
                   warmup_candles=t0 - first, equity_every_ms=3_600_000))
    summaries = {r["account"]: r for r in read_summaries(db, "parity")}
    events = read_events(db, "parity")
    daily = {e["account"] for e in events
             if e["kind"] == "order_denied" and e["reason"] == "DAILY_ENTRIES"}
    capped = {e["account"] for e in events
              if e["kind"] == "order_denied" and e["reason"] == "SYMBOL_EXPOSURE"}
    trades = defaultdict(list)
    for r in read_trades(db, "parity"):
        trades[r["account"]].append(r)
    table = IndicatorTable(data, first)
    swept = {}
    for s, (_draw, lev, risk, sizing) in CASES.items():
        acct = _account("sweep", combos[s][0], lev, risk, sizing)
        swept[s] = run_sweep(data, acct, combos[s], FEES, MARKET, start_ms=_ms(START),
                             end_ms=_ms(END), first=first, table=table, trades=True)
    return combos, summaries, trades, swept, daily, capped


@pytest.mark.parametrize("strategy", list(CASES))
def test_sweep_equals_replay_trades_and_net_pnl(parity, strategy):
    combos, summaries, trades, swept, _daily, _capped = parity
    res = swept[strategy]
    traded = 0
    for i in range(N):
        name = f"{strategy[:6]}{i:02d}"
        s = summaries[name]
        replay_pnl = s["equity"] - s["initial_capital"]
        assert res.metrics["trades"][i] == len(trades[name]), (name, combos[strategy][i])
        ours = res.trades[i]
        theirs = sorted(trades[name], key=lambda r: r["open_ts_ms"])
        for a, b in zip(ours, theirs):  # every round trip, field by field
            for key in ("open_ts_ms", "close_ts_ms", "position_side", "entries",
                        "exit_reason"):
                assert a[key] == b[key], (name, key, a, b)
            for key in ("amount", "avg_entry", "exit_price"):
                assert a[key] == pytest.approx(b[key], rel=1e-12), (name, key, a, b)
            for key in ("pnl", "fees", "funding"):
                assert abs(a[key] - b[key]) <= 1e-6, (name, key, a, b)
        assert abs(res.metrics["net_pnl"][i] - replay_pnl) <= 1e-6, (
            name, combos[strategy][i], res.metrics["net_pnl"][i], replay_pnl)
        assert abs(res.metrics["fees"][i] - s["fees_paid"]) <= 1e-6
        assert abs(res.metrics["funding"][i] - s["funding_paid"]) <= 1e-6
        traded += len(trades[name]) > 0
    # the comparison is not vacuous: most combinations trade, and the exact path is used
    assert traded >= N * 0.6, traded
    assert res.raw[:, 15].sum() > 0


def test_parity_exercises_funding_kill_switches_and_the_daily_entry_rule(parity):
    _combos, summaries, trades, swept, daily, _capped = parity
    # the daily-entries rule refused new positions in accounts of both strategies using it
    assert {n[:6] for n in daily} == {"envelo", "grid_t"}, daily
    assert any(abs(s["funding_paid"]) > 0 for s in summaries.values())
    assert any(s["kill_switch"] for s in summaries.values())
    assert (swept["grid_atr"].raw[:, 16] > 0).sum() == sum(
        1 for n, s in summaries.items() if n.startswith("grid_a") and s["kill_switch"])


def test_parity_exercises_the_time_stop_the_filters_and_the_exposure_cap(parity):
    combos, _summaries, trades, swept, _daily, capped = parity
    opts = combos["options"]
    assert sum(p.entry_filter is not None for p in opts) >= 25
    assert sum(p.sl_atr > 0 for p in opts) >= 15
    assert sum(p.regime_filter is not None and bool(p.regime_filter.blocked)
               for p in opts) >= 15
    # filtered combinations trade (the gate is not shut for good)
    assert sum(bool(trades[f"option{i:02d}"]) for i, p in enumerate(opts)
               if p.entry_filter is not None or p.regime_filter is not None) >= 20
    timed = {n for n, rows in trades.items() if any(r["exit_reason"] == "TIME" for r in rows)}
    assert len({n for n in timed if n.startswith("option")}) >= 10, timed
    assert len({n for n in capped if n.startswith("option")}) >= 10, capped
    assert not {n for n in timed | capped if not n.startswith("option")}


def test_parity_exercises_the_funding_grid_and_its_exit_signal(parity):
    """BTC's funding stayed positive over the window: the funding grids trade short
    (the long side is covered on hand-built paths, tests/operators/test_protections.py)."""
    _combos, _summaries, trades, _swept, _daily, _capped = parity
    rows = [r for n, rs in trades.items() if n.startswith("grid_f") for r in rs]
    assert {r["exit_reason"] for r in rows} >= {"SIGNAL", "TP"}, {r["exit_reason"] for r in rows}
    assert "short" in {r["position_side"] for r in rows}
    assert len({n for n, rs in trades.items() if n.startswith("grid_f") and rs}) >= 25
