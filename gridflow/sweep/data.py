"""One symbol's candles, validated, with what the sweep kernel needs precomputed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gridflow.chunks import CandleChunk
from gridflow.config.candles import CandleRules
from gridflow.data.candle_files import parse_candle_file_name, read_candle_file
from gridflow.data.funding import funding_per_candle, last_rate, read_funding
from gridflow.data.store import is_series_dir, read_manifest
from gridflow.operators.validation import NO_TS, validate_chunk
from gridflow.timeframes import is_hour_mark, timeframe_to_ms, utc_day


@dataclass(frozen=True)
class SweepData:
    """Validated candles of one symbol for sweeps.

    Attributes
    ----------
    symbol, timeframe : str
        ccxt symbol (``"BTC/USDT"``) and timeframe (``"1h"``); ``tf_ms`` in ms.
    ts : int64 (T,)
        Candle open times, ms UTC, strictly increasing.
    open, high, low, close, volume : float64 (T,)
        Quote currency (volume in base).
    fund : float64 (T,)
        Funding rate falling at each candle's close (0 without a funding series).
    funding_rate : float64 (T,)
        The last settled funding rate known at each close
        (:func:`~gridflow.data.funding.last_rate`; NaN without a funding series): what
        ``grid_funding`` reads.
    day : int64 (T,)
        UTC day number of each close; ``hourly`` uint8 (T,) 1 where the close is on a
        whole hour.
    rejected : int
        Rows refused by the candle validation (counted, never traded).
    """

    symbol: str
    timeframe: str
    tf_ms: int
    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    fund: np.ndarray
    day: np.ndarray = field(repr=False)
    hourly: np.ndarray = field(repr=False)
    rejected: int = 0
    hour_idx: np.ndarray = field(default=None, repr=False)
    hour_cum: np.ndarray = field(default=None, repr=False)
    day_cum: np.ndarray = field(default=None, repr=False)
    funding_rate: np.ndarray = field(default=None, repr=False)

    def __post_init__(self) -> None:
        hourly = self.hourly.astype(bool)
        ends = np.ones(len(self.day), bool)
        ends[:-1] = self.day[1:] != self.day[:-1]
        object.__setattr__(self, "hour_idx", np.flatnonzero(hourly).astype(np.int64))
        object.__setattr__(self, "hour_cum", np.r_[0, np.cumsum(hourly)].astype(np.int64))
        object.__setattr__(self, "day_cum", np.r_[0, np.cumsum(ends)].astype(np.int64))

    @classmethod
    def from_arrays(cls, symbol: str, timeframe: str, ts, open, high, low, close,
                    volume=None, funding: tuple[np.ndarray, np.ndarray] | None = None,
                    rules: CandleRules | None = None) -> "SweepData":
        """Validate candles (the replay's rules, ``rules`` default ``CandleRules()``;
        refused rows are dropped and counted) and precompute the per-candle funding, day
        and hour marks.

        Raises
        ------
        ValueError
            If no candle passes validation.
        """
        tf_ms = timeframe_to_ms(timeframe)
        n = len(ts)
        chunk = CandleChunk(symbol, timeframe, np.asarray(ts, np.int64),
                            *(np.asarray(x, np.float64) for x in (open, high, low, close)),
                            np.zeros(n) if volume is None else np.asarray(volume, np.float64),
                            first_row=0)
        ok, _events, _ = validate_chunk(chunk, NO_TS, rules=rules)
        if len(ok) == 0:
            raise ValueError(f"{symbol}: no valid candle among {n} rows")
        t = ok.ts
        fund = (funding_per_candle(t, tf_ms, *funding) if funding is not None
                else np.zeros(len(t)))
        close_ts = t + tf_ms
        rate = (last_rate(close_ts, *funding) if funding is not None
                else np.full(len(t), np.nan))
        return cls(symbol, timeframe, tf_ms, t, ok.open, ok.high, ok.low, ok.close,
                   ok.volume, fund, utc_day(close_ts),
                   is_hour_mark(close_ts).astype(np.uint8), n - len(ok), funding_rate=rate)

    @classmethod
    def from_file(cls, path: str | Path, symbol: str | None = None,
                  timeframe: str | None = None, funding: str | Path | None = None,
                  rules: CandleRules | None = None) -> "SweepData":
        """Read a candle file (and optionally a funding file) and validate it like the
        replay does (``rules`` default ``CandleRules()``).

        Raises
        ------
        FileNotFoundError, ValueError
            A missing or unreadable file, or no valid candle.
        """
        p = Path(path)
        if is_series_dir(p):  # a series of the market-data store
            m = read_manifest(p)
            symbol, timeframe = symbol or m.symbol, timeframe or m.timeframe
        elif not p.is_file():
            raise FileNotFoundError(f"candle file not found: {p}")
        if symbol is None or timeframe is None:
            _, s, tf = parse_candle_file_name(p.name)
            symbol, timeframe = symbol or s, timeframe or tf
        cols = read_candle_file(p)
        fund = read_funding(funding) if funding is not None else None
        return cls.from_arrays(symbol, timeframe, cols["ts"], cols["open"], cols["high"],
                               cols["low"], cols["close"], cols["volume"], fund, rules)

    def __len__(self) -> int:
        return len(self.ts)

    def index(self, ts_ms: int | None, default: int) -> int:
        """Index of the first candle opening at or after ``ts_ms`` (``default`` for
        None)."""
        if ts_ms is None:
            return default
        return int(np.searchsorted(self.ts, ts_ms, side="left"))
