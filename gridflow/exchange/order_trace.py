"""What the order gateway keeps while it handles one intent: the requests and errors met
(:class:`Trace`) and a place's checked ccxt arguments (:class:`Prepared`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Trace:
    """Requests and errors met while handling one intent: ``attempts`` (requests sent,
    lookups included), ``faults`` (ccxt error class names, in order), ``error`` (the
    last error's redacted text)."""

    attempts: int = 0
    faults: list[str] = field(default_factory=list)
    error: str = ""


@dataclass(frozen=True, slots=True)
class Prepared:
    """A place's ccxt arguments after the local checks: ccxt ``symbol``, ``ccxt_type``
    (``"limit"`` / ``"market"``), ``amount`` (base currency) and ``price`` (quote
    currency, None for market and stop-market orders) at the market's precision,
    ``params`` (client id, stop price, time in force, reduce-only) and whether it is a
    ``conditional`` (algo) order."""

    symbol: str
    ccxt_type: str
    amount: float
    price: float | None
    params: dict[str, Any]
    conditional: bool


__all__ = ["Prepared", "Trace"]
