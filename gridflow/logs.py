"""Set up the process's logging from :class:`~gridflow.config.logging_config.LoggingConfig`.

:func:`setup_logging` installs, with the standard library only:

* a console handler on stderr (``LEVEL logger: message``, as the command line always
  printed), unless someone else configured logging first (then their handlers are
  kept, as :func:`logging.basicConfig` would);
* with ``file``, a :class:`logging.handlers.RotatingFileHandler` whose ``namer`` and
  ``rotator`` turn each rotated file into a gzip archive (``FILE.1.gz`` newest);
* text lines or JSON lines (:class:`JsonLinesFormatter`) on every handler;
* the root level and a level per logger name;
* the one redactor's filter (:data:`gridflow.redaction.SECRET_FILTER`) on every handler
  of the root logger, its own and others', so no secret reaches any output.

Calling it again replaces what it installed before (nothing doubles); calling it with
the same settings only registers the new secrets. :func:`setup_for` does it for a whole
:class:`~gridflow.config.GridflowConfig`, registering its secrets (exchange keys, the
credential pieces of the Apprise URLs, the database URL's password) first.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import os
import shutil
import sys
import threading
from collections.abc import Iterable
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from gridflow.config.logging_config import LoggingConfig
from gridflow.isotime import iso_utc
from gridflow.redaction import RECORD_FIELDS, SECRET_FILTER, register_secrets, url_secrets

if TYPE_CHECKING:
    from gridflow.config.models import GridflowConfig

CONSOLE_FORMAT = "%(levelname)s %(name)s: %(message)s"
"""Console text lines (what ``gridflow`` printed before this module)."""
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""File text lines: the same, after the UTC time (``2024-03-04T05:06:07.089Z``, ms only if set)."""


def _iso_utc(created: float) -> str:
    return iso_utc(int(created * 1000))


class UtcTextFormatter(logging.Formatter):
    """:class:`logging.Formatter` whose ``%(asctime)s`` is ISO 8601 UTC with ms."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _iso_utc(record.created)


def _plain(value: Any) -> Any:
    """``value`` as JSON can hold it: non-finite floats and unknown objects as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record, on one line: ``ts`` (ISO 8601 UTC, ms), ``level``,
    ``logger``, ``message`` (arguments merged, then any traceback and stack) and
    ``extra`` (the fields passed as ``extra=``, non-finite floats and other objects as
    text). Strict JSON, non-ASCII kept."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            message += "\n" + record.exc_text
        if record.stack_info:
            message += "\n" + self.formatStack(record.stack_info)
        extra = {k: v for k, v in record.__dict__.items() if k not in RECORD_FIELDS}
        return json.dumps({"ts": _iso_utc(record.created), "level": record.levelname,
                           "logger": record.name, "message": message,
                           "extra": _plain(extra)}, ensure_ascii=False, allow_nan=False)


def _gzip_namer(name: str) -> str:
    return name + ".gz"


def _gzip_rotator(source: str, dest: str) -> None:
    """Compress the file being rotated out into ``dest`` and remove it."""
    with open(source, "rb") as src, gzip.open(dest, "wb", compresslevel=6) as out:
        shutil.copyfileobj(src, out)
    os.remove(source)


def rotating_gzip_handler(path: str | Path, max_bytes: int, backups: int
                          ) -> RotatingFileHandler:
    """A UTF-8 :class:`~logging.handlers.RotatingFileHandler` on ``path`` (folders
    created) rotating before a record would take the file past ``max_bytes`` (0: never)
    and gzip-compressing each rotated file: ``path.1.gz`` newest, ``backups`` kept."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups,
                                  encoding="utf-8")
    handler.namer = _gzip_namer
    handler.rotator = _gzip_rotator
    return handler


class _Stderr(logging.StreamHandler):
    """A stream handler writing to whatever ``sys.stderr`` is at the time of each record
    (it may be replaced after set-up: test capture, a notebook)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


class _State:
    """What :func:`setup_logging` installed, so a second call replaces it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cfg: LoggingConfig | None = None
        self.handlers: list[logging.Handler] = []
        self.levels: dict[str, int] = {}  # logger name -> its level before
        self.root_level: int | None = None


_STATE = _State()


def _guard_foreign(root: logging.Logger) -> None:
    for h in root.handlers:
        if SECRET_FILTER not in h.filters:
            h.addFilter(SECRET_FILTER)


def _undo(root: logging.Logger) -> None:
    for h in _STATE.handlers:
        root.removeHandler(h)
        h.close()
    for name, level in _STATE.levels.items():
        logging.getLogger(name).setLevel(level)
    if _STATE.root_level is not None:
        root.setLevel(_STATE.root_level)
    _STATE.handlers, _STATE.levels, _STATE.root_level, _STATE.cfg = [], {}, None, None


QUIET_LOGGERS: dict[str, str] = {"numba": "WARNING"}
"""Loggers kept at a level of their own unless ``[logging] levels`` names them: numba's
compiler logs every pass of every kernel at DEBUG (123 MB for one cold-cache replay,
which with a rotated log file took minutes of renames)."""


def setup_logging(cfg: LoggingConfig | None = None,
                  secrets: Iterable[str | None] = ()) -> list[logging.Handler]:
    """Configure the root logger from ``cfg`` (defaults: console, WARNING).

    Parameters
    ----------
    cfg : LoggingConfig or None
        The settings (None: ``LoggingConfig()``).
    secrets : iterable of str
        Literal secrets to mask in every output from now on
        (:func:`gridflow.redaction.register_secrets`; 8+ characters).

    Returns
    -------
    list of logging.Handler
        The handlers this call installed on the root logger (console and / or file).

    Raises
    ------
    OSError
        When the log file cannot be opened (nothing is changed then).
    """
    cfg = cfg or LoggingConfig()
    register_secrets(secrets)
    root = logging.getLogger()
    with _STATE.lock:
        if cfg == _STATE.cfg and all(h in root.handlers for h in _STATE.handlers):
            _guard_foreign(root)
            return list(_STATE.handlers)
        fmt: logging.Formatter
        file_handler = None
        if cfg.file is not None:  # opened first: a bad path changes nothing
            file_handler = rotating_gzip_handler(cfg.file, cfg.max_bytes, cfg.backups)
        _undo(root)
        handlers: list[logging.Handler] = []
        if cfg.console and not root.handlers:
            console = _Stderr()
            fmt = JsonLinesFormatter() if cfg.json_lines else logging.Formatter(CONSOLE_FORMAT)
            console.setFormatter(fmt)
            handlers.append(console)
        if file_handler is not None:
            fmt = JsonLinesFormatter() if cfg.json_lines else UtcTextFormatter(FILE_FORMAT)
            file_handler.setFormatter(fmt)
            handlers.append(file_handler)
        _STATE.root_level = root.level
        root.setLevel(cfg.level)
        for name, level in {**QUIET_LOGGERS, **cfg.levels}.items():
            logger = logging.getLogger(name)
            _STATE.levels[name] = logger.level
            logger.setLevel(level)
        for h in handlers:
            root.addHandler(h)
        _guard_foreign(root)
        _STATE.handlers, _STATE.cfg = handlers, cfg
        return list(handlers)


def reset_logging() -> None:
    """Remove (and close) the handlers :func:`setup_logging` installed and restore the
    levels it changed. The redactor's filter stays on other handlers (it only masks)."""
    with _STATE.lock:
        _undo(logging.getLogger())


def config_secrets(config: GridflowConfig) -> list[str]:
    """The literal secrets of a whole config: the exchange credentials (API key, secret,
    passphrase), the credential pieces of every Apprise URL
    (:func:`gridflow.redaction.url_secrets` without host names) and the database URL's
    password."""
    out = config.live.exchange.credentials()
    for u in config.apprise_url_list():
        out += url_secrets(u.get_secret_value(), hosts=False)
    try:
        password = urlsplit(config.db_url).password
    except ValueError:  # not a URL at all: the journal refuses it later
        password = None
    if password:
        out.append(password)
    return out


def setup_for(config: GridflowConfig) -> list[logging.Handler]:
    """:func:`setup_logging` with ``config.logging``, masking :func:`config_secrets`."""
    return setup_logging(config.logging, config_secrets(config))


__all__ = ["CONSOLE_FORMAT", "FILE_FORMAT", "QUIET_LOGGERS", "JsonLinesFormatter",
           "UtcTextFormatter", "config_secrets", "reset_logging", "rotating_gzip_handler", "setup_for",
           "setup_logging"]
