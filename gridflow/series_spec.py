"""Names of market-data series: ``exchange:symbol@timeframe``.

``binance:BTC/USDT@1h`` is Binance spot's hourly BTC/USDT candles,
``binanceusdm:BTC/USDT:USDT@1m`` the USDⓈ-M perpetual's minute candles and
``binanceusdm:BTC/USDT:USDT@funding`` its funding rates. The exchange is a ccxt id and
the symbol ccxt's unified one. Where a candle file path is accepted (``data`` of a
preset, ``--data``), a spec names a series of the market-data store
(:mod:`gridflow.data.store`) instead.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gridflow.timeframes import timeframe_to_ms

__all__ = ["DATA_FILE", "FUNDING", "FUNDING_FILE", "MANIFEST_FILE", "SeriesKey", "is_spec",
           "parse_spec", "series_dir_spec", "source_identity", "spec_or_path",
           "store_root"]

FUNDING = "funding"
"""The timeframe slot of a funding-rate series (``exchange:symbol@funding``)."""

#: Files of a series directory ``<store root>/<exchange>/<symbol_dir>/<timeframe>/``
#: (:mod:`gridflow.data.store` writes them): candles or funding rates, and the manifest.
DATA_FILE = "candles.parquet"
FUNDING_FILE = "funding.parquet"
MANIFEST_FILE = "manifest.json"


def store_root(root: str | os.PathLike[str] | None = None) -> Path:
    """``root``, else ``$GRIDFLOW_STORE``, else ``./gridflow_data`` (not created here)."""
    if root is not None:
        return Path(root).expanduser()
    return Path(os.environ.get("GRIDFLOW_STORE") or "gridflow_data").expanduser()


@dataclass(frozen=True)
class SeriesKey:
    """One series of the store: ccxt exchange id, ccxt symbol, timeframe (or
    :data:`FUNDING`)."""

    exchange: str
    symbol: str
    timeframe: str

    def __post_init__(self) -> None:
        if not self.exchange or not self.exchange.replace("_", "").isalnum():
            raise ValueError(f"bad exchange id {self.exchange!r} (a ccxt id: 'binance')")
        base, slash, quote = self.symbol.partition("/")
        if not (base and slash and quote) or any(c in self.symbol for c in " \\@"):
            raise ValueError(f"bad symbol {self.symbol!r} (ccxt form: 'BTC/USDT', "
                             "'BTC/USDT:USDT')")
        if self.timeframe != FUNDING:
            timeframe_to_ms(self.timeframe)

    @property
    def spec(self) -> str:
        """``exchange:symbol@timeframe``."""
        return f"{self.exchange}:{self.symbol}@{self.timeframe}"

    @property
    def symbol_dir(self) -> str:
        """The symbol as a directory name: ``BTC/USDT:USDT`` -> ``BTC_USDT-USDT``."""
        return self.symbol.replace("/", "_").replace(":", "-")

    def parts(self) -> tuple[str, str, str]:
        return self.exchange, self.symbol_dir, self.timeframe


def parse_spec(spec: str) -> SeriesKey:
    """``"exchange:symbol@timeframe"`` -> :class:`SeriesKey`.

    Raises
    ------
    ValueError
        Not of that form, or a bad exchange id, symbol or timeframe (named).
    """
    ex, colon, rest = spec.partition(":")
    symbol, at, tf = rest.rpartition("@")
    if not (colon and at and ex and symbol and tf):
        raise ValueError(f"not a market-data spec: {spec!r} (want 'exchange:symbol@timeframe',"
                         " e.g. 'binance:BTC/USDT@1h')")
    return SeriesKey(ex, symbol, tf)


def is_spec(s: object) -> bool:
    """Whether ``s`` reads as a spec rather than a file path (``x:A/B@tf``, no path
    separator before the first colon)."""
    if not isinstance(s, str) or "@" not in s or ":" not in s:
        return False
    head = s.split(":", 1)[0]
    return bool(head) and "/" not in head and "\\" not in head and "." not in head


def spec_or_path(text: str) -> str:
    """A command-line data or funding argument as a config path: a spec as it is, a file
    path made absolute (``~`` expanded)."""
    return text if is_spec(text) else str(Path(text).expanduser().resolve())


def source_identity(path: str, root: str | os.PathLike[str] | None = None, *,
                    content: bool = True) -> dict[str, Any]:
    """What a run's candles or funding come from, for its identity (the config hash of a
    replay, the id of a sweep or walk-forward run): the one rule for both.

    A file is its name and size in bytes (``-1`` when missing): the identity must not
    depend on where the repository lives, and a file that grew is other data. A store
    series, named by its spec or by its directory, is its spec and what the store holds
    of it now: rows, first and last open time (ms UTC) from its manifest, and the size
    of its data file; so a replay or sweep after a download added candles is another
    run, not the old one with the new rows written beside its own (``rows`` -1 when the
    store under ``root``, :func:`store_root`, has no series of that spec). Like a file's
    size, this does not see a candle replaced by one of the same encoded size.

    Parameters
    ----------
    path : str
        A file path, a series directory or a spec.
    root : str or PathLike, optional
        The store of a spec (default :func:`store_root`).
    content : bool
        False for a run that does not read its data (paper and live: the candles come
        from the exchange): a spec is its name alone, a path its name and size, so a
        download into the store does not change a live run's identity.

    Raises
    ------
    ValueError
        A spec that does not parse (:func:`parse_spec`).
    """
    if is_spec(path):
        if not content:
            return {"name": path}
        key = parse_spec(path)
        return _series_identity(path, store_root(root).joinpath(*key.parts()),
                                key.timeframe == FUNDING)
    p = Path(path)
    spec = series_dir_spec(p) if content else None  # a series directory named by its path
    if spec is not None:
        return _series_identity(spec, p, spec.endswith("@" + FUNDING))
    return {"name": p.name, "size": p.stat().st_size if p.exists() else -1}


def series_dir_spec(path: str | os.PathLike[str]) -> str | None:
    """The spec of the store series in directory ``path`` (from its manifest), None
    when ``path`` holds no readable manifest."""
    try:
        m = json.loads((Path(path) / MANIFEST_FILE).read_text(encoding="utf-8"))
        return SeriesKey(m["exchange"], m["symbol"], m["timeframe"]).spec
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _series_identity(spec: str, d: Path, funding: bool) -> dict[str, Any]:
    """:func:`source_identity` of the series ``spec`` stored in directory ``d``."""
    try:
        m = json.loads((d / MANIFEST_FILE).read_text(encoding="utf-8"))
        size = (d / (FUNDING_FILE if funding else DATA_FILE)).stat().st_size
    except (OSError, ValueError):
        return {"name": spec, "rows": -1}
    return {"name": spec, "rows": m.get("rows"), "first_ts": m.get("first_ts"),
            "last_ts": m.get("last_ts"), "size": size}
