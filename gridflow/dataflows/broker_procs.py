"""The broker lanes' exchange requests in child processes (``live.broker_processes``).

A ccxt request costs about a millisecond of Python on the client (signing, the
requests / urllib3 stack, parsing the answer), all of it holding the GIL. With the
lanes in the flow's process, the requests of a burst (a kill switch's cancels for every
symbol beside the take profits and stops of the fills that tripped it) take turns on
one GIL, with the Bytewax worker and the stream reader besides: the last request of a
dozen left 15-20 ms after the first. :class:`BrokerProcesses` carries each lane's
requests in one of ``n`` children instead (lane ``k`` in child ``k % n``), each with its
own GIL and its own ccxt clients, so the requests of a burst run on every core.

What stays in the flow: the write-ahead rows (nothing is sent without one), the lane
plan and its waits (:mod:`gridflow.dataflows.broker_lanes`), the journal of the
outcomes, and the one request pacing of the account (a child's client asks the flow's
:class:`~gridflow.exchange.client.SharedThrottle` for each request's slot over its
lane's connection). A lane thread of the flow hands its intent or group to its child
and waits for the outcomes, so a lane still runs one request at a time, in order.

Lifetime: a child serves until its control connection ends, so it never outlives the
flow (a SIGKILLed flow included: it exits at once, dropping nothing the flow had not
already written ahead). A child that dies fails the lane's request with
:class:`BrokerProcessError`; the lanes stop and the flow recovers from the write-ahead
rows, as after any lane exception.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

from gridflow.config.live import LiveConfig
from gridflow.events import OrderIntent, OrderOutcome
from gridflow.exchange.client import SharedThrottle
from gridflow.redaction import holds_secret

__all__ = ["BrokerProcessError", "BrokerProcesses"]

log = logging.getLogger(__name__)


class BrokerProcessError(RuntimeError):
    """A broker process failed a request (its error text, keys masked) or is gone."""


class BrokerProcesses:
    """``n`` child processes (:mod:`gridflow.dataflows.broker_child`) carrying the
    requests of up to ``lanes`` broker lanes; see the module docstring.

    Parameters
    ----------
    live : LiveConfig
        The exchange's keys and options (sent to the children over their connections,
        never in their environment or arguments) and the retry policy.
    db_url : str
        The journal (a child begins a recovered replacement's cancel row there).
    run_id : str
    n : int
        Child processes (≥ 1).
    lanes : int
        Lanes (≥ 1), each served by child ``lane % n``.
    throttle : SharedThrottle, optional
        The account's pacing; None or a ``rate_limit_ms`` of 0: the children's clients
        are not paced at all.
    markets : tuple, optional
        ``(markets, currencies)`` of the flow's loaded client, sent to the children
        (None: each child loads them from the exchange).
    start_timeout_s : float
        A child not ready (markets loaded) this long after its start is killed.

    Raises
    ------
    RuntimeError
        A child did not start (its error, keys masked), or the OS refused the process.
    ValueError
        ``n`` or ``lanes`` below 1.
    """

    def __init__(self, live: LiveConfig, db_url: str, run_id: str, n: int, lanes: int,
                 throttle: SharedThrottle | None = None,
                 markets: tuple[dict, dict | None] | None = None,
                 start_timeout_s: float = 60.0) -> None:
        if n < 1 or lanes < 1:
            raise ValueError(f"n and lanes must be >= 1, got {n}, {lanes}")
        self.n = min(int(n), int(lanes))
        self._throttle = throttle if throttle is not None and throttle.rate_limit_ms > 0 else None
        self._lanes: dict[int, Connection] = {}
        self._procs: list[subprocess.Popen] = []
        self._owned: list[Connection] = []  # every connection of ours, to end at close
        self._secrets = [s for s in live.exchange.credentials() if s]
        self._markets = markets
        try:  # all started at once, then each told its lanes, then each awaited
            started = [self._start(live, db_url, run_id,
                                   [k for k in range(lanes) if k % self.n == c])
                       for c in range(self.n)]
            for proc, ctrl, conns, their_lanes in started:
                self._ready(proc, ctrl, conns, their_lanes, start_timeout_s)
        except BaseException:
            self.close()
            raise

    @property
    def pids(self) -> list[int]:
        """The children's process ids."""
        return [p.pid for p in self._procs]

    def carry(self, lane: int, intent: OrderIntent, status: str | None,
              cancel_status: str | None) -> list[OrderOutcome]:
        """:meth:`~gridflow.dataflows.broker_carry.Carrier.carry` of one begun intent on
        ``lane``'s child; its outcomes.

        Raises
        ------
        BrokerProcessError
            The child failed or is gone.
        """
        return self._call(lane, ("carry", intent, status, cancel_status))

    def carry_group(self, lane: int, group: list[OrderIntent]) -> list[list[OrderOutcome]]:
        """:func:`~gridflow.dataflows.broker_batch.carry_gathered` of a gathered group on
        ``lane``'s child; per intent, its outcomes.

        Raises
        ------
        BrokerProcessError
            The child failed or is gone.
        """
        return self._call(lane, ("group", group))

    def _call(self, lane: int, msg: tuple) -> Any:
        conn = self._lanes.get(lane)
        if conn is None:
            raise BrokerProcessError(f"no broker process serves lane {lane}")
        try:
            conn.send(msg)
            while True:
                kind, value = conn.recv()
                if kind == "slot":  # the child's client asks for its request's slot
                    conn.send(0.0 if self._throttle is None else self._throttle.reserve(value))
                elif kind == "ok":
                    return value
                else:
                    raise BrokerProcessError(f"broker process of lane {lane}: {value}")
        except (EOFError, OSError) as exc:
            raise BrokerProcessError(f"the broker process of lane {lane} is gone "
                                     f"({type(exc).__name__})") from None

    def _start(self, live: LiveConfig, db_url: str, run_id: str, lanes: list[int]
               ) -> tuple[subprocess.Popen, Connection, list[Connection], list[int]]:
        """Start one child serving ``lanes``: a control connection and one per lane
        (socket pairs whose child ends it inherits), its config sent over the control
        one (``ready`` is awaited by :meth:`_ready`).

        Raises
        ------
        RuntimeError
            The child is gone before it read its config.
        OSError
            The OS refused the process or its sockets.
        """
        env = {k: v for k, v in os.environ.items() if not holds_secret(v, self._secrets)}
        pairs = [socket.socketpair() for _ in range(len(lanes) + 1)]
        theirs = [b.detach() for _, b in pairs]
        ours = [Connection(a.detach()) for a, _ in pairs]
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gridflow.dataflows.broker_child",
                 *(str(fd) for fd in theirs)], pass_fds=theirs, stdin=subprocess.DEVNULL,
                env=env)
        except BaseException:
            for c in ours:
                c.close()
            raise
        finally:
            for fd in theirs:
                os.close(fd)
        ctrl = ours[0]
        self._procs.append(proc)
        self._owned += ours
        try:
            ctrl.send(("init", live, db_url, run_id, lanes, self._throttle is not None,
                       self._markets, logging.getLogger().getEffectiveLevel()))
        except OSError:
            raise RuntimeError("the broker process exited before it read its config "
                               f"(exit code {proc.wait()})") from None
        return proc, ctrl, ours[1:], lanes

    def _ready(self, proc: subprocess.Popen, ctrl: Connection, conns: list[Connection],
               lanes: list[int], start_timeout_s: float) -> None:
        """Wait for the child's ``ready`` (killed after ``start_timeout_s``), then give
        its lanes their connections and read its logs.

        Raises
        ------
        RuntimeError
            The child failed (its error, keys masked) or exited before it was ready.
        """
        watchdog = threading.Timer(start_timeout_s, proc.kill)
        watchdog.daemon = True
        watchdog.start()
        try:
            while True:
                try:
                    msg = ctrl.recv()
                except (EOFError, OSError):
                    raise RuntimeError("the broker process exited before it was ready "
                                       f"(exit code {proc.wait()})") from None
                if msg[0] == "ready":
                    break
                if msg[0] == "log":
                    _log(msg)
                else:
                    raise RuntimeError(f"the broker process failed: {msg[1]}")
        finally:
            watchdog.cancel()
        for lane, conn in zip(lanes, conns, strict=True):
            self._lanes[lane] = conn
        threading.Thread(target=self._read_logs, args=(ctrl,), daemon=True,
                         name=f"broker-proc-{proc.pid}").start()

    @staticmethod
    def _read_logs(ctrl: Connection) -> None:
        """Log the child's records here until its control connection ends."""
        while True:
            try:
                msg = ctrl.recv()
            except (EOFError, OSError):
                return
            if msg[0] == "log":
                _log(msg)

    def close(self, timeout_s: float = 5.0) -> None:
        """End the children (each exits when its control connection ends) and wait for
        them; one still running after ``timeout_s`` is killed."""
        for conn in self._owned:
            _end(conn)
        for proc in self._procs:
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._owned.clear()
        self._lanes.clear()
        self._procs.clear()


def _end(conn: Connection) -> None:
    """Shut the socket of ``conn`` down, then close it: a thread of this process still
    blocked reading it (the log reader) would otherwise keep it open, and the child
    would never see its end."""
    try:
        sock = socket.socket(fileno=conn.fileno())
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.detach()
    try:
        conn.close()
    except OSError:
        pass


def _log(msg: tuple) -> None:
    _, level, name, text = msg
    logging.getLogger(name).log(level, text)
