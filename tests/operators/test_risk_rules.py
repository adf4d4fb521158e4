"""Each risk rule and kill switch of the account engine on hand-built candle paths.

Hand-chosen indicator values (grid ATR: ``sma_2`` / ``atr_1``; levels at
``SMA - ATR * (atr_start + i * atr_step)``), zero fees, 1h candles from 1970-01-01 00:00
UTC, so every threshold crossing below is computed in the test. A red candle travels
open -> high -> low -> close, a green one open -> low -> high -> close.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from risk_helpers import (  # noqa: F401
    BTC,
    ETH,
    GRID_VALS,
    LOOSE,
    NOFEES,
    SOL,
    ST,
    H,
    atr_params,
    candles,
    entries,
    events,
    flat,
    make_engine,
    reset_cmd,
    run,
    switch_on,
)

from gridflow.config.models import (
    GridMultiTfParams,
)
from gridflow.events import Command
from gridflow.operators.risk import KILL_SWITCH_REASONS


# --------------------------------------------------------------------- daily loss
def test_daily_loss_trips_then_clears_at_utc_midnight_and_entries_resume():
    # capital 4000, 1000 per level, L0 90, L1 60; limit 5 %: trips at equity <= 3800,
    # i.e. a close <= 72 with 1000 / 90 bought at 90.
    eng = make_engine(atr_params(atr_step=3.0), capital=4000.0,
                      risk={"daily_loss_limit": 0.05},
                      sizing={"mode": "fixed_notional", "notional_per_level_quote": 1000.0})
    q0 = 1000 / 90
    rows = [(100, 100, 100, 100),        # 0 day start equity 4000 (close 01:00)
            (100, 100, 85, 86),          # 1 L0 at 90; equity 3955.6
            (86, 86, 73, 73),            # 2 equity 3811.1 (-4.7 %): not yet
            (73, 73, 71, 71.5),          # 3 equity 3794.4 (-5.14 %): trips at 04:00
            (71.5, 71.5, 59, 61),        # 4 reaches L1 (60): denied KILL_SWITCH
            *flat(61, 19),               # 5..23: candle 23 closes at 00:00 UTC -> reset
            (61, 61, 59, 60.5)]          # 24 (day 1): L1 fills at 60
    out = run(eng, candles(BTC, rows, GRID_VALS))
    (trip,) = events(out, "kill_switch_tripped")
    assert trip.reason == "DAILY_LOSS" and trip.ts_ms == 4 * H
    eq3 = 4000 + q0 * (71.5 - 90)
    assert trip.detail["value"] == pytest.approx(eq3 / 4000 - 1)
    assert trip.detail["value"] < -0.05 < (4000 + q0 * (73 - 90)) / 4000 - 1  # not at 2
    assert trip.detail["threshold"] == pytest.approx(-0.05)
    assert trip.detail["day_start_equity"] == pytest.approx(4000.0)
    (denied,) = events(out, "order_denied")
    assert denied.reason == "KILL_SWITCH" and denied.ts_ms == 4 * H
    assert denied.detail["level"] == 1 and denied.detail["kill_switch_mask"] == 4.0
    (reset,) = events(out, "kill_switch_reset")
    assert reset.reason == "DAILY_LOSS" and reset.ts_ms == 24 * H
    assert reset.detail["by"] == "DAY_ROLLOVER"
    assert reset.detail["equity"] == pytest.approx(4000 + q0 * (61 - 90))
    assert reset.detail["day_start_equity"] == pytest.approx(4000.0)
    assert entries(out) == [(BTC, "L0", 1 * H, 90.0, pytest.approx(q0)),
                            (BTC, "L1", 24 * H, 60.0, pytest.approx(1000 / 60))]
    assert eng.kill_switch == ""
    c = eng.summary().counters
    assert c["kill_switch_trips"] == 1 and c["kill_switch_resets"] == 1


def test_daily_loss_does_not_trip_just_above_the_limit():
    eng = make_engine(atr_params(atr_step=3.0), capital=4000.0,
                      risk={"daily_loss_limit": 0.05},
                      sizing={"mode": "fixed_notional", "notional_per_level_quote": 1000.0})
    rows = [(100, 100, 100, 100), (100, 100, 85, 86), (86, 86, 73, 73), *flat(73, 3)]
    out = run(eng, candles(BTC, rows, GRID_VALS))
    assert not events(out, "kill_switch_tripped") and eng.kill_switch == ""


# --------------------------------------------------------------- rolling drawdown
def _rolling_engine():
    # one level at 90 with the whole 1000: equity = 1000 + (1000 / 90) * (close - 90)
    return make_engine(atr_params(levels=1, sl_pct=0.9), capital=1000.0,
                       risk={"rolling_drawdown_pct": 0.05, "rolling_window_hours": 3})


def test_rolling_drawdown_trips_at_the_candle_that_crosses_it():
    eng = _rolling_engine()
    rows = [(100, 100, 100, 100), (100, 100, 89.5, 90),  # buys at 90, close 90: 1000
            (90, 90, 88, 88),                            # 977.8 at 03:00
            (88, 88, 85, 85),                            # 944.4 at 04:00: -5.6 % in 2 h
            *flat(85, 2)]
    out = run(eng, candles(BTC, rows, GRID_VALS))
    (trip,) = events(out, "kill_switch_tripped")
    assert trip.reason == "ROLLING_DRAWDOWN" and trip.ts_ms == 4 * H
    assert trip.detail["value"] == pytest.approx((1000 + 1000 / 90 * (85 - 90)) / 1000 - 1)
    assert trip.detail["threshold"] == pytest.approx(-0.05)
    assert eng.kill_switch == "ROLLING_DRAWDOWN"


def test_rolling_drawdown_does_not_trip_when_the_drop_is_spread_beyond_the_window():
    eng = _rolling_engine()
    # the same 90 -> 85 drop (-5.6 % of equity) one point per hour: at most 2-3 points
    # (<= 3.4 %) within any 3-hour window
    closes = [90, 89, 88, 87, 86, 85]
    rows = [(100, 100, 100, 100), (100, 100, 89.5, 90)]
    rows += [(a, a, b, b) for a, b in pairwise(closes)] + flat(85, 3)
    out = run(eng, candles(BTC, rows, GRID_VALS))
    assert not events(out, "kill_switch_tripped")
    assert eng.equity() == pytest.approx(1000 + 1000 / 90 * (85 - 90))
    assert eng.kill_switch == ""


# ------------------------------------------------------------------- max drawdown
def test_max_drawdown_stays_on_across_days_until_reset_command():
    eng = make_engine(atr_params(atr_step=3.0), capital=4000.0,
                      risk={"max_drawdown_pct": 0.05},
                      sizing={"mode": "fixed_notional", "notional_per_level_quote": 1000.0})
    q0 = 1000 / 90
    rows = [(100, 100, 100, 100), (100, 100, 85, 86), (86, 86, 73, 73),
            (73, 73, 71, 71.5),          # 3 equity 3794.4 <= 0.95 * 4000: trips at 04:00
            (71.5, 71.5, 59, 61),        # 4 L1 (60) denied
            *flat(61, 21),               # 5..25, day rollover at 00:00: stays on
            (61, 61, 59, 61),            # 26 (day 1) L1 reached again: still denied
            *flat(61, 3)]                # 27..29
    out = run(eng, candles(BTC, rows, GRID_VALS, last=False), flush=False)
    (trip,) = events(out, "kill_switch_tripped")
    assert trip.reason == "MAX_DRAWDOWN" and trip.ts_ms == 4 * H
    assert trip.detail["value"] == pytest.approx((4000 + q0 * (71.5 - 90)) / 4000 - 1)
    assert trip.detail["threshold"] == pytest.approx(-0.05)
    assert trip.detail["peak_equity"] == pytest.approx(4000.0)
    assert not events(out, "kill_switch_reset")  # no rollover reset for this one
    assert eng.kill_switch == "MAX_DRAWDOWN"
    assert entries(out) == [(BTC, "L0", 1 * H, 90.0, pytest.approx(q0))]
    assert eng.summary().counters["denied_KILL_SWITCH"] == 2  # candles 4 and 26

    # a reset naming an unknown switch is rejected and changes nothing
    bad = eng.apply_command(reset_cmd("BOGUS", cid=1), 30 * H)
    assert [(e.kind, e.reason) for e in bad.events] == [
        ("command_rejected", "UNKNOWN_REASON")]
    assert bad.events[0].detail["command_id"] == 1
    assert eng.kill_switch == "MAX_DRAWDOWN"

    ok = eng.apply_command(reset_cmd("MAX_DRAWDOWN", cid=2, by="alice"), 30 * H)
    assert [(e.kind, e.reason) for e in ok.events] == [
        ("command_applied", "reset_kill_switch"), ("kill_switch_reset", "MAX_DRAWDOWN")]
    assert ok.events[0].detail["command_id"] == 2
    eq = 4000 + q0 * (61 - 90)
    assert ok.events[1].ts_ms == 30 * H
    assert ok.events[1].detail["by"] == "alice"
    assert ok.events[1].detail["equity"] == pytest.approx(eq)
    assert eng.kill_switch == "" and ok.summaries[-1].kill_switch == ""

    # entries resume, and the peak restarted from the reset equity (no instant re-trip)
    after = run(eng, candles(BTC, [(61, 61, 59, 59.5), *flat(59.5, 2)], GRID_VALS,
                             start=30))
    assert entries(after) == [(BTC, "L1", 30 * H, 60.0, pytest.approx(1000 / 60))]
    assert not events(after, "kill_switch_tripped") and eng.kill_switch == ""


def test_reset_without_reason_clears_every_switch():
    eng = make_engine(atr_params())
    switch_on(eng, KILL_SWITCH_REASONS.values())
    out = eng.apply_command(reset_cmd(None), 5 * H)
    assert [e.kind for e in out.events] == ["command_applied"] + ["kill_switch_reset"] * 5
    assert [e.reason for e in out.events[1:]] == list(KILL_SWITCH_REASONS.values())
    assert eng.kill_switch == ""


def test_other_command_kinds_leave_kill_switches_alone():
    eng = make_engine(atr_params())
    switch_on(eng, ["MAX_DRAWDOWN"])
    cmd = Command(command_id=3, account="t", kind="flatten", issued_at_ms=0, issued_by="x")
    out = eng.apply_command(cmd, 0)
    assert [e.kind for e in out.events] == ["command_applied"]
    assert eng.kill_switch == "MAX_DRAWDOWN"
    bad = Command(command_id=4, account="t", kind="pause", payload={"symbol": "NOPE/USDT"},
                  issued_at_ms=0, issued_by="x")
    (ack,) = eng.apply_command(bad, 0).events
    assert (ack.kind, ack.reason) == ("command_rejected", "UNKNOWN_SYMBOL")


# ------------------------------------------------------------------- session loss
def test_session_loss_grid_and_single_have_separate_thresholds():
    grid = atr_params(levels=3, atr_step=3.0, symbols=(BTC,))   # 90 / 60 / 30
    single = atr_params(levels=1, symbols=(ETH,))                # 90
    eng = make_engine(grid, single, symbols=(BTC, ETH), capital=2000.0,
                      risk={"session_loss_grid": 0.10, "session_loss_single": 0.05})
    qb, qe = (1000 / 3) / 90, 1000 / 90  # 1000 per symbol: / 3 levels, / 1 level
    btc = [(100, 100, 100, 100), (100, 100, 85, 86),
           (86, 86, 73.8, 73.8),         # 2 grid PnL -60 = -6 % of 1000: under 10 %
           *flat(73.8, 2),
           (73.8, 73.8, 62, 62)]         # 5 grid PnL -103.7 = -10.4 %: trips
    eth = [*flat(100, 3),
           (100, 100, 85, 86),           # 3 buys at 90; PnL -44.4 = -4.4 %
           (86, 86, 84.5, 84.5),         # 4 PnL -61.1 = -6.1 % of 1000: trips
           *flat(84.5, 1)]
    out = run(eng, candles(BTC, btc, GRID_VALS), candles(ETH, eth, GRID_VALS))
    assert entries(out) == [(BTC, "L0", 1 * H, 90.0, pytest.approx(qb)),
                            (ETH, "L0", 3 * H, 90.0, pytest.approx(qe))]
    trips = events(out, "kill_switch_tripped")
    assert [(t.reason, t.ts_ms) for t in trips] == [
        ("SESSION_LOSS_SINGLE", 5 * H), ("SESSION_LOSS_GRID", 6 * H)]
    assert trips[0].detail["value"] == pytest.approx(qe * (84.5 - 90) / 1000)
    assert trips[0].detail["threshold"] == pytest.approx(-0.05)
    assert trips[1].detail["value"] == pytest.approx(qb * (62 - 90) / 1000)
    assert trips[1].detail["threshold"] == pytest.approx(-0.10)
    assert eng.kill_switch == "SESSION_LOSS_GRID,SESSION_LOSS_SINGLE"


# ------------------------------------------------------------- max open positions
def test_max_open_positions_denies_a_second_symbol_but_not_more_levels():
    eng = make_engine(atr_params(), symbols=(BTC, ETH), capital=4000.0,
                      risk={"max_open_positions": 1})
    btc = [(100, 100, 100, 100), (100, 100, 85, 86),
           (86, 86, 79, 80),             # 2 adds L1 at 80 to the open position
           (80, 101, 80, 100)]           # 3 take profit at 100: flat again
    eth = [*flat(100, 2),
           (100, 100, 85, 86),           # 2 first level of a 2nd position: denied
           (86, 86, 84, 85)]             # 3 BTC closed earlier in this candle time: fills
    out = run(eng, candles(BTC, btc, GRID_VALS), candles(ETH, eth, GRID_VALS))
    assert entries(out) == [(BTC, "L0", 1 * H, 90.0, pytest.approx(1000 / 90)),
                            (BTC, "L1", 2 * H, 80.0, pytest.approx(1000 / 80)),
                            (ETH, "L0", 3 * H, 86.0, pytest.approx(1000 / 86))]
    (d,) = events(out, "order_denied")
    assert (d.reason, d.symbol, d.ts_ms, d.detail["level"]) == (
        "MAX_OPEN_POSITIONS", ETH, 2 * H, 0)
    assert d.detail["open_positions"] == 1.0 and d.detail["max_open_positions"] == 1.0
    assert [o.tag for o in out.orders if o.symbol == BTC][-1] == "TP"


# --------------------------------------------------------------- correlation guard
def _closes(returns, c0=95.0):
    return c0 * np.exp(np.concatenate([[0.0], np.cumsum(returns)]))


def _rows(closes, dip_at):
    """Candles with these closes (open = previous close), low 79 at ``dip_at`` (buys at
    L0 = 100 - 20 = 80), other lows well above it; highs stay under the TP (100)."""
    rows = []
    prev = closes[0]
    for t, c in enumerate(closes):
        o = prev
        lo = 79.0 if t == dip_at else min(o, c) - 0.3
        rows.append((o, max(o, c) + 0.3, lo, c))
        prev = c
    return rows


R_BTC = np.array([0.004, 0.01, -0.01, 0.01, -0.01, 0.005, -0.003])  # r1..r7


@pytest.mark.parametrize("name, window_eth, denied", [
    ("identical", [0.01, -0.01, 0.01, -0.01], True),
    ("perfectly anti-correlated (|corr| = 1)", [-0.01, 0.01, -0.01, 0.01], True),
    ("partly anti-correlated (-0.71)", [-0.01, 0.01, 0.0, 0.0], False),
    ("independent (0)", [0.01, 0.01, -0.01, -0.01], False),
])
def test_correlation_guard(name, window_eth, denied):
    r_eth = R_BTC.copy()
    r_eth[1:5] = window_eth  # r2..r5: the 4 returns the guard sees at candle 6
    cb, ce = _closes(R_BTC), _closes(r_eth)
    expected = np.corrcoef(np.diff(np.log(cb[1:6])), np.diff(np.log(ce[1:6])))[0, 1]
    assert bool(abs(expected) > 0.8) is denied
    eng = make_engine(atr_params(), symbols=(BTC, ETH), capital=4000.0,
                      risk={"correlation_threshold": 0.8, "correlation_window_hours": 4})
    vals = {"sma_2": 100.0, "atr_1": 20.0}
    out = run(eng, candles(BTC, _rows(cb, 5), vals), candles(ETH, _rows(ce, 6), vals))
    btc_entry = (BTC, "L0", 5 * H, 80.0, pytest.approx(1000 / 80))
    if denied:
        assert entries(out) == [btc_entry]
        (d,) = events(out, "order_denied")
        assert (d.reason, d.symbol, d.ts_ms) == ("CORRELATION", ETH, 6 * H)
        assert d.detail["max_abs_correlation"] == pytest.approx(abs(expected), abs=1e-9)
        assert d.detail["max_abs_correlation"] == pytest.approx(1.0, abs=1e-9)
        assert d.detail["correlation_threshold"] == 0.8
    else:
        assert entries(out) == [btc_entry, (ETH, "L0", 6 * H, 80.0, pytest.approx(12.5))]
        assert not events(out, "order_denied")


def test_correlation_guard_only_gates_new_positions_with_another_one_open():
    # identical returns, but BTC is flat when ETH enters: nothing to correlate with
    cb = _closes(R_BTC)
    eng = make_engine(atr_params(), symbols=(BTC, ETH), capital=4000.0,
                      risk={"correlation_threshold": 0.8, "correlation_window_hours": 4})
    vals = {"sma_2": 100.0, "atr_1": 20.0}
    out = run(eng, candles(BTC, _rows(cb, -1), vals), candles(ETH, _rows(cb, 6), vals))
    assert entries(out) == [(ETH, "L0", 6 * H, 80.0, pytest.approx(12.5))]


# ----------------------------------------------------------------------- cooldown
def _cooldown_engine():
    return make_engine(atr_params(levels=1, sl_pct=0.05), capital=1000.0,
                       risk={"cooldown_candles": 3},
                       sizing={"mode": "fixed_notional", "notional_per_level_quote": 500.0})


DIP = (91, 91, 89, 89.5)  # red: crosses L0 (90) on the way down, every candle


def test_cooldown_after_stop_loss_lasts_exactly_cooldown_candles():
    eng = _cooldown_engine()
    q = 500 / 90
    # candle 1 buys at 90; candle 2 falls through the stop 90 * 0.95 = 85.5 -> SL
    rows = [(100, 100, 100, 100), (100, 100, 89, 90), (90, 90, 85, 86)]
    out = run(eng, candles(BTC, rows, GRID_VALS, last=False), flush=False)
    assert [(o.tag, o.price, o.ts_ms) for o in out.orders] == [
        ("L0", 90.0, 1 * H), ("SL", 85.5, 2 * H)]
    assert out.trades[0].exit_reason == "SL"
    assert out.trades[0].pnl == pytest.approx(q * (85.5 - 90))
    for k, t in enumerate((3, 4, 5), start=1):  # exactly 3 candles refused
        out = run(eng, candles(BTC, [DIP], GRID_VALS, start=t, last=False), flush=False)
        assert out.orders == []
        assert eng.summary().counters["denied_COOLDOWN"] == k
        if k == 1:  # journaled once per level, then only counted
            (d,) = events(out, "order_denied")
            assert d.reason == "COOLDOWN" and d.ts_ms == 3 * H
            assert d.detail["cooldown_candles_left"] == 3.0
            assert d.detail["cooldown_candles"] == 3.0
        else:
            assert not events(out, "order_denied")
    out = run(eng, candles(BTC, [DIP], GRID_VALS, start=6))
    assert entries(out) == [(BTC, "L0", 6 * H, 90.0, pytest.approx(q))]
    assert eng.summary().counters["denied_COOLDOWN"] == 3


def test_cooldown_after_entry_and_stop_in_the_same_candle():
    eng = _cooldown_engine()
    # candle 1 buys at 90 and falls through the stop 85.5 in the same leg
    rows = [(100, 100, 100, 100), (100, 100, 85, 86), DIP, DIP, DIP, DIP]
    out = run(eng, candles(BTC, rows, GRID_VALS))
    assert [(o.tag, o.ts_ms) for o in out.orders] == [
        ("L0", 1 * H), ("SL", 1 * H), ("L0", 5 * H)]  # got L0 at 4h
    assert eng.summary().counters["denied_COOLDOWN"] == 3  # got 2


def test_no_cooldown_after_take_profit():
    eng = make_engine(atr_params(levels=1), capital=1000.0, risk={"cooldown_candles": 3},
                      sizing={"mode": "fixed_notional", "notional_per_level_quote": 500.0})
    rows = [(100, 100, 100, 100), (100, 100, 89, 90), (90, 101, 90, 100),
            (100, 100, 89, 89.5)]
    out = run(eng, candles(BTC, rows, GRID_VALS))
    assert [o.tag for o in out.orders] == ["L0", "TP", "L0"]


# ------------------------------------------------- closing orders are never denied
def test_take_profit_stop_and_flip_go_out_with_every_kill_switch_on():
    tp_sym = atr_params(levels=1, sl_pct=0.5, symbols=(BTC,))
    sl_sym = atr_params(levels=1, sl_pct=0.05, symbols=(ETH,))
    flip_sym = GridMultiTfParams(levels=1, atr_start=1.0, symbols=(SOL,), sl_pct=0.5)
    eng = make_engine(tp_sym, sl_sym, flip_sym, symbols=(BTC, ETH, SOL), capital=3000.0,
                      sizing={"mode": "fixed_notional", "notional_per_level_quote": 900.0})
    q = 10.0  # 900 / 90
    sol_vals = {ST: [1, -1, -1, -1], "sma_24": [100.0] * 4, "atr_14": [10.0] * 4}
    first = [(100, 100, 100, 100), (100, 100, 88, 89)]  # every symbol buys at 90
    out = run(eng, candles(BTC, first, GRID_VALS, last=False),
              candles(ETH, first, GRID_VALS, last=False),
              candles(SOL, first, {k: v[:2] for k, v in sol_vals.items()}, last=False),
              flush=False)
    assert entries(out) == [(s, "L0", 1 * H, 90.0, pytest.approx(q)) for s in (BTC, ETH, SOL)]
    switch_on(eng, KILL_SWITCH_REASONS.values())
    assert eng.kill_switch.split(",") == list(KILL_SWITCH_REASONS.values())
    out = run(eng,
              candles(BTC, [(89, 101, 88.5, 100.5), (100, 100, 88, 89)], GRID_VALS, start=2),
              candles(ETH, [(89, 89, 85, 85.2), (85.2, 85.2, 85.2, 85.2)], GRID_VALS, start=2),
              candles(SOL, [(89, 90, 88, 89), (89, 90, 88, 89)],
                      {k: v[2:] for k, v in sol_vals.items()}, start=2))
    got = [(o.symbol, o.tag, o.type, o.price, o.amount, o.reduce_only) for o in out.orders]
    assert got == [
        (BTC, "TP", "limit", 100.0, pytest.approx(q), True),
        (ETH, "SL", "stop_market", 85.5, pytest.approx(q), True),
        (SOL, "FLIP", "market", 89.0, pytest.approx(q), True),
    ]
    assert [t.exit_reason for t in out.trades] == ["TP", "SL", "FLIP"]
    assert all(f.ts_ms == 2 * H for f in out.fills)
    # the switches stay on: the re-armed levels are refused at candle 3 (BTC dips through
    # 90; ETH opens at 85.2, below its resting buy at 90, which is marketable at the open)
    denied = events(out, "order_denied")
    assert sorted((d.reason, d.symbol, d.ts_ms, d.detail["kill_switch_mask"])
                  for d in denied) == [("KILL_SWITCH", BTC, 3 * H, 31.0),
                                       ("KILL_SWITCH", ETH, 3 * H, 31.0)]
    assert eng.kill_switch.split(",") == list(KILL_SWITCH_REASONS.values())


def test_max_daily_entries_one_new_position_per_symbol_per_utc_day():
    """Replay: a grid that would open, take profit and open again within one day opens
    once that day; the refused level is journaled (DAILY_ENTRIES, opened 1 of 1); the next
    UTC day it opens again. Off (0), the same candles open twice the first day."""
    from test_engine import chunk, engine

    # every candle dips to 89 (level 90 at SMA 100 - ATR 10) and tops at 101 (TP at 100)
    rows = [(100, 101, 89, 100)] * 30
    trades = {}
    for limit in (0, 1):
        eng = engine(risk={"max_daily_entries": limit})
        out = eng.on_chunk(chunk("BTC/USDT", rows, 100.0, 10.0, last=True))
        out.extend(eng.flush())
        trades[limit] = [t.open_ts_ms // (24 * H) for t in out.trades]
        if limit:
            denied = [e for e in out.events if e.kind == "order_denied"
                      and e.reason == "DAILY_ENTRIES"]
            assert denied and denied[0].detail["opened_today"] == 1.0
            assert denied[0].detail["max_daily_entries"] == 1.0
    assert len(trades[0]) > len(set(trades[0]))  # off: several positions on one day
    assert sorted(trades[1]) == sorted(set(trades[1])) == [0, 1]  # on: one per UTC day
