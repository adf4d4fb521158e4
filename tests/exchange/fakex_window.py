"""The candle window the local-exchange tests of every dialect share: 200 history
candles and 60 to come from 2024-01-01 00:00 UTC, per bundled symbol."""

from __future__ import annotations

import math

import numpy as np
from helpers import bundled_window

START = 1704067200000  # 2024-01-01 00:00 UTC: open of the first forming candle
HOUR = 3_600_000
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"


def window() -> dict[str, np.ndarray]:
    """Symbol -> (260, 6) candles: 200 before START, 60 from it."""
    return bundled_window(START, 200, 60)


def row(candles, k: int, sym: str = "BTC/USDT") -> tuple[float, float, float, float]:
    """``o, h, l, c`` of the k-th candle from START (0 = the first forming one)."""
    r = candles[sym][200 + k]
    return float(r[1]), float(r[2]), float(r[3]), float(r[4])


def tick_floor(x: float, tick: float = 0.1) -> float:
    """``x`` rounded down to the tick grid."""
    return round(math.floor(x / tick + 1e-9) * tick, 8)
