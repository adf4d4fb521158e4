"""Retry policy of exchange requests: which ccxt errors are retried, the backoff delays,
and the redaction of secrets from error texts.

Only transport-level failures are retried (timeouts, dropped connections, 5xx, rate
limits); an exchange that answered "no" (invalid order, insufficient funds, bad keys)
answers "no" again, so those are never retried.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable

import ccxt

from gridflow.config.live import RetryConfig

#: Query / form / JSON keys whose values are credentials or derived from them.
_SECRET_KEYS = ("signature", "apikey", "api_key", "api-key", "secret", "x-mbx-apikey",
                "listenkey", "password", "token")
"""Keys whose values are masked wherever they appear: the one list, for every error text
gridflow logs or journals (broker outcomes, source errors)."""
_KV = re.compile(
    r"(?i)(?P<k>\b(?:" + "|".join(re.escape(k) for k in _SECRET_KEYS) + r"))"
    r"(?P<sep>\"?\s*[=:]\s*\"?)(?P<v>[^&\s\"',;}]+)"
)
REDACTED = "***"
#: Binance codes / texts meaning "this client id was used already".
_DUPLICATE_MARKERS = ("-4116", "duplicate")
#: Binance codes / texts meaning "no such (open) order".
_UNKNOWN_ORDER_MARKERS = ("-2011", "-2013", "unknown order", "order does not exist")


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


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Remove credentials from an error message.

    Parameters
    ----------
    text : str
        Typically ``str(exc)`` of a ccxt error: it may hold the request URL with its
        ``signature=`` query value, or an echoed request body.
    secrets : iterable of str
        Literal values to blank out wherever they appear (API key, secret); empty
        and None entries are ignored.

    Returns
    -------
    str
        ``text`` with each secret and the value of every ``signature`` / ``apiKey`` /
        ``secret`` / ``X-MBX-APIKEY`` (``key=value``, ``key: value``, ``"key":"value"``)
        replaced by ``***``.
    """
    out = str(text)
    for s in sorted((s for s in secrets if s), key=len, reverse=True):
        out = out.replace(s, REDACTED)
    return _KV.sub(lambda m: f"{m.group('k')}{m.group('sep')}{REDACTED}", out)


def error_text(exc: BaseException, secrets: Iterable[str | None] = ()) -> str:
    """``"ClassName: message"`` of an exception, redacted (see :func:`redact`)."""
    return redact(f"{type(exc).__name__}: {exc}", secrets)


__all__ = ["REDACTED", "backoff_delays", "error_text", "is_duplicate_error", "is_rate_limit",
           "is_retryable", "is_unknown_order_error", "outcome_unknown", "redact"]
