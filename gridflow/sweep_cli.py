"""``gridflow sweep`` and ``gridflow wfo``: build a spec from a file and flags, run the
sweep dataflow (threads of this process or several processes), print the results.

Flags beat the spec file (``--config``): ``--param NAME=V1,V2`` sets a swept parameter
(values are JSON scalars or lists, or plain words; commas inside ``[...]`` do not split),
``--set NAME=VALUE`` a fixed one. Progress is combinations x candles stored, polled from
the store every 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from gridflow.sweep.metrics import METRICS

LOWER_IS_BETTER = {"max_drawdown", "max_consecutive_losses", "fees", "funding"}
"""Metrics ranked ascending by ``--metric`` (all others descending, NaN last)."""
POLL_S = 0.5
WFO_REPORT_KEYS = ("grade", "grade_reasons", "oos_sharpe", "consistency", "oos_is_ratio",
                   "dsr", "mc_pvalue", "stability", "regimes", "oos_total_return",
                   "oos_net_pnl", "oos_net_pnl_windows", "oos_max_drawdown", "oos_trades",
                   "n_windows", "n_combos")
TRANSFER_KEYS = ("transfer_venue", "transfer_sharpe_research", "transfer_sharpe_live",
                 "transfer_ratio", "transfer_trades_research", "transfer_trades_live")
WFO_NOTE = ("oos_sharpe, oos_total_return, oos_net_pnl, oos_max_drawdown: the stitched OOS "
            "curve (compounded from the capital); oos_net_pnl_windows: the windows' net PnL "
            "summed, each from the capital. Per window, a phase's Sharpe and net PnL come from "
            "the chosen combination's daily equity over that phase, from the capital.")


def name_arg(text: str) -> str:
    """argparse type of ``--name`` (replay, sweep, wfo):
    :func:`gridflow.journal.names.check_name`, its error as a usage error."""
    from gridflow.journal.names import check_name

    try:
        return check_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _values(text: str) -> list[Any]:
    """``1,1.5,[0.03,0.05],long`` -> ``[1, 1.5, [0.03, 0.05], "long"]``."""
    items, depth, cur = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += (ch in "[{") - (ch in "]}")
        cur += ch
    if text.strip():
        items.append(cur)
    return [_value(t) for t in items]


def _value(token: str) -> Any:
    token = token.strip()
    try:
        return json.loads(token)
    except json.JSONDecodeError:
        return token


def _assignment(text: str) -> tuple[str, str]:
    name, sep, rest = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUES, got {text!r}")
    return name.strip(), rest


def add_arguments(sub: argparse._SubParsersAction) -> None:
    """Register the ``sweep`` and ``wfo`` subcommands on ``sub``."""
    for kind, help_ in (("sweep", "parameter sweep of a strategy (sweep kernel, bytewax)"),
                        ("wfo", "walk-forward optimisation and grade of a strategy")):
        p = sub.add_parser(kind, help=help_)
        p.add_argument("--config", help="sweep spec file (TOML or JSON); flags override it")
        p.add_argument("--strategy", help="grid_atr, envelope_dca, grid_multi_tf, grid_trend")
        p.add_argument("--param", action="append", type=_assignment, default=[],
                       metavar="NAME=V1,V2", help="swept parameter and its values")
        p.add_argument("--set", action="append", type=_assignment, default=[],
                       metavar="NAME=VALUE", help="fixed strategy parameter")
        p.add_argument("--symbols", nargs="+", help="symbols (default BTC/USDT)")
        p.add_argument("--data", nargs="+", metavar="FILE|EXCHANGE:SYMBOL@TF",
                       help="candle files or market-data store series (default: bundled)")
        p.add_argument("--exchange", help="read the --symbols from the market-data store's "
                       "series of this exchange (ccxt id), at --timeframe")
        p.add_argument("--timeframe", default="1h", help="with --exchange (default 1h)")
        p.add_argument("--funding", nargs="+", metavar="FILE|EXCHANGE:SYMBOL@funding",
                       help="funding rates: files or store series ('none': spot). Default: "
                            "the store's funding of store series, else the bundled files")
        p.add_argument("--start", help="first traded candle: ISO date (UTC) or ms")
        p.add_argument("--end", help="candles before this open time: ISO date (UTC) or ms")
        p.add_argument("--db", help="store URL, e.g. sqlite:///sweeps.db")
        p.add_argument("--workers", type=int, default=1, help="Bytewax workers per process")
        p.add_argument("--processes", type=int, default=1, help="Bytewax processes")
        p.add_argument("--chunk-size", type=int, help="combinations per partition")
        p.add_argument("--sweep-id", help="store id (default: derived from the spec)")
        p.add_argument("--name", type=name_arg,
                       help="a name for the run, unique among the store's sweeps")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
        p.add_argument("--json", action="store_true", help="print JSON")
        if kind == "sweep":
            p.add_argument("--top", type=int, default=10, help="combinations printed")
            p.add_argument("--metric", default="sharpe", choices=[*METRICS, "score"],
                           help="ranking metric (drawdown, losses, fees: lowest first)")
        else:
            from gridflow.wfo.walkforward import OBJECTIVES

            p.add_argument("--is-days", type=int, help="in-sample days (default 365)")
            p.add_argument("--oos-days", type=int, help="out-of-sample days (default 90)")
            p.add_argument("--step-days", type=int, help="window step days (default oos)")
            p.add_argument("--metric", choices=OBJECTIVES,
                           help="in-sample selection objective (default score)")
            p.add_argument("--transfer", action="append", type=_assignment, default=[],
                           metavar="SYMBOL=SOURCE",
                           help="the symbol's candles on the venue that will trade it (file "
                                "or exchange:symbol@tf): the chosen parameters replayed there")
            p.add_argument("--transfer-days", type=int,
                           help="days of that replay (default --oos-days)")
            p.add_argument("--apply", metavar="PRESET.toml",
                           help="write the chosen parameters, graded, as a new preset "
                                "(gridflow replay --preset PRESET.toml runs it)")
            p.add_argument("--apply-regime-filter", action="store_true",
                           help="with --apply: block new entries in the regimes whose "
                                "windows' mean OOS Sharpe was negative (a suggestion the "
                                "preset marks as not validated)")


def _data_files(args: argparse.Namespace) -> list[dict[str, str]] | None:
    """``--data`` (files made absolute, store specs as they are) or ``--exchange``
    (the store's series of ``--symbols`` at ``--timeframe``); None when neither."""
    from gridflow.series_spec import SeriesKey, spec_or_path

    if args.data and args.exchange:
        raise ValueError("give --data or --exchange, not both")
    if args.data:
        return [{"path": spec_or_path(d)} for d in args.data]
    if args.exchange:
        syms = args.symbols or ["BTC/USDT"]
        return [{"path": SeriesKey(args.exchange, s, args.timeframe).spec} for s in syms]
    return None


def spec_doc(args: argparse.Namespace, kind: str) -> dict[str, Any]:
    """The spec fields of ``--config`` with the flags applied."""
    from gridflow.data.funding import funding_flag
    from gridflow.dataflows.sweep_spec import read_spec_file

    doc = read_spec_file(args.config) if args.config else {}
    doc["kind"] = kind
    if args.strategy:
        doc["strategy"] = args.strategy
    doc["space"] = {**doc.get("space", {}), **{k: _values(v) for k, v in args.param}}
    doc["base"] = {**doc.get("base", {}), **{k: _value(v) for k, v in args.set}}
    for flag, field in (("symbols", "symbols"), ("db", "db_url"), ("chunk_size", "chunk_size"),
                        ("sweep_id", "sweep_id")):
        if getattr(args, flag) is not None:
            doc[field] = getattr(args, flag)
    for flag in ("start", "end"):
        v = getattr(args, flag)
        if v is not None:
            doc[f"{flag}_ms"] = int(v) if v.isdigit() else v
    data = _data_files(args)
    if data is not None:
        doc["data"] = data
    funding = funding_flag(args.funding)
    if funding is not None:
        doc["funding"] = [{"path": f} for f in funding]
    if kind == "sweep":
        doc.pop("wfo", None)  # a [wfo] table is for `gridflow wfo`
    else:
        wfo = dict(doc.get("wfo") or {})
        for flag in ("is_days", "oos_days", "step_days", "metric", "transfer_days"):
            if getattr(args, flag) is not None:
                wfo[flag] = getattr(args, flag)
        if args.transfer:
            wfo["transfer"] = {**wfo.get("transfer", {}), **{k: v for k, v in args.transfer}}
        doc["wfo"] = wfo
    if not doc.get("strategy"):
        raise ValueError("give --strategy (or strategy in --config)")
    if not doc["space"]:
        raise ValueError("give at least one --param NAME=V1,V2 (or a [space] table)")
    return doc


def _load(doc: dict[str, Any]):
    from pydantic import ValidationError

    from gridflow.dataflows.sweep_spec import load_sweep_spec

    try:
        return load_sweep_spec(doc)
    except ValidationError as exc:  # one line per error, without pydantic's boilerplate
        lines = [": ".join(x for x in (".".join(map(str, e["loc"])),
                                       e["msg"].removeprefix("Value error, ")) if x)
                 for e in exc.errors()]
        raise ValueError("; ".join(lines)) from None


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class _Run:
    """The dataflow running in a thread of this process or in child processes."""

    def __init__(self, spec, spec_path: Path, workers: int, processes: int) -> None:
        self.error: str | None = None
        self._procs: list[tuple[subprocess.Popen, Any]] = []
        if processes <= 1:
            self._thread = threading.Thread(target=self._inline, args=(spec, workers),
                                            daemon=True)
            self._thread.start()
            return
        self._thread = None
        addrs = ";".join(f"127.0.0.1:{p}" for p in _free_ports(processes))
        env = dict(os.environ, GRIDFLOW_SWEEP_SPEC=str(spec_path))
        for i in range(processes):
            err = tempfile.TemporaryFile(mode="w+")
            cmd = [sys.executable, "-m", "bytewax.run", "dataflows.sweep:flow", "-i", str(i),
                   "-a", addrs, "-w", str(workers)]
            self._procs.append((subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                                 stderr=err), err))

    def _inline(self, spec, workers: int) -> None:
        from bytewax.run import cli_main

        from gridflow.dataflows.sweep import build_flow

        try:
            cli_main(build_flow(spec), workers_per_process=workers)
        except Exception as exc:  # reported by the main thread
            self.error = f"{type(exc).__name__}: {exc}"

    def running(self) -> bool:
        """Whether it still runs; a failed child stops the others and sets ``error``."""
        if self._thread is not None:
            return self._thread.is_alive()
        if self.error:
            return False
        codes = [p.poll() for p, _ in self._procs]
        failed = [i for i, c in enumerate(codes) if c not in (None, 0)]
        if failed:
            proc, err = self._procs[failed[0]]
            err.seek(0)
            self.error = (f"process {failed[0]} exited with {proc.returncode}:\n"
                          + err.read()[-4000:])
            self.stop()
            return False
        return any(c is None for c in codes)

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the end; whether it still runs."""
        deadline = time.monotonic() + timeout
        while self.running():
            if time.monotonic() >= deadline:
                return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        """Kill the children still running (after a failure or an interrupt)."""
        for p, err in self._procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            err.close()


def run(spec, workers: int = 1, processes: int = 1, progress: bool = True
        ) -> tuple[float, int]:
    """Register and run ``spec``'s dataflow, mark it done.

    Returns
    -------
    (elapsed_s, steps)
        Wall seconds of the run, and its planned combinations x candles.

    Raises
    ------
    ValueError
        A window without candles (before anything runs).
    RuntimeError
        The dataflow failed (with its error or a child's stderr).
    """
    from tqdm import tqdm

    from gridflow.dataflows.sweep import count_results, is_complete, plan_steps, register
    from gridflow.journal.schema import open_store
    from gridflow.journal.sweep_store import finish_sweep

    if workers < 1 or processes < 1:
        raise ValueError("--workers and --processes must be >= 1")
    steps = plan_steps(spec)
    register(spec)
    total = sum(steps.values()) * spec.n_combos
    bar = (tqdm(total=total, unit="step", unit_scale=True, desc=f"{spec.kind} {spec.sweep_id}")
           if progress else None)
    engine = open_store(spec.db_url)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.json"
        path.write_text(json.dumps(spec.model_dump(mode="json")))
        started = time.perf_counter()
        job = _Run(spec, path, workers, processes)
        try:
            while job.wait(POLL_S):
                if bar is not None:
                    done = sum(n * steps.get(k, 0) for k, n in
                               count_results(engine, spec.sweep_id).items())
                    if min(done, total) > bar.n:
                        bar.update(min(done, total) - bar.n)
        finally:
            job.stop()
            if bar is not None:
                bar.close()
    elapsed = time.perf_counter() - started
    try:
        if job.error:
            raise RuntimeError(f"the sweep dataflow failed: {job.error}")
        if not is_complete(engine, spec):
            raise RuntimeError(f"sweep {spec.sweep_id}: the store misses results")
        finish_sweep(engine, spec.sweep_id, elapsed)
    finally:
        engine.dispose()
    return elapsed, total


def _plain(v: Any) -> Any:
    """JSON-safe value: numpy scalars unwrapped, NaN and +-inf as None."""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def top_rows(url: str, sweep_id: str, metric: str, n: int) -> list[dict[str, Any]]:
    """The ``n`` best results by ``metric`` (see :data:`LOWER_IS_BETTER`; NaN last)."""
    from gridflow.journal.sweep_store import param_names, read_results

    df = read_results(url, sweep_id)
    names = param_names(df)
    df = df.sort_values([metric, "symbol", "combo_id"],
                        ascending=[metric in LOWER_IS_BETTER, True, True],
                        na_position="last", kind="stable").head(n)
    keep = ["symbol", "combo_id", *METRICS, "score"]
    return [{**{k: r[k] for k in keep}, "params": {p: r[p] for p in names}}
            for r in df.to_dict("records")]


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4f}"
    return str(v)


def _table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    cells = [[_fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max([len(c), *(len(x[i]) for x in cells)]) for i, c in enumerate(cols)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(x.rjust(w) for x, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def _execute(args: argparse.Namespace, kind: str):
    from gridflow.journal.names import check_name_free, set_name

    spec = _load(spec_doc(args, kind))
    if args.name:  # a name another sweep has: refused before anything runs
        check_name_free(spec.db_url, "sweep", spec.sweep_id, args.name)
    try:
        elapsed, steps = run(spec, args.workers, args.processes, not args.no_progress)
    except RuntimeError as exc:
        print(f"gridflow {kind}: error: {exc}", file=sys.stderr)
        return spec, None, 0
    if args.name:
        set_name(spec.db_url, "sweep", spec.sweep_id, args.name)
    return spec, elapsed, steps


def _titled(spec, name: str | None) -> str:
    return f"{spec.sweep_id}" + (f" ({name})" if name else "")


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run a parameter sweep; print the top ``--top`` combinations by ``--metric``."""
    spec, elapsed, steps = _execute(args, "sweep")
    if elapsed is None:
        return 1
    top = top_rows(spec.db_url, spec.sweep_id, args.metric, args.top)
    if args.json:
        print(json.dumps(_plain({
            "sweep_id": spec.sweep_id, "name": args.name, "elapsed_s": elapsed, "steps": steps,
            "steps_per_s": steps / elapsed if elapsed > 0 else None,
            "n_combos": spec.n_combos, "invalid_combos": spec.invalid_combos,
            "symbols": list(spec.symbols), "metric": args.metric, "top": top}), indent=2))
        return 0
    print(f"sweep {_titled(spec, args.name)}: {spec.n_combos} combinations x "
          f"{len(spec.symbols)} "
          f"symbols ({spec.invalid_combos} invalid skipped), {steps:,} steps in "
          f"{elapsed:.1f} s ({steps / max(elapsed, 1e-9):,.0f} steps/s), store {spec.db_url}")
    names = list(top[0]["params"]) if top else []
    flat = [{**r, **r["params"]} for r in top]
    cols = ["symbol", "combo_id", *names, args.metric,
            *[m for m in ("net_pnl", "total_return", "max_drawdown", "sharpe", "trades")
              if m != args.metric]]
    print(_table(flat, cols))
    return 0


def cmd_wfo(args: argparse.Namespace) -> int:
    """Run a walk-forward optimisation; print each symbol's report and windows."""
    from gridflow.journal.sweep_store import param_names, read_wfo

    if args.apply_regime_filter and not args.apply:  # refused before anything runs
        print("gridflow wfo: error: --apply-regime-filter needs --apply", file=sys.stderr)
        return 2
    spec, elapsed, _ = _execute(args, "wfo")
    if elapsed is None:
        return 1
    windows, reports = read_wfo(spec.db_url, spec.sweep_id)
    names = param_names(windows)
    per_symbol = {s: windows[windows["symbol"] == s].to_dict("records") for s in reports}
    if args.apply:
        from gridflow.ops.apply_preset import write_preset
        from gridflow.wfo.apply import preset_doc

        try:
            write_preset(args.apply, preset_doc(spec, reports, per_symbol, names,
                                                regime_filter=args.apply_regime_filter))
        except (FileExistsError, ValueError) as exc:
            print(f"gridflow wfo: error: --apply: {exc}", file=sys.stderr)
            return 2
        graded = ", ".join(f"{s} grade {r['grade']}" for s, r in reports.items())
        print(f"wrote {args.apply}: {graded}", file=sys.stderr)
    if args.json:
        steps = sum(r.get("steps", 0) for r in reports.values())
        print(json.dumps(_plain({
            "sweep_id": spec.sweep_id, "name": args.name, "elapsed_s": elapsed, "steps": steps,
            "steps_per_s": steps / elapsed if elapsed > 0 else None,
            "n_combos": spec.n_combos, "reports": reports,
            "windows": {s: [{k: v for k, v in w.items() if k not in ("sweep_id", "symbol")}
                            for w in ws] for s, ws in per_symbol.items()}}), indent=2))
        return 0
    from datetime import datetime, timezone

    from gridflow.wfo.report_text import transfer_ratio_text

    def day(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d")

    print(f"wfo {_titled(spec, args.name)}: {spec.n_combos} combinations, {elapsed:.1f} s, "
          f"store {spec.db_url}")
    print(WFO_NOTE)
    for sym, rep in reports.items():
        print(f"\n== {sym}: grade {rep['grade']} ({_fmt(rep.get('grade_score'))} / 100)")
        keys = [*WFO_REPORT_KEYS[2:], *(k for k in TRANSFER_KEYS if k in rep)]
        width = max(len(k) for k in keys)
        for k in keys:
            text = transfer_ratio_text(rep) if k == "transfer_ratio" else _fmt(rep.get(k))
            print(f"{k:<{width}}  {text}")
        for reason in rep.get("grade_reasons") or ():
            print(f"  - {reason}")
        rows = [{**w, "is_start": day(w["is_start_ms"]), "oos_start": day(w["oos_start_ms"]),
                 "oos_end": day(w["oos_end_ms"])} for w in per_symbol[sym]]
        print(_table(rows, ["window", "is_start", "oos_start", "oos_end", *names, "regime",
                            "is_sharpe", "is_net_pnl", "oos_sharpe", "oos_net_pnl",
                            "oos_trades"]))
    return 0
