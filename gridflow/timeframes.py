"""Timeframe strings (ccxt style) and their length in milliseconds."""

from __future__ import annotations

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
_UNIT_MS = {"m": 60_000, "h": HOUR_MS, "d": DAY_MS, "w": 7 * DAY_MS}


def utc_day(ts):
    """UTC day number (days since 1970-01-01) of ``ts`` (ms UTC; an int or an int64
    array): the account's day, the daily-loss limit's and the daily returns'. The one
    definition; the kernels run it compiled (:func:`gridflow.operators.risk.utc_day`)."""
    return ts // DAY_MS


def is_hour_mark(ts):
    """True where ``ts`` (ms UTC; an int or an int64 array) is a whole UTC hour: the
    candle-time closes at which the rolling-drawdown window takes an equity mark. The
    one definition; the kernels run it compiled
    (:func:`gridflow.operators.risk.is_hour_mark`)."""
    return ts % HOUR_MS == 0


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

