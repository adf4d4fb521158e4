"""`gridflow data download` against the local exchange: real ccxt over HTTP, Binance
USDⓈ-M paging limits, a maintenance gap, injected network faults."""

from __future__ import annotations

import ccxt
import numpy as np
import pytest

from gridflow.config.live import RetryConfig
from gridflow.data.store import CandleStore
from gridflow.exchange.history import download_candles, download_funding, missing_runs
from gridflow.fakex import FakeExchange, FaultPlan
from gridflow.fakex.__main__ import load_bundled
from gridflow.series_spec import SeriesKey

H = 3_600_000
NOW = 1_704_067_200_000  # 2024-01-01: the exchange's clock
SINCE = NOW - 2 * 365 * 24 * H  # two years of hourly candles
GAP = (NOW - 400 * 24 * H, NOW - 400 * 24 * H + 5 * H)  # a 5-hour maintenance
SYMBOLS = ("BTC/USDT", "ETH/USDT")
FAST = RetryConfig(max_attempts=8, base_delay_s=0.0, max_delay_s=0.0)


def source() -> dict[str, np.ndarray]:
    rows = load_bundled(list(SYMBOLS))
    return {s: a[(a[:, 0] < GAP[0]) | (a[:, 0] >= GAP[1])] for s, a in rows.items()}


def client(fx: FakeExchange) -> ccxt.Exchange:
    ex = ccxt.binanceusdm({"enableRateLimit": True, "rateLimit": 0, "timeout": 400})
    ex.urls["api"] = {**ex.urls["api"], **fx.ccxt_urls()}
    return ex


@pytest.fixture(scope="module")
def exchange():
    rows = source()
    plan = FaultPlan(seed=5, server_error=0.02, rate_limit=0.01, drop_before=0.01,
                     timeout_before=0.01, hang_s=0.6, apply_to=("read",))
    fx = FakeExchange(rows, timeframe="1h", start_ms=NOW, clock="manual", faults=plan)
    fx.start()
    yield fx, rows
    fx.stop()


def test_two_symbols_two_years_with_faults_and_a_maintenance_gap(exchange, tmp_path):
    fx, rows = exchange
    store = CandleStore(tmp_path)
    ex = client(fx)
    for sym in SYMBOLS:
        key = SeriesKey("binanceusdm", f"{sym}:USDT", "1h")
        rep = download_candles(ex, store, key, SINCE, retry=FAST, sleep=lambda s: None)
        got = store.read(key)
        src = rows[sym][(rows[sym][:, 0] >= SINCE) & (rows[sym][:, 0] < NOW)]
        assert np.array_equal(got["ts"], src[:, 0].astype(np.int64))  # the forming one not
        for i, c in enumerate(("open", "high", "low", "close", "volume"), start=1):
            assert np.array_equal(got[c], src[:, i]), c
        m = store.manifest(key)
        ts = src[:, 0].astype(np.int64)  # the venue's own holes: ours and the real ones
        holes = [(int(a) + H, int(b), int(b - a) // H - 1, "exchange")
                 for a, b in zip(ts[:-1], ts[1:]) if b - a > H]
        assert (GAP[0], GAP[1], 5, "exchange") in holes and len(holes) == 2  # + 2023-03-24
        assert [(g.start_ms, g.end_ms, g.missing, g.reason) for g in m.known_gaps] == holes
        assert rep.added == len(src) and not rep.refused and m.rows == len(src)
        assert rep.requests >= (NOW - SINCE) // (1000 * H)  # paged, 1000 a page
        again = download_candles(ex, store, key, SINCE, retry=FAST, sleep=lambda s: None)
        assert again.requests == 0 and again.added == 0  # the gap is known: not asked
    faults = {f["kind"] for f in fx.fault_log}
    assert faults & {"server_error", "rate_limit", "drop_before", "timeout_before"}
    # the clock moves 30 hours: only the 30 new closed candles are fetched
    fx.step(30)
    key = SeriesKey("binanceusdm", "BTC/USDT:USDT", "1h")
    before = store.read(key)["ts"]
    rep = download_candles(ex, store, key, SINCE, retry=FAST, sleep=lambda s: None)
    after = store.read(key)["ts"]
    assert rep.added == 30 and rep.requests <= 3
    assert np.array_equal(after[:-30], before) and after[-1] == NOW + 29 * H


def test_refused_candles_are_counted_and_not_stored(tmp_path):
    rows = {"BTC/USDT": load_bundled(["BTC/USDT"])["BTC/USDT"].copy()}
    a = rows["BTC/USDT"]
    bad = int(np.searchsorted(a[:, 0], NOW - 10 * H))
    a[bad, 2] = a[bad, 1] * 0.5  # high below the open
    fx = FakeExchange(rows, timeframe="1h", start_ms=NOW, clock="manual")
    fx.start()
    try:
        store = CandleStore(tmp_path)
        key = SeriesKey("binanceusdm", "BTC/USDT:USDT", "1h")
        rep = download_candles(client(fx), store, key, NOW - 48 * H, retry=FAST)
        m = store.manifest(key)
    finally:
        fx.stop()
    assert rep.refused == {"HIGH_BELOW_BODY": 1} and m.refused == {"HIGH_BELOW_BODY": 1}
    assert int(a[bad, 0]) not in store.read(key)["ts"].tolist()
    assert [(g.start_ms, g.reason) for g in m.known_gaps] == [(int(a[bad, 0]), "refused")]


def test_funding_history_pages_and_is_incremental(tmp_path):
    from gridflow.data.funding import bundled_funding_files, read_funding

    ts, rate = read_funding(bundled_funding_files()["BTC/USDT"])
    fx = FakeExchange(load_bundled(["BTC/USDT"]), timeframe="1h", start_ms=NOW, clock="manual",
                      funding={"BTC/USDT": (ts, rate)})
    fx.start()
    try:
        store = CandleStore(tmp_path)
        key = SeriesKey("binanceusdm", "BTC/USDT:USDT", "funding")
        since = NOW - 400 * 24 * H
        rep = download_funding(client(fx), store, key, since, limit=100, retry=FAST)
        got_ts, got_rate = store.read_funding(key)
        want = (ts >= since) & (ts <= NOW)
        assert np.array_equal(got_ts, ts[want]) and np.allclose(got_rate, rate[want], atol=1e-12)
        assert rep.requests >= want.sum() // 100
        assert download_funding(client(fx), store, key, since, retry=FAST).added == 0
    finally:
        fx.stop()


def test_missing_runs_cuts_the_grid_around_what_is_held_and_known():
    have = np.array([0, 1, 2, 5, 6], np.int64) * 10
    known = np.array([8], np.int64) * 10
    assert missing_runs(have, known, 0, 100, 10) == [(30, 50), (70, 80), (90, 100)]
    assert missing_runs(have, known, 50, 50, 10) == []


def test_the_command_downloads_lists_and_checks(tmp_path, capsys):
    import json

    from gridflow.cli import main

    fx = FakeExchange({"BTC/USDT": load_bundled(["BTC/USDT"])["BTC/USDT"]}, timeframe="1h",
                      start_ms=NOW, clock="manual")
    fx.start()
    try:
        urls = [f"{k}={v}" for k, v in fx.ccxt_urls().items()]
        argv = ["data", "download", "--exchange", "binanceusdm", "--symbols", "BTC/USDT:USDT",
                "--since", "2023-12-01", "--store", str(tmp_path), "--json",
                *(a for u in urls for a in ("--api-url", u))]
        assert main(argv) == 0
        (rep,) = json.loads(capsys.readouterr().out)
        assert rep["series"] == "binanceusdm:BTC/USDT:USDT@1h" and rep["added"] == 31 * 24
        assert main(argv) == 0  # nothing new
        assert json.loads(capsys.readouterr().out)[0]["requests"] == 0
    finally:
        fx.stop()
    assert main(["data", "list", "--store", str(tmp_path), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["rows"] == 31 * 24 and row["first"] == "2023-12-01T00:00:00Z"
    assert main(["data", "check", "--store", str(tmp_path), row["series"]]) == 0
    assert "ok=True" in capsys.readouterr().out
