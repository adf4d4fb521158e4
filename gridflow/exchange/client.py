"""Build a ccxt exchange from :class:`~gridflow.config.live.ExchangeConfig`."""

from __future__ import annotations

import ccxt

from gridflow.config.live import ExchangeConfig


def ccxt_symbol(symbol: str, market_type: str) -> str:
    """Config symbol ``"BTC/USDT"`` to the ccxt market traded: ``"BTC/USDT:USDT"`` for a
    linear ``swap``, unchanged for ``spot`` (or when already a swap symbol)."""
    if market_type == "swap" and ":" not in symbol:
        return f"{symbol}:{symbol.split('/')[1]}"
    return symbol


def config_symbol(ccxt_sym: str) -> str:
    """``"BTC/USDT:USDT"`` back to ``"BTC/USDT"``."""
    return ccxt_sym.split(":")[0]


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
    params: dict = {
        "enableRateLimit": True,
        "timeout": cfg.timeout_ms,
        "options": {"adjustForTimeDifference": False,
                    "defaultType": "swap" if cfg.market_type == "swap" else "spot",
                    **cfg.options},
    }
    if cfg.rate_limit_ms is not None:
        params["rateLimit"] = cfg.rate_limit_ms
    if cfg.api_key is not None:
        params["apiKey"] = cfg.api_key.get_secret_value()
    if cfg.secret is not None:
        params["secret"] = cfg.secret.get_secret_value()
    ex = getattr(ccxt, cfg.id)(params)
    if cfg.urls:
        api = dict(ex.urls.get("api", {}))
        api.update(cfg.urls)
        ex.urls["api"] = api
    return ex
