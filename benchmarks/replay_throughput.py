"""End-to-end replay throughput (candles/s) vs a plain Python loop over the same parts.

Input: the real Binance 1m candles of BTC/USDT and ETH/USDT (2 x 130,708 candles) from
``../shared/data/candles`` (or ``--data``). Both measurements do the same work, from
reading the gzip files to the committed journal rows in a fresh SQLite file:

* ``bytewax``: the replay dataflow (:func:`gridflow.dataflows.replay.build_flow`) run
  by Bytewax's ``cli_main`` in this process, one worker (and two, for information).
* ``plain_loop``: a ``for`` loop calling the same source partitions, validation,
  indicator bank, account engine and journal sink partition (the replay's: rows
  gathered and committed by its writer process, ``process=True``), chunk by chunk.
* ``plain_loop_no_journal``: the same loop without the journal writes (information).
* ``*_store``: the same, reading the candles from the market-data store
  (:mod:`gridflow.data.store`, the files imported into a temporary one) instead of the
  gzip files; ``load_*``: the reading alone (CSV parse vs Parquet memory map).

``store_to_csv_without_journal`` is the end-to-end ratio if the journal cost nothing
(each replay less its journal's on - off cost): what journal work alone can bring.

Each figure is the median of ``--repeat`` runs measured in this one process after a
warm-up run (numba kernels compiled and cached). Prints a table and writes JSON to
``benchmarks/results/replay_throughput.json``.

    python benchmarks/replay_throughput.py [--repeat 7] [--chunk-size 2000]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from _env import AT_START  # benchmarks/ is the script's folder

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data" / "candles"
DEFAULT_FILES = [SHARED / "binance_BTC_USDT_1m.csv.gz", SHARED / "binance_ETH_USDT_1m.csv.gz"]


def make_config(files: list, db_url: str, chunk_size: int):
    from gridflow.config import load_config
    from gridflow.config.models import AccountConfig, DataFile, GridAtrParams

    acct = AccountConfig(
        name="bench",
        capital_quote=10_000.0,
        leverage=2.0,
        strategy=GridAtrParams(sma_period=60, atr_period=14, levels=5, atr_start=2.0,
                               atr_step=1.0, sl_frac=0.05),
    )
    return load_config(
        None,
        db_url=db_url,
        data=tuple(DataFile(path=str(f)) for f in files),  # files or store specs
        accounts=(acct,),
        chunk_size=chunk_size,
        start_ms=None,
    )


def run_bytewax(files: list[Path], chunk_size: int, workers: int) -> tuple[float, dict]:
    from bytewax.run import cli_main

    from gridflow.control.report import compute_report
    from gridflow.dataflows.plan import plan_run
    from gridflow.dataflows.replay import build_flow

    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite:///{d}/bench.db"
        t0 = time.perf_counter()
        cfg = make_config(files, url, chunk_size)
        flow = build_flow(plan_run(cfg))
        cli_main(flow, workers_per_process=workers, epoch_interval=timedelta(seconds=10))
        elapsed = time.perf_counter() - t0
        rep = compute_report(url)
    return elapsed, rep


def run_plain(files: list[Path], chunk_size: int, journal: bool) -> tuple[float, int]:
    from gridflow.chunks import IndicatorChunk, JournalBatch
    from gridflow.dataflows.plan import plan_run
    from gridflow.dataflows.heap import freeze_startup_heap
    from gridflow.dataflows.replay import JOURNAL_GATHER_S
    from gridflow.dataflows.sinks import JournalSink
    from gridflow.dataflows.sources import CandleFilePartition
    from gridflow.operators.indicators import IndicatorBank
    from gridflow.operators.validation import CandleValidator

    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite:///{d}/plain.db"
        t0 = time.perf_counter()
        cfg = make_config(files, url, chunk_size)
        plan = plan_run(cfg)
        freeze_startup_heap()  # as the replay flow's construction does
        # the replay's own journal writer (the sink's partition: run registered, batches
        # gathered into one transaction per JOURNAL_GATHER_S, the rest written at close)
        jr = JournalSink(url, plan.run_id, run_row=plan.run_row(), gather_s=JOURNAL_GATHER_S,
                         process=True).build_part("journal", "journal", None) if journal else None
        parts = [CandleFilePartition(p, s, tf, chunk_size) for p, s, tf in plan.files]
        validators = {s: CandleValidator() for _, s, _ in plan.files}
        banks = {s: IndicatorBank(list(plan.indicators[s])) for _, s, _ in plan.files}
        engines = {a: plan.new_engine(a) for a in plan.account_symbols}
        routes = plan.routes()
        candles = 0
        live = list(parts)
        while live:  # round robin over the files, like a Bytewax worker
            for part in list(live):
                try:
                    (chunk,) = part.next_batch()
                except StopIteration:
                    live.remove(part)
                    continue
                out = JournalBatch()
                ok, events = validators[chunk.symbol].validate(chunk)
                out.events.extend(events)
                v = banks[chunk.symbol].update(ok.ts, ok.open, ok.high, ok.low, ok.close)
                for acct in routes[chunk.symbol]:
                    out.extend(engines[acct].on_chunk(IndicatorChunk(ok, v)))
                candles += len(ok)
                if jr is not None and out:
                    jr.write_batch([out])
        for eng in engines.values():
            out = eng.flush()
            if jr is not None and out:
                jr.write_batch([out])
        if jr is not None:
            jr.close()
        elapsed = time.perf_counter() - t0
    return elapsed, candles


def import_to_store(files: list[Path], root: Path) -> list[str]:
    """The files imported into a store at ``root``; their specs."""
    from gridflow.data.store import CandleStore
    from gridflow.ops.market_data import import_candle_file

    store = CandleStore(root)
    return [import_candle_file(store, f, "binance")["series"] for f in files]


def load_times(files: list[Path], specs: list[str], repeat: int) -> dict[str, float]:
    """Median seconds to read all ``files`` (CSV) and all ``specs`` (store)."""
    from gridflow.data.candle_files import read_candle_file
    from gridflow.data.store import CandleStore
    from gridflow.series_spec import parse_spec

    store = CandleStore()
    out: dict[str, list[float]] = {"load_csv": [], "load_store": []}
    for _ in range(repeat):
        t = time.perf_counter()
        for f in files:
            read_candle_file(f)
        out["load_csv"].append(time.perf_counter() - t)
        t = time.perf_counter()
        for sp in specs:
            store.read(parse_spec(sp))
        out["load_store"].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", type=Path, default=DEFAULT_FILES)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--chunk-size", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "replay_throughput.json")
    args = ap.parse_args()
    files = [p.resolve() for p in args.data]
    for f in files:
        if not f.exists():
            raise SystemExit(f"missing candle file {f} (expected ../shared beside the repo)")

    import os

    store_dir = tempfile.TemporaryDirectory()
    os.environ["GRIDFLOW_STORE"] = store_dir.name
    specs = import_to_store(files, Path(store_dir.name))

    # warm-up: compile / load the numba kernels, page in the files
    _, rep = run_bytewax(files, args.chunk_size, 1)
    n = rep["candles"]
    _, n_plain = run_plain(files, args.chunk_size, True)
    assert n_plain == n, (n_plain, n)
    _, rep_store = run_bytewax(specs, args.chunk_size, 1)
    assert rep_store["candles"] == n and rep_store["fills"] == rep["fills"], "store != files"

    times: dict[str, list[float]] = {"bytewax_w1": [], "bytewax_w2": [], "plain_loop": [],
                                     "plain_loop_no_journal": [], "bytewax_w1_store": [],
                                     "plain_loop_store": [], "plain_loop_no_journal_store": []}
    for _ in range(args.repeat):  # interleaved, so drift hits every variant alike; the
        # two sides of each compared pair run back to back (paired figures below)
        times["bytewax_w1"].append(run_bytewax(files, args.chunk_size, 1)[0])
        times["bytewax_w1_store"].append(run_bytewax(specs, args.chunk_size, 1)[0])
        times["plain_loop"].append(run_plain(files, args.chunk_size, True)[0])
        times["plain_loop_no_journal"].append(run_plain(files, args.chunk_size, False)[0])
        times["plain_loop_store"].append(run_plain(specs, args.chunk_size, True)[0])
        times["plain_loop_no_journal_store"].append(run_plain(specs, args.chunk_size, False)[0])
        times["bytewax_w2"].append(run_bytewax(files, args.chunk_size, 2)[0])
    med = {k: statistics.median(v) for k, v in times.items()}
    # per round, then the median over rounds: a shared machine's speed drifts between
    # rounds (by up to half here), and a ratio of two adjacent runs cancels most of it
    paired = {
        "store_to_csv_end_to_end": statistics.median(
            c / s for c, s in zip(times["bytewax_w1"], times["bytewax_w1_store"])),
        "journal_share_csv": statistics.median(
            1 - off / on for on, off in zip(times["plain_loop"],
                                            times["plain_loop_no_journal"])),
        "journal_share_store": statistics.median(
            1 - off / on for on, off in zip(times["plain_loop_store"],
                                            times["plain_loop_no_journal_store"])),
    }
    rate = {k: n / v for k, v in med.items()}
    loads = load_times(files, specs, max(args.repeat, 5))
    med.update(loads)
    rate.update({k: n / v for k, v in loads.items()})
    store_dir.cleanup()
    result = {
        "benchmark": "replay_throughput",
        "files": [f.name for f in files],
        "candles": n,
        "chunk_size": args.chunk_size,
        "repeat": args.repeat,
        "orders": rep["orders"],
        "fills": rep["fills"],
        "trades": rep["trades"],
        "median_seconds": med,
        "candles_per_s": rate,
        "ratio_bytewax_w1_to_plain_loop": rate["bytewax_w1"] / rate["plain_loop"],
        "ratio_store_to_csv_end_to_end": rate["bytewax_w1_store"] / rate["bytewax_w1"],
        "journal_share_store": 1 - med["plain_loop_no_journal_store"] / med["plain_loop_store"],
        "journal_share_csv": 1 - med["plain_loop_no_journal"] / med["plain_loop"],
        # the journal's cost (on - off, plain loop) against the end-to-end replay's time
        "journal_of_end_to_end_store": (med["plain_loop_store"]
                                        - med["plain_loop_no_journal_store"])
        / med["bytewax_w1_store"],
        "journal_of_end_to_end_csv": (med["plain_loop"] - med["plain_loop_no_journal"])
        / med["bytewax_w1"],
        # the end-to-end ratio if the journal cost nothing: each replay less its
        # journal's cost (on - off of the plain loop over the same input)
        "store_to_csv_without_journal": (med["bytewax_w1"] - med["plain_loop"]
                                         + med["plain_loop_no_journal"])
        / (med["bytewax_w1_store"] - med["plain_loop_store"]
           + med["plain_loop_no_journal_store"]),
        "paired_medians": paired,
        "target_candles_per_s": 200_000,
        "target_ratio": 0.6,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(f"{n:,} candles ({', '.join(result['files'])}), chunk {args.chunk_size}, "
          f"median of {args.repeat}; {rep['fills']} fills, {rep['trades']} trades")
    for k in times:
        print(f"  {k:<24} {med[k]:7.3f} s  {rate[k]:>12,.0f} candles/s")
    print(f"  bytewax (1 worker) / plain loop = {result['ratio_bytewax_w1_to_plain_loop']:.2f}")
    print(f"  store / CSV end to end (bytewax, 1 worker) = "
          f"{result['ratio_store_to_csv_end_to_end']:.2f}")
    print(f"  ... and if the journal cost nothing: "
          f"{result['store_to_csv_without_journal']:.2f}")
    print(f"  journal (on - off) of the plain loop: store {result['journal_share_store']:.1%}, "
          f"CSV {result['journal_share_csv']:.1%}; of the end-to-end replay: store "
          f"{result['journal_of_end_to_end_store']:.1%}, CSV "
          f"{result['journal_of_end_to_end_csv']:.1%}")
    print(f"  paired (median over rounds of each round's figure): store / CSV end to end "
          f"{paired['store_to_csv_end_to_end']:.2f}; journal of the plain loop: store "
          f"{paired['journal_share_store']:.1%}, CSV {paired['journal_share_csv']:.1%}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**result, "environment": AT_START}, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
