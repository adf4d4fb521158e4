"""Retry policy of exchange requests: which ccxt errors are retried, the backoff delays,
the one retry loop (:func:`retry_call`), and error texts with their secrets masked
(:func:`error_text`, through the one redactor :mod:`gridflow.redaction`).

Only transport-level failures are retried (timeouts, dropped connections, 5xx, rate
limits); an exchange that answered "no" (invalid order, insufficient funds, bad keys)
answers "no" again, so those are never retried.

The loop is tenacity's (``tenacity.Retrying``), not a hand-written one. Chosen because
nothing here is a hot path: every retried call is an HTTP request (milliseconds to
seconds), and tenacity adds some 20 us to a call that succeeds at once. Every knob the
order gateway needs is an argument of ``Retrying``: ``stop_after_attempt`` for
``RetryConfig.max_attempts``, a ``wait`` that reads the full-jitter delays of
:func:`backoff_delays` (drawn up front from the caller's seeded ``random.Random``:
tenacity's own jittered waits use the global RNG), ``retry_if_exception`` with
:func:`is_retryable`, an injected ``sleep``, and ``reraise`` so callers see the ccxt
error itself. What a round does between requests (the lookup by client order id after
an unknown outcome, counting attempts and faults) stays in the callable it retries
(:class:`gridflow.exchange.gateway.OrderGateway`).

Polled sources (candles, account state) are never retried inside a call: a failed
poll returns and the source wakes again after :func:`backoff_s`, Bytewax doing the
waiting. The one retry outside the exchange, registering a sweep while other processes
create the same SQLite tables (:func:`gridflow.dataflows.sweep.register`), uses tenacity
directly with its own fixed waits (no ccxt import in sweep processes).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

import ccxt
import tenacity

from gridflow.config.live import RetryConfig
from gridflow.redaction import MIN_SECRET_LEN, REDACTED, error_text, redact

#: Binance codes / texts meaning "this client id was used already".
_DUPLICATE_MARKERS = ("-4116", "duplicate")
#: Binance codes / texts meaning "no such (open) order".
_UNKNOWN_ORDER_MARKERS = ("-2011", "-2013", "unknown order", "order does not exist")
MAX_BACKOFF_S = 5.0
"""Upper bound of a polled source's error backoff, s (raised to ``poll_s`` when polling
is slower): after an outage the catch-up starts within this long of the exchange being
back."""
RATE_LIMIT_BACKOFF_S = 60.0
"""Upper bound of the backoff after the venue said "too many requests"
(``RateLimitExceeded``, ``DDoSProtection``): polling on at the outage pace would get the
IP banned."""

T = TypeVar("T")


def backoff_delays(cfg: RetryConfig, rng: random.Random | None = None) -> list[float]:
    """Seconds to wait before each retry, AWS "full jitter".

    Parameters
    ----------
    cfg : RetryConfig
        ``max_attempts`` requests in all, so ``max_attempts - 1`` retries.
    rng : random.Random, optional
        Source of the jitter (seeded in tests); a fresh ``random.Random()`` if None.

    Returns
    -------
    list[float]
        ``delays[k-1]`` (seconds) precedes retry ``k`` (1-based) and is uniform in
        ``[0, min(cfg.max_delay_s, cfg.base_delay_s * 2**(k-1))]``.
    """
    rng = rng if rng is not None else random.Random()
    out = []
    for k in range(1, cfg.max_attempts):
        cap = min(cfg.max_delay_s, cfg.base_delay_s * 2.0 ** (k - 1))
        out.append(rng.uniform(0.0, cap) if cap > 0 else 0.0)
    return out


def retry_call(fn: Callable[[], T], cfg: RetryConfig, *,
               sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None,
               retryable: Callable[[BaseException], bool] | None = None,
               on_retry: Callable[[BaseException, float], None] | None = None) -> T:
    """Call ``fn()`` until it returns, up to ``cfg.max_attempts`` times: the retry loop
    of every exchange request (tenacity).

    Parameters
    ----------
    fn : callable
        No arguments; one attempt. Whatever it returns is returned.
    cfg : RetryConfig
        ``max_attempts`` calls in all; the waits between them are
        :func:`backoff_delays` ``(cfg, rng)``, drawn once before the first call.
    sleep : callable
        ``sleep(seconds)`` between attempts; injectable for tests.
    rng : random.Random, optional
        Jitter source (a fresh one if None).
    retryable : callable, optional
        ``retryable(exc)``: whether an exception of ``fn`` is retried;
        :func:`is_retryable` if None.
    on_retry : callable, optional
        ``on_retry(exc, seconds)`` before each wait (to log it, redacted).

    Returns
    -------
    Any
        The value of the first call of ``fn`` that did not raise.

    Raises
    ------
    BaseException
        The exception of ``fn`` itself, unwrapped: at once when it is not retryable,
        else the last one once ``max_attempts`` calls failed.
    """
    delays = backoff_delays(cfg, rng)

    def wait(state: tenacity.RetryCallState) -> float:
        # tenacity 9 also asks after the final attempt (8.2 does not): 0 past the end
        k = state.attempt_number - 1
        return delays[k] if k < len(delays) else 0.0

    def before_sleep(state: tenacity.RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None and state.next_action is not None:
            on_retry(state.outcome.exception(), state.next_action.sleep)

    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(cfg.max_attempts), wait=wait,
        retry=tenacity.retry_if_exception(retryable or is_retryable), sleep=sleep,
        before_sleep=before_sleep, reraise=True)(fn)


def backoff_s(poll_s: float, errors_in_row: int, cap_s: float = MAX_BACKOFF_S) -> float:
    """Wait of a polled source after ``errors_in_row`` (>= 1) failed polls in a row:
    ``min(poll_s * 2**k, max(cap_s, poll_s))``, in seconds (no jitter, no limit on the
    polls: the source keeps polling at this pace until one succeeds)."""
    k = min(max(errors_in_row, 0), 30)
    return min(poll_s * 2.0**k, max(cap_s, poll_s))


def backoff_cap_s(exc: BaseException | None) -> float:
    """:data:`RATE_LIMIT_BACKOFF_S` after a rate-limit error, else :data:`MAX_BACKOFF_S`."""
    limited = isinstance(exc, (ccxt.RateLimitExceeded, ccxt.DDoSProtection))
    return RATE_LIMIT_BACKOFF_S if limited else MAX_BACKOFF_S


def is_retryable(exc: BaseException) -> bool:
    """True when the request may be sent again after a backoff.

    Retryable: every ccxt ``NetworkError`` (``RequestTimeout``, ``ExchangeNotAvailable``,
    a dropped connection raised as plain ``NetworkError``, ``RateLimitExceeded``,
    ``DDoSProtection``, ``InvalidNonce``), and a bare ``OperationFailed`` /
    ``BadResponse`` (Binance ``-1000``/``-1001`` "internal error, try again" and an
    unparsable 5xx body: transport failures that ccxt does not class as
    ``NetworkError``). Never retryable: any ``ExchangeError`` (``InvalidOrder``,
    ``InsufficientFunds``, ``OrderNotFound``, ``AuthenticationError`` ...) and any
    non-ccxt exception.
    """
    if isinstance(exc, ccxt.ExchangeError):
        return False
    if isinstance(exc, ccxt.NetworkError):
        return True
    return type(exc) in (ccxt.OperationFailed, ccxt.BadResponse, ccxt.NullResponse)


def is_rate_limit(exc: BaseException) -> bool:
    """True for ``RateLimitExceeded`` / ``DDoSProtection``: the request was refused
    before any processing, so its outcome is known (nothing happened)."""
    return isinstance(exc, (ccxt.RateLimitExceeded, ccxt.DDoSProtection))


def outcome_unknown(exc: BaseException) -> bool:
    """True when a retryable failure may have reached the exchange and been executed
    (timeouts, dropped connections, 5xx): the order must be looked up before a retry."""
    return is_retryable(exc) and not is_rate_limit(exc)


def is_duplicate_error(exc: BaseException) -> bool:
    """True when the exchange refused an order because its client id was used before
    (ccxt ``DuplicateOrderId``, Binance ``-4116``, or "duplicate" in the message)."""
    if isinstance(exc, getattr(ccxt, "DuplicateOrderId", ())):
        return True
    if not isinstance(exc, ccxt.ExchangeError):
        return False
    msg = str(exc).lower()
    return any(m in msg for m in _DUPLICATE_MARKERS)


def is_unknown_order_error(exc: BaseException) -> bool:
    """True for "no such order": ccxt ``OrderNotFound`` or Binance ``-2011``/``-2013``."""
    if isinstance(exc, ccxt.OrderNotFound):
        return True
    if not isinstance(exc, ccxt.ExchangeError):
        return False
    msg = str(exc).lower()
    return any(m in msg for m in _UNKNOWN_ORDER_MARKERS)


__all__ = ["MAX_BACKOFF_S", "RATE_LIMIT_BACKOFF_S", "backoff_cap_s", "MIN_SECRET_LEN", "REDACTED", "backoff_delays", "backoff_s",
           "error_text", "is_duplicate_error", "is_rate_limit", "is_retryable", "is_unknown_order_error",
           "outcome_unknown", "redact", "retry_call"]
