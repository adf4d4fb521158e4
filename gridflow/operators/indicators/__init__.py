"""Indicators: incremental and batch forms on the same numba kernels, TA-Lib semantics.

Families (one module each): ``moving_averages`` (SMA, EMA, WMA), ``volatility`` (true
range, Wilder ATR), ``momentum`` (Wilder RSI), ``oscillators`` (MACD), ``trend`` (ADX
with +DI/-DI, Supertrend), ``bands`` (Bollinger, Donchian), ``statistics`` (annualised
historical volatility and its z-score), ``regime`` (crash / bull / bear / range code
of the trailing window; the rule shared with :mod:`gridflow.wfo.regimes`), ``pairs``
(rolling correlation of two symbols' log returns). ``bank`` names them (``kind_params[@tf]``) and computes a symbol's set
chunk by chunk, higher timeframes included (:mod:`gridflow.operators.resample`).

Each indicator is one plain-Python *step* function on scalars (one closed candle in,
``(value, *new_state)`` out). numba compiles the same function (``njit(cache=True)``)
into a chunk kernel, so every entry point shares one definition and operation order and
the results are bit-identical: batch functions run the kernel from a fresh state;
``update_many`` runs it on a chunk, continuing the state kept in small float64/int64
numpy arrays; ``update`` runs one candle (the uncompiled step on memoryviews, or the
compiled one-candle function where that is faster), 0.2-0.7 µs.

Prices and outputs are float64 in quote currency, NaN during warm-up only. Inputs must
be finite and positive (the flow validates candles first): a NaN/inf input poisons most
indicators for the candles after it. TA-Lib C >= 0.8 uses fused multiply-adds in some
recursions; agreement with it is within 1e-13 relative (bit for bit for RSI, ADX, DI and
MACD).
"""

from gridflow.operators.indicators.bands import BollingerState, DonchianState, bbands, donchian
from gridflow.operators.indicators.bank import (
    KINDS,
    IndicatorBank,
    IndicatorSpec,
    indicator_name,
    parse_indicator,
)
from gridflow.operators.indicators.momentum import RSIState, rsi
from gridflow.operators.indicators.moving_averages import (
    EMAState,
    SMAState,
    WMAState,
    ema,
    sma,
    wma,
)
from gridflow.operators.indicators.oscillators import MACDState, macd
from gridflow.operators.indicators.pairs import CorrelationState, correlation
from gridflow.operators.indicators.regime import (
    REGIME_CODES,
    RegimeState,
    market_regime,
    regime_code,
    window_worst_drawdown,
)
from gridflow.operators.indicators.statistics import (
    HistVolState,
    HistVolZState,
    hist_vol,
    hist_vol_zscore,
)
from gridflow.operators.indicators.trend import ADXState, SupertrendState, adx, supertrend
from gridflow.operators.indicators.volatility import ATRState, TrueRangeState, atr, true_range

__all__ = [
    "sma", "ema", "true_range", "atr", "SMAState", "EMAState", "TrueRangeState",
    "ATRState", "RSIState", "rsi", "ADXState", "adx", "SupertrendState", "supertrend",
    "HistVolState", "hist_vol", "HistVolZState", "hist_vol_zscore", "CorrelationState",
    "correlation", "WMAState", "wma", "MACDState", "macd", "BollingerState", "bbands",
    "DonchianState", "donchian", "REGIME_CODES", "RegimeState", "market_regime",
    "regime_code", "window_worst_drawdown", "IndicatorBank", "IndicatorSpec", "KINDS", "indicator_name", "parse_indicator",
]
