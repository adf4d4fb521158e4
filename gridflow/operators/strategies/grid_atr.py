"""Grid ATR: entry levels spaced in ATRs around an SMA, take profit back at the SMA.

For a long grid, level ``i`` (0..levels-1) buys at
``SMA - ATR * (atr_start + i * atr_step)``; a short grid sells at
``SMA + ATR * (atr_start + i * atr_step)``. The take profit closes the whole grid when
price returns to the current SMA; the stop loss (applied by the account kernel) closes it
at ``sl_frac`` beyond the average entry. SMA and ATR are those of the candle just closed
(ATR per Wilder 1978, as TA-Lib); the quotes rest during the next candle.
"""

from __future__ import annotations

import numpy as np

from gridflow.config.strategies import GridAtrParams
from gridflow.operators.indicators import indicator_name
from gridflow.operators.strategies.base import Quotes, quotes_of


def grid_atr_indicators(p: GridAtrParams) -> list[str]:
    """Indicator names the strategy needs, as understood by ``IndicatorBank``."""
    return [indicator_name("sma", p.sma_period), indicator_name("atr", p.atr_period)]


def grid_atr_quotes(p: GridAtrParams, values: dict[str, np.ndarray],
                    price_tick: float = 0.0) -> Quotes:
    """Quotes of a grid ATR for each candle of a chunk.

    Parameters
    ----------
    p : GridAtrParams
    values : dict[str, np.ndarray]
        Indicator values of the chunk (``sma_N``, ``atr_N``: float64 (n,), quote
        currency, NaN in warm-up).
    price_tick : float
        Exchange price increment (quote); 0 disables rounding.

    Returns
    -------
    Quotes
        No quotes (side 0, NaN levels) during warm-up; no trailing stop. Computed by
        :func:`~gridflow.operators.strategies.quote_kernel.quote_at`.
    """
    return quotes_of(p, values, price_tick, grid_atr_inputs(p))


def grid_atr_inputs(p: GridAtrParams) -> list[str]:
    """Indicator outputs feeding ``quote_at`` (``x0, x1``): SMA, ATR."""
    return grid_atr_indicators(p)
