"""``python -m bytewax.run dataflows.live:build(...)`` against the local exchange
(real ccxt over HTTP on 127.0.0.1, real bundled candles, a real SQLite journal):
one-to-one records, faults, SIGKILL restarts, secrets, paper = replay."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import datetime, timezone

import pytest
from live_harness import (
    H,
    KEY,
    SECRET,
    LiveProcess,
    settle,
    start_exchange,
    unprotected,
    write_live_config,
)

from gridflow.control.store import read_broker, read_events, read_fills, read_orders

START = int(datetime(2024, 3, 4, tzinfo=timezone.utc).timestamp() * 1000)
RUN = "live-test"


def drive(fx, db, proc: LiveProcess, steps: int, check_stops: bool = True,
          kill_at: set[int] = frozenset(), rng: random.Random | None = None) -> list[int]:
    """Close ``steps`` candles one at a time, each once the flow has caught up; SIGKILL
    and restart the flow at the steps in ``kill_at`` (at a random moment of that step).
    Returns the steps at which a position was found without a covering stop."""
    bad = []
    proc.start()
    for k in range(steps):
        if not proc.alive():
            proc.start()
        settle(db, RUN, fx.now_ms() - H, proc)
        if k in kill_at:
            proc.kill()
            time.sleep(rng.uniform(0.0, 0.5) if rng else 0.0)
            proc.start()
            settle(db, RUN, fx.now_ms() - H, proc)
        if check_stops and unprotected(fx):
            bad.append(k)
        fx.step()
    if not proc.alive():
        proc.start()
    assert proc.wait(120) == 0, proc.logs()[-4000:]
    return bad


def exchange_vs_journal(fx, db):
    url = f"sqlite:///{db}"
    orders = {o["client_order_id"] for o in read_orders(url, RUN)}
    broker = read_broker(url, RUN)
    sent = {r["client_order_id"] for r in broker
            if r["action"] == "place" and r["status"] in ("sent", "duplicate")}
    accepted = fx.accepted_client_ids()
    fills = Counter(f["report_id"] for f in read_fills(url, RUN))
    trades = Counter(f"trade-{t['id']}" for t in fx.trades())
    return orders, sent, accepted, fills, trades, broker


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """One uninterrupted live run over 40 candles: the reference."""
    d = tmp_path_factory.mktemp("live_ref")
    fx = start_exchange(START)
    db = d / "j.db"
    cfg = write_live_config(d / "live.toml", db, fx, START + 40 * H)
    proc = LiveProcess(cfg, db, d)
    try:
        bad = drive(fx, db, proc, 41)
        return fx, db, bad, proc
    finally:
        fx.stop()


def test_live_flow_trades_a_grid_and_the_journal_matches_the_exchange(uninterrupted):
    fx, db, bad, proc = uninterrupted
    orders, sent, accepted, fills, trades, broker = exchange_vs_journal(fx, db)
    assert len(sent) >= 40 and sum(trades.values()) >= 4, (len(sent), trades)
    assert max(accepted.values()) == 1
    assert set(accepted) == sent  # every order the exchange has, the journal has sent
    assert sent <= orders  # ... and journaled as an order
    assert fills == trades  # fills one to one with the exchange's trades
    assert bad == []  # never a position without a stop when a candle closed
    assert all(r["status"] != "sending" for r in broker)


def test_sigkill_ten_times_no_duplicate_and_the_same_final_positions(uninterrupted, tmp_path):
    ref_fx, ref_db, _, _ = uninterrupted
    fx = start_exchange(START)
    db = tmp_path / "j.db"
    cfg = write_live_config(tmp_path / "live.toml", db, fx, START + 40 * H)
    proc = LiveProcess(cfg, db, tmp_path)
    rng = random.Random(7)
    kills = set(rng.sample(range(2, 40), 10))
    try:
        drive(fx, db, proc, 41, kill_at=kills, rng=rng)
        assert proc.n >= 11
        orders, sent, accepted, fills, trades, _ = exchange_vs_journal(fx, db)
        assert max(accepted.values()) == 1  # no order reached the exchange twice
        assert fills == trades
        assert fx.positions() == ref_fx.positions()
        assert abs(fx.balance() - ref_fx.balance()) < 1e-6
        def fills(x):
            return sorted((t["symbol"], t["side"], t["price"], t["qty"], t["time"])
                          for t in x.trades())
        assert fills(fx) == fills(ref_fx)  # the same fills, at the same prices and times
    finally:
        fx.stop()


def test_secret_never_in_logs_journal_or_exceptions(uninterrupted, monkeypatch):
    fx, db, _, proc = uninterrupted
    blob = db.read_bytes()
    for secret in (KEY, SECRET):
        assert secret.encode() not in blob
        assert secret not in proc.logs()
    from gridflow.config import load_config

    monkeypatch.setenv("GRIDFLOW_LIVE__EXCHANGE__API_KEY", KEY)
    monkeypatch.setenv("GRIDFLOW_LIVE__EXCHANGE__SECRET", SECRET)
    cfg = load_config(proc.cfg)
    assert cfg.live.exchange.secret.get_secret_value() == SECRET
    assert SECRET not in repr(cfg) and SECRET not in cfg.model_dump_json()
    assert SECRET not in str(cfg.live.exchange)
