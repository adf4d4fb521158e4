"""The local market-data store: candles and funding rates per exchange, symbol and
timeframe, in Parquet files with a manifest each.

Layout under the store's root (``GRIDFLOW_STORE``, default ``./gridflow_data``)::

    {exchange}/{BASE_QUOTE[-SETTLE]}/{timeframe}/candles.parquet   ts, open, high, low, close, volume
    {exchange}/{BASE_QUOTE[-SETTLE]}/{timeframe}/manifest.json     SeriesManifest
    {exchange}/{BASE_QUOTE[-SETTLE]}/funding/funding.parquet       ts, rate
    {exchange}/{BASE_QUOTE[-SETTLE]}/funding/manifest.json         SeriesManifest

A series is named by a spec ``exchange:symbol@timeframe`` (``binance:BTC/USDT@1h``,
``binanceusdm:BTC/USDT:USDT@1m``); a series directory reads like a candle file
(:func:`gridflow.data.candle_files.read_candle_file` takes it), so replay, sweep,
walk-forward, the app and the notebooks read either.

Units: ``ts`` int64 candle open time (funding: settlement time), ms UTC; prices float64
in quote currency; volume float64 in base currency; funding rates float64 fractions
per settlement. Rows are stored sorted by ``ts``, unique, uncompressed (a read is a
memory map: tens of millions of candles per second).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, Field

from gridflow.series_spec import (
    DATA_FILE,
    FUNDING,
    FUNDING_FILE,
    MANIFEST_FILE,
    SeriesKey,
    is_spec,
    parse_spec,
    series_dir_spec,
    store_root,
)
from gridflow.timeframes import timeframe_to_ms

__all__ = ["CANDLE_COLUMNS", "FUNDING", "CandleStore", "Gap", "Provenance", "SeriesKey",
           "SeriesManifest", "is_spec", "is_series_dir", "parse_spec", "read_manifest",
           "read_series_dir",
           "source_name", "store_root"]

CANDLE_COLUMNS = ("ts", "open", "high", "low", "close", "volume")
_FUNDING_COLUMNS = ("ts", "rate")


class Gap(BaseModel):
    """Candles missing from a series, ``[start_ms, end_ms)`` (open times)."""

    start_ms: int
    end_ms: int
    missing: int = Field(ge=1)
    reason: str = "exchange"
    """``exchange``: the venue has no candle there (asked twice, e.g. maintenance)."""


class Provenance(BaseModel):
    """Where rows of a series came from."""

    source: str
    """``ccxt:binanceusdm fetch_ohlcv`` or ``file:binance_BTC_USDT_1h.csv.gz``."""
    at_ms: int
    first_ts: int
    last_ts: int
    rows: int
    version: str = ""


class SeriesManifest(BaseModel):
    """What a series directory holds: its range, the gaps known to be the venue's, the
    rows the validator refused (by reason) and where its rows came from."""

    exchange: str
    symbol: str
    timeframe: str
    rows: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    known_gaps: list[Gap] = Field(default_factory=list)
    refused: dict[str, int] = Field(default_factory=dict)
    provenance: list[Provenance] = Field(default_factory=list)

    def known_missing(self) -> np.ndarray:
        """Open times (int64, sorted) inside the known gaps, for a candle series."""
        if not self.known_gaps:
            return np.empty(0, np.int64)
        step = timeframe_to_ms(self.timeframe)
        return np.concatenate([np.arange(g.start_ms, g.end_ms, step, dtype=np.int64)
                               for g in self.known_gaps])


def is_series_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a store series directory (holds a manifest)."""
    p = Path(path)
    return p.is_dir() and (p / MANIFEST_FILE).is_file()


def read_manifest(path: str | os.PathLike[str]) -> SeriesManifest:
    """The manifest of a series directory.

    Raises
    ------
    FileNotFoundError
        ``path`` is no series directory.
    """
    p = Path(path) / MANIFEST_FILE
    if not p.is_file():
        raise FileNotFoundError(f"no market-data series in {path} (no {MANIFEST_FILE})")
    return SeriesManifest.model_validate_json(p.read_text(encoding="utf-8"))


def _read_table(path: Path, columns: tuple[str, ...]) -> dict[str, np.ndarray]:
    if not path.is_file():
        return {c: np.empty(0, np.int64 if c == "ts" else np.float64) for c in columns}
    table = pq.read_table(path, columns=list(columns), memory_map=True, use_threads=False)
    return {c: np.ascontiguousarray(table.column(c).to_numpy()) for c in columns}


def read_series_dir(path: str | os.PathLike[str], start_ms: int | None = None,
                    end_ms: int | None = None) -> dict[str, np.ndarray]:
    """The candles of a series directory, as
    :func:`~gridflow.data.candle_files.read_candle_file` gives a file's (``ts`` int64,
    the prices and volume float64, shape (n,) each), optionally ``start_ms <= ts <
    end_ms``.

    Raises
    ------
    FileNotFoundError
        ``path`` is no series directory.
    """
    p = Path(path)
    if not is_series_dir(p):
        raise FileNotFoundError(f"no market-data series in {p} (no {MANIFEST_FILE})")
    cols = _read_table(p / DATA_FILE, CANDLE_COLUMNS)
    if start_ms is not None or end_ms is not None:
        ts = cols["ts"]
        lo = 0 if start_ms is None else int(np.searchsorted(ts, start_ms, "left"))
        hi = ts.size if end_ms is None else int(np.searchsorted(ts, end_ms, "left"))
        cols = {k: v[lo:hi] for k, v in cols.items()}
    return cols


def _atomic_write_table(path: Path, cols: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({k: pa.array(v) for k, v in cols.items()})
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        # plain encoding, no compression: reading is a copy out of a memory map
        pq.write_table(table, tmp, compression="none", use_dictionary=False,
                       row_group_size=1 << 20)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _merge(old: dict[str, np.ndarray], new: dict[str, np.ndarray]
           ) -> tuple[dict[str, np.ndarray], int]:
    """``old`` and ``new`` rows sorted by ts, one per ts (a new row wins); the number
    of ts that were not in ``old``."""
    if old["ts"].size == 0:
        order = np.argsort(new["ts"], kind="stable")
        ts = new["ts"][order]
        keep = np.r_[np.diff(ts) != 0, True] if ts.size else np.empty(0, bool)
        return {k: v[order][keep] for k, v in new.items()}, int(keep.sum())
    added = int(np.isin(new["ts"], old["ts"], invert=True).sum())
    both = {k: np.concatenate([old[k], new[k]]) for k in old}
    order = np.argsort(both["ts"], kind="stable")
    ts = both["ts"][order]
    keep = np.r_[np.diff(ts) != 0, True]  # the last of equal ts: the new row
    return {k: v[order][keep] for k, v in both.items()}, added


def source_name(path: str | os.PathLike[str]) -> str:
    """How a run names a candle source: a store series directory by its spec
    (``binance:BTC/USDT@1h``, from its manifest), a file by its name."""
    return series_dir_spec(path) or Path(path).name


class CandleStore:
    """The store under ``root`` (:func:`store_root`): read, write and describe series.

    Writes replace files atomically (a reader never sees half a file); one writer per
    series at a time is assumed (the downloader).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = store_root(root)

    # ---- paths and manifests -------------------------------------------------------
    def series_dir(self, key: SeriesKey) -> Path:
        return self.root.joinpath(*key.parts())

    def manifest(self, key: SeriesKey) -> SeriesManifest | None:
        """The series' manifest, or None when the store has no such series."""
        d = self.series_dir(key)
        return read_manifest(d) if is_series_dir(d) else None

    def save_manifest(self, key: SeriesKey, m: SeriesManifest) -> None:
        _atomic_write_text(self.series_dir(key) / MANIFEST_FILE, m.model_dump_json(indent=1))

    def keys(self) -> list[SeriesKey]:
        """Every series of the store (from the manifests), sorted by spec."""
        out = []
        for p in sorted(self.root.glob(f"*/*/*/{MANIFEST_FILE}")):
            d = json.loads(p.read_text(encoding="utf-8"))
            out.append(SeriesKey(d["exchange"], d["symbol"], d["timeframe"]))
        return sorted(out, key=lambda k: k.spec)

    # ---- candles -------------------------------------------------------------------
    def read(self, key: SeriesKey, start_ms: int | None = None,
             end_ms: int | None = None) -> dict[str, np.ndarray]:
        """Candles of ``key`` (``start_ms <= ts < end_ms``); see :func:`read_series_dir`.

        Raises
        ------
        FileNotFoundError
            The store has no such series (names the spec and the store).
        """
        d = self.series_dir(key)
        if not is_series_dir(d):
            raise self.missing(key)
        return read_series_dir(d, start_ms, end_ms)

    def missing(self, key: SeriesKey) -> FileNotFoundError:
        """The error for a series the store lacks: it names the spec, the store, how to
        fill it, and the stored series of the same exchange, timeframe and base/quote
        (downloads store a market's own symbol: ``binanceusdm:BTC/USDT:USDT@1h`` when
        ``BTC/USDT`` was asked for)."""
        base = key.symbol.split(":")[0]
        near = [k.spec for k in self.keys() if k != key and k.exchange == key.exchange
                and k.timeframe == key.timeframe and k.symbol.split(":")[0] == base]
        how = "gridflow data download --funding" if key.timeframe == FUNDING else \
            "gridflow data download / gridflow data import"
        hint = f"; the store has {', '.join(near)}" if near else ""
        return FileNotFoundError(f"{key.spec} is not in the market-data store {self.root}"
                                 f" ({how}){hint}")

    def write(self, key: SeriesKey, cols: dict[str, np.ndarray], provenance: Provenance,
              refused: dict[str, int] | None = None) -> int:
        """Merge validated candles into the series (a row at an existing ts replaces
        it) and update its manifest; returns the number of new open times.

        Raises
        ------
        ValueError
            Columns missing or of different lengths.
        """
        if key.timeframe == FUNDING:
            raise ValueError("funding rates go through write_funding")
        return self._write(key, cols, CANDLE_COLUMNS, DATA_FILE, provenance, refused)

    def _write(self, key: SeriesKey, cols: dict[str, np.ndarray], names: tuple[str, ...],
               data: str, provenance: Provenance, refused: dict[str, int] | None) -> int:
        if set(cols) != set(names) or len({len(cols[c]) for c in names}) != 1:
            raise ValueError(f"need equal-length columns {names}, got "
                             f"{ {k: len(v) for k, v in cols.items()} }")
        new = {c: np.asarray(cols[c], np.int64 if c == "ts" else np.float64) for c in names}
        d = self.series_dir(key)
        merged, added = _merge(_read_table(d / data, names), new)
        _atomic_write_table(d / data, merged)
        m = self.manifest(key) or SeriesManifest(exchange=key.exchange, symbol=key.symbol,
                                                 timeframe=key.timeframe)
        m.rows = int(merged["ts"].size)
        m.first_ts = int(merged["ts"][0]) if m.rows else None
        m.last_ts = int(merged["ts"][-1]) if m.rows else None
        for reason, n in (refused or {}).items():
            m.refused[reason] = m.refused.get(reason, 0) + int(n)
        if provenance.rows or refused:
            m.provenance.append(provenance)
        self.save_manifest(key, m)
        return added

    def add_known_gaps(self, key: SeriesKey, gaps: list[Gap]) -> None:
        """Record gaps the venue itself has (never fetched again)."""
        m = self.manifest(key) or SeriesManifest(exchange=key.exchange, symbol=key.symbol,
                                                 timeframe=key.timeframe)
        seen = {(g.start_ms, g.end_ms) for g in m.known_gaps}
        m.known_gaps += [g for g in gaps if (g.start_ms, g.end_ms) not in seen]
        m.known_gaps.sort(key=lambda g: g.start_ms)
        self.save_manifest(key, m)

    # ---- funding -------------------------------------------------------------------
    def read_funding(self, key: SeriesKey) -> tuple[np.ndarray, np.ndarray]:
        """Settlement times (int64 ms UTC) and rates (float64 fractions) of ``key``
        (timeframe :data:`FUNDING`), sorted; empty when none is stored."""
        cols = _read_table(self.series_dir(key) / FUNDING_FILE, _FUNDING_COLUMNS)
        return cols["ts"], cols["rate"]

    def write_funding(self, key: SeriesKey, ts: np.ndarray, rate: np.ndarray,
                      provenance: Provenance, refused: dict[str, int] | None = None) -> int:
        """Merge funding rates into the series ``key`` (timeframe :data:`FUNDING`);
        returns the number of new settlement times."""
        if key.timeframe != FUNDING:
            raise ValueError(f"funding rates go into {key.exchange}:{key.symbol}@{FUNDING}")
        return self._write(key, {"ts": ts, "rate": rate}, _FUNDING_COLUMNS, FUNDING_FILE,
                           provenance, refused)
