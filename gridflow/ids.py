"""Deterministic identifiers: a re-emitted order after a crash gets the same id."""

from __future__ import annotations

import hashlib


def client_order_id(account: str, strategy: str, symbol: str, tag: str, ts_ms: int) -> str:
    """ccxt ``clientOrderId`` for an order decided at ``ts_ms``.

    Parameters
    ----------
    account, strategy, symbol : str
    tag : str
        ``"L0"``.. for grid levels, ``"TP"``, ``"SL"``.
    ts_ms : int
        Decision time (close time of the candle the decision used), ms UTC.

    Returns
    -------
    str
        ``"gf"`` + 30 hex chars of BLAKE2b over the fields: 32 characters from
        ``[0-9a-z]``, inside Binance's 36-character limit; equal inputs give equal ids.
    """
    key = f"{account}|{strategy}|{symbol}|{tag}|{int(ts_ms)}".encode()
    return "gf" + hashlib.blake2b(key, digest_size=15).hexdigest()
