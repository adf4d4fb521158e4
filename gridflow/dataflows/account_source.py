"""The Bytewax input of one account's exchange state: fills, order updates, positions,
balance, marks and funding, streamed (:mod:`gridflow.dataflows.ws_state`) or polled
(:mod:`gridflow.dataflows.live_state`) as ``live.streams.account`` says."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bytewax.inputs import FixedPartitionedSource

from gridflow.chunks import ExchangeUpdate
from gridflow.config.live import ExchangeConfig, StreamsConfig
from gridflow.dataflows.live_state import ExchangeStatePartition, StateResumeState, check_args
from gridflow.exchange.client import ccxt_symbol, make_exchange, supports_streams

__all__ = ["ExchangeStateSource"]


class ExchangeStateSource(FixedPartitionedSource[ExchangeUpdate, StateResumeState]):
    """The exchange state of one account, one :class:`ExchangeUpdate` per poll.

    ``account`` is the only partition key; the partition builds its own exchange from
    ``exchange_cfg`` with ``exchange_factory`` (``ExchangeConfig -> ccxt.Exchange``,
    keys included) on the worker that owns it. ``symbols`` are config symbols,
    ``poll_s`` wall seconds between cycles; ``end_ms``, ``since_ms`` and
    ``trade_overlap_ms`` (exchange ms) are as in :class:`ExchangeStatePartition`:
    the update with ``server_ms >= end_ms + poll_s * 1000`` is the last one. With
    ``streams.account == "websocket"`` (and a ccxt.pro client for the exchange) the
    partition is a :class:`~gridflow.dataflows.ws_state.WsStatePartition`; with
    ``streams.candles == "websocket"`` too, it also journals the health of the kline
    streams at ``timeframe``. Bad arguments raise ``ValueError`` as
    :class:`ExchangeStatePartition` does.
    """

    def __init__(
        self,
        account: str,
        exchange_cfg: ExchangeConfig,
        symbols: list[str],
        poll_s: float,
        end_ms: int | None = None,
        exchange_factory: Callable[[ExchangeConfig], Any] = make_exchange,
        since_ms: int | None = None,
        trade_overlap_ms: int = 60_000,
        streams: StreamsConfig | None = None,
        timeframe: str | None = None,
    ) -> None:
        check_args(poll_s, symbols, trade_overlap_ms)
        self.streams = streams
        self.websocket = (streams is not None and streams.account == "websocket"
                          and supports_streams(exchange_cfg))
        self.account = account
        self.exchange_cfg = exchange_cfg
        self.symbols = list(symbols)
        self.poll_s = float(poll_s)
        self.end_ms = end_ms
        self.exchange_factory = exchange_factory
        self.since_ms = since_ms
        self.trade_overlap_ms = int(trade_overlap_ms)
        self.timeframe = timeframe

    def list_parts(self) -> list[str]:
        """The account (one partition)."""
        return [self.account]

    def build_part(
        self, step_id: str, for_part: str, resume_state: StateResumeState | None
    ) -> ExchangeStatePartition:
        """The account's partition (streaming or polling) with its own REST exchange."""
        if self.websocket:
            from gridflow.dataflows.ws_state import WsStatePartition
            from gridflow.exchange.hubs import hub_for, release_hub
            from gridflow.exchange.streams import ohlcv_key

            assert self.streams is not None
            mt = self.exchange_cfg.market_type
            candle_keys = {s: ohlcv_key(ccxt_symbol(s, mt), self.timeframe)
                           for s in self.symbols} \
                if self.streams.candles == "websocket" and self.timeframe else None
            return WsStatePartition(
                self.exchange_factory(self.exchange_cfg), for_part, self.symbols,
                self.exchange_cfg.market_type, self.poll_s,
                hub_for(self.exchange_cfg, self.streams), self.streams,
                self.end_ms, self.since_ms, self.trade_overlap_ms,
                resume_state=resume_state, release=release_hub, candle_keys=candle_keys)
        return ExchangeStatePartition(
            self.exchange_factory(self.exchange_cfg), for_part, self.symbols,
            self.exchange_cfg.market_type, self.poll_s, self.end_ms, self.since_ms,
            self.trade_overlap_ms, resume_state=resume_state,
        )
