"""Bulk candle validation at the edge of the flow (pure, no I/O).

:func:`validate_chunk` applies, vectorised over a whole
:class:`~gridflow.chunks.CandleChunk`, the same rules with the same reason codes as
the :class:`~gridflow.events.Candle` model, plus the per-symbol stream rules
(duplicate and out-of-order timestamps) that a single candle cannot know. Each row
gets the **first** failing rule in this order:

==================  =====================================================
MALFORMED_ROW       ``ts < 0`` (a row the file reader could not parse has
                    ``ts = -1`` and NaN prices)
NON_POSITIVE_PRICE  any of open/high/low/close non-finite or <= 0
NEGATIVE_VOLUME     volume non-finite or < 0
HIGH_BELOW_BODY     ``high < max(open, close)``
LOW_ABOVE_BODY      ``low > min(open, close)``
MISALIGNED_TS       ``ts`` not a multiple of the timeframe length (ms)
DUPLICATE_TS        ``ts`` equal to the last **accepted** ts
OUT_OF_ORDER        ``ts`` lower than the last accepted ts
==================  =====================================================

Refused rows never reach a strategy; each becomes one ``candle_rejected``
:class:`~gridflow.events.JournalEvent`, and :class:`CandleValidator` counts them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from gridflow.chunks import CandleChunk
from gridflow.event_kinds import EventKind, Reason
from gridflow.events import JournalEvent
from gridflow.timeframes import timeframe_to_ms

__all__ = ["NO_TS", "REASONS", "CandleValidator", "validate_chunk"]

REASONS: tuple[Reason, ...] = (
    Reason.MALFORMED_ROW,
    Reason.NON_POSITIVE_PRICE,
    Reason.NEGATIVE_VOLUME,
    Reason.HIGH_BELOW_BODY,
    Reason.LOW_ABOVE_BODY,
    Reason.MISALIGNED_TS,
    Reason.DUPLICATE_TS,
    Reason.OUT_OF_ORDER,
)
"""Reason codes, in rule order (a row gets the first that applies)."""

NO_TS = -1
"""``last_ts`` before any candle was accepted (every valid ts is >= 0)."""

_INF = np.inf


def _json_float(x: float) -> float | str:
    """Finite floats as is; NaN/inf as ``"nan"``, ``"inf"``, ``"-inf"`` (JSON-safe)."""
    x = float(x)
    return x if math.isfinite(x) else repr(x)


def _message(reason: str, row: int, ts: int, o: float, h: float, lo: float, c: float,
             v: float, prev: int, timeframe: str, tf_ms: int) -> str:
    if reason == Reason.MALFORMED_ROW:
        if ts == -1 and all(math.isnan(x) for x in (o, h, lo, c, v)):
            return f"MALFORMED_ROW: row {row} could not be parsed"
        return f"MALFORMED_ROW: ts_ms={ts} is negative"
    if reason == Reason.NON_POSITIVE_PRICE:
        for name, p in (("open", o), ("high", h), ("low", lo), ("close", c)):
            if not (math.isfinite(p) and p > 0):
                return f"NON_POSITIVE_PRICE: {name}={p!r} must be finite and > 0"
    if reason == Reason.NEGATIVE_VOLUME:
        return f"NEGATIVE_VOLUME: volume={v!r} must be finite and >= 0"
    if reason == Reason.HIGH_BELOW_BODY:
        return f"HIGH_BELOW_BODY: high={h} < max(open={o}, close={c})"
    if reason == Reason.LOW_ABOVE_BODY:
        return f"LOW_ABOVE_BODY: low={lo} > min(open={o}, close={c})"
    if reason == Reason.MISALIGNED_TS:
        return f"MISALIGNED_TS: ts_ms={ts} is not a multiple of {timeframe} ({tf_ms} ms)"
    if reason == Reason.DUPLICATE_TS:
        return f"DUPLICATE_TS: ts_ms={ts} equals the last accepted ts_ms={prev}"
    return f"OUT_OF_ORDER: ts_ms={ts} < last accepted ts_ms={prev}"


def validate_chunk(
    chunk: CandleChunk, last_ts: int, *, row_offset: int | None = None
) -> tuple[CandleChunk, list[JournalEvent], int]:
    """Split a chunk into accepted candles and journaled refusals.

    Parameters
    ----------
    chunk : CandleChunk
        n candles of one symbol (ts int64 ms UTC, prices in quote currency, volume in
        base currency), in stream order.
    last_ts : int
        Open time (ms UTC) of the last candle accepted before this chunk, or
        :data:`NO_TS` (-1) if none.
    row_offset : int, optional
        Stream row of ``chunk``'s first candle, used for event ids and ``seq`` only
        when ``chunk.first_row < 0`` (chunks not read from a file); default 0.

    Returns
    -------
    accepted : CandleChunk
        The rows that passed, in order, with the ``last`` flag of ``chunk`` (so an
        all-refused final chunk still carries ``last=True``, with n = 0);
        ``first_row`` is the file row of its first candle (refused rows leave holes
        in the row numbering after it). When
        every row passes, ``chunk`` itself is returned (no copy). Its ``ts`` is
        strictly increasing and > ``last_ts``.
    events : list of JournalEvent
        One per refused row, in row order: ``kind="candle_rejected"``, ``reason`` a
        code from :data:`REASONS`, ``event_id="candle_rejected:{symbol}:{row}"``,
        ``ts_ms`` the candle's ts (-1 if negative), ``seq=row`` where ``row =
        first_row + i`` (the 0-based file data row), and ``detail`` with ``ts_ms``,
        ``open``, ``high``, ``low``, ``close``, ``volume`` (non-finite floats as the
        strings ``"nan"``/``"inf"``/``"-inf"`` so the detail stays valid JSON),
        ``last_ts_ms`` (last accepted ts when the row was checked) and ``message``.
    last_ts : int
        Last accepted ts after this chunk (unchanged if nothing was accepted).

    Raises
    ------
    ValueError
        If ``chunk.timeframe`` is not a valid timeframe.

    Notes
    -----
    The ordering rule is sequential (a row is compared with the last *accepted*
    row, which may be in this chunk) yet needs no loop: the running maximum of ts over
    all rows that pass the row-local rules equals the running maximum over the
    accepted rows, because a row refused for ordering never exceeds that maximum.
    A clean chunk costs about ten numpy passes: ~100 M candles/s with 2000-row
    chunks on a 2-vCPU machine. A chunk with refusals takes a second, slower pass
    (~80 us for 2000 rows) plus ~5 us per refused row (the JournalEvent).
    """
    n = len(chunk)
    last_ts = int(last_ts)
    if n == 0:
        return chunk, [], last_ts
    tf_ms = timeframe_to_ms(chunk.timeframe)
    ts = np.asarray(chunk.ts, dtype=np.int64)
    o = np.asarray(chunk.open, dtype=np.float64)
    h = np.asarray(chunk.high, dtype=np.float64)
    lo = np.asarray(chunk.low, dtype=np.float64)
    c = np.asarray(chunk.close, dtype=np.float64)
    v = np.asarray(chunk.volume, dtype=np.float64)

    with np.errstate(invalid="ignore"):
        body_hi = np.maximum(o, c)
        body_lo = np.minimum(o, c)
        # All row-local rules at once. NaN fails every comparison; if low > 0,
        # high < inf and low <= min(o, c) <= max(o, c) <= high, all four prices are
        # finite and > 0, so this mask is exactly "no row-local rule fails".
        ok = (ts >= 0) & (lo > 0) & (h < _INF) & (h >= body_hi) & (lo <= body_lo)
        ok &= (v >= 0) & (v < _INF) & (ts % tf_ms == 0)
    if ok.all() and ts[0] > last_ts and (n == 1 or bool((ts[1:] > ts[:-1]).all())):
        return chunk, [], int(ts[-1])

    with np.errstate(invalid="ignore"):
        price_ok = np.ones(n, dtype=bool)
        for p in (o, h, lo, c):
            price_ok &= (p > 0) & (p < _INF)
        code = np.select(
            [
                ts < 0,
                ~price_ok,
                ~((v >= 0) & (v < _INF)),
                h < body_hi,
                lo > body_lo,
                ts % tf_ms != 0,
            ],
            [1, 2, 3, 4, 5, 6],
            0,
        ).astype(np.int8)
    local_ok = code == 0
    # prev[i] = last accepted ts before row i (see Notes).
    running = np.maximum.accumulate(np.where(local_ok, ts, last_ts))
    prev = np.empty(n, dtype=np.int64)
    prev[0] = last_ts
    np.maximum(running[:-1], last_ts, out=prev[1:])
    code[local_ok & (ts == prev)] = 7
    code[local_ok & (ts < prev)] = 8
    accepted = code == 0
    new_last = max(last_ts, int(running[-1]))

    base = chunk.first_row if chunk.first_row >= 0 else (row_offset or 0)
    events: list[JournalEvent] = []
    for i in np.flatnonzero(~accepted).tolist():
        reason = REASONS[int(code[i]) - 1]
        row = base + i
        ti = int(ts[i])
        oi, hi, li, ci, vi = float(o[i]), float(h[i]), float(lo[i]), float(c[i]), float(v[i])
        pi = int(prev[i])
        events.append(
            JournalEvent(
                event_id=f"{EventKind.CANDLE_REJECTED}:{chunk.symbol}:{row}",
                kind=EventKind.CANDLE_REJECTED,
                reason=reason,
                ts_ms=ti if ti >= 0 else -1,
                symbol=chunk.symbol,
                seq=row,
                detail={
                    "ts_ms": ti,
                    "open": _json_float(oi),
                    "high": _json_float(hi),
                    "low": _json_float(li),
                    "close": _json_float(ci),
                    "volume": _json_float(vi),
                    "last_ts_ms": pi,
                    "message": _message(
                        reason, row, ti, oi, hi, li, ci, vi, pi, chunk.timeframe, tf_ms
                    ),
                },
            )
        )
    good = chunk.take(accepted)
    if chunk.first_row >= 0 and len(good) and not accepted[0]:
        good = replace(good, first_row=chunk.first_row + int(np.argmax(accepted)))
    return good, events, new_last


def data_gaps(accepted: CandleChunk, last_ts: int) -> list[JournalEvent]:
    """Journal events for missing candles between accepted candles (not a refusal).

    Parameters
    ----------
    accepted : CandleChunk
        Candles that passed validation (strictly increasing ``ts``).
    last_ts : int
        Open time of the last accepted candle before this chunk, or :data:`NO_TS`.

    Returns
    -------
    list of JournalEvent
        One ``kind="data_gap"``, ``reason="MISSING_CANDLES"`` event per hole, at the
        open time of the first candle after it, with ``detail`` ``from_ts_ms`` (last
        candle before), ``to_ts_ms`` (first after) and ``missing`` (candles absent).
    """
    if not len(accepted):
        return []
    tf_ms = timeframe_to_ms(accepted.timeframe)
    ts = accepted.ts if last_ts == NO_TS else np.concatenate(([last_ts], accepted.ts))
    idx = np.flatnonzero(np.diff(ts) > tf_ms)
    out = []
    for i in idx.tolist():
        a, b = int(ts[i]), int(ts[i + 1])
        out.append(JournalEvent(
            event_id=f"{EventKind.DATA_GAP}:{accepted.symbol}:{b}", kind=EventKind.DATA_GAP,
            reason=Reason.MISSING_CANDLES, ts_ms=b, symbol=accepted.symbol,
            detail={"from_ts_ms": a, "to_ts_ms": b, "missing": (b - a) // tf_ms - 1},
        ))
    return out


@dataclass(slots=True)
class CandleValidator:
    """Per-symbol validation state for a keyed Bytewax step (picklable).

    Attributes
    ----------
    symbol : str or None
        Bound on the first chunk; a chunk of another symbol is a programming error.
    last_ts : int
        Open time (ms UTC) of the last accepted candle, :data:`NO_TS` before any.
    rows : int
        Candles seen (accepted + refused); also the stream row used in event ids of
        chunks that carry no ``first_row``.
    accepted : int
        Candles accepted.
    rejected : dict of str to int
        Refused candles per reason code, every code of :data:`REASONS` present.
    gaps : int
        Data gaps journaled (see :func:`data_gaps`).

    Examples
    --------
    >>> v = CandleValidator()
    >>> good, events = v.validate(chunk)  # doctest: +SKIP
    """

    symbol: str | None = None
    last_ts: int = NO_TS
    rows: int = 0
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    gaps: int = 0

    def validate(self, chunk: CandleChunk) -> tuple[CandleChunk, list[JournalEvent]]:
        """Validate the next chunk of the stream and update the state.

        Returns
        -------
        accepted : CandleChunk
        events : list of JournalEvent
            See :func:`validate_chunk`.

        Raises
        ------
        ValueError
            If ``chunk.symbol`` differs from the bound symbol, or its timeframe is
            invalid.
        """
        if self.symbol is None:
            self.symbol = chunk.symbol
        elif chunk.symbol != self.symbol:
            raise ValueError(
                f"CandleValidator for {self.symbol!r} got a chunk of {chunk.symbol!r}"
            )
        good, events, self.last_ts = validate_chunk(chunk, self.last_ts, row_offset=self.rows)
        self.rows += len(chunk)
        self.accepted += len(good)
        for e in events:
            self.rejected[e.reason] += 1
        return good, events

    def check(self, chunk: CandleChunk) -> tuple[CandleChunk, list[JournalEvent], list[JournalEvent]]:
        """:meth:`validate`, plus the data gaps the accepted candles leave.

        Returns
        -------
        accepted : CandleChunk
        refused : list of JournalEvent
            ``candle_rejected`` events.
        gaps : list of JournalEvent
            ``data_gap`` events (:func:`data_gaps`); a refused candle leaves a gap too.
        """
        prev = self.last_ts
        good, refused = self.validate(chunk)
        gaps = data_gaps(good, prev)
        self.gaps += len(gaps)
        return good, refused, gaps

    @property
    def rejected_total(self) -> int:
        """All refused candles."""
        return sum(self.rejected.values())
