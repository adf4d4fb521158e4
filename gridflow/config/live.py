"""Live / paper trading settings: the exchange, its credentials, polling and safety.

Secrets (``api_key``, ``secret``) are pydantic ``SecretStr``: they come from the
environment (``GRIDFLOW_LIVE__EXCHANGE__API_KEY``, ``GRIDFLOW_LIVE__EXCHANGE__SECRET``),
print as ``**********`` and are excluded from the journaled config.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from gridflow.config.ops import OpsConfig
from gridflow.config.preflight import PreflightConfig


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryConfig(_Model):
    """Exponential backoff with full jitter, only for ccxt ``NetworkError`` (timeouts,
    dropped connections, 5xx) and ``RateLimitExceeded``.

    The delay before attempt ``k`` (1-based retries) is uniform in
    ``[0, min(max_delay_s, base_delay_s * 2**(k-1))]`` (AWS "full jitter").
    """

    max_attempts: int = Field(6, ge=1, le=50)
    base_delay_s: float = Field(0.2, ge=0.0, le=60.0, allow_inf_nan=False)
    max_delay_s: float = Field(5.0, ge=0.0, le=600.0, allow_inf_nan=False)


class ExchangeConfig(_Model):
    """A ccxt exchange.

    Attributes
    ----------
    id : str
        ccxt exchange id. Live trading: a venue of
        :data:`gridflow.config.venues.VENUES` (``"binanceusdm"`` Binance USDT-M
        perpetuals, ``"binance"`` Binance spot, ``"bitget"`` Bitget USDT-M); paper runs
        and ``gridflow data download`` take any ccxt id.
    market_type : "swap" or "spot"
        Config symbols are written ``"BTC/USDT"``; for ``swap`` they trade the linear
        perpetual ``"BTC/USDT:USDT"``. Defaults to the venue's (``binance``: spot); a
        venue's other type is refused.
    api_key, secret : SecretStr or None
        From the environment only in practice; never logged or journaled.
    password : SecretStr or None
        The API key's passphrase, where the venue has one (Bitget; ccxt ``password``),
        treated as the secret is.
    urls : dict[str, str]
        Overrides of ccxt's ``urls["api"]`` entries (the local test exchange).
    timeout_ms : int
        ccxt request timeout; a timed-out order is looked up before any retry.
    rate_limit_ms : int or None
        ccxt's minimum delay between requests; None keeps the exchange's default. The
        rate limiter itself is always on.
    rate_limit_burst : float or None
        How far the broker's order requests may run ahead of that pacing, in ccxt cost
        units (one unit = ``rateLimit`` ms): after a quiet while this many units go out
        at once, then ccxt's pace (:class:`~gridflow.exchange.client.SharedThrottle`).
        None: the venue's default (:attr:`gridflow.config.venues.VenueInfo.rate_limit_burst`:
        60 on Binance USDⓈ-M, whose order limits leave that room above ccxt's pace; 0,
        ccxt's even pacing, elsewhere), and 0 when ``rate_limit_ms`` is set (a pace
        chosen by hand is kept as it is).
    options : dict
        Extra ccxt ``options``.
    ws_urls : dict[str, str]
        Overrides of ccxt.pro's ``urls["api"]["ws"]`` entries, e.g. ``{"linear":
        "ws://127.0.0.1:9001/ws"}`` (the local test exchange).
    """

    id: str = "binanceusdm"
    market_type: Literal["swap", "spot"] = "swap"
    api_key: SecretStr | None = None
    secret: SecretStr | None = None
    password: SecretStr | None = None
    urls: dict[str, str] = Field(default_factory=dict)
    timeout_ms: int = Field(10_000, ge=100, le=120_000)
    rate_limit_ms: int | None = Field(None, ge=0, le=60_000)
    rate_limit_burst: float | None = Field(None, ge=0.0, le=10_000.0, allow_inf_nan=False)
    options: dict[str, Any] = Field(default_factory=dict)
    ws_urls: dict[str, str] = Field(default_factory=dict)

    def burst(self) -> float:
        """:attr:`rate_limit_burst`; unset, 0 with a ``rate_limit_ms`` of one's own, else
        the venue's default (0 for another ccxt id)."""
        from gridflow.config.venues import VENUES

        if self.rate_limit_burst is not None:
            return float(self.rate_limit_burst)
        if self.rate_limit_ms is not None:
            return 0.0
        venue = VENUES.get(self.id)
        return venue.rate_limit_burst if venue is not None else 0.0

    def credentials(self) -> list[str]:
        """The values of the credentials set (API key, secret, passphrase): what every
        path masks in its texts. Never log the list."""
        return [s.get_secret_value() for s in (self.api_key, self.secret, self.password)
                if s is not None and s.get_secret_value()]

    @model_validator(mode="before")
    @classmethod
    def _venue_market(cls, data: Any) -> Any:
        """A known venue's market type when none is given (``binance`` -> spot)."""
        from gridflow.config.venues import VENUES

        if isinstance(data, dict) and "market_type" not in data and data.get("id") in VENUES:
            return {**data, "market_type": VENUES[data["id"]].market_type}
        return data

    def venue_mismatch(self) -> str | None:
        """Why this exchange cannot be traded as configured (a venue of
        :data:`~gridflow.config.venues.VENUES` with its other market type), or None. Not
        checked here: ``gridflow data download`` reads any market of any venue."""
        from gridflow.config.venues import VENUES

        v = VENUES.get(self.id)
        if v is not None and v.market_type != self.market_type:
            return (f"live.exchange: {self.id!r} is {v.name}: market_type must be "
                    f"{v.market_type!r}, got {self.market_type!r}")
        return None


class StreamsConfig(_Model):
    """Where the live flow gets its exchange data: websocket streams (ccxt.pro) or REST
    polling, per stream.

    Attributes
    ----------
    candles : "websocket" or "poll"
        Closed candles: ``watch_ohlcv`` (a candle is closed once a newer one streams in
        or the exchange's clock passed its close), or ``fetch_ohlcv`` every
        ``live.candle_poll_s``. Missed candles are fetched by REST either way.
    account : "websocket" or "poll"
        Fills, order updates and mark prices: ``watch_my_trades``, ``watch_orders`` and
        ``watch_mark_prices``, with a REST reconciliation (trades since the cursor, open
        orders, positions, balance, funding) every ``reconcile_s``; or all of it by REST
        every ``live.exchange_poll_s``.
    reconcile_s : float
        Seconds between two REST reconciliations while the streams are healthy (the
        venue's request-weight budget sets how often: one cycle costs about
        ``5 * symbols + 2 * symbols + 10`` Binance USDⓈ-M weight).
    stale_s : float
        A market stream (candles, marks) silent this long, in wall seconds, is declared
        stale: journaled, alerted, and polled by REST until it streams again.
    fill_lag_s : float
        A fill that the REST reconciliation found and that the user stream has not
        delivered this many wall seconds later makes the user stream stale.
    reconnect_max_s : float
        Cap of the exponential reconnect backoff (from 0.1 s): after an outage the REST
        catch-up starts within this many seconds of the exchange being back.
    hub : "process" or "thread"
        Where ccxt.pro runs the websockets: ``process`` (default), a child process of
        the flow that parses the streams and sends the parsed items over a pipe, so the
        parsing does not hold the flow's GIL (it exits with the flow, and is restarted
        with the same backoff if it dies); ``thread``, an event-loop thread in the flow's
        own process.
    """

    candles: Literal["websocket", "poll"] = "websocket"
    account: Literal["websocket", "poll"] = "websocket"
    reconcile_s: float = Field(60.0, gt=0.0, le=3_600.0, allow_inf_nan=False)
    stale_s: float = Field(30.0, gt=0.0, le=3_600.0, allow_inf_nan=False)
    fill_lag_s: float = Field(5.0, ge=0.0, le=3_600.0, allow_inf_nan=False)
    reconnect_max_s: float = Field(5.0, gt=0.0, le=600.0, allow_inf_nan=False)
    hub: Literal["process", "thread"] = "process"


class LiveConfig(_Model):
    """How ``dataflows.live`` trades.

    Attributes
    ----------
    mode : "paper" or "live"
        ``paper`` (default): live candles from the exchange, fills from the paper matcher
        (the replay's kernel); no order reaches the exchange. ``live``: orders go to the
        exchange; needs ``allow_live = true`` and API keys.
    allow_live : bool
        The explicit flag that arms live trading.
    allow_beta_venue : bool
        Also arms live trading on a venue in beta
        (:data:`gridflow.config.venues.VENUES`: Binance spot).
    timeframe : str
        ccxt timeframe of the traded candles.
    warmup_candles : int
        Closed candles fetched before the live start to warm the indicators; they are
        never traded.
    candle_poll_s, exchange_poll_s : float
        Seconds between ``fetch_ohlcv`` polls, and between polls of fills, open orders
        and positions (the execution-report and reconciliation cycle).
    stop_limit_offset : float
        Spot only: a stop-limit's limit price sits this fraction beyond its trigger.
    slippage_alert : float
        A fill this fraction worse than its order price raises a ``slippage`` alert.
    equity_drift_alert : float
        The engine's equity (cash + unrealized at the exchange's marks) differing from the
        exchange's (wallet + unrealized, less the difference found at the start) by more
        than this fraction for two polls in a row is journaled (``equity_drift``) and
        alerted.
    orphan_policy : "alert" or "cancel_ours"
        Open orders unknown to the engine: journal and alert only, or also cancel those
        carrying gridflow's client-id prefix (never somebody else's).
    end_ms : int or None
        Stop after the candle closing at this exchange time (ms UTC): demos and tests.
    streams : StreamsConfig
        Websocket or REST polling per stream, reconciliation and staleness bounds.
    broker_lanes : int
        Most order lanes (1-32, default 16): the broker sends each order chain's intents
        in order on one lane (a symbol's entries, its take profit, its stop: three
        chains) and chains side by side, one ccxt client per lane, one shared rate limit
        (:mod:`gridflow.dataflows.broker_lanes`). 1 = every order one after the other.
    broker_processes : int
        Child processes carrying the lanes' exchange requests (0-8, default 2; 0: on
        the lanes' threads in the flow's process). Each request's client work (signing,
        HTTP, parsing: about a millisecond of Python) then runs beside the flow's
        instead of taking turns with it and the other lanes on one GIL
        (:mod:`gridflow.dataflows.broker_procs`); write-ahead rows, lane order, pacing
        and journal stay in the flow.
    broker_wait : bool
        True: the flow waits for each batch of orders to be answered before it decides
        again; False: it goes on deciding while the lanes send, a fill's take profit
        and stop overtaking the entries queued on their lane
        (:class:`~gridflow.dataflows.broker_sink.BrokerSink` ``background``). Either
        way an epoch ends only once its orders were sent and journaled.
    broker_wait_max_s : float or None
        With ``broker_wait``, the longest the flow waits for a batch, in wall seconds;
        a batch still running then finishes on its lanes while the flow decides on (a
        candle close's level moves must not hold up a fill's take profit and stop that
        came in meanwhile). None: until the batch is answered.
    ops : OpsConfig
        Heartbeat, daily notice, data freshness, error rate, shutdown
        (:class:`~gridflow.config.ops.OpsConfig`).
    preflight : PreflightConfig
        What ``gridflow live`` checks before the flow starts: margin mode, whether it
        may set margin mode and leverage, clock skew bound
        (:class:`~gridflow.config.preflight.PreflightConfig`).
    """

    mode: Literal["paper", "live"] = "paper"
    allow_live: bool = False
    allow_beta_venue: bool = False
    exchange: ExchangeConfig = ExchangeConfig()
    timeframe: str = "1h"
    warmup_candles: int = Field(200, ge=0, le=5_000)
    candle_poll_s: float = Field(5.0, gt=0.0, le=3_600.0, allow_inf_nan=False)
    exchange_poll_s: float = Field(2.0, gt=0.0, le=3_600.0, allow_inf_nan=False)
    stop_limit_offset: float = Field(0.005, ge=0.0, le=0.2, allow_inf_nan=False)
    slippage_alert: float = Field(0.005, ge=0.0, le=1.0, allow_inf_nan=False)
    equity_drift_alert: float = Field(0.01, ge=0.0, le=1.0, allow_inf_nan=False)
    orphan_policy: Literal["alert", "cancel_ours"] = "cancel_ours"
    retry: RetryConfig = RetryConfig()
    end_ms: int | None = None
    streams: StreamsConfig = StreamsConfig()
    broker_lanes: int = Field(16, ge=1, le=32)
    broker_processes: int = Field(2, ge=0, le=8)
    broker_wait: bool = True
    broker_wait_max_s: float | None = Field(None, gt=0.0, le=60.0, allow_inf_nan=False)
    ops: OpsConfig = OpsConfig()
    preflight: PreflightConfig = PreflightConfig()

    def without_secrets(self) -> "LiveConfig":
        """This config with the exchange credentials removed: what pure operators keep
        (their state is pickled into Bytewax recovery snapshots, and ``SecretStr``
        pickles its value). Credentials live only in the broker and source connections,
        which read them from the environment on every start."""
        ex = self.exchange.model_copy(update={"api_key": None, "secret": None,
                                               "password": None})
        return self.model_copy(update={"exchange": ex})

    @model_validator(mode="after")
    def _armed(self) -> "LiveConfig":
        mismatch = self.exchange.venue_mismatch()
        if mismatch is not None:
            raise ValueError(mismatch)
        if self.mode == "live":
            if not self.allow_live:
                raise ValueError("live.mode = 'live' needs live.allow_live = true "
                                 "(the explicit flag that arms real orders)")
            ex = self.exchange
            if ex.api_key is None or ex.secret is None or not ex.api_key.get_secret_value() \
                    or not ex.secret.get_secret_value():
                raise ValueError("live.mode = 'live' needs live.exchange.api_key and "
                                 "live.exchange.secret (GRIDFLOW_LIVE__EXCHANGE__API_KEY / "
                                 "GRIDFLOW_LIVE__EXCHANGE__SECRET)")
            from gridflow.config.venues import VENUES

            v = VENUES.get(ex.id)
            if v is None or v.live == "paper":
                ok = sorted(k for k, x in VENUES.items() if x.live != "paper")
                what = f"{v.name} is paper only so far" if v else "not a venue gridflow trades"
                raise ValueError(f"live.exchange.id = {ex.id!r}: {what}; live.mode = 'live' "
                                 f"trades on {ok}")
            if v.live == "beta" and not self.allow_beta_venue:
                raise ValueError(f"live.exchange.id = {ex.id!r}: {v.name} is in beta (its "
                                 "backtests do not model all of its live order path, see "
                                 "README, Venues); set live.allow_beta_venue = true to "
                                 "trade it")
            if v.passphrase and (ex.password is None or not ex.password.get_secret_value()):
                raise ValueError(f"live.exchange.id = {ex.id!r} needs live.exchange.password "
                                 "(the API key's passphrase: "
                                 "GRIDFLOW_LIVE__EXCHANGE__PASSWORD)")
        return self
