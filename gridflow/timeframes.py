"""Timeframe strings (ccxt style), their length in milliseconds, and ms timestamps as
ISO 8601 text."""

from __future__ import annotations

from datetime import UTC, datetime

_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def timeframe_to_ms(timeframe: str) -> int:
    """Length of a ccxt timeframe string in milliseconds.

    Parameters
    ----------
    timeframe : str
        ccxt unified timeframe such as ``"1m"``, ``"5m"``, ``"1h"``, ``"4h"``, ``"1d"``.

    Returns
    -------
    int
        Duration in ms.

    Raises
    ------
    ValueError
        If the string is not ``<positive int><m|h|d|w>``.
    """
    if not isinstance(timeframe, str) or len(timeframe) < 2:
        raise ValueError(f"timeframe must look like '1h', got {timeframe!r}")
    unit = timeframe[-1]
    count = timeframe[:-1]
    if unit not in _UNIT_MS or not count.isdigit() or int(count) <= 0:
        raise ValueError(f"timeframe must look like '1m', '4h' or '1d', got {timeframe!r}")
    return int(count) * _UNIT_MS[unit]


def iso_utc(ts_ms: int) -> str:
    """``ts_ms`` (ms UTC) as ISO 8601 with a ``Z`` suffix, milliseconds only if set:
    ``iso_utc(1709564400000) == "2024-03-04T15:00:00Z"``."""
    ts_ms = int(ts_ms)
    spec = "seconds" if ts_ms % 1000 == 0 else "milliseconds"
    dt = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    return dt.isoformat(timespec=spec).replace("+00:00", "Z")
