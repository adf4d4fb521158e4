"""Grid ATR: entry levels spaced in ATRs around an SMA, take profit back at the SMA.

For a long grid, level ``i`` (0..levels-1) buys at
``SMA - ATR * (atr_start + i * atr_step)``; a short grid sells at
``SMA + ATR * (atr_start + i * atr_step)``. The take profit closes the whole grid when
price returns to the current SMA; the stop loss (applied by the account kernel) closes it
at ``sl_pct`` beyond the average entry. SMA and ATR are those of the candle just closed
(ATR per Wilder 1978, as TA-Lib); the quotes rest during the next candle.
"""

from __future__ import annotations

import numpy as np

from gridflow.config.strategies import GridAtrParams
from gridflow.operators.indicators import indicator_name
from gridflow.operators.strategies.base import Quotes, level_prices, take_profit_at


def grid_atr_indicators(p: GridAtrParams) -> list[str]:
    """Indicator names the strategy needs, as understood by ``IndicatorBank``."""
    return [indicator_name("sma", p.sma_period), indicator_name("atr", p.atr_period)]


def atr_grid(center: np.ndarray, atr: np.ndarray, d, levels: int, start: float, step: float,
             tick: float) -> np.ndarray:
    """Levels ``center -/+ ATR * (start + i * step)`` (n, levels), tick-rounded."""
    k = start + step * np.arange(levels, dtype=np.float64)
    return level_prices(center, atr[:, None] * k[None, :], d, tick)


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
        No quotes (side 0, NaN levels) during warm-up; no trailing stop.
    """
    sma_key, atr_key = grid_atr_indicators(p)
    sma, atr = values[sma_key], values[atr_key]
    d = 1 if p.side == "long" else -1
    warm = np.isfinite(sma) & np.isfinite(atr)
    levels = atr_grid(sma, atr, d, p.levels, p.atr_start, p.atr_step, price_tick)
    levels[~warm] = np.nan
    tp = np.where(warm, take_profit_at(sma, d, price_tick), np.nan)
    side = np.where(warm, d, 0).astype(np.int64)
    return Quotes(side, levels, tp, np.full(len(sma), np.nan))
