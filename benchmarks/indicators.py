"""Indicator speed: batch ns/candle vs TA-Lib (same run), and one incremental update.

For every registered indicator kind (and the pairwise correlation) on the bundled
``binance_BTC_USDT_1h`` series (73,265 candles):

* ``batch_ns``: the batch form (fresh state + numba kernel over the whole series), ns
  per candle, median of ``--repeat`` runs;
* ``talib_ns``: TA-Lib's function(s) on the same arrays in the same run (ADX counts
  ``ADX + PLUS_DI + MINUS_DI``, which our one pass computes together), and the ratio
  ``batch_ns / talib_ns`` (target <= 1.5);
* ``update_us``: one incremental ``update()`` with one closed candle, µs (target < 1).

Prints a table and writes ``benchmarks/results/indicators.json``.

    python benchmarks/indicators.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from _env import AT_START  # benchmarks/ is the script's folder

from gridflow.data import CANDLES_DIR
from gridflow.data.candle_files import read_candle_file
from gridflow.operators.indicators import KINDS

HERE = Path(__file__).resolve().parent
H = 3_600_000

# default parameters per kind, and the TA-Lib calls that produce the same outputs
PARAMS = {
    "sma": (24,), "ema": (24,), "wma": (24,), "rsi": (14,), "atr": (14,), "trange": (),
    "adx": (14,), "macd": (12, 26, 9), "bbands": (20, 2.0), "donchian": (20,),
    "supertrend": (10, 3.0), "hv": (24,), "hvz": (24, 168),
}


def talib_calls(kind, params, d):
    import talib

    h, lo, c = d["high"], d["low"], d["close"]
    return {
        "sma": lambda: talib.SMA(c, *params),
        "ema": lambda: talib.EMA(c, *params),
        "wma": lambda: talib.WMA(c, *params),
        "rsi": lambda: talib.RSI(c, *params),
        "atr": lambda: talib.ATR(h, lo, c, *params),
        "trange": lambda: talib.TRANGE(h, lo, c),
        "adx": lambda: (talib.ADX(h, lo, c, *params), talib.PLUS_DI(h, lo, c, *params),
                        talib.MINUS_DI(h, lo, c, *params)),
        "macd": lambda: talib.MACD(c, *params),
        "bbands": lambda: talib.BBANDS(c, params[0], params[1], params[1], 0),
        "donchian": lambda: (talib.MAX(h, *params), talib.MIN(lo, *params)),
    }.get(kind)


def timed(fn, repeat):
    fn()  # warm
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        fn()
        out.append(time.perf_counter_ns() - t0)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--updates", type=int, default=20_000)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "indicators.json")
    args = ap.parse_args()
    d = read_candle_file(CANDLES_DIR / "binance_BTC_USDT_1h.csv.gz")
    n = len(d["ts"])
    rows = []
    for kind, spec in sorted(KINDS.items()):
        params = PARAMS.get(kind)
        if params is None:
            continue
        ctx = {"timeframe_ms": H} if "timeframe_ms" in spec.context else {}
        cols = [np.ascontiguousarray(d[i]) for i in spec.inputs]
        batch_ns = timed(lambda: spec.factory(*params, **ctx).update_many(*cols), args.repeat) / n
        ref = talib_calls(kind, params, d)
        talib_ns = timed(ref, args.repeat) / n if ref else None
        spec.factory(*params, **ctx).update(*(c[0] for c in cols))  # load compiled code
        state = spec.factory(*params, **ctx)
        m = min(args.updates, n)
        vals = [c[:m].tolist() for c in cols]
        upd = state.update
        t0 = time.perf_counter_ns()
        for x in zip(*vals):
            upd(*x)
        update_us = (time.perf_counter_ns() - t0) / m / 1000
        rows.append({
            "indicator": f"{kind}{''.join('_' + str(p) for p in params)}",
            "batch_ns_per_candle": batch_ns,
            "talib_ns_per_candle": talib_ns,
            "ratio_to_talib": batch_ns / talib_ns if talib_ns else None,
            "update_us": update_us,
        })
    try:
        from gridflow.operators.indicators.pairs import CorrelationState, correlation

        a = read_candle_file(CANDLES_DIR / "binance_ETH_USDT_1h.csv.gz")["close"][:n]
        c = d["close"][: len(a)]
        batch_ns = timed(lambda: correlation(c, a, 168), args.repeat) / len(a)
        CorrelationState(168).update(c[0], a[0])  # load compiled code
        st = CorrelationState(168)
        m = min(args.updates, len(a))
        xs, ys = c[:m].tolist(), a[:m].tolist()
        t0 = time.perf_counter_ns()
        for x, y in zip(xs, ys):
            st.update(x, y)
        rows.append({"indicator": "correlation_168", "batch_ns_per_candle": batch_ns,
                     "talib_ns_per_candle": None, "ratio_to_talib": None,
                     "update_us": (time.perf_counter_ns() - t0) / m / 1000})
    except ImportError:
        pass
    print(f"binance_BTC_USDT_1h, {n:,} candles, median of {args.repeat}")
    print(f"{'indicator':<20}{'batch ns':>10}{'TA-Lib ns':>11}{'ratio':>8}{'update µs':>11}")
    for r in rows:
        tl = f"{r['talib_ns_per_candle']:.2f}" if r["talib_ns_per_candle"] else "-"
        ratio = f"{r['ratio_to_talib']:.2f}" if r["ratio_to_talib"] else "-"
        print(f"{r['indicator']:<20}{r['batch_ns_per_candle']:>10.2f}{tl:>11}{ratio:>8}"
              f"{r['update_us']:>11.3f}")
    result = {"benchmark": "indicators", "series": "binance_BTC_USDT_1h", "candles": n,
              "repeat": args.repeat, "targets": {"ratio_to_talib": 1.5, "update_us": 1.0},
              "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**result, "environment": AT_START}, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
