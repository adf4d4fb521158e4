"""``gridflow`` command line: replay, report, runs, journal, sweep, wfo, live, status."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import timedelta
from pathlib import Path

from gridflow import __version__
from gridflow.config.models import DataFile

PRESETS = Path(__file__).resolve().parent / "config" / "presets"


#: Python module of a database driver -> what to install for it.
_DB_DRIVERS = {"psycopg": "'psycopg[binary]'", "psycopg2": "psycopg2-binary",
               "MySQLdb": "mysqlclient", "pymysql": "pymysql", "asyncpg": "asyncpg"}


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _data_arg(text: str) -> DataFile:
    """``FILE`` or ``FILE@SYMBOL`` or ``FILE@SYMBOL@TIMEFRAME``, or a series of the
    market-data store ``exchange:symbol@timeframe`` (:mod:`gridflow.series_spec`)."""
    from gridflow.series_spec import is_spec, parse_spec

    if is_spec(text):
        try:
            parse_spec(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return DataFile(path=text)
    parts = text.split("@")
    if len(parts) > 3:
        raise argparse.ArgumentTypeError(f"--data takes FILE[@SYMBOL[@TIMEFRAME]], got {text!r}")
    try:
        path = str(Path(parts[0]).expanduser().resolve())
    except RuntimeError as exc:  # "~nosuchuser/...": no such home folder
        raise argparse.ArgumentTypeError(f"{parts[0]!r}: {exc}") from None
    return DataFile(
        path=path,
        symbol=parts[1] if len(parts) > 1 and parts[1] else None,
        timeframe=parts[2] if len(parts) > 2 and parts[2] else None,
    )


def _preset_arg(text: str) -> Path:
    """``--preset``: a bundled preset's name, or a path to a ``.toml`` preset."""
    bundled = PRESETS / f"{text}.toml"
    if bundled.is_file():
        return bundled
    if text.endswith(".toml") and Path(text).is_file():
        return Path(text)
    names = ", ".join(sorted(p.stem for p in PRESETS.glob("*.toml")))
    raise argparse.ArgumentTypeError(f"no bundled preset {text!r} ({names}) and no file {text}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gridflow", description=__doc__)
    p.add_argument("--version", action="version", version=f"gridflow {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("replay", help="replay candle files through the strategy (paper)")
    src = r.add_mutually_exclusive_group()
    src.add_argument("--config", help="TOML preset file (default: the bundled demo preset)")
    src.add_argument("--preset", type=_preset_arg, metavar="NAME|FILE.toml",
                     help="a bundled strategy preset (gridflow/config/presets: "
                          f"{', '.join(sorted(p.stem for p in PRESETS.glob('*.toml')))}) or "
                          "a preset file, e.g. one written by gridflow wfo --apply")
    r.add_argument("--db", help="journal URL, e.g. sqlite:///gridflow.db (or GRIDFLOW_DB_URL)")
    r.add_argument("--workers", type=_positive_int, default=1, help="Bytewax workers in this process")
    r.add_argument(
        "--data", nargs="+", type=_data_arg, metavar="FILE[@SYMBOL[@TF]]|EXCHANGE:SYMBOL@TF",
        help="candle files (timestamp,open,high,low,close,volume; gzip or plain CSV)",
    )
    r.add_argument(
        "--funding", nargs="+", metavar="FILE|EXCHANGE:SYMBOL@funding",
        help="funding rates (files or store series; 'none': the preset's are dropped). "
             "Default: the preset's, plus the store's funding of --data store series")
    r.add_argument("--run-id", help="journal run id (default: derived from config and data)")
    from gridflow.sweep_cli import name_arg

    r.add_argument("--name", type=name_arg,
                   help="a name for the run, unique in the journal (report --run NAME)")
    r.add_argument("--start", help="first candle open time: ISO date (UTC) or ms")
    r.add_argument("--end", help="candles before this open time: ISO date (UTC) or ms")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--json", action="store_true", help="print the report as JSON")

    rep = sub.add_parser("report", help="metrics and tables of a journaled run")
    rep.add_argument("--db", required=True)
    rep.add_argument("--run", help="run id or name (default: the latest)")
    rep.add_argument("--json", action="store_true", help="print JSON")
    rep.add_argument("--daily", action="store_true",
                     help="the daily report of one UTC day: PnL per account, strategy and "
                          "symbol, trades, positions, switches, data gaps")
    rep.add_argument("--date", help="the UTC day of --daily, YYYY-MM-DD (default: yesterday)")

    runs = sub.add_parser("runs", help="list, show or delete the journal's runs")
    runs_sub = runs.add_subparsers(dest="runs_cmd", required=True)
    for name, help_ in (("list", "every run with its window, trades and net PnL"),
                        ("show", "a run's header and overview (--json: the whole report)"),
                        ("delete", "delete every journal row of a run (asks for --yes)")):
        rp = runs_sub.add_parser(name, help=help_)
        rp.add_argument("--db", required=True)
        if name != "list":
            rp.add_argument("--run", required=name == "delete",
                            help="run id or name" + (" (default: the latest)"
                                                     if name == "show" else ""))
        if name == "delete":
            rp.add_argument("--yes", action="store_true", help="really delete it")
        else:
            rp.add_argument("--json", action="store_true", help="print JSON")

    from gridflow.control.app.cli import add_arguments as app_arguments

    app_arguments(sub.add_parser(
        "app", help="Panel control app: live status, kill switch reset, backtests, compare"))

    lv = sub.add_parser("live", help="preflight checks of the venue, then the live (or "
                        "paper) flow with a recovery folder")
    lv.add_argument("--config", required=True, help="TOML preset with [live] (paper unless "
                    "live.mode = 'live'; keys from GRIDFLOW_LIVE__EXCHANGE__API_KEY / _SECRET)")
    lv.add_argument("--recovery", type=Path, help="Bytewax recovery folder (default: "
                    "./live-state/RUN_ID; created when new, resumed when it holds state)")
    lv.add_argument("--dry-run", action="store_true", help="stop after the preflight")

    stp = sub.add_parser("status", help="the running accounts: equity, positions, kill "
                         "switches, last candle, last heartbeat")
    stp.add_argument("--db", required=True)
    stp.add_argument("--run", help="run id or name: its accounts (default: every run "
                     "not complete)")
    stp.add_argument("--json", action="store_true", help="print JSON")

    j = sub.add_parser("journal", help="orders and fills as JSON lines, deterministic fields")
    j.add_argument("--db", required=True)
    j.add_argument("--run", help="run id (default: the latest)")

    from gridflow.sweep_cli import add_arguments as sweep_arguments

    sweep_arguments(sub)  # sweep, wfo
    from gridflow.data_cli import add_arguments as data_arguments

    data_arguments(sub)  # data download / import / list / check
    return p


def _print_report(rep: dict, as_json: bool, sections: list[str] | None = None) -> None:
    """The report as strict JSON (an undefined (NaN) or unbounded (inf) figure is null,
    at any depth) or as text tables (:mod:`gridflow.control.report_tables`)."""
    from gridflow.control.report import strict_json
    from gridflow.control.report_tables import render_report

    if as_json:
        print(json.dumps(strict_json(rep), indent=2, sort_keys=True))
        return
    print(render_report(rep, sections))


def _announce_compiles(bar) -> None:
    """On a first run (a cold numba cache), say so and how many kernels are missing,
    then count each compile on the progress bar, which stays at 0 % meanwhile."""
    from gridflow._numba_cache import count_compiles, uncached_kernels

    missing = len(uncached_kernels())
    if not missing:
        return
    print(f"first run: {missing} numba kernels are not compiled yet; each compiles when "
          "first used (about 1 s each) and is cached for later runs", file=sys.stderr)
    if bar is not None:
        count_compiles(lambda n, name: bar.set_postfix_str(
            f"compiling kernel {n}: {name.rpartition('.')[2]}", refresh=True))


def cmd_replay(args: argparse.Namespace) -> int:
    """Run the replay flow in this process, with a progress bar, then print the report."""
    from bytewax.run import cli_main
    from tqdm import tqdm

    from gridflow.control.report import build_report
    from gridflow.data.funding import funding_flag
    from gridflow.dataflows.plan import plan_run
    from gridflow.dataflows.replay import build_flow, load_replay_config
    from gridflow.isotime import iso_utc
    from gridflow.logs import setup_for

    overrides = {}
    if args.db:
        overrides["db_url"] = args.db
    if args.data:
        overrides["data"] = tuple(args.data)
    if args.run_id:
        overrides["run_id"] = args.run_id
    for name in ("start", "end"):
        v = getattr(args, name)
        if v is not None:
            overrides[f"{name}_ms"] = int(v) if v.isdigit() else v
    funding = funding_flag(args.funding)
    if funding is not None:
        overrides["funding"] = tuple({"path": f} for f in funding)
    cfg = load_replay_config(args.preset or args.config, **overrides)
    setup_for(cfg)  # [logging], its secrets masked
    plan = plan_run(cfg)
    if args.name:  # a name another run has: refused before anything runs
        from gridflow.journal.names import check_name_free

        check_name_free(cfg.db_url, "run", plan.run_id, args.name)
    expected = plan.expected_candles()  # reads every file: a bad one fails here, in one line
    if expected == 0:
        window = " to ".join(iso_utc(v) if v is not None else "open"
                             for v in (cfg.start_ms, cfg.end_ms))
        raise ValueError(f"no candle to replay: none of the {len(plan.files)} data file(s) has "
                         f"a candle in the window {window}; check --start / --end and --data")
    bar = None
    if not args.no_progress:
        bar = tqdm(total=expected, unit="candle", unit_scale=True, desc=f"replay {plan.run_id}")
    flow = build_flow(plan, progress=bar.update if bar is not None else None)
    _announce_compiles(bar)
    try:
        cli_main(flow, workers_per_process=args.workers, epoch_interval=timedelta(seconds=10))
    except (ValueError, LookupError) as exc:  # a failure of the run, not of the input:
        raise RuntimeError(f"the replay failed: {exc}") from exc  # keep the traceback
    if bar is not None:
        bar.close()
    if args.name:
        from gridflow.journal.names import set_name

        set_name(cfg.db_url, "run", plan.run_id, args.name)
    _print_report(build_report(cfg.db_url, plan.run_id), args.json)
    return 0


def _existing_journal(url: str) -> str:
    """``url`` if it names a journal that exists; reading commands never create one.

    Raises
    ------
    ValueError
        For something that is not a database URL, or an SQLite file that does not exist.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        u = make_url(url)
    except ArgumentError:
        raise ValueError(f"--db {url!r} is not a database URL; write sqlite:///FILE.db "
                         "(or postgresql+psycopg://user:pw@host/db)") from None
    db = u.database or ""
    if u.get_backend_name() == "sqlite" and db and db != ":memory:" \
            and not db.startswith("file:") and not Path(db).expanduser().exists():
        raise ValueError(f"no journal at {db} (--db {url}); replay a run into it first")
    return url


def cmd_report(args: argparse.Namespace) -> int:
    """The run's report, or with ``--daily`` the report of one UTC day (``--date``)."""
    from gridflow.control.report import build_report

    if args.daily or args.date is not None:
        return _daily_report(args)
    _print_report(build_report(_existing_journal(args.db), args.run), args.json)
    return 0


def _daily_report(args: argparse.Namespace) -> int:
    """``report --daily [--date DAY]``: :mod:`gridflow.control.daily_report` as text or
    strict JSON; a bad date or a day without journal rows is an error (exit 2)."""
    from gridflow.control.daily_report import daily_report, parse_day
    from gridflow.control.daily_report_text import render_daily_text
    from gridflow.control.report import strict_json

    if not args.daily:
        raise ValueError("--date needs --daily (the run's report has no date)")
    day = parse_day(args.date)
    rep = daily_report(_existing_journal(args.db), args.run, day)
    print(json.dumps(strict_json(rep.model_dump(mode="json")), indent=2, sort_keys=True)
          if args.json else render_daily_text(rep))
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    """``runs list`` (newest last), ``runs show`` (header and overview) and ``runs
    delete`` (every row of the run, only with ``--yes``)."""
    from gridflow.journal.runs import delete_run, resolve_run, run_catalogue

    url = _existing_journal(args.db)
    if args.runs_cmd == "list":
        from gridflow.control.report import strict_json
        from gridflow.control.report_tables import render_runs

        runs = run_catalogue(url)
        print(json.dumps(strict_json(runs), indent=2) if args.json else render_runs(runs))
        return 0
    if args.runs_cmd == "show":
        from gridflow.control.report import build_report

        rep = build_report(url, args.run)
        _print_report(rep, args.json, sections=[])
        if not args.json:
            print(f"\n(every table: gridflow report --db {args.db} --run {rep['run_id']})")
        return 0
    rid = resolve_run(url, args.run)  # an unknown run: one line naming the runs there are
    if not args.yes:
        row = next(r for r in run_catalogue(url) if r["run_id"] == rid)
        raise ValueError(f"refusing to delete run {rid} ({row['candles']:,} candles, "
                         f"{row['trades']:,} trades) without --yes")
    deleted = delete_run(url, rid)
    print(f"deleted run {rid}: {sum(deleted.values()):,} rows from "
          f"{sum(1 for n in deleted.values() if n)} tables")
    return 0


def cmd_journal(args: argparse.Namespace) -> int:
    from gridflow.control.report import journal_lines

    out = sys.stdout
    for line in journal_lines(_existing_journal(args.db), args.run):
        out.write(line + "\n")
    return 0


def cmd_app(args: argparse.Namespace) -> int:
    """Serve the Panel control app (users from ``GRIDFLOW_APP_USERS``)."""
    from gridflow.control.app.cli import run

    return run(args)


def cmd_live(args: argparse.Namespace) -> int:
    """Preflight (:mod:`gridflow.ops.preflight`), exit 2 on a failed check; else, unless
    ``--dry-run``, replace this process with the live flow (:mod:`gridflow.ops.launch`:
    same process id, so SIGTERM / SIGINT reach the flow as with ``bytewax.run``)."""
    from gridflow.config import load_config
    from gridflow.dataflows.plan import plan_run
    from gridflow.ops.launch import (
        default_recovery_dir,
        flow_argv,
        prepare_recovery,
    )
    from gridflow.ops.preflight import preflight

    cfg = load_config(args.config)  # live mode without keys: refused here, naming them
    plan = plan_run(cfg, mode=cfg.live.mode)
    report = preflight(cfg, plan.account_symbols)
    print(report.render(), flush=True)
    if not report.ok:
        for c in report.failures:
            print(f"gridflow live: error: {c.name}: {c.message}", file=sys.stderr)
        return 2
    if args.dry_run:
        return 0
    folder = args.recovery or default_recovery_dir(plan.run_id)
    new = prepare_recovery(folder)
    argv = flow_argv(args.config, folder)
    print(f"run {plan.run_id} ({cfg.live.mode}), recovery {folder} "
          f"({'new' if new else 'resumed'}): {' '.join(argv[1:])}", flush=True)
    sys.stderr.flush()
    os.execv(argv[0], argv)
    return 1  # not reached


def cmd_status(args: argparse.Namespace) -> int:
    """The running accounts (:mod:`gridflow.ops.status`) as text or strict JSON."""
    from gridflow.control.report import strict_json
    from gridflow.ops.status import account_status, render_status

    rows = account_status(_existing_journal(args.db), args.run)
    print(json.dumps(strict_json(rows), indent=2) if args.json else render_status(rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gridflow`` console script."""
    from gridflow.logs import setup_logging

    setup_logging()  # console, WARNING; a command with a config applies its [logging]
    from gridflow.data_cli import cmd_data
    from gridflow.sweep_cli import cmd_sweep, cmd_wfo

    args = _parser().parse_args(argv)
    handler = {"replay": cmd_replay, "report": cmd_report, "journal": cmd_journal,
               "runs": cmd_runs, "app": cmd_app, "sweep": cmd_sweep, "wfo": cmd_wfo,
               "live": cmd_live, "status": cmd_status, "data": cmd_data}[args.cmd]
    from pydantic import ValidationError
    from sqlalchemy.exc import ArgumentError, DatabaseError

    def fail(message: str) -> int:
        print(f"gridflow {args.cmd}: error: {message}", file=sys.stderr)
        return 2

    try:
        return handler(args)
    except ValidationError as exc:  # a bad config value: each field and what is wrong
        return fail("; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}"
                              for e in exc.errors()))
    except (FileNotFoundError, ValueError, LookupError) as exc:
        return fail(str(exc))  # missing file, bad value, unknown run
    except ArgumentError as exc:  # a --db that is not a database URL
        return fail(f"--db is not a database URL ({exc}); write sqlite:///FILE.db or "
                    "postgresql+psycopg://user:pw@host/db")
    except DatabaseError as exc:  # not a database, unreachable server, locked for good
        return fail(f"cannot use the journal database: {str(exc.orig or exc).splitlines()[0]}"
                    " (check --db)")
    except ModuleNotFoundError as exc:
        if exc.name in _DB_DRIVERS:
            return fail(f"the database driver {exc.name!r} is not installed: "
                        f"pip install {_DB_DRIVERS[exc.name]} (or use --db sqlite:///FILE.db)")
        raise
    except BrokenPipeError:  # `gridflow journal ... | head`: the reader left; say nothing
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
