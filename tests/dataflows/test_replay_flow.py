"""The replay dataflow end to end: python -m bytewax.run, determinism, recovery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bytewax.testing import run_main
from helpers import journal_all, report, run_bytewax, write_config

from gridflow.config import load_config
from gridflow.control.report import compute_report, journal_lines
from gridflow.data.candle_files import read_candle_file
from gridflow.dataflows.replay import build


def test_default_flow_runs_with_bytewax_run_and_fills_the_journal(tmp_path: Path) -> None:
    db = tmp_path / "default.db"
    res = run_bytewax("dataflows.replay:flow", db, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    rep = report(db)
    cfg = load_config()
    start = cfg.start_ms or 0
    expected = sum(int((read_candle_file(f.path)["ts"] >= start).sum()) for f in cfg.data)
    assert len(cfg.data) == 5 and expected > 5 * 30_000
    assert rep["candles"] == expected  # every bundled candle of the window
    assert rep["trades"] > 0 and rep["fills"] > 0 and rep["orders"] == rep["fills"]
    assert rep["candles_rejected"] == 0
    assert not (tmp_path / "gridflow.db").exists()  # GRIDFLOW_DB_URL was honoured


def test_two_replays_and_one_or_two_workers_give_the_same_journal(
    tmp_path: Path, three_symbol_files: list[Path]
) -> None:
    cfg = write_config(tmp_path / "c.toml", three_symbol_files, extra="chunk_size = 250\n")
    target = f"dataflows.replay:build('{cfg}')"
    runs = {}
    for name, workers in (("a", "1"), ("b", "1"), ("w2", "2")):
        db = tmp_path / f"{name}.db"
        res = run_bytewax(target, db, "-w", workers)
        assert res.returncode == 0, res.stderr[-2000:]
        runs[name] = db
    lines = {k: journal_lines(f"sqlite:///{db}") for k, db in runs.items()}
    assert len(lines["a"]) > 20
    assert lines["a"] == lines["b"] == lines["w2"]
    full = {k: journal_all(db) for k, db in runs.items()}
    assert full["a"] == full["b"] == full["w2"]
    assert report(runs["a"]) == report(runs["w2"])


def test_sigkill_midway_and_resume_ends_with_the_uninterrupted_journal(
    tmp_path: Path, three_symbol_files: list[Path]
) -> None:
    base = write_config(tmp_path / "base.toml", three_symbol_files, extra="chunk_size = 100\n")
    ref_db = tmp_path / "ref.db"
    res = run_bytewax(f"dataflows.replay:build('{base}')", ref_db)
    assert res.returncode == 0, res.stderr[-2000:]

    # same run (pace_s is not part of the run identity), slowed to ~3 s per file
    paced = write_config(tmp_path / "paced.toml", three_symbol_files,
                         extra="chunk_size = 100\npace_s = 0.1\n")
    rec = tmp_path / "recovery"
    rec.mkdir()
    subprocess.run([sys.executable, "-m", "bytewax.recovery", str(rec), "1"], check=True)
    db = tmp_path / "killed.db"
    args = [sys.executable, "-m", "bytewax.run", f"dataflows.replay:build('{paced}')",
            "-r", str(rec), "-s", "1", "-b", "0"]
    env = dict(os.environ, GRIDFLOW_DB_URL=f"sqlite:///{db}")
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    # kill once the journal shows progress but well before the end
    while time.monotonic() < deadline:
        time.sleep(0.25)
        if db.exists():
            try:
                cand = compute_report(f"sqlite:///{db}")["candles"]
            except Exception:  # tables not there yet
                continue
            if cand >= 1500:
                break
    exited = proc.poll()
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=30)
    assert exited is None, f"the paced run ended by itself ({exited}): {err.decode()[-3000:]}"
    try:
        partial = compute_report(f"sqlite:///{db}")["candles"]
    except LookupError as exc:  # no run registered within the deadline: say why
        raise AssertionError(f"{exc}; the killed run's stderr: {err.decode()[-3000:]}") from None
    assert 0 < partial < 9000, partial  # really killed midway

    res = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert journal_all(db) == journal_all(ref_db)
    assert report(db) == report(ref_db)


def test_bad_candles_are_refused_counted_journaled_and_the_flow_goes_on(tmp_path: Path) -> None:
    from helpers import write_candles

    H, T0 = 3_600_000, 1_704_067_200_000  # from 2024-01-01 00:00 UTC
    rows = []
    price = 100.0
    for i in range(200):
        price *= 1.0 + (0.02 if (i // 10) % 2 else -0.02)
        rows.append((T0 + i * H, price, price * 1.01, price * 0.98, price, 1.0))
    bad = [
        (T0 + 200 * H, -1.0, 1.0, 0.5, 1.0, 1.0),             # NON_POSITIVE_PRICE
        (T0 + 201 * H, 100.0, 99.0, 98.0, 100.0, 1.0),        # HIGH_BELOW_BODY
        (T0 + 202 * H, 100.0, 102.0, 100.5, 101.0, 1.0),      # LOW_ABOVE_BODY
        (T0 + 203 * H, 100.0, 101.0, 99.0, 100.0, -5.0),      # NEGATIVE_VOLUME
        (T0 + 203 * H + 17, 100.0, 101.0, 99.0, 100.0, 1.0),  # MISALIGNED_TS
        (T0 + 199 * H, 100.0, 101.0, 99.0, 100.0, 1.0),       # DUPLICATE_TS
        (T0 + 150 * H, 100.0, 101.0, 99.0, 100.0, 1.0),       # OUT_OF_ORDER
        "204,abc,1,1,1",                                 # MALFORMED_ROW
    ]
    good_after = [(T0 + t * H, 100.0, 101.0, 99.0, 100.0, 1.0) for t in range(205, 260)]
    f = write_candles(tmp_path / "binance_BTC_USDT_1h.csv.gz", rows + bad + good_after)
    cfg = load_config(write_config(tmp_path / "c.toml", [f], extra="chunk_size = 64\n"),
                      db_url=f"sqlite:///{tmp_path / 'bad.db'}")
    run_main(build(cfg))
    url = cfg.db_url
    rep = compute_report(url)
    assert rep["candles_rejected"] == 8
    assert rep["data_gaps"] == 1  # the refused candles at 200h..204h leave one hole
    assert rep["candles"] == 200 + 55  # everything valid was processed, after the bad rows too
    from gridflow.journal.store import read_events

    events = read_events(url, rep["run_id"])
    (gap,) = [e for e in events if e["kind"] == "data_gap"]
    assert gap["detail"]["missing"] == 5 and gap["symbol"] == "BTC/USDT"
    reasons = sorted(e["reason"] for e in events if e["kind"] == "candle_rejected")
    assert reasons == sorted(["NON_POSITIVE_PRICE", "HIGH_BELOW_BODY", "LOW_ABOVE_BODY",
                              "NEGATIVE_VOLUME", "MISALIGNED_TS", "DUPLICATE_TS",
                              "OUT_OF_ORDER", "MALFORMED_ROW"])


def test_kill_switch_in_the_flow_blocks_every_level_of_a_crash(tmp_path: Path) -> None:
    from helpers import crash_candles


    f = crash_candles(tmp_path / "binance_BTC_USDT_1h.csv.gz")  # a 60-hour -60 % crash
    acct = (
        '[[accounts]]\nname = "t"\ncapital_quote = 10000.0\nleverage = 3.0\n'
        "[accounts.strategy]\nsma_period = 10\natr_period = 5\nlevels = 5\n"
        "atr_start = 1.0\natr_step = 1.0\nsl_pct = 0.5\n"
        "[accounts.risk]\nsession_loss_grid = 0.05\nmax_margin_ratio = 1.0\n"
        "daily_loss_limit = 0.5\nrolling_drawdown_pct = 0.9\nmax_drawdown_pct = 0.9\n"
    )
    cfg = load_config(write_config(tmp_path / "c.toml", [f], account=acct),
                      db_url=f"sqlite:///{tmp_path / 'ks.db'}")
    run_main(build(cfg))
    from gridflow.journal.store import read_events, read_orders

    rid = compute_report(cfg.db_url)["run_id"]
    events = read_events(cfg.db_url, rid)
    trips = sorted((e for e in events if e["kind"] == "kill_switch_tripped"),
                   key=lambda e: e["seq"])
    assert trips[0]["reason"] == "SESSION_LOSS_GRID"  # first; the open grid then loses more
    trip_seq = trips[0]["seq"]
    orders = read_orders(cfg.db_url, rid)
    assert not [o for o in orders if o["tag"].startswith("L") and o["seq"] > trip_seq]
    denied_levels = {e["detail"]["level"] for e in events
                     if e["kind"] == "order_denied" and e["reason"] == "KILL_SWITCH"}
    assert denied_levels == {0, 1, 2, 3, 4}


def test_a_replay_ends_when_its_journal_completes_not_at_the_next_command_poll(
    tmp_path: Path, three_symbol_files: list[Path]
) -> None:
    """The replay's command source ends the flow once the journal says every account is
    complete; the journal sink wakes it right after that commit. With commands polled
    every 10 s (the longest allowed), the replay still ends before a second poll."""
    cfg = write_config(tmp_path / "c.toml", three_symbol_files[:1],
                       extra=f'db_url = "sqlite:///{tmp_path / "j.db"}"\ncommand_poll_s = 10.0\n')
    t0 = time.monotonic()
    run_main(build(str(cfg)))
    waited = time.monotonic() - t0
    assert report(tmp_path / "j.db")["candles"] == 3000
    assert waited < 10.0, f"the replay waited {waited:.1f} s: for a command poll"
