"""Grid ATR: entry levels spaced in ATRs around an SMA, take profit back at the SMA.

For a long grid, level ``i`` (0..levels-1) buys at
``SMA - ATR * (atr_start + i * atr_step)``; a short grid sells at
``SMA + ATR * (atr_start + i * atr_step)``. The take profit closes the whole grid when
price returns to the current SMA; the stop loss (applied by the account kernel) closes it
at ``sl_pct`` beyond the average entry. SMA and ATR are those of the candle just closed
(ATR per Wilder 1978, as TA-Lib); the quotes rest during the next candle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridflow.config.models import GridAtrParams
from gridflow.operators.indicators import indicator_name


@dataclass(frozen=True, slots=True)
class GridQuotes:
    """Resting quotes decided at each candle close.

    Attributes
    ----------
    side : int64 (n,)
        +1 long grid, -1 short grid, 0 no new entries (warm-up).
    levels : float64 (n, L)
        Level prices in quote currency, rounded to the price tick away from the market
        (down for buys, up for sells); NaN where not quoted.
    take_profit : float64 (n,)
        Take-profit price in quote currency (the SMA, rounded toward the grid); NaN in
        warm-up.
    """

    side: np.ndarray
    levels: np.ndarray
    take_profit: np.ndarray


def grid_atr_indicators(p: GridAtrParams) -> list[str]:
    """Indicator names the strategy needs, as understood by ``IndicatorBank``."""
    return [indicator_name("sma", p.sma_period), indicator_name("atr", p.atr_period)]


def _round_tick(x: np.ndarray, tick: float, up: bool) -> np.ndarray:
    if tick <= 0.0:
        return x
    q = x / tick
    q = np.ceil(q - 1e-9) if up else np.floor(q + 1e-9)
    return q * tick


def grid_atr_quotes(
    p: GridAtrParams, sma: np.ndarray, atr: np.ndarray, price_tick: float = 0.0
) -> GridQuotes:
    """Quotes of a grid ATR for each candle of a chunk.

    Parameters
    ----------
    p : GridAtrParams
    sma, atr : float64 (n,)
        SMA and ATR at each candle close (quote currency); NaN in warm-up.
    price_tick : float
        Exchange price increment (quote); 0 disables rounding.

    Returns
    -------
    GridQuotes
        Levels that would be at or below zero are NaN (not quoted).
    """
    d = 1 if p.side == "long" else -1
    k = p.atr_start + p.atr_step * np.arange(p.levels, dtype=np.float64)
    raw = sma[:, None] - d * atr[:, None] * k[None, :]
    levels = _round_tick(raw, price_tick, up=(d < 0))
    levels = np.where(levels > 0.0, levels, np.nan)
    tp = _round_tick(sma, price_tick, up=(d > 0))
    warm = np.isfinite(sma) & np.isfinite(atr)
    side = np.where(warm, d, 0).astype(np.int64)
    tp = np.where(warm, tp, np.nan)
    levels[~warm] = np.nan
    return GridQuotes(side, levels, tp)
