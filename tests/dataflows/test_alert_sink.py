"""AlertSink in real Bytewax flows against real HTTP endpoints on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import pickle
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import apprise
import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource, run_main
from pydantic import SecretStr

from gridflow.chunks import JournalBatch
from gridflow.dataflows.alert_sink import AlertSink, stats, with_timeouts
from gridflow.events import JournalEvent
from gridflow.operators.alerts import Alert, AlertThrottle, alerts_from_batch

T0 = 1_704_164_400_000
SECRET = "s3cr3tT0kenXYZ"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        srv = self.server
        if srv.delay_s and srv.release.wait(srv.delay_s):
            return  # test over: hang up without answering
        srv.posts.append({"path": self.path, "type": self.headers.get("Content-Type"),
                          "json": json.loads(body)})
        try:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
        except OSError:  # the client timed out and left
            pass

    def log_message(self, format: str, *args) -> None:  # keep the test output quiet
        pass


@contextmanager
def http_server(delay_s: float = 0.0) -> Iterator[ThreadingHTTPServer]:
    """A real HTTP server on 127.0.0.1 recording POSTed JSON; ``delay_s`` before answering."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.posts, srv.delay_s, srv.release = [], delay_s, threading.Event()
    threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield srv
    finally:
        srv.release.set()
        srv.shutdown()
        srv.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alert(i: int, severity: str = "warning") -> Alert:
    return Alert(alert_id=f"data_gap:X/USDT:{i}", kind="data_gap", symbol="X/USDT",
                 ts_ms=T0 + i, title=f"gap {i}", body=f"{i} candle(s) missing", severity=severity)


def run_flow(items: list, sink: AlertSink) -> float:
    """Run ``TestingSource(items) -> sink``; returns the wall time of ``run_main``, s."""
    flow = Dataflow("alert_sink_test")
    op.output("notify", op.input("in", flow, TestingSource(items)), sink)
    t = time.perf_counter()
    run_main(flow)
    return time.perf_counter() - t


def settle(sink: AlertSink, total: int, timeout_s: float = 10.0) -> dict[str, int]:
    """Wait until every alert is accounted for (sent, failed or dropped)."""
    deadline = time.monotonic() + timeout_s
    while sum(sink.stats().values()) < total and time.monotonic() < deadline:
        time.sleep(0.02)
    return sink.stats()


class TimedSink(AlertSink):
    """AlertSink recording the time the dataflow thread spends in ``write_batch``."""

    def build(self, step_id, worker_index, worker_count):
        part = super().build(step_id, worker_index, worker_count)
        inner, self.spent_s = part.write_batch, []

        def timed(items):
            t = time.perf_counter()
            inner(items)
            self.spent_s.append(time.perf_counter() - t)

        part.write_batch = timed
        return part


def test_real_http_endpoint_receives_every_alert_as_apprise_json():
    with http_server() as srv:
        sink = AlertSink([f"json://127.0.0.1:{srv.server_port}/hook"], timeout_s=5.0)
        items = [alert(0, "info"), alert(1, "warning"), alert(2, "critical")]
        run_flow(items, sink)  # close() drains the queue before returning
        assert sink.stats() == {"sent": 3, "failed": 0, "dropped": 0}
        assert [p["path"] for p in srv.posts] == ["/hook"] * 3
        assert all(p["type"].startswith("application/json") for p in srv.posts)
        got = [{k: p["json"][k] for k in ("version", "title", "message", "type")}
               for p in srv.posts]
        assert got == [
            {"version": "1.0", "title": a.title, "message": a.body, "type": t}
            for a, t in zip(items, ["info", "warning", "failure"], strict=True)
        ]


def test_journal_batches_to_throttled_alerts_to_http():
    """The wiring of :mod:`gridflow.operators.alerts`: batches -> alerts -> throttle -> sink."""

    def gap(ts):
        return JournalEvent(event_id=f"data_gap:BTC/USDT:{ts}", kind="data_gap",
                            reason="MISSING_CANDLES", ts_ms=ts, symbol="BTC/USDT",
                            detail={"from_ts_ms": ts - 3 * 3_600_000, "to_ts_ms": ts, "missing": 2})

    def throttle(state, alerts):
        state = state or AlertThrottle({"data_gap": 3_600_000}, default_ms=0)
        return state, state.admit(alerts)[0]

    batches = [JournalBatch(events=[gap(T0 + k * 60_000)]) for k in (0, 1, 61, 62)]
    with http_server() as srv:
        sink = AlertSink([f"json://127.0.0.1:{srv.server_port}/"])
        flow = Dataflow("alerts_pipeline")
        alerts = op.key_on("key", op.map("alerts", op.input("in", flow, TestingSource(batches)),
                                         alerts_from_batch), lambda _: "alerts")
        admitted = op.stateful_map("throttle", alerts, throttle)
        op.output("notify", op.flat_map("unkey", admitted, lambda kv: kv[1]), sink)
        run_main(flow)
        assert sink.stats()["sent"] == 2
        assert [p["json"]["title"] for p in srv.posts] == ["BTC/USDT data gap: 2 candle(s) missing"] * 2
        assert "2024-01-02T04:01:00Z" in srv.posts[1]["json"]["message"]


@pytest.mark.parametrize("target", ["closed_port", "slow_server"])
def test_unreachable_or_slow_endpoint_never_slows_the_flow(target):
    """200 alerts; delivery would take > 3 s (60 s at the 0.3 s timeout); flow < 1 s."""
    with http_server(delay_s=3.0) as srv:
        port = closed_port() if target == "closed_port" else srv.server_port
        sink = TimedSink([f"json://127.0.0.1:{port}/"], timeout_s=0.3)
        elapsed = run_flow([alert(i) for i in range(200)], sink)
        assert elapsed < 1.0
        assert sum(sink.spent_s) < 0.05  # the dataflow thread only enqueues
        s = settle(sink, 200)
        assert sum(s.values()) == 200 and s["sent"] == 0 and s["failed"] >= 1
        if target == "slow_server":  # at most a few timed-out attempts before close gave up
            assert s["failed"] <= 3 and s["dropped"] >= 197


def test_full_queue_drops_and_counts_without_blocking():
    with http_server(delay_s=3.0) as srv:
        sink = AlertSink([f"json://127.0.0.1:{srv.server_port}/"], timeout_s=0.3, queue_size=5)
        assert run_flow([alert(i) for i in range(200)], sink) < 1.0
        s = settle(sink, 200)
        assert sum(s.values()) == 200 and s["dropped"] >= 194 and s["sent"] == 0


def test_partition_exposes_counters_and_module_stats_sums_them():
    with http_server() as srv:
        sink = AlertSink([SecretStr(f"json://127.0.0.1:{srv.server_port}/")], queue_size=10)
        part = sink.build("notify", 0, 1)
        part.write_batch([alert(i) for i in range(4)])
        part.close()
        assert (part.sent, part.failed, part.dropped) == (4, 0, 0)
        assert len(srv.posts) == 4
        assert stats(sink) == {"sent": 4, "failed": 0, "dropped": 0}
        assert stats()["sent"] >= 4  # all sinks of the process
        with pytest.raises(TypeError, match="got tuple"):
            part.write_batch([("key", alert(9))])


def test_url_secrets_never_reach_the_logs(caplog):
    caplog.set_level(logging.DEBUG)  # Apprise and urllib3 log request URLs at DEBUG
    port = closed_port()
    url = f"json://user:pa55w0rdQ@127.0.0.1:{port}/hooks/{SECRET}"
    sink = AlertSink([url], timeout_s=0.3)
    run_flow([alert(i) for i in range(5)], sink)
    assert settle(sink, 5)["failed"] >= 1
    with pytest.raises(ValueError, match=r"URL #1 \(scheme 'nosuchscheme'\)") as err:
        AlertSink([url, f"nosuchscheme://{SECRET}2/x"])
    assert SECRET not in str(err.value)
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    for leak in (url, SECRET, "pa55w0rdQ", f"127.0.0.1:{port}", "/hooks/"):
        assert leak not in text, leak
    assert any(r.name == "apprise" and r.levelno == logging.WARNING for r in caplog.records)
    failures = [r for r in caplog.records if r.name == "gridflow.dataflows.alert_sink"]
    assert failures and "not delivered" in failures[0].getMessage()


def test_sink_hides_urls_pickles_and_validates_arguments():
    sink = AlertSink([f"json://127.0.0.1:1/{SECRET}"], timeout_s=2.0, queue_size=7)
    assert SECRET not in repr(sink) and "1 hidden" in repr(sink)
    clone = pickle.loads(pickle.dumps(sink))
    assert clone.sink_id == sink.sink_id and clone.queue_size == 7
    for bad in ([], "json://127.0.0.1/"):
        with pytest.raises(ValueError, match="non-empty list"):
            AlertSink(bad)
    with pytest.raises(ValueError, match="timeout_s"):
        AlertSink(["json://127.0.0.1/"], timeout_s=0)
    with pytest.raises(ValueError, match="queue_size"):
        AlertSink(["json://127.0.0.1/"], queue_size=0)


def test_apprise_timeouts_are_bounded_by_timeout_s():
    assert with_timeouts("json://h/", 0.5) == "json://h/?cto=0.5&rto=0.5"
    assert with_timeouts("json://h/?cto=2&-x=1", 0.5) == "json://h/?cto=2&-x=1&rto=0.5"
    plugin = apprise.Apprise.instantiate(with_timeouts("json://h/?cto=2", 0.5))
    assert (plugin.socket_connect_timeout, plugin.socket_read_timeout) == (2.0, 0.5)
