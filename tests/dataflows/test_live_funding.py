"""``grid_funding`` in paper and live: ``python -m bytewax.run dataflows.live:build(...)``
against the local exchange, which lists the bundled BTC funding rates on
``/fapi/v1/fundingRate`` and settles them on open positions (real ccxt over HTTP, real
bundled candles, a real SQLite journal).

March 2024 (entry 0.0005, exit 0.00047): 0.00055 on 2024-03-04 00:00 (longs pay: a
short grid), 0.000468 at 08:00 (normalised: the exit signal closes the short), then
0.0005-0.0009 for two days (short again, held through 0.00049). Paper must send the orders the replay of the same candles and
funding file sends, and book the same funding; live must send them to the exchange and
book the exchange's own settlements one to one."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from live_harness import H, LiveProcess, start_exchange, write_live_config
from test_live_flow import RUN, drive, exchange_vs_journal

from gridflow.data.funding import bundled_funding_files, read_funding
from gridflow.journal.store import read_events, read_orders, read_summaries

START = int(datetime(2024, 3, 4, tzinfo=timezone.utc).timestamp() * 1000)
BTC = "BTC/USDT"
STEPS = 60
FUNDING_FILE = bundled_funding_files()[BTC]
GF = {"name": "grid_funding", "entry_rate": 0.0005, "exit_rate": 0.00047, "levels": 3,
      "atr_start": 0.3, "atr_step": 0.5, "sl_pct": 0.06}


def orders(path):
    return sorted((o["client_order_id"], o["symbol"], o["tag"], o["side"], o["type"],
                   round(o["price"], 8), round(o["amount"], 8))
                  for o in read_orders(f"sqlite:///{path}", RUN))


def run(tmp_path, mode: str):
    fx = start_exchange(START, symbols=(BTC,), funding={BTC: read_funding(FUNDING_FILE)})
    db = tmp_path / f"{mode}.db"
    cfg = write_live_config(tmp_path / f"{mode}.toml", db, fx, START + STEPS * H, mode=mode,
                            symbols=(BTC,), strategy=GF, leverage=2.0)
    proc = LiveProcess(cfg, db, tmp_path, recovery=mode == "live")
    try:
        bad = drive(fx, db, proc, STEPS + 1, check_stops=mode == "live")
    finally:
        fx.stop()
    return fx, db, bad


def replay_db(tmp_path, fx, funding: bool = True, **kw):
    """The journal of the replay of the paper run's candles (the same 48-candle warm-up
    before START, STEPS candles) with BTC's funding file (``funding``; a spot market has
    none); ``kw`` as the paper config's."""
    from helpers import run_bytewax, subset_file

    f = subset_file("binance_BTC_USDT_1h.csv.gz", tmp_path / "btc.csv.gz", START - 48 * H,
                    48 + STEPS)
    extra = (f"start_ms = {START}\nend_ms = {START + STEPS * H}\nwarmup_candles = 48\n"
             f'[[data]]\npath = "{f}"\nsymbol = "{BTC}"\ntimeframe = "1h"\n'
             + (f'[[funding]]\npath = "{FUNDING_FILE}"\n' if funding else ""))
    rdb = tmp_path / "replay.db"
    rcfg = write_live_config(tmp_path / "replay.toml", rdb, fx, START + STEPS * H,
                             mode="paper", extra=extra, **kw)
    res = run_bytewax(f"dataflows.replay:build('{rcfg}')", rdb)
    assert res.returncode == 0, res.stderr[-3000:]
    return rdb


def test_paper_trades_the_funding_grid_as_the_replay_of_the_same_candles_and_rates(tmp_path):
    fx, db, _ = run(tmp_path, "paper")
    assert not fx.orders()  # paper: nothing reached the exchange
    rdb = replay_db(tmp_path, fx, symbols=(BTC,), strategy=GF, leverage=2.0)
    paper = orders(db)
    tags = {o[2] for o in paper}
    assert {o[3] for o in paper if o[2].startswith("L")} == {"sell"}  # a short grid
    assert "EXIT" in tags, tags  # closed by the funding signal once it normalised
    assert paper == orders(rdb)
    got = read_summaries(f"sqlite:///{db}", RUN)[-1]
    want = read_summaries(f"sqlite:///{rdb}", RUN)[-1]
    assert got["funding_paid"] != 0  # the short received funding while open
    assert got["funding_paid"] == pytest.approx(want["funding_paid"], abs=1e-6)
    assert got["realized_pnl"] == pytest.approx(want["realized_pnl"], abs=1e-6)


def test_live_sends_the_funding_grid_to_the_exchange_and_books_its_settlements(tmp_path):
    fx, db, bad = run(tmp_path, "live")
    jorders, sent, accepted, fills, trades, broker = exchange_vs_journal(fx, db)
    assert sent and set(accepted) == sent and sent <= jorders
    assert max(accepted.values()) == 1
    assert fills == trades and sum(trades.values()) >= 2
    assert bad == []
    entries = [o for o in read_orders(f"sqlite:///{db}", RUN) if o["tag"].startswith("L")]
    assert entries and {o["side"] for o in entries} == {"sell"}
    assert any(o["tag"] == "EXIT" for o in read_orders(f"sqlite:///{db}", RUN))
    paid = fx.funding_payments()
    booked = [e for e in read_events(f"sqlite:///{db}", RUN) if e["kind"] == "funding"]
    assert paid and len(booked) == len(paid)  # the exchange's settlements, one to one
    assert sorted(e["ts_ms"] for e in booked) == sorted(p["time"] for p in paid)

