"""Bundled real Binance spot 1h candles (see README.md in this folder)."""

from __future__ import annotations

from pathlib import Path

CANDLES_DIR = Path(__file__).with_name("candles")


def bundled_candle_files() -> list[Path]:
    """Paths of the bundled candle files, sorted by name."""
    return sorted(CANDLES_DIR.glob("*.csv.gz"))
