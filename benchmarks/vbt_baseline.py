"""vectorbt speed baseline: an SMA-crossover sweep simulated by ``Portfolio.from_signals``.

Benchmark-only (needs the ``bench`` extra: ``pip install -e .[bench]``); imported by
``benchmarks/sweep.py`` as ``from vbt_baseline import vectorbt_sma_cross``.

What is built (not timed):

* ``n_combos`` distinct (fast, slow) SMA window pairs, fast < slow, picked evenly spaced
  (``np.linspace``) from the lexicographic list of every pair with fast in 5..100 and
  slow in 10..400 (33,350 pairs), so the picks span the whole grid deterministically;
* the moving averages with vectorbt itself: ``vbt.MA.run(close, window=<unique windows>)``
  (one column per distinct window), then each combo's fast/slow columns picked by index;
* entries where fast crosses above slow (``fast > slow`` now, ``fast <= slow`` one bar
  before), exits where it crosses below; one boolean column per combo.

What is timed: ``vbt.Portfolio.from_signals(close_df, entries, exits, fees=fees,
freq="1h", init_cash=10_000, engine="numba")`` over all combos at once (one column per
combo) plus ``pf.total_return()``, after one warm-up call on the same inputs (numba JIT,
or numba's on-disk cache load in later processes); median of ``repeats`` runs. ``steps`` = candles x combos. ``close`` is handed over as a
(candles, combos) DataFrame built outside the timing (passing a 1-column Series for
vectorbt to broadcast instead measured the same within noise).

Single core: vectorbt 1.x's kernels are plain ``@njit`` (no ``parallel=True``, no
``prange``; :func:`_check_serial` asserts it at run time for the portfolio and returns
kernels), vectorbt 1.x has no chunking, and ``engine="numba"`` is passed explicitly so
the optional ``vectorbt-rust`` engine is never picked. The figure is therefore per core.

    python benchmarks/vbt_baseline.py [--combos 200] [--repeats 5]
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _env import AT_START  # benchmarks/ is the script's folder

FAST = range(5, 101)
SLOW = range(10, 401)
CANDLES = (
    Path(__file__).resolve().parent.parent
    / "gridflow"
    / "data"
    / "candles"
    / "binance_BTC_USDT_1h.csv.gz"
)


def window_pairs(n_combos: int) -> list[tuple[int, int]]:
    """``n_combos`` distinct (fast, slow) pairs, fast < slow, evenly spread over the grid."""
    universe = [(f, s) for f in FAST for s in SLOW if f < s]
    if not 1 <= n_combos <= len(universe):
        raise ValueError(f"n_combos must be in 1..{len(universe)}, got {n_combos}")
    picks = np.linspace(0, len(universe) - 1, n_combos).round().astype(np.int64)
    return [universe[i] for i in picks]  # linspace step >= 1, so the picks are distinct


def _check_serial() -> None:
    """Fail if any numba kernel used by from_signals / total_return is parallel."""
    import vectorbt.generic.nb as gnb
    import vectorbt.portfolio.nb as pnb
    import vectorbt.returns.nb as rnb
    from numba.core.registry import CPUDispatcher

    parallel = [
        f"{mod.__name__}.{name}"
        for mod in (pnb, rnb, gnb)
        for name, obj in vars(mod).items()
        if isinstance(obj, CPUDispatcher) and obj.targetoptions.get("parallel")
    ]
    if parallel:
        raise RuntimeError(f"parallel numba kernels would make the figure multi-core: {parallel}")


def vectorbt_sma_cross(
    close: np.ndarray, n_combos: int, fees: float = 0.0005, repeats: int = 5
) -> dict:
    """Time vectorbt simulating ``n_combos`` SMA crossovers on ``close`` (see module doc).

    Besides the agreed keys the dict has ``warmup_s`` (the first, untimed call: JIT
    compile, or numba's on-disk cache load in later processes) and ``peak_rss_mib``
    (the process's peak resident memory so far).
    """
    import vectorbt as vbt

    _check_serial()
    close = np.ascontiguousarray(close, dtype=np.float64)
    if close.ndim != 1:
        raise ValueError("close must be 1-D")
    index = pd.date_range("2018-01-01", periods=len(close), freq="h")
    close_s = pd.Series(close, index=index, name="close")

    pairs = window_pairs(n_combos)
    windows = sorted({w for pair in pairs for w in pair})
    col = {w: i for i, w in enumerate(windows)}
    ma = vbt.MA.run(close_s, window=windows).ma.to_numpy()  # (candles, len(windows))
    fast = ma[:, [col[f] for f, _ in pairs]]
    slow = ma[:, [col[s] for _, s in pairs]]
    entries = np.zeros(fast.shape, dtype=bool)
    exits = np.zeros(fast.shape, dtype=bool)
    entries[1:] = (fast[1:] > slow[1:]) & (fast[:-1] <= slow[:-1])  # NaN compares False
    exits[1:] = (fast[1:] < slow[1:]) & (fast[:-1] >= slow[:-1])
    del ma, fast, slow
    columns = pd.MultiIndex.from_tuples(pairs, names=["fast", "slow"])
    entries_df = pd.DataFrame(entries, index=index, columns=columns)
    exits_df = pd.DataFrame(exits, index=index, columns=columns)
    close_df = pd.DataFrame(
        np.repeat(close[:, None], n_combos, axis=1), index=index, columns=columns
    )

    def simulate() -> pd.Series:
        pf = vbt.Portfolio.from_signals(
            close_df,
            entries_df,
            exits_df,
            fees=fees,
            freq="1h",
            init_cash=10_000,
            engine="numba",
        )
        return pf.total_return()

    t0 = time.perf_counter()
    simulate()  # warm-up: JIT compile / cache load, not counted
    warmup_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        total_return = simulate()
        times.append(time.perf_counter() - t0)
    assert len(total_return) == n_combos and np.isfinite(total_return.to_numpy()).all()

    median_s = statistics.median(times)
    steps = len(close) * n_combos
    return {
        "library": "vectorbt",
        "version": vbt.__version__,
        "candles": len(close),
        "combos": n_combos,
        "steps": steps,
        "median_s": median_s,
        "steps_per_s": steps / median_s,
        "what": (
            "vbt.Portfolio.from_signals(close_df, entries, exits, fees, freq='1h', "
            "init_cash=10000, engine='numba') + pf.total_return(), all SMA-cross combos "
            "at once (one column each, all frames prebuilt); single-threaded numba; "
            "median after 1 warm-up call"
        ),
        "warmup_s": warmup_s,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def load_close(path: Path = CANDLES) -> np.ndarray:
    """The close column of a bundled candle file (timestamp,open,high,low,close,volume)."""
    with gzip.open(path, "rt") as fh:
        return np.loadtxt(fh, delimiter=",", skiprows=1, usecols=4, dtype=np.float64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--combos", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--fees", type=float, default=0.0005)
    args = ap.parse_args()
    result = vectorbt_sma_cross(load_close(), args.combos, fees=args.fees, repeats=args.repeats)
    print(json.dumps({**result, "environment": AT_START}, indent=2))


if __name__ == "__main__":
    main()
