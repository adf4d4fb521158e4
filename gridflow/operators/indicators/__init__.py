"""Incremental and batch SMA, EMA, Wilder true range and ATR with TA-Lib semantics.

Each indicator is one plain-Python *step* function on scalars (one closed candle in,
``(value, *new_state)`` out). numba compiles the same function (``njit(cache=True)``)
into a chunk kernel, so every entry point shares one definition and operation order and
the results are bit-identical: batch functions run the kernel from a fresh state;
``update_many`` runs it on a chunk, continuing the state kept in small float64/int64
numpy arrays; ``update`` calls the uncompiled step on memoryviews of those arrays
(0.2-0.4 µs, cheaper than a numba call per value).

Prices and outputs are float64 in quote currency, NaN during warm-up. Inputs must be
finite: as in TA-Lib, a NaN/inf input poisons the indicator for all later candles.
Formulas are classic TA-Lib; TA-Lib C >= 0.8 uses fused multiply-adds in some
recursions, so agreement with it is ~1e-13 relative, not bit for bit.
"""

from gridflow.operators.indicators.bank import (
    KINDS,
    IndicatorBank,
    IndicatorSpec,
    indicator_name,
    parse_indicator,
)
from gridflow.operators.indicators.pairs import CorrelationState, correlation
from gridflow.operators.indicators.momentum import RSIState, rsi
from gridflow.operators.indicators.statistics import (
    HistVolState,
    HistVolZState,
    hist_vol,
    hist_vol_zscore,
)
from gridflow.operators.indicators.moving_averages import EMAState, SMAState, ema, sma
from gridflow.operators.indicators.trend import ADXState, SupertrendState, adx, supertrend
from gridflow.operators.indicators.volatility import ATRState, TrueRangeState, atr, true_range

__all__ = [
    "sma", "ema", "true_range", "atr", "SMAState", "EMAState", "TrueRangeState",
    "ATRState", "RSIState", "rsi", "ADXState", "adx", "SupertrendState", "supertrend",
    "HistVolState", "hist_vol", "HistVolZState", "hist_vol_zscore", "CorrelationState",
    "correlation", "IndicatorBank", "IndicatorSpec", "KINDS", "indicator_name", "parse_indicator",
]
