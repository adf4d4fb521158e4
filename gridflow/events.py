"""Typed, immutable messages: the one vocabulary of gridflow.

Every message is a frozen pydantic v2 model that rejects unknown fields. Events are
past facts (a candle closed, an order was filled, a kill switch tripped); commands are
imperatives. Timestamps are integer milliseconds since the Unix epoch, UTC, and carry
the unit in their name (``ts_ms``). Prices are in quote currency, amounts in base
currency, rates are fractions (0.001 = 0.1 %).

Inside the hot path the flow carries numpy chunks (:mod:`gridflow.chunks`); these
models guard the boundaries: single candles from a live source, order requests to a
broker, execution reports from it, commands from the control plane, and every row of
the journal.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gridflow.candle_rules import ROW_RULES, row_codes, row_message
from gridflow.command_payloads import json_object, payload_args
from gridflow.config.candles import CandleRules
from gridflow.event_kinds import CommandKind
from gridflow.timeframes import timeframe_to_ms

Side = Literal["buy", "sell"]
PositionSide = Literal["long", "short"]
OrderType = Literal["limit", "market", "stop_market", "stop_limit"]


_CANDLE_RULES = CandleRules()


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Candle(_Frozen):
    """One closed OHLCV candle.

    Attributes
    ----------
    symbol : str
        ccxt unified symbol, e.g. ``"BTC/USDT"``.
    timeframe : str
        ccxt timeframe, e.g. ``"1h"``.
    ts_ms : int
        Candle **open** time, ms UTC, between 2009-01-03 and 2100-01-01; must be a
        multiple of the timeframe length.
    open, high, low, close : float
        Prices in quote currency; finite, normal (>= 2.2e-308) and <= 1e9,
        ``high >= max(open, close)``, ``low <= min(open, close)``.
    volume : float
        Base-asset volume, finite and >= 0.

    Raises
    ------
    pydantic.ValidationError
        On any row rule of :mod:`gridflow.candle_rules` (the same functions as the bulk
        validation, with the default :class:`~gridflow.config.candles.CandleRules`);
        the message starts with the reason code and names the numbers. Duplicate,
        out-of-order candles and price jumps are per-symbol stream properties, refused
        by :func:`gridflow.operators.validation.validate_chunk`.
    """

    symbol: str = Field(min_length=3)
    timeframe: str
    ts_ms: int = Field(ge=-(2**63), le=2**63 - 1)
    open: float
    high: float
    low: float
    close: float
    volume: float

    @field_validator("timeframe")
    @classmethod
    def _tf(cls, v: str) -> str:
        timeframe_to_ms(v)
        return v

    @model_validator(mode="after")
    def _ohlc(self) -> "Candle":
        tf_ms = timeframe_to_ms(self.timeframe)
        prices = (np.array([x]) for x in (self.open, self.high, self.low, self.close,
                                          self.volume))
        code = int(row_codes(np.array([self.ts_ms], np.int64), *prices, tf_ms,
                             _CANDLE_RULES)[0])
        if code:
            raise ValueError(row_message(ROW_RULES[code - 1], 0, self.ts_ms, self.open,
                                         self.high, self.low, self.close, self.volume,
                                         self.timeframe, tf_ms, _CANDLE_RULES))
        return self


class OrderRequest(_Frozen):
    """An order the account engine sends to the broker (or the paper matcher).

    Attributes
    ----------
    client_order_id : str
        Deterministic id (:func:`gridflow.ids.client_order_id`): a re-emitted order
        after a crash carries the same id and is recognised, never doubled.
    account, strategy, symbol : str
    tag : str
        What the order is for: ``"L0"``..``"L{n-1}"`` grid levels, ``"TP"``, ``"SL"``.
    ts_ms : int
        Decision time, ms UTC (the close time of the candle the decision used).
    seq : int
        Per-account sequence number of the engine event; orders the journal.
    side : {"buy", "sell"}
    type : {"limit", "market", "stop_market"}
    price : float
        Limit or trigger price, quote currency, > 0.
    amount : float
        Base-asset amount, > 0.
    reduce_only : bool
        True for orders that only close a position.
    """

    client_order_id: str = Field(min_length=1, max_length=36)
    account: str
    strategy: str
    symbol: str
    tag: str
    ts_ms: int = Field(ge=0)
    seq: int = Field(ge=0)
    side: Side
    type: OrderType
    price: float = Field(gt=0, allow_inf_nan=False)
    amount: float = Field(gt=0, allow_inf_nan=False)
    reduce_only: bool = False


class ExecutionReport(_Frozen):
    """A fill or order update from the exchange or the paper matcher.

    Attributes
    ----------
    report_id : str
        Trade id (fills) or update id; deduplication key.
    client_order_id : str
    account, symbol : str
    ts_ms : int
        Event time, ms UTC.
    seq : int
        Per-account engine sequence number (0 for reports from an exchange).
    status : {"filled", "partially_filled", "canceled", "rejected", "open"}
    side : {"buy", "sell"}
    price : float
        Average fill price, quote currency (0 for non-fill updates).
    amount : float
        Filled base amount of this report (0 for non-fill updates).
    fee : float
        Fee paid in quote currency (>= 0; a maker rebate is negative).
    liquidity : {"maker", "taker"}
    realized_pnl : float
        PnL realised by this fill in quote currency, before fees (0 for entries).
    fee_base : float
        The part of the fee withheld from the base received (base units, >= 0): a spot
        buy whose commission is charged in the base asset (Binance without BNB). ``fee``
        already counts its value in quote; the position grows by ``amount - fee_base``.
    """

    report_id: str
    client_order_id: str
    account: str
    symbol: str
    ts_ms: int = Field(ge=0)
    seq: int = Field(ge=0, default=0)
    status: Literal["filled", "partially_filled", "canceled", "rejected", "open"] = "filled"
    side: Side
    price: float = Field(ge=0, allow_inf_nan=False)
    amount: float = Field(ge=0, allow_inf_nan=False)
    fee: float = Field(allow_inf_nan=False, default=0.0)
    liquidity: Literal["maker", "taker"] = "taker"
    realized_pnl: float = Field(allow_inf_nan=False, default=0.0)
    fee_base: float = Field(ge=0, allow_inf_nan=False, default=0.0)


class OrderIntent(_Frozen):
    """One instruction from the live account engine to the broker sink.

    Deterministic: re-emitted after a crash (Bytewax recovery is at-least-once) it
    carries the same ``intent_id`` and ``client_order_id``, so the broker recognises it.

    Attributes
    ----------
    intent_id : str
        ``"{client_order_id}:{action}"``: unique per instruction.
    action : {"place", "cancel"}
    account, strategy : str
    symbol : str
        Config symbol (``"BTC/USDT"``); the broker maps it to the ccxt market.
    client_order_id : str
        ccxt ``clientOrderId`` of the order placed or cancelled.
    tag : str
        ``"L0"``.. grid levels, ``"TP"``, ``"SL"`` (the protective stop), ``"FLIP"``,
        ``"FLATTEN"``, ``"CLOSE"`` (a market close when a stop could not rest).
    ts_ms : int
        Decision time, ms UTC (exchange time).
    seq : int
        Engine event sequence number.
    side : {"buy", "sell"}
    type : {"limit", "market", "stop_market", "stop_limit"}
    price : float or None
        Limit price (quote); None for market and stop-market orders.
    stop_price : float or None
        Trigger price (quote) of stop orders.
    amount : float
        Base amount (> 0 for place; the order's amount for cancel).
    reduce_only : bool
    cancel_first : str or None
        For a place that replaces a resting order: that order's client id. The broker
        cancels it first and places only when the cancel succeeded (an order already
        filled or gone is not replaced).
    cancel_after : str or None
        For a place that takes over from a resting order that must stay until its
        successor rests (a moved stop): that order's client id. The broker places this
        one first and cancels the old one only when the place was accepted (``sent`` /
        ``duplicate``); otherwise the old order's cancel is ``skipped`` and it keeps
        resting. Never set together with ``cancel_first``.
    margin_held : bool
        For an opening place: the engine counted every order resting on the exchange
        (those it is cancelling too) and the account's equity still holds this one's
        margin, so the broker need not wait for the cancels sent before it
        (:func:`~gridflow.dataflows.broker_lanes.waits_for_margin`).
    """

    intent_id: str
    action: Literal["place", "cancel"]
    account: str
    strategy: str = ""
    symbol: str
    client_order_id: str = Field(min_length=1, max_length=36)
    tag: str
    ts_ms: int = Field(ge=0)
    seq: int = Field(ge=0, default=0)
    side: Side
    type: OrderType
    price: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    stop_price: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    amount: float = Field(ge=0, allow_inf_nan=False)
    reduce_only: bool = False
    cancel_first: str | None = None
    cancel_after: str | None = None
    margin_held: bool = False

    @model_validator(mode="after")
    def _one_replacement(self) -> "OrderIntent":
        if self.cancel_first is not None and self.cancel_after is not None:
            raise ValueError("an intent sets cancel_first or cancel_after, not both")
        return self

    @property
    def replaces(self) -> str | None:
        """The client id of the order this place takes over from (``cancel_first`` or
        ``cancel_after``), or None."""
        return self.cancel_first if self.cancel_first is not None else self.cancel_after


class OutcomesReplayed(_Frozen):
    """The broker-outcome stream has delivered every terminal outcome the journal held
    when it started (its first read), for account ``account``: a live engine that starts
    without recovery state knows from then on every order the broker placed in the run
    (:meth:`~gridflow.operators.live_engine.LiveAccountEngine.on_outcomes_replayed`).
    Not journaled."""

    account: str


class OrderOutcome(_Frozen):
    """What the broker sink did with one :class:`OrderIntent` (journaled).

    Attributes
    ----------
    intent_id, client_order_id, action, account, symbol, tag : str
    status : str
        ``"sending"`` (write-ahead, outcome unknown), ``"sent"``, ``"duplicate"`` (the
        exchange already had this client id: counted as sent), ``"rejected"``
        (exchange or pre-send check said no; never retried), ``"failed"`` (retries
        exhausted), ``"canceled"``, ``"not_found"`` (cancel of an order already gone),
        ``"skipped"`` (a replacement whose old order was already filled or gone).
    exchange_order_id : str
    attempts : int
        Requests made, lookups included.
    error : str
        Last error class and message (secrets redacted), ``""`` if none.
    faults : list[str]
        ccxt error classes met on the way (``"RequestTimeout"``, ``"RateLimitExceeded"``).
    ts_ms : int
        Wall-clock time of the outcome, ms UTC.
    """

    intent_id: str
    client_order_id: str
    action: Literal["place", "cancel"]
    account: str
    symbol: str
    tag: str = ""
    status: Literal["sending", "sent", "duplicate", "rejected", "failed", "canceled",
                    "not_found", "skipped"]
    exchange_order_id: str = ""
    attempts: int = Field(0, ge=0)
    error: str = ""
    faults: list[str] = Field(default_factory=list)
    ts_ms: int = Field(ge=0, default=0)


class Command(_Frozen):
    """An imperative from the control plane to one account engine.

    Attributes
    ----------
    command_id : int
        Store-assigned unique id, a signed 64-bit integer (not necessarily increasing:
        the command source reads commands in insertion order, see
        :mod:`gridflow.journal.commands`).
    account : str
    kind : CommandKind
        ``"reset_kill_switch"``, ``"pause"``, ``"resume"``, ``"set_params"`` or
        ``"flatten"`` (:class:`~gridflow.event_kinds.CommandKind`).
    payload : dict
        Kind-specific arguments (e.g. ``{"symbol": "BTC/USDT"}`` for ``pause``), valid
        for ``kind``'s model in :mod:`gridflow.command_payloads` (also given as the JSON
        text of an object; stored as plain JSON values). :attr:`args` is the model.
    issued_at_ms : int
        ms UTC when the command was written.
    issued_by : str
        User name of the issuer.

    Raises
    ------
    pydantic.ValidationError
        Any field of the wrong type (ids and times must be ints, names strings: no
        conversion), out of range or too long; a payload that is not a JSON object or
        not valid for ``kind`` (its errors are under ``payload``).
    """

    command_id: int = Field(strict=True, ge=-(2**63), le=2**63 - 1)
    account: str = Field(strict=True, min_length=1, max_length=256)
    kind: CommandKind
    payload: dict[str, Any] = Field(default_factory=dict, validate_default=True)
    issued_at_ms: int = Field(strict=True, ge=0, le=2**63 - 1)
    issued_by: str = Field(strict=True, min_length=1, max_length=256)

    @field_validator("payload", mode="before")
    @classmethod
    def _payload(cls, v: Any, info) -> dict[str, Any]:
        v = json_object(v)
        if "kind" in info.data:  # an invalid kind is reported on its own
            payload_args(info.data["kind"], v)
        return v

    @property
    def args(self) -> BaseModel:
        """The payload as ``kind``'s model (e.g. ``args.symbol``)."""
        return payload_args(self.kind, self.payload)


class TradeRecord(_Frozen):
    """A closed round trip: one grid cycle from first entry to full exit.

    Attributes
    ----------
    trade_id : str
        ``{account}:{symbol}:{open_ts_ms}``; a symbol has one grid at a time.
    position_side : {"long", "short"}
    open_ts_ms, close_ts_ms : int
        ms UTC of the first entry fill and of the exit fill.
    entries : int
        Number of grid levels filled in the cycle.
    amount : float
        Total base amount held at exit.
    avg_entry, exit_price : float
        Quote currency.
    pnl : float
        Net PnL in quote currency: price PnL minus all entry and exit fees and the
        funding paid during the cycle.
    fees : float
        Fees of the cycle, quote currency.
    exit_reason : {"TP", "SL", "TRAIL", "FLIP", "FLATTEN"}
    funding : float
        Funding paid during the cycle (quote; negative = received; 0 on spot).
    """

    trade_id: str
    account: str
    symbol: str
    seq: int = Field(ge=0)
    position_side: PositionSide
    open_ts_ms: int
    close_ts_ms: int
    entries: int = Field(ge=1)
    amount: float = Field(gt=0, allow_inf_nan=False)
    avg_entry: float = Field(gt=0, allow_inf_nan=False)
    exit_price: float = Field(gt=0, allow_inf_nan=False)
    pnl: float = Field(allow_inf_nan=False)
    fees: float = Field(allow_inf_nan=False)
    exit_reason: str
    funding: float = Field(0.0, allow_inf_nan=False)


class EquitySnapshot(_Frozen):
    """Account equity at a candle close, in quote currency.

    ``equity = cash + unrealized``; ``used_margin`` is the sum over positions of
    ``|amount| * avg_entry / leverage``.
    """

    account: str
    ts_ms: int = Field(ge=0)
    equity: float = Field(allow_inf_nan=False)
    cash: float = Field(allow_inf_nan=False)
    unrealized: float = Field(allow_inf_nan=False)
    used_margin: float = Field(ge=0, allow_inf_nan=False)


class JournalEvent(_Frozen):
    """Something the journal must remember that is not an order or a fill.

    Attributes
    ----------
    event_id : str
        Deterministic natural key (kind, account or symbol, time, detail).
    kind : str
        A :class:`~gridflow.event_kinds.EventKind` value: ``"candle_rejected"``,
        ``"order_denied"``, ``"kill_switch_tripped"`` ... (a plain ``str`` field, so
        journals of any version read back).
    reason : str
        Stable reason code, a :class:`~gridflow.event_kinds.Reason` value, e.g.
        ``"LOW_ABOVE_BODY"``, ``"KILL_SWITCH"``, ``"MAX_MARGIN_RATIO"``,
        ``"SESSION_LOSS_GRID"`` (the few events whose reason names something outside
        gridflow are listed in :mod:`gridflow.event_kinds`).
    ts_ms : int
        Event time, ms UTC.
    account : str
        Empty for per-symbol events such as rejected candles.
    symbol : str
    seq : int
        Per-account sequence number, or the file row for candle rejections.
    detail : dict
        The numbers behind the decision (values and thresholds).
    """

    event_id: str
    kind: str
    reason: str
    ts_ms: int
    account: str = ""
    symbol: str = ""
    seq: int = 0
    detail: dict[str, Any] = Field(default_factory=dict)


class AccountSummary(_Frozen):
    """Running totals of one account engine; the journal keeps the latest.

    ``candles`` is the number of candles the engine processed; it only grows, so the
    sink keeps the row with the largest value. ``seq`` is the next event sequence
    number; ``kill_switch`` the active switches, comma-separated.
    """

    account: str
    candles: int = Field(ge=0)
    last_ts_ms: int
    seq: int = Field(0, ge=0)
    initial_capital: float
    equity: float
    cash: float
    fees_paid: float
    realized_pnl: float
    funding_paid: float = 0.0
    """Funding paid on perpetual positions (quote; negative = received)."""
    kill_switch: str = ""
    counters: dict[str, int] = Field(default_factory=dict)
    paused: bool = False
    complete: bool = False
    """True once every symbol's stream ended and all its candles were processed."""
    positions: dict[str, dict[str, Any]] = Field(default_factory=dict)
