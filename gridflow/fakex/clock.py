"""Moving the fake exchange's manual clock: whole candles or pieces of one.

:func:`advance_to` walks the price path of every forming candle up to a target time
(:func:`gridflow.fakex.matching.walk_to`), closing each candle it passes and paying the
funding settlements it reaches on the way (:mod:`gridflow.fakex.funding`), in time order.
"""

from __future__ import annotations

from gridflow.fakex.book import Book
from gridflow.fakex.matching import close_candle, walk_to

__all__ = ["advance_to", "substep_target"]


def advance_to(book: Book, target: int) -> None:
    """Move the clock to ``target`` ms UTC (no-op if not after it; stops when the data
    ends). A candle whose close the target reaches is closed, so the clock then stands
    at the open of the next one (offset 0)."""
    feed = book.feed
    target = int(target)
    while feed.left() > 0 and feed.now < target:
        end = feed.open_ms + feed.tf_ms
        stop = min(target, end)
        if book.funding is not None:
            for t in book.funding.due(feed.now, stop):
                walk_to(book, t - feed.open_ms)
                book.funding.settle(book, t)
        walk_to(book, stop - feed.open_ms)
        if stop == end:
            close_candle(book)


def substep_target(open_ms: int, offset: int, tf_ms: int, k: int, of: int) -> int:
    """Time of the ``k``-th point after the clock on the grid that cuts every candle in
    ``of`` pieces (point ``j`` of a candle is ``open + j * tf // of``).

    Raises
    ------
    ValueError
        ``k < 0``, ``of < 1`` or a piece shorter than 1 ms.
    """
    k, of = int(k), int(of)
    if k < 0 or of < 1 or tf_ms // of < 1:
        raise ValueError(f"need k >= 0 and 1 <= of <= {tf_ms} (ms per candle), got k={k}, "
                         f"of={of}")
    j = offset * of // tf_ms
    while (j + 1) * tf_ms // of <= offset:
        j += 1
    n, r = divmod(j + k, of)
    return open_ms + n * tf_ms + r * tf_ms // of
