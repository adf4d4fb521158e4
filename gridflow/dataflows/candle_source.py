"""The Bytewax input of live closed candles: one partition per symbol, streamed
(:mod:`gridflow.dataflows.ws_candles`) or polled (:mod:`gridflow.dataflows.live_sources`)
as ``live.streams.candles`` says."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from bytewax.inputs import FixedPartitionedSource

from gridflow.chunks import CandleChunk
from gridflow.config.live import ExchangeConfig, StreamsConfig
from gridflow.dataflows.live_sources import LiveCandlePartition, LiveResumeState
from gridflow.exchange.client import ccxt_symbol, make_exchange, supports_streams
from gridflow.timeframes import timeframe_to_ms

__all__ = ["LiveCandleSource"]


class LiveCandleSource(FixedPartitionedSource[CandleChunk, LiveResumeState]):
    """Closed candles of ``symbols`` from a ccxt exchange, one partition per symbol.

    Parameters
    ----------
    exchange_cfg : ExchangeConfig
        Each partition builds its own exchange with ``exchange_factory`` on the worker
        that owns it.
    symbols : list of str
        Config symbols (``"BTC/USDT"``: partition keys and chunk symbols); the market
        polled is :func:`~gridflow.exchange.client.ccxt_symbol` of it.
    timeframe : str
    warmup_candles : int
        Closed candles before the start sent first as one ``warmup=True`` chunk.
    poll_s : float
        Wall seconds between two polls of a partition.
    end_ms : int, optional
        Stop after the candle closing at this exchange time (ms UTC).
    exchange_factory : callable
        ``ExchangeConfig -> ccxt.Exchange``; :func:`~gridflow.exchange.client.make_exchange`.
    streams : StreamsConfig, optional
        With ``streams.candles == "websocket"`` (and a ccxt.pro client for the
        exchange) each partition is a :class:`~gridflow.dataflows.ws_candles.
        WsCandlePartition` streaming ``watch_ohlcv``; else it polls.
    funding_symbols : iterable of str
        Config symbols whose chunks carry their funding inputs (a strategy reads the
        settled funding rate): their partitions are wrapped in a
        :class:`~gridflow.dataflows.funding_feed.FundingFedPartition`.

    Notes
    -----
    Items per partition are ordered by candle time, each candle once. Resume state is
    a :class:`LiveResumeState` (plain tuple, picklable). See
    :class:`LiveCandlePartition` for the rules.

    Raises
    ------
    ValueError
        No symbol or a duplicate, bad timeframe, ``warmup_candles < 0``,
        ``poll_s <= 0``.
    """

    def __init__(
        self,
        exchange_cfg: ExchangeConfig,
        symbols: list[str],
        timeframe: str,
        warmup_candles: int,
        poll_s: float,
        end_ms: int | None = None,
        exchange_factory: Callable[[ExchangeConfig], Any] = make_exchange,
        streams: StreamsConfig | None = None,
        funding_symbols: Iterable[str] = (),
    ) -> None:
        if not symbols or len(set(symbols)) != len(symbols):
            raise ValueError(f"symbols must be non-empty and unique, got {symbols!r}")
        timeframe_to_ms(timeframe)
        if warmup_candles < 0:
            raise ValueError(f"warmup_candles must be >= 0, got {warmup_candles}")
        if not poll_s > 0:
            raise ValueError(f"poll_s must be > 0, got {poll_s}")
        self.exchange_cfg = exchange_cfg
        self.symbols = list(symbols)
        self.timeframe = timeframe
        self.warmup_candles = int(warmup_candles)
        self.poll_s = float(poll_s)
        self.end_ms = end_ms
        self.exchange_factory = exchange_factory
        self.websocket = (streams is not None and streams.candles == "websocket"
                          and supports_streams(exchange_cfg))
        self.streams = streams
        self.funding_symbols = frozenset(funding_symbols)
        if not self.funding_symbols <= set(self.symbols):
            raise ValueError(f"funding symbols {sorted(self.funding_symbols)} not all in "
                             f"{self.symbols}")

    def list_parts(self) -> list[str]:
        """All config symbols (partition keys)."""
        return list(self.symbols)

    def build_part(self, step_id: str, for_part: str, resume_state: Any = None) -> Any:
        """A partition streaming (or polling) ``for_part``, its own REST exchange; for a
        funding symbol wrapped in the funding feed."""
        from gridflow.dataflows.funding_feed import FundingFedPartition, split_state

        own, fed = split_state(resume_state)
        part = self._candles(for_part, own)
        if for_part not in self.funding_symbols and not (fed is not None and fed.held):
            return part
        # a symbol no longer funding-fed still sends the chunks it held at the restart
        return FundingFedPartition(part, ccxt_symbol(for_part, self.exchange_cfg.market_type),
                                   timeframe_to_ms(self.timeframe), fed)

    def _candles(self, for_part: str, resume_state: LiveResumeState | None
                 ) -> LiveCandlePartition:
        if self.websocket:
            from gridflow.dataflows.ws_candles import WsCandlePartition
            from gridflow.exchange.hubs import hub_for, release_hub

            assert self.streams is not None
            return WsCandlePartition(
                self.exchange_factory(self.exchange_cfg), for_part,
                ccxt_symbol(for_part, self.exchange_cfg.market_type), self.timeframe,
                self.warmup_candles, self.poll_s,
                hub_for(self.exchange_cfg, self.streams),
                self.streams.stale_s, self.end_ms, resume_state, release=release_hub)
        return LiveCandlePartition(
            self.exchange_factory(self.exchange_cfg),
            for_part,
            ccxt_symbol(for_part, self.exchange_cfg.market_type),
            self.timeframe,
            self.warmup_candles,
            self.poll_s,
            self.end_ms,
            resume_state,
        )
