"""``gridflow app`` / ``python -m gridflow.control.app``: arguments and entry point.

No Panel import until the server starts, so ``gridflow`` can register this
subcommand without slowing its other commands down.
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The app's options on ``p`` (a parser or a ``gridflow`` subparser)."""
    p.add_argument("--db", default=os.environ.get("GRIDFLOW_DB_URL"),
                   help="journal URL (default: GRIDFLOW_DB_URL)")
    p.add_argument("--port", type=int, default=5006, help="0 picks a free port")
    p.add_argument("--address", default="127.0.0.1",
                   help="interface to listen on (default: this machine only)")
    p.add_argument("--origin", action="append", metavar="HOST:PORT",
                   help="allowed websocket origin, repeatable (default: the address)")
    p.add_argument("--ssl-certfile", metavar="PEM",
                   help="serve HTTPS with this certificate (chain); needs --ssl-keyfile")
    p.add_argument("--ssl-keyfile", metavar="PEM", help="private key of --ssl-certfile")
    p.add_argument("--show", action="store_true", help="open a browser tab")
    return p


def tls_options(certfile: str | None, keyfile: str | None) -> dict[str, str]:
    """``ssl_certfile``/``ssl_keyfile`` for :func:`~gridflow.control.app.app.serve`
    (empty without TLS).

    Raises
    ------
    ValueError
        When only one of the two is given, a file does not exist or they are not a PEM
        certificate (chain) and its private key.
    """
    if not certfile and not keyfile:
        return {}
    if not (certfile and keyfile):
        raise ValueError("--ssl-certfile and --ssl-keyfile go together")
    for flag, path in (("--ssl-certfile", certfile), ("--ssl-keyfile", keyfile)):
        if not os.path.isfile(path):
            raise ValueError(f"{flag}: no such file: {path}")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except ssl.SSLError as exc:
        raise ValueError(f"--ssl-certfile/--ssl-keyfile: not a PEM certificate and its key "
                         f"({exc})") from None
    return {"ssl_certfile": certfile, "ssl_keyfile": keyfile}


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted. Users come from ``GRIDFLOW_APP_USERS``
    (``"alice:pw,bob:pw2"``), the cookie secret from ``GRIDFLOW_APP_COOKIE_SECRET``."""
    if not args.db:
        print("gridflow app: error: --db or GRIDFLOW_DB_URL is required", file=sys.stderr)
        return 2
    try:
        extra: dict[str, Any] = dict(tls_options(args.ssl_certfile, args.ssl_keyfile))
    except ValueError as exc:
        print(f"gridflow app: error: {exc}", file=sys.stderr)
        return 2
    from gridflow.control.app.app import serve

    if args.origin:
        extra["websocket_origin"] = args.origin
    try:
        serve(args.db, port=args.port, address=args.address, show=args.show, **extra)
    except (ValueError, OSError) as exc:  # malformed GRIDFLOW_APP_USERS (the message has no
        # password), port in use
        print(f"gridflow app: error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gridflow app", description="gridflow control app (Panel)")
    return run(add_arguments(p).parse_args(argv))
