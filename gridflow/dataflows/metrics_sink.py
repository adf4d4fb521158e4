"""The metrics sink: a flow's journal stream into Prometheus metrics, served over HTTP.

:class:`MetricsSink` folds every item into a :class:`~gridflow.ops.flow_metrics.FlowMetrics`
(pure) and serves, on ``host:port`` (``live.ops.metrics_host`` / ``metrics_port``):

* ``GET /metrics``: the Prometheus text format (prometheus_client's WSGI app over the
  flow's private registry);
* ``GET /health``: ``200`` with ``{"status": "ok", ...}`` while every symbol has fresh
  candles and every exchange stream is trusted, ``503`` with ``{"status": "stale",
  "stale_data": [...], "stale_streams": [...]}`` naming what is not
  (:meth:`~gridflow.ops.flow_metrics.FlowMetrics.health`);
* anything else: ``404``.

The server runs on daemon threads of the process (``wsgiref``, one thread per request)
and stops with the sink partition.
"""

from __future__ import annotations

import json
import logging
import threading
from socketserver import ThreadingMixIn
from typing import Any, Callable, Iterable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from prometheus_client import make_wsgi_app

from gridflow.ops.flow_metrics import FlowMetrics

log = logging.getLogger(__name__)

METRICS_PART = "metrics"

__all__ = ["METRICS_PART", "MetricsServer", "MetricsSink", "metrics_app"]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        pass  # a scrape every few seconds is not worth a log line


def metrics_app(metrics: FlowMetrics) -> Callable:
    """The WSGI application of ``/metrics`` and ``/health`` over ``metrics``."""
    prom = make_wsgi_app(metrics.registry)

    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path == "/metrics":
            return prom(environ, start_response)
        if path == "/health":
            ok, body = metrics.health()
            start_response("200 OK" if ok else "503 Service Unavailable",
                           [("Content-Type", "application/json")])
            return [json.dumps(body).encode()]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: /metrics or /health\n"]

    return app


class MetricsServer:
    """``/metrics`` and ``/health`` of ``metrics`` on ``host:port``, on a daemon thread.

    Parameters
    ----------
    metrics : FlowMetrics
    host : str
    port : int
        TCP port; 0 takes a free one (see :attr:`port`).

    Raises
    ------
    RuntimeError
        The address cannot be bound (in use, not an address of this machine), naming it.
    """

    def __init__(self, metrics: FlowMetrics, host: str, port: int) -> None:
        try:
            self._httpd = make_server(host, int(port), metrics_app(metrics),
                                      server_class=_ThreadingServer,
                                      handler_class=_QuietHandler)
        except OSError as exc:
            raise RuntimeError(f"metrics endpoint {host}:{port} cannot listen: {exc}; "
                               "change live.ops.metrics_port / metrics_host") from None
        self.host = host
        self.port = int(self._httpd.server_port)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True,
                                        name="gridflow-metrics")
        self._thread.start()
        log.info("metrics on http://%s:%d/metrics, health on /health", host, self.port)

    def close(self) -> None:
        """Stop serving and free the port (idempotent)."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(timeout=5.0)
        self._httpd.server_close()


class _MetricsPartition(StatefulSinkPartition[Any, None]):
    """The single metrics partition: folds each batch, serves the endpoint."""

    def __init__(self, host: str, port: int) -> None:
        self.metrics = FlowMetrics()
        self.server = MetricsServer(self.metrics, host, port)

    def write_batch(self, values: list[Any]) -> None:
        for item in values:
            self.metrics.apply(item)

    def snapshot(self) -> None:
        return None

    def close(self) -> None:
        self.server.close()


class MetricsSink(FixedPartitionedSink[Any, None]):
    """Fold ``(key, item)`` items into Prometheus metrics served on ``host:port``.

    Parameters
    ----------
    host : str
        Listening address (``"127.0.0.1"``).
    port : int
        TCP port (1-65535).

    Notes
    -----
    Items: :class:`~gridflow.chunks.JournalBatch` (every batch the journal sink gets),
    :class:`~gridflow.events.OrderOutcome` and
    :class:`~gridflow.events.OutcomesReplayed` (the broker outcome stream, live mode);
    anything else is counted as a bad item. One partition, ``"metrics"``, so one worker
    owns the registry and the port; the routing key is ignored. ``snapshot`` returns
    None: metrics are of the process (counters restart at 0, which Prometheus expects),
    the journal is the record.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = int(port)

    def list_parts(self) -> list[str]:
        """The single partition, ``["metrics"]``."""
        return [METRICS_PART]

    def build_part(self, step_id: str, for_part: str,
                   resume_state: None) -> StatefulSinkPartition[Any, None]:
        """Start the endpoint (raises RuntimeError when the port cannot be bound)."""
        return _MetricsPartition(self.host, self.port)
