"""A tripped kill switch survives restarts (Bytewax recovery, and the journal alone) and
only an explicit reset clears it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import write_candles, write_config

from gridflow.config import load_config
from gridflow.dataflows.plan import plan_run
from gridflow.events import Command
from gridflow.journal.store import read_events, read_orders, read_summaries

H = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC: candle times are plausible ms
ACCT = (
    '[[accounts]]\nname = "t"\ncapital_quote = 10000.0\nleverage = 3.0\n'
    "[accounts.strategy]\nsma_period = 10\natr_period = 5\nlevels = 5\n"
    "atr_start = 1.0\natr_step = 1.0\nsl_pct = 0.5\n"
    "[accounts.risk]\nsession_loss_grid = 0.05\nmax_margin_ratio = 1.0\n"
    "daily_loss_limit = 0.5\nrolling_drawdown_pct = 0.9\nmax_drawdown_pct = 0.9\n"
)


def crash_then_chop(path: Path, n: int = 1200) -> Path:
    """60 h of a -60 % crash after 60 h of chop, then chop that a grid would trade."""
    rows, price = [], 100.0
    for i in range(n):
        price *= 0.985 if 60 <= i < 120 else 1.0 + 0.01 * (1 if (i // 3) % 2 else -1)
        rows.append((T0 + i * H, price, price * 1.01, price * 0.99, price, 1.0))
    return write_candles(path, rows)


def _events(url, rid, kind):
    return [e for e in read_events(url, rid) if e["kind"] == kind]


def test_kill_switch_survives_sigkill_and_bytewax_recovery(tmp_path: Path) -> None:
    f = crash_then_chop(tmp_path / "binance_BTC_USDT_1h.csv.gz")
    cfg_path = write_config(tmp_path / "c.toml", [f], account=ACCT,
                            extra="chunk_size = 20\npace_s = 0.05\n")
    db = tmp_path / "ks.db"
    url = f"sqlite:///{db}"
    rec = tmp_path / "recovery"
    rec.mkdir()
    subprocess.run([sys.executable, "-m", "bytewax.recovery", str(rec), "1"], check=True)
    args = [sys.executable, "-m", "bytewax.run", f"dataflows.replay:build('{cfg_path}')",
            "-r", str(rec), "-s", "1", "-b", "0"]
    env = dict(os.environ, GRIDFLOW_DB_URL=url)
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    rid = plan_run(load_config(cfg_path, db_url=url)).run_id
    deadline = time.monotonic() + 90
    tripped = False
    while time.monotonic() < deadline and not tripped:
        time.sleep(0.3)
        try:
            tripped = bool(_events(url, rid, "kill_switch_tripped"))
        except Exception:
            continue
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert tripped
    before = read_summaries(url, rid)[0]["candles"]
    assert before < 1200  # killed midway
    res = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    (summary,) = read_summaries(url, rid)
    assert summary["candles"] == 1200
    assert "SESSION_LOSS_GRID" in summary["kill_switch"].split(",")
    trips = _events(url, rid, "kill_switch_tripped")
    assert [t["reason"] for t in trips].count("SESSION_LOSS_GRID") == 1
    resets = _events(url, rid, "kill_switch_reset")
    assert all(r["reason"] == "DAILY_LOSS" for r in resets)  # only the daily one self-clears
    first = min(t["seq"] for t in trips)
    late = [o for o in read_orders(url, rid) if o["tag"].startswith("L") and o["seq"] > first]
    assert late == []


def test_kill_switch_restored_from_the_journal_and_only_a_reset_clears_it(tmp_path) -> None:
    from bytewax.testing import run_main

    from gridflow.dataflows.replay import build

    f = crash_then_chop(tmp_path / "binance_BTC_USDT_1h.csv.gz")
    cfg_path = write_config(tmp_path / "c.toml", [f], account=ACCT)
    url = f"sqlite:///{tmp_path / 'j.db'}"
    # process 1: the first 300 hours (the crash trips the switch), then it stops
    first = load_config(cfg_path, db_url=url, run_id="paper-t", end_ms=T0 + 300 * H)
    run_main(build(first))
    assert _events(url, "paper-t", "kill_switch_tripped")
    # process 2: same run, later candles, no Bytewax state: continued from the journal
    second = load_config(cfg_path, db_url=url, run_id="paper-t", start_ms=T0 + 300 * H,
                         restore_from_journal=True)
    run_main(build(second))
    (summary,) = read_summaries(url, "paper-t")
    assert summary["candles"] == 1200  # counting went on
    assert "SESSION_LOSS_GRID" in summary["kill_switch"]
    entries_later = [o for o in read_orders(url, "paper-t")
                     if o["tag"].startswith("L") and o["ts_ms"] >= T0 + 300 * H]
    assert entries_later == []  # 900 hours of tradable chop, nothing opened
    # the control: without restoring, the same later candles do trade
    fresh = load_config(cfg_path, db_url=f"sqlite:///{tmp_path / 'f.db'}", run_id="fresh",
                        start_ms=T0 + 300 * H)
    run_main(build(fresh))
    assert [o for o in read_orders(fresh.db_url, "fresh") if o["tag"].startswith("L")]
    # only an explicit reset clears it: a restored engine stays on until the command
    eng = plan_run(second).new_engine("t")
    assert "SESSION_LOSS_GRID" in eng.kill_switch
    ack = eng.apply_command(Command(command_id=1, account="t", kind="reset_kill_switch",
                                    payload={}, issued_at_ms=0, issued_by="ops"), T0 + 1200 * H)
    assert [e.kind for e in ack.events][:1] == ["command_applied"]
    assert {e.reason for e in ack.events if e.kind == "kill_switch_reset"} >= {"SESSION_LOSS_GRID"}
    assert eng.kill_switch == ""
