"""Reading every row of a time window from an endpoint that serves pages of at most
``size`` rows, whichever end of the window a page comes from.

Venues differ: Binance serves the *oldest* ``limit`` rows of a window (trades, income),
Bitget the *newest* (fill history, account bills). A page that comes back full cannot
say which part it is, so its window is split into two halves, each read the same way,
until no page is full (or a window is one ms). Rows are deduplicated by id; every
request asks a window overlapping the next by one ms, so a venue whose end time is
exclusive loses nothing at a boundary.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["read_window"]


def read_window(fetch: Callable[[int, int, int], list[dict]], start: int, end: int,
                size: int, span: int, last: int) -> list[dict]:
    """Every row stamped in ``[start, end]`` (ms UTC), unique by ``id``.

    Parameters
    ----------
    fetch : callable
        ``(since, limit, until) -> rows`` (ccxt dicts with ``id`` and ``timestamp``); may
        raise ccxt errors, which propagate.
    start, end : int
        The window, ms UTC, inclusive.
    size : int
        The venue's page size (rows per request, its maximum).
    span : int
        Widest window a request may ask (ms; e.g. Binance USDⓈ-M trades: 7 days).
    last : int
        The newest time the caller may be shown (its watermark): the final request's
        ``until`` is not extended past it.

    Returns
    -------
    list of dict
        Rows with a timestamp, in no particular order (a row without an id is keyed by
        its time, amount and price).
    """
    seen: dict[str, dict] = {}
    span = max(int(span), 1)
    todo = [(a, min(a + span - 1, end)) for a in range(start, end + 1, span)]
    while todo:
        a, b = todo.pop(0)
        page = fetch(a, size, b + 1 if b < last else b)
        for r in page:
            if r.get("timestamp") is None:
                continue
            rid = r.get("id")
            seen[str(rid) if rid is not None else repr(
                (r["timestamp"], r.get("amount"), r.get("price")))] = r
        if len(page) >= size and b > a:
            mid = (a + b) // 2
            todo[:0] = [(a, mid), (mid + 1, b)]
    return list(seen.values())
