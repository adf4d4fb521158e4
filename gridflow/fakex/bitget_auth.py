"""Bitget API-key authentication of the fake exchange.

A signed request carries ``ACCESS-KEY``, ``ACCESS-PASSPHRASE``, ``ACCESS-TIMESTAMP``
(ms) and ``ACCESS-SIGN``: base64 of HMAC-SHA256(secret, timestamp + METHOD +
requestPath [+ "?" + query] + body). ccxt sorts the query parameters; the query is
accepted as sent or percent-decoded (ccxt signs the decoded form). The timestamp must
be a positive integer; it is not compared with any clock (the simulated clock is in
the past, ccxt sends wall time).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any
from urllib.parse import unquote

from gridflow.fakex.bitget_markets import BitgetError

__all__ = ["check_bitget_auth", "sign"]


def sign(secret: bytes, prehash: str) -> str:
    """Base64 HMAC-SHA256 of ``prehash`` under ``secret``."""
    return base64.b64encode(hmac.new(secret, prehash.encode(), hashlib.sha256).digest()).decode()


def check_bitget_auth(headers: Any, method: str, path: str, qs: str, body: str,
                      api_key: str, secret: bytes, passphrase: str) -> None:
    """Verify the Bitget signature headers of one request.

    Raises
    ------
    BitgetError
        40001 no key, 40002 no sign, 40011 no passphrase, 40005 bad timestamp,
        40006 unknown key, 40012 wrong passphrase, 40009 wrong signature (ccxt:
        ``AuthenticationError``, ``InvalidNonce`` for 40005).
    """
    key, sig = headers.get("ACCESS-KEY"), headers.get("ACCESS-SIGN")
    ts, phrase = headers.get("ACCESS-TIMESTAMP"), headers.get("ACCESS-PASSPHRASE")
    if not key:
        raise BitgetError("40001", "ACCESS_KEY cannot be empty")
    if not sig:
        raise BitgetError("40002", "ACCESS_SIGN cannot be empty")
    if not phrase:
        raise BitgetError("40011", "ACCESS_PASSPHRASE cannot be empty")
    if not ts or not ts.isdigit() or int(ts) <= 0:
        raise BitgetError("40005", "Invalid ACCESS_TIMESTAMP")
    if key != api_key:
        raise BitgetError("40006", "Invalid ACCESS_KEY")
    if not hmac.compare_digest(phrase, passphrase):
        raise BitgetError("40012", "apikey/password is incorrect")
    candidates = [qs, unquote(qs)] if qs else [""]
    for q in candidates:
        want = sign(secret, ts + method + path + (f"?{q}" if q else "") + body)
        if hmac.compare_digest(want, sig):
            return
    raise BitgetError("40009", "sign signature error")
