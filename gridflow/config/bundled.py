"""Where the bundled demo data lives: real Binance spot 1h candles and USDT-M funding
rates (see ``gridflow/data/README.md``), the default data of a run.

Defined here, at the bottom of the layers, because the config's defaults name these
files; :mod:`gridflow.data` reads them.
"""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
#: Bundled candle files ``<exchange>_<BASE>_<QUOTE>_<timeframe>.csv.gz``.
CANDLES_DIR = DATA_DIR / "candles"
#: Bundled funding-rate files ``<exchange>_<BASE>_<QUOTE>_funding.csv.gz``.
FUNDING_DIR = DATA_DIR / "funding"


def bundled_candle_files() -> list[Path]:
    """Paths of the bundled candle files, sorted by name."""
    return sorted(CANDLES_DIR.glob("*.csv.gz"))
