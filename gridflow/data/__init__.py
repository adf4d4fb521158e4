"""Candle and funding files: the bundled real Binance data (see README.md in this
folder), reading and validating candle files (:mod:`.candle_files`) and funding rates
(:mod:`.funding`)."""

from __future__ import annotations

from gridflow.config.bundled import CANDLES_DIR, bundled_candle_files

__all__ = ["CANDLES_DIR", "bundled_candle_files"]
