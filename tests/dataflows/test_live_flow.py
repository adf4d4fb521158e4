"""``python -m bytewax.run dataflows.live:build(...)`` against the local exchange
(real ccxt over HTTP on 127.0.0.1, real bundled candles, a real SQLite journal):
one-to-one records, faults, SIGKILL restarts, secrets, paper = replay."""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
from live_harness import (
    KEY,
    SECRET,
    H,
    LiveProcess,
    settle,
    start_exchange,
    unprotected,
    write_live_config,
)

from gridflow.journal.broker_rows import read_broker
from gridflow.journal.store import (
    read_events,
    read_fills,
    read_orders,
    read_summaries,
)

START = int(datetime(2024, 3, 4, tzinfo=timezone.utc).timestamp() * 1000)
RUN = "live-test"


WS_FAULTS = ("user", "market", "expire", "all")
"""Websocket faults ``drive`` injects in turn: drop the user data stream, the market
streams, expire the listen key, drop every connection."""


def drive(fx, db, proc: LiveProcess, steps: int, check_stops: bool = True,
          kill_at: set[int] = frozenset(), rng: random.Random | None = None,
          kill_after_close: set[int] = frozenset(),
          ws_faults_at: set[int] = frozenset(), on_step=None) -> list[int]:
    """Close ``steps`` candles one at a time, each once the flow has caught up; SIGKILL
    and restart the flow at the steps in ``kill_at`` (at a random moment of that step,
    caught up) and ``kill_after_close`` (0-1 s after that step's candle closed, while the
    flow decides on it); at the steps in ``ws_faults_at`` a websocket fault of
    :data:`WS_FAULTS` (in turn) hits the streams just before the candle closes;
    ``on_step(k)`` runs just before candle ``k`` closes. Returns the steps at which a
    position was found without a covering stop."""
    bad = []
    proc.start()
    n_ws = 0
    for k in range(steps):
        if not proc.alive():
            proc.start()
        live = fx if check_stops else None  # paper mode polls no exchange state
        settle(db, RUN, fx.now_ms() - H, proc, fx=live)
        if k in kill_at:
            proc.kill()
            time.sleep(rng.uniform(0.0, 0.5) if rng else 0.0)
            proc.start()
            settle(db, RUN, fx.now_ms() - H, proc, fx=live)
        if check_stops and unprotected(fx):
            t0 = time.monotonic()  # how long until the next poll cycles protect it
            while unprotected(fx) and time.monotonic() - t0 < 5.0:
                time.sleep(0.01)
            bad.append((k, round(time.monotonic() - t0, 3), fx.positions(),
                        [(o["symbol"], o["type"], o["status"], o["origQty"]) for o in fx.orders()
                         if o.get("algo")][-4:], story(db, fx.now_ms() - 3 * H)))
        if on_step is not None:
            on_step(k)
        if k in ws_faults_at:
            kind = WS_FAULTS[n_ws % len(WS_FAULTS)]
            n_ws += 1
            fx.expire_listen_key() if kind == "expire" else fx.ws_drop(kind)
        fx.step()
        if k in kill_after_close:
            time.sleep(rng.uniform(0.0, 1.0))
            proc.kill()
            proc.start()
    if not proc.alive():
        proc.start()
    assert proc.wait(120) == 0, proc.logs()[-4000:]
    return bad


def story(db, since_ms: int) -> list[tuple]:
    """What the journal says since ``since_ms`` (exchange time): orders, broker outcomes
    and events in order, so a failure explains itself."""
    url = f"sqlite:///{db}"
    rows = [("order", o["seq"], o["symbol"], o["tag"], o["side"], o["type"], o["price"],
             o["amount"], o["client_order_id"][:10]) for o in read_orders(url, RUN)
            if o["ts_ms"] >= since_ms]
    rows += [("event", e["seq"], e["symbol"], e["kind"], e["reason"], e["ts_ms"])
             for e in read_events(url, RUN) if e["ts_ms"] >= since_ms]
    rows += [("fill", f["seq"], f["symbol"], f["side"], f["price"], f["amount"], f["ts_ms"],
              f["client_order_id"][:10]) for f in read_fills(url, RUN) if f["ts_ms"] >= since_ms]
    rows.sort(key=lambda r: r[1])
    mine = {r[-1] for r in rows if r[0] == "order"}
    rows += [("broker", b["action"], b["tag"], b["status"], b["client_order_id"][:10],
              b["error"][:80]) for b in read_broker(url, RUN)
             if b["client_order_id"][:10] in mine]
    return rows


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
    # every order-state move the live engine made is in the transition table
    summaries = read_summaries(f"sqlite:///{db}", RUN)
    assert summaries and all(s["counters"].get("order_moves_refused", 0) == 0
                             for s in summaries)


@pytest.mark.parametrize("seed,faults,streams", [(7, False, "websocket"), (8, False, "poll"),
                                                  (9, True, "websocket")])
def test_sigkill_restarts_are_exact(uninterrupted, tmp_path, seed, faults, streams):
    """10 SIGKILLs a run over 3 runs (30 in all), half of them within a second after a
    candle close; the second run polls the exchange by REST instead of streaming; the
    third run under a storm of transport faults on a third of the order requests
    (timeouts before and after execution, 429, 5xx, dropped connections: the kills land
    while orders are looked up and retried) and of websocket faults (duplicated and
    swapped messages, dropped streams, an expired listen key): nothing reaches the
    exchange twice, no fill of the engine's own orders is an orphan, no position is
    without an exchange-side stop at any candle close, no write-ahead row is left
    ``sending``, and the positions and the wallet balance end equal to the uninterrupted,
    fault-free, streaming run's (to 1e-6 USDT)."""
    from gridflow.fakex import FaultPlan

    ref_fx, ref_db, _, _ = uninterrupted
    plan = FaultPlan(seed=seed, timeout_after=0.06, timeout_before=0.05, rate_limit=0.06,
                     server_error=0.06, drop_after=0.06, drop_before=0.05,
                     apply_to=("order_write",), hang_s=0.8, ws_duplicate=0.05,
                     ws_reorder=0.05) if faults else None
    fx = start_exchange(START, faults=plan)
    db = tmp_path / "j.db"
    cfg = write_live_config(tmp_path / "live.toml", db, fx, START + 40 * H, streams=streams,
                            timeout_ms=600)
    proc = LiveProcess(cfg, db, tmp_path)
    rng = random.Random(seed)
    kills = rng.sample(range(2, 40), 10)
    ws_faults = set(rng.sample([k for k in range(2, 40) if k not in kills], 6)) \
        if faults else set()
    try:
        bad = drive(fx, db, proc, 41, kill_at=set(kills[:5]), kill_after_close=set(kills[5:]),
                    rng=rng, ws_faults_at=ws_faults)
        assert proc.n >= 11
        orders, sent, accepted, fills, trades, broker = exchange_vs_journal(fx, db)
        assert max(accepted.values()) == 1  # no order reached the exchange twice
        assert fills == trades
        assert bad == []
        assert all(r["status"] != "sending" for r in broker)
        events = read_events(f"sqlite:///{db}", RUN)
        assert not [e for e in events if e["kind"] == "orphan_fill"]
        assert all(s["counters"].get("order_moves_refused", 0) == 0
                   for s in read_summaries(f"sqlite:///{db}", RUN))  # the transition table
        if faults:
            assert len([f for f in fx.fault_log if f["kind"] != "partial_fill"]) >= 30
        if faults:
            assert {"ws_duplicate", "ws_reorder", "ws_drop", "listen_key_expired"} <= {
                f["kind"] for f in fx.fault_log}, Counter(f["kind"] for f in fx.fault_log)
        assert fx.positions() == ref_fx.positions(), _fills_diff(fx, ref_fx)
        assert abs(fx.balance() - ref_fx.balance()) <= 1e-6, _fills_diff(fx, ref_fx)
    finally:
        fx.stop()


def _fills_diff(fx, ref_fx) -> str:
    """The exchange trades of two runs side by side (client id, side, price, amount,
    exchange time), so a mismatch explains itself."""
    def rows(x):
        return [(t["clientOrderId"][:10], t["side"], t["price"], t["qty"], t["time"])
                for t in x.trades()]
    a, b = rows(fx), rows(ref_fx)
    return "this run only: %s\nreference only: %s" % ([r for r in a if r not in b],
                                                        [r for r in b if r not in a])


def test_secret_never_in_logs_journal_snapshots_cache_or_exceptions(uninterrupted,
                                                                    monkeypatch):
    """Every file a live run leaves: the journal (and its -wal), the logs, every file of
    the recovery folder (snapshots and their -wal) and the numba cache."""
    import os

    fx, db, _, proc = uninterrupted
    files = [p for p in db.parent.rglob("*") if p.is_file()]
    recovery = [p for p in files if "recovery" in p.parts]
    assert recovery and any(p.stat().st_size > 0 for p in recovery)
    cache = Path(os.environ["NUMBA_CACHE_DIR"])
    files += [p for p in cache.rglob("*") if p.is_file()]
    assert any(p.suffix == ".nbi" for p in files)  # the kernels' cache was searched too
    for path in files:
        blob = path.read_bytes()
        for secret in (KEY, SECRET):
            assert secret.encode() not in blob, path
    for secret in (KEY, SECRET):
        assert secret not in proc.logs()
    from gridflow.config import load_config

    monkeypatch.setenv("GRIDFLOW_LIVE__EXCHANGE__API_KEY", KEY)
    monkeypatch.setenv("GRIDFLOW_LIVE__EXCHANGE__SECRET", SECRET)
    cfg = load_config(proc.cfg)
    assert cfg.live.exchange.secret.get_secret_value() == SECRET
    assert SECRET not in repr(cfg) and SECRET not in cfg.model_dump_json()
    assert SECRET not in str(cfg.live.exchange)


def test_a_silent_user_stream_is_found_stale_caught_up_by_rest_and_trusted_again(tmp_path):
    """The exchange keeps the user data stream open but sends nothing on it for 12 candles
    while entries and take profits fill: the next REST reconciliation finds the fills the
    stream never sent (``stream_stale`` / ``MISSED_FILLS``) before the next candle closes,
    the flow polls by REST meanwhile, trusts the stream again once it delivers
    (``stream_restored``), and the journal equals the exchange one to one."""
    fx = start_exchange(START)
    db = tmp_path / "j.db"
    cfg = write_live_config(tmp_path / "live.toml", db, fx, START + 24 * H,
                            stream_opts={"reconcile_s": 0.5, "fill_lag_s": 1.0})
    proc = LiveProcess(cfg, db, tmp_path, recovery=False)
    url = f"sqlite:///{db}"
    seen: list[tuple[int, int]] = []

    def silence(k):
        if k == 10:
            fx.ws_silence("user", True)
        if 10 < k <= 22 and len(fx.trades()) > (seen[-1][1] if seen else 0):
            # fills happened in candle k - 1 and the flow has journaled them (REST found
            # them): fill_lag_s later the stream is stale, before candle k closes
            t_end = time.monotonic() + 10.0  # bounds the wait; the bound is 1 s + a poll
            while not (stale := [e for e in read_events(url, RUN)
                                 if (e["kind"], e["reason"]) == ("stream_stale",
                                                                 "MISSED_FILLS")]) \
                    and time.monotonic() < t_end:
                time.sleep(0.05)
            seen.append((k, len(fx.trades()), bool(stale)))
        if k == 22:
            fx.ws_silence("user", False)

    try:
        bad = drive(fx, db, proc, 25, on_step=silence)
        orders, sent, accepted, fills, trades, broker = exchange_vs_journal(fx, db)
        assert seen and seen[0][2], seen  # stale as soon as the missed fills were found
        assert fills == trades and set(accepted) == sent and bad == []
        events = [(e["kind"], e["reason"]) for e in read_events(url, RUN)
                  if e["kind"].startswith("stream_")]
        assert ("stream_stale", "MISSED_FILLS") in events
        stale = events.index(("stream_stale", "MISSED_FILLS"))
        assert ("stream_restored", "CAUGHT_UP") in events[stale:]
    finally:
        fx.stop()


def test_faults_over_500_orders_nothing_twice_stops_kept_every_fault_journaled(tmp_path):
    """Timeouts (order executed, answer lost), 429s, 503s, dropped connections before and
    after execution, rejections and partial fills on the order endpoints; duplicated and
    swapped websocket messages, dropped streams and expired listen keys."""
    import json

    from gridflow.fakex import FaultPlan

    plan = FaultPlan(seed=11, timeout_after=0.03, timeout_before=0.02, rate_limit=0.03,
                     server_error=0.03, drop_after=0.03, drop_before=0.02, reject=0.02,
                     partial_fill=0.15, apply_to=("order_write",), hang_s=0.8,
                     ws_duplicate=0.05, ws_reorder=0.05)
    fx = start_exchange(START, faults=plan)
    db = tmp_path / "j.db"
    cfg = write_live_config(tmp_path / "live.toml", db, fx, START + 110 * H, timeout_ms=600)
    proc = LiveProcess(cfg, db, tmp_path, recovery=False)
    try:
        bad = drive(fx, db, proc, 111, ws_faults_at=set(range(5, 111, 9)))
        orders, sent, accepted, fills, trades, broker = exchange_vs_journal(fx, db)
        places = [r for r in broker if r["action"] == "place"]
        assert len(places) >= 500, len(places)
        assert max(accepted.values()) == 1  # nothing sent twice
        assert set(accepted) == sent and fills == trades
        # a position without a stop is re-protected within one poll: at every candle
        # close the stop was there
        assert bad == []
        # every request fault the exchange injected is in the broker journal of that
        # order (a ccxt error class per fault met), and partial fills are journaled fills
        per_order = Counter()
        for r in broker:
            per_order[r["client_order_id"]] += len(json.loads(r["faults"])
                                                   if isinstance(r["faults"], str)
                                                   else r["faults"])
        injected = Counter(c for f in fx.fault_log if f["kind"] != "partial_fill"
                           for c in f.get("client_order_ids") or [f["client_order_id"]] if c)
        assert sum(injected.values()) >= 40, injected
        short = {c: n for c, n in injected.items() if per_order[c] < n}
        assert not short, short
        kinds = Counter(f["kind"] for f in fx.fault_log)
        assert {"timeout_after", "rate_limit", "server_error", "drop_after", "reject",
                "partial_fill"} <= set(kinds), kinds
        rejected = [r for r in broker if r["status"] == "rejected"]
        events = read_events(f"sqlite:///{db}", RUN)
        assert len([e for e in events if e["kind"] == "order_rejected"]) >= len(
            [r for r in rejected if r["action"] == "place"]) > 0
    finally:
        fx.stop()


def test_paper_mode_sends_the_same_orders_as_the_replay_of_the_same_candles(tmp_path):
    from helpers import subset_file

    fx = start_exchange(START)
    db = tmp_path / "paper.db"
    # kill switches trip and the daily-entries rule refuses entries on the way
    limits = {"max_daily_entries": 1, "session_loss_grid": 0.01, "daily_loss_limit": 0.01}
    cfg = write_live_config(tmp_path / "paper.toml", db, fx, START + 60 * H, mode="paper",
                            risk=limits, leverage=3.0)
    proc = LiveProcess(cfg, db, tmp_path, recovery=False)
    try:
        drive(fx, db, proc, 61, check_stops=False)
    finally:
        fx.stop()
    assert not fx.orders()  # paper: nothing reached the exchange
    # the replay of the same candles: the same warm-up before the same start
    files = [subset_file(f"binance_{s.replace('/', '_')}_1h.csv.gz", tmp_path / f"{i}.csv.gz",
                         START - 48 * H, 48 + 60) for i, s in enumerate(("BTC/USDT", "ETH/USDT"))]
    rdb = tmp_path / "replay.db"
    extra = (f"start_ms = {START}\nend_ms = {START + 60 * H}\nwarmup_candles = 48\n"
             + "".join(f'[[data]]\npath = "{f}"\nsymbol = "{s}"\ntimeframe = "1h"\n'
                       for f, s in zip(files, ("BTC/USDT", "ETH/USDT"))))
    rcfg = write_live_config(tmp_path / "replay.toml", rdb, fx, START + 60 * H, mode="paper",
                             extra=extra, risk=limits, leverage=3.0)
    from helpers import run_bytewax

    res = run_bytewax(f"dataflows.replay:build('{rcfg}')", rdb)
    assert res.returncode == 0, res.stderr[-3000:]

    def orders(path):
        return sorted((o["client_order_id"], o["symbol"], o["tag"], o["side"], o["type"],
                       round(o["price"], 8), round(o["amount"], 8))
                      for o in read_orders(f"sqlite:///{path}", RUN))

    paper = orders(db)
    assert len(paper) >= 5
    assert paper == orders(rdb)
    events = read_events(f"sqlite:///{db}", RUN)
    assert {e["reason"] for e in events if e["kind"] == "kill_switch_tripped"}
    assert [e for e in events if e["kind"] == "order_denied" and e["reason"] == "DAILY_ENTRIES"]
