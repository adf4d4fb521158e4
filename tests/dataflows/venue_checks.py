"""What every venue's live tests run and check against the local exchange speaking its
API (``test_live_bitget.py``, ``test_live_spot.py``): one live flow over bundled candles,
then the same assertions on what reached the exchange and what the journal says."""

from __future__ import annotations

import json
from collections import Counter

from live_harness import H, LiveProcess, start_exchange, write_live_config
from test_live_flow import drive, exchange_vs_journal
from test_live_funding import BTC, START, STEPS, orders, replay_db

from gridflow.fakex import FaultPlan

TRANSPORT = dict(timeout_after=0.06, timeout_before=0.05, rate_limit=0.06, server_error=0.06,
                 drop_after=0.06, drop_before=0.05, apply_to=("order_write",), hang_s=0.8)
"""Faults that lose or refuse requests but leave the trading itself as it would be."""


def every_fault(seed: int) -> FaultPlan:
    """The fault mix of the 500-order tests: timeouts before and after execution, 429s,
    5xxs, dropped connections, refusals and partial fills, on order writes."""
    return FaultPlan(seed=seed, timeout_after=0.03, timeout_before=0.02, rate_limit=0.03,
                     server_error=0.03, drop_after=0.03, drop_before=0.02, reject=0.02,
                     partial_fill=0.15, apply_to=("order_write",), hang_s=0.8)


def venue_run(tmp_path, venue: str, symbols, markets: dict, steps: int, faults=None,
              recovery: bool = True, kills: tuple = ((), ()), rng=None, mode: str = "live",
              strategy=None, rows=None, funding=None, leverage: float = 1.0):
    """A live (or paper) flow on ``venue`` over ``steps`` candles from START, SIGKILLed at
    ``kills`` (``(at a random moment of the step, just after its close)``); returns
    ``(fx, db, bad, proc)`` (``bad``: the closes at which a position had no stop)."""
    fx = start_exchange(START, faults=faults, symbols=symbols, venue=venue, rows=rows,
                        funding=funding)
    db = tmp_path / "live.db"
    cfg = write_live_config(tmp_path / "live.toml", db, fx, START + steps * H,
                            symbols=symbols, venue=venue, markets=markets, timeout_ms=600,
                            mode=mode, strategy=strategy, leverage=leverage)
    proc = LiveProcess(cfg, db, tmp_path, recovery=recovery)
    try:
        bad = drive(fx, db, proc, steps + 1, kill_at=set(kills[0]),
                    kill_after_close=set(kills[1]), rng=rng, check_stops=mode == "live")
    finally:
        fx.stop()
    return fx, db, bad, proc


def paper_and_replay(tmp_path, venue: str, markets: dict | None, funding=None, **kw):
    """A paper run of BTC/USDT on ``venue`` over STEPS candles (nothing may reach the
    exchange) and the replay of the same candles (and ``funding``, symbol -> rows), same
    config (``kw``: ``strategy``, ``leverage``): ``(fx, paper orders, replay orders)``."""
    fx, db, _, _ = venue_run(tmp_path, venue, (BTC,), markets, STEPS, mode="paper",
                             recovery=False, funding=funding, **kw)
    assert not fx.orders()  # paper: nothing reached the exchange
    rdb = replay_db(tmp_path, fx, funding=funding is not None, symbols=(BTC,), venue=venue,
                    markets=markets, **kw)
    return fx, orders(db), orders(rdb)


def assert_one_to_one(fx, db, bad, min_sent: int, min_trades: int) -> list[dict]:
    """Every order the exchange accepted was sent once and journaled, fills equal its
    trades one to one, a stop covered every position at every close, no write-ahead row
    is left ``sending``. Returns the broker rows."""
    orders_, sent, accepted, fills, trades, broker = exchange_vs_journal(fx, db)
    assert len(sent) >= min_sent and sum(trades.values()) >= min_trades, (len(sent), trades)
    assert max(accepted.values()) == 1 and set(accepted) == sent and sent <= orders_
    assert fills == trades
    assert bad == [], [b[:3] for b in bad[:2]]
    assert all(r["status"] != "sending" for r in broker)
    return broker


def assert_faults_journaled(fx, db, bad) -> None:
    """Under :func:`every_fault`: >= 500 places, nothing accepted twice, fills equal
    trades, stops kept, every injected fault in the broker journal of its order, and
    every kind of fault met."""
    orders_, sent, accepted, fills, trades, broker = exchange_vs_journal(fx, db)
    places = [r for r in broker if r["action"] == "place"]
    assert len(places) >= 500, len(places)
    assert max(accepted.values()) == 1 and set(accepted) == sent and fills == trades
    assert bad == [], [b[:3] for b in bad[:2]]
    per_order = Counter()
    for r in broker:
        per_order[r["client_order_id"]] += len(json.loads(r["faults"]) if isinstance(
            r["faults"], str) else r["faults"])
    injected = Counter(c for f in fx.fault_log if f["kind"] != "partial_fill"
                       for c in f.get("client_order_ids") or [f["client_order_id"]] if c)
    assert sum(injected.values()) >= 40 and not {c: n for c, n in injected.items()
                                                 if per_order[c] < n}
    assert {"timeout_after", "rate_limit", "server_error", "drop_after", "reject",
            "partial_fill"} <= {f["kind"] for f in fx.fault_log}


def assert_restarts_clean(fx, db, bad, proc) -> None:
    """After 10 SIGKILLs under :data:`TRANSPORT` faults: 11 starts or more, nothing
    accepted twice, fills equal trades, stops kept, no write-ahead row left ``sending``,
    and the faults were met."""
    assert proc.n >= 11
    orders_, sent, accepted, fills, trades, broker = exchange_vs_journal(fx, db)
    assert max(accepted.values()) == 1 and fills == trades
    assert bad == [], [b[:3] for b in bad[:2]]
    assert all(r["status"] != "sending" for r in broker)
    assert len([f for f in fx.fault_log if f["kind"] != "partial_fill"]) >= 20
