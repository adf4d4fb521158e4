"""Funding-rate grid: a grid ATR on the side the last settled funding rate pays.

A rate ``>= entry_rate`` (longs pay shorts) quotes a short grid: level ``i`` sells at
``SMA + ATR * (atr_start + i * atr_step)``; a rate ``<= -entry_rate`` a long grid below
the SMA. The take profit closes the whole grid back at the SMA, the stop ``sl_frac``
beyond the average entry; once ``|rate| <= exit_rate`` (funding normalised) the exit
signal closes an open position at the next open; in between an open position is held
without new levels. The rate is the last settlement at or before each candle close
(:func:`gridflow.data.funding.last_rate`), known when the close is: no look-ahead. SMA
and ATR (Wilder 1978) of the candle just closed; the quotes rest during the next one.
"""

from __future__ import annotations

import numpy as np

from gridflow.config.strategies import GridFundingParams
from gridflow.data.funding import FUNDING_RATE
from gridflow.operators.indicators import indicator_name
from gridflow.operators.strategies.base import Quotes, quotes_of

__all__ = ["FUNDING_RATE", "grid_funding_indicators", "grid_funding_inputs",
           "grid_funding_quotes"]
# FUNDING_RATE is not an indicator of the bank: the account engine supplies it from the
# funding file (replay) or the live candle source (paper, live), the sweep from its data


def grid_funding_indicators(p: GridFundingParams) -> list[str]:
    """Indicator names the strategy needs, as understood by ``IndicatorBank``."""
    return [indicator_name("sma", p.sma_period), indicator_name("atr", p.atr_period)]


def grid_funding_inputs(p: GridFundingParams) -> list[str]:
    """Inputs of ``quote_at`` (``x0, x1, x2``): SMA, ATR, the last settled funding rate."""
    return [*grid_funding_indicators(p), FUNDING_RATE]


def grid_funding_quotes(p: GridFundingParams, values: dict[str, np.ndarray],
                        price_tick: float = 0.0) -> Quotes:
    """Quotes of a funding grid for each candle of a chunk.

    Parameters
    ----------
    p : GridFundingParams
    values : dict[str, np.ndarray]
        ``sma_N``, ``atr_N`` (quote) and ``funding_rate`` (fraction), float64 (n,);
        NaN in warm-up or before the first settlement (no quotes then).
    price_tick : float
        Exchange price increment (quote); 0 disables rounding.

    Returns
    -------
    Quotes
        Computed by :func:`~gridflow.operators.strategies.quote_kernel.quote_at`.
    """
    return quotes_of(p, values, price_tick, grid_funding_inputs(p))
