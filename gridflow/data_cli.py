"""``gridflow data``: download, import, list and check the market-data store
(:mod:`gridflow.data.store`).

``download`` pages candles (and ``--funding`` rates) from a ccxt exchange into the store,
only what it lacks; ``import`` takes candle files (the bundled ones among them);
``list`` shows what the store holds; ``check`` says, per series, how much of its range is
covered, which holes are the venue's (known) and which are not, how many rows the
validator refused when they were downloaded or imported (the manifest's count) and
whether every stored candle still passes it (exit 1 on an unknown hole or any refusal).

An exchange that cannot be reached (after the retries) or refuses a request (a symbol it
does not list) ends the download with one line on stderr, the ccxt error class named,
exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gridflow.isotime import iso_utc, parse_time_ms

__all__ = ["add_arguments", "cmd_data"]


def _url(text: str) -> tuple[str, str]:
    key, eq, url = text.partition("=")
    if not (eq and key and url):
        raise argparse.ArgumentTypeError(f"expected KEY=URL (a ccxt urls['api'] entry), "
                                         f"got {text!r}")
    return key, url


def add_arguments(sub: argparse._SubParsersAction) -> None:
    """Register ``gridflow data {download,import,list,check}`` on ``sub``."""
    p = sub.add_parser("data", help="market data: download, import, list, check the store")
    dsub = p.add_subparsers(dest="data_cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", help="store directory (default $GRIDFLOW_STORE or "
                        "./gridflow_data)")
    common.add_argument("--json", action="store_true", help="print JSON")
    d = dsub.add_parser("download", parents=[common],
                        help="fetch what the store lacks from an exchange (ccxt)")
    d.add_argument("--exchange", required=True, help="ccxt id: binance, binanceusdm, bitget")
    d.add_argument("--symbols", nargs="+", required=True, help="ccxt symbols: BTC/USDT ...")
    d.add_argument("--timeframe", default="1h")
    d.add_argument("--since", required=True, help="first open time: ISO date (UTC) or ms")
    d.add_argument("--until", help="open times before this: ISO date (UTC) or ms "
                   "(default: the last closed candle)")
    d.add_argument("--funding", action="store_true",
                   help="also the funding-rate history (perpetuals)")
    d.add_argument("--page-limit", type=int, default=1000, help="rows per request")
    d.add_argument("--api-url", action="append", type=_url, default=[], metavar="KEY=URL",
                   help="override a ccxt urls['api'] entry (a local exchange)")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    i = dsub.add_parser("import", parents=[common], help="candle files into the store")
    i.add_argument("files", nargs="*", help="candle files (default: the bundled ones)")
    i.add_argument("--exchange", help="the files' exchange (ccxt id; default: the one a "
                   "file name starts with, binanceusdm_ETH_USDT_1h.csv.gz: binanceusdm; "
                   "else binance)")
    dsub.add_parser("list", parents=[common], help="the series the store holds")
    c = dsub.add_parser("check", parents=[common], help="coverage, gaps, validator refusals")
    c.add_argument("specs", nargs="*", help="exchange:symbol@timeframe (default: all)")


def _exchange(args: argparse.Namespace):
    from gridflow.config.live import ExchangeConfig
    from gridflow.exchange.client import make_exchange

    cfg = ExchangeConfig(id=args.exchange, urls=dict(args.api_url),
                         market_type="swap" if args.exchange.endswith(("usdm", "coinm"))
                         else "spot")
    return make_exchange(cfg)


def _download(args: argparse.Namespace, store) -> int:
    import ccxt
    from tqdm import tqdm

    from gridflow.exchange.history import download_candles, download_funding, load_markets
    from gridflow.redaction import error_text
    from gridflow.series_spec import FUNDING, SeriesKey

    ex = _exchange(args)
    since = parse_time_ms(args.since)
    until = parse_time_ms(args.until) if args.until else None
    reports = []
    what = f"{args.exchange}: load_markets"
    try:
        load_markets(ex)
        symbols: list[str] = []
        for sym in args.symbols:  # every symbol checked before anything is fetched
            what = f"{args.exchange}: symbol {sym}"
            # stored under the market's own unified symbol: ccxt finds binanceusdm's
            # perpetual for "BTC/USDT" too, and it must not become a second series
            canonical = ex.market(sym)["symbol"]
            if canonical not in symbols:
                symbols.append(canonical)
        for sym in symbols:
            key = SeriesKey(args.exchange, sym, args.timeframe)
            what = key.spec
            with tqdm(total=None, desc=key.spec, unit="candle", leave=False,
                      disable=args.no_progress or args.json, file=sys.stderr) as bar:
                reports.append(download_candles(
                    ex, store, key, since, until, limit=args.page_limit, progress=bar.update,
                    progress_total=lambda n, bar=bar: bar.reset(total=n)))
            if args.funding:
                key = SeriesKey(args.exchange, sym, FUNDING)
                what = key.spec
                reports.append(download_funding(ex, store, key, since, until,
                                                limit=args.page_limit))
    except ccxt.BaseError as exc:  # retried already where a retry may help
        print(f"gridflow data: error: {what}: {' '.join(error_text(exc, limit=400).split())}",
              file=sys.stderr)
        return 2
    rows = [{"series": r.spec, "requests": r.requests, "added": r.added,
             "refused": r.refused, "new_known_gaps": len(r.known_gaps)} for r in reports]
    _print(rows, args.json)
    return 0


def _import(args: argparse.Namespace, store) -> int:
    from gridflow.data import bundled_candle_files
    from gridflow.ops.market_data import import_candle_file

    files = [Path(f) for f in args.files] or list(bundled_candle_files())
    _print([import_candle_file(store, f, args.exchange) for f in files], args.json)
    return 0


def _list(args: argparse.Namespace, store) -> int:
    rows = []
    for key in store.keys():
        m = store.manifest(key)
        rows.append({"series": key.spec, "rows": m.rows,
                     "first": iso_utc(m.first_ts) if m.first_ts is not None else "-",
                     "last": iso_utc(m.last_ts) if m.last_ts is not None else "-",
                     "known_gaps": len(m.known_gaps), "refused": sum(m.refused.values())})
    _print(rows, args.json)
    return 0


def _check(args: argparse.Namespace, store) -> int:
    from gridflow.ops.market_data import check_series
    from gridflow.series_spec import parse_spec

    keys = [parse_spec(s) for s in args.specs] or store.keys()
    rows = [check_series(store, k) for k in keys]
    _print(rows, args.json)
    return 0 if all(r["ok"] for r in rows) else 1


def _print(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    for r in rows:
        print("  ".join(f"{k}={v}" for k, v in r.items()))


def cmd_data(args: argparse.Namespace) -> int:
    """Run ``gridflow data ...``; the exit status."""
    from gridflow.data.store import CandleStore

    store = CandleStore(args.store)
    return {"download": _download, "import": _import, "list": _list,
            "check": _check}[args.data_cmd](args, store)
