"""Strategies: pure, vectorised functions from indicator arrays to resting quotes.

Each strategy module gives ``<name>_indicators(params) -> list[str]`` (names for the
``IndicatorBank``) and ``<name>_quotes(params, values, price_tick) -> Quotes``;
:data:`STRATEGIES` maps the config ``name`` to both.
"""

from gridflow.operators.strategies.base import Quotes
from gridflow.operators.strategies.grid_atr import grid_atr_indicators, grid_atr_quotes
from gridflow.operators.strategies.registry_extra import EXTRA

STRATEGIES = {
    "grid_atr": (grid_atr_indicators, grid_atr_quotes),
    **EXTRA,
}

__all__ = ["STRATEGIES", "Quotes", "grid_atr_indicators", "grid_atr_quotes"]
