"""Retrying journal writes while another writer holds the database lock.

SQLite lets one writer at a time: a second one waits in SQLite's busy handler
(``busy_timeout``, :func:`gridflow.journal.schema.open_store`), but some conflicts are
reported at once ("database is locked" when a read transaction cannot be upgraded to a
write, a lock held longer than the busy timeout) and PostgreSQL reports lock timeouts
the same way. :class:`LockRetry` retries such a write with exponential backoff and full
jitter, bounded in time, counted, and logged once per episode (a warning at the first
retry of a call); any other error raises at once.

The loop is tenacity's (as in :mod:`gridflow.exchange.retry`, the house retry loop).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import tenacity
from sqlalchemy.exc import OperationalError

__all__ = ["LOCK_MARKERS", "LockRetry", "is_locked"]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Lower-case texts of a driver error that mean "another writer holds the lock".
LOCK_MARKERS = ("database is locked", "database table is locked", "busy", "lock timeout",
                "could not obtain lock")


def is_locked(exc: BaseException) -> bool:
    """Whether ``exc`` is a SQLAlchemy ``OperationalError`` saying the database (or a
    table) is locked or busy."""
    if not isinstance(exc, OperationalError):
        return False
    text = str(exc.orig if exc.orig is not None else exc).lower()
    return any(m in text for m in LOCK_MARKERS)


class LockRetry:
    """Call a journal write again while the database is locked.

    Parameters
    ----------
    what : str
        Names the writer in the log (``"journal sink"``).
    max_s : float
        Give up (re-raise the lock error) once this many seconds passed since the first
        attempt; an attempt itself may wait up to SQLite's busy timeout.
    first_s, cap_s : float
        Wait before retry ``k`` (1-based) is uniform in
        ``[0, min(cap_s, first_s * 2**(k-1))]`` seconds (tenacity's
        ``wait_random_exponential``: exponential backoff with full jitter).
    sleep : callable
        ``sleep(seconds)`` between attempts; injectable for tests.

    Attributes
    ----------
    retries : int
        Retries made so far (over all calls).
    episodes : int
        Calls that needed at least one retry.
    """

    def __init__(self, what: str, max_s: float = 30.0, first_s: float = 0.02,
                 cap_s: float = 2.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.what = what
        self.max_s = float(max_s)
        self.first_s = float(first_s)
        self.cap_s = float(cap_s)
        self.sleep = sleep
        self.retries = 0
        self.episodes = 0

    def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)``, retried while :func:`is_locked` says so.

        Returns
        -------
        Any
            What the first successful call returned.

        Raises
        ------
        BaseException
            The error of ``fn`` itself: at once when it is not a lock error, else the
            last lock error once ``max_s`` seconds passed.
        """
        t0 = time.monotonic()
        retried = 0

        def before_sleep(state: tenacity.RetryCallState) -> None:
            nonlocal retried
            retried += 1
            self.retries += 1
            if retried == 1:
                self.episodes += 1
                log.warning("%s: database locked (%s); retrying with backoff for up to %.0f s",
                            self.what, state.outcome.exception() if state.outcome else "?",
                            self.max_s)

        out = tenacity.Retrying(
            stop=tenacity.stop_after_delay(self.max_s),
            wait=tenacity.wait_random_exponential(multiplier=self.first_s, max=self.cap_s),
            retry=tenacity.retry_if_exception(is_locked),
            before_sleep=before_sleep, sleep=self.sleep, reraise=True,
        )(fn, *args, **kwargs)
        if retried:
            self._log_cleared(retried, time.monotonic() - t0)
        return out

    def _log_cleared(self, retried: int, waited_s: float) -> None:
        log.info("%s: database lock cleared after %d retries in %.1f s",
                 self.what, retried, waited_s)

    def note(self, retried: int, waited_s: float, cleared: bool) -> None:
        """Count and log retries made elsewhere with this bound (the journal writer
        process retries in the child with :attr:`max_s`, :attr:`first_s`, :attr:`cap_s`
        and :data:`LOCK_MARKERS`, and reports them after the write): one episode, a
        warning, and whether the lock cleared."""
        if retried <= 0:
            return
        self.retries += retried
        self.episodes += 1
        log.warning("%s: database locked; retried with backoff for up to %.0f s",
                    self.what, self.max_s)
        if cleared:
            self._log_cleared(retried, waited_s)
