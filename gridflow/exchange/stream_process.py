"""The exchange's websocket streams parsed in a child process (``live.streams.hub =
"process"``).

ccxt.pro's work for every message (the websocket frame, JSON, its unified trade /
order / ticker structures and caches, asyncio's callbacks) is Python that holds the GIL.
In the flow's process it competes with the Bytewax worker, the broker's lanes and the
journal writer for the one GIL, and a fill waits behind it. :class:`StreamProcess` runs
the same :class:`~gridflow.exchange.streams.StreamHub` in a child
(:mod:`gridflow.exchange.stream_child`) and offers the hub's interface in the flow:
``watch(spec)`` returns a :class:`~gridflow.exchange.streams.StreamFeed` that a reader
thread fills with the parsed items and status changes the child sends (unpickling a
few dicts is all the flow does per message), so the partitions read it as before.

Lifetime: the child reads its commands from a pipe and exits when the pipe ends, so it
never outlives the flow (a SIGKILLed flow included). A child that dies (crash, OOM,
killed) is started again after ``min(reconnect_max_s, 0.1 s * 2**(k-1))`` for the
``k``-th death in a row and every watch is sent again; meanwhile every feed is ``down``
(its ``last_error`` says why), and the next ``up`` moves its ``generation`` on, so the
partitions catch up by REST exactly as after a dropped connection.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from typing import Any

from gridflow.config.live import ExchangeConfig
from gridflow.exchange import watches
from gridflow.exchange.retry import error_text
from gridflow.exchange.stream_pipe import recv_msg, send_msg
from gridflow.exchange.streams import StreamFeed

__all__ = ["StreamProcess"]

log = logging.getLogger(__name__)

_FIRST_DELAY_S = 0.1


class StreamProcess:
    """A :class:`~gridflow.exchange.streams.StreamHub` in a child process; see the module
    docstring. Same interface: :meth:`watch`, :meth:`feed`, :meth:`reset_private`,
    :meth:`describe`, :meth:`close`, ``refs``.

    Parameters
    ----------
    cfg : ExchangeConfig
        Keys and URL overrides (``ws_urls``) of the exchange (sent to the child over its
        pipe).
    reconnect_max_s : float
        Cap of the reconnect backoff (the child's hub), and of the wait before a dead
        child is started again, seconds.
    start_timeout_s : float
        A child not ready this long after its start is killed.

    Raises
    ------
    RuntimeError
        The first child did not start (its error, keys masked).

    Attributes
    ----------
    pid : int
        The running child's process id.
    restarts : int
        Children started again after one died.
    """

    def __init__(self, cfg: ExchangeConfig, reconnect_max_s: float = 5.0,
                 start_timeout_s: float = 60.0) -> None:
        self.cfg = cfg
        self.reconnect_max_s = float(reconnect_max_s)
        self.start_timeout_s = float(start_timeout_s)
        self._secrets = cfg.credentials()
        self._feeds: dict[str, StreamFeed] = {}
        self._specs: dict[str, tuple] = {}
        self._lock = threading.Lock()  # feeds, specs, the command pipe
        self._calls: dict[int, list] = {}  # id -> [Event, error]
        self._next_call = 0
        self.refs = 0
        self.restarts = 0
        self._closed = False
        self._proc: subprocess.Popen | None = None
        self._cmds: Any = None
        self._events: Any = None
        self._spawn()
        self._reader = threading.Thread(target=self._read, name="gridflow-ws-pipe",
                                        daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        """The running child's process id."""
        assert self._proc is not None
        return self._proc.pid

    # ------------------------------------------------------------------ the hub's API
    def watch(self, spec: tuple) -> StreamFeed:
        """The feed of ``spec`` (:mod:`~gridflow.exchange.watches`), watched by the child
        from the first call on; later calls with the same spec share it.

        Raises
        ------
        ValueError
            Not a known spec.
        """
        key = watches.spec_key(spec)
        with self._lock:
            feed = self._feeds.get(key)
            if feed is None:
                feed = self._feeds[key] = StreamFeed(key)
                self._specs[key] = spec
                self._command(("watch", spec))
            return feed

    def feed(self, key: str) -> StreamFeed | None:
        """The feed of ``key`` if some partition of this process watches it, else None."""
        with self._lock:
            return self._feeds.get(key)

    def reset_private(self, timeout: float = 30.0) -> None:
        """Have the child close the user data stream's connections (blocking): the
        watches reconnect with a fresh subscription. A child that is restarting has
        fresh connections anyway.

        Raises
        ------
        TimeoutError
            The child did not answer within ``timeout`` seconds.
        """
        done = threading.Event()
        with self._lock:
            self._next_call += 1
            cid = self._next_call
            self._calls[cid] = [done, None]
            self._command(("call", cid, "reset_private"))
        if not done.wait(timeout):
            with self._lock:
                self._calls.pop(cid, None)
            raise TimeoutError(f"the stream process did not reset within {timeout:g} s")
        with self._lock:
            error = self._calls.pop(cid, [None, None])[1]
        if error:
            log.warning("resetting the user stream: %s", error)

    def describe(self, exc: BaseException) -> str:
        """``"ClassName: message"`` with the keys masked, at most 300 characters."""
        text = error_text(exc, self._secrets)
        return text if len(text) <= 300 else text[:297] + "..."

    def close(self) -> None:
        """Ask the child to close its connections and exit; kill it if it has not within
        10 s."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            proc = self._proc
            self._command(("close",))
            self._close_pipe(self._cmds)
        if proc is not None:
            try:
                proc.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5.0)
        self._reader.join(timeout=5.0)
        self._close_pipe(self._events)

    # ------------------------------------------------------------------ internals
    def _command(self, msg: Any) -> None:
        """Send ``msg`` to the child (under ``_lock``); a dead child is the reader's
        business (it restarts it and sends every watch again)."""
        try:
            send_msg(self._cmds, msg)
        except (OSError, ValueError) as e:
            log.debug("stream process command %s: %s", msg[0], type(e).__name__)

    @staticmethod
    def _close_pipe(f: Any) -> None:
        try:
            f.close()
        except (OSError, ValueError):
            pass

    def _spawn(self) -> None:
        """Start a child, send it the config and every watch, wait for ``ready``.

        Raises
        ------
        RuntimeError
            It died or said ``fatal`` before ``ready``, or was not ready in time.
        """
        ev_r, ev_w = os.pipe()
        cmd_r, cmd_w = os.pipe()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gridflow.exchange.stream_child", str(ev_w),
                 str(cmd_r)], pass_fds=(ev_w, cmd_r), stdin=subprocess.DEVNULL)
        finally:
            os.close(ev_w)
            os.close(cmd_r)
        events, cmds = os.fdopen(ev_r, "rb"), os.fdopen(cmd_w, "wb")
        watchdog = threading.Timer(self.start_timeout_s, proc.kill)
        watchdog.daemon = True
        watchdog.start()
        try:
            send_msg(cmds, ("init", self.cfg, self.reconnect_max_s))
            while True:
                msg = recv_msg(events)
                if msg[0] == "ready":
                    break
                if msg[0] == "log":
                    self._log(msg)
                    continue
                raise RuntimeError(f"the stream process failed: {msg[1] if len(msg) > 1 else msg}")
        except (EOFError, OSError) as e:
            proc.kill()
            proc.wait()
            events.close()
            cmds.close()
            raise RuntimeError(f"the stream process did not start (exit code "
                               f"{proc.returncode}): {type(e).__name__}") from None
        except RuntimeError:
            proc.kill()
            proc.wait()
            events.close()
            cmds.close()
            raise
        finally:
            watchdog.cancel()
        with self._lock:
            self._proc, self._events, self._cmds = proc, events, cmds
            if self._closed:  # closed while this child started: it ends at once
                self._close_pipe(cmds)
                return
            for spec in self._specs.values():
                self._command(("watch", spec))

    def _read(self) -> None:
        """The reader thread: apply the child's messages; start a new child when one
        dies (see the module docstring)."""
        deaths = 0
        while True:
            try:
                while True:
                    msg = recv_msg(self._events)
                    self._apply(msg)
                    if msg[0] == "push":
                        deaths = 0
            except (EOFError, OSError, ValueError):
                pass
            if self._closed:
                return
            deaths += 1
            code = self._proc.wait() if self._proc is not None else None
            error = f"the stream process exited (code {code})"
            log.error("%s: restarting it (%d in a row)", error, deaths)
            with self._lock:
                feeds = list(self._feeds.values())
                for cid, call in list(self._calls.items()):
                    call[0].set()  # a reset of a dead child: its connections are gone
            for f in feeds:
                f._down(error)
            self._close_pipe(self._events)
            self._close_pipe(self._cmds)
            while not self._closed:
                time.sleep(min(self.reconnect_max_s, _FIRST_DELAY_S * 2 ** (deaths - 1)))
                if self._closed:
                    return
                try:
                    self._spawn()
                    self.restarts += 1
                    break
                except RuntimeError as e:
                    deaths += 1
                    log.error("%s", e)

    def _apply(self, msg: Any) -> None:
        kind = msg[0]
        if kind == "log":
            self._log(msg)
            return
        if kind == "done":
            with self._lock:
                call = self._calls.get(msg[1])
                if call is not None:
                    call[1] = msg[2]
                    call[0].set()
            return
        feed = self._feeds.get(msg[1])
        if feed is None:
            return
        if kind == "push":
            feed._push(msg[2])
        elif kind == "up":
            with feed._lock:
                feed._up()
        elif kind == "down":
            feed._down(msg[2])

    @staticmethod
    def _log(msg: Any) -> None:
        logging.getLogger(msg[2]).log(msg[1], "%s", msg[3])
