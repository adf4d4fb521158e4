"""Millisecond timestamps as ISO 8601 text, for messages, alerts and reports (kept
out of the modules the numba kernels import, so editing it recompiles nothing)."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_utc(ts_ms: int) -> str:
    """``ts_ms`` (ms UTC) as ISO 8601 with a ``Z`` suffix, milliseconds only if set:
    ``iso_utc(1709564400000) == "2024-03-04T15:00:00Z"``."""
    ts_ms = int(ts_ms)
    spec = "seconds" if ts_ms % 1000 == 0 else "milliseconds"
    dt = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    return dt.isoformat(timespec=spec).replace("+00:00", "Z")


def parse_time_ms(text: str) -> int:
    """``"2024-01-01"``, an ISO date-time (UTC unless it says otherwise) or integer ms
    -> ms UTC.

    Raises
    ------
    ValueError
        Neither (names what was given).
    """
    s = str(text).strip()
    if s.lstrip("-").isdigit():
        return int(s)
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(f"expected ms UTC or an ISO date such as 2024-01-01, got {text!r}"
                         ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)
