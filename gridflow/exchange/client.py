"""Build a ccxt exchange from :class:`~gridflow.config.live.ExchangeConfig`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import ccxt

from gridflow.config.live import ExchangeConfig
from gridflow.redaction import SECRET_FILTER, register_secrets


def ccxt_symbol(symbol: str, market_type: str) -> str:
    """Config symbol ``"BTC/USDT"`` to the ccxt market traded: ``"BTC/USDT:USDT"`` for a
    linear ``swap``, unchanged for ``spot`` (or when already a swap symbol)."""
    if market_type == "swap" and ":" not in symbol:
        return f"{symbol}:{symbol.split('/')[1]}"
    return symbol


def config_symbol(ccxt_sym: str) -> str:
    """``"BTC/USDT:USDT"`` back to ``"BTC/USDT"``."""
    return ccxt_sym.split(":")[0]


# Per-exchange option defaults (``ExchangeConfig.options`` overrides them).
# binanceusdm: ccxt's ``fetchCurrencies`` would call the spot wallet's
# ``sapi/v1/capital/config/getall`` on every ``load_markets`` when keys are set; futures
# trading needs no currency list, so the futures (``fapi``) endpoints are the only ones
# called (and the local test exchange, ``gridflow.fakex``, serves exactly those).
# bitget: markets of the traded type only (ccxt would list spot, margin and every futures
# product type on each load_markets).
# binance (spot): the spot markets only (ccxt would also load both futures exchanges'
# markets on every load_markets), no currency list and no margin pairs (``sapi``).
_DEFAULT_OPTIONS: dict[str, dict] = {"binanceusdm": {"fetchCurrencies": False},
                                     "bitget": {"fetchCurrencies": False},
                                     "binance": {"fetchCurrencies": False, "fetchMargins": False,
                                                 "fetchMarkets": {"types": ["spot"]}}}


def _use_error_map(ex: ccxt.Exchange, which: str) -> None:
    """ccxt's binance picks its error map per API (``linear``: USDⓈ-M's ``-2019``
    InsufficientFunds, ``-4164``/``-4116``/``-2022`` InvalidOrder, ``-2021``
    OrderImmediatelyFillable ...; ``spot``: ``-2010`` by message, ...) by the request
    URL's host (``fapi.binance.com``, ``api.binance.com``); an overridden URL (the local
    test exchange) matches no host and would get plain ExchangeError. Merge map
    ``which`` into the generic one."""
    extra = ex.exceptions.get(which) or {}
    for kind in ("exact", "broad"):
        ex.exceptions[kind] = {**ex.exceptions.get(kind, {}), **extra.get(kind, {})}


def _guard_logs(secrets: list[str]) -> None:
    """Register the API key and secret with the one redactor
    (:func:`gridflow.redaction.register_secrets`) and put its process-wide filter
    (:data:`gridflow.redaction.SECRET_FILTER`) on the ``ccxt`` logger and on the root
    handlers, once (a filter on a logger does not see its children's records; handler
    filters do)."""
    register_secrets(secrets)
    targets = [logging.getLogger("ccxt"), *logging.getLogger().handlers]
    for t in targets:
        if SECRET_FILTER not in t.filters:
            t.addFilter(SECRET_FILTER)


def _params(cfg: ExchangeConfig) -> dict:
    """ccxt constructor parameters of ``cfg`` (keys included: never log them)."""
    params: dict = {
        "enableRateLimit": True,
        "timeout": cfg.timeout_ms,
        "options": {"adjustForTimeDifference": False,
                    "defaultType": "swap" if cfg.market_type == "swap" else "spot",
                    **_DEFAULT_OPTIONS.get(cfg.id, {}),
                    **({"fetchMarkets": {"types": [cfg.market_type]}} if cfg.id == "bitget"
                       else {}),
                    **cfg.options},
    }
    if cfg.rate_limit_ms is not None:
        params["rateLimit"] = cfg.rate_limit_ms
    if cfg.api_key is not None:
        params["apiKey"] = cfg.api_key.get_secret_value()
    if cfg.secret is not None:
        params["secret"] = cfg.secret.get_secret_value()
    if cfg.password is not None:
        params["password"] = cfg.password.get_secret_value()
    _guard_logs([params.get("apiKey", ""), params.get("secret", ""),
                 params.get("password", "")])
    return params


def _override_urls(ex: ccxt.Exchange, cfg: ExchangeConfig) -> None:
    if cfg.urls or cfg.ws_urls:
        api = dict(ex.urls.get("api", {}))
        api.update(cfg.urls)
        if cfg.ws_urls:
            api["ws"] = {**(api.get("ws") or {}), **cfg.ws_urls}
        ex.urls["api"] = api
        if cfg.id in ("binanceusdm", "binance"):
            _use_error_map(ex, "linear" if cfg.id == "binanceusdm" else "spot")


def make_exchange(cfg: ExchangeConfig) -> ccxt.Exchange:
    """A synchronous ccxt exchange with its rate limiter on.

    Keys are read from the SecretStr fields only here, straight into ccxt; the returned
    object must never be logged whole.

    Raises
    ------
    ValueError
        Unknown ccxt exchange id.
    """
    if cfg.id not in ccxt.exchanges:
        raise ValueError(f"unknown ccxt exchange id {cfg.id!r}")
    ex = getattr(ccxt, cfg.id)(_params(cfg))
    _override_urls(ex, cfg)
    return ex


class SharedThrottle:
    """One request pacing for several synchronous ccxt clients of one account (the
    broker's lanes), in place of each client's own ``throttle``.

    ccxt's synchronous limiter spaces a client's requests ``rateLimit × cost`` ms
    apart; clients side by side would each do so and together exceed the venue's
    budget. Attached to every lane's client (:meth:`attach`), the pacing holds across
    all of them: each request reserves the next slot under a lock and sleeps outside it
    until its slot. With ``burst``, requests may run that many cost units ahead of the
    even pacing (the generic cell rate algorithm, a leaky bucket as a meter): after a
    quiet while a burst goes out at once (a candle close's entries, a kill switch's
    cancels), and the long-run pace stays ccxt's.

    Parameters
    ----------
    rate_limit_ms : float
        ms per unit of request cost (ccxt's ``rateLimit``); 0 = no pacing.
    burst : float
        Cost units a request may go ahead of the even pacing (≥ 0; 0 = ccxt's even
        spacing).
    sleep : callable
        ``seconds -> None`` (tests).
    clock : callable
        Monotonic seconds (tests).

    Raises
    ------
    ValueError
        A negative ``rate_limit_ms`` or ``burst``.
    """

    def __init__(self, rate_limit_ms: float, burst: float = 0.0,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate_limit_ms < 0 or burst < 0:
            raise ValueError(f"rate_limit_ms and burst must be >= 0, got {rate_limit_ms}, "
                             f"{burst}")
        self.rate_limit_ms = float(rate_limit_ms)
        self.burst = float(burst)
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self._tat = 0.0  # monotonic s at which the pacing is even again

    def __call__(self, cost: float | None = None) -> None:
        """Wait for this request's slot (ccxt calls ``throttle(cost)`` before each)."""
        wait_s = self.reserve(cost)
        if wait_s > 0:
            self._sleep(wait_s)

    def reserve(self, cost: float | None = None) -> float:
        """Reserve the next slot for a request of ``cost`` units (None: 1) without
        waiting; the seconds the request must wait for it (0: go now). A client in
        another process (a broker process's lane) asks for its slot this way."""
        unit = self.rate_limit_ms / 1000.0
        step = unit * (1.0 if cost is None else float(cost))
        with self._lock:
            now = self._clock()
            tat = max(self._tat, now)
            start = max(now, tat - self.burst * unit)
            self._tat = tat + step
        return start - now

    def attach(self, exchange: ccxt.Exchange) -> ccxt.Exchange:
        """Make ``exchange`` pace its requests through this throttle; returns it."""
        exchange.throttle = self
        return exchange


def supports_streams(cfg: ExchangeConfig) -> bool:
    """Whether ``cfg.id`` is streamed: ccxt.pro has a websocket client for it and, for a
    venue gridflow trades (:data:`gridflow.config.venues.VENUES`), that path is tested
    against the local exchange (else its streams are polled)."""
    import ccxt.pro

    from gridflow.config.venues import VENUES

    venue = VENUES.get(cfg.id)
    return cfg.id in ccxt.pro.exchanges and (venue is None or venue.streams)


def make_pro_exchange(cfg: ExchangeConfig):
    """The asynchronous ccxt.pro (websocket) exchange of ``cfg``: same options, keys,
    rate limiter and URL overrides as :func:`make_exchange`, plus ``cfg.ws_urls``.
    Create and use it on one asyncio event loop only; ``await ex.close()`` at the end.

    Raises
    ------
    ValueError
        ccxt.pro has no client for ``cfg.id``.
    """
    import ccxt.pro

    if cfg.id not in ccxt.pro.exchanges:
        raise ValueError(f"ccxt.pro has no websocket client for {cfg.id!r}")
    params = _params(cfg)
    params["options"]["newUpdates"] = True  # each watch returns only what is new
    ex = getattr(ccxt.pro, cfg.id)(params)
    _override_urls(ex, cfg)
    return ex
