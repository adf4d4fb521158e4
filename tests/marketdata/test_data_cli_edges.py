"""`gridflow data` at its edges: refusals seen by `check`, an exchange that cannot be
reached or does not list a symbol, the exchange of an imported file, the progress bar's
total. Real ccxt over HTTP against the local exchange, real files."""

from __future__ import annotations

import gzip
import json
import socket
import time

import numpy as np
import pytest
import tqdm
from helpers import SHARED

from gridflow.cli import main
from gridflow.fakex import FakeExchange
from gridflow.fakex.__main__ import load_bundled

H = 3_600_000
NOW = 1_704_067_200_000  # 2024-01-01: the exchange's clock


def download_argv(fx: FakeExchange, store, *symbols: str, since: str = "2023-12-30",
                  json_out: bool = True) -> list[str]:
    urls = [a for k, v in fx.ccxt_urls().items() for a in ("--api-url", f"{k}={v}")]
    return ["data", "download", "--exchange", "binanceusdm", "--symbols", *symbols,
            "--since", since, "--store", str(store), *(["--json"] if json_out else []), *urls]


def btc(hole: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """The bundled BTC/USDT 1h candles, without the open times in ``[hole)`` (ms)."""
    a = load_bundled(["BTC/USDT"])["BTC/USDT"].copy()
    return {"BTC/USDT": a if hole is None else a[(a[:, 0] < hole[0]) | (a[:, 0] >= hole[1])]}


@pytest.fixture
def exchange(request):
    fx = FakeExchange(request.param, timeframe="1h", start_ms=NOW, clock="manual")
    fx.start()
    yield fx
    fx.stop()


def _bad_candle() -> dict[str, np.ndarray]:
    rows = btc()
    a = rows["BTC/USDT"]
    a[np.searchsorted(a[:, 0], NOW - 10 * H), 2] *= 0.5  # high below the open
    return rows


@pytest.mark.parametrize("exchange", [_bad_candle()], indirect=True)
def test_check_reports_the_candles_refused_at_download(exchange, tmp_path, capsys):
    assert main(download_argv(exchange, tmp_path, "BTC/USDT:USDT")) == 0
    assert json.loads(capsys.readouterr().out)[0]["refused"] == {"HIGH_BELOW_BODY": 1}
    spec = "binanceusdm:BTC/USDT:USDT@1h"
    assert main(["data", "check", "--store", str(tmp_path), "--json", spec]) == 1
    (row,) = json.loads(capsys.readouterr().out)
    # refused at download (the manifest), every stored candle still valid, no unknown hole
    assert row["refused"] == {"HIGH_BELOW_BODY": 1} and row["stored_refused"] == {}
    assert row["unknown_gaps"] == [] and row["ok"] is False
    assert main(["data", "check", "--store", str(tmp_path), spec]) == 1
    out = capsys.readouterr().out
    assert "refused={'HIGH_BELOW_BODY': 1}" in out and "ok=False" in out


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_exchange_is_a_one_line_error(tmp_path, capsys, monkeypatch, caplog):
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)  # the retries' backoff, not waited
    url = f"http://127.0.0.1:{_closed_port()}"
    argv = ["data", "download", "--exchange", "okx", "--symbols", "BTC/USDT", "--since",
            "2024-01-01", "--store", str(tmp_path), "--api-url", f"rest={url}"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [ln for ln in err.splitlines() if "error" in ln]
    assert line.startswith("gridflow data: error: okx: load_markets: NetworkError: okx GET")
    retried = [r for r in caplog.records if "okx load_markets" in r.getMessage()]
    assert len(retried) == 5 and len(waits) >= 5  # RetryConfig(): 6 attempts in all


@pytest.mark.parametrize("exchange", [btc()], indirect=True)
def test_a_symbol_the_venue_does_not_list_is_a_one_line_error(exchange, tmp_path, capsys):
    argv = download_argv(exchange, tmp_path, "BTC/USDT:USDT", "SOL/USDT:USDT")
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    assert captured.err.strip().splitlines() == [
        "gridflow data: error: binanceusdm: symbol SOL/USDT:USDT: BadSymbol: binanceusdm "
        "does not have market symbol SOL/USDT:USDT"]
    assert not (tmp_path / "binanceusdm").exists()  # symbols checked before any download


def test_import_takes_the_exchange_from_the_file_name(tmp_path, capsys):
    src = SHARED / "data" / "candles" / "binanceusdm_ETH_USDT_1h.csv.gz"
    head = b"\n".join(gzip.decompress(src.read_bytes()).splitlines()[:49]) + b"\n"
    files = {name: tmp_path / name for name in ("binanceusdm_ETH_USDT_1h.csv.gz",
                                                "mine_ETH_USDT_1h.csv.gz")}
    for p in files.values():
        p.write_bytes(gzip.compress(head))
    store = ["--store", str(tmp_path / "store"), "--json"]
    assert main(["data", "import", *map(str, files.values()), *store]) == 0
    assert [r["series"] for r in json.loads(capsys.readouterr().out)] == [
        "binanceusdm:ETH/USDT:USDT@1h",  # a ccxt id starts the name
        "binance:ETH/USDT@1h"]  # "mine" is no ccxt id: the default exchange
    assert main(["data", "import", str(files["binanceusdm_ETH_USDT_1h.csv.gz"]),
                 "--exchange", "bitget", *store]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["series"] == "bitget:ETH/USDT:USDT@1h" and row["added"] == 48


class Bar(tqdm.tqdm):
    """tqdm that remembers its total and count when closed."""

    closed: list[tuple[int | None, int]] = []

    def close(self) -> None:
        if not getattr(self, "_seen", False):
            self._seen = True
            Bar.closed.append((self.total, self.n))
        super().close()


@pytest.mark.parametrize("exchange", [btc(hole=(NOW - 3 * H, NOW))], indirect=True)
def test_the_progress_total_is_what_the_store_lacks(exchange, tmp_path, capsys,
                                                    monkeypatch):
    monkeypatch.setattr(tqdm, "tqdm", Bar)
    monkeypatch.setattr(Bar, "closed", [])
    argv = download_argv(exchange, tmp_path, "BTC/USDT:USDT", json_out=False)
    # 2023-12-30 .. the clock: 48 candles, the last 3 not published (yet)
    assert main(argv) == 0 and "added=45" in capsys.readouterr().out
    exchange.step(5)  # 5 new closed candles after the 3 still missing: 8 asked for
    assert main(argv) == 0 and "added=5" in capsys.readouterr().out
    assert Bar.closed == [(48, 48), (8, 8)]


@pytest.mark.parametrize("exchange", [btc()], indirect=True)
def test_a_symbol_is_stored_under_the_markets_own_name(exchange, tmp_path, capsys):
    # ccxt's binanceusdm resolves "BTC/USDT" to its perpetual BTC/USDT:USDT: one series
    assert main(download_argv(exchange, tmp_path, "BTC/USDT", "BTC/USDT:USDT")) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["series"] == "binanceusdm:BTC/USDT:USDT@1h" and row["added"] > 0
    assert main(["data", "list", "--store", str(tmp_path), "--json"]) == 0
    listed = [r["series"] for r in json.loads(capsys.readouterr().out)]
    assert listed == ["binanceusdm:BTC/USDT:USDT@1h"]
    assert main(download_argv(exchange, tmp_path, "BTC/USDT")) == 0  # nothing new
    assert json.loads(capsys.readouterr().out)[0]["requests"] == 0
    # asked for by the name typed, the store names the series it has
    from gridflow.data.store import CandleStore
    from gridflow.series_spec import parse_spec

    with pytest.raises(FileNotFoundError, match=r"the store has binanceusdm:BTC/USDT:USDT@1h"):
        CandleStore(tmp_path).read(parse_spec("binanceusdm:BTC/USDT@1h"))
