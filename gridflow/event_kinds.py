"""The journal's vocabulary: event kinds, reason codes, exit reasons, command kinds.

Every name is a member of a string-valued enum (:class:`enum.StrEnum`): a member *is*
its string (``EventKind.ORDER_DENIED == "order_denied"``, ``f"{kind}"`` is the value),
so the journal text is the same as with the bare strings, and a typo is an
``AttributeError`` at import time instead of a new kind in the journal. Pydantic
models store the plain string (``JournalEvent.kind`` is a ``str``): journals written
before these enums read back unchanged.

Reason codes are upper case, kinds lower case. A :class:`~gridflow.events.JournalEvent`
reason is a :class:`Reason` member, except where the reason names something outside
gridflow's vocabulary (documented at each such event):

* ``slippage``: the slot of the order (``"L0"`` .. grid levels, ``"TP"``, ``"SL"`` ...);
* ``order_rejected`` / ``order_failed``: the exchange's error class (ccxt, e.g.
  ``"InsufficientFunds"``), else :attr:`Reason.REJECTED` / :attr:`Reason.FAILED`;
* ``command_applied``: the command's :class:`CommandKind`.

This module imports nothing of gridflow (the lowest layer of ``tests/test_layers.py``).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ORDER_OUTCOME_KINDS", "CommandKind", "EventKind", "ExitReason", "Reason",
           "RecordAlertKind"]


class EventKind(StrEnum):
    """``JournalEvent.kind``: what happened (one member per kind ever journaled)."""

    # candles (gridflow.operators.validation)
    CANDLE_REJECTED = "candle_rejected"
    DATA_GAP = "data_gap"
    PRICE_REANCHORED = "price_reanchored"  # PRICE_JUMP's band moved to a new price level
    # the account kernel (gridflow.operators.engine_decode)
    ORDER_DENIED = "order_denied"
    KILL_SWITCH_TRIPPED = "kill_switch_tripped"
    KILL_SWITCH_RESET = "kill_switch_reset"
    FUNDING = "funding"
    NO_CANDLES = "no_candles"  # every symbol's input ended without one valid candle
    # control commands (gridflow.operators.engine_commands, dataflows.command_source)
    COMMAND_APPLIED = "command_applied"
    COMMAND_REJECTED = "command_rejected"
    # the live engine (gridflow.operators.live_*)
    ENGINE_STARTED = "engine_started"
    KILL_SWITCH_RESTORED = "kill_switch_restored"
    POSITION_ADOPTED = "position_adopted"
    EXCHANGE_ERROR = "exchange_error"
    STREAM_STALE = "stream_stale"  # a websocket stream is not trusted: REST meanwhile
    STREAM_RESTORED = "stream_restored"  # caught up by REST, the stream is trusted again
    ORPHAN_FILL = "orphan_fill"
    FILL_INCONSISTENT = "fill_inconsistent"
    SLIPPAGE = "slippage"
    DUST_POSITION = "dust_position"
    STOP_MISSING = "stop_missing"
    STOP_NOT_FILLED = "stop_not_filled"  # the price crossed a stop, the position stayed
    ORDER_REJECTED = "order_rejected"
    ORDER_FAILED = "order_failed"
    ORDER_VANISHED = "order_vanished"
    ORDER_REBUILT = "order_rebuilt"
    ORDER_SUPERSEDED = "order_superseded"
    ORPHAN_ORDER = "orphan_order"
    ORPHAN_POSITION = "orphan_position"
    POSITION_MISMATCH = "position_mismatch"
    EQUITY_DRIFT = "equity_drift"
    # running unattended (gridflow.operators.live_watch, the live flow's shutdown)
    HEARTBEAT = "heartbeat"  # every live.ops.heartbeat_s of exchange time
    DAILY_HEARTBEAT = "daily_heartbeat"  # once a day at live.ops.daily_at (UTC)
    DATA_STALE = "data_stale"  # no closed candle of a symbol for stale_candles x timeframe
    DATA_FRESH = "data_fresh"  # closed candles of that symbol again
    EXCHANGE_ERROR_RATE = "exchange_error_rate"  # exchange errors over the configured rate
    SHUTDOWN = "shutdown"  # a graceful stop (signal), or the start's view of the last one


#: The kind journaled for a place the broker refused or gave up on, by
#: :class:`~gridflow.events.OrderOutcome` status.
ORDER_OUTCOME_KINDS: dict[str, EventKind] = {"rejected": EventKind.ORDER_REJECTED,
                                             "failed": EventKind.ORDER_FAILED}


class RecordAlertKind(StrEnum):
    """Alert kinds derived from order and trade records (not journal events)."""

    GRID_LEVEL_OPENED = "grid_level_opened"
    GRID_CYCLE_CLOSED = "grid_cycle_closed"


class Reason(StrEnum):
    """``JournalEvent.reason``: the stable code of why (see the module doc for the
    events whose reason is not a member)."""

    # candle_rejected, in rule order (gridflow.operators.validation.REASONS)
    MALFORMED_ROW = "MALFORMED_ROW"
    TS_OUT_OF_RANGE = "TS_OUT_OF_RANGE"  # not ms of 2009..2100 (seconds, microseconds)
    NON_POSITIVE_PRICE = "NON_POSITIVE_PRICE"
    IMPLAUSIBLE_PRICE = "IMPLAUSIBLE_PRICE"  # subnormal, or above max_price_quote
    NEGATIVE_VOLUME = "NEGATIVE_VOLUME"
    HIGH_BELOW_BODY = "HIGH_BELOW_BODY"
    LOW_ABOVE_BODY = "LOW_ABOVE_BODY"
    MISALIGNED_TS = "MISALIGNED_TS"
    DUPLICATE_TS = "DUPLICATE_TS"
    OUT_OF_ORDER = "OUT_OF_ORDER"
    PRICE_JUMP = "PRICE_JUMP"  # outside max_jump_factor of the last accepted close
    # no_candles (gridflow.operators.engine)
    NO_VALID_CANDLES = "NO_VALID_CANDLES"
    # data_gap
    MISSING_CANDLES = "MISSING_CANDLES"
    # funding
    SETTLEMENT = "SETTLEMENT"
    # order_denied (gridflow.operators.risk.DENY_REASONS)
    KILL_SWITCH = "KILL_SWITCH"
    MIN_NOTIONAL = "MIN_NOTIONAL"
    MAX_MARGIN_RATIO = "MAX_MARGIN_RATIO"
    NO_EQUITY = "NO_EQUITY"
    BAD_PRICE = "BAD_PRICE"
    COOLDOWN = "COOLDOWN"
    MAX_OPEN_POSITIONS = "MAX_OPEN_POSITIONS"
    CORRELATION = "CORRELATION"
    PAUSED = "PAUSED"
    DAILY_ENTRIES = "DAILY_ENTRIES"
    SYMBOL_EXPOSURE = "SYMBOL_EXPOSURE"
    # kill_switch_tripped / _reset / _restored (gridflow.operators.risk.KILL_SWITCH_REASONS)
    SESSION_LOSS_GRID = "SESSION_LOSS_GRID"
    SESSION_LOSS_SINGLE = "SESSION_LOSS_SINGLE"
    DAILY_LOSS = "DAILY_LOSS"
    ROLLING_DRAWDOWN = "ROLLING_DRAWDOWN"
    MAX_DRAWDOWN = "MAX_DRAWDOWN"
    # command_rejected
    UNKNOWN_ACCOUNT = "UNKNOWN_ACCOUNT"
    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    UNKNOWN_REASON = "UNKNOWN_REASON"
    UNKNOWN_KIND = "UNKNOWN_KIND"
    BAD_COMMAND = "BAD_COMMAND"
    BAD_PAYLOAD = "BAD_PAYLOAD"
    AMBIGUOUS = "AMBIGUOUS"
    INVALID_PARAMS = "INVALID_PARAMS"
    INDICATORS_CHANGED = "INDICATORS_CHANGED"
    TOO_MANY_LEVELS = "TOO_MANY_LEVELS"
    # the live engine
    LIVE = "LIVE"  # engine_started
    EXCHANGE_POSITION = "EXCHANGE_POSITION"  # position_adopted
    POLL_FAILED = "POLL_FAILED"  # exchange_error
    DISCONNECTED = "DISCONNECTED"  # stream_stale: the connection failed or was reset
    SILENT = "SILENT"  # stream_stale: no message for longer than live.streams.stale_s
    MISSED_FILLS = "MISSED_FILLS"  # stream_stale: REST found fills the stream never sent
    CAUGHT_UP = "CAUGHT_UP"  # stream_restored
    UNKNOWN_ORDER = "UNKNOWN_ORDER"  # orphan_fill
    ENTRY_AGAINST_POSITION = "ENTRY_AGAINST_POSITION"  # fill_inconsistent
    EXIT_WITHOUT_POSITION = "EXIT_WITHOUT_POSITION"  # fill_inconsistent
    BELOW_MIN_AMOUNT = "BELOW_MIN_AMOUNT"  # dust_position
    NO_LIVE_STOP = "NO_LIVE_STOP"  # stop_missing
    REJECTED = "REJECTED"  # order_rejected without an exchange error class
    FAILED = "FAILED"  # order_failed without an exchange error class
    NOT_OPEN = "NOT_OPEN"  # order_vanished
    WRITE_AHEAD_TABLE = "WRITE_AHEAD_TABLE"  # order_rebuilt / order_superseded
    GRIDFLOW_ID = "GRIDFLOW_ID"  # orphan_order of gridflow's own client id
    FOREIGN = "FOREIGN"  # orphan_order of somebody else
    NOT_TRADED_BY_ACCOUNT = "NOT_TRADED_BY_ACCOUNT"  # orphan_position
    EXCHANGE_DIFFERS = "EXCHANGE_DIFFERS"  # position_mismatch / equity_drift
    ALIVE = "ALIVE"  # heartbeat
    SCHEDULED = "SCHEDULED"  # daily_heartbeat
    NO_CLOSED_CANDLE = "NO_CLOSED_CANDLE"  # data_stale
    CANDLES_BACK = "CANDLES_BACK"  # data_fresh
    ERRORS_OVER_RATE = "ERRORS_OVER_RATE"  # exchange_error_rate
    SIGNAL = "SIGNAL"  # shutdown: SIGTERM / SIGINT (the signal's name in the detail)
    CLEAN = "CLEAN"  # engine_started detail / shutdown: the previous stop was graceful
    UNCLEAN = "UNCLEAN"  # the previous run ended without a shutdown event
    # stop_not_filled (gridflow.operators.live_engine)
    PRICE_THROUGH_LIMIT = "PRICE_THROUGH_LIMIT"  # a stop-limit's price gapped past its limit
    STOP_CROSSED = "STOP_CROSSED"  # a stop-market crossed and the position still open


class ExitReason(StrEnum):
    """``TradeRecord.exit_reason``: what closed a cycle."""

    TP = "TP"
    SL = "SL"
    TRAIL = "TRAIL"
    FLIP = "FLIP"
    FLATTEN = "FLATTEN"
    TIME = "TIME"
    """The strategy's time stop (``time_stop_candles``): closed at market."""
    SIGNAL = "SIGNAL"
    """The strategy's exit signal (the funding grid's normalised funding): at market."""
    CLOSE = "CLOSE"
    """A live cycle closed by an exit gridflow did not tag (never by the kernel)."""


class CommandKind(StrEnum):
    """``Command.kind``; also the reason of its ``command_applied`` acknowledgement."""

    RESET_KILL_SWITCH = "reset_kill_switch"
    PAUSE = "pause"
    RESUME = "resume"
    SET_PARAMS = "set_params"
    FLATTEN = "flatten"
