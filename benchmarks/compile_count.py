"""How many numba kernels a run compiles: cold cache, then again after editing modules
that are not kernel sources (the app, a flow, the live engine, the CLI), then after
editing a kernel source.

Each run is a fresh process on a copy of the package (so the edits touch only the
copy) with its own numba cache folder: the demo replay over ten days of the bundled
candles (the replay kernel, indicators, strategies, risk) followed by a small sweep
(the sweep kernel). The count is of gridflow kernels numba compiles in that process
(:func:`gridflow._numba_cache.count_compiles`; a cache hit compiles nothing). Expected:
many, then 0, then many again. Prints a table and writes JSON to
``benchmarks/results/compile_count.json``.

    python benchmarks/compile_count.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _env import AT_START  # benchmarks/ is the script's folder

HERE = Path(__file__).resolve().parent

PROBE = r"""
import sys, tempfile
from pathlib import Path
import gridflow
assert gridflow.__file__.startswith(sys.argv[1]), gridflow.__file__
from gridflow._numba_cache import count_compiles
counter = count_compiles()
from gridflow.cli import main
tmp = Path(tempfile.mkdtemp())
assert main(["replay", "--db", f"sqlite:///{tmp / 'r.db'}", "--no-progress",
             "--end", "2022-01-11"]) == 0
assert main(["sweep", "--strategy", "grid_atr", "--param", "atr_start=1,2",
             "--start", "2022-01-01", "--end", "2022-03-01", "--no-progress",
             "--db", f"sqlite:///{tmp / 's.db'}"]) == 0
print("COMPILES", counter.count)
"""


def run(root: Path, cache: Path) -> tuple[int, float]:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(PYTHONPATH=str(root.parent), GRIDFLOW_NUMBA_BASE=str(cache))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PROBE, str(root)], env=env, cwd=root.parent,
                         capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    count = int(next(line for line in out.stdout.splitlines()
                     if line.startswith("COMPILES")).split()[1])
    return count, time.perf_counter() - t0


def touch(root: Path, rels: list[str]) -> None:
    for rel in rels:
        with open(root / rel, "a") as f:
            f.write("\n# an edit\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=HERE / "results" / "compile_count.json")
    args = ap.parse_args()
    import gridflow

    pkg = Path(gridflow.__file__).resolve().parent
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "pkg" / "gridflow"
        shutil.copytree(pkg, root, ignore=shutil.ignore_patterns("__pycache__"))
        cache = Path(d) / "cache"
        rows = []
        rows.append(("cold cache", *run(root, cache)))
        rows.append(("warm cache, nothing edited", *run(root, cache)))
        non_kernel = ["control/app/views.py", "dataflows/replay.py", "operators/live_engine.py",
                      "cli.py", "control/report.py", "isotime.py"]
        touch(root, non_kernel)
        rows.append(("after editing " + ", ".join(non_kernel), *run(root, cache)))
        touch(root, ["operators/risk.py"])
        rows.append(("after editing operators/risk.py (a kernel source)", *run(root, cache)))
    print(f"{'run':70s} {'compiles':>8s} {'seconds':>8s}")
    for name, count, secs in rows:
        print(f"{name[:70]:70s} {count:8d} {secs:8.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "environment": AT_START,
        "runs": [{"run": n, "compiles": c, "seconds": round(s, 2)} for n, c, s in rows],
    }, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
