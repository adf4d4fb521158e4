"""Live Bytewax source of closed candles, polled from a ccxt exchange.

:class:`LiveCandleSource` has one partition per config symbol (``"BTC/USDT"``) and
emits :class:`~gridflow.chunks.CandleChunk` items of **closed** candles only: a candle
with open time ``t`` is closed once ``t + timeframe <= fetch_time()``. Exchange time
decides, never the local clock (the test exchange simulates another year).

The account-state source (fills, open orders, positions) is
:class:`gridflow.dataflows.live_state.ExchangeStateSource`.

Error handling: every ccxt error (``NetworkError``, ``RateLimitExceeded``,
``ExchangeNotAvailable``, ``ExchangeError``...) is counted, logged with its class and a
redacted message (never the exchange object, never keys), and retried at the next
awake after a backoff of ``min(poll_s * 2**k, max(5 s, poll_s))`` (60 s after a
rate-limit error) for the ``k``-th error in a row (:func:`gridflow.exchange.retry.backoff_s`). The next successful poll
fetches every candle missed meanwhile.

The Bytewax input choosing between this and the websocket partition is
:class:`gridflow.dataflows.candle_source.LiveCandleSource`. The websocket variant (``ccxt.pro`` ``watch_ohlcv``, REST for the warm-up and every
catch-up) is :class:`gridflow.dataflows.ws_candles.WsCandlePartition`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import ccxt
import numpy as np
from bytewax.inputs import StatefulSourcePartition

from gridflow.chunks import CandleChunk

from gridflow.exchange.retry import backoff_cap_s, backoff_s, error_text
from gridflow.timeframes import timeframe_to_ms

__all__ = [
    "LiveCandlePartition",
    "LiveResumeState",
    "backoff_s",
    "describe_error",
]

log = logging.getLogger(__name__)

OHLCV_PAGE = 1000
"""Candles per ``fetch_ohlcv`` request: Binance USDT-M allows 1500, ccxt 4.5 caps at 1000."""

def describe_error(exc: BaseException, exchange: Any = None) -> str:
    """``"ClassName: redacted message"`` of an exception raised by ``exchange``.

    The exchange's ``apiKey``, ``secret`` and ``password`` are read only to mask them.
    """
    secrets = tuple(getattr(exchange, k, None) for k in ("apiKey", "secret", "password"))
    return error_text(exc, secrets, limit=400)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class LiveResumeState(NamedTuple):
    """Resume state of one :class:`LiveCandlePartition`.

    Attributes
    ----------
    last_ts : int or None
        Open time (ms UTC) of the last candle emitted (or, after an empty warm-up, of
        the last candle closed at start); polling continues at ``last_ts + timeframe``.
        None: the warm-up chunk was not emitted yet.
    done : bool
        True once the ``last=True`` chunk was emitted.
    """

    last_ts: int | None
    done: bool


class LiveCandlePartition(StatefulSourcePartition[CandleChunk, LiveResumeState]):
    """Closed candles of one symbol, polled with ``fetch_ohlcv``.

    Fresh start (``last_ts`` None): the first batch is one chunk of the
    ``warmup_candles`` closed candles before exchange time, ``warmup=True`` (empty if
    0; fetched again whole if a page fails). Then each batch, every ``poll_s`` seconds
    of wall time, fetches the candles closed since ``last_ts`` (all pages: an outage is
    filled) and returns them as one chunk, or nothing when none closed. Candles missing
    from the exchange's own data are skipped, not invented. A resumed partition
    (Bytewax recovery restores the downstream indicators too) has no warm-up.

    With ``end_ms``, only candles opening before ``end_ms`` are emitted; once exchange
    time shows all of them closed, the chunk holding the newest ones (possibly empty)
    carries ``last=True`` and the next call raises ``StopIteration``.

    Parameters
    ----------
    exchange : ccxt.Exchange
        Used only by this partition (sync ccxt is not thread-safe).
    symbol : str
        Config symbol written in the chunks, ``"BTC/USDT"``.
    market : str
        ccxt market polled, ``"BTC/USDT:USDT"``.
    timeframe : str
    warmup_candles : int
        >= 0.
    poll_s : float
        Wall seconds between polls, > 0.
    end_ms : int, optional
        Exchange time (ms UTC) after which the stream ends.
    resume_state : LiveResumeState or tuple, optional
    page_limit : int
        Candles per request.
    max_pages : int
        Requests per batch; a longer catch-up goes on at once in the next batch.

    Raises
    ------
    ValueError
        Bad timeframe, ``warmup_candles < 0``, ``poll_s <= 0``, ``page_limit < 1``.
    """

    def __init__(
        self,
        exchange: Any,
        symbol: str,
        market: str,
        timeframe: str,
        warmup_candles: int,
        poll_s: float,
        end_ms: int | None = None,
        resume_state: LiveResumeState | tuple | None = None,
        page_limit: int = OHLCV_PAGE,
        max_pages: int = 20,
    ) -> None:
        if warmup_candles < 0:
            raise ValueError(f"warmup_candles must be >= 0, got {warmup_candles}")
        if not poll_s > 0:
            raise ValueError(f"poll_s must be > 0, got {poll_s}")
        if page_limit < 1 or max_pages < 1:
            raise ValueError("page_limit and max_pages must be >= 1")
        self.ex = exchange
        self.symbol = symbol
        self.market = market
        self.timeframe = timeframe
        self.tf_ms = timeframe_to_ms(timeframe)
        self.warmup_candles = int(warmup_candles)
        self.poll_s = float(poll_s)
        self.end_ms = end_ms
        self.page_limit = int(page_limit)
        self.max_pages = int(max_pages)
        state = LiveResumeState(None, False) if resume_state is None else LiveResumeState(
            *resume_state
        )
        self._last: int | None = None if state.last_ts is None else int(state.last_ts)
        self._done = bool(state.done)
        self._awake: datetime | None = None
        self._errors_in_row = 0
        self.error_count = 0
        """Total ccxt errors met (all kinds)."""
        self.error_counts: dict[str, int] = {}
        """ccxt errors met, by class name."""

    # ------------------------------------------------------------------ Bytewax

    def next_batch(self) -> list[CandleChunk]:
        """At most one chunk: the warm-up, the newly closed candles, or the end.

        Raises
        ------
        StopIteration
            After the ``last=True`` chunk was emitted.
        """
        if self._done:
            raise StopIteration
        try:
            server_ms = self.ex.fetch_time()
            if server_ms is None:
                raise ccxt.ExchangeError("fetch_time returned no serverTime")
        except ccxt.BaseError as e:
            self._failed(e)
            return []
        closed = (int(server_ms) // self.tf_ms) * self.tf_ms - self.tf_ms  # newest closed open
        if self._last is None:
            return self._warmup(closed)
        return self._poll(closed)

    def next_awake(self) -> datetime | None:
        """Wall time of the next poll (None: at once)."""
        return self._awake

    def snapshot(self) -> LiveResumeState:
        """Open time of the last emitted candle and whether the stream ended."""
        return LiveResumeState(self._last, self._done)

    def close(self) -> None:
        """Close the exchange's HTTP session (errors ignored)."""
        try:
            self.ex.close()
        except Exception as e:  # noqa: BLE001 - best effort at shutdown
            log.debug("closing the exchange session: %s", type(e).__name__)

    # ------------------------------------------------------------------ internals

    def _warmup(self, closed: int) -> list[CandleChunk]:
        rows = _empty_rows()
        if self.warmup_candles:
            since = closed - (self.warmup_candles - 1) * self.tf_ms
            rows, complete, err = self._fetch_range(since, self._upto(closed))
            if err is not None or not complete:
                if err is not None:
                    self._failed(err)
                else:
                    self._awake = None
                return []  # the warm-up goes out whole, or not at all
        self._ok()
        rows = rows[rows[:, 0] <= closed]
        self._last = int(rows[-1, 0]) if len(rows) else closed
        ended = self._ended(closed)
        self._done = ended
        return [self._chunk(rows, last=ended, warmup=True)]

    def _poll(self, closed: int) -> list[CandleChunk]:
        assert self._last is not None
        since = self._last + self.tf_ms
        upto = self._upto(closed)
        rows, complete, err = (_empty_rows(), True, None)
        if since <= upto:
            rows, complete, err = self._fetch_range(since, upto)
        if err is not None:
            self._failed(err)
        else:
            self._ok()
            if not complete:
                self._awake = None  # more pages to catch up: at once
        ended = err is None and complete and self._ended(closed)
        if len(rows):
            self._last = int(rows[-1, 0])
        if ended:
            self._done = True
        if not len(rows) and not ended:
            return []
        return [self._chunk(rows, last=ended, warmup=False)]

    def _upto(self, closed: int) -> int:
        """Newest open time to fetch: closed, and before ``end_ms``."""
        if self.end_ms is None:
            return closed
        return min(closed, ((self.end_ms - 1) // self.tf_ms) * self.tf_ms)

    def _ended(self, closed: int) -> bool:
        """Every candle opening before ``end_ms`` is closed (and was fetched)."""
        return self.end_ms is not None and closed + self.tf_ms >= self.end_ms

    def _fetch_range(
        self, since: int, upto: int
    ) -> tuple[np.ndarray, bool, ccxt.BaseError | None]:
        """Candles with ``since <= ts <= upto`` as an (n, 6) float64 array, ts ascending
        and unique; ``complete`` False when ``max_pages`` ran out; the error that cut
        the fetch short, if any (rows before it are kept)."""
        pages: list[np.ndarray] = []
        cursor, complete, err = since, True, None
        if since > upto:
            return _empty_rows(), True, None
        for _ in range(self.max_pages):
            try:
                raw = self.ex.fetch_ohlcv(
                    self.market, self.timeframe, since=cursor, limit=self.page_limit,
                    params={"until": upto + self.tf_ms - 1},
                )
            except ccxt.BaseError as e:
                err = e
                break
            page = _rows(raw)
            if not len(page):
                break
            pages.append(page[(page[:, 0] >= cursor) & (page[:, 0] <= upto)])
            newest = int(page[:, 0].max())
            if newest + self.tf_ms <= cursor or newest >= upto:
                break
            cursor = newest + self.tf_ms
        else:
            complete = cursor > upto
        rows = np.concatenate(pages) if pages else _empty_rows()
        if len(rows):
            _, first = np.unique(rows[:, 0], return_index=True)  # sorted, first copy kept
            rows = rows[first]
        return rows, complete, err

    def _chunk(self, rows: np.ndarray, last: bool, warmup: bool) -> CandleChunk:
        cols = [np.ascontiguousarray(rows[:, i]) for i in range(1, 6)]
        return CandleChunk(
            self.symbol, self.timeframe, rows[:, 0].astype(np.int64), *cols,
            first_row=-1, last=last, warmup=warmup,
        )

    def _ok(self) -> None:
        self._errors_in_row = 0
        self._awake = _utcnow() + timedelta(seconds=self.poll_s)

    def _failed(self, exc: ccxt.BaseError) -> None:
        self._errors_in_row += 1
        self.error_count += 1
        name = type(exc).__name__
        self.error_counts[name] = self.error_counts.get(name, 0) + 1
        wait = backoff_s(self.poll_s, self._errors_in_row, backoff_cap_s(exc))
        log.warning("live candles %s: %s (error %d in a row, retry in %.1f s)", self.symbol,
                    describe_error(exc, self.ex), self._errors_in_row, wait)
        self._awake = _utcnow() + timedelta(seconds=wait)


def _empty_rows() -> np.ndarray:
    return np.empty((0, 6), dtype=np.float64)


def _rows(raw: list) -> np.ndarray:
    """ccxt OHLCV rows to an (n, 6) float64 array (None -> NaN)."""
    if not raw:
        return _empty_rows()
    return np.array([[np.nan if v is None else v for v in r[:6]] for r in raw],
                    dtype=np.float64).reshape(-1, 6)
