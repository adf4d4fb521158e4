"""Walk-forwards side by side (``gridflow.wfo.compare``): each variant is its own
walk-forward of the same grid, and a regime filter changes what the variant trades."""

from __future__ import annotations

from pathlib import Path

import pytest

import gridflow
from gridflow.config.models import AccountConfig
from gridflow.sweep import SweepData
from gridflow.wfo.compare import COMPARED, compare_variants
from gridflow.wfo.walkforward import WfoConfig, run_walkforward

PKG = Path(gridflow.__file__).parent
SPACE = {"atr_start": [1, 2], "sl_frac": [0.1]}
BASE = {"levels": 3, "side": "long"}
FILTER = {"regime_filter": {"window": 240, "crash": "block", "bear": "block"}}
CFG = WfoConfig(is_days=120, oos_days=60, start_ms="2022-01-01", end_ms="2023-01-01",
                n_boot=200)


@pytest.fixture(scope="module")
def setup():
    data = SweepData.from_file(PKG / "data/candles/binance_BTC_USDT_1h.csv.gz")
    rows = compare_variants({"BTC/USDT": data}, AccountConfig(), "grid_atr", SPACE, CFG,
                            {"plain": {}, "filtered": FILTER}, base=BASE)
    return data, rows


def test_each_variant_is_the_walk_forward_of_its_parameters(setup):
    data, rows = setup
    assert [(r["symbol"], r["variant"]) for r in rows] == [("BTC/USDT", "plain"),
                                                           ("BTC/USDT", "filtered")]
    for row, extra in zip(rows, ({}, FILTER)):
        rep = run_walkforward(data, AccountConfig(), "grid_atr", SPACE, CFG,
                              base={**BASE, **extra}).report
        for k in COMPARED:
            assert row[k] == rep[k] or (row[k] != row[k] and rep[k] != rep[k]), k


def test_the_regime_filter_variant_trades_differently_in_a_bear_year(setup):
    _data, (plain, filtered) = setup
    # 2022 was a bear market: the filter blocks entries for part of it
    assert filtered["oos_trades"] < plain["oos_trades"]


def test_an_unknown_parameter_in_a_variant_is_refused():
    data = SweepData.from_file(PKG / "data/candles/binance_BTC_USDT_1h.csv.gz")
    with pytest.raises(ValueError):
        compare_variants({"BTC/USDT": data}, AccountConfig(), "grid_atr", SPACE, CFG,
                         {"bad": {"regime_filter": {"winter": "block"}}}, base=BASE)
