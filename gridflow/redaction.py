"""The one redactor: credentials out of every text gridflow logs, journals or prints.

One list of what a secret looks like, used by every path:

* **credential keys** (:data:`SECRET_KEYS`): the value after ``signature``, ``apiKey``,
  ``X-MBX-APIKEY``, ``secret``, ``secretKey``, ``password``, ``passphrase``,
  ``listenKey``, ``token``, ``Authorization`` ... (any case, also with a prefix such as
  ``access_token``, ``client_secret``, ``db_password``), written ``key=value``,
  ``key: value``, ``"key": "value"`` or ``'key': 'value'``;
* **URL passwords**: ``scheme://user:PASSWORD@host`` (database URLs, Apprise URLs);
* **literal secrets**: values registered for the whole process
  (:func:`register_secrets`: the exchange's API key and secret, the credential pieces of
  the Apprise URLs and the database URL's password, from 8 characters), plus any a
  caller passes.

:func:`redact` masks them in a text with ``***``; :func:`error_text` is the
``"ClassName: message"`` of an exception, redacted; :class:`SecretFilter` is the logging
filter form (message, arguments, traceback, stack and ``extra`` fields of each record).
The exchange client (ccxt's debug logs), the order gateway and polled sources (error
texts journaled as broker outcomes and source errors), the alert sink (Apprise and its
HTTP stack) and every handler :mod:`gridflow.logs` installs use this module.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, unquote

REDACTED = "***"
#: Shortest literal secret :func:`redact` masks by default (Binance keys and secrets are
#: 64 characters; masking shorter literals would garble every message).
MIN_SECRET_LEN = 8
#: Query / form / JSON / header keys whose values are credentials or derived from them
#: (matched case-insensitively, also after a ``word_`` or ``word-`` prefix).
SECRET_KEYS = ("signature", "apikey", "api_key", "api-key", "apisecret", "secret",
               "secretkey", "secret_key", "x-mbx-apikey", "listenkey", "listen_key",
               "password", "passwd", "pwd", "passphrase", "token", "authorization",
               "access-key", "access-sign")  # the last two: Bitget's headers
_KEY = r"(?:[A-Za-z0-9]+[_-])*(?:" + "|".join(re.escape(k) for k in SECRET_KEYS) + r")"
_KEY_ONLY = re.compile(r"(?i)" + _KEY)
_KV = re.compile(
    r"(?i)(?<![A-Za-z0-9_-])(?P<k>" + _KEY + r")"
    r"(?P<sep>[\"']?\s*[=:]\s*[\"']?)"
    # after an opening quote the value runs to the closing one; else to a delimiter
    # (an ``Authorization`` value may start with its scheme: ``Bearer``, ``Basic``)
    r"(?P<v>(?<=\")[^\"\n]*|(?<=')[^'\n]*|(?:(?:bearer|basic|token)\s+)?[^&\s\"',;})\]]+)"
)
_URL_PASSWORD = re.compile(r"(?P<pre>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/:@]*:)[^\s/@]+(?=@)")


class _Literals:
    """A thread-safe set of literal secrets and its compiled pattern."""

    def __init__(self, min_len: int = MIN_SECRET_LEN, ignore_case: bool = False) -> None:
        self.min_len, self.ignore_case = min_len, ignore_case
        self.values: set[str] = set()
        self.pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def update(self, add: Iterable[str | None] = (), drop: Iterable[str | None] = ()) -> None:
        with self._lock:
            values = (self.values | {s for s in add if s and len(s) >= self.min_len}) \
                - set(drop)
            if values != self.values:
                self.values = values
                self.pattern = _literals(values, self.min_len, self.ignore_case)


_REGISTRY = _Literals()


def register_secrets(secrets: Iterable[str | None]) -> None:
    """Mask ``secrets`` (literal values, 8+ characters; shorter, empty and None entries
    are ignored) in every text :func:`redact` and :class:`SecretFilter` handle in this
    process from now on."""
    _REGISTRY.update(add=secrets)


def forget_secrets(secrets: Iterable[str | None]) -> None:
    """Stop masking literal ``secrets`` registered before (tests, rotated keys)."""
    _REGISTRY.update(drop=secrets)


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
        Literal values to mask wherever they appear, longest first, besides the ones
        registered (:func:`register_secrets`); empty and None entries and values
        shorter than ``min_len`` are ignored.
    min_len : int
        Shortest literal of ``secrets`` masked (:data:`MIN_SECRET_LEN`; the alert sink
        masks URL pieces from 4 characters).
    ignore_case : bool
        Match the literals of ``secrets`` case-insensitively (host names in URLs).

    Returns
    -------
    str
        ``text`` with each secret, every URL password and the value of every key of
        :data:`SECRET_KEYS` replaced by ``***``.
    """
    return _mask(str(text), _literals(secrets, min_len, ignore_case))


def _kv_sub(m: re.Match[str]) -> str:
    return f"{m.group('k')}{m.group('sep')}{REDACTED}"


def _mask(text: str, literals: re.Pattern[str] | None) -> str:
    if literals is not None:
        text = literals.sub(REDACTED, text)
    registered = _REGISTRY.pattern
    if registered is not None:
        text = registered.sub(REDACTED, text)
    text = _URL_PASSWORD.sub(lambda m: m.group("pre") + REDACTED, text)
    return _KV.sub(_kv_sub, text)


def holds_secret(value: str, secrets: Iterable[str | None]) -> bool:
    """``value`` (an environment variable's, say) is or contains one of ``secrets`` (those
    of :data:`MIN_SECRET_LEN` characters and more are looked for inside longer values
    too): such a variable is left out of a child process's environment."""
    return any(s and (value == s or (len(s) >= MIN_SECRET_LEN and s in value))
               for s in secrets)


def is_secret_key(name: object) -> bool:
    """True when ``name`` (a dict key, a log record's ``extra`` field) is a credential
    key of :data:`SECRET_KEYS` (``"api_key"``, ``"X-MBX-APIKEY"``, ``"db_password"``)."""
    return isinstance(name, str) and _KEY_ONLY.fullmatch(name) is not None


def error_text(exc: BaseException, secrets: Iterable[str | None] = (),
               limit: int | None = None) -> str:
    """``"ClassName: message"`` of an exception, redacted (:func:`redact`), cut to
    ``limit`` characters (ending in ``...``) when given."""
    text = redact(f"{type(exc).__name__}: {exc}", secrets)
    if limit is not None and len(text) > limit:
        text = text[:max(limit - 3, 0)] + "..."
    return text


_HOST = re.compile(r"(?i)(?:localhost|[a-z0-9-]+(?:\.[a-z0-9-]+)+|\[[0-9a-f:.]+\])(?::\d{1,5})?"
                   r"|\d{1,5}")


def url_secrets(url: str, hosts: bool = True) -> set[str]:
    """The pieces of ``url`` that may be credentials, raw and percent-decoded.

    Parameters
    ----------
    url : str
        An Apprise or database URL (``tgram://BOT_TOKEN/CHAT``,
        ``json://user:pw@host/path?token=T``, ``postgresql://user:pw@host/db``).
    hosts : bool
        Include host names and ports (the alert sink masks them on the loggers of
        Apprise and its HTTP stack); False keeps only what is not a host name, a
        dotted address or a port (user, password, path segments, query values,
        fragment, any other part of the network location: some Apprise schemes carry
        their token there), fit to :func:`register_secrets` for the whole process.

    Returns
    -------
    set of str
        Empty pieces included (callers filter by length).
    """
    _, _, rest = url.partition("://")
    rest, _, fragment = rest.partition("#")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, _, hostport = netloc.rpartition("@")
    pieces = {fragment, path, *path.split("/"), userinfo, *userinfo.split(":")}
    pieces |= {v for _, v in parse_qsl(query, keep_blank_values=True)}
    located = {netloc, hostport, *hostport.split(":")}
    if hosts:
        pieces |= located | {url, url.partition("?")[0]}
    else:
        pieces |= {p for p in located if not _HOST.fullmatch(p)}
    return {p for s in pieces for p in (s, unquote(s))}


#: Attributes every LogRecord has: anything else on a record came as ``extra``.
RECORD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message", "asctime", "taskName"}


def _scrub(value: Any, literals: re.Pattern[str] | None, depth: int = 0) -> Any:
    """``value`` (an ``extra`` field) with its secrets masked: strings masked, containers
    copied (as dict or list; values of credential keys replaced) when something in them
    was, numbers kept, other objects replaced by their masked ``str`` when that holds a
    secret. Whatever holds no secret is returned as it is (the same object)."""
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if isinstance(value, str):
        clean = _mask(value, literals)
        return value if clean == value else clean
    if depth < 8 and isinstance(value, dict):  # a copy only when something was masked
        out = {k: REDACTED if is_secret_key(k) else _scrub(v, literals, depth + 1)
               for k, v in value.items()}
        return value if all(out[k] is v for k, v in value.items()) else out
    if depth < 8 and isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        scrubbed = [_scrub(v, literals, depth + 1) for v in items]
        return value if all(a is b for a, b in zip(scrubbed, items)) else scrubbed
    try:
        text = str(value)
    except Exception:  # noqa: BLE001 - an unprintable object prints nothing secret
        return f"<{type(value).__name__}>"
    clean = _mask(text, literals)
    return value if clean == text else clean


class SecretFilter(logging.Filter):
    """Logging filter passing every record through :func:`redact`: its message (with its
    arguments merged), its traceback (rendered and masked too: the record keeps no
    ``exc_info``), its stack and every ``extra`` field (a credential-named field is
    replaced whole). Masks the registered secrets (:func:`register_secrets`) and its
    own, which can be added later (:meth:`add`); thread-safe. Never drops a record.

    Parameters
    ----------
    secrets : iterable of str
        Literal secrets to mask (see :func:`redact`).
    min_len, ignore_case
        As in :func:`redact`, for ``secrets``.
    """

    def __init__(self, secrets: Iterable[str | None] = (), min_len: int = MIN_SECRET_LEN,
                 ignore_case: bool = False) -> None:
        super().__init__()
        self.min_len, self.ignore_case = min_len, ignore_case
        self._own = _Literals(min_len, ignore_case)
        self.add(secrets)

    def add(self, secrets: Iterable[str | None]) -> None:
        """Mask ``secrets`` from now on as well."""
        self._own.update(add=secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        literals = self._own.pattern
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record must not leak its args
            msg = str(record.msg)
        folded = bool(record.exc_info or record.exc_text)
        if folded:  # the traceback, rendered once (by whoever came first), masked too
            msg += "\n" + (record.exc_text
                           or logging.Formatter().formatException(record.exc_info))
            record.exc_info = record.exc_text = None
        clean = _mask(msg, literals)
        if folded or clean != msg or record.args:
            record.msg, record.args = clean, None
        if record.stack_info:
            record.stack_info = _mask(record.stack_info, literals)
        for name in [k for k in record.__dict__ if k not in RECORD_FIELDS]:
            value = record.__dict__[name]
            record.__dict__[name] = REDACTED if is_secret_key(name) and value is not None \
                else _scrub(value, literals)
        return True


#: The process-wide filter (registered secrets only) that :mod:`gridflow.logs` puts on
#: every handler and the exchange client on ccxt's logger.
SECRET_FILTER = SecretFilter()

__all__ = ["MIN_SECRET_LEN", "RECORD_FIELDS", "REDACTED", "SECRET_FILTER", "SECRET_KEYS",
           "SecretFilter", "error_text", "forget_secrets", "holds_secret", "is_secret_key", "redact", "register_secrets",
           "url_secrets"]
