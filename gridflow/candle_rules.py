"""The row rules of a candle, defined once (numpy, vectorised over rows).

:func:`row_codes` says which rule, if any, each row breaks and :func:`row_message`
says why in words. :func:`gridflow.operators.validation.validate_chunk` runs them over a
whole chunk (and adds the stream rules: duplicates, order, price jumps); the
:class:`gridflow.events.Candle` model runs them over its one row. Units: ``ts`` int64
candle open time in ms UTC, prices float64 in quote currency, volume float64 in base
currency.
"""

from __future__ import annotations

import math

import numpy as np

from gridflow.config.candles import CandleRules
from gridflow.event_kinds import Reason

__all__ = ["PRICE_FLOOR", "ROW_RULES", "TS_MAX_MS", "TS_MIN_MS", "row_codes", "row_message",
           "row_ok", "ts_plausible"]

ROW_RULES: tuple[Reason, ...] = (
    Reason.MALFORMED_ROW,
    Reason.TS_OUT_OF_RANGE,
    Reason.NON_POSITIVE_PRICE,
    Reason.IMPLAUSIBLE_PRICE,
    Reason.NEGATIVE_VOLUME,
    Reason.HIGH_BELOW_BODY,
    Reason.LOW_ABOVE_BODY,
    Reason.MISALIGNED_TS,
)
"""The rules one row can break alone, in order; :func:`row_codes` gives 1 + the index."""

TS_MIN_MS = 1_230_940_800_000
"""2009-01-03 00:00 UTC (Bitcoin's first block): no crypto venue has an older candle. A
timestamp in seconds (1.2e9 .. 4.1e9) lies below it."""
TS_MAX_MS = 4_102_444_800_000
"""2100-01-01 00:00 UTC: fixed (not "now"), so a replay refuses the same rows every time.
A timestamp in microseconds (1.2e15 ..) lies above it."""
PRICE_FLOOR = float(np.finfo(np.float64).tiny)
"""Smallest normal float64 (2.2e-308): a subnormal price loses precision in any ratio."""

_UNITS = ((1000, "seconds"), (-1000, "microseconds"), (-1_000_000, "nanoseconds"))


def ts_plausible(ts: np.ndarray) -> np.ndarray:
    """``TS_MIN_MS <= ts <= TS_MAX_MS`` per row (bool, same shape as ``ts``)."""
    return (ts >= TS_MIN_MS) & (ts <= TS_MAX_MS)


def row_ok(ts, o, h, lo, c, v, tf_ms: int, rules: CandleRules) -> np.ndarray:
    """True where a row breaks no rule of :data:`ROW_RULES` (bool (n,)).

    One pass per comparison: as ``low <= min(open, close) <= max(open, close) <= high``
    is required, ``low >= PRICE_FLOOR`` and ``high <= max_price_quote`` bound all four
    prices, and NaN fails every comparison.
    """
    with np.errstate(invalid="ignore"):
        ok = ts_plausible(ts) & (lo >= PRICE_FLOOR) & (h <= rules.max_price_quote)
        ok &= (h >= np.maximum(o, c)) & (lo <= np.minimum(o, c))
        ok &= (v >= 0) & (v < np.inf) & (ts % tf_ms == 0)
    return ok


def row_codes(ts, o, h, lo, c, v, tf_ms: int, rules: CandleRules) -> np.ndarray:
    """The first rule of :data:`ROW_RULES` each row breaks.

    Parameters
    ----------
    ts : int64 (n,)
    o, h, lo, c, v : float64 (n,)
    tf_ms : int
        Timeframe length in ms (> 0).
    rules : CandleRules
        Price ceiling (``max_price_quote``).

    Returns
    -------
    int8 (n,)
        0 where the row passes, else ``1 + index`` in :data:`ROW_RULES`.
    """
    with np.errstate(invalid="ignore"):
        finite_pos = np.ones(len(ts), dtype=bool)
        normal = np.ones(len(ts), dtype=bool)
        for p in (o, h, lo, c):
            finite_pos &= (p > 0) & (p < np.inf)
            normal &= (p >= PRICE_FLOOR) & (p <= rules.max_price_quote)
        code = np.select(
            [
                ts < 0,
                ~ts_plausible(ts),
                ~finite_pos,
                ~normal,
                ~((v >= 0) & (v < np.inf)),
                h < np.maximum(o, c),
                lo > np.minimum(o, c),
                ts % tf_ms != 0,
            ],
            list(range(1, len(ROW_RULES) + 1)),
            0,
        )
    return code.astype(np.int8)


def _unit_hint(ts: int) -> str:
    for scale, unit in _UNITS:
        t = ts * scale if scale > 0 else ts // -scale
        if TS_MIN_MS <= t <= TS_MAX_MS:
            return f" (looks like {unit}, not ms)"
    return ""


def row_message(reason: str, row: int, ts: int, o: float, h: float, lo: float, c: float,
                v: float, timeframe: str, tf_ms: int, rules: CandleRules) -> str:
    """Why one row breaks ``reason`` (a member of :data:`ROW_RULES`), in words, starting
    with the code: ``"TS_OUT_OF_RANGE: ts_ms=1700000000 is before 2009-01-03 ... (looks
    like seconds, not ms)"``. ``row`` is the 0-based data row (for unparsed rows)."""
    if reason == Reason.MALFORMED_ROW:
        if ts == -1 and all(math.isnan(x) for x in (o, h, lo, c, v)):
            return f"MALFORMED_ROW: row {row} could not be parsed"
        return f"MALFORMED_ROW: ts_ms={ts} is negative"
    if reason == Reason.TS_OUT_OF_RANGE:
        side = (f"before 2009-01-03 (ts_ms={TS_MIN_MS})" if ts < TS_MIN_MS
                else f"after 2100-01-01 (ts_ms={TS_MAX_MS})")
        return f"TS_OUT_OF_RANGE: ts_ms={ts} is {side}{_unit_hint(ts)}"
    prices = (("open", o), ("high", h), ("low", lo), ("close", c))
    if reason == Reason.NON_POSITIVE_PRICE:
        name, p = next((n, p) for n, p in prices if not (math.isfinite(p) and p > 0))
        return f"NON_POSITIVE_PRICE: {name}={p!r} must be finite and > 0"
    if reason == Reason.IMPLAUSIBLE_PRICE:
        name, p = next((n, p) for n, p in prices
                       if not PRICE_FLOOR <= p <= rules.max_price_quote)
        if p < PRICE_FLOOR:
            return (f"IMPLAUSIBLE_PRICE: {name}={p!r} is below the smallest normal float "
                    f"{PRICE_FLOOR!r}")
        return f"IMPLAUSIBLE_PRICE: {name}={p!r} is above max_price_quote={rules.max_price_quote!r}"
    if reason == Reason.NEGATIVE_VOLUME:
        return f"NEGATIVE_VOLUME: volume={v!r} must be finite and >= 0"
    if reason == Reason.HIGH_BELOW_BODY:
        return f"HIGH_BELOW_BODY: high={h} < max(open={o}, close={c})"
    if reason == Reason.LOW_ABOVE_BODY:
        return f"LOW_ABOVE_BODY: low={lo} > min(open={o}, close={c})"
    if reason == Reason.MISALIGNED_TS:
        return f"MISALIGNED_TS: ts_ms={ts} is not a multiple of {timeframe} ({tf_ms} ms)"
    raise ValueError(f"{reason!r} is not a row rule")
