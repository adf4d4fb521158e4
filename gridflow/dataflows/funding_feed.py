"""Settled funding rates for live candles, so that paper and live trade ``grid_funding``
on the rule the replay uses.

:class:`FundingFedPartition` wraps one symbol's candle partition (polled or streamed)
and attaches to every chunk it emits, as :attr:`~gridflow.chunks.CandleChunk.inputs`:

* ``funding_rate``: the rate of the last settlement at or before each candle's close
  (:func:`gridflow.data.funding.last_rate`: NaN before the first one or once the series
  is older than 3 settlement periods), what the strategy quotes on;
* ``funding_settled``: the rates settled within each candle
  (:func:`gridflow.data.funding.funding_per_candle`), which the paper matcher books as
  the replay does from a funding file (live books the exchange's own payments).

The settlements come from ccxt ``fetch_funding_rate_history`` (public: no keys), paged
by :func:`gridflow.exchange.history.funding_pages`, checked with
:func:`gridflow.data.funding.rate_ok` (a bad row is dropped, counted and logged).

Determinism: a candle closing at or after the next expected settlement (the last known
one plus the series' median spacing) is held back until the venue lists a settlement
at or after that time, so that a candle closing on a settlement (Binance: 00/08/16 UTC)
quotes on the rate settled at its close, as the replay does. The wait is bounded
(``wait_s`` of wall time, the venue may have moved the schedule or be failing): then
the chunk goes out with what is known, a warning logged and counted in
:attr:`FundingFedPartition.late`, and no candle waits again until the venue lists a
newer settlement (the history is still read every ``REFRESH_MS`` of exchange time). Held chunks are part of the resume state, so a crash
while holding loses no candle.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import ccxt
import numpy as np
from bytewax.inputs import StatefulSourcePartition

from gridflow.chunks import CandleChunk
from gridflow.data.funding import (
    FUNDING_RATE,
    FUNDING_SETTLED,
    funding_per_candle,
    last_rate,
    rate_ok,
)
from gridflow.dataflows.live_sources import describe_error
from gridflow.exchange.history import funding_pages
from gridflow.exchange.retry import backoff_cap_s, backoff_s

__all__ = ["FundingFedPartition", "FundingFeedState", "FUNDING_WAIT_S"]

log = logging.getLogger(__name__)

FUNDING_WAIT_S = 20.0
"""Wall seconds a candle is held waiting for the settlement due at or before its close
(well under the live engine's ``CANDLE_WAIT_MS``, after which fills stop waiting for a
candle)."""

RETRY_S = 2.0
"""Wall seconds between two looks at the venue's funding history while holding."""

LOOKBACK_MS = 2 * 86_400_000
"""How far before the first candle's close the history is first read: more than
:data:`~gridflow.data.funding.RATE_STALE_MS`, so the last settlement known at it is read."""

KEEP = 64
"""Settlements kept once attached (the last rate and the median spacing need a few)."""

REFRESH_MS = 3_600_000
"""Exchange time between two reads of the history when no settlement is due."""


class FundingFeedState(NamedTuple):
    """Resume state of a :class:`FundingFedPartition`.

    Attributes
    ----------
    inner : Any
        The wrapped candle partition's resume state.
    held : tuple of CandleChunk
        Chunks read from the wrapped partition and not emitted yet.
    f_ts, f_rate : tuple of int, tuple of float
        Usable settlements (ms UTC, fractions), ascending.
    read_to : int or None
        Newest candle close (ms UTC) the history was read for.
    seen_to : int or None
        Newest settlement time the venue listed (refused rows included).
    expect : int or None
        The next settlement the venue announced, not listed yet.
    booked_to : int or None
        Close of the newest candle emitted.
    warm_to : int or None
        Close of the warm-up's last candle (never traded: books no funding).
    late_sum : float
        Rates listed after their candle went out, booked with the next candle.
    gave_up : int or None
        ``seen_to`` when a wait last ran out (-1: nothing listed then).
    """

    inner: Any
    held: tuple
    f_ts: tuple
    f_rate: tuple
    read_to: int | None
    seen_to: int | None = None
    expect: int | None = None
    booked_to: int | None = None
    warm_to: int | None = None
    late_sum: float = 0.0
    gave_up: int | None = None


def split_state(state: Any) -> tuple[Any, FundingFeedState | None]:
    """A resume state -> (the candle partition's own state, the feed's or None): a
    symbol may have been fed before a restart and not after, or the other way round."""
    if isinstance(state, FundingFeedState):
        return state.inner, state
    return state, None


class FundingFedPartition(StatefulSourcePartition[CandleChunk, FundingFeedState]):
    """A candle partition whose chunks carry the symbol's funding inputs.

    Parameters
    ----------
    inner : LiveCandlePartition
        The symbol's candle partition; its ccxt exchange (``inner.ex``, used by this
        partition's thread only) also reads the funding history.
    market : str
        ccxt market, ``"BTC/USDT:USDT"``.
    tf_ms : int
        Candle timeframe, ms.
    resume_state : FundingFeedState, optional
        From :func:`split_state` (its ``inner`` already given to ``inner``).
    wait_s, retry_s : float
        See :data:`FUNDING_WAIT_S` and :data:`RETRY_S`.
    clock : callable
        Monotonic wall seconds (tests pass their own).

    Raises
    ------
    ValueError
        ``tf_ms <= 0``, ``wait_s < 0`` or ``retry_s <= 0``; an exchange without
        ``fetchFundingRateHistory``.
    """

    def __init__(self, inner: Any, market: str, tf_ms: int,
                 resume_state: FundingFeedState | None = None, wait_s: float = FUNDING_WAIT_S,
                 retry_s: float = RETRY_S, clock: Callable[[], float] = time.monotonic) -> None:
        if tf_ms <= 0 or wait_s < 0 or not retry_s > 0:
            raise ValueError(f"bad funding feed timing: tf_ms={tf_ms}, wait_s={wait_s}, "
                             f"retry_s={retry_s}")
        self.ex = inner.ex
        if not (getattr(self.ex, "has", None) or {}).get("fetchFundingRateHistory"):
            raise ValueError(f"{getattr(self.ex, 'id', self.ex)!r} has no funding rate "
                             f"history (ccxt fetchFundingRateHistory): {inner.symbol} cannot "
                             "be traded by a strategy reading funding rates there")
        self.inner = inner
        self.symbol = inner.symbol
        self.market = market
        self.tf_ms = int(tf_ms)
        self.wait_s = float(wait_s)
        self.retry_s = float(retry_s)
        self.clock = clock
        st = resume_state or FundingFeedState(None, (), (), (), None)
        self.held: list[CandleChunk] = list(st.held)
        self.f_ts = np.array(st.f_ts, np.int64)
        self.f_rate = np.array(st.f_rate, np.float64)
        self.read_to, self.seen_to, self.expect = st.read_to, st.seen_to, st.expect
        self.booked_to, self.warm_to = st.booked_to, st.warm_to
        self.late_sum, self.gave_up = st.late_sum, st.gave_up
        self._since: float | None = None  # wall clock when the held chunks began waiting
        self._awake: datetime | None = None
        self._errors_in_row = 0
        self.late = 0
        """Releases without a settlement that was due (the wait ran out)."""
        self.refused = 0
        """Settlements dropped as unusable (not finite, or beyond +-5 %)."""
        self.listed_late = 0
        """Settlements listed after their candle went out (booked with a later one)."""
        self.error_counts: dict[str, int] = {}
        """ccxt errors met reading the funding history, by class name."""

    # ------------------------------------------------------------------ Bytewax
    def next_batch(self) -> list[CandleChunk]:
        """The wrapped partition's chunks with their funding inputs, once the
        settlements they need are listed (or the wait ran out).

        Raises
        ------
        StopIteration
            When the wrapped partition ended and nothing is held.
        """
        if not self.held:
            self.held = list(self.inner.next_batch())
            self._since = None
        closes = [int(c.ts[-1]) + self.tf_ms for c in self.held if len(c)]
        if not closes:
            return self._release()
        first = min(int(c.ts[0]) for c in self.held if len(c)) + self.tf_ms
        newest = max(closes)
        if self._since is None:
            self._since = self.clock()
        given_up = self.gave_up is not None and self.gave_up == self._seen()
        patient = self.clock() - self._since < self.wait_s and not given_up
        if self._should_read(newest):
            try:
                self._read(first, newest)
            except ccxt.BaseError as e:
                # nothing read yet, or a settlement due: retry while patient
                needed = self.read_to is None or self._due(newest) is not None
                self._failed(e, retry=needed and patient)
                if needed and patient:
                    return []
                return self._release(late=needed and not given_up)
        due = self._due(newest)
        if due is not None and patient:
            self._awake = datetime.now(UTC) + timedelta(seconds=self.retry_s)
            return []  # the settlement at or before this close is not listed yet
        late = due is not None and not given_up
        if late:
            log.warning("funding %s: the settlement due at %d is not listed after %.0f s; "
                        "candles up to %d go out with the last known rate (no candle "
                        "waits again until the venue lists a newer one)", self.symbol,
                        due, self.clock() - self._since, newest)
        return self._release(late=late)

    def next_awake(self) -> datetime | None:
        """While holding, the next look at the history; else the wrapped partition's."""
        return self._awake if self.held else self.inner.next_awake()

    def snapshot(self) -> FundingFeedState:
        """The wrapped state, the held chunks and the feed's position."""
        return FundingFeedState(self.inner.snapshot(), tuple(self.held),
                                tuple(int(t) for t in self.f_ts),
                                tuple(float(r) for r in self.f_rate), self.read_to,
                                self.seen_to, self.expect, self.booked_to, self.warm_to,
                                float(self.late_sum), self.gave_up)

    def close(self) -> None:
        """Close the wrapped partition."""
        self.inner.close()

    # ------------------------------------------------------------------ internals
    def _seen(self) -> int:
        return -1 if self.seen_to is None else int(self.seen_to)

    def _period(self) -> int | None:
        """The series' settlement spacing (median, ms); None with fewer than 2."""
        if len(self.f_ts) < 2:
            return None
        return int(np.median(np.diff(self.f_ts)))

    def _due(self, close: int) -> int | None:
        """The expected settlement time at or before ``close`` not listed yet, if any."""
        nxt = self.expect
        if nxt is None and self._period() is not None:  # the venue announces none
            nxt = int(self.f_ts[-1]) + self._period()
        if nxt is None or nxt > close or self._seen() >= nxt:
            return None
        return nxt

    def _should_read(self, close: int) -> bool:
        return (self.read_to is None or self._due(close) is not None
                or close >= self.read_to + REFRESH_MS)

    def _read(self, first_close: int, close: int) -> None:
        """Settlements listed after the newest seen (or from ``LOOKBACK_MS`` before
        ``first_close``) up to ``close``; then the venue's next one, once the expected
        one is listed."""
        cursor = self._seen() + 1 if self.seen_to is not None else first_close - LOOKBACK_MS
        ts, rate, _ = funding_pages(self.ex, self.market, cursor, close + 1)
        self._errors_in_row = 0
        if len(ts):
            self.seen_to = max(self._seen(), int(ts[-1]))
        ok = rate_ok(rate)
        if not ok.all():
            self.refused += int((~ok).sum())
            log.warning("funding %s: %d settlement(s) refused (rate not finite or beyond "
                        "+-5 %%): %s", self.symbol, int((~ok).sum()), ts[~ok].tolist()[:5])
        ts, rate = ts[ok], rate[ok]
        past = np.zeros(len(ts), bool)
        if self.booked_to is not None:  # their candle went out without them (a warm-up
            past = (ts <= self.booked_to) & (ts > (self.warm_to or -1))  # one books none)
        if past.any():
            self.late_sum += float(rate[past].sum())
            self.listed_late += int(past.sum())
            log.warning("funding %s: settlement(s) %s listed after their candle went out; "
                        "booked with the next candle", self.symbol, ts[past].tolist())
        self.f_ts = np.concatenate([self.f_ts, ts])
        self.f_rate = np.concatenate([self.f_rate, rate])
        self.read_to = max(close, self.read_to or close)
        if self.expect is None or self._seen() >= self.expect:
            self.expect = self._announced(close)

    def _announced(self, close: int) -> int | None:
        """The settlement the venue announces next (None if it does not): the one after
        now, or, when the series' spacing says one before it is still unlisted (a start
        just after a settlement), that one."""
        if not self.ex.has.get("fetchFundingRate"):
            return None
        fr = self.ex.fetch_funding_rate(self.market)
        nxt = fr.get("fundingTimestamp") or fr.get("nextFundingTimestamp")
        if nxt is None:
            return None
        nxt, period = int(nxt), self._period()
        if period is not None and self._seen() < nxt - period <= close:
            return nxt - period
        return nxt

    def _failed(self, exc: ccxt.BaseError, retry: bool) -> None:
        """Count and log a failed read; ``retry``: look again after a backoff (else the
        held candles go out with the rates known)."""
        self._errors_in_row += 1
        name = type(exc).__name__
        self.error_counts[name] = self.error_counts.get(name, 0) + 1
        if not retry:
            log.warning("funding %s: %s (error %d in a row); candles go out with the rates "
                        "known", self.symbol, describe_error(exc, self.ex), self._errors_in_row)
            return
        wait = backoff_s(self.retry_s, self._errors_in_row, backoff_cap_s(exc))
        log.warning("funding %s: %s (error %d in a row, retry in %.1f s)", self.symbol,
                    describe_error(exc, self.ex), self._errors_in_row, wait)
        self._awake = datetime.now(UTC) + timedelta(seconds=wait)

    def _release(self, late: bool = False) -> list[CandleChunk]:
        """The held chunks with their inputs; the kept history trimmed. ``late``: a
        wait ran out (counted; no candle waits again until the venue lists more)."""
        if late:
            self.late += 1
            self.gave_up = self._seen()
            self.expect = None  # the venue's schedule is asked for again at the next read
        out = [self._attach(c) for c in self.held]
        self.held, self._since = [], None
        if len(self.f_ts) > KEEP:
            self.f_ts, self.f_rate = self.f_ts[-KEEP:], self.f_rate[-KEEP:]
        return out

    def _attach(self, c: CandleChunk) -> CandleChunk:
        ts = np.asarray(c.ts, np.int64)
        settled = funding_per_candle(ts, self.tf_ms, self.f_ts, self.f_rate)
        if len(ts):
            if self.late_sum and not c.warmup:
                settled[0] += self.late_sum
                self.late_sum = 0.0
            self.booked_to = max(int(ts[-1]) + self.tf_ms, self.booked_to or 0)
            if c.warmup:
                self.warm_to = self.booked_to
        return replace(c, inputs={
            **(c.inputs or {}),
            FUNDING_RATE: last_rate(ts + self.tf_ms, self.f_ts, self.f_rate),
            FUNDING_SETTLED: settled,
        })
