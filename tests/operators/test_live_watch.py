"""The live engine's watch (gridflow.operators.live_watch) on a fake exchange clock:
heartbeats, the daily heartbeat, data freshness and the exchange error rate, each at
the right exchange time, once."""

from __future__ import annotations

import copy

from test_engine import NOFEES, chunk
from test_live_engine import MKT, SYM, H, upd, warm

from gridflow.chunks import ExchangeUpdate
from gridflow.config.live import LiveConfig
from gridflow.config.models import AccountConfig, GridAtrParams
from gridflow.config.ops import OpsConfig
from gridflow.event_kinds import EventKind
from gridflow.operators.live_engine import LiveAccountEngine

DAY = 24 * H
T0 = 1_700_006_400_000  # 2023-11-15 00:00 UTC: candle 0 opens here


def engine(**ops) -> LiveAccountEngine:
    acct = AccountConfig(name="t", capital_quote=3000.0, symbols=(SYM,),
                         strategy=GridAtrParams(sma_period=2, atr_period=1, levels=3,
                                                atr_start=1.0, atr_step=1.0, sl_pct=0.5))
    eng = LiveAccountEngine(acct, [SYM], {SYM: "1h"}, NOFEES, MKT,
                            live=LiveConfig(ops=OpsConfig(**ops)))
    start = T0 // H
    eng.on_chunk(warm(chunk(SYM, [(100, 101, 99, 100)], 100.0, 10.0, start=start)))
    eng.on_chunk(chunk(SYM, [(100, 101, 99, 100)], 100.0, 10.0, start=start + 1))
    return eng


def kinds(out, *want) -> list:
    return [e for e in out.events if e.kind in want]


def drive(eng, times, errors=()):
    """Exchange updates at ``times`` (ms); the ones in ``errors`` carry one error."""
    events = []
    for t in times:
        u = ExchangeUpdate("t", t, [], [], {}, errors=["NetworkError: x"] if t in errors else [])
        events += eng.on_exchange(u).events
    return events


def test_heartbeat_every_period_of_exchange_time_once():
    eng = engine(heartbeat_s=600, daily_at="23:59")
    t1 = T0 + 2 * H
    times = [t1 + k * 150_000 for k in range(17)]  # 40 minutes in 2.5-minute updates
    beats = [e for e in drive(eng, times) if e.kind == EventKind.HEARTBEAT]
    assert [e.ts_ms for e in beats] == [t1 + 600_000, t1 + 1_200_000, t1 + 1_800_000,
                                        t1 + 2_400_000]
    assert all(e.reason == "ALIVE" for e in beats)
    d = beats[-1].detail
    assert d["uptime_s"] == 2400.0 and d["equity"] == eng.equity()
    assert d["last_candle_ms"] == T0 + H and d["kill_switches"] == []
    assert len({e.event_id for e in beats}) == 4


def test_daily_heartbeat_at_the_configured_utc_time_once_a_day():
    eng = engine(heartbeat_s=0, daily_at="08:00")
    times = [T0 + 2 * H + k * H for k in range(40)]  # 02:00 day 1 .. 17:00 day 2
    daily = [e for e in drive(eng, times) if e.kind == EventKind.DAILY_HEARTBEAT]
    assert [e.ts_ms for e in daily] == [T0 + 8 * H, T0 + DAY + 8 * H]
    assert not [e for e in drive(eng, [T0 + DAY + 20 * H]) if e.kind == EventKind.HEARTBEAT]
    d = daily[0].detail
    assert d["report_day_ms"] == T0 - DAY and d["day_pnl"] == d["equity"] - d["day_start_equity"]


def test_data_stale_after_two_timeframes_without_a_closed_candle_then_fresh():
    eng = engine(heartbeat_s=0, daily_at="23:59", stale_candles=2.0)
    last_close = T0 + 2 * H  # candle 1 closed here; no candle after it
    times = [last_close + k * 600_000 for k in range(1, 20)]
    stale = [e for e in drive(eng, times) if e.kind == EventKind.DATA_STALE]
    assert len(stale) == 1
    assert stale[0].ts_ms == last_close + 2 * H + 600_000  # the first update past 2 h
    assert stale[0].symbol == SYM and stale[0].detail["last_close_ms"] == last_close
    # candles come again: fresh once the newest closed candle is within a timeframe
    start = T0 // H
    eng.on_chunk(chunk(SYM, [(100, 101, 99, 100)] * 3, 100.0, 10.0, start=start + 2))
    fresh = [e for e in drive(eng, [T0 + 5 * H + 60_000]) if e.kind == EventKind.DATA_FRESH]
    assert len(fresh) == 1 and fresh[0].reason == "CANDLES_BACK"


def test_exchange_error_rate_once_per_window():
    eng = engine(heartbeat_s=0, daily_at="23:59", error_rate=3, error_window_s=600)
    t1 = T0 + 2 * H
    times = [t1 + k * 60_000 for k in range(25)]
    errs = {t1 + k * 60_000 for k in (1, 2, 3, 4, 20, 21)}
    rate = [e for e in drive(eng, times, errs) if e.kind == EventKind.EXCHANGE_ERROR_RATE]
    # 3 errors within 10 min at minute 3; minute 4's is in the same window; 2 at 20-21
    assert [e.ts_ms for e in rate] == [t1 + 3 * 60_000]
    assert rate[0].detail["errors"] == 3
    errs2 = {t1 + 26 * 60_000 + k * 60_000 for k in range(3)}
    more = [e for e in drive(eng, sorted(errs2), errs2)
            if e.kind == EventKind.EXCHANGE_ERROR_RATE]
    assert len(more) == 1  # a new window


def test_a_restored_engine_journals_the_same_watch_events():
    eng = engine(heartbeat_s=600, daily_at="03:00")
    t1 = T0 + 2 * H
    drive(eng, [t1])
    saved = copy.deepcopy(eng)
    times = [t1 + k * 400_000 for k in range(1, 30)]
    a = [(e.event_id, e.ts_ms) for e in drive(eng, times)]
    b = [(e.event_id, e.ts_ms) for e in drive(saved, times)]
    assert a == b and any(k.startswith("heartbeat") for k, _ in a)
    assert any(k.startswith("daily_heartbeat") for k, _ in a)
    assert any(k.startswith("data_stale") for k, _ in a)


def test_an_engine_pickled_before_the_watch_gets_one():
    eng = engine(heartbeat_s=600)
    eng.__dict__.pop("watch", None)
    assert kinds(eng.on_exchange(upd(T0 + 2 * H, positions={})), EventKind.HEARTBEAT) == []
    assert eng.watch.started_ms == T0 + 2 * H
