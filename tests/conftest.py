"""Shared fixtures; helper functions live in ``tests/helpers.py``."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import subset_file


@pytest.fixture(scope="session")
def three_symbol_files(tmp_path_factory) -> list[Path]:
    """BTC, ETH and SOL 1h from 2021-01-01, 3000 candles each (a busy, volatile window)."""
    d = tmp_path_factory.mktemp("data")
    start = 1609459200000
    return [
        subset_file(f"binance_{s}_USDT_1h.csv.gz", d / f"binance_{s}_USDT_1h.csv.gz", start, 3000)
        for s in ("BTC", "ETH", "SOL")
    ]
