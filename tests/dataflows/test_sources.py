"""Candle file reading and the Bytewax candle file source."""

from __future__ import annotations

import gzip
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSink, run_main

from gridflow.chunks import CandleChunk
from gridflow.config.models import DataFile
from gridflow.data import CANDLES_DIR, bundled_candle_files
from gridflow.data import candle_files as cf
from gridflow.data.candle_files import (
    parse_candle_file_name,
    read_candle_file,
    resolve_data_files,
)
from gridflow.dataflows.sources import CandleFilePartition, CandleFileSource, FileResumeState
from gridflow.operators.validation import CandleValidator

BTC_1H = CANDLES_DIR / "binance_BTC_USDT_1h.csv.gz"
SOL_1H = CANDLES_DIR / "binance_SOL_USDT_1h.csv.gz"
ADA_1H = CANDLES_DIR / "binance_ADA_USDT_1h.csv.gz"
BTC_1M = Path(__file__).resolve().parents[2].parent / "shared/data/candles/binance_BTC_USDT_1m.csv.gz"
HEADER = "timestamp,open,high,low,close,volume\n"
H = 3_600_000


# --------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("binance_BTC_USDT_1h.csv.gz", ("binance", "BTC/USDT", "1h")),
        ("binance_ETH_USDT_1m.csv", ("binance", "ETH/USDT", "1m")),
        ("binanceusdm_BTC_USDT_1h.csv.gz", ("binanceusdm", "BTC/USDT:USDT", "1h")),
        ("binancecoinm_BTC_USD_4h.csv", ("binancecoinm", "BTC/USD:BTC", "4h")),
        ("/some/dir/kraken_XRP_EUR_1d.csv.gz", ("kraken", "XRP/EUR", "1d")),
    ],
)
def test_parse_candle_file_name(name: str, expected: tuple[str, str, str]) -> None:
    assert parse_candle_file_name(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "binance_BTC_USDT_1h.json",
        "binance_BTCUSDT_1h.csv",
        "binance_BTC_USDT.csv.gz",
        "binance_btc_usdt_1h.csv",
        "binance_BTC_USDT_0h.csv",
        "binance_BTC_USDT_1x.csv",
        "BTC_USDT-1h.feather",
        "",
    ],
)
def test_parse_candle_file_name_refuses(name: str) -> None:
    with pytest.raises(ValueError, match="candle file name"):
        parse_candle_file_name(name)


# ------------------------------------------------------------------- reading


def test_read_bundled_file() -> None:
    d = read_candle_file(BTC_1H)
    assert set(d) == {"ts", "open", "high", "low", "close", "volume"}
    assert d["ts"].dtype == np.int64 and d["close"].dtype == np.float64
    assert all(a.shape == (73265,) and a.flags.c_contiguous for a in d.values())  # SOURCES.md
    assert d["ts"][0] == 1514764800000  # 2018-01-01T00:00Z
    assert d["ts"][-1] == 1778954400000  # 2026-05-16T18:00Z
    assert (d["open"][0], d["high"][0], d["low"][0], d["close"][0], d["volume"][0]) == (
        13715.65, 13715.65, 13400.01, 13529.01, 443.356199,
    )
    assert (np.diff(d["ts"]) > 0).all() and (d["ts"] % H == 0).all()
    gaps = np.diff(d["ts"]) // H - 1
    assert int((gaps > 0).sum()) == 27 and int(gaps.sum()) == 122  # SOURCES.md


@pytest.mark.parametrize(
    ("path", "rows"),
    [(CANDLES_DIR / f"binance_{s}_USDT_1h.csv.gz", n) for s, n in
     [("ADA", 70751), ("ETH", 73265), ("SOL", 50489), ("XRP", 70339)]],
)
def test_bundled_row_counts(path: Path, rows: int) -> None:
    assert len(read_candle_file(path)["ts"]) == rows
    assert len(bundled_candle_files()) == 5


def test_plain_csv_equals_gzip_and_fallback_equals_fast(tmp_path: Path) -> None:
    text = gzip.decompress(BTC_1H.read_bytes())
    plain = tmp_path / "plain.csv"
    plain.write_bytes(text)
    a, b = read_candle_file(BTC_1H), read_candle_file(plain)
    body = text[text.index(b"\n") + 1 :]
    slow = cf._slow_parse(plain, body)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
        np.testing.assert_array_equal(a[k], slow[k])  # same numbers, bit for bit


@pytest.mark.skipif(not BTC_1M.exists(), reason="a test about ../shared: needs ../shared "
                    "beside the repository")
def test_the_shared_1m_file_loads_whole() -> None:
    """../shared/data/SOURCES.md: 130,708 rows of Binance BTC/USDT 1m, ascending, no gap
    (its load time is measured in benchmarks/, not here)."""
    d = read_candle_file(BTC_1M)
    assert len(d["ts"]) == 130708
    assert np.all(np.diff(d["ts"]) == 60_000)


def _write(tmp_path: Path, name: str, text: str, gz: bool = False) -> Path:
    p = tmp_path / name
    p.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return p


T0, H = 1_704_067_200_000, 3_600_000  # 2024-01-01 00:00 UTC, one hour (ms)
MALFORMED = (
    HEADER
    + f"{T0},10,11,9,10.5,1\n"  # row 0 ok
    + f"{T0 + H},10,11,9,abc,1\n"  # row 1 non-number
    + f"{T0 + 2 * H},10,11,9,10.5\n"  # row 2 too few fields
    + "\n"  # blank line: ignored
    + f"{T0 + 3 * H},10,11,9,10.5,1,7\n"  # row 3 too many fields
    + f"{T0 + 4 * H}.0,10,11,9,10.5,1\n"  # row 4 non-integer ts
    + f"{T0 + 5 * H},1_0,11,9,10.5,1\n"  # row 5 python-only number syntax
    + f"{T0 + 6 * H},10,11,9,10.5,1\r\n"  # row 6 ok (CRLF)
    + f"{T0 + 7 * H},nan,11,9,10.5,1\n"  # row 7 parses; NON_POSITIVE_PRICE later
)


def test_malformed_rows_are_kept_as_markers(tmp_path: Path) -> None:
    p = _write(tmp_path, "binance_FOO_USDT_1h.csv.gz", MALFORMED, gz=True)
    d = read_candle_file(p)
    assert d["ts"].tolist() == [T0, -1, -1, -1, -1, -1, T0 + 6 * H, T0 + 7 * H]
    bad = d["ts"] == cf.MALFORMED_TS
    for k in ("open", "high", "low", "close", "volume"):
        assert np.isnan(d[k][bad]).all()
    assert d["close"][0] == 10.5 and np.isnan(d["open"][7])


@pytest.mark.parametrize(
    "header",
    ["timestamp,open,high,low,close\n", "time,open,high,low,close,volume\n",
     "open,timestamp,high,low,close,volume\n", "0,1,2,3,4,5\n", ""],
)
def test_bad_header_names_file_and_header(tmp_path: Path, header: str) -> None:
    text = header + "0,1,1,1,1,1\n"
    p = _write(tmp_path, "binance_FOO_USDT_1h.csv", text)
    with pytest.raises(ValueError, match="header") as ei:
        read_candle_file(p)
    found = text.split("\n")[0]  # with no header, the first row is what was found
    assert str(p) in str(ei.value) and f"found {found!r}" in str(ei.value)


def test_empty_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="found ''"):
        read_candle_file(_write(tmp_path, "binance_FOO_USDT_1h.csv.gz", "", gz=True))


def test_header_only_and_missing_file(tmp_path: Path) -> None:
    d = read_candle_file(_write(tmp_path, "x.csv", HEADER))
    assert all(a.shape == (0,) for a in d.values()) and d["ts"].dtype == np.int64
    with pytest.raises(FileNotFoundError):
        read_candle_file(tmp_path / "nope.csv")


def test_resolve_data_files(tmp_path: Path) -> None:
    res = resolve_data_files([DataFile(path=str(BTC_1H)), str(SOL_1H)])
    assert res == [(BTC_1H, "BTC/USDT", "1h"), (SOL_1H, "SOL/USDT", "1h")]
    odd = _write(tmp_path, "odd-name.csv", HEADER)
    assert resolve_data_files([DataFile(path=str(odd), symbol="X/Y", timeframe="4h")]) == [
        (odd, "X/Y", "4h")
    ]
    with pytest.raises(ValueError, match="odd-name.csv"):
        resolve_data_files([DataFile(path=str(odd), symbol="X/Y")])
    with pytest.raises(FileNotFoundError, match="nope_BTC_USDT_1h.csv"):
        resolve_data_files([DataFile(path=str(tmp_path / "nope_BTC_USDT_1h.csv"))])
    with pytest.raises(ValueError, match="duplicate symbol 'BTC/USDT'"):
        resolve_data_files([DataFile(path=str(BTC_1H)), DataFile(path=str(SOL_1H), symbol="BTC/USDT")])


# -------------------------------------------------------------------- source


def _run(source: CandleFileSource, validate: bool = False) -> list:
    flow = Dataflow("test_candle_source")
    s = op.input("candles", flow, source)
    if validate:
        keyed = op.key_on("by_symbol", s, lambda ch: ch.symbol)

        def step(state: CandleValidator | None, ch: CandleChunk):
            state = state or CandleValidator()
            good, events = state.validate(ch)
            return state, (good, events, dict(state.rejected))

        s = op.stateful_map("validate", keyed, step)
    out: list = []
    op.output("out", s, TestingSink(out))
    run_main(flow)
    return out


def test_source_in_bytewax_flow() -> None:
    out = _run(CandleFileSource([DataFile(path=str(SOL_1H)), DataFile(path=str(ADA_1H))],
                                chunk_size=5000))
    assert all(isinstance(c, CandleChunk) for c in out)
    for path, sym in ((SOL_1H, "SOL/USDT"), (ADA_1H, "ADA/USDT")):
        full = read_candle_file(path)
        chunks = [c for c in out if c.symbol == sym]
        n = len(full["ts"])
        assert len(chunks) == -(-n // 5000)
        assert [c.first_row for c in chunks] == list(range(0, n, 5000))
        assert all(len(c) == 5000 for c in chunks[:-1])
        assert [c.last for c in chunks] == [False] * (len(chunks) - 1) + [True]
        assert all(c.timeframe == "1h" for c in chunks)
        for k in full:
            np.testing.assert_array_equal(np.concatenate([getattr(c, k) for c in chunks]), full[k])


def test_malformed_file_in_flow_is_refused_and_flow_goes_on(tmp_path: Path) -> None:
    p = _write(tmp_path, "binance_FOO_USDT_1h.csv", MALFORMED)
    out = _run(CandleFileSource([str(p), str(SOL_1H)], chunk_size=3), validate=True)
    foo = [v for k, v in out if k == "FOO/USDT"]
    assert [len(g) for g, _, _ in foo] == [1, 0, 1]
    assert foo[-1][0].last
    events = [e for _, evs, _ in foo for e in evs]
    assert [(e.seq, e.reason) for e in events] == [
        (1, "MALFORMED_ROW"), (2, "MALFORMED_ROW"), (3, "MALFORMED_ROW"),
        (4, "MALFORMED_ROW"), (5, "MALFORMED_ROW"), (7, "NON_POSITIVE_PRICE"),
    ]
    assert events[0].event_id == "candle_rejected:FOO/USDT:1"
    assert events[0].ts_ms == -1 and "could not be parsed" in events[0].detail["message"]
    assert foo[-1][2]["MALFORMED_ROW"] == 5 and foo[-1][2]["NON_POSITIVE_PRICE"] == 1
    sol = [v for k, v in out if k == "SOL/USDT"]
    assert sum(len(g) for g, _, _ in sol) == 50489 and not any(e for _, e, _ in sol)


def test_empty_file_gives_one_empty_last_chunk(tmp_path: Path) -> None:
    p = _write(tmp_path, "binance_FOO_USDT_1h.csv", HEADER)
    part = CandleFileSource([str(p)]).build_part("candles", "FOO/USDT", None)
    (chunk,) = part.next_batch()
    assert len(chunk) == 0 and chunk.last and chunk.ts.dtype == np.int64
    with pytest.raises(StopIteration):
        part.next_batch()


def test_resume_continues_at_the_row() -> None:
    src = CandleFileSource([str(BTC_1H)], chunk_size=1000)
    full = read_candle_file(BTC_1H)
    part = src.build_part("candles", "BTC/USDT", FileResumeState(12345, False))
    (chunk,) = part.next_batch()
    assert chunk.first_row == 12345 and len(chunk) == 1000
    np.testing.assert_array_equal(chunk.ts, full["ts"][12345:13345])
    assert part.snapshot() == (13345, False)

    # Stop anywhere, rebuild from the snapshot: the concatenation is the file.
    part = src.build_part("candles", "BTC/USDT", None)
    got = [part.next_batch()[0] for _ in range(7)]
    part = src.build_part("candles", "BTC/USDT", part.snapshot())
    while True:
        try:
            got += part.next_batch()
        except StopIteration:
            break
    np.testing.assert_array_equal(np.concatenate([c.ts for c in got]), full["ts"])
    assert got[-1].last and not any(c.last for c in got[:-1])
    assert part.snapshot() == (73265, True)

    done = src.build_part("candles", "BTC/USDT", part.snapshot())
    with pytest.raises(StopIteration):
        done.next_batch()
    with pytest.raises(ValueError, match="resume row"):
        src.build_part("candles", "BTC/USDT", (73266, False))


def test_bytewax_recovery_resumes_without_loss_or_doubles(tmp_path: Path) -> None:
    init_db_dir(tmp_path, 1)
    crash_at: list[int | None] = [20_000]

    def build(out: list) -> Dataflow:
        flow = Dataflow("recovery_test")
        s = op.input("candles", flow, CandleFileSource([str(SOL_1H)], chunk_size=1000))

        def boom(ch: CandleChunk) -> CandleChunk:
            if crash_at[0] is not None and ch.first_row >= crash_at[0]:
                raise RuntimeError("simulated crash")
            return ch

        op.output("out", op.map("boom", s, boom), TestingSink(out))
        return flow

    first: list[CandleChunk] = []
    with pytest.raises(Exception, match="boom"):  # BytewaxRuntimeError names the step
        run_main(build(first), epoch_interval=timedelta(0),
                 recovery_config=RecoveryConfig(str(tmp_path)))
    crash_at[0] = None
    second: list[CandleChunk] = []
    run_main(build(second), epoch_interval=timedelta(0),
             recovery_config=RecoveryConfig(str(tmp_path)))
    assert first[-1].first_row < second[0].first_row <= 20_000
    got = first + second
    # one snapshot per epoch (= per chunk): the restart neither skips nor repeats rows
    np.testing.assert_array_equal(np.concatenate([c.ts for c in got]),
                                  read_candle_file(SOL_1H)["ts"])
    assert [c.last for c in got].count(True) == 1 and got[-1].last


def test_chunks_are_read_only_views() -> None:
    part = CandleFilePartition(SOL_1H, "SOL/USDT", "1h", chunk_size=10)
    (chunk,) = part.next_batch()
    with pytest.raises(ValueError):
        chunk.close[0] = 1.0


def test_pacing() -> None:
    src = CandleFileSource([str(SOL_1H)], chunk_size=100, pace_s=5.0)
    part = src.build_part("candles", "SOL/USDT", None)
    assert part.next_awake() is None  # first batch right away
    before = datetime.now(timezone.utc)
    part.next_batch()
    awake = part.next_awake()
    assert awake is not None and (awake - before).total_seconds() == pytest.approx(5.0, abs=0.5)

    fast = CandleFileSource([str(SOL_1H)], chunk_size=100).build_part("c", "SOL/USDT", None)
    fast.next_batch()
    assert fast.next_awake() is None


def test_source_argument_checks(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        CandleFileSource([str(SOL_1H)], chunk_size=0)
    with pytest.raises(ValueError, match="pace_s"):
        CandleFileSource([str(SOL_1H)], pace_s=-1)
    with pytest.raises(FileNotFoundError):
        CandleFileSource([str(tmp_path / "binance_BTC_USDT_1h.csv")])
    src = CandleFileSource([(str(SOL_1H), "SOL/USDT:USDT", "1h"), str(ADA_1H)])
    assert src.list_parts() == ["SOL/USDT:USDT", "ADA/USDT"]
