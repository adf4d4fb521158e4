"""What every strategy gives the account engine: resting quotes per candle close."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Quotes:
    """Quotes decided at each candle close; they rest during the symbol's next candle.

    Attributes
    ----------
    side : int64 (n,)
        Direction: +1 long grid, -1 short grid, 0 neutral (warm-up). When it is the
        opposite of an open position's side, the engine closes that position at the next
        candle's open (a flip).
    levels : float64 (n, L)
        Entry prices in quote currency, level 0 nearest the market, rounded to the price
        tick away from the market (down for buys); NaN where a level must not open
        (warm-up, a filter saying no).
    take_profit : float64 (n,)
        Price that closes the whole position (quote), NaN for none.
    trail : float64 (n,)
        Trailing-stop distance (quote) from the best price since entry, NaN for none.
    exit : int64 (n,)
        1 where the strategy's exit signal closes an open position at the next open
        (the funding grid's normalised funding), else 0.
    stop : float64 (n,)
        The k x ATR initial stop's distance (quote) from the average entry, kept by a
        position opening on these quotes; NaN for none
        (:mod:`~gridflow.operators.strategies.stops`).
    """

    side: np.ndarray
    levels: np.ndarray
    take_profit: np.ndarray
    trail: np.ndarray
    exit: np.ndarray
    stop: np.ndarray


def round_to_tick(x: np.ndarray, tick: float, up: bool) -> np.ndarray:
    """Round prices to a tick (quote): up (ceil) or down (floor); 0 disables."""
    if tick <= 0.0:
        return x
    q = x / tick
    q = np.ceil(q - 1e-9) if up else np.floor(q + 1e-9)
    return q * tick


def quotes_of(p, values: dict[str, np.ndarray], price_tick: float, inputs: list[str]
              ) -> Quotes:
    """The quotes of strategy parameters ``p`` at each candle close of a chunk: the
    quote rule (:func:`~gridflow.operators.strategies.quote_kernel.quote_at`) over the
    indicator outputs ``inputs`` (its ``x0, x1, ...``, float64 (n,) each in ``values``)
    and the gate of ``p``'s entry and regime filters
    (:func:`~gridflow.operators.strategies.filters.entry_gate`), with its k x ATR stop
    distances (:func:`~gridflow.operators.strategies.stops.stop_distances`);
    ``price_tick`` in quote
    (0 disables rounding).

    Raises
    ------
    KeyError
        ``values`` lacks an input or a filter's indicator.
    """
    from gridflow.operators.strategies.filters import entry_gate
    from gridflow.operators.strategies.quote_kernel import quote_params, quotes_array
    from gridflow.operators.strategies.stops import stop_distances

    xs = [values[k] for k in inputs]
    n = len(xs[0])
    return Quotes(*quotes_array(quote_params(p, price_tick), *xs,
                                gate=entry_gate(p, values, n)),
                  stop_distances(p, values, n))
