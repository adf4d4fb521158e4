"""The stream process's child: a :class:`~gridflow.exchange.streams.StreamHub` whose
feeds relay every change to the parent over a pipe.

Started by :class:`~gridflow.exchange.stream_process.StreamProcess` as
``python -m gridflow.exchange.stream_child EVENTS_FD COMMANDS_FD`` (never by hand). The
exchange config, keys included, comes over the command pipe, never on the command line
or in the environment. Messages are length-prefixed pickles
(:mod:`gridflow.exchange.stream_pipe`); the pipes are private to the two processes.

Commands (parent -> child): ``("init", ExchangeConfig, reconnect_max_s, log_level)``,
``("watch", spec)``, ``("call", id, "reset_private")``, ``("close",)``.

Events (child -> parent): ``("ready",)`` or ``("fatal", text)`` after ``init``;
``("push", key, item)`` (a watch returned ``item``), ``("up", key)``,
``("down", key, error)``; ``("done", id, error_or_None)``; ``("log", levelno, logger,
text)`` (the child's log records, shown by the parent's logging).

The child exits when its command pipe ends (the parent closed it, exited or was killed:
a SIGKILLed flow leaves no stream process behind) or when its event pipe is broken.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Any, BinaryIO

from gridflow import latency_trace
from gridflow.exchange.stream_pipe import recv_msg, send_msg
from gridflow.exchange.streams import StreamFeed, StreamHub, stream_error

__all__ = ["RelayFeed", "main", "serve"]

def _plain(key: str, item: Any) -> Any:
    """``item`` without ccxt's cache classes (a list subclass holding its whole cache):
    only the returned entries cross the pipe. Tickers (mark prices) go without their
    raw ``info``: every message carries every market's newest one."""
    if key.startswith(("marks:", "tickers:")) and isinstance(item, dict):
        return {m: {k: v for k, v in tk.items() if k != "info"} if isinstance(tk, dict)
                else tk for m, tk in item.items()}
    if isinstance(item, list):
        return list(item)
    if isinstance(item, dict):
        return dict(item)
    return item


class _Sender:
    """Thread-safe :func:`send_msg` to the parent; a broken pipe ends the child (the
    parent is gone)."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._lock = threading.Lock()

    def __call__(self, msg: Any) -> None:
        try:
            with self._lock:
                send_msg(self._f, msg)
        except OSError:
            os._exit(0)


def _trace(key: str, item: Any) -> None:
    """``fill_parsed`` per streamed fill, ``mark_parsed`` per mark-price message (at its
    newest exchange time, as the account partition's watermark)."""
    if key == "my_trades":
        for t in item or []:
            latency_trace.mark("fill_parsed", f"{t.get('symbol')}@{t.get('timestamp')}")
    elif key.startswith(("marks:", "tickers:")) and isinstance(item, dict):
        ts = [tk.get("timestamp") for tk in item.values() if isinstance(tk, dict)]
        ts = [t for t in ts if t is not None]
        if ts:
            latency_trace.mark("mark_parsed", f"marks@{max(ts)}")


class RelayFeed(StreamFeed):
    """A feed of the child's hub: keeps only its state (the hub's reconnects need it)
    and sends each message and each change of status to the parent."""

    def __init__(self, key: str, send: _Sender) -> None:
        super().__init__(key)
        self._send = send

    def _push(self, item: Any) -> None:
        if latency_trace.enabled():
            _trace(self.key, item)
        with self._lock:
            self._heard()
        try:
            self._send(("push", self.key, _plain(self.key, item)))
        except Exception as e:  # noqa: BLE001 - not picklable: the stream is not trusted
            self._down(f"the stream process could not relay a message: {type(e).__name__}")

    def _up(self) -> None:
        was = self.status
        super()._up()
        if was != "up":
            self._send(("up", self.key))

    def _down(self, error: str) -> None:
        super()._down(error)
        self._send(("down", self.key, error))


class _Forward(logging.Handler):
    """Sends the child's log records (INFO and up) to the parent's logging."""

    def __init__(self, send: _Sender) -> None:
        super().__init__(logging.INFO)
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # noqa: BLE001 - a bad format string is not worth dying for
            text = str(record.msg)
        self._send(("log", record.levelno, record.name, text))


def serve(commands: BinaryIO, events: BinaryIO) -> None:
    """Answer the parent's commands until the command pipe ends; see the module
    docstring."""
    send = _Sender(events)
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(_Forward(send))
    root.setLevel(logging.INFO)
    hub = None
    try:
        while True:
            try:
                msg = recv_msg(commands)
            except EOFError:
                return
            kind = msg[0]
            if kind == "init":
                root.setLevel(max(logging.INFO, msg[3]))
                try:
                    hub = StreamHub(msg[1], msg[2],
                                    new_feed=lambda key: RelayFeed(key, send))
                except Exception as e:  # noqa: BLE001 - reported, the parent decides
                    send(("fatal", stream_error(e, msg[1].credentials())))
                    return
                send(("ready",))
            elif kind == "watch" and hub is not None:
                hub.watch(msg[1])
            elif kind == "call" and hub is not None:
                try:
                    hub.reset_private()
                    send(("done", msg[1], None))
                except Exception as e:  # noqa: BLE001 - the parent raises it
                    send(("done", msg[1], hub.describe(e)))
            elif kind == "close":
                return
    finally:
        if hub is not None:
            hub.close()


def main(argv: list[str]) -> int:
    """``stream_child EVENTS_FD COMMANDS_FD``: serve, then exit.

    SIGINT and SIGTERM are ignored: a Ctrl-C in a terminal or a service manager's stop
    reaches the whole process group, and the child must end when its flow closes it
    (after the flow's own orderly stop), not before."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    events = os.fdopen(int(argv[1]), "wb")
    commands = os.fdopen(int(argv[2]), "rb")
    serve(commands, events)
    try:
        events.flush()
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    os._exit(main(sys.argv))
