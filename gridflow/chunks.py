"""Cheap records carried inside the dataflow.

Bytewax costs 1-2 µs per item per step, so the hot path carries *chunks*: many closed
candles of one symbol as numpy arrays, validated in bulk at the edge. Every array of a
chunk has the same length ``n``; timestamps are candle open times in ms UTC (int64),
prices in quote currency and volume in base currency (float64).
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields

import numpy as np

from gridflow.events import (
    AccountSummary,
    EquitySnapshot,
    ExecutionReport,
    JournalEvent,
    OrderIntent,
    OrderRequest,
    TradeRecord,
)


@dataclass(frozen=True, slots=True)
class CandleChunk:
    """Consecutive candles of one symbol, oldest first.

    Attributes
    ----------
    symbol : str
        ccxt unified symbol, ``"BTC/USDT"``.
    timeframe : str
        ccxt timeframe, ``"1h"``.
    ts, open, high, low, close, volume : np.ndarray, shape (n,)
        int64 open times (ms UTC) and float64 OHLCV.
    first_row : int
        0-based data row of ``ts[0]`` in its source file (header excluded), for
        error messages; -1 when not from a file.
    last : bool
        True on the final chunk of the symbol's stream (it may be empty): the account
        engine then stops waiting for this symbol.
    warmup : bool
        True for history fed to the indicators before trading starts (live start, or
        ``warmup_candles`` before a replay's ``start_ms``): never traded.
    preroll : bool
        True for a replay's rows before its window (and its warm-up): validated, their
        refusals journaled, then dropped (:class:`~gridflow.operators.validation.CandleValidator`).
    inputs : dict of str to np.ndarray, optional
        Market inputs the source read beside OHLCV, float64 (n,) each, passed to the
        engines with the indicator values: a live funding-fed symbol's ``funding_rate``
        (the last settled rate known at each close, a fraction) and ``funding_settled``
        (the rates settled within each candle), see
        :mod:`gridflow.dataflows.funding_feed`. None from files: a replay reads funding
        from its funding files.
    """

    symbol: str
    timeframe: str
    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    first_row: int = -1
    last: bool = False
    warmup: bool = False
    preroll: bool = False
    inputs: dict | None = None

    def __getstate__(self) -> list:
        return [getattr(self, f.name) for f in fields(self)]

    def __setstate__(self, state: list) -> None:
        """Restore a pickled chunk; one pickled before a field was added (a snapshot of
        an older version) gets that field's default."""
        names = [f.name for f in fields(self)]
        defaults = {f.name: f.default for f in fields(self) if f.default is not MISSING}
        values = dict(zip(names, state))
        for name in names:
            object.__setattr__(self, name, values[name] if name in values else defaults[name])

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def take(self, mask_or_idx: np.ndarray) -> "CandleChunk":
        """Sub-chunk by boolean mask or index array (rows keep their order)."""
        return CandleChunk(
            self.symbol,
            self.timeframe,
            self.ts[mask_or_idx],
            self.open[mask_or_idx],
            self.high[mask_or_idx],
            self.low[mask_or_idx],
            self.close[mask_or_idx],
            self.volume[mask_or_idx],
            self.first_row,
            self.last,
            self.warmup,
            self.preroll,
            None if self.inputs is None
            else {k: v[mask_or_idx] for k, v in self.inputs.items()},
        )


@dataclass(frozen=True, slots=True)
class IndicatorChunk:
    """A validated candle chunk with the indicator values at each candle close.

    Attributes
    ----------
    candles : CandleChunk
    values : dict[str, np.ndarray]
        Indicator name (``"sma_24"``, ``"atr_14"``, ``"ema_50"``) to float64 array of
        shape (n,); value ``i`` uses candles up to and including ``i`` only; NaN during
        warm-up.
    """

    candles: CandleChunk
    values: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExchangeUpdate:
    """One poll cycle of an account's exchange state (live mode).

    Attributes
    ----------
    account : str
    server_ms : int
        Exchange time (ms UTC) taken before the cycle's requests: every fill with an
        earlier time is in ``reports`` of this or an earlier update (the engine's
        watermark for deciding on candles that closed before it).
    reports : list[ExecutionReport]
        New fills since the previous cycle, deduplicated by trade id (``report_id`` =
        ``"trade-<id>"``), oldest first, with the order's ``client_order_id``.
    open_orders : list[dict] or None
        Every open order (regular and conditional): ``client_order_id``, ``symbol``
        (config symbol), ``side``, ``type``, ``price``, ``stop_price``, ``amount``,
        ``filled``, ``reduce_only``, ``exchange_order_id``, ``ts`` (creation time, ms UTC,
        or None); None when not fetched.
    positions : dict[str, dict] or None
        Config symbol to ``{"amount": signed base, "entry_price": quote}`` for non-zero
        positions; None when not fetched.
    balance : float or None
        Wallet balance in quote currency.
    errors : list[str]
        Polling errors of this cycle (ccxt class and message, secrets redacted).
    equity : float or None
        The exchange's equity of the account: wallet plus unrealized PnL (quote).
    funding : list[dict]
        Funding settlements the exchange booked since the previous cycle: ``id``,
        ``symbol`` (config symbol), ``ts_ms``, ``paid`` (quote, positive = paid).
    marks : dict[str, float] or None
        Config symbol to the exchange's mark price (quote) at ``server_ms``: the live
        engine marks the account to market with it between candle closes; None when
        not fetched.
    streams : list[dict]
        Changes of the account's websocket streams since the previous update, each
        ``{"stream": "account" | "marks", "status": "stale" | "restored", "reason":
        "DISCONNECTED" | "SILENT" | "MISSED_FILLS" | "CAUGHT_UP", "detail": str}``.
    """

    account: str
    server_ms: int
    reports: list = field(default_factory=list)
    open_orders: list | None = None
    positions: dict | None = None
    balance: float | None = None
    errors: list = field(default_factory=list)
    marks: dict | None = None
    equity: float | None = None
    funding: list = field(default_factory=list)
    streams: list = field(default_factory=list)


@dataclass(slots=True)
class JournalBatch:
    """Everything one engine (or validation) call wants written to the journal."""

    orders: list[OrderRequest] = field(default_factory=list)
    intents: list[OrderIntent] = field(default_factory=list)
    fills: list[ExecutionReport] = field(default_factory=list)
    trades: list[TradeRecord] = field(default_factory=list)
    equity: list[EquitySnapshot] = field(default_factory=list)
    events: list[JournalEvent] = field(default_factory=list)
    summaries: list[AccountSummary] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.orders or self.intents or self.fills or self.trades or self.equity or self.events or self.summaries
        )

    def extend(self, other: "JournalBatch") -> None:
        """Append every record of ``other`` to this batch."""
        self.orders.extend(other.orders)
        self.intents.extend(other.intents)
        self.fills.extend(other.fills)
        self.trades.extend(other.trades)
        self.equity.extend(other.equity)
        self.events.extend(other.events)
        self.summaries.extend(other.summaries)
