"""Fuzzed candle FILES through what ``gridflow replay`` does with them: resolve the file,
read it before the flow starts (``RunPlan.expected_candles``), then the source partition
(window, warm-up, pre-roll) and the validator, chunk by chunk.

Every input either fails with ONE clear ``ValueError`` naming the file (bad header, not
text, corrupt gzip), or loads with every row accounted for: accepted (plausible, in
order, within the jump band) or refused with a reason code and a message that starts
with it. Never another exception. Inputs: 4,000 structured CSVs (numbers, specials, any
float64 bit pattern, timestamps in other units, garbage lines, windows, chunkings,
plain/gzip/truncated), 2,000 random byte strings (bare, after a valid header, gzip'ed)
and a table of hand cases.
"""

from __future__ import annotations

import gzip
import json
import logging
import random
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridflow.candle_rules import PRICE_FLOOR, TS_MAX_MS, TS_MIN_MS
from gridflow.config.candles import CandleRules
from gridflow.config.models import DataFile
from gridflow.data.candle_files import read_candle_file, resolve_data_files
from gridflow.dataflows.sources import CandleFilePartition
from gridflow.operators.validation import REASONS, CandleValidator

H = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
HEADER = "timestamp,open,high,low,close,volume"
FUZZ = settings(deadline=None, database=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])


def load(path: Path, start_ms=None, end_ms=None, warmup=0, chunk_size=5,
         rules: CandleRules | None = None):
    """The replay's path for one file. Returns ``(error, None)`` or ``(None, result)``
    with ``result = (partition, validator, [(chunk, accepted, refused, gaps), ...])``."""
    try:
        ((p, sym, tf),) = resolve_data_files([DataFile(path=str(path), symbol="BTC/USDT",
                                                       timeframe="1h")])
        read_candle_file(p)  # what the CLI reads before the flow starts
    except ValueError as exc:
        return exc, None
    part = CandleFilePartition(p, sym, tf, chunk_size, start_ms=start_ms, end_ms=end_ms,
                               warmup=warmup)
    v = CandleValidator(rules=rules or CandleRules())
    out = []
    while True:
        try:
            (chunk,) = part.next_batch()
        except StopIteration:
            break
        out.append((chunk, *v.check(chunk)))
    return None, (part, v, out)


def check(path: Path, **kw) -> tuple[Exception | None, list]:
    """:func:`load` plus every invariant; returns the error or the refusal events."""
    err, res = load(path, **kw)
    if err is not None:
        msg = str(err)
        assert isinstance(err, ValueError) and "\n" not in msg and path.name in msg, msg
        return err, []
    part, v, out = res
    chunks = [c for c, *_ in out]
    assert [c.first_row for c in chunks] == [0] + list(np.cumsum([len(c) for c in chunks]))[:-1]
    assert sum(len(c) for c in chunks) == part.n_rows == v.rows
    assert [c.last for c in chunks].count(True) == 1 and chunks[-1].last
    journaled = [e for *_, refused, _ in out for e in refused]
    moved = [e for e in journaled if e.kind == "price_reanchored"]
    events = [e for e in journaled if e.kind != "price_reanchored"]
    assert v.accepted + v.prerolled + len(events) == v.rows
    assert len(moved) == v.reanchors
    assert len({e.event_id for e in journaled}) == len(journaled)
    for e in moved:
        assert e.reason == "PRICE_JUMP" and e.detail["refused_in_a_row"] >= 1
        json.dumps(e.detail, allow_nan=False)
    for e in events:
        assert e.kind == "candle_rejected" and e.reason in REASONS, e
        msg = e.detail["message"]
        assert msg.startswith(e.reason + ": ") and "\n" not in msg, msg
        json.dumps(e.detail, allow_nan=False)
    good = [g for _, g, _, _ in out]
    assert all(len(g) == 0 for c, g in zip(chunks, good) if c.preroll)
    ts = np.concatenate([g.ts for g in good])
    assert ((ts >= TS_MIN_MS) & (ts <= TS_MAX_MS) & (ts % H == 0)).all()
    assert (np.diff(ts) > 0).all()
    rules = kw.get("rules") or CandleRules()
    px = {k: np.concatenate([getattr(g, k) for g in good]) for k in ("open", "high", "low",
                                                                    "close", "volume")}
    for k in ("open", "high", "low", "close"):
        assert ((px[k] >= PRICE_FLOOR) & (px[k] <= rules.max_price_quote)).all()
    assert ((px["volume"] >= 0) & np.isfinite(px["volume"])).all()
    f = rules.max_jump_factor
    banded = ~np.isin(ts[1:], [e.ts_ms for e in moved])  # a re-anchoring candle jumps
    assert (px["high"][1:] <= px["close"][:-1] * f)[banded].all()
    assert (px["low"][1:] * f >= px["close"][:-1])[banded].all()
    return None, events


# ----------------------------------------------------------------- the strategies

SPECIAL_NUMBERS = ["nan", "inf", "-inf", "1e308", "5e-324", "1e-310", "-1", "0", "-0.0", "2e9",
                   "1e999", " 1 ", "1_0", "abc", "", "0x10", "\u0661", "1e-3", "NaN", "+5"]
TS_KINDS = ["next"] * 8 + ["dup", "back", "sec", "us", "ns", "neg", "zero", "mis", "huge",
                           "float", "text"]


def _number(rng: random.Random) -> str:
    """A price or volume as text: ordinary, any float64 bit pattern, or a special."""
    k = rng.random()
    if k < 0.5:
        return repr(rng.uniform(0.01, 1e5))
    if k < 0.7:
        return repr(struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0])
    return rng.choice(SPECIAL_NUMBERS)


def _row(rng: random.Random, t: int) -> tuple[str, int]:
    """One data line and the next "current" time: mostly a plausible candle at the next
    hour, else a timestamp in another unit, a duplicate, a step back, garbage numbers."""
    kind = rng.choice(TS_KINDS)
    nt = t + H if kind == "next" else t
    ts = {"next": str(nt), "dup": str(t), "back": str(t - 5 * H), "sec": str(t // 1000),
          "us": str(t * 1000), "ns": str(t * 1_000_000), "neg": "-1", "zero": "0",
          "mis": str(t + 17), "huge": "9" * 25, "float": f"{t}.0", "text": "ts"}[kind]
    if rng.random() < 0.6:  # a plausible candle, maybe with one bad field
        p = rng.choice([0.02, 1.0, 100.0, 40_000.0])
        o, c = p * rng.uniform(0.8, 1.25), p * rng.uniform(0.8, 1.25)
        px = [repr(o), repr(max(o, c) * 1.01), repr(min(o, c) * 0.99), repr(c), "1.5"]
        if rng.random() < 0.4:
            px[rng.randrange(5)] = _number(rng)
    else:
        px = [_number(rng) for _ in range(5)]
    return ",".join([ts, *px]), nt


def _line(rng: random.Random, t: int) -> tuple[str, int]:
    k = rng.random()
    if k < 0.8:
        return _row(rng, t)
    if k < 0.87:  # garbage text, any code points
        return "".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(30))
                       ).replace("\n", " "), t
    if k < 0.9:
        return "", t
    line, t = _row(rng, t)
    return (line.rsplit(",", 1)[0] if k < 0.95 else line + ",7"), t


@st.composite
def csv_files(draw) -> tuple[bytes, dict]:
    """A candle file (bytes) and how to load it. Structure (header, encoding, window,
    chunking, rules) is drawn by hypothesis, the rows from a drawn seed (fast)."""
    header = draw(st.sampled_from([HEADER] * 40 + [
        "\ufeff" + HEADER, HEADER.replace(",", " , "), HEADER.upper(),
        "timestamp,open,high,low,close", HEADER + ",extra", "time,open,high,low,close,volume",
        "open,timestamp,high,low,close,volume", ""]))
    rng = random.Random(draw(st.integers(0, 2**32)))
    lines, t = [], T0 - 10 * H
    for _ in range(draw(st.integers(0, 40))):
        line, t = _line(rng, t)
        lines.append(line)
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = header + eol + eol.join(lines) + (eol if draw(st.booleans()) else "")
    raw = text.encode(draw(st.sampled_from(["utf-8", "latin-1"])), errors="replace")
    enc = draw(st.sampled_from(["plain"] * 7 + ["gzip"] * 9 + ["truncated", "trailing"] * 2))
    if enc != "plain":
        raw = gzip.compress(raw)
        if enc == "truncated":
            raw = raw[:rng.randrange(2, max(3, len(raw)))]
        elif enc == "trailing":
            raw += rng.randbytes(rng.randrange(1, 9))
    start = draw(st.one_of(st.none(), st.integers(-12, 30).map(lambda k: T0 + k * H)))
    end = draw(st.one_of(st.none(), st.integers(1, 30).map(
        lambda k: (start if start is not None else T0) + k * H)))
    window = {"start_ms": start, "end_ms": end, "warmup": draw(st.integers(0, 3)),
              "chunk_size": draw(st.integers(1, 12)),
              "rules": draw(st.sampled_from([None, CandleRules(max_jump_factor=1.5),
                                             CandleRules(max_price_quote=1e3)]))}
    return raw, window


@pytest.fixture(scope="module")
def fdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz_files")


@pytest.fixture(autouse=True, scope="module")
def _quiet_reader():
    """The reader's warning about malformed rows, thousands of times, costs seconds."""
    log = logging.getLogger("gridflow.data.candle_files")
    level = log.level
    log.setLevel(logging.ERROR)
    yield
    log.setLevel(level)


@settings(FUZZ, max_examples=4000)
@given(csv_files())
def test_structured_csv_files_load_or_fail_clearly(fdir: Path, case) -> None:
    raw, window = case
    p = fdir / "f_BTC_USDT_1h.csv"
    p.write_bytes(raw)
    check(p, **window)


@settings(FUZZ, max_examples=2000)
@given(st.binary(max_size=300), st.sampled_from(["bare", "header", "gzip", "gzip+header"]),
       st.integers(1, 9))
def test_random_bytes_load_or_fail_clearly(fdir: Path, blob: bytes, how: str,
                                           chunk_size: int) -> None:
    raw = (HEADER + "\n").encode() + blob if "header" in how else blob
    if "gzip" in how:
        raw = gzip.compress(raw)
    p = fdir / "r_BTC_USDT_1h.csv.gz"
    p.write_bytes(raw)
    err, _ = check(p, start_ms=T0, chunk_size=chunk_size)
    if how == "header":
        assert err is None  # after a valid header, any bytes are rows: refused one by one


# ---------------------------------------------------------------- hand cases


def _rows(*rows: str) -> str:
    return HEADER + "\n" + "".join(r + "\n" for r in rows)


def _good(i: int, p: float = 100.0) -> str:
    return f"{T0 + i * H},{p},{p * 1.01},{p * 0.99},{p},1"


MANY = _rows(*[_good(i) for i in range(20_000)])
HAND: list[tuple[str, bytes | str, dict, str | list[str]]] = [
    # (name, file content, load keywords, error text | reasons of the refused rows)
    ("empty", "", {}, "header must be"),
    ("header only", HEADER + "\n", {}, []),
    ("header, no newline", HEADER, {}, []),
    ("wrong header", "time,o,h,l,c,v\n1,2,3,4,5,6\n", {}, "header must be"),
    ("binary", bytes(range(256)), {}, "not text"),
    ("truncated gzip", gzip.compress(MANY.encode())[:-30], {}, "corrupt gzip"),
    ("gzip of nothing", gzip.compress(b""), {}, "header must be"),
    ("gzip header only", b"\x1f\x8b", {}, "corrupt gzip"),
    ("bad deflate block", b"\x1f\x8b\x08\x00" + b"\x00" * 6 + b"\xff" * 8, {}, "corrupt gzip"),
    ("BOM", "\ufeff" + _rows(_good(0)), {}, []),
    ("nan inf 1e308 5e-324 negative", _rows(
        _good(0), f"{T0 + H},nan,1,1,1,1", f"{T0 + 2 * H},1,inf,1,1,1",
        f"{T0 + 3 * H},1e308,1e308,1e308,1e308,1", f"{T0 + 4 * H},5e-324,5e-324,5e-324,5e-324,1",
        f"{T0 + 5 * H},-100,100,100,100,1", f"{T0 + 6 * H},100,100,100,100,-1", _good(7)), {},
        ["NON_POSITIVE_PRICE", "NON_POSITIVE_PRICE", "IMPLAUSIBLE_PRICE", "IMPLAUSIBLE_PRICE",
         "NON_POSITIVE_PRICE", "NEGATIVE_VOLUME"]),
    ("seconds", _rows(*[f"{(T0 + i * H) // 1000},1,1,1,1,1" for i in range(3)]), {},
     ["TS_OUT_OF_RANGE"] * 3),
    ("microseconds", _rows(_good(0), f"{(T0 + H) * 1000},100,101,99,100,1", _good(2)), {},
     ["TS_OUT_OF_RANGE"]),
    ("year 55970", _rows(f"{1_704_067_200_000_000},1,1,1,1,1"), {}, ["TS_OUT_OF_RANGE"]),
    ("beyond int64", _rows("9" * 30 + ",1,1,1,1,1", _good(0)), {}, ["MALFORMED_ROW"]),
    ("duplicate and out of order", _rows(_good(0), _good(1), _good(1), _good(0), _good(2)), {},
     ["DUPLICATE_TS", "OUT_OF_ORDER"]),
    ("a bad tick and back", _rows(_good(0), _good(1, 100_000.0), _good(2), _good(3, 5.0)), {},
     ["PRICE_JUMP", "PRICE_JUMP"]),
    ("wrong field counts", _rows(_good(0), "1,2,3", _good(1) + ",9", "", _good(2)), {},
     ["MALFORMED_ROW", "MALFORMED_ROW"]),
    ("CRLF line ends", _rows(_good(0), _good(1)).replace("\n", "\r\n"), {}, []),
    ("malformed before the window", _rows(_good(0), "oops", _good(1), _good(2), _good(3)),
     {"start_ms": T0 + 2 * H}, ["MALFORMED_ROW"]),
    ("microseconds open no window", _rows(f"{(T0 + 9 * H) * 1000},1,1,1,1,1", _good(0), _good(5)),
     {"start_ms": T0 + 4 * H}, ["TS_OUT_OF_RANGE"]),
    ("window after the data", _rows(_good(0), "x", _good(1)), {"start_ms": T0 + 99 * H},
     ["MALFORMED_ROW"]),
    ("20,000 rows, one bad", MANY.replace(_good(12_345), f"{T0 + 12_345 * H},1,1,1,1,1"),
     {"chunk_size": 2000}, ["PRICE_JUMP"]),
    ("20,000 rows in a window", MANY, {"start_ms": T0 + 10_000 * H, "end_ms": T0 + 10_500 * H,
                                       "warmup": 50, "chunk_size": 64}, []),
]


@pytest.mark.parametrize(("name", "content", "kw", "expect"), HAND, ids=[h[0] for h in HAND])
def test_hand_made_files(tmp_path: Path, name, content, kw, expect) -> None:
    p = tmp_path / "hand_BTC_USDT_1h.csv"
    p.write_bytes(content.encode() if isinstance(content, str) else content)
    err, events = check(p, **kw)
    if isinstance(expect, str):
        assert err is not None and expect in str(err), (name, err)
    else:
        assert err is None, (name, err)
        assert [e.reason for e in events] == expect, [e.detail["message"] for e in events]
    if name in ("seconds", "microseconds"):
        assert all(f"looks like {name}" in e.detail["message"] for e in events)
    if name == "malformed before the window":
        assert events[0].seq == 1 and "could not be parsed" in events[0].detail["message"]


def test_the_hand_cases_and_the_fuzzers_cover_every_reason() -> None:
    seen = {r for *_, expect in HAND if isinstance(expect, list) for r in expect}
    assert seen | {"HIGH_BELOW_BODY", "LOW_ABOVE_BODY", "MISALIGNED_TS"} == set(REASONS)
    assert len(MANY.splitlines()) == 20_001
