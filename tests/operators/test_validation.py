"""Bulk candle validation: rules, reason codes, ordering, agreement with `Candle`."""

from __future__ import annotations

import json
import math
import pickle
import re
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gridflow.chunks import CandleChunk
from gridflow.data import bundled_candle_files
from gridflow.data.candle_files import parse_candle_file_name, read_candle_file
from gridflow.events import Candle
from gridflow.operators.validation import NO_TS, REASONS, CandleValidator, validate_chunk

H = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC: candle times are plausible ms
NAN, INF = float("nan"), float("inf")
GOOD = (10.0, 11.0, 9.0, 10.5, 2.0)  # open, high, low, close, volume


def chunk(rows: list[tuple], symbol: str = "BTC/USDT", tf: str = "1h", first_row: int = 0,
          last: bool = False) -> CandleChunk:
    """rows: (ts, open, high, low, close, volume)."""
    a = np.array([r[1:] for r in rows], dtype=np.float64).reshape(-1, 5)
    ts = np.array([r[0] for r in rows], dtype=np.int64)
    return CandleChunk(symbol, tf, ts, a[:, 0].copy(), a[:, 1].copy(), a[:, 2].copy(),
                       a[:, 3].copy(), a[:, 4].copy(), first_row, last)


def good(i: int) -> tuple:
    return (T0 + i * H, *GOOD)


# ------------------------------------------------------------------- clean data


@pytest.mark.parametrize("path", bundled_candle_files(), ids=lambda p: p.name)
def test_bundled_files_are_clean(path) -> None:
    _, symbol, tf = parse_candle_file_name(path.name)
    d = read_candle_file(path)
    ch = CandleChunk(symbol, tf, d["ts"], d["open"], d["high"], d["low"], d["close"],
                     d["volume"], 0, True)
    acc, events, last = validate_chunk(ch, NO_TS)
    assert acc is ch and events == [] and last == int(d["ts"][-1])


def test_throughput_clean_chunks() -> None:
    d = read_candle_file(bundled_candle_files()[1])  # BTC 1h, 73k rows
    n = len(d["ts"])
    parts = [
        CandleChunk("BTC/USDT", "1h", *(d[k][s : s + 2000] for k in
                    ("ts", "open", "high", "low", "close", "volume")), s)
        for s in range(0, n, 2000)
    ]
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        last = NO_TS
        for p in parts:
            _, ev, last = validate_chunk(p, last)
        best = min(best, time.perf_counter() - t0)
    rate = n / best
    print(f"validate_chunk, 2000-row clean chunks: {rate / 1e6:.0f} M candles/s")
    assert rate > 5e6


# ---------------------------------------------------------------- each rule


@pytest.mark.parametrize(
    ("bad", "reason", "message"),
    [
        ((-1, NAN, NAN, NAN, NAN, NAN), "MALFORMED_ROW", "could not be parsed"),
        ((-7200000, *GOOD), "MALFORMED_ROW", "negative"),
        ((T0 + H, 0.0, 11.0, 9.0, 10.5, 2.0), "NON_POSITIVE_PRICE", "open=0.0"),
        ((T0 + H, 10.0, INF, 9.0, 10.5, 2.0), "NON_POSITIVE_PRICE", "high=inf"),
        ((T0 + H, 10.0, 11.0, -9.0, 10.5, 2.0), "NON_POSITIVE_PRICE", "low=-9.0"),
        ((T0 + H, 10.0, 11.0, 9.0, NAN, 2.0), "NON_POSITIVE_PRICE", "close=nan"),
        ((T0 + H, 10.0, 11.0, 9.0, 10.5, -0.5), "NEGATIVE_VOLUME", "volume=-0.5"),
        ((T0 + H, 10.0, 11.0, 9.0, 10.5, NAN), "NEGATIVE_VOLUME", "volume=nan"),
        ((T0 + H, 10.0, 10.4, 9.0, 10.5, 2.0), "HIGH_BELOW_BODY", "high=10.4"),
        ((T0 + H, 10.0, 11.0, 10.1, 10.5, 2.0), "LOW_ABOVE_BODY", "low=10.1"),
        ((T0 + H + 1, *GOOD), "MISALIGNED_TS", "not a multiple of 1h"),
        ((T0, *GOOD), "DUPLICATE_TS", "equals the last accepted"),
    ],
)
def test_each_rule(bad: tuple, reason: str, message: str) -> None:
    rows = [good(0), bad, good(2)]
    ch = chunk(rows, first_row=100, last=True)
    v = CandleValidator()
    acc, events = v.validate(ch)
    assert acc.ts.tolist() == [T0, T0 + 2 * H] and acc.last and acc.first_row == 100
    for k in ("open", "high", "low", "close", "volume"):  # valid rows untouched
        assert getattr(acc, k).tolist() == [getattr(ch, k)[0], getattr(ch, k)[2]]
    (e,) = events
    assert (e.kind, e.reason, e.symbol, e.seq) == ("candle_rejected", reason, "BTC/USDT", 101)
    assert e.event_id == "candle_rejected:BTC/USDT:101"
    assert e.ts_ms == (bad[0] if bad[0] >= 0 else -1)
    assert e.detail["ts_ms"] == bad[0] and e.detail["last_ts_ms"] == T0
    assert e.detail["last_close"] == GOOD[3]
    assert e.detail["message"].startswith(reason) and message in e.detail["message"]
    json.dumps(e.detail, allow_nan=False)  # journal-safe
    assert v.rejected[reason] == 1 and v.rejected_total == 1
    assert (v.rows, v.accepted, v.last_ts, v.last_close) == (3, 2, T0 + 2 * H, GOOD[3])


def test_out_of_order_and_sequential_rule() -> None:
    rows = [good(5), good(6), good(6), good(3), (T0 + 7 * H, *GOOD[:4], -1.0), good(7),
            good(6)]
    acc, events, last = validate_chunk(chunk(rows), T0 + 4 * H)
    assert acc.ts.tolist() == [T0 + 5 * H, T0 + 6 * H, T0 + 7 * H] and last == T0 + 7 * H
    assert [(e.seq, e.reason, e.detail["last_ts_ms"] - T0) for e in events] == [
        (2, "DUPLICATE_TS", 6 * H),
        (3, "OUT_OF_ORDER", 6 * H),
        (4, "NEGATIVE_VOLUME", 6 * H),  # refused, so ts 7h stays free ...
        (6, "OUT_OF_ORDER", 7 * H),
    ]  # ... and row 5 (7h) is accepted, not a duplicate


def test_first_failing_rule_wins() -> None:
    rows = [
        (-1, 0.0, -1.0, NAN, 1.0, -1.0),  # everything wrong -> MALFORMED_ROW
        (5, 0.0, 1.0, 1.0, 1.0, -1.0),  # ts range before prices
        (T0 + H + 5, 0.0, 1.0, 1.0, 1.0, -1.0),  # price before volume and alignment
        (T0 + H + 5, 5e-324, 1.0, 1.0, 1.0, -1.0),  # subnormal before volume
        (T0 + H + 5, 1.0, 1.0, 1.0, 1.0, -1.0),  # volume before alignment
        (T0 + H + 5, 2.0, 1.0, 3.0, 2.0, 1.0),  # high below body before low above body
        (T0 + H + 5, *GOOD),  # misaligned
    ]
    _, events, last = validate_chunk(chunk(rows), NO_TS)
    assert [e.reason for e in events] == [
        "MALFORMED_ROW", "TS_OUT_OF_RANGE", "NON_POSITIVE_PRICE", "IMPLAUSIBLE_PRICE",
        "NEGATIVE_VOLUME", "HIGH_BELOW_BODY", "MISALIGNED_TS",
    ]
    assert last == NO_TS


def test_across_chunks_and_pickle() -> None:
    v = CandleValidator()
    a, e1 = v.validate(chunk([good(0), good(1)], first_row=0))
    v = pickle.loads(pickle.dumps(v))  # Bytewax snapshots the state
    b, e2 = v.validate(chunk([good(1), good(0), good(2)], first_row=2, last=True))
    assert len(a) == 2 and not e1
    assert b.ts.tolist() == [T0 + 2 * H] and b.first_row == 4 and b.last
    assert [(e.seq, e.reason) for e in e2] == [(2, "DUPLICATE_TS"), (3, "OUT_OF_ORDER")]
    assert v.rejected == {**dict.fromkeys(REASONS, 0), "DUPLICATE_TS": 1, "OUT_OF_ORDER": 1}
    with pytest.raises(ValueError, match="ETH/USDT"):
        v.validate(chunk([good(3)], symbol="ETH/USDT"))


def test_chunks_without_file_rows_use_the_stream_row() -> None:
    v = CandleValidator()
    v.validate(chunk([good(0), good(1)], first_row=-1))
    _, events = v.validate(chunk([good(2), good(2)], first_row=-1))
    assert [(e.event_id, e.seq) for e in events] == [("candle_rejected:BTC/USDT:3", 3)]


def test_all_refused_and_empty_chunks() -> None:
    ch = chunk([(-1, NAN, NAN, NAN, NAN, NAN)] * 2, last=True)
    acc, events, last = validate_chunk(ch, T0 + 5 * H)
    assert len(acc) == 0 and acc.last and len(events) == 2 and last == T0 + 5 * H
    empty = chunk([], last=True)
    assert validate_chunk(empty, T0 + 5 * H) == (empty, [], T0 + 5 * H)


# ------------------------------------------------- agreement with the Candle model

CODE_RE = re.compile("|".join(REASONS))
SPECIAL = st.sampled_from([0.0, -0.0, -1.0, NAN, INF, -INF, 5e-324, 1e-310, 1e308, 2e9])
PRICE = st.one_of(st.floats(0.5, 1e5), SPECIAL)
OFFSET = st.one_of(st.just(0.0), st.floats(-3.0, 50.0), SPECIAL)
VOLUME = st.one_of(st.floats(0.0, 1e6), SPECIAL)
JUMP = 10.0  # CandleRules().max_jump_factor
REANCHOR = 3  # CandleRules().reanchor_after


@st.composite
def candle_rows(draw) -> tuple[list[tuple], int, float]:
    last_ts = draw(st.sampled_from([NO_TS, T0, T0 + 5 * H, T0 + 20 * H]))
    last_close = NAN if last_ts == NO_TS else draw(st.sampled_from([10.0, 1000.0, 5.0]))
    rows: list[tuple] = []
    for _ in range(draw(st.integers(1, 30))):
        kind = draw(st.sampled_from(["next", "next", "next", "slot", "dup", "mis", "neg",
                                     "sec", "us"]))
        prev = [r[0] for r in rows]
        slot = T0 + draw(st.integers(0, 30)) * H
        if kind == "next":
            ts = (max(prev + [last_ts, T0 - H]) // H + draw(st.integers(1, 3))) * H
        elif kind == "dup" and prev:
            ts = draw(st.sampled_from(prev))
        elif kind == "mis":
            ts = slot + draw(st.integers(1, H - 1))
        elif kind == "neg":
            ts = draw(st.sampled_from([-1, -H, -5]))
        elif kind == "sec":
            ts = slot // 1000
        elif kind == "us":
            ts = slot * 1000
        else:
            ts = slot
        o, c = draw(PRICE), draw(PRICE)
        h = max(o, c) + draw(OFFSET)
        lo = min(o, c) - draw(OFFSET)
        rows.append((ts, o, h, lo, c, draw(VOLUME)))
    return rows, last_ts, last_close


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(candle_rows())
def test_agrees_with_candle_model(case: tuple[list[tuple], int, float]) -> None:
    """Row rules: the Candle model's code; then the stream rules, row by row."""
    rows, last_ts, last_close = case
    acc, events, new_last = validate_chunk(chunk(rows, first_row=0), last_ts,
                                           last_close=last_close)
    reason_of = {e.seq: e.reason for e in events if e.kind == "candle_rejected"}
    expected_accepted = []
    last, lc = last_ts, last_close
    run, run_close = 0, math.nan  # PRICE_JUMP refusals in a row that agree (re-anchoring)
    for i, (ts, o, h, lo, c, v) in enumerate(rows):
        try:
            Candle(symbol="BTC/USDT", timeframe="1h", ts_ms=ts, open=o, high=h, low=lo,
                   close=c, volume=v)
            err = None
        except ValidationError as exc:
            err = str(exc)
        if err is not None:  # the model refuses -> so does validate_chunk, same code
            assert i in reason_of, (rows[i], err)
            assert CODE_RE.findall(err) == [reason_of[i]], (rows[i], err)
        elif ts == last:
            assert reason_of.get(i) == "DUPLICATE_TS", rows[i]
        elif ts < last:
            assert reason_of.get(i) == "OUT_OF_ORDER", rows[i]
        elif (lo * JUMP < lc or h > lc * JUMP) and not (
                run >= REANCHOR and not (lo * JUMP < run_close or h > run_close * JUMP)):
            assert reason_of.get(i) == "PRICE_JUMP", (rows[i], lc)
            agrees = run > 0 and not (lo * JUMP < run_close or h > run_close * JUMP)
            run, run_close = (run + 1 if agrees else 1), c
        else:
            assert i not in reason_of, (rows[i], reason_of.get(i))
            expected_accepted.append(ts)
            last, lc = ts, c
            run, run_close = 0, math.nan
    assert acc.ts.tolist() == expected_accepted
    assert new_last == last
    assert len(reason_of) + len(acc) == len(rows)


def test_data_gaps_of_the_bundled_btc_file_match_its_provenance_note() -> None:
    """SOURCES.md: binance_BTC_USDT_1h has 27 gaps / 122 missing candles."""
    from gridflow.data import CANDLES_DIR
    from gridflow.data.candle_files import read_candle_file

    d = read_candle_file(CANDLES_DIR / "binance_BTC_USDT_1h.csv.gz")
    v = CandleValidator()
    events = []
    for a in range(0, len(d["ts"]), 5000):  # chunked: gaps across chunk borders count too
        sl = slice(a, a + 5000)
        chunk = CandleChunk("BTC/USDT", "1h", d["ts"][sl], d["open"][sl], d["high"][sl],
                            d["low"][sl], d["close"][sl], d["volume"][sl], a)
        _, refused, gaps = v.check(chunk)
        events += refused + gaps
    gaps = [e for e in events if e.kind == "data_gap"]
    assert v.gaps == len(gaps) == 27
    assert sum(e.detail["missing"] for e in gaps) == 122
    assert v.rejected_total == 0
    biggest = max(gaps, key=lambda e: e.detail["missing"])
    assert biggest.detail["missing"] == 33 and biggest.detail["from_ts_ms"] == 1518051600000 - 3_600_000
