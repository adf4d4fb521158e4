"""Envelope DCA: fixed-percentage envelopes around an SMA, take profit back at the SMA.

For a long grid, level ``i`` (0..L-1, ``L = len(offsets)``) buys at
``SMA * (1 - offsets[i])``. The short grid sells at the mirrored envelope
``SMA * (1 + upper_i)`` with ``upper_i = 1 / (1 - offsets[i]) - 1``, i.e. at
``SMA / (1 - offsets[i])``: long and short are symmetric in log return,
``ln(1 + upper_i) = -ln(1 - offsets[i])``. The take profit closes the whole grid when
price returns to the current SMA; the stop loss (applied by the account engine) closes
it ``sl_frac`` beyond the average entry. The SMA is that of the candle just closed; the
quotes rest during the next candle.
"""

from __future__ import annotations

import numpy as np

from gridflow.config.strategies import EnvelopeDcaParams
from gridflow.operators.indicators import indicator_name
from gridflow.operators.strategies.base import Quotes, quotes_of


def envelope_dca_indicators(p: EnvelopeDcaParams) -> list[str]:
    """Indicator names the strategy needs (``["sma_N"]``), as understood by
    ``IndicatorBank``."""
    return [indicator_name("sma", p.sma_period)]


def envelope_dca_quotes(p: EnvelopeDcaParams, values: dict[str, np.ndarray],
                        price_tick: float = 0.0) -> Quotes:
    """Quotes of an envelope DCA grid for each candle of a chunk.

    Parameters
    ----------
    p : EnvelopeDcaParams
        ``side`` fixes the grid direction; ``offsets`` (fractions) the envelopes.
    values : dict[str, np.ndarray]
        Indicator values of the chunk: ``sma_N`` float64 (n,), quote currency, NaN in
        warm-up.
    price_tick : float
        Exchange price increment (quote); 0 disables rounding.

    Returns
    -------
    Quotes
        ``side`` (n,) +1 (long) or -1 (short) after warm-up, 0 during it; ``levels``
        (n, L) = ``SMA * (1 - offsets[i])`` rounded down (buys) or ``SMA / (1 -
        offsets[i])`` rounded up (sells), NaN in warm-up; ``take_profit`` (n,) the SMA
        rounded away from the grid (up for longs, down for shorts), NaN in warm-up;
        ``trail`` all NaN (no trailing stop).
    """
    return quotes_of(p, values, price_tick, envelope_dca_inputs(p))


def envelope_dca_inputs(p: EnvelopeDcaParams) -> list[str]:
    """Indicator outputs feeding ``quote_at`` (``x0``): the SMA."""
    return envelope_dca_indicators(p)
