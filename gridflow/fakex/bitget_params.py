"""Request-parameter checks of the fake exchange's Bitget dialect.

Parameters arrive as query strings (GET) or JSON body values (POST). Sizes are checked
against the contract's ``volumePlace`` / ``sizeMultiplier`` / ``minTradeNum`` and
prices against ``pricePlace`` / ``priceEndStep`` the way Bitget refuses them
(prices in quote, amounts in base, times in ms UTC).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from gridflow.fakex.bitget_markets import BitgetError
from gridflow.fakex.book import Book
from gridflow.fakex.markets import MarketSpec, fmt_num, on_grid

__all__ = ["Params", "check_price", "check_size", "integer", "limit", "margin_coin",
           "missing", "product_type", "spec_of", "text", "window", "yes_no"]

Params = dict[str, Any]
PRODUCT = "USDT-FUTURES"


def missing(name: str) -> BitgetError:
    """Bitget's refusal of an absent mandatory parameter (ccxt: ``BadRequest``)."""
    return BitgetError("40019", f"Parameter {name} cannot be empty")


def text(p: Params, name: str, required: bool = False) -> str | None:
    """Parameter ``name`` as a string (None when absent or empty)."""
    v = p.get(name)
    if v is None or v == "":
        if required:
            raise missing(name)
        return None
    return v if isinstance(v, str) else str(v)


def integer(p: Params, name: str) -> int | None:
    """Parameter ``name`` as an int (ms times, ids, counts)."""
    v = text(p, name)
    if v is None:
        return None
    try:
        return int(v)
    except ValueError:
        raise BitgetError("40017", f"Parameter verification failed {name}") from None


def limit(p: Params, default: int, most: int, name: str = "limit") -> int:
    """``limit``-like paging parameter, at most ``most`` (larger values are cut)."""
    n = integer(p, name)
    if n is None:
        return default
    if n <= 0:
        raise BitgetError("40017", f"Parameter verification failed {name}")
    return min(n, most)


def product_type(p: Params, required: bool = True) -> str | None:
    """``productType``: only ``USDT-FUTURES`` (any case) is served for trading."""
    v = text(p, "productType", required)
    if v is None:
        return None
    if v.upper() != PRODUCT:
        raise BitgetError("40017", f"Parameter verification failed productType {v}")
    return PRODUCT


def margin_coin(p: Params, required: bool = False) -> None:
    """``marginCoin`` must be USDT when sent."""
    v = text(p, "marginCoin", required)
    if v is not None and v.upper() != "USDT":
        raise BitgetError("43049", "Margin coin is not allowed")


def spec_of(book: Book, p: Params, required: bool = True) -> MarketSpec | None:
    """The market named by ``symbol`` (Bitget also accepts lower case)."""
    sym = text(p, "symbol", required)
    if sym is None:
        return None
    for s in book.specs.values():
        if s.id == sym.upper():
            return s
    raise BitgetError("40034", f"Parameter {sym} does not exist")


def _decimal(raw: str, name: str) -> Decimal:
    try:
        d = Decimal(raw)
    except InvalidOperation:
        raise BitgetError("40017", f"Parameter verification failed {name}") from None
    if not d.is_finite():
        raise BitgetError("40017", f"Parameter verification failed {name}")
    return d


def _scale(d: Decimal) -> int:
    return max(0, -int(d.normalize().as_tuple().exponent))


def check_size(spec: MarketSpec, raw: str | None, reduce_only: bool = False) -> float:
    """The order size (base) if Bitget accepts it: at most ``volumePlace`` decimals
    (else 40808, ccxt ``InvalidOrder``), a multiple of ``sizeMultiplier`` and at least
    ``minTradeNum`` (else 45111, which ccxt leaves an ``ExchangeError``)."""
    if raw is None:
        raise missing("size")
    d = _decimal(raw, "size")
    if d <= 0 or _scale(d) > spec.amount_decimals:
        raise BitgetError("40808", f"Parameter verification exception size checkBDScale "
                                   f"error value={raw} checkScale={spec.amount_decimals}")
    qty = float(d)
    if not on_grid(qty, spec.amount_step):
        raise BitgetError("22038", f"Please enter the quantity as an integral multiple of "
                                   f"{fmt_num(spec.amount_step, 10)}")
    if qty < spec.min_amount * (1 - 1e-9) and not reduce_only:
        raise BitgetError("45111", "less than the minimum order quantity")
    return qty


def check_price(spec: MarketSpec, raw: str | None, name: str = "price") -> float:
    """A price (quote) if Bitget accepts it: > 0, at most ``pricePlace`` decimals
    (else 41103, ccxt ``InvalidOrder``) and a multiple of the tick (else 45115)."""
    if raw is None:
        raise missing(name)
    d = _decimal(raw, name)
    if d <= 0:
        raise BitgetError("43011", f"The parameter does not meet the specification {name} <= 0")
    if _scale(d) > spec.price_decimals:
        raise BitgetError("41103", f"param {name} scale error error")
    px = float(d)
    if not on_grid(px, spec.price_tick):
        raise BitgetError("45115", f"The price you enter should be a multiple of "
                                   f"{fmt_num(spec.price_tick, 10)}")
    return px


def yes_no(p: Params, name: str) -> bool:
    """``YES`` / ``NO`` flag (``reduceOnly``); absent is NO."""
    v = text(p, name)
    if v is None:
        return False
    if v.upper() not in ("YES", "NO"):
        raise BitgetError("40017", f"Parameter verification failed {name}")
    return v.upper() == "YES"


def window(rows: list, p: Params, time_of, id_of, default: int, most: int) -> tuple[list, str]:
    """Bitget history paging, newest first: ``startTime`` / ``endTime`` (inclusive,
    ms) on ``time_of``, ``idLessThan`` on ``id_of``, ``limit``. Returns the rows and
    ``endId`` (the id of the last row, ``""`` when none)."""
    n = limit(p, default, most)
    start, end, below = integer(p, "startTime"), integer(p, "endTime"), integer(p, "idLessThan")
    out = [r for r in rows if (start is None or time_of(r) >= start)
           and (end is None or time_of(r) <= end) and (below is None or id_of(r) < below)]
    out.sort(key=lambda r: (time_of(r), id_of(r)), reverse=True)
    out = out[:n]
    return out, (str(id_of(out[-1])) if out else "")
