"""A crash inside one candle, live against the local exchange on a sub-candle clock.

Synthetic BTC/USDT 1h candles: a quiet range at 40,000, then one red candle falling 30 %
(its low leg walks 40,000 -> 28,000 in the middle third of the hour), then quiet again.
A 5-level long grid (levels 0.3 % to 12.3 % under the SMA, 3x leverage, margin cap 1.0)
with a 10 % session-loss limit. The clock walks the crash candle in 120 sub-steps of 30 s
and waits for two poll cycles of the flow after each; the assertions are on the
exchange's own records (trades, order states) and the journal.
"""

from __future__ import annotations

import gzip
import time
from datetime import datetime, timezone

import numpy as np
from live_harness import (
    H,
    LiveProcess,
    settle,
    start_exchange,
    unprotected,
    write_live_config,
)

from gridflow.journal.broker_rows import read_broker
from gridflow.journal.store import read_events, read_orders

START = int(datetime(2024, 3, 4, tzinfo=timezone.utc).timestamp() * 1000)
RUN = "live-test"
CRASH_AT = 4  # candles after START
OF = 120  # sub-steps of the crash candle
SUB_MS = H // OF
GRID = {"levels": 5, "atr_start": 1.0, "atr_step": 10.0, "sl_pct": 0.5}
RISK = {"session_loss_grid": 0.10, "daily_loss_limit": 0.5, "rolling_drawdown_pct": 0.5,
        "max_drawdown_pct": 0.6, "max_margin_ratio": 1.0}


def crash_rows(history: int = 60, after: int = 6) -> np.ndarray:
    """``history`` quiet candles before START, quiet candles to the crash, the crash, then
    ``after`` quiet ones: (n, 6) ts, open, high, low, close, volume."""
    rows, price = [], 40_000.0
    n = history + CRASH_AT + 1 + after
    for k in range(n):
        ts = START + (k - history) * H
        if k == history + CRASH_AT:
            o, c = price, 28_500.0
            rows.append((ts, o, o * 1.001, 28_000.0, c, 50.0))
        else:
            c = 40_000.0 * (1.002 if k % 2 else 0.998) if k < history + CRASH_AT else (
                28_500.0 * (1.002 if k % 2 else 0.998))
            o = price
            rows.append((ts, o, max(o, c) * 1.001, min(o, c) * 0.999, c, 10.0))
        price = c
    return np.array(rows, dtype=float)


def _marks_requests(fx) -> int:
    return sum(1 for r in list(fx.request_log) if "premiumIndex" in r["path"])


def _poll_cycles(fx, proc, n: int = 2, timeout: float = 30.0) -> None:
    """Wait for ``n`` complete exchange-state cycles of the flow (each ends with the
    mark-price request) begun after this call."""
    target = _marks_requests(fx) + n + 1
    end = time.monotonic() + timeout
    while _marks_requests(fx) < target:
        assert proc.alive(), proc.logs()[-3000:]
        assert time.monotonic() < end, "the flow stopped polling"
        time.sleep(0.01)


def _broker_idle(db, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while any(r["status"] == "sending" for r in read_broker(f"sqlite:///{db}", RUN)):
        assert time.monotonic() < end
        time.sleep(0.02)


def _finish(fx, db, proc, end: int) -> None:
    """Close the remaining candles one by one up to ``end``; the flow then exits 0."""
    while fx.now_ms() <= end:
        settle(db, RUN, fx.now_ms() - H, proc)
        fx.step()
    assert proc.wait(120) == 0, proc.logs()[-4000:]


def test_a_crash_inside_one_candle_trips_between_closes_and_cancels_every_entry(tmp_path):
    rows = crash_rows()
    fx = start_exchange(START, symbols=("BTC/USDT",), rows={"BTC/USDT": rows}, leverage=3)
    db = tmp_path / "j.db"
    end = START + (CRASH_AT + 4) * H
    # polling: the test counts the flow's exchange-state cycles (each ends with the
    # mark-price request) to know the engine saw each sub-step; the streamed marks' trip
    # is measured by benchmarks/live_latency.py
    cfg = write_live_config(tmp_path / "live.toml", db, fx, end, symbols=("BTC/USDT",),
                            strategy=GRID, risk=RISK, leverage=3.0, streams="poll")
    proc = LiveProcess(cfg, db, tmp_path, recovery=False)
    equity: list[tuple[int, float]] = []
    try:
        proc.start()
        for _ in range(CRASH_AT):
            settle(db, RUN, fx.now_ms() - H, proc)
            fx.step()
        settle(db, RUN, fx.now_ms() - H, proc)
        for _ in range(OF):
            fx.substep(1, of=OF)
            _poll_cycles(fx, proc)
            _broker_idle(db)
            equity.append((fx.now_ms(), fx.equity()))
        _finish(fx, db, proc, end)
    finally:
        fx.stop()
    url = f"sqlite:///{db}"
    trips = [e for e in read_events(url, RUN) if e["kind"] == "kill_switch_tripped"]
    assert trips, "the session-loss switch never tripped"
    t_trip = trips[0]["ts_ms"]
    assert {e["reason"] for e in trips if e["ts_ms"] == t_trip} == {"SESSION_LOSS_GRID"}
    assert trips[0]["detail"]["threshold"] == -0.10 and trips[0]["detail"]["value"] <= -0.10
    # at the first update after the exchange's equity crossed the limit (fills inside a
    # sub-step may trip it at the fill, within that sub-step)
    crossed = next(t for t, eq in equity if eq <= 10_000.0 * 0.9 + 1e-6)
    assert crossed - SUB_MS < t_trip <= crossed
    # every entry resting at the trip was cancelled by intents of that same update, and
    # no entry filled later than the trip plus one poll
    entries = {o["client_order_id"] for o in read_orders(url, RUN) if o["tag"].startswith("L")}
    fills = [t for t in fx.trades() if t["clientOrderId"] in entries]
    assert fills and max(t["time"] for t in fills) <= t_trip + SUB_MS
    filled = {t["clientOrderId"] for t in fills}
    resting = [o for o in fx.orders() if o["clientOrderId"] in entries
               and o["time"] <= t_trip and o["clientOrderId"] not in filled]
    assert len(resting) >= 2, "entries should still rest when the switch trips"
    # cancelled on the exchange while its clock stood at the sub-step that tripped the
    # switch: in the update that saw the trip
    assert all(o["status"] == "CANCELED" and o["updateTime"] <= crossed for o in resting)
    cancels = {r["client_order_id"] for r in read_broker(url, RUN) if r["action"] == "cancel"}
    assert {o["clientOrderId"] for o in resting} <= cancels
    assert not [o for o in fx.orders() if o["clientOrderId"] in entries
                and o["status"] in ("NEW", "PARTIALLY_FILLED")]
    # the same candles in replay trip on the same rule
    _replay_trips_the_same_rule(tmp_path, rows, fx)


def _replay_trips_the_same_rule(tmp_path, rows, fx) -> None:
    from helpers import run_bytewax

    f = tmp_path / "binance_BTC_USDT_1h.csv.gz"
    body = "timestamp,open,high,low,close,volume\n" + "".join(
        f"{int(r[0])}," + ",".join(repr(float(x)) for x in r[1:]) + "\n" for r in rows)
    f.write_bytes(gzip.compress(body.encode()))
    rdb = tmp_path / "replay.db"
    extra = (f"start_ms = {START}\nend_ms = {START + (CRASH_AT + 4) * H}\n"
             f'warmup_candles = 48\n[[data]]\npath = "{f}"\nsymbol = "BTC/USDT"\n'
             'timeframe = "1h"\n')
    rcfg = write_live_config(tmp_path / "replay.toml", rdb, fx, START + 10 * H, mode="paper",
                             extra=extra, symbols=("BTC/USDT",), strategy=GRID, risk=RISK,
                             leverage=3.0)
    res = run_bytewax(f"dataflows.replay:build('{rcfg}')", rdb)
    assert res.returncode == 0, res.stderr[-3000:]
    trips = [e for e in read_events(f"sqlite:///{rdb}", RUN) if e["kind"] == "kill_switch_tripped"]
    assert trips and trips[0]["reason"] == "SESSION_LOSS_GRID"
    assert {e["reason"] for e in trips if e["ts_ms"] == trips[0]["ts_ms"]} == {
        "SESSION_LOSS_GRID"}


def test_a_cold_restart_adopts_protects_and_announces(tmp_path):
    """After the crash (switch on, a long grid position with its stop), SIGKILL, delete
    the recovery folder and start again with ``restore_from_journal``: the position is
    adopted and has an exchange-side stop within one poll, the switch is still on and was
    announced, and no client id reaches the exchange twice."""
    import shutil
    import subprocess
    import sys

    fx = start_exchange(START, symbols=("BTC/USDT",), rows={"BTC/USDT": crash_rows()},
                        leverage=3)
    db = tmp_path / "j.db"
    end = START + (CRASH_AT + 4) * H
    cfg = write_live_config(tmp_path / "live.toml", db, fx, end, symbols=("BTC/USDT",),
                            strategy=GRID, risk=RISK, leverage=3.0,
                            extra="restore_from_journal = true", streams="poll")
    proc = LiveProcess(cfg, db, tmp_path, recovery=True)
    url = f"sqlite:///{db}"
    try:
        proc.start()
        for _ in range(CRASH_AT + 2):  # through the crash candle and one more
            settle(db, RUN, fx.now_ms() - H, proc)
            fx.step()
        settle(db, RUN, fx.now_ms() - H, proc)
        held = fx.positions()["BTC/USDT"]["amount"]
        assert held > 0 and not unprotected(fx)
        on = {e["reason"] for e in read_events(url, RUN) if e["kind"] == "kill_switch_tripped"}
        assert "SESSION_LOSS_GRID" in on
        proc.kill()
        shutil.rmtree(proc.rec)  # no recovery state: a cold start
        proc.rec.mkdir()
        subprocess.run([sys.executable, "-m", "bytewax.recovery", str(proc.rec), "1"],
                       check=True)
        before = len(read_events(url, RUN))
        proc.start()
        _poll_cycles(fx, proc, n=3, timeout=60)
        _broker_idle(db)
        new = read_events(url, RUN)[before:]
        kinds = {e["kind"]: e for e in new}
        assert kinds["position_adopted"]["detail"]["amount"] == held
        # the stop resting on the exchange was placed by the broker before the kill: the
        # write-ahead table knows it, so it is rebuilt into the book, not an orphan
        rebuilt = [e for e in new if e["kind"] == "order_rebuilt"]
        assert "SL" in {e["detail"]["tag"] for e in rebuilt}
        assert not [e for e in new if e["kind"] == "orphan_order"]
        assert {e["reason"] for e in new if e["kind"] == "kill_switch_restored"} == on
        assert set(kinds["engine_started"]["detail"]["kill_switches"]) == on
        # protected within one poll of the start
        _poll_cycles(fx, proc, n=1)
        assert not unprotected(fx)
        _finish(fx, db, proc, end)
    finally:
        fx.stop()
    assert max(fx.accepted_client_ids().values()) == 1
    trips = [e["reason"] for e in read_events(url, RUN) if e["kind"] == "kill_switch_tripped"]
    assert sorted(trips) == sorted(on)  # still on after the restart: never tripped again
    # the account continued from the journal: its equity is the exchange's after adoption
    assert not [e for e in read_events(url, RUN) if e["kind"] == "equity_drift"]
    assert not [o for o in fx.orders() if o["clientOrderId"].startswith("gf")
                and o["status"] == "NEW" and not o.get("reduceOnly", False)]  # no entry
