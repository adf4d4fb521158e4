"""The capital protections of issue 18 on hand-built candle paths, replay and live: the
time stop (``time_stop_candles``) and the per-asset exposure cap (``max_symbol_exposure``).
Exact orders, fill prices and denials, as the other engine tests."""

from __future__ import annotations

import pytest
from test_live_engine import H, SYM, fill, opened, upd, warm
from test_strategies_engine import BTC, assert_orders, candles, make_engine, run

from gridflow.config.live import LiveConfig
from gridflow.config.models import (
    AccountConfig,
    FeesConfig,
    GridAtrParams,
    MarketSpec,
    RiskConfig,
)
from gridflow.operators import kernel_layout as kl
from gridflow.operators.live_engine import LiveAccountEngine
from gridflow.operators.risk import time_stop_due
from test_engine import NOFEES, chunk


def _atr(**kw):
    base = {"sma_period": 2, "atr_period": 1, "levels": 3, "atr_start": 1.0, "atr_step": 1.0,
            "sl_pct": 0.5}
    return GridAtrParams(**{**base, **kw})


# ---------------------------------------------------------------------------- the rule
@pytest.mark.parametrize("open_ts, ts, n, due", [
    (1 * H, 2 * H, 1, True),  # held through its entry candle: due at the next open
    (1 * H, 2 * H, 2, False),
    (1 * H, 3 * H, 2, True),
    (1 * H + 59_000, 3 * H, 2, True),  # a live fill inside the candle counts from its open
    (1 * H + 59_000, 3 * H - 1, 2, False),
    (1 * H, 50 * H, 0, False),  # 0 = off
])
def test_time_stop_due_counts_candle_closes_from_the_entry_candle(open_ts, ts, n, due):
    assert time_stop_due(ts, open_ts, H, float(n)) is due


# ------------------------------------------------------------------------- time stop
def test_time_stop_closes_at_the_open_after_n_candles_at_market_with_taker_fee_and_slippage():
    fees = FeesConfig(maker_fee=0.0, taker_fee=0.001, slippage=0.002)
    eng = make_engine(_atr(levels=1, time_stop_candles=2), capital=900.0, fees=fees,
                      risk={"max_margin_ratio": 1.0})
    # c0 quotes L0 at 90 (SMA 100, ATR 10); c1 falls to 85: L0 fills at 90 (maker, free);
    # c2 stays between the stop (45) and the take profit (100); c3 opens at 93: the
    # position has been held through 2 closes (c1, c2) -> closed at c3's open, market.
    rows = [(100, 100, 100, 100), (100, 100, 85, 88), (88, 95, 86, 92), (93, 99, 92, 98),
            (98, 99, 97, 98)]
    out = run(eng, candles(BTC, rows, {"sma_2": 100, "atr_1": 10}))
    q = 10.0
    exit_px = 93 * (1 - 0.002)
    assert_orders([o for o in out.orders if o.tag != "L0" or o.ts_ms == 1 * H], [
        ("L0", "buy", "limit", 90.0, q),
        ("TIME", "sell", "market", 93.0, q),
    ])
    assert [(f.ts_ms, f.side) for f in out.fills] == [(1 * H, "buy"), (3 * H, "sell")]
    assert out.fills[1].price == pytest.approx(exit_px)
    (tr,) = out.trades
    assert tr.exit_reason == "TIME" and tr.open_ts_ms == 1 * H and tr.close_ts_ms == 3 * H
    assert tr.fees == pytest.approx(q * exit_px * 0.001)
    assert tr.pnl == pytest.approx(q * (exit_px - 90) - q * exit_px * 0.001)
    assert eng.summary().counters["exits_TIME"] == 1
    # re-armed at the next candle, never within the one it closed in: c4 (low 97)
    # cannot reach the new 90 level, so nothing more trades
    assert eng.state.si[0, kl.SI_SIDE] == 0


def test_time_stop_off_keeps_the_same_position_open():
    eng = make_engine(_atr(levels=1), capital=900.0, risk={"max_margin_ratio": 1.0})
    rows = [(100, 100, 100, 100), (100, 100, 85, 88), (88, 95, 86, 92), (93, 99, 92, 98),
            (98, 99, 97, 98)]
    out = run(eng, candles(BTC, rows, {"sma_2": 100, "atr_1": 10}))
    assert not out.trades and eng.state.sf[0, kl.SF_AMT] == pytest.approx(10.0)


def test_take_profit_reached_before_the_time_stop_wins():
    eng = make_engine(_atr(levels=1, time_stop_candles=2), capital=900.0,
                      risk={"max_margin_ratio": 1.0})
    rows = [(100, 100, 100, 100), (100, 100, 85, 88), (88, 101, 86, 92), (93, 99, 92, 98)]
    out = run(eng, candles(BTC, rows, {"sma_2": 100, "atr_1": 10}))
    (tr,) = out.trades
    assert tr.exit_reason == "TP" and tr.close_ts_ms == 2 * H


# --------------------------------------------------------------- per-asset exposure cap
def test_symbol_exposure_cap_denies_the_level_that_would_exceed_it_and_journals_why():
    # 3000 capital, 3 levels of 1000 notional; cap 0.5 x equity = about 1500 of notional
    eng = make_engine(_atr(), risk={"max_symbol_exposure": 0.5, "max_margin_ratio": 1.0})
    rows = [(100, 100, 100, 100), (100, 100, 75, 76)]
    out = run(eng, candles(BTC, rows, {"sma_2": 100, "atr_1": 10}))
    q0 = 1000 / 90
    assert [(o.tag, o.price) for o in out.orders] == [("L0", 90.0)]
    (d,) = [e for e in out.events if e.kind == "order_denied"]
    assert d.reason == "SYMBOL_EXPOSURE" and d.detail["level"] == 1
    equity = 3000 + q0 * (80 - 90)  # marked at the level's price when the path reaches it
    assert d.detail["symbol_exposure_after"] == pytest.approx((1000 + 1000) / equity)
    assert d.detail["max_symbol_exposure"] == 0.5
    assert eng.state.sf[0, kl.SF_AMT] == pytest.approx(q0)


def test_symbol_exposure_cap_is_per_symbol_not_account_wide():
    # two symbols, one level each of 1000 notional; the cap (0.4 x about 3000) admits
    # each symbol's entry although together they hold 2000
    eng = make_engine(_atr(levels=1), symbols=(BTC, "ETH/USDT"),
                      risk={"max_symbol_exposure": 0.4},
                      sizing={"mode": "fixed_notional", "notional_per_level_quote": 1000.0})
    rows = [(100, 100, 100, 100), (100, 100, 85, 86)]
    vals = {"sma_2": 100, "atr_1": 10}
    out = run(eng, candles(BTC, rows, vals), candles("ETH/USDT", rows, vals))
    assert sorted((o.symbol, o.tag) for o in out.orders) == [("BTC/USDT", "L0"),
                                                              ("ETH/USDT", "L0")]
    assert not [e for e in out.events if e.kind == "order_denied"]


# ------------------------------------------------------------------------------- live
def _live(strategy, risk):
    acct = AccountConfig(name="t", capital_quote=3000.0, symbols=(SYM,), strategy=strategy,
                         risk=RiskConfig(**risk))
    return LiveAccountEngine(acct, [SYM], {SYM: "1h"}, NOFEES,
                             {SYM: MarketSpec(amount_step=0.001, price_tick=0.1,
                                              min_notional=5.0)}, live=LiveConfig())


def _start(eng):
    eng.on_chunk(warm(chunk(SYM, [(100, 101, 99, 100)], 100.0, 10.0)))
    eng.on_chunk(chunk(SYM, [(100, 101, 99, 100)], 100.0, 10.0, start=1))
    return eng.on_exchange(upd(2 * H, positions={}))


def test_live_exposure_cap_counts_the_symbols_resting_entries():
    """Live, every level rests at once: the cap counts the levels already approved at
    this close, so the second (1000 + 1000 > 0.5 x 3000) is denied before it is sent."""
    out = _start(_live(_atr(), {"max_symbol_exposure": 0.5, "max_margin_ratio": 1.0}))
    assert [(i.tag, i.price) for i in opened(out.intents)] == [("L0", 90.0)]
    denied = [e for e in out.events if e.kind == "order_denied"]
    assert [(e.reason, e.detail["level"]) for e in denied] == [
        ("SYMBOL_EXPOSURE", 1), ("SYMBOL_EXPOSURE", 2)]
    assert denied[0].detail["symbol_exposure_after"] == pytest.approx(
        (11.111 * 90 + 12.5 * 80) / 3000)


def _pos(amount):
    return {SYM: {"amount": amount, "entry_price": 90.0}}


def test_live_time_stop_sends_a_reduce_only_market_close_at_the_due_close():
    eng = _live(_atr(levels=1, time_stop_candles=2), {"max_margin_ratio": 1.0})
    (l0,) = opened(_start(eng).intents)[:1]
    # L0 fills inside candle 2 (opened at 2 H); the closes of candles 2 and 3 follow
    out = eng.on_exchange(upd(2 * H + 60_000, [fill(l0.client_order_id, "buy", 90.0, l0.amount,
                                                      2 * H + 30_000, "f1")]))
    assert not [i for i in out.intents if i.tag == "TIME"]
    eng.on_chunk(chunk(SYM, [(90, 95, 88, 92)], 100.0, 10.0, start=2))
    out = eng.on_exchange(upd(3 * H + 1, positions=_pos(l0.amount)))
    assert not [i for i in out.intents if i.tag == "TIME"]  # held through 1 close
    eng.on_chunk(chunk(SYM, [(92, 96, 91, 93)], 100.0, 10.0, start=3))
    out = eng.on_exchange(upd(4 * H + 1, positions=_pos(l0.amount)))
    (tm,) = [i for i in out.intents if i.tag == "TIME"]
    assert (tm.action, tm.side, tm.type, tm.amount, tm.reduce_only, tm.ts_ms) == (
        "place", "sell", "market", l0.amount, True, 4 * H)
    assert "TP" in {i.tag for i in out.intents if i.action == "cancel"}
    assert "L0" not in {i.tag for i in out.intents if i.action == "place"}
    # the exchange fills it: the cycle ends as TIME
    out = eng.on_exchange(upd(4 * H + 5_000, [fill(tm.client_order_id, "sell", 93.0,
                                                     l0.amount, 4 * H + 2_000, "f2")]))
    (tr,) = out.trades
    assert tr.exit_reason == "TIME"
