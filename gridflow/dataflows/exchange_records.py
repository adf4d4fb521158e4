"""ccxt records as the plain values of an :class:`~gridflow.chunks.ExchangeUpdate`:
numbers that may be missing, trade ids, open orders."""

from __future__ import annotations

from typing import Any

from gridflow.exchange.client import config_symbol


def as_float(v: Any, default: float) -> float:
    """``float(v)``, or ``default`` when ``v`` is None or not a number."""
    try:
        return default if v is None else float(v)
    except (TypeError, ValueError):
        return default


def id_key(v: Any) -> tuple[int, str]:
    """Sort key of an exchange id: numeric ids by value, others after 0 by text."""
    s = str(v)
    return (int(s), "") if s.isdigit() else (0, s)


_TYPES = {"stop": "stop_limit", "take_profit": "take_profit_limit",
          # Binance spot's conditional orders (a stop-limit stays one once triggered)
          "stop_loss_limit": "stop_limit", "stop_loss": "stop_market"}


def order_dict(o: dict) -> dict:
    """A ccxt order as the open-order dict of :class:`~gridflow.chunks.ExchangeUpdate`."""
    info = o.get("info") or {}
    raw = str(info.get("orderType") or info.get("type") or o.get("type") or "").lower()
    price = as_float(o.get("price"), 0.0)
    stop = as_float(o.get("triggerPrice") if o.get("triggerPrice") is not None
                  else o.get("stopPrice"), 0.0)
    typ = _TYPES.get(raw, raw)
    if stop and typ in ("market", "limit"):  # a trigger order typed by the order it
        typ = "stop_" + typ                  # places (Bitget plan orders): a stop
    return {
        "client_order_id": str(o.get("clientOrderId") or ""),
        "symbol": config_symbol(o["symbol"]), "side": o.get("side"),
        "type": typ, "price": price or None, "stop_price": stop or None,
        "amount": as_float(o.get("amount"), 0.0), "filled": as_float(o.get("filled"), 0.0),
        "reduce_only": bool(o.get("reduceOnly")), "exchange_order_id": str(o.get("id") or ""),
        "ts": int(o["timestamp"]) if o.get("timestamp") is not None else None,
    }
