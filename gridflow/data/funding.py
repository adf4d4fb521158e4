"""Funding rates of perpetual futures: bundled files, reading, and per-candle sums.

A funding file is a gzip (or plain) CSV ``timestamp,funding_rate``: the settlement time
in ms UTC and the rate per settlement period as a fraction (0.0001 = 0.01 %), e.g.
``binanceusdm_BTC_USDT_funding.csv.gz`` (Binance USDT-M settles every 8 h at 00/08/16
UTC). A position open at a settlement pays ``side * amount * mark * rate`` (longs pay a
positive rate, shorts receive it); the engines use the candle close as the mark.
"""

from __future__ import annotations

import gzip
import io
import re
from pathlib import Path

import numpy as np

from gridflow.config.bundled import FUNDING_DIR
from gridflow.series_spec import FUNDING, SeriesKey, is_spec, parse_spec

MAX_ABS_RATE = 0.05
"""Rates beyond +-5 % per settlement are refused as corrupt (Binance caps at 0.3-2 %)."""

RATE_STALE_MS = 86_400_000
"""A settled rate older than this (24 h: three of Binance's 8 h periods; venues settle
every 1-8 h) is no longer known (:func:`last_rate`)."""

FUNDING_RATE = "funding_rate"
"""Input name: the rate of the last settlement at or before a candle's close
(:func:`last_rate`), a fraction; what ``grid_funding`` quotes on."""

FUNDING_SETTLED = "funding_settled"
"""Input name: the sum of the rates settled within a candle (:func:`funding_per_candle`),
which a position open at its close pays."""


def rate_ok(rate: np.ndarray) -> np.ndarray:
    """bool (n,): which funding rates are usable: finite and within +-``MAX_ABS_RATE``."""
    rate = np.asarray(rate, np.float64)
    return np.isfinite(rate) & (np.abs(rate) <= MAX_ABS_RATE)

_NAME = re.compile(r"^(?:[a-z0-9]+_)?([A-Z0-9]+)_([A-Z0-9]+)_funding\.csv(?:\.gz)?$")


def bundled_funding_files() -> dict[str, Path]:
    """Symbol (ccxt, ``"BTC/USDT"``) -> path of the bundled Binance USDT-M funding file."""
    return {funding_file_symbol(p): p for p in sorted(FUNDING_DIR.glob("*_funding.csv.gz"))}


def funding_file_symbol(path: str | Path) -> str:
    """The symbol a funding file name says (``binanceusdm_BTC_USDT_funding.csv.gz`` ->
    ``"BTC/USDT"``), or a store series its spec (``binanceusdm:BTC/USDT:USDT@funding`` ->
    ``"BTC/USDT:USDT"``).

    Raises
    ------
    ValueError
        If the name does not follow ``[exchange_]BASE_QUOTE_funding.csv[.gz]``, or the
        spec is not of a funding series.
    """
    if is_spec(str(path)):  # a series of the market-data store names its symbol
        return _funding_key(str(path)).symbol
    m = _NAME.match(Path(path).name)
    if m is None:
        raise ValueError(f"cannot read a symbol from funding file name {Path(path).name!r}; "
                         "expected [exchange_]BASE_QUOTE_funding.csv[.gz] or give symbol")
    return f"{m.group(1)}/{m.group(2)}"


def _funding_key(spec: str) -> SeriesKey:
    key = parse_spec(spec)
    if key.timeframe != FUNDING:
        raise ValueError(f"{spec!r} is a candle series; funding rates are "
                         f"'{key.exchange}:{key.symbol}@{FUNDING}'")
    return key


def funding_source_exists(path: str | Path) -> bool:
    """Whether a funding file, or a funding series of the market-data store (a spec
    ``exchange:symbol@funding``, :mod:`gridflow.data.store`), is there.

    Raises
    ------
    ValueError
        A spec that is not of a funding series.
    """
    if is_spec(str(path)):
        from gridflow.data.store import CandleStore

        return CandleStore().manifest(_funding_key(str(path))) is not None
    return Path(path).is_file()


def read_funding(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read and validate a funding file, or a funding series of the market-data store
    named by its spec (``binanceusdm:BTC/USDT:USDT@funding``, what ``gridflow data
    download --funding`` stores; the store is ``$GRIDFLOW_STORE``).

    Returns
    -------
    (ts, rate) : int64 (n,), float64 (n,)
        Settlement times (ms UTC, strictly increasing) and rates (fractions).

    Raises
    ------
    FileNotFoundError
        If the file does not exist, or the store has no such series.
    ValueError
        Naming the file (or series) and the first bad row: a wrong header, an unparsable
        row, a non-finite rate or one beyond ``MAX_ABS_RATE``, times not strictly
        increasing; a spec of a candle series.
    """
    if is_spec(str(path)):
        return _read_stored(str(path))
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"funding file not found: {p}")
    raw = p.read_bytes()
    text = gzip.decompress(raw).decode() if raw[:2] == b"\x1f\x8b" else raw.decode()
    head, _, body = text.partition("\n")
    if head.strip().replace(" ", "") != "timestamp,funding_rate":
        raise ValueError(f"{p.name}: header must be 'timestamp,funding_rate', got {head!r}")
    try:
        arr = np.loadtxt(io.StringIO(body), delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise ValueError(f"{p.name}: unparsable row ({exc})") from exc
    if arr.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    return _checked(p.name, arr[:, 0].astype(np.int64), arr[:, 1].copy(), first_row=2)


def _read_stored(spec: str) -> tuple[np.ndarray, np.ndarray]:
    from gridflow.data.store import CandleStore

    key, store = _funding_key(spec), CandleStore()
    if store.manifest(key) is None:
        raise store.missing(key)
    ts, rate = store.read_funding(key)
    return _checked(spec, np.asarray(ts, np.int64), np.asarray(rate, np.float64), first_row=1)


def _checked(name: str, ts: np.ndarray, rate: np.ndarray, first_row: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """``(ts, rate)`` once every rate is usable and the times strictly increase; else
    ValueError naming ``name`` and the row (counted from ``first_row``)."""
    bad = ~rate_ok(rate)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name}: row {i + first_row}: funding rate {rate[i]!r} is not "
                         f"finite or beyond +-{MAX_ABS_RATE}")
    if len(ts) > 1 and not (np.diff(ts) > 0).all():
        i = int(np.argmax(np.diff(ts) <= 0)) + 1
        raise ValueError(f"{name}: row {i + first_row}: timestamp {ts[i]} is not after "
                         f"{ts[i - 1]}")
    return ts, rate


def funding_per_candle(ts: np.ndarray, tf_ms: int, f_ts: np.ndarray,
                       f_rate: np.ndarray) -> np.ndarray:
    """Funding rate falling to each candle: the sum of the rates of the settlements in
    ``(open, open + tf_ms]`` (a position open at the close pays them).

    Parameters
    ----------
    ts : int64 (n,)
        Candle open times, ms UTC, strictly increasing.
    tf_ms : int
        Candle timeframe, ms.
    f_ts, f_rate : int64 (m,), float64 (m,)
        Settlements (:func:`read_funding`).

    Returns
    -------
    float64 (n,)
        0 where no settlement falls in the candle; a single settlement's rate is copied
        exactly (no cumulative-sum rounding).
    """
    ts = np.asarray(ts, np.int64)
    out = np.zeros(len(ts))
    if len(ts) == 0 or len(f_ts) == 0:
        return out
    idx = np.searchsorted(ts, f_ts, side="left") - 1  # last candle opening before T
    ok = idx >= 0
    ok[ok] &= f_ts[ok] <= ts[idx[ok]] + tf_ms
    np.add.at(out, idx[ok], f_rate[ok])
    return out


def last_rate(close_ts: np.ndarray, f_ts: np.ndarray, f_rate: np.ndarray) -> np.ndarray:
    """The funding rate known at each candle close: the rate of the last settlement at
    or before ``close_ts`` (ms UTC); NaN before the first one, and once that settlement
    is older than :data:`RATE_STALE_MS` (a series that ended or has a hole says nothing
    about the rate now). The answer at a close depends only on the settlements up to it
    (not on the series' length or spacing), so a live feed holding the last few
    settlements gets the replay's answer from the whole file.

    Parameters
    ----------
    close_ts : int64 (n,)
        Candle close times, ms UTC.
    f_ts, f_rate : int64 (m,), float64 (m,)
        Settlements (:func:`read_funding`).

    Returns
    -------
    float64 (n,)
        Fractions per settlement (0.0001 = 0.01 %); the settled rate itself, copied.
    """
    close_ts = np.asarray(close_ts, np.int64)
    out = np.full(len(close_ts), np.nan)
    if len(f_ts) == 0:
        return out
    f_ts = np.asarray(f_ts, np.int64)
    i = np.searchsorted(f_ts, close_ts, side="right") - 1
    ok = i >= 0
    ok[ok] &= close_ts[ok] - f_ts[i[ok]] <= RATE_STALE_MS
    out[ok] = np.asarray(f_rate, np.float64)[i[ok]]
    return out


def store_funding_of(candle_specs: list[str]) -> dict[str, str]:
    """The funding series the market-data store holds for store candle series.

    Parameters
    ----------
    candle_specs : list of str
        ``exchange:symbol@timeframe`` specs (file paths among them are skipped).

    Returns
    -------
    dict
        Symbol -> ``exchange:symbol@funding`` for each series whose exchange and symbol
        have funding rates in the store (``gridflow data download --funding``); a
        symbol without them (spot, or never downloaded) is left out.
    """
    from gridflow.data.store import CandleStore

    store, out = CandleStore(), {}
    for spec in candle_specs:
        if not is_spec(spec):
            continue
        key = parse_spec(spec)
        fkey = SeriesKey(key.exchange, key.symbol, FUNDING)
        if key.timeframe != FUNDING and store.manifest(fkey) is not None:
            out.setdefault(key.symbol, fkey.spec)
    return out


def with_store_funding(funding: tuple, data: tuple) -> tuple | None:
    """A run's funding files with the store's funding of its store candle series added
    (:func:`store_funding_of`) for the symbols that have none; None when nothing is
    added. What a replay launched by ``gridflow replay`` or the app's Backtest tab
    books by default, so a perpetual backtest from the store pays its funding.

    Parameters
    ----------
    funding : tuple of FundingFile
        The run's funding files (``GridflowConfig.funding``).
    data : tuple of DataFile
        The run's candle data (``GridflowConfig.data``); files among them are skipped.
    """
    from gridflow.config.models import FundingFile

    found = store_funding_of([d.path for d in data])
    have = {f.symbol or funding_file_symbol(f.path) for f in funding}
    extra = tuple(FundingFile(path=spec) for sym, spec in found.items() if sym not in have)
    return (*funding, *extra) if extra else None


def funding_flag(values: list[str] | None) -> list[str] | None:
    """The paths a ``--funding`` flag gives (files made absolute, store specs as they
    are): ``[]`` for ``--funding none`` (traded as spot), None when the flag is absent
    (the run's default funding)."""
    from gridflow.series_spec import spec_or_path

    if values is None:
        return None
    return [] if values == ["none"] else [spec_or_path(v) for v in values]
