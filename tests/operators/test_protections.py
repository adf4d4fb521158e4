"""The capital protections of issue 18 on hand-built candle paths, replay and live: the
time stop (``time_stop_candles``) and the per-asset exposure cap (``max_symbol_exposure``).
Exact orders, fill prices and denials, as the other engine tests."""

from __future__ import annotations

import numpy as np
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


# ------------------------------------------------------------- entry and regime filters
DIP = [(100, 100, 100, 100), (100, 100, 85, 88), (92, 95, 78, 92), (92, 101, 91, 100)]


def _filtered(values, **filters):
    eng = make_engine(_atr(levels=1, **filters), capital=900.0, risk={"max_margin_ratio": 1.0})
    return eng, run(eng, candles(BTC, DIP, {"sma_2": 100, "atr_1": 10, **values}))


def test_rsi_filter_blocks_the_entries_quoted_at_a_close_outside_its_band():
    # c0's RSI 25 (< 30): no level rests in c1, whose dip to 85 fills nothing; c1's RSI
    # 45 opens the gate: L0 rests in c2 and fills at 90; the TP at 100 closes it in c3
    eng, out = _filtered({"rsi_14": [25, 45, 45, 45]}, entry_filter={"rsi_band": (30, 70)})
    assert_orders(out.orders, [("L0", "buy", "limit", 90.0, 10.0),
                               ("TP", "sell", "limit", 100.0, 10.0)])
    assert [f.ts_ms for f in out.fills] == [2 * H, 3 * H]
    assert not [e for e in out.events if e.kind == "order_denied"]  # not a risk denial


@pytest.mark.parametrize("filters, values, fills_at", [
    # RSI bounds are included
    ({"rsi_band": (30, 70)}, {"rsi_14": 30.0}, 1 * H),
    ({"rsi_band": (30, 70)}, {"rsi_14": 70.000001}, None),
    # HV z-score strictly inside (-1.5, 1.5)
    ({"hvz_band": (-1.5, 1.5)}, {"hvz_24_168": 1.4999}, 1 * H),
    ({"hvz_band": (-1.5, 1.5)}, {"hvz_24_168": -1.5}, None),
    # MACD histogram strictly above the floor
    ({"macd_hist_min": 0.0}, {"macd_12_26_9.hist": 0.5}, 1 * H),
    ({"macd_hist_min": 0.0}, {"macd_12_26_9.hist": 0.0}, None),
    # every filter set must pass; a NaN (warm-up) blocks
    ({"rsi_band": (30, 70), "macd_hist_min": 0.0},
     {"rsi_14": 50.0, "macd_12_26_9.hist": -1.0}, None),
    ({"rsi_band": (30, 70)}, {"rsi_14": float("nan")}, None),
])
def test_entry_filter_thresholds(filters, values, fills_at):
    _eng, out = _filtered(values, entry_filter=filters)
    entries = [f.ts_ms for f in out.fills if f.side == "buy"]
    assert entries == ([] if fills_at is None else [fills_at])


@pytest.mark.parametrize("code, blocked", [(0.0, True), (1.0, False), (2.0, True), (3.0, False),
                                           (float("nan"), True)])
def test_regime_filter_blocks_entries_in_the_blocked_regimes_and_while_unknown(code, blocked):
    _eng, out = _filtered({"regime_720": code},
                          regime_filter={"crash": "block", "bear": "block"})
    assert bool([f for f in out.fills if f.side == "buy"]) is not blocked


def test_a_closed_gate_keeps_the_take_profit_and_the_stop_of_an_open_position():
    # gate open at c0 (L0 fills in c1 at 90), closed from c1 on (bear): no new level,
    # but the position still closes at its take profit (100) in c3; c2's dip to 78 takes
    # no level 1 (80)
    eng = make_engine(_atr(levels=2, regime_filter={"bear": "block"}), capital=900.0,
                      risk={"max_margin_ratio": 1.0})
    out = run(eng, candles(BTC, DIP, {"sma_2": 100, "atr_1": 10, "regime_720": [3, 2, 2, 2]}))
    assert [(f.ts_ms, f.side, f.price) for f in out.fills] == [(1 * H, "buy", 90.0),
                                                               (3 * H, "sell", 100.0)]
    (tr,) = out.trades
    assert tr.exit_reason == "TP" and tr.entries == 1


def test_live_closed_gate_sends_no_entry_but_protects_the_position():
    eng = _live(_atr(levels=2, entry_filter={"rsi_band": (30, 70)}), {"max_margin_ratio": 1.0})
    eng.on_chunk(warm(_rsi_chunk([(100, 101, 99, 100)], 50.0, 0)))
    eng.on_chunk(_rsi_chunk([(100, 101, 99, 100)], 50.0, 1))
    out = eng.on_exchange(upd(2 * H, positions={}))
    (l0, l1) = opened(out.intents)
    out = eng.on_exchange(upd(2 * H + 60_000, [fill(l0.client_order_id, "buy", 90.0, l0.amount,
                                                      2 * H + 30_000, "f1")]))
    # candle 2 closes with RSI 80: the gate closes; L1 is cancelled, TP and SL stay
    eng.on_chunk(_rsi_chunk([(90, 95, 88, 92)], 80.0, 2))
    out = eng.on_exchange(upd(3 * H + 1, positions=_pos(l0.amount)))
    assert not [i for i in out.intents if i.action == "place" and i.tag.startswith("L")]
    assert [i.tag for i in out.intents if i.action == "cancel"] == ["L1"]
    assert {"TP", "SL"} <= {w.slot for w in eng.book.live()}


def _rsi_chunk(rows, rsi, start):
    c = chunk(SYM, rows, 100.0, 10.0, start=start)
    c.values["rsi_14"] = np.full(len(rows), rsi)
    return c


# ---------------------------------------------------------- snapshots of earlier versions
def test_an_engine_pickled_before_the_new_columns_loads_widened_and_trades_the_same():
    """A Bytewax snapshot of an engine from before issue 18 has a 17-column account
    parameter vector and 7-column market parameters: loaded now, they are widened with
    the new rules off, and the engine decides exactly as a fresh one."""
    import pickle

    rows = [(100, 100, 100, 100), (100, 100, 75, 76), (76, 101, 76, 100)]
    vals = {"sma_2": [100, 98, 98], "atr_1": 10}
    fresh = make_engine(_atr())
    old = make_engine(_atr())
    old.pf = old.pf[:17].copy()
    old.mp = old.mp[:, :7].copy()
    loaded = pickle.loads(pickle.dumps(old))
    assert loaded.pf.shape == (kl.P_W,) and loaded.mp.shape == (1, kl.M_W)
    assert loaded.pf[kl.P_MAX_SYM] == 0.0 and loaded.mp[0, kl.M_TIME_STOP] == 0.0
    a = run(fresh, candles(BTC, rows, vals))
    b = run(loaded, candles(BTC, rows, vals))
    assert [o.model_dump() for o in a.orders] == [o.model_dump() for o in b.orders]
    assert [t.model_dump() for t in a.trades] == [t.model_dump() for t in b.trades]
    newer = make_engine(_atr())
    newer.pf = np.zeros(kl.P_W + 1)
    with pytest.raises(ValueError, match="newer gridflow"):
        pickle.loads(pickle.dumps(newer))


# ------------------------------------------------------------------- k x ATR initial stop
def test_atr_stop_is_k_atrs_of_the_opening_close_below_the_average_and_fixed_for_the_cycle():
    fees = FeesConfig(maker_fee=0.0, taker_fee=0.001, slippage=0.002)
    eng = make_engine(_atr(levels=1, sl_atr=2.0, sl_atr_period=1), capital=900.0, fees=fees,
                      risk={"max_margin_ratio": 1.0})
    # c0 (ATR 10) quotes L0 at 90 and an ATR stop distance of 2 x 10 = 20; c1 fills L0
    # at 90: stop = max(90 x 0.5, 90 - 20) = 70. c1's ATR is 30, but the cycle keeps 20.
    # c2 falls to 65: stopped at 70 (stop-market: taker fee and slippage).
    rows = [(100, 100, 100, 100), (100, 100, 85, 88), (88, 89, 65, 66)]
    out = run(eng, candles(BTC, rows, {"sma_2": 100, "atr_1": [10, 30, 30]}))
    (tr,) = out.trades
    px = 70 * (1 - 0.002)
    assert tr.exit_reason == "SL" and out.fills[-1].price == pytest.approx(px)
    assert [(o.tag, o.type, o.price) for o in out.orders][-1] == ("SL", "stop_market", 70.0)
    assert tr.pnl == pytest.approx(10 * (px - 90) - 10 * px * 0.001)


def test_atr_stop_follows_the_average_entry_and_the_pct_stop_wins_when_tighter():
    # sl_frac 0.15, 2 x ATR 10: after L0 (90) the stop is max(76.5, 70) = 76.5, so L1
    # (80) fills first; average 2000 / (q0 + q1): the % stop avg x 0.85 beats avg - 20
    eng = make_engine(_atr(levels=2, sl_atr=2.0, sl_atr_period=1, sl_pct=0.15),
                      capital=2000.0, risk={"max_margin_ratio": 1.0},
                      sizing={"mode": "fixed_notional", "notional_per_level_quote": 800.0})
    rows = [(100, 100, 100, 100), (100, 100, 79, 85), (85, 86, 60, 61)]
    out = run(eng, candles(BTC, rows, {"sma_2": 100, "atr_1": 10}))
    q0, q1 = 800 / 90, 800 / 80
    avg = 1600 / (q0 + q1)
    (tr,) = out.trades
    assert tr.entries == 2 and tr.avg_entry == pytest.approx(avg)
    assert out.orders[-1].tag == "SL" and out.orders[-1].price == pytest.approx(avg * 0.85)
    # one level, 1 x ATR: the ATR stop (90 - 10 = 80) is tighter than 76.5
    eng2 = make_engine(_atr(levels=1, sl_atr=1.0, sl_atr_period=1, sl_pct=0.15),
                       capital=1000.0, risk={"max_margin_ratio": 1.0})
    out2 = run(eng2, candles(BTC, rows, {"sma_2": 100, "atr_1": 10}))
    assert [(o.tag, o.price) for o in out2.orders] == [("L0", 90.0), ("SL", 80.0)]


def test_live_stop_order_is_the_atr_stop_of_the_opening_close():
    eng = _live(_atr(levels=1, sl_atr=2.0, sl_atr_period=1), {"max_margin_ratio": 1.0})
    (l0,) = opened(_start(eng).intents)[:1]
    out = eng.on_exchange(upd(2 * H + 60_000, [fill(l0.client_order_id, "buy", 90.0, l0.amount,
                                                      2 * H + 30_000, "f1")]))
    (sl,) = [i for i in out.intents if i.tag == "SL"]
    assert (sl.type, sl.stop_price) == ("stop_market", 70.0)  # 90 - 2 x ATR 10, not 45


def _drop_new_fields(m, names):
    """Make the pydantic model ``m`` look unpickled from an earlier version: the fields
    ``names`` absent from its instance dict."""
    for n in names:
        m.__dict__.pop(n, None)


def test_an_engine_whose_config_models_predate_the_new_fields_loads_and_trades_the_same():
    """A real snapshot of an earlier version holds config models without the fields
    added since (pydantic does not default them on unpickling): they are rebuilt."""
    import pickle

    rows = [(100, 100, 100, 100), (100, 100, 75, 76), (76, 101, 76, 100)]
    vals = {"sma_2": [100, 98, 98], "atr_1": 10}
    new_fields = ("time_stop_candles", "entry_filter", "regime_filter", "sl_atr",
                  "sl_atr_period")
    old = make_engine(_atr())
    for p in (*old.params.values(), *old.account.strategies):
        _drop_new_fields(p, new_fields)
    _drop_new_fields(old.account.risk, ("max_symbol_exposure",))
    with pytest.raises(AttributeError):
        old.params[BTC].entry_filter  # what a resumed engine hit before the rebuild
    loaded = pickle.loads(pickle.dumps(old))
    assert loaded.params[BTC].entry_filter is None and loaded.account.risk.max_symbol_exposure == 0
    a = run(make_engine(_atr()), candles(BTC, rows, vals))
    b = run(loaded, candles(BTC, rows, vals))
    assert [t.model_dump() for t in a.trades] == [t.model_dump() for t in b.trades]
    current = make_engine(_atr())
    same = pickle.loads(pickle.dumps(current))
    assert same.params[BTC] == current.params[BTC]


def test_live_time_stop_leaves_a_position_below_the_exchange_minimum_alone():
    acct = AccountConfig(name="t", capital_quote=3000.0, symbols=(SYM,),
                         strategy=_atr(levels=1, time_stop_candles=1),
                         risk=RiskConfig(max_margin_ratio=1.0))
    eng = LiveAccountEngine(acct, [SYM], {SYM: "1h"}, NOFEES,
                            {SYM: MarketSpec(amount_step=0.001, price_tick=0.1,
                                             min_amount=0.01, min_notional=0.0)},
                            live=LiveConfig())
    (l0,) = opened(_start(eng).intents)[:1]
    eng.on_exchange(upd(2 * H + 60_000, [fill(l0.client_order_id, "buy", 90.0, 0.005,
                                                2 * H + 30_000, "f1")]))
    for k in (2, 3, 4):  # the time stop is due at every close from the first
        eng.on_chunk(chunk(SYM, [(90, 95, 88, 92)], 100.0, 10.0, start=k))
        out = eng.on_exchange(upd((k + 1) * H + 1, positions={
            SYM: {"amount": 0.005, "entry_price": 90.0}}))
        assert not [i for i in out.intents if i.tag == "TIME"], k


@pytest.mark.parametrize("bad, match", [
    ({"regime_filter": {"window": 100}}, "blocks no regime"),
    ({"regime_filter": {r: "block" for r in ("crash", "bull", "bear", "range")}},
     "blocks every regime"),
    ({"regime_filter": {"window": 6000, "bear": "block"}}, "5000"),
    ({"entry_filter": {"macd_hist_min": 0.0, "macd": (12, 10**9, 9)}}, "macd"),
    ({"entry_filter": {}}, "at least one"),
    ({"entry_filter": {"rsi_band": (70, 30)}}, "lower bound"),
    ({"entry_filter": {"rsi_band": (-5, 70)}}, "0..100"),
])
def test_filter_tables_refuse_what_would_silently_misbehave(bad, match):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=match):
        GridAtrParams(**bad)
