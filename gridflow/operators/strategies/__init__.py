"""Strategies: pure, vectorised functions from indicator arrays to resting quotes.

Each strategy module gives ``<name>_indicators(params) -> list[str]`` (names for the
``IndicatorBank``) and ``<name>_quotes(params, values, price_tick) -> Quotes``;
:data:`STRATEGIES` maps the config ``name`` to both.
"""

from gridflow.operators.indicators import indicator_name
from gridflow.operators.strategies.base import Quotes
from gridflow.operators.strategies.envelope_dca import (
    envelope_dca_indicators,
    envelope_dca_inputs,
    envelope_dca_quotes,
)
from gridflow.operators.strategies.filters import filter_indicators
from gridflow.operators.strategies.grid_atr import (
    grid_atr_indicators,
    grid_atr_inputs,
    grid_atr_quotes,
)
from gridflow.operators.strategies.grid_funding import (
    FUNDING_RATE,
    grid_funding_indicators,
    grid_funding_inputs,
    grid_funding_quotes,
)
from gridflow.operators.strategies.grid_multi_tf import (
    grid_multi_tf_indicators,
    grid_multi_tf_inputs,
    grid_multi_tf_quotes,
)
from gridflow.operators.strategies.grid_trend import (
    grid_trend_indicators,
    grid_trend_inputs,
    grid_trend_quotes,
)
from gridflow.operators.strategies.stops import stop_indicator

STRATEGIES = {
    "grid_atr": (grid_atr_indicators, grid_atr_quotes),
    "grid_funding": (grid_funding_indicators, grid_funding_quotes),
    "envelope_dca": (envelope_dca_indicators, envelope_dca_quotes),
    "grid_multi_tf": (grid_multi_tf_indicators, grid_multi_tf_quotes),
    "grid_trend": (grid_trend_indicators, grid_trend_quotes),
}

INPUTS = {
    "grid_atr": grid_atr_inputs,
    "grid_funding": grid_funding_inputs,
    "envelope_dca": envelope_dca_inputs,
    "grid_multi_tf": grid_multi_tf_inputs,
    "grid_trend": grid_trend_inputs,
}
"""Strategy name -> ``inputs(params)``: the indicator outputs feeding
:func:`~gridflow.operators.strategies.quote_kernel.quote_at` as ``x0, x1, ...``."""



def sizing_indicator(account) -> str | None:
    """The indicator ``account``'s sizing reads (the historical volatility of
    ``vol_parity`` sizing, ``hv_<vol_window>``), or None."""
    sz = account.sizing
    return indicator_name("hv", sz.vol_window) if sz.mode == "vol_parity" else None


def strategy_indicators(account, symbol_params) -> list[str]:
    """Indicator names one symbol needs in ``account`` (a
    :class:`~gridflow.config.models.AccountConfig`): its strategy's (``symbol_params``,
    the symbol's strategy parameters), its filters'
    (:func:`~gridflow.operators.strategies.filters.filter_indicators`) and its sizing's
    (:func:`sizing_indicator`), each once."""
    names = list(STRATEGIES[symbol_params.name][0](symbol_params))
    names += [n for n in filter_indicators(symbol_params) if n not in names]
    stop = stop_indicator(symbol_params)
    names += [stop] if stop and stop not in names else []
    hv = sizing_indicator(account)
    return names + [hv] if hv and hv not in names else names


__all__ = ["FUNDING_RATE", "INPUTS", "STRATEGIES", "Quotes", "grid_atr_indicators", "grid_atr_quotes",
           "sizing_indicator", "strategy_indicators"]
