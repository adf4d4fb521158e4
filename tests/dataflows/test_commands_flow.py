"""Commands on a running (paced) replay: each kind acknowledged, effects in later orders;
rows another writer put in the table (bad ones, huge and negative ids) acknowledged too,
without stopping the flow or the commands after them."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from helpers import write_config

from gridflow.control.client import GridflowClient
from gridflow.journal.store import read_events, read_orders

H = 3_600_000


def test_every_command_kind_on_a_running_replay(tmp_path: Path, three_symbol_files) -> None:
    cfg = write_config(tmp_path / "c.toml", three_symbol_files)
    db = f"sqlite:///{tmp_path / 'cmd.db'}"
    client = GridflowClient(db, user="tester")
    job = client.launch_replay(cfg, pace_s=0.1, chunk_size=40)
    try:
        deadline = time.monotonic() + 60
        while job.progress < 0.15:
            assert not job.done, job.errors()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        acks = {}
        acks["pause"] = client.pause("t", "ETH/USDT")
        acks["set_params"] = client.set_params("t", {"side": "short", "atr_start": 2.0},
                                               symbol="BTC/USDT")
        acks["flatten"] = client.flatten("t", "SOL/USDT")
        acks["reset"] = client.reset_kill_switch("t")
        acks["unknown_kind"] = client.command("t", "explode", {})
        acks["bad_payload"] = client.command("t", "pause", {"symbol": 42})
        acks["bad_params"] = client.set_params("t", {"levels": 0}, symbol="BTC/USDT")
        acks["unknown_account"] = client.command("nobody", "pause", {})
        with sqlite3.connect(tmp_path / "cmd.db") as con:  # another writer, any values
            con.executemany("INSERT INTO commands VALUES (?, ?, ?, ?, ?, ?)", [
                (2**63 - 1, "t", "reset_kill_switch", '{"reason": ["MAX_DRAWDOWN"]}', 1, "x"),
                (-3, "t", "pause", "{not json", 1, "x"),
                (-4, "t", "pause", b'{"symbol": "ETH/USDT"}', 1, "x"),
                (-5, "t", "pause", "{}", "soon", "x"),
                (-6, "t", "reset_kill_switch", "{}", 1, "x"),
            ])
        raw = {cid: client.wait_ack(cid) for cid in (2**63 - 1, -3, -4, -5, -6)}
        acks["after_raw"] = client.reset_kill_switch("t")  # SQLite picks a random id now
        assert job.progress < 1.0  # all of it happened while the replay ran
        report = job.result(timeout_s=120)  # the flow went on to the end
    finally:
        job.stop()
    for k in ("pause", "set_params", "flatten", "reset", "after_raw"):
        assert acks[k]["status"] == "applied", (k, acks[k])
    assert acks["unknown_kind"]["reason"] == "BAD_COMMAND"
    assert acks["bad_payload"]["reason"] == "BAD_PAYLOAD"
    assert {cid: (a["status"], a["reason"]) for cid, a in raw.items()} == {
        2**63 - 1: ("rejected", "BAD_PAYLOAD"), -3: ("rejected", "BAD_PAYLOAD"),
        -4: ("rejected", "BAD_PAYLOAD"), -5: ("rejected", "BAD_COMMAND"),
        -6: ("applied", "reset_kill_switch")}
    assert acks["bad_params"]["reason"] == "INVALID_PARAMS"
    assert acks["unknown_account"]["reason"] == "UNKNOWN_ACCOUNT"
    assert all(a["status"] == "rejected" for k, a in acks.items()
               if k in ("unknown_kind", "bad_payload", "bad_params", "unknown_account"))
    assert report["candles"] == 3 * 3000
    rid = job.run_id
    orders = read_orders(db, rid)
    # paused: no new ETH entries decided after the pause took effect
    t_pause = acks["pause"]["ts_ms"]
    assert not [o for o in orders if o["symbol"] == "ETH/USDT" and o["tag"].startswith("L")
                and o["ts_ms"] > t_pause]
    # new parameters from the next candle: BTC now quotes a short grid (sells to open)
    t_set = acks["set_params"]["ts_ms"]
    btc_after = [o for o in orders if o["symbol"] == "BTC/USDT" and o["ts_ms"] > t_set
                 and o["tag"].startswith("L")]
    assert btc_after and all(o["side"] == "sell" for o in btc_after)
    assert not [o for o in orders if o["symbol"] == "BTC/USDT" and o["ts_ms"] > t_set
                and o["tag"].startswith("L") and o["side"] == "buy"]
    events = read_events(db, rid)
    (ack_event,) = [e for e in events if e["event_id"].endswith(
        f":{acks['set_params']['command_id']}")]
    assert ack_event["detail"]["changes"]["BTC/USDT"]["side"] == ["long", "short"]
    # flatten: if SOL held a position it was closed at the next open by a market order
    flat = [o for o in orders if o["tag"] == "FLATTEN"]
    assert all(o["symbol"] == "SOL/USDT" and o["type"] == "market" and o["reduce_only"]
               for o in flat)
