"""Binance spot through ``python -m bytewax.run dataflows.live:build(...)`` against the
local exchange's spot dialect (real ``ccxt.binance`` over HTTP, real bundled candles,
Binance spot's real filters and fees, a real SQLite journal): the stop rests as a
STOP_LOSS_LIMIT, the take profit is watched by the engine."""

from __future__ import annotations

import pytest
from live_harness import KEY, SECRET, H, LiveProcess, start_exchange, write_live_config
from test_live_flow import RUN, drive, exchange_vs_journal
from test_live_funding import START

from gridflow.fakex.spot_markets import binance_spot_filters
from gridflow.journal.store import read_events, read_fills

SYMS = ("BTC/USDT", "ETH/USDT", "XRP/USDT", "ADA/USDT")
SPOT = {s: binance_spot_filters(s) for s in SYMS}
"""Binance spot's real filters of the traded pairs: the local exchange keeps them, the
config's [markets] repeat them for the engine."""


def spot_run(tmp_path, steps: int, faults=None, recovery: bool = True, kills=((), ()),
             rng=None, mode: str = "live"):
    fx = start_exchange(START, faults=faults, symbols=SYMS, venue="binance")
    db = tmp_path / "live.db"
    cfg = write_live_config(tmp_path / "live.toml", db, fx, START + steps * H, symbols=SYMS,
                            venue="binance", markets=SPOT, timeout_ms=600, mode=mode)
    proc = LiveProcess(cfg, db, tmp_path, recovery=recovery)
    try:
        bad = drive(fx, db, proc, steps + 1, kill_at=set(kills[0]),
                    kill_after_close=set(kills[1]), rng=rng, check_stops=mode == "live")
    finally:
        fx.stop()
    return fx, db, bad, proc


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted, fault-free live run on Binance spot over 40 candles."""
    return spot_run(tmp_path_factory.mktemp("spot_ref"), 40)


def test_live_on_binance_spot_the_journal_matches_the_exchange(reference):
    """Every order the exchange accepted was sent once and journaled, fills equal its
    trades one to one (a buy's commission withheld in base), a stop-limit covered
    every position at every close, and no credential reaches a log or the journal."""
    fx, db, bad, proc = reference
    orders_, sent, accepted, fills, trades, broker = exchange_vs_journal(fx, db)
    assert len(sent) >= 40 and sum(trades.values()) >= 6, (len(sent), trades)
    assert max(accepted.values()) == 1 and set(accepted) == sent and sent <= orders_
    assert fills == trades
    assert bad == [], [b[:4] for b in bad[:3]]
    assert all(r["status"] != "sending" for r in broker)
    base_fees = [f for f in read_fills(f"sqlite:///{db}", RUN) if f["fee_base"] > 0]
    assert base_fees and all(f["side"] == "buy" for f in base_fees)
    types = {o["type"] for o in fx.orders()}
    assert "STOP_LOSS_LIMIT" in types and "TAKE_PROFIT_LIMIT" not in types
    text = proc.logs() + db.read_bytes().decode("latin-1")
    for secret in (KEY, SECRET):
        assert secret not in text
    assert not [e for e in read_events(f"sqlite:///{db}", RUN)
                if e["kind"] in ("orphan_fill", "position_mismatch", "fill_inconsistent")]
