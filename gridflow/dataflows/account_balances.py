"""Positions and balances of an account as the exchange reports them (ccxt calls; the
live state source's REST readings).

* contracts: ``fetch_positions`` (one-way signed amounts and the average entry) and
  ``fetch_balance`` (wallet and equity of the quote asset);
* spot: one ``fetch_balance``, whose base balances stand for positions.
"""

from __future__ import annotations

import math
from typing import Any

from gridflow.dataflows.exchange_records import as_float
from gridflow.exchange.client import config_symbol

__all__ = ["contract_balance", "contract_positions", "spot_balance"]


def contract_positions(ex: Any, markets: dict[str, str]) -> dict[str, dict]:
    """Open positions of the traded ``markets`` (config symbol -> ccxt symbol): config
    symbol -> ``{"amount": signed base (short < 0), "entry_price": quote}``. Venues
    without Binance's ``positionAmt`` give ``contracts x contractSize`` and ``side``."""
    out: dict[str, dict] = {}
    for p in ex.fetch_positions(list(markets.values())):
        if p.get("symbol") not in markets.values():
            continue
        info = p.get("info") or {}
        amt = as_float(info.get("positionAmt"), math.nan)
        if math.isnan(amt):
            size = as_float(p.get("contracts"), 0.0) * as_float(p.get("contractSize"), 1.0)
            amt = -size if p.get("side") == "short" else size
        if amt == 0:
            continue
        out[config_symbol(p["symbol"])] = {
            "amount": amt, "entry_price": as_float(p.get("entryPrice"), 0.0),
        }
    return out


def contract_balance(ex: Any, quote: str) -> tuple[float | None, float | None]:
    """Wallet balance of ``quote`` (Binance ``walletBalance``: without unrealized PnL;
    ccxt's ``total`` when the field is absent) and the account's equity (ccxt's
    ``total``: the margin balance, wallet plus unrealized PnL)."""
    bal = ex.fetch_balance()
    total = (bal.get("total") or {}).get(quote)
    equity = None if total is None else float(total)
    info = bal.get("info")
    assets = info.get("assets") if isinstance(info, dict) else None
    for a in assets if isinstance(assets, list) else []:
        if isinstance(a, dict) and a.get("asset") == quote and "walletBalance" in a:
            return float(a["walletBalance"]), equity
    return equity, equity


def spot_balance(ex: Any, symbols: list[str], quote: str
                 ) -> tuple[dict[str, dict], tuple[float | None, None]]:
    """Spot: the base held per traded config symbol (``fetch_balance`` total, free plus
    locked, as ``{"amount", "entry_price": 0}``: no average entry, so never adopted) and
    ``(quote balance, None)``. No equity: base the owner holds beside the account's
    shares the balance, so the equity check does not run on spot."""
    total = ex.fetch_balance().get("total") or {}
    out = {}
    for sym in symbols:
        amt = as_float(total.get(sym.split("/")[0]), 0.0)
        if amt > 0:
            out[sym] = {"amount": amt, "entry_price": 0.0}
    q = total.get(quote)
    return out, (None if q is None else float(q), None)
