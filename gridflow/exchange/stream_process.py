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
import pickle
import subprocess
import sys
import threading
import time
from typing import Any

from gridflow.config.live import ExchangeConfig
from gridflow.exchange import watches
from gridflow.exchange.stream_pipe import recv_frame, recv_msg, send_msg
from gridflow.exchange.streams import StreamFeed, backoff, stream_error
from gridflow.redaction import holds_secret

__all__ = ["StreamProcess"]

log = logging.getLogger(__name__)

_STEADY_S = 30.0
"""A child that ran this long before it died starts the backoff afresh."""


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
        The first child did not start (its error, keys masked; or the OS refused the
        process or its pipes).

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
        self._starting: subprocess.Popen | None = None  # a child not ready yet
        self._cmds: Any = None
        self._events: Any = None
        self._live = False  # a ready child reads the command pipe
        self._started = 0.0  # time.monotonic() when the running child became ready
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

    def reset_private(self, timeout: float = 10.0) -> None:
        """Have the child close the user data stream's connections (blocking): the
        watches reconnect with a fresh subscription. Returns at once while no child is
        running (the next one opens fresh connections anyway).

        Raises
        ------
        TimeoutError
            The child did not answer within ``timeout`` seconds.
        RuntimeError
            The child could not reset (its error, keys masked).
        """
        done = threading.Event()
        with self._lock:
            self._next_call += 1
            cid = self._next_call
            self._calls[cid] = [done, None]
            if not self._command(("call", cid, "reset_private")):
                del self._calls[cid]
                return
        if not done.wait(timeout):
            with self._lock:
                self._calls.pop(cid, None)
            raise TimeoutError(f"the stream process did not reset within {timeout:g} s")
        with self._lock:
            error = self._calls.pop(cid, [None, None])[1]
        if error:
            raise RuntimeError(f"resetting the user stream: {error}")

    def describe(self, exc: BaseException) -> str:
        """``"ClassName: message"`` with the keys masked, at most 300 characters."""
        return stream_error(exc, self._secrets)

    def close(self) -> None:
        """Ask the child to close its connections and exit; kill it if it has not within
        10 s (and a child still starting at once)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            proc, starting = self._proc, self._starting
            self._command(("close",))
            self._close_pipe(self._cmds)
            self._live = False
        if starting is not None:
            starting.kill()
        if proc is not None:
            try:
                proc.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5.0)
        self._reader.join(timeout=10.0)
        self._close_pipe(self._events)

    # ------------------------------------------------------------------ internals
    def _command(self, msg: Any) -> bool:
        """Send ``msg`` to the child (under ``_lock``); whether a running child got it. A
        dead child is the reader's business (it restarts it and sends every watch
        again)."""
        if not self._live:
            return False
        try:
            send_msg(self._cmds, msg)
            return True
        except (OSError, ValueError) as e:
            log.debug("stream process command %s: %s", msg[0], type(e).__name__)
            self._live = False
            return False

    @staticmethod
    def _close_pipe(f: Any) -> None:
        try:
            f.close()
        except (OSError, ValueError):
            pass

    def _spawn(self) -> None:
        """Start a child, send it the config and every watch, wait for ``ready``.

        The child's environment is the flow's without any variable holding a key: the
        keys reach it over the pipe only.

        Raises
        ------
        RuntimeError
            The OS refused the pipes or the process, or the child died or said
            ``fatal`` before ``ready``, or was not ready within ``start_timeout_s``.
        """
        env = {k: v for k, v in os.environ.items() if not holds_secret(v, self._secrets)}
        proc = events = cmds = None
        raw: list[int] = []  # pipe ends not yet owned by a file object or closed
        try:
            ev_r, ev_w = os.pipe()
            raw += [ev_r, ev_w]
            events = os.fdopen(ev_r, "rb")
            raw.remove(ev_r)
            cmd_r, cmd_w = os.pipe()
            raw += [cmd_r, cmd_w]
            cmds = os.fdopen(cmd_w, "wb")
            raw.remove(cmd_w)
            _widen(ev_w)
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "gridflow.exchange.stream_child", str(ev_w),
                     str(cmd_r)], pass_fds=(ev_w, cmd_r), stdin=subprocess.DEVNULL, env=env)
            finally:
                for fd in (ev_w, cmd_r):
                    raw.remove(fd)
                    os.close(fd)
            with self._lock:
                if self._closed:
                    raise RuntimeError("the stream hub is closed")
                self._starting = proc
            watchdog = threading.Timer(self.start_timeout_s, proc.kill)
            watchdog.daemon = True
            watchdog.start()
            try:
                send_msg(cmds, ("init", self.cfg, self.reconnect_max_s,
                                logging.getLogger().getEffectiveLevel()))
                while True:
                    msg = recv_msg(events)
                    if msg[0] == "ready":
                        break
                    if msg[0] != "log":
                        raise RuntimeError("the stream process failed: "
                                           + str(msg[1] if len(msg) > 1 else msg))
                    self._log(msg)
            finally:
                watchdog.cancel()
        except Exception as e:
            for fd in raw:
                os.close(fd)
            if proc is not None:
                proc.kill()
                proc.wait()
            for f in (events, cmds):
                if f is not None:
                    self._close_pipe(f)
            with self._lock:
                self._starting = None
            if isinstance(e, RuntimeError):
                raise
            code = None if proc is None else proc.returncode
            raise RuntimeError(f"the stream process did not start (exit code {code}): "
                               f"{self.describe(e)}") from None
        with self._lock:
            self._starting = None
            self._proc, self._events, self._cmds = proc, events, cmds
            self._started = time.monotonic()
            self._live = True
            if self._closed:  # closed while this child started: it ends at once
                self._live = False
                self._close_pipe(cmds)
                return
            for spec in self._specs.values():
                self._command(("watch", spec))

    def _read(self) -> None:
        """The reader thread: apply the child's messages; start a new child when one
        dies or its pipe fails (see the module docstring)."""
        deaths = 0
        while True:
            why = ""
            try:
                while True:
                    self._one(recv_frame(self._events))
            except EOFError:
                pass
            except Exception as e:  # noqa: BLE001 - an unreadable pipe: start afresh
                why = f" ({type(e).__name__} reading its pipe)"
            if self._closed:
                return
            if time.monotonic() - self._started >= _STEADY_S:
                deaths = 0  # it had been running: not one more of a series
            deaths += 1
            proc = self._proc
            with self._lock:
                self._live = False
                feeds = list(self._feeds.values())
                for call in self._calls.values():
                    call[0].set()  # a reset of a dead child: its connections are gone
            code = None
            if proc is not None:
                if proc.poll() is None:
                    proc.kill()  # a child whose pipe failed is ended
                code = proc.wait()
            error = f"the stream process exited (code {code}){why}"
            log.error("%s: restarting it (%d in a row)", error, deaths)
            for f in feeds:
                f._down(error)
            self._close_pipe(self._events)
            self._close_pipe(self._cmds)
            while not self._closed:
                time.sleep(backoff(deaths, self.reconnect_max_s))
                if self._closed:
                    return
                try:
                    self._spawn()
                    self.restarts += 1
                    break
                except Exception as e:  # noqa: BLE001 - try again after the backoff
                    if self._closed:
                        return
                    deaths += 1
                    log.error("%s", e)

    def _one(self, frame: bytes) -> None:
        """Apply one message of the child. One that cannot be unpickled or applied is
        logged and skipped; a push lost so counts as a reconnect of its feed (its
        ``generation`` moves on: the partition catches up by REST)."""
        try:
            msg = pickle.loads(frame)  # noqa: S301 - our own child's pipe
        except Exception as e:  # noqa: BLE001
            log.error("stream process: a message that cannot be read (%s), skipped",
                      type(e).__name__)
            return
        try:
            self._apply(msg)
        except Exception:  # noqa: BLE001 - one bad message, not the stream
            log.exception("stream process message %r", msg[:2])
            feed = self._feeds.get(msg[1]) if msg[0] == "push" else None
            if feed is not None:
                feed._down("a message of the stream process could not be applied")
                with feed._lock:
                    feed._up()

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


_PIPE_BYTES = 1 << 20


def _widen(fd: int) -> None:
    """Give the pipe ``fd`` 1 MiB of buffer where Linux allows it (64 KiB by default), so
    a burst of parsed items does not stop the child's event loop while the flow is busy
    reading; elsewhere the default stays."""
    try:
        import fcntl
    except ImportError:
        return
    if hasattr(fcntl, "F_SETPIPE_SZ"):
        try:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        except OSError:
            pass

