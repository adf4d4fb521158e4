"""The sweep dataflow and the ``gridflow sweep`` / ``gridflow wfo`` commands, end to end
on the bundled candles with real SQLite stores: one worker, two workers and two
processes store the same results, equal to a direct :func:`run_sweep` (or, for a
walk-forward run split into one partition per window, :func:`run_walkforward`)."""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bytewax.testing import run_main

from gridflow.dataflows.sweep import SweepInput, build, partitions
from gridflow.dataflows.sweep_spec import load_sweep_spec
from gridflow.journal.sweep_store import list_sweeps, read_results, read_wfo
from gridflow.sweep import METRICS, IndicatorTable, SweepData, run_sweep
from gridflow.wfo.walkforward import assemble, run_walkforward, run_window, windows

SPACE = {"atr_start": [1, 2, 3], "sl_pct": [0.05, 0.1]}
SPEC = {"strategy": "grid_atr", "space": SPACE, "base": {"levels": 3},
        "symbols": ["BTC/USDT", "ETH/USDT"], "start_ms": "2024-01-01",
        "end_ms": "2024-04-01", "chunk_size": 1}
KEY = ["symbol", "window", "phase", "combo_id"]
WFO = {"kind": "wfo", "space": {"atr_start": [1, 2], "sl_pct": [0.05, 0.1]},
       "symbols": ["BTC/USDT"], "start_ms": "2022-01-01", "end_ms": "2024-01-01",
       "wfo": {"is_days": 180, "oos_days": 90, "n_boot": 200}}
TIMING = ("seconds", "wall_seconds")


def _spec_file(tmp_path: Path, name: str, **fields) -> tuple[Path, str]:
    db = f"sqlite:///{tmp_path / (name + '.db')}"
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({**SPEC, **fields, "db_url": db}))
    return path, db


def _bytewax(spec: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ, GRIDFLOW_SWEEP_SPEC=str(spec))
    return subprocess.Popen([sys.executable, "-m", "bytewax.run", "dataflows.sweep:flow", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait(proc: subprocess.Popen) -> None:
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _run_three_ways(tmp_path: Path, **kw):
    """The same spec run by one worker in this process, by ``-w 2`` and by two processes
    (``-i/-a``), each into a fresh store: ``(spec file, db one, db -w 2, db 2 procs)``."""
    one, db_one = _spec_file(tmp_path, "one", **kw)
    run_main(build(one))
    w2, db_w2 = _spec_file(tmp_path, "w2", **kw)
    _wait(_bytewax(w2, "-w", "2"))
    p2, db_p2 = _spec_file(tmp_path, "p2", **kw)  # a fresh file: both processes create it
    addrs = ";".join(f"127.0.0.1:{p}" for p in _free_ports(2))
    for proc in [_bytewax(p2, "-i", str(i), "-a", addrs) for i in range(2)]:
        _wait(proc)
    return one, db_one, db_w2, db_p2


def _gridflow(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("gridflow")
    cmd = [exe] if exe else [sys.executable, "-m", "gridflow.cli"]
    return subprocess.run([*cmd, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_partitions_are_split_between_workers_exactly_once() -> None:
    spec = load_sweep_spec(SPEC)
    parts = spec.partitions()
    assert parts == [(s, k) for s in SPEC["symbols"] for k in range(6)]
    for n in (1, 2, 3, 5):
        taken = []
        for w in range(n):
            src = SweepInput(spec).build("partitions", w, n)
            while True:
                try:
                    taken += src.next_batch()
                except StopIteration:
                    break
        assert sorted(taken) == sorted(parts)  # every partition once, whatever the split


def test_one_worker_two_workers_and_two_processes_store_the_same_results(
    tmp_path: Path,
) -> None:
    one, db_one, db_w2, db_p2 = _run_three_ways(tmp_path)

    spec = load_sweep_spec(one)
    frames = {}
    for db in (db_one, db_w2, db_p2):
        (meta,) = list_sweeps(db)
        assert meta["sweep_id"] == spec.sweep_id and meta["status"] == "done"
        assert meta["n_combos"] == 6
        frames[db] = read_results(db, spec.sweep_id)
    ref = frames[db_one]
    assert len(ref) == 2 * 6 and not ref.duplicated(KEY).any()
    assert set(ref["window"]) == {-1} and set(ref["phase"]) == {"full"}
    for db in (db_w2, db_p2):
        pd.testing.assert_frame_equal(frames[db], ref)

    combos, params = spec.grid()
    for sym in SPEC["symbols"]:
        path, tf = spec.candle_file(sym)
        data = SweepData.from_file(path, sym, tf, spec.funding_file(sym))
        direct = run_sweep(data, spec.account, combos, spec.fees, spec.market(sym),
                           start_ms=spec.start_ms, end_ms=spec.end_ms)
        got = ref[ref["symbol"] == sym]
        assert got["combo_id"].tolist() == list(range(6))
        assert got[["atr_start", "sl_pct"]].to_dict("records") == params
        for m in METRICS:
            np.testing.assert_array_equal(got[m].to_numpy(), direct.metrics[m], err_msg=m)
        assert (got["trades"] > 0).all()


def _same(a, b) -> bool:
    """Deep equality of plain values, NaN equal to NaN and lists equal to tuples."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def _untimed(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in TIMING}


def _direct_wfo(spec, symbol: str):
    path, tf = spec.candle_file(symbol)
    data = SweepData.from_file(path, symbol, tf, spec.funding_file(symbol))
    return data, run_walkforward(data, spec.account, spec.strategy, spec.space, spec.wfo,
                                 spec.fees, spec.market(symbol), spec.base)


def test_wfo_partitions_are_the_windows_of_each_symbol() -> None:
    spec = load_sweep_spec({**SPEC, **WFO, "symbols": ["BTC/USDT", "ETH/USDT"]})
    with pytest.raises(ValueError, match="window count"):
        spec.partitions()
    assert spec.partitions({"BTC/USDT": 2, "ETH/USDT": 1}) == [
        ("BTC/USDT", 0), ("BTC/USDT", 1), ("ETH/USDT", 0)]
    assert partitions(spec) == [(s, k) for s in ("BTC/USDT", "ETH/USDT") for k in range(6)]


def test_wfo_windows_run_apart_assemble_to_the_direct_run() -> None:
    """run_window of each window (in any order, own indicator tables) + assemble ==
    run_walkforward, bit for bit but the timings."""
    spec = load_sweep_spec({**SPEC, **WFO})
    data, direct = _direct_wfo(spec, "BTC/USDT")
    combos, params = spec.grid()
    parts = [run_window(data, spec.account, spec.strategy, spec.space, spec.wfo, w, combos,
                        params, IndicatorTable(data), spec.fees, spec.market("BTC/USDT"),
                        spec.base) for w in windows(data, spec.wfo)]
    random.Random(1).shuffle(parts)
    res = assemble(data, spec.wfo, parts, spec.account, spec.strategy, params,
                   spec.invalid_combos)
    assert _same(_untimed(res.report), _untimed(direct.report))
    assert _same(res.windows, direct.windows) and _same(res.results, direct.results)
    assert res.params == direct.params
    for got, want in zip(res.stitched, direct.stitched):
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
    with pytest.raises(ValueError, match="expected windows 0..5"):
        assemble(data, spec.wfo, parts[1:], spec.account, spec.strategy, params)


def test_wfo_one_worker_two_workers_and_two_processes_store_the_same_run(
    tmp_path: Path,
) -> None:
    one, db_one, db_w2, db_p2 = _run_three_ways(tmp_path, **WFO)

    spec = load_sweep_spec(one)
    stored = {}
    for db in (db_one, db_w2, db_p2):
        (meta,) = list_sweeps(db)
        assert meta["sweep_id"] == spec.sweep_id and meta["status"] == "done"
        assert meta["kind"] == "wfo"
        stored[db] = (read_results(db, spec.sweep_id), *read_wfo(db, spec.sweep_id))
    rows, wins, reports = stored[db_one]
    assert len(rows) == 6 * 2 * 4 and not rows.duplicated(KEY).any()
    assert wins["window"].tolist() == list(range(6)) and list(reports) == ["BTC/USDT"]
    for db in (db_w2, db_p2):
        pd.testing.assert_frame_equal(stored[db][0], rows)
        pd.testing.assert_frame_equal(stored[db][1], wins)
        assert _same(_untimed(stored[db][2]["BTC/USDT"]), _untimed(reports["BTC/USDT"]))

    _, direct = _direct_wfo(spec, "BTC/USDT")  # one partition per window == one run
    assert _same(_untimed(reports["BTC/USDT"]), _untimed(direct.report))
    want = pd.DataFrame(direct.results)
    assert rows[["window", "phase", "combo_id"]].to_dict("records") == want[
        ["window", "phase", "combo_id"]].to_dict("records")
    assert rows[["atr_start", "sl_pct"]].to_dict("records") == want["params"].tolist()
    for m in (*METRICS, "score"):
        np.testing.assert_array_equal(rows[m].to_numpy(), want[m].to_numpy(), err_msg=m)
    for got, w in zip(wins.to_dict("records"), direct.windows):
        for k in ("window", "is_start_ms", "is_end_ms", "oos_start_ms", "oos_end_ms",
                  "best_combo_id", "regime", "is_sharpe", "oos_sharpe", "is_net_pnl",
                  "oos_net_pnl", "is_trades", "oos_trades", "oos_max_drawdown"):
            assert _same(got[k], w[k]), k
        assert {p: got[p] for p in w["params"]} == w["params"]


def test_sweep_command_prints_the_top_rows_and_marks_the_sweep_done(tmp_path: Path) -> None:
    cfg = tmp_path / "spec.toml"
    cfg.write_text('strategy = "grid_atr"\nsymbols = ["BTC/USDT"]\n'
                   'start_ms = "2024-01-01"\nend_ms = "2024-04-01"\n'
                   "[space]\natr_start = [1, 2]\nsl_pct = [0.5]\n[base]\nlevels = 3\n")
    db = f"sqlite:///{tmp_path / 'sweeps.db'}"
    res = _gridflow("sweep", "--config", str(cfg), "--param", "sl_pct=0.05,0.1",
                    "--param", "atr_step=0.5,1", "--db", db, "--processes", "2",
                    "--chunk-size", "3", "--json", "--top", "5", "--metric", "sharpe",
                    "--no-progress", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout)
    top = out["top"]
    assert out["n_combos"] == 8 and len(top) == 5
    sharpes = [r["sharpe"] for r in top]
    assert all(s is not None for s in sharpes) and sharpes == sorted(sharpes, reverse=True)
    assert all(r["params"]["sl_pct"] in (0.05, 0.1) for r in top)  # the flag beat the file
    (meta,) = list_sweeps(db)
    assert meta["sweep_id"] == out["sweep_id"] and meta["status"] == "done"
    assert meta["elapsed_s"] > 0
    stored = read_results(db, out["sweep_id"])
    assert len(stored) == 8
    best = stored.sort_values("sharpe", ascending=False).iloc[0]
    assert best["combo_id"] == top[0]["combo_id"] and best["sharpe"] == top[0]["sharpe"]
    data = SweepData.from_file(load_sweep_spec(cfg).candle_file("BTC/USDT")[0])
    candles = data.index(1711929600000, len(data)) - data.index(1704067200000, 0)
    assert out["steps"] == 8 * candles and out["steps_per_s"] > 0


def test_wfo_command_grades_and_stores_the_windows_and_report(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'wfo.db'}"
    res = _gridflow("wfo", "--strategy", "grid_atr", "--param", "atr_start=1,2",
                    "--param", "sl_pct=0.1", "--set", "levels=3", "--start", "2022-01-01",
                    "--end", "2024-01-01", "--is-days", "180", "--oos-days", "90",
                    "--workers", "2", "--db", db, "--json", "--no-progress", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout)
    rep = out["reports"]["BTC/USDT"]
    assert rep["grade"] in tuple("ABCDF") and rep["n_windows"] == 6
    for key in ("oos_sharpe", "consistency", "oos_is_ratio", "dsr", "mc_pvalue", "stability",
                "regimes", "grade_reasons"):
        assert key in rep
    windows, summaries = read_wfo(db, out["sweep_id"])
    assert len(windows) == 6 and windows["window"].tolist() == list(range(6))
    assert summaries["BTC/USDT"]["grade"] == rep["grade"]
    assert math.isclose(summaries["BTC/USDT"]["consistency"], rep["consistency"])
    assert len(out["windows"]["BTC/USDT"]) == 6
    (meta,) = list_sweeps(db)
    assert meta["kind"] == "wfo" and meta["status"] == "done"
    rows = read_results(db, out["sweep_id"])
    assert len(rows) == 6 * 2 * 2 and set(rows["phase"]) == {"is", "oos"}

    text = _gridflow("wfo", "--strategy", "grid_atr", "--param", "atr_start=1,2",
                     "--param", "sl_pct=0.1", "--set", "levels=3", "--start", "2022-01-01",
                     "--end", "2024-01-01", "--is-days", "180", "--oos-days", "90",
                     "--db", db, "--no-progress", cwd=tmp_path)  # same spec: same id, rerun
    assert text.returncode == 0, text.stderr[-3000:]
    assert f"BTC/USDT: grade {rep['grade']}" in text.stdout and "oos_start" in text.stdout


@pytest.mark.parametrize("args, message", [
    (["--strategy", "grid_atr", "--param", "atr_typo=1,2"], "unknown parameters ['atr_typo']"),
    (["--strategy", "grid_atr", "--param", "levels="], "no values for ['levels']"),
    (["--strategy", "grid_trend", "--param", "ema_fast=50,60", "--param", "ema_slow=20,30"],
     "all 4 combinations of ['ema_fast', 'ema_slow'] are invalid"),
    (["--strategy", "grid_atr", "--param", "levels=2", "--symbols", "DOGE/USDT"],
     "no candle data for ['DOGE/USDT']"),
])
def test_bad_input_is_refused_with_a_clear_message(tmp_path: Path, args, message) -> None:
    res = _gridflow("sweep", *args, "--db", f"sqlite:///{tmp_path / 'x.db'}",
                    "--no-progress", cwd=tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    assert message in res.stderr and "Traceback" not in res.stderr


def test_wfo_command_on_btc_2019_to_2026_reports_every_item(tmp_path: Path) -> None:
    """The acceptance run: BTC/USDT 1h 2019-2026, 365 / 90-day windows, from the CLI."""
    db = f"sqlite:///{tmp_path / 'wfo.db'}"
    res = _gridflow("wfo", "--strategy", "grid_atr", "--param", "atr_start=1,2,3",
                    "--param", "sl_pct=0.05,0.1", "--param", "side=long,short",
                    "--set", "levels=3", "--start", "2019-01-01", "--end", "2026-05-01",
                    "--is-days", "365", "--oos-days", "90", "--db", db, "--json",
                    "--no-progress", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    rep = json.loads(res.stdout)["reports"]["BTC/USDT"]
    # 2019-01-01 + 365 days of IS, then 90-day OOS windows up to 2026-05-01
    assert rep["n_windows"] == 26 and rep["n_combos"] == 12
    assert set(rep["regimes"]) <= {"bull", "bear", "range", "crash"}
    assert sum(rep["regimes"].values()) == 26
    assert 0.0 <= rep["dsr"] <= 1.0 and 0.0 < rep["mc_pvalue"] <= 1.0
    assert 0.0 <= rep["consistency"] <= 1.0 and 0.0 <= rep["stability"] <= 1.0
    for key in ("oos_sharpe", "oos_total_return", "oos_max_drawdown", "oos_trades",
                "oos_is_ratio", "grade"):
        assert key in rep
    assert rep["grade"] in tuple("ABCDF") and rep["grade_reasons"]
