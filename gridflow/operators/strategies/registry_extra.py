"""Registry entries of the envelope DCA, multi-timeframe and trend grid strategies, to
be merged into :data:`gridflow.operators.strategies.STRATEGIES` (config ``name`` ->
``(indicators, quotes)``)."""

from gridflow.operators.strategies.envelope_dca import (
    envelope_dca_indicators,
    envelope_dca_quotes,
)
from gridflow.operators.strategies.grid_multi_tf import (
    grid_multi_tf_indicators,
    grid_multi_tf_quotes,
)
from gridflow.operators.strategies.grid_trend import grid_trend_indicators, grid_trend_quotes

EXTRA = {
    "envelope_dca": (envelope_dca_indicators, envelope_dca_quotes),
    "grid_multi_tf": (grid_multi_tf_indicators, grid_multi_tf_quotes),
    "grid_trend": (grid_trend_indicators, grid_trend_quotes),
}

__all__ = ["EXTRA"]
