"""Scaling of the sweep dataflow: one Bytewax process vs two (``-i/-a``).

Workload: ``grid_atr`` (3 levels) on the bundled BTC/USDT and ETH/USDT 1h candles
(2018 -> 2026, 73,265 candles each) with funding, ``--combos`` combinations per symbol
(default 24,576, i.e. 49,152 in all, 3.6 G candle x combination steps), risk limits far away (every
combination trades its whole history), results written to a fresh SQLite file.

Measured: wall time from launching ``python -m bytewax.run dataflows.sweep:flow`` (one
process, one worker) or two of them (``-i 0`` / ``-i 1`` with ``-a "a;b"``, one worker
each) until every process has exited, start-up (imports, numba cache load, candles and
indicators) and the result writes included. Median of ``--repeat`` runs of each,
alternating, in this one session. Prints the table and writes
``benchmarks/results/sweep_processes.json``.

    python benchmarks/sweep_processes.py [--repeat 3] [--combos 12288]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _env import AT_START  # benchmarks/ is the script's folder

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _spec(combos: int, db: str) -> dict:
    starts = [round(0.25 + 0.05 * i, 2) for i in range(64)]
    steps = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0]
    sls = [0.02, 0.03, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3]
    smas = [12, 24, 36, 48, 72, 96]
    total = len(starts) * len(steps) * len(sls) * len(smas)
    keep = max(1, min(len(starts), round(len(starts) * combos / total)))
    return {
        "strategy": "grid_atr",
        "space": {"atr_start": starts[:keep], "atr_step": steps, "sl_frac": sls,
                  "sma_period": smas},
        "base": {"levels": 3, "atr_period": 14},
        "symbols": ["BTC/USDT", "ETH/USDT"],
        "account": {"name": "bench", "risk": {
            "max_margin_ratio": 1.0, "session_loss_grid": 0.9, "session_loss_single": 0.9,
            "daily_loss_limit": 0.5, "rolling_drawdown_frac": 0.9, "max_drawdown_frac": 0.9}},
        "chunk_size": 256,
        "db_url": db,
    }


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def run(processes: int, combos: int, workdir: Path, k: int) -> tuple[float, int]:
    db = workdir / f"p{processes}-{k}.db"
    spec_path = workdir / f"spec-{processes}-{k}.json"
    spec_path.write_text(json.dumps(_spec(combos, f"sqlite:///{db}")))
    env = {**os.environ, "GRIDFLOW_SWEEP_SPEC": str(spec_path), "NUMBA_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "bytewax.run", "dataflows.sweep:flow"]
    if processes == 1:
        cmds = [base]
    else:
        addrs = ";".join(f"127.0.0.1:{p}" for p in _free_ports(processes))
        cmds = [base + ["-i", str(i), "-a", addrs] for i in range(processes)]
    t = time.perf_counter()
    procs = [subprocess.Popen(c, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE) for c in cmds]
    errs = [p.communicate()[1] for p in procs]
    wall = time.perf_counter() - t
    for p, e in zip(procs, errs):
        if p.returncode != 0:
            raise RuntimeError(e.decode()[-3000:])
    import sqlite3

    rows = sqlite3.connect(db).execute("select count(*) from sweep_results").fetchone()[0]
    return wall, rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--combos", type=int, default=24_576)
    ap.add_argument("--out", default=str(HERE / "results" / "sweep_processes.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run(1, 96, work, -1)  # warm the numba cache and the page cache
        times: dict[int, list[float]] = {1: [], 2: []}
        rows = {}
        for k in range(args.repeat):
            for p in (1, 2):
                wall, n = run(p, args.combos, work, k)
                times[p].append(wall)
                rows[p] = n
                print(f"  run {k}: {p} process(es) {wall:6.2f} s, {n} results")
    assert rows[1] == rows[2], rows
    med = {p: statistics.median(v) for p, v in times.items()}
    candles = 73_265
    steps = rows[1] * candles
    speedup = med[1] / med[2]
    print(f"{rows[1]} combinations x {candles} candles = {steps / 1e9:.2f} G steps")
    print(f"1 process : {med[1]:6.2f} s  ({steps / med[1] / 1e6:,.0f} M steps/s)")
    print(f"2 processes: {med[2]:6.2f} s  ({steps / med[2] / 1e6:,.0f} M steps/s)")
    print(f"speed-up  : {speedup:.2f}x (cpu count {os.cpu_count()})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"environment": AT_START,
        "results": rows[1], "steps": steps, "times_s": times, "median_s": med,
        "speedup": speedup, "cpu_count": os.cpu_count()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
