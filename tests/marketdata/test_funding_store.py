"""Funding rates from the market-data store: ``exchange:symbol@funding`` reads like a
funding file in replay and sweep, and a store series' own funding is booked by default
(a perpetual backtest from the store used to pay no funding)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from gridflow.cli import main
from gridflow.data import bundled_candle_files
from gridflow.data.funding import (
    bundled_funding_files,
    funding_file_symbol,
    funding_source_exists,
    read_funding,
)
from gridflow.data.store import CandleStore, Provenance, SeriesKey

BTC_FUNDING = bundled_funding_files()["BTC/USDT"]
WINDOW = ["--start", "2023-06-01", "--end", "2024-01-01"]


def _store_funding(root, key: SeriesKey, scale: float = 1.0) -> None:
    ts, rate = read_funding(BTC_FUNDING)
    CandleStore(root).write_funding(key, ts, rate * scale, Provenance(
        source=f"file:{BTC_FUNDING.name}", at_ms=int(time.time() * 1000),
        first_ts=int(ts[0]), last_ts=int(ts[-1]), rows=len(ts)))


def _btc_store(tmp_path, capsys, monkeypatch, scale: float = 1.0) -> None:
    """A store at ``tmp_path/store`` ($GRIDFLOW_STORE) with the bundled BTC/USDT 1h
    candles (``binance:BTC/USDT@1h``) and BTC's funding rates times ``scale``
    (``binance:BTC/USDT@funding``)."""
    store = tmp_path / "store"
    monkeypatch.setenv("GRIDFLOW_STORE", str(store))
    btc = [p for p in bundled_candle_files() if p.name.startswith("binance_BTC_USDT_1h")]
    assert main(["data", "import", *map(str, btc)]) == 0
    capsys.readouterr()
    _store_funding(store, SeriesKey("binance", "BTC/USDT", "funding"), scale=scale)


def test_a_store_series_reads_as_the_file_it_came_from(tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDFLOW_STORE", str(tmp_path))
    key = SeriesKey("binanceusdm", "BTC/USDT:USDT", "funding")
    assert not funding_source_exists(key.spec)
    with pytest.raises(FileNotFoundError, match="binanceusdm:BTC/USDT:USDT@funding"):
        read_funding(key.spec)
    _store_funding(tmp_path, key)
    assert funding_source_exists(key.spec)
    ts, rate = read_funding(key.spec)
    f_ts, f_rate = read_funding(BTC_FUNDING)
    assert ts.dtype == np.int64 and np.array_equal(ts, f_ts) and np.array_equal(rate, f_rate)
    assert funding_file_symbol(key.spec) == "BTC/USDT:USDT"
    with pytest.raises(ValueError, match="candle series"):
        read_funding("binanceusdm:BTC/USDT:USDT@1h")


def _replay(tmp_path, name: str, capsys, *args: str) -> tuple[str, float]:
    """The replay's ``gridflow journal`` text and the funding it paid (quote)."""
    db = f"sqlite:///{tmp_path / name}"
    assert main(["replay", "--db", db, "--data", "binance:BTC/USDT@1h", *args, *WINDOW,
                 "--no-progress", "--json"]) == 0
    paid = json.loads(capsys.readouterr().out)["funding_paid"]
    assert main(["journal", "--db", db]) == 0
    return capsys.readouterr().out, paid


def test_replay_books_the_store_funding_of_its_store_series(tmp_path, capsys, monkeypatch):
    _btc_store(tmp_path, capsys, monkeypatch)
    from_file = _replay(tmp_path, "file.db", capsys, "--funding", str(BTC_FUNDING))
    by_default = _replay(tmp_path, "default.db", capsys)  # the store's, found by itself
    spot = _replay(tmp_path, "spot.db", capsys, "--funding", "none")
    assert by_default == from_file and from_file[0].count("\n") > 100
    assert from_file[1] != 0.0 and spot[1] == 0.0
    assert spot[0] != from_file[0]  # the trades' funding differs


def _sweep_funding(capsys, *args: str) -> list[float]:
    assert main(["sweep", "--strategy", "grid_atr", "--param", "atr_start=1,2",
                 "--exchange", "binance", "--symbols", "BTC/USDT", *WINDOW, *args,
                 "--json", "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    return [r["funding"] for r in sorted(out["top"], key=lambda r: r["combo_id"])]


def test_sweep_from_the_store_takes_the_store_funding(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the sweep store (sqlite) goes here
    # twice the bundled rates in the store: the default must be the store's, not the file
    _btc_store(tmp_path, capsys, monkeypatch, scale=2.0)
    bundled = _sweep_funding(capsys, "--funding", str(BTC_FUNDING))
    stored = _sweep_funding(capsys)
    spot = _sweep_funding(capsys, "--funding", "none")
    assert all(f != 0 for f in bundled) and spot == [0.0, 0.0]
    assert stored != bundled
    assert _sweep_funding(capsys, "--funding", "binance:BTC/USDT@funding") == stored


def test_sweeps_of_one_symbol_on_two_exchanges_are_two_sweeps(tmp_path, monkeypatch):
    """A sweep's identity names a store series by its spec: the file name a path gives
    (``USDT@1h`` for ``binance:BTC/USDT@1h``) left the exchange out, so a sweep on
    another venue's candles took the first one's id and stored results."""
    from gridflow.dataflows.sweep_spec import load_sweep_spec

    monkeypatch.setenv("GRIDFLOW_STORE", str(tmp_path))
    btc = [p for p in bundled_candle_files() if p.name.startswith("binance_BTC_USDT_1h")]
    for ex in ("binance", "bybit"):
        assert main(["data", "import", "--exchange", ex, *map(str, btc)]) == 0
    ids = {load_sweep_spec({"kind": "sweep", "strategy": "grid_atr",
                            "space": {"atr_start": [1, 2]}, "symbols": ["BTC/USDT"],
                            "data": [{"path": f"{ex}:BTC/USDT@1h"}]}).identity_hash()
           for ex in ("binance", "bybit")}
    assert len(ids) == 2


def test_the_apps_backtest_books_the_store_funding_too(tmp_path, capsys, monkeypatch):
    """The Backtest tab launches replays through ``GridflowClient.launch_replay`` (not
    the CLI): a store series' funding is booked there the same way."""
    from gridflow.control.client import GridflowClient

    _btc_store(tmp_path, capsys, monkeypatch)
    _, cli_paid = _replay(tmp_path, "cli.db", capsys)
    client = GridflowClient(f"sqlite:///{tmp_path / 'app.db'}")
    rep = client.launch_replay(None, data=({"path": "binance:BTC/USDT@1h"},),
                               start_ms="2023-06-01", end_ms="2024-01-01").result(300)
    assert cli_paid != 0.0 and rep["funding_paid"] == cli_paid
