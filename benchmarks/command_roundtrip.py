"""Command round trip on a running replay: issue -> acknowledged in the journal.

Starts a paced replay of the bundled BTC/ETH/SOL 1h candles in a child process (the way
the Panel app and notebooks do, through :class:`gridflow.control.client.GridflowClient`),
then issues ``--n`` pause/resume commands one after the other and measures, for each,
the wall time from the insert of the command row to the client seeing its
acknowledgement in the journal (client poll 5 ms). Default engine poll interval:
``command_poll_s`` = 0.05 s. Prints the median / p95 / max and writes
``benchmarks/results/command_roundtrip.json``. Target: median under 1 s.

    python benchmarks/command_roundtrip.py [--n 40]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from _env import AT_START  # benchmarks/ is the script's folder

from gridflow.config.models import AccountConfig, DataFile, GridAtrParams
from gridflow.control.client import GridflowClient
from gridflow.data import CANDLES_DIR

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "command_roundtrip.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        client = GridflowClient(f"sqlite:///{d}/rt.db", user="bench")
        files = tuple(DataFile(path=str(CANDLES_DIR / f"binance_{s}_USDT_1h.csv.gz"))
                      for s in ("BTC", "ETH", "SOL"))
        acct = AccountConfig(name="rt", symbols=("BTC/USDT", "ETH/USDT", "SOL/USDT"),
                             strategy=GridAtrParams())
        job = client.launch_replay(None, data=files, accounts=(acct,), start_ms="2024-01-01",
                                   pace_s=0.05, chunk_size=24)
        try:
            while job.progress < 0.02:
                if job.done:
                    raise SystemExit(job.errors())
                time.sleep(0.05)
            times = []
            for i in range(args.n):
                kind = "pause" if i % 2 == 0 else "resume"
                t0 = time.perf_counter()
                cid = client.issue("rt", kind, {"symbol": "ETH/USDT"})
                ack = client.wait_ack(cid, timeout_s=30, poll_s=0.005)
                times.append(time.perf_counter() - t0)
                assert ack["status"] == "applied", ack
            progress = job.progress
        finally:
            job.stop()
    times.sort()
    res = {
        "benchmark": "command_roundtrip",
        "n": args.n,
        "engine_poll_s": 0.05,
        "median_s": statistics.median(times),
        "p95_s": times[int(0.95 * (len(times) - 1))],
        "max_s": times[-1],
        "replay_progress_at_end": progress,
        "target_median_s": 1.0,
    }
    print(f"{args.n} commands on a running replay: median {res['median_s'] * 1000:.0f} ms, "
          f"p95 {res['p95_s'] * 1000:.0f} ms, max {res['max_s'] * 1000:.0f} ms")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**res, "environment": AT_START}, indent=2))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
