"""Deliver :class:`~gridflow.operators.alerts.Alert` items with Apprise, off the hot path.

:class:`AlertSink` is a Bytewax ``DynamicSink``: each worker's partition hands alerts
to its own daemon thread through a bounded queue with ``put_nowait`` and never waits
for the network. The thread sends them with one ``apprise.Apprise`` instance.

Secrets
-------
Apprise URLs carry tokens. This module never logs or prints them (targets are named
by position, exceptions by type), the sink's ``repr`` hides them, and a redaction
filter on the loggers that Apprise and its HTTP stack write to
(:data:`SCRUBBED_LOGGERS`) masks every piece of the URLs (host, user, password, path
segments, query values; 4+ characters, case-insensitive) with ``***`` before any
handler sees the record: Apprise logs target hosts on failure and request URLs at
DEBUG level. The filter is installed on first use and stays (it only masks).

Timeouts
--------
Apprise's per-URL global parameters ``cto`` (socket connect timeout, s) and ``rto``
(socket read timeout, s), both 4 s by default in Apprise, are set to ``timeout_s`` on
every URL that does not set them itself (``json://host/?cto=2`` keeps ``cto=2``); they
exist in Apprise 1.x and 2.x. An unresponsive target thus costs about ``cto`` or
``rto`` per alert (``rto`` bounds each socket read, not a trickling answer), plus any
rate limit the Apprise plugin imposes between messages (``request_rate_per_sec``).
All of it is spent on the delivery thread, never on the dataflow.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import uuid
from collections.abc import Sequence
from urllib.parse import parse_qsl

import apprise
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from pydantic import SecretStr

from gridflow.operators.alerts import Alert
from gridflow.redaction import SecretFilter, register_secrets, url_secrets

log = logging.getLogger(__name__)

#: Alert severity to Apprise notification type.
NOTIFY_TYPES = {"info": apprise.NotifyType.INFO, "warning": apprise.NotifyType.WARNING,
                "critical": apprise.NotifyType.FAILURE}
_POLL_S = 0.05  # how often an idle delivery thread checks for close(), s
#: Loggers that may write a target URL (filters apply to the emitting logger only).
SCRUBBED_LOGGERS = ("apprise", "urllib3.connectionpool", "urllib3.connection",
                    "urllib3.util.retry", "urllib3.poolmanager", "requests")


#: The one redactor's logging filter, with every piece of the Apprise URLs (4+ characters,
#: case-insensitive: host names).
_REDACTOR = SecretFilter(min_len=4, ignore_case=True)


def _protect(urls: Sequence[str]) -> None:
    """Every piece of each URL masked on :data:`SCRUBBED_LOGGERS`; its credential pieces
    (8+ characters, no host names) registered with the one redactor for every log."""
    for name in SCRUBBED_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)
    for u in urls:
        _REDACTOR.add(url_secrets(u))
        register_secrets(url_secrets(u, hosts=False))


def with_timeouts(url: str, timeout_s: float) -> str:
    """``url`` with Apprise ``cto``/``rto`` (seconds) set to ``timeout_s`` unless present."""
    query = url.partition("?")[2].partition("#")[0]
    present = {k.lower() for k, _ in parse_qsl(query, keep_blank_values=True)}
    extra = "&".join(f"{k}={timeout_s:g}" for k in ("cto", "rto") if k not in present)
    if not extra:
        return url
    base, hash_, fragment = url.partition("#")
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}{extra}{hash_}{fragment}"


def _build_apprise(urls: Sequence[SecretStr], timeout_s: float) -> apprise.Apprise:
    raw = [u.get_secret_value() for u in urls]
    timed = [with_timeouts(u, timeout_s) for u in raw]
    _protect(raw + timed)
    notifier = apprise.Apprise()
    for i, u in enumerate(timed):
        plugin = apprise.Apprise.instantiate(u)
        if plugin is None:
            scheme = u.partition("://")[0] if "://" in u else "?"
            raise ValueError(f"alert URL #{i} (scheme {scheme!r}) is not a valid Apprise URL")
        notifier.add(plugin)
    return notifier


class _Counters:
    """Thread-safe delivery counters of one partition."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values = {"sent": 0, "failed": 0, "dropped": 0}

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.values[name] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.values)


_REGISTRY: dict[str, dict[int, _Counters]] = {}
_REGISTRY_LOCK = threading.Lock()


def stats(sink: AlertSink | None = None) -> dict[str, int]:
    """Counters summed over the partitions of ``sink`` (all sinks if None).

    Returns
    -------
    dict
        ``sent`` (delivered to every target), ``failed`` (at least one target
        failed, or Apprise raised), ``dropped`` (queue full, or still queued when
        :meth:`_AlertPartition.close` gave up).
    """
    total = {"sent": 0, "failed": 0, "dropped": 0}
    with _REGISTRY_LOCK:
        groups = [_REGISTRY.get(sink.sink_id, {})] if sink is not None else _REGISTRY.values()
        parts = [c for g in groups for c in g.values()]
    for c in parts:
        for k, v in c.snapshot().items():
            total[k] += v
    return total


class _AlertPartition(StatelessSinkPartition[Alert]):
    """Queue writer on the dataflow thread, Apprise sender on a daemon thread."""

    def __init__(self, notifier: apprise.Apprise, n_targets: int, timeout_s: float,
                 queue_size: int, counters: _Counters, name: str) -> None:
        self._notifier = notifier
        self._n_targets = n_targets
        self._timeout_s = timeout_s
        self._counters = counters
        self._queue: queue.Queue[Alert] = queue.Queue(maxsize=queue_size)
        self._closing = threading.Event()
        self._abort = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    sent = property(lambda self: self._counters.snapshot()["sent"], doc="Alerts delivered.")
    failed = property(lambda self: self._counters.snapshot()["failed"], doc="Failed alerts.")
    dropped = property(lambda self: self._counters.snapshot()["dropped"], doc="Dropped alerts.")

    def write_batch(self, items: list[Alert]) -> None:
        """Enqueue without waiting; alerts that do not fit are dropped and counted.

        Raises
        ------
        TypeError
            If an item is not an :class:`Alert` (e.g. a keyed ``(key, alert)`` pair).
        """
        dropped = 0
        for alert in items:
            if not isinstance(alert, Alert):
                raise TypeError(f"AlertSink takes Alert items, got {type(alert).__name__}")
            try:
                self._queue.put_nowait(alert)
            except queue.Full:
                dropped += 1
        if dropped:
            self._counters.add("dropped", dropped)
            log.warning("alert queue full (%d): dropped %d alert(s)", self._queue.maxsize, dropped)

    def _run(self) -> None:
        while True:
            try:
                alert = self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                if self._closing.is_set():
                    return
                continue
            if self._abort.is_set():
                self._counters.add("dropped")
            else:
                self._deliver(alert)

    def _deliver(self, alert: Alert) -> None:
        error = ""
        try:
            ok = bool(self._notifier.notify(
                title=alert.title, body=alert.body, notify_type=NOTIFY_TYPES[alert.severity]
            ))
        except Exception as e:  # noqa: BLE001 - delivery must never kill the thread
            ok, error = False, f" ({type(e).__name__})"
        if ok:
            self._counters.add("sent")
            return
        self._counters.add("failed")
        log.warning(
            "alert %s [%s] not delivered to all of %d target(s)%s: %s",
            alert.alert_id, alert.severity, self._n_targets, error, alert.title,
        )

    def close(self) -> None:
        """Let the thread drain the queue for at most ``timeout_s``, then stop it.

        Alerts still queued at the deadline are counted as dropped; a delivery in
        flight finishes in the background (bounded by ``cto``/``rto``).
        """
        self._closing.set()
        self._thread.join(self._timeout_s)
        if not self._thread.is_alive():
            return
        self._abort.set()
        left = 0
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
            left += 1
        self._counters.add("dropped", left)
        log.warning("alert sink closed after %.1f s with %d alert(s) undelivered",
                    self._timeout_s, left)


class AlertSink(DynamicSink[Alert]):
    """Send alerts to Apprise targets without ever blocking the dataflow.

    Parameters
    ----------
    urls : sequence of str or SecretStr
        Apprise URLs (``tgram://...``, ``discord://...``, ``json://host:port/``).
        Validated here (``ValueError`` names the position and scheme, never the URL).
    timeout_s : float
        Apprise connect and read timeouts per target (``cto``/``rto``, s), and the
        longest :meth:`close` waits for the queue to drain, s.
    queue_size : int
        Alerts buffered per worker; beyond that, new alerts are dropped and counted.

    Notes
    -----
    At-most-once: alerts queued when the process dies are lost (the journal keeps
    the facts). Counters: :func:`stats`, :meth:`stats`, or the partition's
    ``sent``/``failed``/``dropped``.
    """

    def __init__(self, urls: Sequence[str | SecretStr], timeout_s: float = 5.0,
                 queue_size: int = 1000) -> None:
        if isinstance(urls, (str, SecretStr)) or not urls:
            raise ValueError("urls must be a non-empty list of Apprise URLs")
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"timeout_s must be finite and > 0 s, got {timeout_s!r}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size!r}")
        self._urls = tuple(u if isinstance(u, SecretStr) else SecretStr(u) for u in urls)
        self.timeout_s = float(timeout_s)
        self.queue_size = int(queue_size)
        self.sink_id = uuid.uuid4().hex
        _build_apprise(self._urls, self.timeout_s)  # fail fast, before the flow starts

    def __repr__(self) -> str:
        return (f"AlertSink(urls=<{len(self._urls)} hidden>, timeout_s={self.timeout_s}, "
                f"queue_size={self.queue_size})")

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _AlertPartition:
        """One Apprise instance and one delivery thread for this worker."""
        counters = _Counters()
        with _REGISTRY_LOCK:
            _REGISTRY.setdefault(self.sink_id, {})[worker_index] = counters
        return _AlertPartition(
            _build_apprise(self._urls, self.timeout_s), len(self._urls), self.timeout_s,
            self.queue_size, counters, name=f"gridflow-alerts-{worker_index}",
        )

    def stats(self) -> dict[str, int]:
        """``sent``/``failed``/``dropped`` summed over this sink's partitions."""
        return stats(self)
