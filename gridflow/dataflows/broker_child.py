"""A broker process: carries the requests of some of the broker's lanes for the flow
that started it (:class:`~gridflow.dataflows.broker_procs.BrokerProcesses`).

``python -m gridflow.dataflows.broker_child CTRL_FD LANE_FD...``: the control
connection brings ``("init", live, db_url, run_id, lanes, paced, markets, log_level)``;
the child sets the flow's markets (or loads them once when None) and says ``("ready",)``
(or ``("fatal", text)``), then serves each lane's
connection on a thread of its own, one ccxt client per lane:

* ``("carry", intent, status, cancel_status)`` -> ``("ok", outcomes)``;
* ``("group", intents)`` -> ``("ok", outcomes per intent)``;
* a request's slot, when ``paced``: ``("slot", cost)`` sent, the seconds to wait read
  back (the flow keeps the account's one pacing);
* an exception -> ``("error", text)``, keys masked.

Log records (INFO and up) go to the flow over the control connection. The child exits
when the control connection ends (the flow closed it or is gone); SIGINT and SIGTERM are
ignored, so a Ctrl-C to the process group stops the flow first, which then ends it.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from gridflow.dataflows.broker_batch import carry_gathered
from gridflow.dataflows.broker_carry import Carrier
from gridflow.dataflows.broker_sink import build_gateway
from gridflow.exchange.client import SharedThrottle
from gridflow.exchange.gateway import OrderGateway
from gridflow.journal.store import open_store
from gridflow.redaction import error_text

__all__ = ["main", "serve"]


class _RemoteThrottle:
    """ccxt's ``throttle(cost)`` of a lane's client: the slot asked of the flow."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def __call__(self, cost: float | None = None) -> None:
        self._conn.send(("slot", 1.0 if cost is None else float(cost)))
        wait_s = float(self._conn.recv())
        if wait_s > 0:
            time.sleep(wait_s)


class _Forward(logging.Handler):
    """Sends the child's log records to the flow's logging."""

    def __init__(self, ctrl: Connection) -> None:
        super().__init__(logging.INFO)
        self._ctrl = ctrl
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # noqa: BLE001 - a bad format string is not worth dying for
            text = str(record.msg)
        try:
            with self._lock:
                self._ctrl.send(("log", record.levelno, record.name, text))
        except OSError:
            pass


def _serve_lane(conn: Connection, gw: OrderGateway, carrier: Carrier,
                secrets: list[str]) -> None:
    """Answer one lane's requests until its connection ends. Whatever stops this thread
    closes the connection, so the flow's lane never waits for an answer that cannot
    come (it sees the end and fails the lane)."""
    try:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                return
            try:
                if msg[0] == "carry":
                    out: Any = carrier.carry(gw, *msg[1:])
                else:
                    out = carry_gathered(gw, msg[1])
                reply: tuple = ("ok", out)
            except Exception as exc:  # noqa: BLE001 - the flow's lane raises it
                reply = ("error", error_text(exc, secrets))
            try:
                conn.send(reply)
            except OSError:
                return
            except Exception as exc:  # noqa: BLE001 - an answer that does not pickle
                conn.send(("error", f"the answer could not be sent: {type(exc).__name__}"))
    finally:
        conn.close()


def serve(ctrl: Connection, lane_conns: list[Connection]) -> None:
    """Serve the lanes until the control connection ends; see the module docstring."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(_Forward(ctrl))
    try:
        _, live, db_url, run_id, lanes, paced, markets, level = ctrl.recv()
    except (EOFError, OSError):
        return
    root.setLevel(max(logging.INFO, level))
    secrets = [s for s in live.exchange.credentials() if s]
    try:
        first = build_gateway(live, markets=markets)
        engine = open_store(db_url)
    except Exception as exc:  # noqa: BLE001 - reported, the flow decides
        ctrl.send(("fatal", error_text(exc, secrets)))
        return
    carrier = Carrier(engine, run_id)
    for k, (lane, conn) in enumerate(zip(lanes, lane_conns, strict=True)):
        gw = first if k == 0 else build_gateway(live, markets_from=first)
        # paced by the flow's throttle, or not at all (the flow's pacing is off)
        gw.exchange.throttle = _RemoteThrottle(conn) if paced else SharedThrottle(0.0)
        threading.Thread(target=_serve_lane, args=(conn, gw, carrier, secrets), daemon=True,
                         name=f"broker-lane-{lane}").start()
    ctrl.send(("ready",))
    try:
        while True:
            ctrl.recv()  # nothing more is sent: this waits for the end
    except (EOFError, OSError):
        return


def main(argv: list[str]) -> int:
    """``broker_child CTRL_FD LANE_FD...``: serve, then exit at once (a request a lane
    is still waiting on is the flow's to resolve: it left a write-ahead row)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    conns = [Connection(int(fd)) for fd in argv[1:]]
    serve(conns[0], conns[1:])
    return 0


if __name__ == "__main__":
    sys.stdout.flush()
    os._exit(main(sys.argv))
