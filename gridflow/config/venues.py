"""The venues gridflow trades, and the rules a config must follow on each.

A venue is a ccxt exchange id with one market type: ``binanceusdm`` (Binance USDT-M
perpetuals), ``binance`` (Binance spot), ``bitget`` (Bitget USDT-M perpetuals, v2 mix
API). What each venue's orders can do (reduce-only, stop-market / stop-limit / plan
stops, whether a take profit and a stop may rest on the same amount) is decided from
ccxt at run time (:mod:`gridflow.exchange.venue`); this module holds what a config can
be checked against before anything connects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["VENUES", "VenueInfo", "short_field"]


@dataclass(frozen=True)
class VenueInfo:
    """What a config needs to know of a venue.

    Attributes
    ----------
    name : str
        For messages and the README.
    market_type : "swap" or "spot"
        The markets gridflow trades there (config symbols ``"BTC/USDT"``).
    passphrase : bool
        The API key comes with a passphrase (ccxt ``password``; Bitget).
    live : "live", "beta" or "paper"
        Real orders: supported (its order path passes the end-to-end, fault and SIGKILL
        restart tests against the local exchange), ``beta`` (it passes them, but a known
        difference remains, see README *Venues*: Binance spot's replay does not model
        its watched take profit and fee in base; orders only with
        ``live.allow_beta_venue = true``), or not at all. Paper runs work on every
        venue.
    streams : bool
        Its websocket path (ccxt.pro) is tested against the local exchange; else every
        stream is polled whatever ``live.streams`` says.
    maker_fee, taker_fee : float
        The venue's regular-tier fees (fractions of notional), the replay's and paper's
        when ``[fees]`` sets none.
    rate_limit_burst : float
        The default of ``live.exchange.rate_limit_burst``: how far, in ccxt cost units,
        the broker's requests may run ahead of ccxt's even pacing. Binance USDⓈ-M
        counts orders, 300 per 10 s and 1,200 per minute, not ccxt's costs: a
        ``batchOrders`` of 5 orders costs 5 units and an ``algoOrder`` (a stop) 1, so at
        ccxt's pace (50 ms a unit) gridflow's orders can come to 200 per 10 s, and to
        the minute's 1,200 if that pace held for a whole minute. A burst of 60 units
        keeps any 10 s under 265 orders (200 + 60 + one batch) and is more than a kill
        switch's cancels and protective orders at five symbols (about 30 units) or a
        candle close's entries (25); a minute of saturated pace gets at most 65 more.
        Bitget: ccxt's pace (an order per 100 ms) is the venue's own limit (10 per
        second), so no burst. Binance spot: none (ccxt prices an order at 10 ms, above
        the venue's 100 orders per 10 s: its pace is not the venue's).
    """

    name: str
    market_type: Literal["swap", "spot"]
    passphrase: bool
    live: Literal["live", "beta", "paper"]
    streams: bool = False
    maker_fee: float = 0.0002
    taker_fee: float = 0.0005
    rate_limit_burst: float = 0.0


VENUES: dict[str, VenueInfo] = {
    "binanceusdm": VenueInfo("Binance USDT-M perpetuals", "swap", False, "live",
                             streams=True, rate_limit_burst=60.0),
    "binance": VenueInfo("Binance spot", "spot", False, "beta", maker_fee=0.001,
                         taker_fee=0.001),
    "bitget": VenueInfo("Bitget USDT-M perpetuals", "swap", True, "live", taker_fee=0.0006),
}
"""ccxt id -> venue."""

_BOTH_SIDES = {"grid_multi_tf", "grid_trend", "grid_funding"}
"""Strategies whose side follows the market (trend, funding): they go short too."""


def short_field(p: Any) -> tuple[str, Any] | None:
    """The field of strategy ``p`` that makes it sell short, with its value; None for a
    long-only strategy (what a spot market allows: no borrowing).

    ``grid_atr`` and ``envelope_dca`` short with ``side = "short"``; ``grid_multi_tf``,
    ``grid_trend`` and ``grid_funding`` take either side by design (their ``name``)."""
    if getattr(p, "name", None) in _BOTH_SIDES:
        return "name", p.name
    if getattr(p, "side", "long") == "short":
        return "side", "short"
    for sym, ov in sorted((getattr(p, "overrides", None) or {}).items()):
        if ov.get("side") == "short":  # a per-asset override sells short too
            return f"overrides[{sym!r}].side", "short"
    return None
