"""Multi-timeframe grid: a higher-timeframe Supertrend picks the side of a grid ATR.

The Supertrend direction on ``htf`` candles (``supertrend_{period}_{mult}@{htf}``,
output ``direction``, visible only from the close of the HTF candle it belongs to)
sets the side: +1 (up) quotes a long grid, level ``i`` (0..levels-1) buying at
``SMA - ATR * (atr_start + i * atr_step)``; -1 (down) quotes a short grid selling at
``SMA + ATR * (atr_start + i * atr_step)``. SMA and ATR (Wilder 1978) are on the base
candles. The take profit closes the grid back at the SMA. When ``side`` turns to the
opposite of an open grid, the account engine closes that grid at the next candle's
open. Supertrend after Olivier Seban, as TradingView's ``ta.supertrend``.
"""

from __future__ import annotations

import numpy as np

from gridflow.config.strategies import GridMultiTfParams
from gridflow.operators.indicators import indicator_name
from gridflow.operators.strategies.base import Quotes, quotes_of


def grid_multi_tf_indicators(p: GridMultiTfParams) -> list[str]:
    """Indicator names the strategy needs: ``[supertrend_P_M@htf, sma_N, atr_N]``.

    The Supertrend is multi-output; the quotes read its ``.direction`` key.
    """
    return [
        indicator_name("supertrend", p.supertrend_period, float(p.supertrend_multiplier),
                       timeframe=p.htf),
        indicator_name("sma", p.sma_period),
        indicator_name("atr", p.atr_period),
    ]


def grid_multi_tf_quotes(p: GridMultiTfParams, values: dict[str, np.ndarray],
                         price_tick: float = 0.0) -> Quotes:
    """Quotes of a multi-timeframe grid for each candle of a chunk.

    Parameters
    ----------
    p : GridMultiTfParams
    values : dict[str, np.ndarray]
        Indicator values of the chunk, float64 (n,) each, NaN in warm-up:
        ``supertrend_P_M@htf.direction`` (+1.0 / -1.0), ``sma_N`` and ``atr_N`` (quote
        currency).
    price_tick : float
        Exchange price increment (quote); 0 disables rounding.

    Returns
    -------
    Quotes
        ``side`` (n,) the HTF direction (+1 / -1), 0 until SMA, ATR and direction are
        all known; ``levels`` (n, levels) on that side, buys rounded down and sells up,
        NaN in warm-up; ``take_profit`` (n,) the SMA rounded away from the grid (up for longs, down for shorts), NaN in
        warm-up; ``trail`` all NaN.
    """
    return quotes_of(p, values, price_tick, grid_multi_tf_inputs(p))


def grid_multi_tf_inputs(p: GridMultiTfParams) -> list[str]:
    """Indicator outputs feeding ``quote_at`` (``x0, x1, x2``): SMA, ATR, Supertrend
    direction."""
    st_key, sma_key, atr_key = grid_multi_tf_indicators(p)
    return [sma_key, atr_key, st_key + ".direction"]
