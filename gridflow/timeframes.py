"""Timeframe strings (ccxt style) and their length in milliseconds."""

from __future__ import annotations

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
