"""Each strategy through the account engine on hand-built candle paths.

Indicator values are chosen by hand (keys exactly as each strategy's
``*_indicators(params)`` names them), so every level, fill, exit and PnL below is
computed in the test. Timing: quotes decided at the close of candle ``t`` rest during
candle ``t + 1``; a red candle travels open -> high -> low -> close, a green one
open -> low -> high -> close (see ``grid_kernel``).
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import indicator_chunk

from gridflow.chunks import JournalBatch
from gridflow.config.models import (
    AccountConfig,
    EnvelopeDcaParams,
    FeesConfig,
    GridAtrParams,
    GridMultiTfParams,
    GridTrendParams,
    RiskConfig,
    SizingConfig,
)
from gridflow.operators.engine import AccountEngine
from gridflow.operators.strategies import STRATEGIES

H = 3_600_000
BTC, ETH = "BTC/USDT", "ETH/USDT"
NOFEES = FeesConfig(maker_fee=0.0, taker_fee=0.0, slippage=0.0)
ST = "supertrend_10_3.0@4h.direction"  # GridMultiTfParams() defaults: period 10, x3, 4h
# a single-level strategy in ``equal`` sizing puts the symbol's whole allocation in one
# order: margin ratio 1.0, above the default cap of 0.7
FULL_MARGIN = {"max_margin_ratio": 1.0}


candles = indicator_chunk


def make_engine(*strategies, symbols=(BTC,), capital=3000.0, leverage=1.0, risk=None,
                sizing=None, fees=NOFEES):
    acct = AccountConfig(
        name="t", capital_quote=capital, leverage=leverage, symbols=tuple(symbols),
        strategies=tuple(strategies), risk=RiskConfig(**(risk or {})),
        sizing=SizingConfig(**(sizing or {})),
    )
    return AccountEngine(acct, list(symbols), {s: "1h" for s in symbols}, fees, {})


def run(eng, *chunks):
    out = JournalBatch()
    for c in chunks:
        out.extend(eng.on_chunk(c))
    out.extend(eng.flush())
    return out


def assert_orders(orders, expected):
    """``expected``: [(tag, side, type, price, amount)]; prices/amounts to 1e-9 relative."""
    got = [(o.tag, o.side, o.type, o.price, o.amount) for o in orders]
    assert len(got) == len(expected), got
    for g, e in zip(got, expected):
        assert g[:3] == e[:3], (got, expected)
        assert g[3] == pytest.approx(e[3], rel=1e-9), (got, expected)
        assert g[4] == pytest.approx(e[4], rel=1e-9), (got, expected)
    for o in orders:  # entries open, everything else only reduces
        assert o.reduce_only is (not o.tag.startswith("L"))


def test_indicator_keys_used_here_are_the_strategies_own():
    assert STRATEGIES["grid_atr"][0](GridAtrParams(sma_period=2, atr_period=1)) == [
        "sma_2", "atr_1"]
    assert STRATEGIES["envelope_dca"][0](EnvelopeDcaParams(sma_period=2)) == ["sma_2"]
    assert STRATEGIES["grid_multi_tf"][0](GridMultiTfParams()) == [
        ST.removesuffix(".direction"), "sma_24", "atr_14"]
    assert STRATEGIES["grid_trend"][0](GridTrendParams(ema_fast=2, ema_slow=3)) == [
        "ema_2", "ema_3", "adx_14", "atr_14"]


# ------------------------------------------------------------------------- grid ATR
def _atr(**kw):
    base = {"sma_period": 2, "atr_period": 1, "levels": 3, "atr_start": 1.0, "atr_step": 1.0,
            "sl_pct": 0.5}
    return GridAtrParams(**{**base, **kw})


def test_grid_atr_long_two_levels_then_take_profit_at_previous_sma():
    eng = make_engine(_atr())
    # candle 0 quotes (SMA 100, ATR 10): buys 90 / 80 / 70, TP 100.
    # candle 1 (red) falls to 75: L0 at 90 and L1 at 80; candle 1 quotes: SMA 98 -> TP 98.
    # candle 2 (green: open -> low -> high) rallies to 101: TP at 98, not at 100.
    rows = [(100, 100, 100, 100), (100, 100, 75, 76), (76, 101, 76, 100)]
    out = run(eng, candles(BTC, rows, {"sma_2": [100, 98, 98], "atr_1": 10}))
    q0, q1 = 1000 / 90, 1000 / 80  # 3000 capital / 1 symbol / 3 levels, leverage 1
    assert_orders(out.orders, [
        ("L0", "buy", "limit", 90.0, q0),
        ("L1", "buy", "limit", 80.0, q1),
        ("TP", "sell", "limit", 98.0, q0 + q1),
    ])
    assert [f.ts_ms for f in out.fills] == [1 * H, 1 * H, 2 * H]
    (tr,) = out.trades
    avg = 2000 / (q0 + q1)
    assert tr.position_side == "long" and tr.exit_reason == "TP" and tr.entries == 2
    assert tr.avg_entry == pytest.approx(avg)
    assert tr.pnl == pytest.approx((q0 + q1) * 98 - 2000)
    assert eng.equity() == pytest.approx(3000 + (q0 + q1) * 98 - 2000)
    assert not out.events  # nothing denied, no kill switch


def test_grid_atr_short_levels_above_sma_take_profit_at_sma():
    eng = make_engine(_atr(side="short"))
    # short levels SMA + ATR * (1 + i): 110 / 120 / 130, TP 100.
    # candle 1 green (open -> low -> high): the rise to 125 sells 110 and 120.
    # candle 2 red (open -> high -> low): the fall buys back at candle 1's SMA 102.
    rows = [(100, 100, 100, 100), (100, 125, 99, 124), (124, 124, 95, 96)]
    out = run(eng, candles(BTC, rows, {"sma_2": [100, 102, 102], "atr_1": 10}))
    q0, q1 = 1000 / 110, 1000 / 120
    assert_orders(out.orders, [
        ("L0", "sell", "limit", 110.0, q0),
        ("L1", "sell", "limit", 120.0, q1),
        ("TP", "buy", "limit", 102.0, q0 + q1),
    ])
    (tr,) = out.trades
    assert tr.position_side == "short" and tr.exit_reason == "TP"
    assert tr.pnl == pytest.approx(2000 - (q0 + q1) * 102)


def test_grid_atr_fees_are_charged_on_both_legs_of_the_trade():
    fees = FeesConfig(maker_fee=0.001, taker_fee=0.002, slippage=0.0)
    eng = make_engine(_atr(levels=1), capital=900.0, fees=fees, risk=FULL_MARGIN)
    rows = [(100, 100, 100, 100), (100, 100, 85, 86), (86, 101, 86, 100)]
    out = run(eng, candles(BTC, rows, {"sma_2": 100, "atr_1": 10}))
    assert_orders(out.orders, [("L0", "buy", "limit", 90.0, 10.0),
                               ("TP", "sell", "limit", 100.0, 10.0)])
    assert [f.fee for f in out.fills] == pytest.approx([0.9, 1.0])  # maker both
    (tr,) = out.trades
    assert tr.fees == pytest.approx(1.9)
    assert tr.pnl == pytest.approx(100.0 - 1.9)  # net of the fees of the cycle
    assert eng.equity() == pytest.approx(900 + 100 - 1.9)


# ---------------------------------------------------------------------- envelope DCA
def _env(**kw):
    base = {"sma_period": 2, "offsets": (0.02, 0.04, 0.10), "sl_pct": 0.05}
    return EnvelopeDcaParams(**{**base, **kw})


def test_envelope_dca_long_levels_and_take_profit():
    eng = make_engine(_env())
    # levels SMA * (1 - off): 98 / 96 / 90, TP at the SMA
    rows = [(100, 100, 100, 100), (100, 100, 95, 96), (96, 101, 96, 100.5)]
    out = run(eng, candles(BTC, rows, {"sma_2": [100, 99, 99]}))
    q0, q1 = 1000 / 98, 1000 / 96
    assert_orders(out.orders, [
        ("L0", "buy", "limit", 98.0, q0),
        ("L1", "buy", "limit", 96.0, q1),
        ("TP", "sell", "limit", 99.0, q0 + q1),
    ])
    (tr,) = out.trades
    assert tr.exit_reason == "TP" and tr.pnl == pytest.approx((q0 + q1) * 99 - 2000)


def test_envelope_dca_long_two_levels_then_stop_at_sl_pct_of_average_entry():
    eng = make_engine(_env())
    # candle 1: L0 98 and L1 96 fill (low 95); the stop avg * 0.95 ~ 92.14 is not reached.
    # candle 2 falls to 90: the stop (92.14) is met before L2 (90), so L2 never fills.
    rows = [(100, 100, 100, 100), (100, 100, 95, 96), (96, 96, 90, 91)]
    out = run(eng, candles(BTC, rows, {"sma_2": 100}))
    q0, q1 = 1000 / 98, 1000 / 96
    avg = (q0 * 98 + q1 * 96) / (q0 + q1)  # amount-weighted
    stop = avg * (1 - 0.05)
    assert_orders(out.orders, [
        ("L0", "buy", "limit", 98.0, q0),
        ("L1", "buy", "limit", 96.0, q1),
        ("SL", "sell", "stop_market", stop, q0 + q1),
    ])
    assert out.fills[-1].price == pytest.approx(stop) and out.fills[-1].ts_ms == 2 * H
    (tr,) = out.trades
    assert tr.exit_reason == "SL" and tr.entries == 2
    assert tr.avg_entry == pytest.approx(avg)
    assert tr.pnl == pytest.approx((q0 + q1) * (stop - avg))
    assert tr.pnl == pytest.approx(-0.05 * 2000)  # sl_pct of the 2000 invested


def test_envelope_dca_short_mirrored_levels_take_profit_and_stop():
    p = _env(side="short")
    # levels SMA / (1 - off): 102.0408 / 104.1667 / 111.11, TP at the SMA
    l0, l1, l2 = 100 / 0.98, 100 / 0.96, 100 / 0.90
    q0, q1 = 1000 / l0, 1000 / l1
    avg = 2000 / (q0 + q1)
    # take profit: candle 1 (green) rises to 105 and sells L0, L1; candle 2 (red) falls
    # through candle 1's SMA (101)
    eng = make_engine(p)
    rows = [(100, 100, 100, 100), (100, 105, 100, 104), (104, 104, 99, 99.5)]
    out = run(eng, candles(BTC, rows, {"sma_2": [100, 101, 101]}))
    assert_orders(out.orders, [
        ("L0", "sell", "limit", l0, q0),
        ("L1", "sell", "limit", l1, q1),
        ("TP", "buy", "limit", 101.0, q0 + q1),
    ])
    (tr,) = out.trades
    assert tr.position_side == "short" and tr.exit_reason == "TP"
    assert tr.pnl == pytest.approx(2000 - (q0 + q1) * 101)
    # stop: candle 2 (green) rises to 112; the stop avg * 1.05 ~ 108.25 comes before L2
    eng = make_engine(p)
    rows = [(100, 100, 100, 100), (100, 105, 100, 104), (104, 112, 104, 111)]
    out = run(eng, candles(BTC, rows, {"sma_2": 100}))
    stop = avg * 1.05
    assert l2 > stop
    assert_orders(out.orders, [
        ("L0", "sell", "limit", l0, q0),
        ("L1", "sell", "limit", l1, q1),
        ("SL", "buy", "stop_market", stop, q0 + q1),
    ])
    (tr,) = out.trades
    assert tr.exit_reason == "SL"
    assert tr.pnl == pytest.approx(-(q0 + q1) * (stop - avg))
    assert tr.pnl == pytest.approx(-100.0)


# ------------------------------------------------------------------ multi-timeframe
def test_grid_multi_tf_direction_flip_closes_at_next_open_then_quotes_short():
    p = GridMultiTfParams(levels=2, atr_start=1.0, atr_step=1.0, sl_pct=0.5)
    eng = make_engine(p, capital=2000.0)
    # candle 0: direction +1, SMA 100, ATR 10 -> buys 90 / 80.
    # candle 1 (red) dips to 85: L0 buys at 90; at its close the HTF direction turns -1.
    # candle 2: the long grid is closed at its open (87), market, reduce-only; nothing
    #           else happens in that candle (its high 112 does not sell the short level).
    # candle 3 (green): it opens at 111 above the short level SMA + ATR = 110: sold at 111.
    rows = [(100, 100, 100, 100), (100, 100, 85, 86), (87, 112, 86, 111),
            (111, 115, 111, 114)]
    vals = {ST: [1, -1, -1, -1], "sma_24": 100.0, "atr_14": 10.0}
    out = run(eng, candles(BTC, rows, vals))
    q = 1000 / 90
    assert_orders(out.orders, [
        ("L0", "buy", "limit", 90.0, q),
        ("FLIP", "sell", "market", 87.0, q),
        ("L0", "sell", "limit", 111.0, 1000 / 111),
    ])
    assert [f.ts_ms for f in out.fills] == [1 * H, 2 * H, 3 * H]
    # candle 3 opens at 111, already above the short level 110 quoted at candle 2's
    # close: the sell was marketable, so it fills at the open as a taker
    assert [f.liquidity for f in out.fills] == ["maker", "taker", "taker"]
    (tr,) = out.trades
    assert tr.position_side == "long" and tr.exit_reason == "FLIP"
    assert tr.exit_price == 87.0 and tr.pnl == pytest.approx(q * (87 - 90))
    assert eng.summary().counters["exits_FLIP"] == 1


def test_grid_multi_tf_short_level_fills_at_level_when_reached_from_below():
    p = GridMultiTfParams(levels=2, atr_start=1.0, atr_step=1.0, sl_pct=0.5)
    eng = make_engine(p, capital=2000.0)
    rows = [(100, 100, 100, 100), (100, 100, 85, 86), (87, 88, 86, 87), (87, 115, 86, 114)]
    vals = {ST: [1, -1, -1, -1], "sma_24": 100.0, "atr_14": 10.0}
    out = run(eng, candles(BTC, rows, vals))
    q = 1000 / 90
    assert_orders(out.orders, [
        ("L0", "buy", "limit", 90.0, q),
        ("FLIP", "sell", "market", 87.0, q),
        ("L0", "sell", "limit", 110.0, 1000 / 110),  # above the SMA (100 + 1 ATR)
    ])
    assert out.trades[0].exit_reason == "FLIP"


def test_grid_multi_tf_no_quotes_until_direction_known():
    p = GridMultiTfParams(levels=2, atr_start=1.0, atr_step=1.0)
    eng = make_engine(p, capital=2000.0)
    rows = [(100, 100, 100, 100), (100, 100, 70, 71)]
    out = run(eng, candles(BTC, rows, {ST: np.nan, "sma_24": 100.0, "atr_14": 10.0}))
    assert out.orders == [] and out.events == []


# ------------------------------------------------------------------------ trend grid
def _trend(**kw):
    base = {"ema_fast": 2, "ema_slow": 3, "adx_period": 14, "adx_threshold": 25.0,
            "atr_period": 14, "levels": 1, "atr_start": 0.5, "atr_step": 0.5, "trail_atr": 2.0,
            "sl_pct": 0.5}
    return GridTrendParams(**{**base, **kw})


def test_grid_trend_adx_gate_entry_and_trailing_stop():
    eng = make_engine(_trend(), capital=980.0, risk=FULL_MARGIN)
    # candle 0: fast 100 > slow 95 but ADX 20 < 25 -> side +1, level NaN.
    # candle 1 (red) crosses 98 (= 100 - 0.5 * 4): no entry, the level is NaN.
    #          At its close ADX 30 -> level 98, trail 2 * ATR 4 = 8.
    # candle 2 (red) dips to 97: buys at 98 (980 / 98 = 10). Best since entry 98 (close).
    # candle 3 (green) rises to 110: stop max(98 * 0.5, 98 - 8) = 90 not hit; best 110.
    #          At its close ATR 3 -> trail 6.
    # candle 4 (red) falls to 100: trailing stop 110 - 6 = 104 -> TRAIL at 104.
    rows = [(100, 100, 100, 100), (100, 100, 90, 91), (99, 99, 97, 98),
            (98, 110, 97.5, 109), (109, 109, 100, 101)]
    vals = {"ema_2": 100.0, "ema_3": 95.0, "adx_14.adx": [20, 30, 30, 30, 30],
            "atr_14": [4, 4, 4, 3, 3]}
    out = run(eng, candles(BTC, rows, vals))
    assert_orders(out.orders, [
        ("L0", "buy", "limit", 98.0, 10.0),
        ("SL", "sell", "stop_market", 104.0, 10.0),
    ])
    assert [f.ts_ms for f in out.fills] == [2 * H, 4 * H]
    (tr,) = out.trades
    assert tr.exit_reason == "TRAIL" and tr.pnl == pytest.approx(10 * (104 - 98))
    assert eng.summary().counters["exits_TRAIL"] == 1


def test_grid_trend_low_adx_keeps_position_but_blocks_new_entries():
    eng = make_engine(_trend(), capital=980.0, risk=FULL_MARGIN)
    # ADX drops under the threshold after the entry: the position stays (no exit),
    # and once flat nothing re-enters while ADX < 25 even though price crosses 98.
    rows = [(100, 100, 100, 100), (100, 100, 97, 97.5), (97.5, 99, 96.5, 97),
            (97, 97, 80, 81), (81, 99, 81, 98.5), (98.5, 98.5, 90, 91)]
    vals = {"ema_2": 100.0, "ema_3": 95.0, "adx_14.adx": [30, 10, 10, 10, 10, 10],
            "atr_14": 4.0}
    out = run(eng, candles(BTC, rows, vals))
    # candle 1 buys 10 at 98 (best 98, its close 97.5 is lower); candle 2 keeps it and
    # raises the best to its high 99; candle 3 falls to 80: trailing stop 99 - 8 = 91
    # (above the sl 98 * 0.5) -> TRAIL at 91
    assert_orders(out.orders, [
        ("L0", "buy", "limit", 98.0, 10.0),
        ("SL", "sell", "stop_market", 91.0, 10.0),
    ])
    assert out.trades[0].exit_reason == "TRAIL"
    assert out.trades[0].pnl == pytest.approx(10 * (91 - 98))


def test_grid_trend_side_flip_closes_at_next_open_then_enters_short():
    eng = make_engine(_trend(), capital=980.0, risk=FULL_MARGIN)
    # candle 1 buys 10 at 98; at its close fast 100 < slow 102 -> side -1,
    # short level 100 + 0.5 * 4 = 102. candle 2: FLIP at its open 98.5 (+5).
    # candle 3 (green) rises to 103: sells at 102 (notional 980 <= equity 985).
    rows = [(100, 100, 100, 100), (100, 100, 97, 97.5), (98.5, 99, 96.5, 97),
            (97, 103, 96.5, 102.5)]
    vals = {"ema_2": 100.0, "ema_3": [95, 102, 102, 102], "adx_14.adx": 30.0,
            "atr_14": 4.0}
    out = run(eng, candles(BTC, rows, vals))
    assert_orders(out.orders, [
        ("L0", "buy", "limit", 98.0, 10.0),
        ("FLIP", "sell", "market", 98.5, 10.0),
        ("L0", "sell", "limit", 102.0, 980 / 102),
    ])
    (tr,) = out.trades
    assert tr.exit_reason == "FLIP" and tr.pnl == pytest.approx(10 * (98.5 - 98))


# ------------------------------------------------------- allow-list and overrides
def test_allow_list_and_per_asset_override():
    p = _atr(levels=2, symbols=(BTC,), overrides={BTC: {"atr_start": 2.0}})
    eng = make_engine(p, symbols=(BTC, ETH), capital=2000.0)
    assert eng.symbols == [BTC]  # ETH is not allowed: not traded
    assert eng.params[BTC].atr_start == 2.0
    # base params would buy at 90; the BTC override puts L0 at 100 - 2 * 10 = 80, L1 70
    rows = [(100, 100, 100, 100), (100, 100, 85, 86), (86, 86, 75, 76)]
    vals = {"sma_2": 100, "atr_1": 10}
    eth = eng.on_chunk(candles(ETH, rows, vals))
    assert eth.orders == [] and eth.events == [] and eth.summaries == []
    out = run(eng, candles(BTC, rows, vals))
    # capital 2000 goes to BTC alone: 2000 / 2 levels = 1000 per level
    assert_orders(out.orders, [("L0", "buy", "limit", 80.0, 1000 / 80)])
    assert {o.symbol for o in out.orders} == {BTC}
    assert {f.symbol for f in out.fills} == {BTC}
