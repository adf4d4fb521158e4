"""Serve the fake Binance USDⓈ-M exchange over bundled candles.

``python -m gridflow.fakex --symbols BTC/USDT ETH/USDT --start 2024-01-01
--seconds-per-candle 0.5 --port 8765``

Prints the base URLs and the ccxt ``urls["api"]`` (and ``["ws"]``) entries as JSON, then
serves until
interrupted. ``--clock manual`` leaves time to ``POST /_fakex/step?n=1``;
``POST /_fakex/substep?k=1&of=12`` moves it inside the forming candle;
``GET /_fakex/state`` shows orders, trades, positions and balance. ``--funding`` settles
the bundled Binance funding rates of the symbols that have them.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading

import numpy as np

from gridflow.data import bundled_candle_files
from gridflow.data.candle_files import read_candle_file, resolve_data_files
from gridflow.data.funding import bundled_funding_files, read_funding
from gridflow.fakex.server import FakeExchange
from gridflow.isotime import parse_time_ms
from gridflow.timeframes import timeframe_to_ms


def load_bundled(symbols: list[str], timeframe: str = "1h") -> dict[str, np.ndarray]:
    """Bundled candles of ``symbols`` as (n, 6) arrays ``ts, o, h, l, c, v``.

    Raises
    ------
    ValueError
        A symbol with no bundled file of that timeframe.
    """
    files = {sym: path for path, sym, tf in resolve_data_files(bundled_candle_files())
             if tf == timeframe}
    out = {}
    for sym in symbols:
        if sym not in files:
            raise ValueError(f"no bundled {timeframe} candles for {sym}; have {sorted(files)}")
        d = read_candle_file(files[sym])
        out[sym] = np.column_stack([d["ts"].astype(np.float64), d["open"], d["high"],
                                    d["low"], d["close"], d["volume"]])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gridflow.fakex", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", nargs="+", default=["BTC/USDT"])
    ap.add_argument("--start", required=True, help="first forming candle (date, ISO or ms)")
    ap.add_argument("--timeframe", default="1h")
    ap.add_argument("--seconds-per-candle", type=float, default=1.0)
    ap.add_argument("--clock", choices=("realtime", "manual"), default="realtime")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--api-key", default="test-key")
    ap.add_argument("--secret", default="test-secret")
    ap.add_argument("--balance", type=float, default=10_000.0, help="USDT")
    ap.add_argument("--leverage", type=int, default=1)
    ap.add_argument("--funding", action="store_true",
                    help="settle the bundled funding rates of the symbols")
    args = ap.parse_args(argv)
    start = parse_time_ms(args.start)
    tf = timeframe_to_ms(args.timeframe)
    start -= start % tf
    fx = FakeExchange(load_bundled(args.symbols, args.timeframe), timeframe=args.timeframe,
                      start_ms=start, api_key=args.api_key, secret=args.secret,
                      balance_usdt=args.balance, clock=args.clock,
                      seconds_per_candle=args.seconds_per_candle, leverage=args.leverage,
                      funding={s: read_funding(p) for s, p in bundled_funding_files().items()
                               if s in args.symbols} if args.funding else None)
    url = fx.start(port=args.port, host=args.host)
    print(json.dumps({"url": url, "ccxt_urls": fx.ccxt_urls(), "ws_url": fx.ws_url,
                      "ccxt_ws_urls": fx.ccxt_ws_urls(), "start_ms": start}), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fx.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
