"""Settings of the process's logs: ``[logging]`` of a preset (:class:`LoggingConfig`).

Applied by :func:`gridflow.logs.setup_logging` when a flow is built or the command line
starts. Logging never changes what a run does, so this section is not part of the run's
identity (:func:`gridflow.config.loader.config_hash` leaves it out).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator


def _upper(v: object) -> object:
    return v.strip().upper() if isinstance(v, str) else v


Level = Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
                  BeforeValidator(_upper)]
"""A standard logging level name, any case (``"debug"`` -> ``"DEBUG"``)."""


class LoggingConfig(BaseModel):
    """Where log records go and which ones.

    Attributes
    ----------
    level : str
        Level of the root logger (``"WARNING"``: what the command line showed so far).
    levels : dict of str to str
        Level per logger name, overriding ``level`` for that logger and its children
        (``{"ccxt" = "DEBUG", "gridflow.dataflows.broker_sink" = "INFO"}``). ``numba``
        is at ``WARNING`` unless named here (its compiler's DEBUG output is megabytes
        per kernel; :data:`gridflow.logs.QUIET_LOGGERS`).
    json : bool
        One JSON object per line (``ts`` ISO 8601 UTC with ms, ``level``, ``logger``,
        ``message`` with any traceback, ``extra``: the record's extra fields) instead of
        text lines, on every handler.
    console : bool
        Log to stderr as ``LEVEL logger: message`` (default). Skipped when the process's
        logging was configured by someone else (pytest, a notebook, an application
        embedding gridflow): their handlers get the redactor instead.
    file : Path or None
        Also log to this file (relative: to the working directory; folders created),
        text lines prefixed with the UTC time, or JSON lines. One process per file.
    max_bytes : int
        Rotate the file before it would exceed this size, bytes (0: never). The
        rotated files are gzip archives ``FILE.1.gz`` (newest) .. ``FILE.<backups>.gz``.
    backups : int
        Rotated archives kept (1-1000); the oldest is deleted.

    Raises
    ------
    pydantic.ValidationError
        For an unknown level name, an empty logger name or an out-of-range size.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_by_name=True,
                              validate_by_alias=True, serialize_by_alias=True)

    level: Level = "WARNING"
    levels: dict[str, Level] = Field(default_factory=dict)
    json_lines: bool = Field(False, alias="json")
    console: bool = True
    file: Path | None = None
    max_bytes: int = Field(10_000_000, ge=0, le=1 << 40)
    backups: int = Field(5, ge=1, le=1000)

    @field_validator("levels")
    @classmethod
    def _names(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [k for k in v if not k.strip() or k != k.strip()]
        if bad:
            raise ValueError(f"logger names must be non-empty, without surrounding "
                             f"spaces: {bad!r}")
        return v


__all__ = ["Level", "LoggingConfig"]
