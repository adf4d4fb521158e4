"""``gridflow app`` / ``python -m gridflow.control.app``: arguments and entry point.

No Panel import until the server starts, so ``gridflow`` can register this
subcommand without slowing its other commands down.
"""

from __future__ import annotations

import argparse
import os
import sys


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The app's options on ``p`` (a parser or a ``gridflow`` subparser)."""
    p.add_argument("--db", default=os.environ.get("GRIDFLOW_DB_URL"),
                   help="journal URL (default: GRIDFLOW_DB_URL)")
    p.add_argument("--port", type=int, default=5006, help="0 picks a free port")
    p.add_argument("--address", default="127.0.0.1",
                   help="interface to listen on (default: this machine only)")
    p.add_argument("--origin", action="append", metavar="HOST:PORT",
                   help="allowed websocket origin, repeatable (default: the address)")
    p.add_argument("--show", action="store_true", help="open a browser tab")
    return p


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted. Users come from ``GRIDFLOW_APP_USERS``
    (``"alice:pw,bob:pw2"``), the cookie secret from ``GRIDFLOW_APP_COOKIE_SECRET``."""
    if not args.db:
        print("gridflow app: error: --db or GRIDFLOW_DB_URL is required", file=sys.stderr)
        return 2
    from gridflow.control.app.app import serve

    extra = {"websocket_origin": args.origin} if args.origin else {}
    try:
        serve(args.db, port=args.port, address=args.address, show=args.show, **extra)
    except ValueError as exc:  # malformed GRIDFLOW_APP_USERS: the message has no password
        print(f"gridflow app: error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gridflow app", description="gridflow control app (Panel)")
    return run(add_arguments(p).parse_args(argv))
