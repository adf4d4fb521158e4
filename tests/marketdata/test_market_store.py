"""The market-data store: specs, Parquet series with manifests, and every reader
(replay, sweep) taking a series where it takes a candle file."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridflow.cli import main
from gridflow.config.models import DataFile
from gridflow.data import bundled_candle_files
from gridflow.data.candle_files import read_candle_file, resolve_data_files
from gridflow.data.store import CandleStore, Provenance
from gridflow.ops.market_data import check_series, import_candle_file
from gridflow.series_spec import SeriesKey, is_spec, parse_spec

H = 3_600_000
T0 = 1_700_000_000_000 // H * H


def cols(ts, price=100.0):
    ts = np.asarray(ts, np.int64)
    p = np.full(ts.size, price)
    return {"ts": ts, "open": p, "high": p + 1, "low": p - 1, "close": p,
            "volume": np.ones(ts.size)}


PROV = Provenance(source="test", at_ms=0, first_ts=0, last_ts=0, rows=1)


def test_specs_parse_and_are_told_from_paths():
    k = parse_spec("binanceusdm:BTC/USDT:USDT@1m")
    assert (k.exchange, k.symbol, k.timeframe) == ("binanceusdm", "BTC/USDT:USDT", "1m")
    assert k.symbol_dir == "BTC_USDT-USDT" and k.spec == "binanceusdm:BTC/USDT:USDT@1m"
    assert is_spec("binance:BTC/USDT@1h")
    for path in ("data/x.csv@BTC/USDT", "/tmp/a:b@1h", "./x:y@1h", "file.csv", "C.csv:x@1h"):
        assert not is_spec(path), path
    for bad in ("binance:BTCUSDT@1h", "binance:BTC/USDT@7q", "binance:BTC/USDT", ":A/B@1h",
                "bin ance:A/B@1h"):
        with pytest.raises(ValueError):
            parse_spec(bad)


@given(st.text(max_size=30))
def test_any_text_is_a_spec_or_a_clear_error(text):
    try:
        k = parse_spec(text)
    except ValueError as exc:
        assert str(exc)
    else:
        assert parse_spec(k.spec) == k


def test_writes_merge_by_open_time_and_reads_slice(tmp_path):
    store = CandleStore(tmp_path)
    key = SeriesKey("binance", "BTC/USDT", "1h")
    assert store.write(key, cols(T0 + H * np.array([3, 1, 2])), PROV) == 3
    assert store.write(key, cols(T0 + H * np.array([2, 4]), price=200.0), PROV) == 1
    got = store.read(key)
    assert got["ts"].tolist() == (T0 + H * np.arange(1, 5)).tolist()
    assert got["close"].tolist() == [100.0, 200.0, 100.0, 200.0]  # the new row wins
    part = store.read(key, T0 + 2 * H, T0 + 4 * H)
    assert part["ts"].tolist() == [T0 + 2 * H, T0 + 3 * H]
    m = store.manifest(key)
    assert (m.rows, m.first_ts, m.last_ts) == (4, T0 + H, T0 + 4 * H)
    assert [k.spec for k in store.keys()] == ["binance:BTC/USDT@1h"]
    assert read_candle_file(store.series_dir(key))["ts"].tolist() == got["ts"].tolist()
    with pytest.raises(ValueError, match="equal-length"):
        store.write(key, {**cols([T0]), "open": np.ones(2)}, PROV)
    with pytest.raises(FileNotFoundError, match="not in the market-data store"):
        store.read(SeriesKey("binance", "ETH/USDT", "1h"))


def test_bundled_files_import_with_their_gaps_and_check_clean(tmp_path):
    store = CandleStore(tmp_path)
    path = next(p for p in bundled_candle_files() if "BTC_USDT" in p.name)
    out = import_candle_file(store, path, "binance")
    assert out["added"] == 73265 and out["refused"] == {} and out["known_gaps"] == 27
    key = SeriesKey("binance", "BTC/USDT", "1h")
    assert np.array_equal(store.read(key)["close"], read_candle_file(path)["close"])
    rep = check_series(store, key)
    assert rep["ok"] and rep["unknown_gaps"] == [] and rep["refused"] == {}
    again = import_candle_file(store, path, "binance")
    assert again["added"] == 0 and len(store.manifest(key).known_gaps) == 27
    # importing again is no refusal: the check still passes (it counted every row as a
    # DUPLICATE_TS refusal, and the check failed for good)
    assert again["refused"] == {} and again["already_stored"] == 73265
    assert store.manifest(key).refused == {} and check_series(store, key)["ok"]
    assert main(["data", "check", "--store", str(tmp_path), key.spec]) == 0


def test_a_hole_nobody_knows_fails_the_check(tmp_path, capsys):
    store = CandleStore(tmp_path)
    key = SeriesKey("binance", "BTC/USDT", "1h")
    store.write(key, cols(T0 + H * np.array([0, 1, 4])), PROV)
    rep = check_series(store, key)
    assert not rep["ok"] and [n for _, n in rep["unknown_gaps"]] == [2]
    assert main(["data", "check", "--store", str(tmp_path), key.spec]) == 1


def test_replay_from_the_store_journals_what_the_file_replay_journals(tmp_path, capsys,
                                                                       monkeypatch):
    monkeypatch.setenv("GRIDFLOW_STORE", str(tmp_path / "store"))
    files = [p for p in bundled_candle_files() if p.name.split("_")[1] in ("BTC", "ETH")]
    assert main(["data", "import", *map(str, files)]) == 0
    common = ["--start", "2023-06-01", "--end", "2024-01-01", "--no-progress", "--json"]
    assert main(["replay", "--db", f"sqlite:///{tmp_path / 'f.db'}", "--data",
                 *map(str, files), *common]) == 0
    assert main(["replay", "--db", f"sqlite:///{tmp_path / 's.db'}", "--data",
                 "binance:BTC/USDT@1h", "binance:ETH/USDT@1h", *common]) == 0
    capsys.readouterr()
    outs = []
    for db in ("f.db", "s.db"):
        assert main(["journal", "--db", f"sqlite:///{tmp_path / db}"]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1] and outs[0].count("\n") > 100


def test_resolving_a_spec_the_store_lacks_names_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDFLOW_STORE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="binance:DOGE/USDT@1h"):
        resolve_data_files([DataFile(path="binance:DOGE/USDT@1h")])
