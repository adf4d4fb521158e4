"""The websockets parsed in a child process (``live.streams.hub = "process"``, the
default) against the local exchange: a child that dies is started again and the
partition catches up by REST without a hole or a double; the child's log lines reach the
flow's log; the keys never reach its command line or environment; a SIGKILLed flow
leaves no stream process behind.

Partitions are driven directly, as in ``test_ws_sources.py``."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from live_harness import KEY, SECRET, H, start_exchange
from test_ws_sources import START, candle_part, cfg, pump, rows_of, subscribed

from gridflow.config.live import StreamsConfig
from gridflow.exchange.stream_process import StreamProcess


@pytest.fixture
def fx():
    ex = start_exchange(START)
    yield ex
    ex.stop()


def gone(pid: int) -> bool:
    """The process ``pid`` has exited (a zombie waiting for its reaper counts)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def wait_for(cond, timeout: float, what: str) -> None:
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"not within {timeout} s: {what}")


def test_a_killed_stream_process_is_restarted_and_rest_fills_the_hole(fx, caplog):
    caplog.set_level(logging.INFO)
    part = candle_part(fx, StreamsConfig(stale_s=60.0, reconnect_max_s=0.5))
    hub = part.hub
    assert isinstance(hub, StreamProcess)
    try:
        pump(part, lambda g: g and subscribed(fx, part), what="warm-up and subscribed")
        fx.step()
        got = pump(part, lambda g: g, what="first streamed candle")
        # a dropped connection: the child's own warning reaches this process's log
        fx.ws_drop("market")
        wait_for(lambda: any(r.name == "gridflow.exchange.streams" and "ohlcv:" in
                             r.getMessage() for r in caplog.records), 10, "the child's log")
        pump(part, lambda g: part.feed.status == "up", what="reconnected")
        first = hub.pid
        os.kill(first, signal.SIGKILL)
        hub.reset_private(timeout=5.0)  # while no child runs: returns, nothing to reset
        wait_for(lambda: hub.restarts == 1 and part.feed.status == "up", 20,
                 "a new child, streaming")
        assert hub.pid != first and gone(first)
        assert any("the stream process exited" in r.getMessage() and
                   r.levelno == logging.ERROR for r in caplog.records)
        fx.step(2)  # two candles close around the restart
        got += pump(part, lambda g: sum(len(c.ts) for c in g) >= 2, what="catch-up")
        pump(part, lambda g: part._trusted and subscribed(fx, part), what="trusted again")
        catchups = part.rest_catchups
        fx.step()
        got += pump(part, lambda g: g, what="streamed again")
        ts = list(rows_of(got)[:, 0].astype(np.int64))
        assert ts == [START + k * H for k in range(4)]  # each candle once, in order
        assert catchups >= 1 and part.feed.generation >= 2  # the drop, the restart
        assert part.rest_catchups == catchups
        # the keys came over the pipe, not on the child's command line or environment
        for name in ("cmdline", "environ"):
            raw = Path(f"/proc/{hub.pid}/{name}").read_bytes()
            assert KEY.encode() not in raw and SECRET.encode() not in raw
    finally:
        part.close()
    assert gone(first) and gone(hub.pid)


_FLOW = """
import json, os, sys, time
from pydantic import SecretStr
from gridflow.config.live import ExchangeConfig
from gridflow.exchange import watches
from gridflow.exchange.stream_process import StreamProcess
c = json.loads(sys.argv[1])
cfg = ExchangeConfig(urls=c["urls"], ws_urls=c["ws_urls"], rate_limit_ms=0,
                     api_key=SecretStr(os.environ["T_KEY"]),
                     secret=SecretStr(os.environ["T_SECRET"]))
hub = StreamProcess(cfg)
feed = hub.watch(watches.MY_TRADES)
print(hub.pid, flush=True)
time.sleep(120)
"""


def test_a_killed_flow_leaves_no_stream_process_or_connection_behind(fx):
    c = cfg(fx)
    env = {**os.environ, "T_KEY": KEY, "T_SECRET": SECRET}
    flow = subprocess.Popen([sys.executable, "-c", _FLOW, json.dumps(
        {"urls": c.urls, "ws_urls": c.ws_urls})], stdout=subprocess.PIPE, env=env, text=True)
    try:
        child = int(flow.stdout.readline())
        assert not gone(child)
        # the flow's environment holds the keys (as a deployment's does): not the child's
        for name in ("cmdline", "environ"):
            raw = Path(f"/proc/{child}/{name}").read_bytes()
            assert KEY.encode() not in raw and SECRET.encode() not in raw
        wait_for(lambda: fx.ws_connections().get("user", 0) == 1, 20,
                 "the child's user stream connected")
        # a terminal's Ctrl-C or a service stop reaches the process group: the child
        # stays until its flow closes it
        os.kill(child, signal.SIGINT)
        os.kill(child, signal.SIGTERM)
        time.sleep(0.5)
        assert not gone(child) and fx.ws_connections().get("user", 0) == 1
        flow.kill()
        flow.wait(10)
        wait_for(lambda: gone(child), 10, "the stream process exited with its flow")
        wait_for(lambda: fx.ws_connections().get("user", 0) == 0, 10,
                 "its connection closed at the exchange")
    finally:
        if flow.poll() is None:
            flow.kill()


def test_a_child_the_os_refuses_is_started_again_after_the_backoff(fx, monkeypatch, caplog):
    """The fork of a new child fails once (ENOMEM, EMFILE: what an OOM kill leaves
    behind): the hub logs it and starts one at the next try."""
    import gridflow.exchange.stream_process as sp

    hub = StreamProcess(cfg(fx), reconnect_max_s=0.2)
    try:
        feed = hub.watch(("ohlcv", "BTC/USDT:USDT", "1h"))
        wait_for(lambda: feed.status == "up", 20, "streaming")
        real, refused = sp.subprocess.Popen, []

        def popen(*a, **kw):
            if not refused:
                refused.append(1)
                raise OSError(12, "Cannot allocate memory")
            return real(*a, **kw)

        monkeypatch.setattr(sp.subprocess, "Popen", popen)
        first = hub.pid
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: hub.restarts == 1 and feed.status == "up", 20,
                 "a child after the refused one")
        assert refused == [1] and hub.pid != first and feed.generation == 1
        assert any("Cannot allocate memory" in r.getMessage() for r in caplog.records)
    finally:
        hub.close()
    assert gone(hub.pid)


def test_a_message_the_flow_cannot_read_or_apply_is_skipped_and_counts_as_a_reconnect(fx):
    """A frame that does not unpickle is skipped (the stream goes on); a push that cannot
    be applied moves its feed's generation on, so the partition catches up by REST."""
    import pickle

    hub = StreamProcess(cfg(fx))
    try:
        feed = hub.watch(("ohlcv", "BTC/USDT:USDT", "1h"))
        wait_for(lambda: feed.status == "up", 20, "streaming")
        gen = feed.generation
        hub._one(b"not a pickle")
        assert feed.status == "up" and feed.generation == gen

        def broken(item):
            raise ValueError("cannot apply")

        feed._push = broken
        hub._one(pickle.dumps(("push", feed.key, [[1, 2, 3, 4, 5, 6]])))
        assert feed.status == "up" and feed.generation == gen + 1
    finally:
        hub.close()


def test_the_backoff_has_a_cap_and_never_overflows():
    from gridflow.exchange.streams import backoff

    assert [backoff(k, 5.0) for k in (1, 2, 3)] == [0.1, 0.2, 0.4]
    assert backoff(7, 5.0) == 5.0 and backoff(5_000, 5.0) == 5.0  # hours of failures


def test_an_environment_variable_holding_a_key_is_kept_from_the_child():
    from gridflow.redaction import holds_secret as _holds_secret

    keys = ["k3y-0123456789", "short"]
    assert _holds_secret("k3y-0123456789", keys)
    assert _holds_secret('{"api_key": "k3y-0123456789"}\n', keys)  # inside a longer value
    assert _holds_secret("short", keys) and not _holds_secret("not so short", keys)
    assert not _holds_secret("/usr/bin", keys)
