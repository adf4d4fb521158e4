"""Sweep engine speed: candle x combination steps per second per core, vs vectorbt.

Workload: ``grid_atr`` with 3 levels over the bundled real Binance BTC/USDT 1h candles
(2018-01 -> 2026-05, 73,265 candles) with BTC perpetual funding, a grid of
``atr_start`` x ``atr_step`` x ``sl_frac`` x ``sma_period`` x ``side`` (768 combinations,
56 M steps), Binance tick / step / minimum notional, 0.02 % / 0.05 % fees and 0.05 %
slippage, one fresh 10,000 USDT account per combination. Two risk profiles:

* ``research``: kill switches far away (session loss 90 %, max drawdown 90 %...), so
  every combination trades the whole history: the honest worst case;
* ``default``: the default ``RiskConfig`` (a combination that trips a manual-reset kill
  switch while flat stops trading, and the kernel skips the rest of its history).

Timed: :func:`gridflow.sweep.run_sweep`'s kernel call (indicators computed once before,
as a sweep shares them), one thread, median of ``--repeat`` runs after a warm-up run.

Baseline, measured in the same process right after: vectorbt's
``Portfolio.from_signals`` on an SMA-crossover sweep of the **same size** (same closes,
same number of combinations; see ``vbt_baseline.py``; run in column chunks of
``--vbt-chunk`` combinations to bound its memory, times summed). Needs
``pip install -e .[bench]``; skipped with a note when vectorbt is missing.

Prints a table and writes ``benchmarks/results/sweep.json``.

    python benchmarks/sweep.py [--repeat 5] [--no-vectorbt]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from pathlib import Path

import numpy as np
from _env import AT_START  # benchmarks/ is the script's folder

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SPACE = {
    "atr_start": [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0],
    "atr_step": [0.25, 0.5, 1.0, 1.5],
    "sl_frac": [0.03, 0.05, 0.1, 0.2],
    "sma_period": [24, 48, 96],
    "side": ["long", "short"],
}


def _setup():
    from gridflow.config import load_config
    from gridflow.config.models import AccountConfig, RiskConfig
    from gridflow.data import bundled_candle_files
    from gridflow.data.funding import bundled_funding_files
    from gridflow.sweep import IndicatorTable, SweepData, expand_grid

    btc = next(p for p in bundled_candle_files() if p.name.startswith("binance_BTC_USDT_1h"))
    data = SweepData.from_file(btc, funding=bundled_funding_files()["BTC/USDT"])
    cfg = load_config(None)
    combos, _params, invalid = expand_grid("grid_atr", SPACE, {"levels": 3, "atr_period": 14})
    assert invalid == 0
    table = IndicatorTable(data)
    table.ensure([n for p in combos for n in (f"sma_{p.sma_period}", "atr_14")])
    research = RiskConfig(max_margin_ratio=1.0, session_loss_grid=0.9, session_loss_single=0.9,
                          daily_loss_limit=0.5, rolling_drawdown_frac=0.9, max_drawdown_frac=0.9)
    profiles = {
        "research": AccountConfig(name="bench", risk=research),
        "default": AccountConfig(name="bench", risk=RiskConfig(max_margin_ratio=1.0)),
    }
    return data, combos, table, profiles, cfg.fees, cfg.markets["BTC/USDT"]


def measure_gridflow(repeat: int) -> tuple[dict, np.ndarray]:
    from gridflow.sweep import run_sweep

    data, combos, table, profiles, fees, market = _setup()
    out = {}
    for name, acct in profiles.items():
        run_sweep(data, acct, combos[:8], fees, market, table=table)  # compile / load cache
        times, res = [], None
        for _ in range(repeat):
            res = run_sweep(data, acct, combos, fees, market, table=table)
            times.append(res.seconds)
        med = statistics.median(times)
        out[name] = {
            "candles": len(data), "combos": len(combos), "steps": res.steps,
            "median_s": med, "steps_per_s": res.steps / med,
            "ns_per_step": med / res.steps * 1e9,
            "exact_step_share": float(res.raw[:, 15].sum() / res.steps),
            "exposure_mean": float(res.metrics["exposure"].mean()),
            "trades_mean": float(res.metrics["trades"].mean()),
            "frozen_share": float((res.raw[:, 16] > 0).mean()),
        }
    return out, data.close


def measure_vectorbt(close: np.ndarray, combos: int, chunk: int, repeat: int) -> dict:
    from vbt_baseline import vectorbt_sma_cross

    total_s, version, done = 0.0, "", 0
    while done < combos:
        n = min(chunk, combos - done)
        r = vectorbt_sma_cross(close, n, repeats=repeat)
        total_s += r["median_s"]
        version = r["version"]
        done += n
    steps = len(close) * combos
    return {"library": "vectorbt", "version": version, "steps": steps, "median_s": total_s,
            "steps_per_s": steps / total_s, "chunk": chunk,
            "what": "Portfolio.from_signals SMA crossover + total_return, numba engine"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-vectorbt", action="store_true")
    ap.add_argument("--vbt-chunk", type=int, default=128)
    ap.add_argument("--out", default=str(HERE / "results" / "sweep.json"))
    args = ap.parse_args()
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    gf, close = measure_gridflow(args.repeat)
    combos = gf["research"]["combos"]
    vbt = None
    if not args.no_vectorbt:
        try:
            vbt = measure_vectorbt(close, combos, args.vbt_chunk, max(3, args.repeat // 2))
        except ImportError as exc:
            print(f"vectorbt not installed ({exc}); pip install -e .[bench]")
    print(f"grid_atr, 3 levels, {combos} combinations x {gf['research']['candles']} "
          "BTC/USDT 1h candles, one core")
    print(f"{'engine':<22}{'steps/s':>16}{'ns/step':>10}{'exact':>8}{'x vectorbt':>12}")
    for name, r in gf.items():
        ratio = r["steps_per_s"] / vbt["steps_per_s"] if vbt else float("nan")
        r["ratio_vs_vectorbt"] = ratio
        print(f"{'gridflow ' + name:<22}{r['steps_per_s']:>16,.0f}{r['ns_per_step']:>10.2f}"
              f"{r['exact_step_share']:>8.3f}{ratio:>12.1f}")
    if vbt:
        print(f"{'vectorbt ' + vbt['version']:<22}{vbt['steps_per_s']:>16,.0f}"
              f"{vbt['median_s'] / vbt['steps'] * 1e9:>10.2f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"environment": AT_START,
        "machine": platform.platform(), "python": platform.python_version(),
        "cpu_count": os.cpu_count(), "space": SPACE, "gridflow": gf, "vectorbt": vbt,
    }, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
