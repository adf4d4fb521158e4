"""Plausibility rules of candle validation: timestamp range (with the unit it looks like),
normal prices under a ceiling, price jumps against the last accepted close, the pre-roll
before a replay window, and the ``[candles]`` settings reaching every path."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gridflow.candle_rules import PRICE_FLOOR, TS_MAX_MS, TS_MIN_MS
from gridflow.chunks import CandleChunk
from gridflow.config import load_config
from gridflow.config.candles import CandleRules
from gridflow.dataflows.sources import CandleFilePartition
from gridflow.events import Candle
from gridflow.operators.validation import NO_TS, REASONS, CandleValidator, validate_chunk
from gridflow.sweep.data import SweepData

H = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
NAN = float("nan")


def chunk(rows, first_row: int = 0, last: bool = False, preroll: bool = False) -> CandleChunk:
    """rows: (ts, open, high, low, close[, volume])."""
    rows = [tuple(r) + (1.0,) * (6 - len(r)) for r in rows]
    a = np.array([r[1:] for r in rows], dtype=np.float64).reshape(-1, 5)
    ts = np.array([r[0] for r in rows], dtype=np.int64)
    return CandleChunk("BTC/USDT", "1h", ts, *(a[:, k].copy() for k in range(5)),
                       first_row=first_row, last=last, preroll=preroll)


def bar(i: int, p: float = 100.0) -> tuple:
    """A flat-ish candle at hour ``i`` after T0 around price ``p``."""
    return (T0 + i * H, p, p * 1.01, p * 0.99, p)


def refused(events) -> list[tuple[int, str]]:
    return [(e.seq, e.reason) for e in events]


# ------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(("ts", "hint"), [
    (T0 // 1000, "looks like seconds"),
    (T0 * 1000, "looks like microseconds"),
    (T0 * 1_000_000, "looks like nanoseconds"),
    (1_199_145_600_000, "before 2009-01-03"),  # 2008-01-01 in ms: no unit fits
    (4_133_980_800_000, "after 2100-01-01"),  # 2101-01-01 in ms
    (0, "before 2009-01-03"),
])
def test_timestamps_outside_the_venue_epoch_say_which_unit_they_look_like(ts, hint) -> None:
    (e,) = validate_chunk(chunk([(ts, 10.0, 11.0, 9.0, 10.0)]), NO_TS)[1]
    assert e.reason == "TS_OUT_OF_RANGE" and hint in e.detail["message"]
    assert e.detail["message"].startswith(f"TS_OUT_OF_RANGE: ts_ms={ts} ")
    with pytest.raises(ValidationError, match=f"TS_OUT_OF_RANGE.*{hint}"):  # one rule, one home
        Candle(symbol="BTC/USDT", timeframe="1h", ts_ms=ts, open=10.0, high=11.0, low=9.0,
               close=10.0, volume=1.0)


def test_the_epoch_bounds_are_fixed_and_inclusive() -> None:
    day = 24 * H
    assert TS_MIN_MS % day == 0 and TS_MAX_MS % day == 0
    rows = [(TS_MIN_MS, 1.0, 1.0, 1.0, 1.0), (TS_MAX_MS, 1.0, 1.0, 1.0, 1.0)]
    acc, events, _ = validate_chunk(chunk(rows), NO_TS)
    assert len(acc) == 2 and not events


# ------------------------------------------------------------------------ prices


@pytest.mark.parametrize(("row", "reason", "text"), [
    ((T0, 1e308, 1e308, 1e308, 1e308), "IMPLAUSIBLE_PRICE", "open=1e+308 is above max_price_quote=1000000000.0"),
    ((T0, 5e-324, 5e-324, 5e-324, 5e-324), "IMPLAUSIBLE_PRICE", "below the smallest normal"),
    ((T0, 1.0, 1.0, 1e-310, 1.0), "IMPLAUSIBLE_PRICE", "low=1e-310"),
    ((T0, 1.0, 2e9, 1.0, 1.0), "IMPLAUSIBLE_PRICE", "high=2000000000.0"),
    ((T0, 1.0, math.inf, 1.0, 1.0), "NON_POSITIVE_PRICE", "high=inf"),
    ((T0, 1.0, 1.0, 1.0, 1.0, math.inf), "NEGATIVE_VOLUME", "volume=inf"),
])
def test_prices_must_be_normal_floats_under_the_ceiling(row, reason, text) -> None:
    (e,) = validate_chunk(chunk([row]), NO_TS)[1]
    assert (e.reason, e.seq) == (reason, 0) and text in e.detail["message"], e.detail["message"]


def test_the_smallest_normal_float_and_the_ceiling_themselves_pass() -> None:
    rows = [(T0, PRICE_FLOOR, PRICE_FLOOR, PRICE_FLOOR, PRICE_FLOOR)]
    assert not validate_chunk(chunk(rows), NO_TS)[1]
    assert not validate_chunk(chunk([(T0, 1e9, 1e9, 1e9, 1e9)]), NO_TS)[1]
    loose = CandleRules(max_price_quote=1e12)  # a weak quote currency (BTC/IDR)
    assert not validate_chunk(chunk([(T0, 2e9, 2e9, 2e9, 2e9)]), NO_TS, rules=loose)[1]


# ---------------------------------------------------------------------- jumps


def test_a_bad_tick_is_refused_and_the_band_stays_on_the_last_accepted_close() -> None:
    rows = [bar(0), bar(1, 1500.0), bar(2, 101.0), (T0 + 3 * H, 100.0, 100.0, 9.0, 100.0),
            bar(4, 999.0), bar(5, 1000.0), bar(6, 10.2)]
    acc, events, last = validate_chunk(chunk(rows, first_row=7), NO_TS)
    assert refused(events) == [(8, "PRICE_JUMP"), (10, "PRICE_JUMP"), (13, "PRICE_JUMP")]
    # 999 is within 10x of 101 (its high 1008.99 <= 1010), then 1000 of 999; 10.2 is not
    assert acc.ts.tolist() == [T0, T0 + 2 * H, T0 + 4 * H, T0 + 5 * H] and last == T0 + 5 * H
    high, low = events[0].detail, events[1].detail
    assert high["last_close"] == 100.0 and "open=1500.0 is outside [10.0, 1000.0]" in high["message"]
    assert low["last_close"] == 101.0 and "low=9.0" in low["message"]
    assert "max_jump_factor=10.0" in high["message"]


def test_the_first_candle_of_a_stream_has_no_band() -> None:
    acc, events, _ = validate_chunk(chunk([bar(0, 1e-5), bar(1, 1e-5)]), NO_TS)
    assert len(acc) == 2 and not events
    acc, events, _ = validate_chunk(chunk([bar(2, 1.0)]), T0, last_close=1e-5)
    assert refused(events) == [(0, "PRICE_JUMP")]


def test_a_refused_jump_frees_its_timestamp() -> None:
    """The jump at 5h is refused, so 2h after it is in order (not OUT_OF_ORDER)."""
    rows = [bar(0), bar(5, 5000.0), bar(2), bar(5)]
    acc, events, last = validate_chunk(chunk(rows), NO_TS)
    assert refused(events) == [(1, "PRICE_JUMP")]
    assert acc.ts.tolist() == [T0, T0 + 2 * H, T0 + 5 * H] and last == T0 + 5 * H
    assert events[0].detail["last_ts_ms"] == T0


def test_the_jump_factor_is_a_setting_and_the_band_crosses_chunks() -> None:
    v = CandleValidator(rules=CandleRules(max_jump_factor=2.0))
    v.validate(chunk([bar(0), bar(1, 150.0)]))
    v = pickle.loads(pickle.dumps(v))  # Bytewax snapshots it: the band survives
    assert (v.last_ts, v.last_close) == (T0 + H, 150.0)
    good, events = v.validate(chunk([bar(2, 400.0), bar(3, 290.0)], first_row=2))
    assert refused(events) == [(2, "PRICE_JUMP")] and good.ts.tolist() == [T0 + 3 * H]
    assert v.rejected["PRICE_JUMP"] == 1 and list(v.rejected) == list(REASONS)


@pytest.mark.parametrize("bad", [{"max_jump_factor": 1.0}, {"max_jump_factor": math.inf},
                                 {"max_price_quote": 0.0}, {"max_price_quote": math.nan},
                                 {"max_price_quote": 5e-324}, {"max_jump": 3.0}])
def test_bad_candle_settings_are_refused_naming_the_field(bad) -> None:
    with pytest.raises(ValidationError, match=next(iter(bad))):
        CandleRules(**bad)


def test_the_candles_table_of_a_preset_reaches_the_config(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text("[candles]\nmax_jump_factor = 3.5\nmax_price_quote = 1e12\n")
    cfg = load_config(p)
    assert cfg.candles == CandleRules(max_jump_factor=3.5, max_price_quote=1e12)
    assert load_config(None).candles == CandleRules()
    p.write_text("[candles]\nmax_jump_factor = 0.5\n")
    with pytest.raises(ValidationError, match="candles.max_jump_factor"):
        load_config(p)


# ------------------------------------------------------------- every path


def test_the_sweep_data_uses_the_same_rules() -> None:
    rows = [bar(0), bar(1, 5000.0), bar(2), (T0 // 1000 + 3, 1.0, 1.0, 1.0, 1.0)]
    cols = [np.array([r[k] for r in rows]) for k in range(5)]
    data = SweepData.from_arrays("BTC/USDT", "1h", *cols)
    assert data.rejected == 2 and data.ts.tolist() == [T0, T0 + 2 * H]
    loose = SweepData.from_arrays("BTC/USDT", "1h", *cols, rules=CandleRules(max_jump_factor=100))
    assert loose.rejected == 1


def test_validate_step_takes_the_configured_rules() -> None:
    from functools import partial

    from gridflow.dataflows.steps import validate_step

    step = partial(validate_step, rules=CandleRules(max_jump_factor=1.5))
    state, (good, batch) = step(None, chunk([bar(0), bar(1, 200.0)]))
    assert [e.reason for e in batch.events] == ["PRICE_JUMP"] and len(good) == 1
    assert state.rules.max_jump_factor == 1.5
    _, (good, batch) = validate_step(None, chunk([bar(0), bar(1, 200.0)]))
    assert not batch.events and len(good) == 2


# --------------------------------------------------------------- the pre-roll


def test_preroll_chunks_are_validated_journaled_and_dropped() -> None:
    v = CandleValidator()
    rows = [bar(0), "bad", bar(1), bar(3)]  # a gap at 2h inside the pre-roll
    pre = chunk([r if r != "bad" else (-1, NAN, NAN, NAN, NAN, NAN) for r in rows],
                preroll=True)
    good, events, gaps = v.check(pre)
    assert len(good) == 0 and good.preroll and refused(events) == [(1, "MALFORMED_ROW")]
    assert gaps == [] and (v.prerolled, v.accepted, v.last_ts) == (3, 0, T0 + 3 * H)
    # the window: a duplicate of the pre-roll is refused, the jump is measured from it,
    # and no gap is journaled across the window's start (5h follows 3h)
    good, events, gaps = v.check(chunk([bar(3), bar(5, 5000.0), bar(5), bar(7)], first_row=4))
    assert refused(events) == [(4, "DUPLICATE_TS"), (5, "PRICE_JUMP")]
    assert good.ts.tolist() == [T0 + 5 * H, T0 + 7 * H]
    assert [g.detail["missing"] for g in gaps] == [1] and v.gap_ts == T0 + 7 * H


def _write(tmp_path: Path, rows: list[str]) -> Path:
    p = tmp_path / "binance_BTC_USDT_1h.csv"
    p.write_text("timestamp,open,high,low,close,volume\n" + "".join(r + "\n" for r in rows))
    return p


def _drain(part: CandleFilePartition) -> list[CandleChunk]:
    out = []
    while True:
        try:
            out += part.next_batch()
        except StopIteration:
            return out


def test_the_partition_emits_the_preroll_first_unpaced(tmp_path: Path) -> None:
    rows = [f"{T0 + i * H},10,11,9,10,1" for i in range(10)]
    rows[2] = "oops"
    p = _write(tmp_path, rows)
    part = CandleFilePartition(p, "BTC/USDT", "1h", chunk_size=3, pace_s=30.0,
                               start_ms=T0 + 6 * H, end_ms=T0 + 9 * H, warmup=2)
    first = part.next_batch()[0]
    assert first.preroll and not first.warmup and part.next_awake() is None  # not paced
    got = [first] + _drain(part)
    assert [(c.first_row, len(c), c.preroll, c.warmup, c.last) for c in got] == [
        (0, 3, True, False, False), (3, 1, True, False, False),
        (4, 2, False, True, False), (6, 3, False, False, True)]
    v = CandleValidator()
    results = [v.check(c) for c in got]
    assert refused(results[0][1]) == [(2, "MALFORMED_ROW")]  # before the window: journaled
    assert [len(g) for g, _, _ in results] == [0, 0, 2, 3]


@pytest.mark.parametrize(("garbage", "reason"), [
    (f"{(T0 + 5 * H) * 1000},10,11,9,10,1", "looks like microseconds"),
    (f"{(T0 + 5 * H) // 1000},10,11,9,10,1", "looks like seconds"),
])
def test_a_row_in_another_unit_neither_opens_nor_closes_the_window(tmp_path, garbage,
                                                                   reason) -> None:
    rows = [f"{T0 + i * H},10,11,9,10,1" for i in range(12)]
    rows.insert(1, garbage)  # file row 1, before the window
    rows.append(garbage)  # after the window's end
    p = _write(tmp_path, rows)
    part = CandleFilePartition(p, "BTC/USDT", "1h", chunk_size=100, start_ms=T0 + 4 * H,
                               end_ms=T0 + 8 * H)
    got = _drain(part)
    traded = [c for c in got if not c.preroll]
    assert np.concatenate([c.ts for c in traded]).tolist() == [T0 + i * H for i in range(4, 8)]
    events = [e for c in got for e in CandleValidator().check(c)[1]]
    assert [(e.seq, e.reason) for e in events] == [(1, "TS_OUT_OF_RANGE")]
    assert reason in events[0].detail["message"]


# -------------------------------------------------------- property: what passes


@st.composite
def streams(draw):
    n = draw(st.integers(1, 60))
    special = st.sampled_from([0.0, -1.0, NAN, math.inf, 5e-324, 1e-310, 1e308, 2e9, 1e-3])
    price = st.one_of(st.floats(0.5, 2_000.0), special)
    ts_kind = st.sampled_from(["next"] * 6 + ["back", "dup", "sec", "us", "neg"])
    rows, t = [], T0
    for _ in range(n):
        k = draw(ts_kind)
        t = t + H if k == "next" else t
        ts = {"next": t, "dup": t, "back": t - 3 * H, "sec": t // 1000, "us": t * 1000,
              "neg": -1}[k]
        o, c = draw(price), draw(price)
        with np.errstate(invalid="ignore"):
            h = max(o, c) * draw(st.sampled_from([1.0, 1.01, 0.9]))
            lo = min(o, c) * draw(st.sampled_from([1.0, 0.99, 1.1]))
        rows.append((ts, o, h, lo, c, draw(st.sampled_from([1.0, 0.0, -1.0, NAN]))))
    rules = CandleRules(max_jump_factor=draw(st.sampled_from([1.5, 10.0, 1e6])),
                        max_price_quote=draw(st.sampled_from([1e9, 1e4])))
    cut = draw(st.integers(0, n))
    return rows, rules, cut


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_every_accepted_candle_is_plausible_and_every_row_is_accounted_for(case) -> None:
    rows, rules, cut = case
    v = CandleValidator(rules=rules)
    accepted, events = [], []
    for part in (chunk(rows[:cut]), chunk(rows[cut:], first_row=cut)):  # any chunking
        good, evs = v.validate(part)
        accepted.append(good)
        events += evs
    ts = np.concatenate([g.ts for g in accepted])
    px = [np.concatenate([getattr(g, k) for g in accepted]) for k in ("open", "high", "low",
                                                                     "close")]
    assert len(ts) + len(events) == len(rows) == v.rows
    assert sorted(e.seq for e in events) == [e.seq for e in events]
    assert all(e.reason in REASONS and e.detail["message"].startswith(e.reason) for e in events)
    assert ((ts >= TS_MIN_MS) & (ts <= TS_MAX_MS) & (ts % H == 0)).all()
    assert (np.diff(ts) > 0).all()
    for p in px:
        assert ((p >= PRICE_FLOOR) & (p <= rules.max_price_quote)).all()
    f = rules.max_jump_factor
    prev = px[3][:-1]
    assert (px[1][1:] <= prev * f).all() and (px[2][1:] * f >= prev).all()


# ---- re-anchoring: a stream whose level moved is not refused for ever -----------------

def _feed(prices, rules=None, split=False):
    """Validate one bar per price (1h apart) in one chunk or one chunk per bar."""
    v = CandleValidator(rules=rules or CandleRules())
    bars = [bar(i, p) for i, p in enumerate(prices)]
    parts = [[b] for b in bars] if split else [bars]
    out, events, row = [], [], 0
    for part in parts:
        good, evs = v.validate(chunk(part, first_row=row))
        row += len(part)
        out += good.close.tolist()
        events += evs
    return out, events, v


def test_a_bad_first_candle_does_not_block_the_stream():
    prices = [100_000.0] + [100.0] * 8  # a first candle 1000x off, then the real level
    for split in (False, True):
        kept, events, v = _feed(prices, split=split)
        kinds = [(e.kind, e.reason, e.seq) for e in events]
        assert kinds == [("candle_rejected", "PRICE_JUMP", 1), ("candle_rejected", "PRICE_JUMP", 2),
                         ("candle_rejected", "PRICE_JUMP", 3),
                         ("price_reanchored", "PRICE_JUMP", 4)], split
        assert kept == [100_000.0] + [100.0] * 5
        assert v.reanchors == 1 and v.rejected["PRICE_JUMP"] == 3
        assert events[-1].detail["previous_close"] == 100_000.0


def test_a_lone_spike_is_refused_and_the_band_stays():
    kept, events, v = _feed([100.0, 100.0, 5_000.0, 101.0, 102.0, 5_000.0, 5_000.0, 99.0])
    assert [e.seq for e in events if e.kind == "candle_rejected"] == [2, 5, 6]
    assert v.reanchors == 0 and kept == [100.0, 100.0, 101.0, 102.0, 99.0]


def test_refusals_that_disagree_with_each_other_do_not_reanchor():
    kept, events, v = _feed([100.0, 5_000.0, 1.0, 5_000.0, 1.0, 5_000.0, 100.0])
    assert v.reanchors == 0 and v.rejected["PRICE_JUMP"] == 5 and kept == [100.0, 100.0]


def test_reanchor_after_zero_never_moves_the_band():
    kept, events, v = _feed([100_000.0] + [100.0] * 8, rules=CandleRules(reanchor_after=0))
    assert v.reanchors == 0 and kept == [100_000.0] and v.rejected["PRICE_JUMP"] == 8


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from([1.0, 100.0, 150.0, 5_000.0, 90_000.0]), min_size=1,
                max_size=40),
       st.integers(0, 4))
def test_chunking_never_changes_what_is_accepted(prices, k):
    rules = CandleRules(reanchor_after=k)
    whole, ev_whole, _ = _feed(prices, rules)
    split, ev_split, _ = _feed(prices, rules, split=True)
    assert whole == split
    assert sorted(e.event_id for e in ev_whole) == sorted(e.event_id for e in ev_split)
