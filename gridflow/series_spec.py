"""Names of market-data series: ``exchange:symbol@timeframe``.

``binance:BTC/USDT@1h`` is Binance spot's hourly BTC/USDT candles,
``binanceusdm:BTC/USDT:USDT@1m`` the USDⓈ-M perpetual's minute candles and
``binanceusdm:BTC/USDT:USDT@funding`` its funding rates. The exchange is a ccxt id and
the symbol ccxt's unified one. Where a candle file path is accepted (``data`` of a
preset, ``--data``), a spec names a series of the market-data store
(:mod:`gridflow.data.store`) instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from gridflow.timeframes import timeframe_to_ms

__all__ = ["FUNDING", "SeriesKey", "is_spec", "parse_spec", "spec_or_path"]

FUNDING = "funding"
"""The timeframe slot of a funding-rate series (``exchange:symbol@funding``)."""


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
    from pathlib import Path

    return text if is_spec(text) else str(Path(text).expanduser().resolve())
