"""The one redactor: credentials out of every text gridflow logs, journals or prints.

:func:`redact` masks literal secrets (API keys and secrets, the pieces of Apprise URLs)
and the value of every credential key (``signature``, ``apiKey``, ``secret``,
``X-MBX-APIKEY``, ``listenKey``, ``password``, ``token``; as ``key=value``,
``key: value`` or ``"key":"value"``) with ``***``. :class:`SecretFilter` is the logging
filter form: attached to a logger or handler, it passes each record's message and
traceback through :func:`redact` before any handler formats it. The exchange client
(ccxt's debug logs), the order gateway and polled sources (error texts journaled as
broker outcomes and source errors) and the alert sink (Apprise and its HTTP stack) all
use this module.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

REDACTED = "***"
#: Shortest literal secret :func:`redact` masks by default (Binance keys and secrets are
#: 64 characters; masking shorter literals would garble every message).
MIN_SECRET_LEN = 8
#: Query / form / JSON keys whose values are credentials or derived from them.
SECRET_KEYS = ("signature", "apikey", "api_key", "api-key", "secret", "x-mbx-apikey",
               "listenkey", "password", "token")
_KV = re.compile(
    r"(?i)(?P<k>\b(?:" + "|".join(re.escape(k) for k in SECRET_KEYS) + r"))"
    r"(?P<sep>\"?\s*[=:]\s*\"?)(?P<v>[^&\s\"',;}]+)"
)


def _literals(secrets: Iterable[str | None], min_len: int, ignore_case: bool
              ) -> re.Pattern[str] | None:
    keep = sorted({s for s in secrets if s and len(s) >= min_len}, key=len, reverse=True)
    if not keep:
        return None
    return re.compile("|".join(map(re.escape, keep)), re.IGNORECASE if ignore_case else 0)


def redact(text: str, secrets: Iterable[str | None] = (), min_len: int = MIN_SECRET_LEN,
           ignore_case: bool = False) -> str:
    """Remove credentials from a text.

    Parameters
    ----------
    text : str
        Typically ``str(exc)`` of a ccxt error (it may hold the request URL with its
        ``signature=`` query value, or an echoed request body) or a log message.
    secrets : iterable of str
        Literal values to mask wherever they appear, longest first; empty and None
        entries and values shorter than ``min_len`` are ignored.
    min_len : int
        Shortest literal masked (:data:`MIN_SECRET_LEN`; the alert sink masks URL
        pieces from 4 characters).
    ignore_case : bool
        Match the literals case-insensitively (host names in URLs).

    Returns
    -------
    str
        ``text`` with each secret and the value of every key of :data:`SECRET_KEYS`
        replaced by ``***``.
    """
    return _mask(str(text), _literals(secrets, min_len, ignore_case))


def _mask(text: str, literals: re.Pattern[str] | None) -> str:
    if literals is not None:
        text = literals.sub(REDACTED, text)
    return _KV.sub(lambda m: f"{m.group('k')}{m.group('sep')}{REDACTED}", text)


class SecretFilter(logging.Filter):
    """Logging filter passing every record through :func:`redact`: its message (with its
    arguments merged) and its traceback, which is rendered and masked too (the record
    keeps no ``exc_info``). Secrets can be added later (:meth:`add`); thread-safe.

    Parameters
    ----------
    secrets : iterable of str
        Literal secrets to mask (see :func:`redact`).
    min_len, ignore_case
        As in :func:`redact`.
    """

    def __init__(self, secrets: Iterable[str | None] = (), min_len: int = MIN_SECRET_LEN,
                 ignore_case: bool = False) -> None:
        super().__init__()
        self.min_len, self.ignore_case = min_len, ignore_case
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()
        self.add(secrets)

    def add(self, secrets: Iterable[str | None]) -> None:
        """Mask ``secrets`` from now on as well."""
        with self._lock:
            self._secrets |= {s for s in secrets if s and len(s) >= self.min_len}
            self._pattern = _literals(self._secrets, self.min_len, self.ignore_case)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record must not leak its args
            msg = str(record.msg)
        if record.exc_info:
            msg += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = None
        clean = _mask(msg, self._pattern)
        if clean != msg or record.args:
            record.msg, record.args = clean, None
        return True


__all__ = ["MIN_SECRET_LEN", "REDACTED", "SECRET_KEYS", "SecretFilter", "redact"]
