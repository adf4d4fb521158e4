"""Strategies: pure, vectorised functions from indicator arrays to resting quotes."""

from gridflow.operators.strategies.grid_atr import GridQuotes, grid_atr_indicators, grid_atr_quotes

__all__ = ["GridQuotes", "grid_atr_indicators", "grid_atr_quotes"]
