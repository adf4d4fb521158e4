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

The daily report
----------------
Given the journal (``journal=(db_url, run_id)``), the sink also sends the daily report
when it has delivered a ``daily_heartbeat`` alert: the report of the UTC day named by
the alert's ``report_day_ms`` (the day before the heartbeat), once per day and sink
(every account journals its own daily heartbeat; the report covers the run). It is
built and sent by another process, ``python -m`` :data:`DAILY_REPORT_MODULE`
(:mod:`gridflow.control.daily_notice`), started from the delivery thread and waited
for on a thread of its own: building it reads the whole run from the journal, which
must not hold this process's interpreter lock while the flow trades, and the report
lives in a layer above the flows. The request (journal URL, Apprise URLs) goes to it
on stdin, never on its command line. A day without journal rows (the run's first)
gets a short "no data" notice instead. Outcomes are counted (:meth:`AlertSink.report_stats`).
"""

from __future__ import annotations

import json
import logging
import math
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

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


#: Module run with ``python -m`` to build and send one daily report (request on stdin).
DAILY_REPORT_MODULE = "gridflow.control.daily_notice"
#: Alert kind whose delivery triggers the daily report.
DAILY_KIND = "daily_heartbeat"


class _DailyReports:
    """The daily reports of one sink: one child process per UTC day, each waited for
    on its own daemon thread (see the module doc).

    ``db_url`` and ``urls`` are secrets (never logged); ``timeout_s`` bounds each
    child (wall s, then it is killed and counted failed); ``apprise_timeout_s`` is the
    child's connect / read timeout per target.
    """

    def __init__(self, db_url: SecretStr, run_id: str, urls: Sequence[SecretStr],
                 apprise_timeout_s: float, timeout_s: float) -> None:
        self._db_url, self._run_id, self._urls = db_url, run_id, tuple(urls)
        self._apprise_timeout_s, self.timeout_s = apprise_timeout_s, timeout_s
        self._lock = threading.Lock()
        self._days: set[str] = set()
        self._threads: list[threading.Thread] = []
        self.counts = {"sent": 0, "no_data": 0, "failed": 0}

    def _count(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1

    def request(self, alert: Alert) -> str | None:
        """Start the report of ``alert.detail["report_day_ms"]``'s UTC day unless this
        sink started it already. Returns the day (``YYYY-MM-DD``) started, else None. A
        missing or bad ``report_day_ms`` is logged and counted ``failed``."""
        day_ms = alert.detail.get("report_day_ms")
        if isinstance(day_ms, bool) or not isinstance(day_ms, int) or day_ms < 0:
            self._count("failed")
            log.warning("daily heartbeat %s without a valid report_day_ms (%r): no report",
                        alert.alert_id, day_ms)
            return None
        day = datetime.fromtimestamp(day_ms / 1000, UTC).date().isoformat()
        with self._lock:
            if day in self._days:
                return None
            self._days.add(day)
            t = threading.Thread(target=self._run, args=(day,), daemon=True,
                                 name=f"gridflow-daily-report-{day}")
            self._threads.append(t)
        t.start()
        return day

    def _run(self, day: str) -> None:
        request = json.dumps({
            "db_url": self._db_url.get_secret_value(), "run_id": self._run_id, "day": day,
            "urls": [u.get_secret_value() for u in self._urls],
            "timeout_s": self._apprise_timeout_s})
        try:
            done = subprocess.run([sys.executable, "-m", DAILY_REPORT_MODULE], input=request,
                                  stdout=subprocess.PIPE, text=True, timeout=self.timeout_s,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            self._count("failed")
            log.warning("daily report %s of run %s not sent (%s)", day, self._run_id,
                        type(e).__name__)
            return
        outcome = (done.stdout or "").strip().splitlines()[-1:] or [""]
        if done.returncode == 0 and outcome[0] in ("report", "no_data"):
            self._count("sent" if outcome[0] == "report" else "no_data")
            log.info("daily report %s of run %s sent (%s)", day, self._run_id, outcome[0])
            return
        self._count("failed")
        log.warning("daily report %s of run %s not delivered (exit %d)", day, self._run_id,
                    done.returncode)

    def join(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` in all for the reports started so far (tests)."""
        end = time.monotonic() + timeout_s
        for t in list(self._threads):
            t.join(max(0.0, end - time.monotonic()))


_REPORTS: dict[str, _DailyReports] = {}


class _AlertPartition(StatelessSinkPartition[Alert]):
    """Queue writer on the dataflow thread, Apprise sender on a daemon thread."""

    def __init__(self, notifier: apprise.Apprise, n_targets: int, timeout_s: float,
                 queue_size: int, counters: _Counters, name: str,
                 reports: _DailyReports | None = None) -> None:
        self._notifier = notifier
        self._reports = reports
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
                continue
            self._deliver(alert)
            if alert.kind == DAILY_KIND and self._reports is not None:
                self._reports.request(alert)  # starts a child process, never waits

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
    journal : (str, str), optional
        ``(db_url, run_id)`` of the run: with it, a delivered ``daily_heartbeat`` alert
        also sends the daily report of its ``report_day_ms`` day (module doc).
    report_timeout_s : float
        Wall seconds one daily report may take before its process is killed.

    Notes
    -----
    At-most-once: alerts queued when the process dies are lost (the journal keeps
    the facts). Counters: :func:`stats`, :meth:`stats`, or the partition's
    ``sent``/``failed``/``dropped``.
    """

    def __init__(self, urls: Sequence[str | SecretStr], timeout_s: float = 5.0,
                 queue_size: int = 1000, journal: tuple[str, str] | None = None,
                 report_timeout_s: float = 300.0) -> None:
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
        if not (math.isfinite(report_timeout_s) and report_timeout_s > 0):
            raise ValueError(f"report_timeout_s must be finite and > 0 s, "
                             f"got {report_timeout_s!r}")
        self.report_timeout_s = float(report_timeout_s)
        self._journal = None
        if journal is not None:
            db_url, run_id = journal
            if not db_url or not run_id:
                raise ValueError("journal must be (db_url, run_id), both non-empty")
            self._journal = (SecretStr(str(db_url)), str(run_id))
            try:
                register_secrets([urlsplit(str(db_url)).password])
            except ValueError:  # not a URL: the journal refuses it
                pass

    def __repr__(self) -> str:
        journal = ", journal=<hidden>" if self._journal is not None else ""
        return (f"AlertSink(urls=<{len(self._urls)} hidden>, timeout_s={self.timeout_s}, "
                f"queue_size={self.queue_size}{journal})")

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _AlertPartition:
        """One Apprise instance and one delivery thread for this worker."""
        counters = _Counters()
        with _REGISTRY_LOCK:
            _REGISTRY.setdefault(self.sink_id, {})[worker_index] = counters
        return _AlertPartition(
            _build_apprise(self._urls, self.timeout_s), len(self._urls), self.timeout_s,
            self.queue_size, counters, name=f"gridflow-alerts-{worker_index}",
            reports=self._daily_reports(),
        )

    def _daily_reports(self) -> _DailyReports | None:
        """The sink's one report sender (shared by its partitions: one report a day)."""
        if self._journal is None:
            return None
        with _REGISTRY_LOCK:
            if self.sink_id not in _REPORTS:
                _REPORTS[self.sink_id] = _DailyReports(
                    self._journal[0], self._journal[1], self._urls, self.timeout_s,
                    self.report_timeout_s)
            return _REPORTS[self.sink_id]

    def stats(self) -> dict[str, int]:
        """``sent``/``failed``/``dropped`` summed over this sink's partitions."""
        return stats(self)

    def report_stats(self, wait_s: float = 0.0) -> dict[str, int]:
        """Daily reports of this sink: ``sent`` (a report delivered), ``no_data`` (the
        notice of a day without rows delivered), ``failed``; after waiting up to
        ``wait_s`` for the ones running. All 0 without ``journal``."""
        with _REGISTRY_LOCK:
            rep = _REPORTS.get(self.sink_id)
        if rep is None:
            return {"sent": 0, "no_data": 0, "failed": 0}
        if wait_s > 0:
            rep.join(wait_s)
        with rep._lock:
            return dict(rep.counts)
