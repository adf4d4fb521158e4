"""The live funding feed (:mod:`gridflow.dataflows.funding_feed`) against the local fake
Binance USDT-M: real ccxt over HTTP reads ``/fapi/v1/fundingRate``; the bundled BTC
funding rates of March 2024 on the bundled candles of the same hours.

What must hold: every candle carries the rate the replay computes from the funding file
at its close and the rates settled within it; a candle closing on a settlement the venue
has not listed yet waits for it (bounded), survives a restart while waiting, and a bad
or failing history is counted, never a crash."""

from __future__ import annotations

import pickle
from types import SimpleNamespace

import numpy as np
import pytest
from pydantic import SecretStr

from gridflow.chunks import CandleChunk
from gridflow.config.live import ExchangeConfig
from gridflow.data import CANDLES_DIR
from gridflow.data.candle_files import read_candle_file
from gridflow.data.funding import (
    FUNDING_RATE,
    FUNDING_SETTLED,
    bundled_funding_files,
    funding_per_candle,
    last_rate,
    read_funding,
)
from gridflow.dataflows.candle_source import LiveCandleSource
from gridflow.dataflows.funding_feed import FundingFedPartition, FundingFeedState
from gridflow.fakex import FakeExchange, FaultPlan

H = 3_600_000
SYM = "BTC/USDT"
_D = read_candle_file(CANDLES_DIR / "binance_BTC_USDT_1h.csv.gz")
ROWS = np.column_stack([_D[k] for k in ("ts", "open", "high", "low", "close", "volume")])
_I = int(np.searchsorted(ROWS[:, 0], 1_709_251_200_000))  # 2024-03-01: rates move
DATA = ROWS[_I:_I + 400]
START = int(ROWS[_I + 300, 0])  # the first forming candle
F_TS, F_RATE = read_funding(bundled_funding_files()[SYM])


class Clock:
    """Monotonic seconds the test moves."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def start(funding=(F_TS, F_RATE), lag_ms: int = 0, faults=None) -> FakeExchange:
    fx = FakeExchange(candles={SYM: DATA}, timeframe="1h", start_ms=START,
                      funding={SYM: funding}, funding_publish_lag_ms=lag_ms, faults=faults)
    fx.start()
    return fx


def part(fx: FakeExchange, clock: Clock, resume=None, warmup: int = 30,
         wait_s: float = 30.0) -> FundingFedPartition:
    cfg = ExchangeConfig(api_key=SecretStr("k"), secret=SecretStr("s"), urls=fx.ccxt_urls(),
                         timeout_ms=3000, rate_limit_ms=1)
    src = LiveCandleSource(cfg, [SYM], "1h", warmup, 0.01, funding_symbols=[SYM])
    p = src.build_part("candles", SYM, resume)
    assert isinstance(p, FundingFedPartition)
    p.wait_s, p.clock, p.retry_s = wait_s, clock, 0.01
    return p


def collect(chunks: list[CandleChunk]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    ts = np.concatenate([c.ts for c in chunks])
    return ts, {k: np.concatenate([c.inputs[k] for c in chunks])
                for k in (FUNDING_RATE, FUNDING_SETTLED)}


def settlement_close(after: int) -> int:
    """Open time of the first candle after ``after`` that closes on a settlement."""
    t = int(F_TS[np.searchsorted(F_TS, after + H, side="left")])
    return t - H


def test_every_candle_carries_the_rate_and_settlements_the_replay_computes():
    fx = start()
    try:
        p, got = part(fx, Clock()), []
        got += p.next_batch()  # the warm-up
        for _ in range(40):  # 40 closes, 5 of them on a settlement (00/08/16 UTC)
            fx.step()
            got += p.next_batch()
        ts, inputs = collect(got)
        assert len(ts) == 70 and got[0].warmup and not got[-1].warmup
        np.testing.assert_array_equal(inputs[FUNDING_RATE], last_rate(ts + H, F_TS, F_RATE))
        np.testing.assert_array_equal(inputs[FUNDING_SETTLED],
                                      funding_per_candle(ts, H, F_TS, F_RATE))
        assert np.count_nonzero(inputs[FUNDING_SETTLED]) >= 8  # not vacuous
        assert len(np.unique(inputs[FUNDING_RATE])) >= 8
        assert p.late == 0 and p.refused == 0
    finally:
        fx.stop()


def test_a_close_on_a_settlement_not_listed_yet_waits_for_it_and_survives_a_restart():
    fx, clock = start(lag_ms=20_000), Clock()
    try:
        p = part(fx, clock)
        p.next_batch()
        on = settlement_close(fx.now_ms())
        while fx.now_ms() < on:  # up to the candle closing on the settlement
            fx.step()
            assert all(c.inputs is not None for c in p.next_batch())
        fx.step()  # it closes; the venue lists the settlement 20 s later
        assert p.next_batch() == [] and p.next_batch() == []
        assert p.next_awake() is not None
        state = pickle.loads(pickle.dumps(p.snapshot()))  # as Bytewax recovery stores it
        assert isinstance(state, FundingFeedState) and len(state.held) == 1
        p.close()
        q = part(fx, clock, resume=state)  # a restart while waiting keeps the candle
        assert q.next_batch() == []
        fx.advance_ms(20_000)
        [c] = q.next_batch()
        assert c.ts.tolist() == [on]
        t = on + H
        i = int(np.searchsorted(F_TS, t))
        assert F_TS[i] == t
        assert c.inputs[FUNDING_RATE].tolist() == [F_RATE[i]]  # the rate settled at its close
        assert c.inputs[FUNDING_SETTLED].tolist() == [F_RATE[i]]
        assert q.late == 0
        fx.step()
        [c] = q.next_batch()  # the next candle does not wait
        assert c.ts.tolist() == [on + H]
    finally:
        fx.stop()


def test_a_settlement_never_listed_holds_one_candle_for_the_wait_then_no_more():
    lag = 9 * H  # listed 9 h late: the next settlement is always due and missing
    fx, clock = start(lag_ms=lag), Clock()
    try:
        p = part(fx, clock, wait_s=30.0)
        assert p.next_batch() == []  # the warm-up's last close waits
        clock.t += 31.0  # the wait runs out: out with the last listed rate, counted
        [c] = p.next_batch()
        assert p.late == 1
        listed = F_TS <= fx.now_ms() - lag
        np.testing.assert_array_equal(c.inputs[FUNDING_RATE],
                                      last_rate(c.ts + H, F_TS[listed], F_RATE[listed]))
        warm_close = fx.now_ms()
        next_listing = int(F_TS[~listed][0]) + lag
        steps, got = 0, []
        while fx.now_ms() + H < next_listing:  # no wait until the venue lists a newer one
            fx.step()
            got += p.next_batch()
            assert len(got) == steps + 1
            steps += 1
        assert steps >= 1 and p.late == 1
        for _ in range(30):  # every settlement is booked once, the late ones with a later
            fx.step()        # candle (none falls inside its own candle: all listed 9 h late)
            got += p.next_batch()
            clock.t += 31.0
            got += p.next_batch()
        _, inputs = collect(got)
        booked = (F_TS > warm_close) & (F_TS <= fx.now_ms() - lag)
        assert booked.sum() >= 3 and p.listed_late == booked.sum()
        assert inputs[FUNDING_SETTLED].sum() == pytest.approx(F_RATE[booked].sum(), abs=1e-15)
    finally:
        fx.stop()


def test_unusable_rates_are_refused_and_counted_and_errors_are_retried():
    bad = F_RATE.copy()
    i = int(np.searchsorted(F_TS, START - 12 * H))
    bad[i] = 0.5  # 50 % a settlement: corrupt
    fx = start(funding=(F_TS, bad), faults=FaultPlan(
        apply_to=("read",), script=[("server_error", "/fapi/v1/fundingRate")]))
    try:
        p = part(fx, Clock())
        assert p.next_batch() == []  # the history read failed: held, retried
        assert sum(p.error_counts.values()) == 1
        [c] = p.next_batch()
        assert p.refused == 1
        ts = c.ts
        np.testing.assert_array_equal(
            c.inputs[FUNDING_RATE], last_rate(ts + H, np.delete(F_TS, i), np.delete(F_RATE, i)))
        assert np.nanmax(np.abs(c.inputs[FUNDING_RATE])) < 0.05
    finally:
        fx.stop()


def test_a_schedule_moved_to_4h_then_1h_with_a_listing_lag_gives_the_replays_inputs():
    # Binance moves a symbol whose rate hit its cap to 4 h, then 1 h settlements: the
    # feed follows the venue's announced next settlement, not the past spacing
    old = F_TS < START
    times = np.concatenate([F_TS[old], np.arange(START, START + 24 * H, 4 * H),
                            np.arange(START + 24 * H, START + 40 * H, H),
                            np.arange(START + 40 * H, START + 96 * H, 8 * H)])
    new = len(times) - int(old.sum())  # the venue lists rates to 8 decimals
    rates = np.concatenate([F_RATE[old], np.round(np.linspace(-8e-4, 9e-4, new), 8)])
    fx, clock = start(funding=(times, rates), lag_ms=30_000), Clock()
    try:
        p, got, held = part(fx, clock), [], 0
        got += p.next_batch()
        for _ in range(60):
            fx.step()
            out = p.next_batch()
            if not out:  # a close on a settlement the venue lists 30 s later
                held += 1
                fx.advance_ms(30_000)
                out = p.next_batch()
            got += out
        ts, inputs = collect(got)
        traded = ~np.concatenate([np.full(len(c), c.warmup) for c in got])
        np.testing.assert_array_equal(inputs[FUNDING_RATE][traded],
                                      last_rate(ts[traded] + H, times, rates))
        np.testing.assert_array_equal(inputs[FUNDING_SETTLED][traded],
                                      funding_per_candle(ts[traded], H, times, rates))
        on = np.isin(ts[traded] + H, times)
        assert held == on.sum() >= 20 and p.late == 0  # every settlement close waited
    finally:
        fx.stop()


def test_a_refused_settlement_counts_as_listed_and_is_refused_once():
    bad = F_RATE.copy()
    i = int(np.searchsorted(F_TS, START + 8 * H))  # a settlement a traded candle closes on
    bad[i] = 0.5
    fx, clock = start(funding=(F_TS, bad)), Clock()
    try:
        p, got = part(fx, clock), []
        got += p.next_batch()
        while fx.now_ms() < F_TS[i] + 10 * H:
            fx.step()
            out = p.next_batch()
            assert len(out) == 1  # never held for it
            got += out
        assert p.refused == 1 and p.late == 0
        ts, inputs = collect(got)
        keep = np.arange(len(F_TS)) != i
        np.testing.assert_array_equal(inputs[FUNDING_RATE], last_rate(ts + H, F_TS[keep], F_RATE[keep]))
    finally:
        fx.stop()


def test_a_chunk_pickled_before_its_inputs_field_existed_loads():
    from dataclasses import fields

    c = CandleChunk(SYM, "1h", np.arange(3, dtype=np.int64) * H, *[np.ones(3)] * 5)
    old_state = [getattr(c, f.name) for f in fields(c) if f.name != "inputs"]
    old = CandleChunk.__new__(CandleChunk)
    old.__setstate__(old_state)  # what unpickling a snapshot of the previous version does
    assert old.inputs is None and len(old.take(np.array([True, False, True]))) == 2


@pytest.mark.parametrize("bad", [dict(tf_ms=0), dict(wait_s=-1.0), dict(retry_s=0.0)])
def test_bad_timing_is_refused(bad):
    inner = SimpleNamespace(ex=SimpleNamespace(has={"fetchFundingRateHistory": True}),
                            symbol=SYM)
    args = {"tf_ms": H, **bad}
    with pytest.raises(ValueError, match="bad funding feed timing"):
        FundingFedPartition(inner, "BTC/USDT:USDT", args.pop("tf_ms"), **args)


def test_a_venue_without_funding_history_is_refused():
    inner = SimpleNamespace(ex=SimpleNamespace(has={}, id="somespot"), symbol=SYM)
    with pytest.raises(ValueError, match="has no funding rate history"):
        FundingFedPartition(inner, "BTC/USDT", H)
