"""Where the plain replay loop's time goes: a cProfile of ``replay_throughput``'s plain
loop (the replay's own parts called in a ``for`` loop, journal on), its functions' own
time summed into the stages issue 17 names.

Stages (by the module or function a profiled function belongs to):

* ``load``: reading the candles (gzip + CSV parse for files; Parquet for store specs);
* ``journal_sqlite``: SQLite and SQLAlchemy (open, table checks, inserts, commits,
  close), the journal writer's row building (:mod:`gridflow.journal`) and the sink; with
  the replay's writer process, what stays on the replay's thread: the row tuples, their
  pickling, starting the child and waiting for its last commit (the child's own SQLite
  work runs on the other core and is not in this profile);
* ``decode``: turning the kernel's event log into records
  (:mod:`gridflow.operators.engine_decode`, client order ids);
* ``pydantic``: building and validating the record models;
* ``kernel``: the account kernel and the quote kernel (numba);
* ``other``: everything else (validation, indicators, engine bookkeeping, Python).

cProfile slows Python-heavy parts more than compiled ones, so the shares are those of a
profiled run (as issue 17's own breakdown was); the unprofiled time is printed beside
them. JSON in ``benchmarks/results/replay_profile.json``.

    python benchmarks/replay_profile.py [--store] [--chunk-size 2000]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from _env import AT_START
from replay_throughput import DEFAULT_FILES, HERE, import_to_store, run_plain

#: (stage, substrings of "file:function") in match order; the first match wins.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("load", ("gridflow/data/", "_npyio", "_load_from_filelike", "gzip.py",
              "_compression.py", "zlib", "pyarrow")),
    ("decode", ("engine_decode.py", "gridflow/ids.py")),
    ("pydantic", ("pydantic",)),
    ("kernel", ("grid_kernel.py", "quote_kernel.py:_quotes_loop")),
    ("journal_sqlite", ("sqlite3", "sqlalchemy", "sqlmodel", "gridflow/journal/",
                        "dataflows/sinks.py", "tenacity", "json/", "_pickle",
                        "_thread.lock", "subprocess.py")),
)


def stage_of(key: str) -> str:
    for stage, marks in STAGES:
        if any(m in key for m in marks):
            return stage
    return "other"


def breakdown(stats: pstats.Stats) -> dict[str, float]:
    """Seconds of own time per stage."""
    out: dict[str, float] = defaultdict(float)
    for (file, _line, func), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        out[stage_of(f"{file}:{func}")] += tottime
    return dict(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", type=Path, default=DEFAULT_FILES)
    ap.add_argument("--store", action="store_true",
                    help="read the candles from a market-data store (the files imported)")
    ap.add_argument("--chunk-size", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "replay_profile.json")
    args = ap.parse_args()
    files = [p.resolve() for p in args.data]
    store_dir = tempfile.TemporaryDirectory()
    os.environ["GRIDFLOW_STORE"] = store_dir.name
    inputs = import_to_store(files, Path(store_dir.name)) if args.store else files
    run_plain(inputs, args.chunk_size, True)  # warm-up: numba kernels, page cache
    t = time.perf_counter()
    run_plain(inputs, args.chunk_size, True)
    plain_s = time.perf_counter() - t
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.enable()
    _, candles = run_plain(inputs, args.chunk_size, True)
    prof.disable()
    profiled_s = time.perf_counter() - t
    stages = breakdown(pstats.Stats(prof))
    total = sum(stages.values())
    result = {"benchmark": "replay_profile", "input": "store" if args.store else "csv",
              "files": [f.name for f in files], "candles": candles,
              "chunk_size": args.chunk_size, "plain_loop_s": plain_s,
              "profiled_s": profiled_s, "stages_s": stages,
              "stages_share": {k: v / total for k, v in stages.items()}}
    print(f"plain loop ({result['input']}, journal on): {plain_s:.3f} s unprofiled, "
          f"{profiled_s:.3f} s profiled; own time per stage:")
    for k, v in sorted(stages.items(), key=lambda kv: -kv[1]):
        print(f"  {k:<16} {v:6.3f} s  {v / total:6.1%}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**result, "environment": AT_START}, indent=2))
    store_dir.cleanup()


if __name__ == "__main__":
    main()
