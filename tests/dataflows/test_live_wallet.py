"""The live account equals the exchange's wallet: a 100-candle live run against the local
exchange with Binance's real BTC and ETH funding rates settling every 8 h.

The engine compares its equity (cash + unrealized at the exchange's marks) with the
exchange's (wallet + unrealized) at every poll and journals ``equity_drift`` when they
differ by more than ``live.equity_drift_alert`` (here 1e-10 of 10,000 USDT = 1e-6 USDT)
for two polls in a row (one poll can see the clock move between its requests); funding
settlements are read from the exchange's income history and journaled one to one.
"""

from __future__ import annotations

from datetime import datetime, timezone

from live_harness import H, LiveProcess, settle, start_exchange, write_live_config

from gridflow.data.funding import bundled_funding_files, read_funding
from gridflow.journal.store import read_events, read_summaries, read_trades

START = int(datetime(2024, 3, 4, tzinfo=timezone.utc).timestamp() * 1000)
RUN = "live-test"
CANDLES = 100


def test_engine_equity_equals_the_exchange_wallet_with_funding_at_every_poll(tmp_path):
    files = bundled_funding_files()
    funding = {s: read_funding(files[s]) for s in ("BTC/USDT", "ETH/USDT")}
    fx = start_exchange(START, funding=funding)
    db = tmp_path / "j.db"
    cfg = write_live_config(tmp_path / "live.toml", db, fx, START + CANDLES * H,
                            extra="", strategy={"sl_pct": 0.08})
    cfg.write_text(cfg.read_text().replace("[live]\n", "[live]\nequity_drift_alert = 1e-10\n"))
    proc = LiveProcess(cfg, db, tmp_path, recovery=False)
    try:
        proc.start()
        for _ in range(CANDLES + 1):
            settle(db, RUN, fx.now_ms() - H, proc, fx=fx)
            fx.step()
        assert proc.wait(120) == 0, proc.logs()[-4000:]
        paid = fx.funding_payments()
        final_wallet, final_equity = fx.balance(), fx.equity()
    finally:
        fx.stop()
    url = f"sqlite:///{db}"
    events = read_events(url, RUN)
    (started,) = [e for e in events if e["kind"] == "engine_started"]
    assert started["detail"]["exchange_equity"] == started["detail"]["wallet"] == 10_000.0
    assert not [e for e in events if e["kind"] == "equity_drift"], [
        e["detail"] for e in events if e["kind"] == "equity_drift"][:3]
    # funding: the exchange's settlements, one to one
    mine = sorted((e["symbol"], e["ts_ms"], e["detail"]["payment"])
                  for e in events if e["kind"] == "funding")
    theirs = sorted((p["symbol"], p["time"], p["paid"]) for p in paid)
    assert len(theirs) >= 5 and [m[:2] for m in mine] == [t[:2] for t in theirs]
    # the income history states amounts to 8 decimals, as Binance does
    assert all(abs(m[2] - t[2]) <= 5e-9 for m, t in zip(mine, theirs))
    # ... booked in the account and in the round trips' PnL
    (summary,) = read_summaries(url, RUN)
    assert abs(summary["funding_paid"] - sum(p["paid"] for p in paid)) <= 1e-9
    trades = read_trades(url, RUN)
    assert any(t["funding"] != 0 for t in trades)
    assert abs(summary["cash"] - final_wallet) <= 1e-6  # cash is the exchange's wallet
    assert summary["positions"] is not None and final_equity > 0
