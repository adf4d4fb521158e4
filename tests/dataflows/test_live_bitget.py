"""Bitget USDT-M (v2 mix API) through ``python -m bytewax.run dataflows.live:build(...)``
against the local exchange's Bitget dialect (real ``ccxt.bitget`` over HTTP, real bundled
candles and funding, a real SQLite journal)."""

from __future__ import annotations

from live_harness import H, LiveProcess, start_exchange, write_live_config
from test_live_funding import BTC, FUNDING_FILE, GF, START, STEPS, orders
from test_live_flow import drive

from gridflow.data.funding import read_funding


def test_paper_on_bitget_sends_the_orders_of_the_replay(tmp_path):
    """Paper on Bitget USDT-M: candles and settled funding rates through the real
    ccxt.bitget from the local exchange's Bitget dialect (its real BTCUSDT filters, which
    the config's market repeats), the orders of the replay of the same candles."""
    from helpers import run_bytewax, subset_file

    fx = start_exchange(START, symbols=(BTC,), funding={BTC: read_funding(FUNDING_FILE)},
                        venue="bitget")
    db = tmp_path / "paper.db"
    kw = dict(symbols=(BTC,), strategy=GF, leverage=2.0, venue="bitget")
    cfg = write_live_config(tmp_path / "paper.toml", db, fx, START + STEPS * H, mode="paper",
                            **kw)
    proc = LiveProcess(cfg, db, tmp_path, recovery=False)
    try:
        drive(fx, db, proc, STEPS + 1, check_stops=False)
    finally:
        fx.stop()
    assert not fx.orders() and any("/api/v2/mix/market/" in r["path"]
                                   for r in fx.request_log)  # Bitget's own endpoints
    f = subset_file("binance_BTC_USDT_1h.csv.gz", tmp_path / "btc.csv.gz", START - 48 * H,
                    48 + STEPS)
    extra = (f"start_ms = {START}\nend_ms = {START + STEPS * H}\nwarmup_candles = 48\n"
             f'[[data]]\npath = "{f}"\nsymbol = "{BTC}"\ntimeframe = "1h"\n'
             f'[[funding]]\npath = "{FUNDING_FILE}"\n')
    rdb = tmp_path / "replay.db"
    rcfg = write_live_config(tmp_path / "replay.toml", rdb, fx, START + STEPS * H,
                             mode="paper", extra=extra, **kw)
    res = run_bytewax(f"dataflows.replay:build('{rcfg}')", rdb)
    assert res.returncode == 0, res.stderr[-3000:]
    paper = orders(db)
    assert len(paper) >= 5 and "EXIT" in {o[2] for o in paper}
    assert paper == orders(rdb)
