"""Trend-filtered grid: EMA cross for the side, ADX gate for entries, ATR trailing stop.

The side is +1 (long) when ``EMA_fast > EMA_slow``, -1 (short) when ``<``, 0 when they
are equal. New entries need trend strength ``ADX >= adx_threshold`` (Wilder 1978);
below it the levels are NaN but the side stays, so an open position is kept (and a
flip still closes it). Level ``i`` (0..levels-1) buys at
``EMA_fast - ATR * (atr_start + i * atr_step)`` for a long grid and sells at
``EMA_fast + ATR * (...)`` for a short one. There is no take profit: a trailing stop
``trail_atr * ATR`` (quote) from the best price since entry closes the position (applied
by the account engine), as does the stop ``sl_frac`` beyond the average entry or a side
flip (at the next candle's open). EMA/ADX/ATR are those of the candle just closed.
"""

from __future__ import annotations

import numpy as np

from gridflow.config.strategies import GridTrendParams
from gridflow.operators.indicators import indicator_name
from gridflow.operators.strategies.base import Quotes, quotes_of


def grid_trend_indicators(p: GridTrendParams) -> list[str]:
    """Indicator names the strategy needs: ``[ema_fast, ema_slow, adx_N, atr_N]``.

    ADX is multi-output; the quotes read its ``.adx`` key.
    """
    return [
        indicator_name("ema", p.ema_fast),
        indicator_name("ema", p.ema_slow),
        indicator_name("adx", p.adx_period),
        indicator_name("atr", p.atr_period),
    ]


def grid_trend_quotes(p: GridTrendParams, values: dict[str, np.ndarray],
                      price_tick: float = 0.0) -> Quotes:
    """Quotes of a trend-filtered grid for each candle of a chunk.

    Parameters
    ----------
    p : GridTrendParams
    values : dict[str, np.ndarray]
        Indicator values of the chunk, float64 (n,) each, NaN in warm-up:
        ``ema_F``, ``ema_S``, ``atr_N`` (quote currency) and ``adx_N.adx`` (0..100).
    price_tick : float
        Exchange price increment (quote); 0 disables rounding.

    Returns
    -------
    Quotes
        ``side`` (n,) sign of ``EMA_fast - EMA_slow``, 0 when equal or until all four
        indicators are known; ``levels`` (n, levels) on that side around EMA fast,
        buys rounded down and sells up, NaN in warm-up, when the side is 0 or when
        ``ADX < adx_threshold``; ``take_profit`` all NaN; ``trail`` (n,)
        ``trail_atr * ATR`` (quote distance) after warm-up, NaN during it.
    """
    return quotes_of(p, values, price_tick, grid_trend_inputs(p))


def grid_trend_inputs(p: GridTrendParams) -> list[str]:
    """Indicator outputs feeding ``quote_at`` (``x0..x3``): EMA fast, ATR, EMA slow, ADX."""
    fast_key, slow_key, adx_name, atr_key = grid_trend_indicators(p)
    return [fast_key, atr_key, slow_key, adx_name + ".adx"]
